//! What the web dashboard reads besides reviews: the Vietnamese labels of the vocabularies (the same
//! words as every other format), and the list of approved reviews (`GET /v1/approvals`).

use crate::figures::metric_label_vi;
use hoctap_domain::Approval;
use hoctap_domain::codes::{Level, Metric, SubjectGroup, Title};
use hoctap_domain::review::Status;
use serde_json::{Map, Value, json};

/// Vietnamese name of a group of Công dân học tập.
pub(crate) fn group_label_vi(group: SubjectGroup) -> &'static str {
    match group {
        SubjectGroup::Resident => "người dân",
        SubjectGroup::Worker => "người lao động",
        SubjectGroup::Staff => "cán bộ, công chức, viên chức",
        SubjectGroup::Student => "học sinh, sinh viên",
    }
}

/// The Vietnamese labels of every code a review holds, as one JSON object: `titles`, `metrics` (the
/// denominators an indicator may name after its `/`, with `districts` and `learning_citizen`),
/// `groups`, `levels`, `statuses`, and `digital_skill`. The dashboard names indicators with them, so a
/// reviewer reads "Công dân học tập / Người lớn" where the data says `learning_citizen/adults`.
pub fn labels_json() -> String {
    fn object<T: Copy>(all: &[T], code: impl Fn(T) -> &'static str, label: impl Fn(T) -> &'static str) -> Value {
        Value::Object(all.iter().map(|&v| (code(v).to_owned(), Value::from(label(v)))).collect::<Map<_, _>>())
    }
    let mut metrics = object(Metric::ALL, Metric::as_str, metric_label_vi);
    if let Value::Object(m) = &mut metrics {
        m.insert("districts".into(), Level::District.label_vi().into());
        m.insert("learning_citizen".into(), Title::LearningCitizen.label_vi().into());
    }
    let statuses = [Status::Met, Status::Behind, Status::NoDenominator, Status::UnitAbolished];
    let labels = json!({
        "titles": object(Title::ALL, Title::as_str, Title::label_vi),
        "metrics": metrics,
        "groups": object(SubjectGroup::ALL, SubjectGroup::as_str, group_label_vi),
        "levels": object(Level::ALL, Level::as_str, Level::label_vi),
        "statuses": object(&statuses, Status::as_str, Status::label_vi),
        "digital_skill": "Kỹ năng số",
    });
    serde_json::to_string(&labels).expect("a JSON value always serialises")
}

/// The approved reviews as JSON (`GET /v1/approvals`): `{"known_at", "approvals": [{"number",
/// "issuer", "date", "scope", "as_of", "milestone", "known_at", "event_id", "recorded_at"}]}`, in the
/// order given (`Engine::approvals`). `known_at` is the instant the list is as known at (`null`: now);
/// each approval's `known_at` is the instant it froze, `recorded_at` when the tracker recorded it.
pub fn approvals_json(approvals: &[Approval], known_at: Option<&str>) -> String {
    let list: Vec<Value> = approvals
        .iter()
        .map(|a| {
            let d = &a.data;
            json!({
                "number": d.decision.number,
                "issuer": d.decision.issuer,
                "date": d.decision.date.to_string(),
                "scope": d.scope,
                "as_of": d.as_of.to_string(),
                "milestone": d.milestone,
                "known_at": hoctap_domain::time::format_instant(a.known_at),
                "event_id": a.event_id.to_string(),
                "recorded_at": a.recorded.map(hoctap_domain::time::format_instant),
            })
        })
        .collect();
    let doc = json!({ "known_at": known_at, "approvals": list });
    serde_json::to_string_pretty(&doc).expect("a JSON value always serialises")
}
