//! What the gateway knows: the events it accepted (folded into an `Engine` for the domain's rules of
//! admission), their places (for authorisation), which ids went to the reference topic (to route
//! retractions), and the last `recordedtime` it stamped. Judging a request is a synchronous function
//! of this state; publishing and folding happen in `http`.

use crate::places::{self, Places};
use crate::tokens::Source;
use hoctap_domain::validate::find_citizen_id;
use hoctap_domain::{Admission, Batch, Engine, Event, Refusal, Rule};
use hoctap_kafka::{Reason, Route};
use serde_json::Value;
use std::collections::HashSet;
use uuid::Uuid;

#[derive(Debug, Default)]
pub(crate) struct State {
    engine: Engine,
    places: Places,
    reference_ids: HashSet<Uuid>,
    last_recorded: i64,
}

/// What became of one event of a request.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Admitted and new: to be stamped and published.
    New(Event),
    /// Known already with the same content: nothing to publish.
    Duplicate(Uuid),
    /// Refused with an HTTP status (400 not JSON, 422 bad input, 403 another province).
    Refused { status: u16, reason: Reason },
}

/// The judgement of a whole request.
#[derive(Debug)]
pub(crate) enum Judgement {
    /// A raw citizen-ID number somewhere: the whole request is refused and nothing is published.
    CitizenId(Vec<(usize, Reason)>),
    /// One verdict per event, in request order.
    Events(Vec<Verdict>),
}

/// The rule spelling of a refusal for another province (the domain has no such rule: it is the
/// gateway's).
pub(crate) const PROVINCE_RULE: &str = "province";

const CITIZEN_ID_DETAIL: &str =
    "holds a 12-digit number starting with 0, the shape of a raw citizen-ID (CCCD); events carry no personal data";

impl State {
    /// Takes in an event that is in the log (acknowledged by Kafka, or read back at start).
    pub fn fold(&mut self, event: &Event, route: Route) {
        self.engine.apply(event);
        self.places.fold(event);
        if route == Route::Reference {
            self.reference_ids.insert(event.id);
        }
        if let Some(r) = event.recordedtime {
            self.last_recorded = self.last_recorded.max(r);
        }
    }

    pub fn events(&self) -> usize {
        self.engine.len()
    }

    /// The next `recordedtime`: now in UTC microseconds, strictly after every one stamped or read before
    /// (so that "known at K" stays a prefix of what this gateway wrote, even if the clock steps back).
    pub fn stamp(&mut self) -> i64 {
        let now = std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
            .unwrap_or(0);
        self.last_recorded = now.max(self.last_recorded + 1);
        self.last_recorded
    }

    /// The topic of an accepted event: a retraction follows the event it names.
    pub fn route(&self, event: &Event, batch_reference: &HashSet<Uuid>) -> Route {
        Route::of(event, |id| self.reference_ids.contains(id) || batch_reference.contains(id))
    }

    /// Judges a request's events as one batch: decoding, the domain's rules (units established
    /// anywhere in the batch are known to all of it; ids accepted before are duplicates), then the
    /// source's province.
    pub fn judge(&self, source: &Source, raws: &[&[u8]]) -> Judgement {
        let citizen_ids: Vec<(usize, Reason)> =
            raws.iter().enumerate().filter_map(|(i, raw)| citizen_id_in(raw).map(|r| (i, r))).collect();
        if !citizen_ids.is_empty() {
            return Judgement::CitizenId(citizen_ids);
        }
        let decoded: Vec<Result<Event, Refusal>> = raws.iter().map(|raw| Event::from_json(raw)).collect();
        let mut batch = Batch::default();
        batch.add_units(&self.engine, decoded.iter().filter_map(|d| d.as_ref().ok()));

        let mut verdicts: Vec<Option<Verdict>> = Vec::with_capacity(raws.len());
        let mut admitted: Vec<(usize, Admission)> = Vec::new();
        let mut citizen_ids = Vec::new();
        for (i, d) in decoded.iter().enumerate() {
            let refusal = match d {
                Ok(event) => match self.engine.admit(&mut batch, event) {
                    Ok(admission) => {
                        admitted.push((i, admission));
                        verdicts.push(None);
                        continue;
                    }
                    Err(r) => r,
                },
                Err(r) => r.clone(),
            };
            if refusal.rule == Rule::CitizenId {
                citizen_ids.push((i, Reason::from(&refusal)));
            }
            let status = if refusal.rule == Rule::Json { 400 } else { 422 };
            verdicts.push(Some(Verdict::Refused { status, reason: Reason::from(&refusal) }));
        }
        if !citizen_ids.is_empty() {
            return Judgement::CitizenId(citizen_ids);
        }

        let events: Vec<&Event> =
            admitted.iter().map(|(i, _)| decoded[*i].as_ref().expect("admitted events decoded")).collect();
        let foreign = places::check(&self.places, &source.scope, &source.name, &events);
        for ((i, admission), foreign) in admitted.into_iter().zip(foreign) {
            let event = decoded[i].as_ref().expect("admitted events decoded");
            verdicts[i] = Some(match (foreign, admission) {
                (Some(f), _) => Verdict::Refused {
                    status: 403,
                    reason: Reason {
                        event_id: Some(event.id.to_string()),
                        field: f.field,
                        rule: PROVINCE_RULE.to_owned(),
                        detail: f.detail,
                    },
                },
                (None, Admission::New) => Verdict::New(event.clone()),
                (None, Admission::Duplicate) => Verdict::Duplicate(event.id),
            });
        }
        Judgement::Events(verdicts.into_iter().map(|v| v.expect("every event judged")).collect())
    }
}

/// A raw citizen-ID number anywhere in an event: in `subject`, in `data` (except the ids and hashes
/// `event_id` and `sha256`, as the domain rule says) or in any other attribute except `id` (a UUID's
/// last group may be 12 digits). An event that is not even JSON but holds such a number is treated
/// alike: it would otherwise reach the dead-letter topic as it is. The number is never repeated.
fn citizen_id_in(raw: &[u8]) -> Option<Reason> {
    let text = String::from_utf8_lossy(raw);
    // Fast path: most events hold nothing of the kind.
    find_citizen_id(&text)?;
    let refuse = |event_id: Option<String>, field: String| Reason {
        event_id,
        field,
        rule: Rule::CitizenId.as_str().to_owned(),
        detail: CITIZEN_ID_DETAIL.to_owned(),
    };
    let Ok(value) = serde_json::from_slice::<Value>(raw) else {
        return Some(refuse(None, "(event)".to_owned()));
    };
    let Value::Object(map) = &value else { return walk(&value, "(event)", false).map(|f| refuse(None, f)) };
    let id = map.get("id").and_then(Value::as_str).map(str::to_owned);
    map.iter()
        .filter(|(k, _)| k.as_str() != "id")
        .find_map(|(k, v)| walk(v, k, k == "data"))
        .map(|field| refuse(id, field))
}

fn walk(value: &Value, path: &str, in_data: bool) -> Option<String> {
    const EXEMPT_IN_DATA: &[&str] = &["event_id", "sha256"];
    match value {
        Value::String(s) => find_citizen_id(s).map(|_| path.to_owned()),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| walk(v, &format!("{path}[{i}]"), in_data)),
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| !(in_data && EXEMPT_IN_DATA.contains(&k.as_str())))
            .find_map(|(k, v)| walk(v, &format!("{path}.{k}"), in_data)),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_citizen_ids_where_the_rule_says() {
        let ev = |subject: &str, data: &str| {
            format!(
                r#"{{"specversion":"1.0","id":"6f1c1a52-3d8e-4f0e-9a43-012345678901","source":"s","type":"vn.hoctap.registration.withdrawn.v1","time":"2025-03-01T09:00:00+07:00","subject":"{subject}","data":{data}}}"#
            )
        };
        let clean = ev("cit-1", r#"{"title":"learning_citizen","cycle_year":2025}"#);
        assert_eq!(citizen_id_in(clean.as_bytes()), None, "a UUID's digits are not a citizen-ID");
        let in_subject = ev("001203004567", r#"{"title":"learning_citizen","cycle_year":2025}"#);
        let r = citizen_id_in(in_subject.as_bytes()).unwrap();
        assert_eq!(
            (r.field.as_str(), r.event_id.as_deref()),
            ("subject", Some("6f1c1a52-3d8e-4f0e-9a43-012345678901"))
        );
        assert!(!r.detail.contains("001203004567"));
        let in_data = ev("cit-1", r#"{"note":["x","CCCD 001203004567"],"event_id":"001203004567"}"#);
        assert_eq!(citizen_id_in(in_data.as_bytes()).unwrap().field, "data.note[1]");
        let exempt = ev("cit-1", r#"{"event_id":"001203004567","sha256":"001203004567"}"#);
        assert_eq!(citizen_id_in(exempt.as_bytes()), None);
        assert_eq!(citizen_id_in(b"{not json 001203004567").unwrap().field, "(event)");
    }
}
