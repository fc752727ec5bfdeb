//! The rules of "bad input" that one event can break on its own (ranges, shapes, raw citizen-IDs).
//! Rules that need what is already known (unknown units, duplicate ids) live in [`crate::engine`].

use crate::codes::{CYCLE_YEARS, Level};
use crate::event::{Event, EventData};
use crate::indicator::Indicator;
use crate::refusal::{Refusal, Rule};
use serde_json::Value;

/// Checks every rule that needs nothing but the event itself.
pub fn check_content(event: &Event) -> Result<(), Refusal> {
    let id = || Some(event.id.to_string());
    let refuse = |field: &str, rule: Rule, detail: String| Err(Refusal::new(id(), field, rule, detail));

    if find_citizen_id(&event.subject).is_some() {
        // The number itself is never repeated: the refusal is printed and stored.
        return refuse(
            "subject",
            Rule::CitizenId,
            "holds a 12-digit number starting with 0, the shape of a raw citizen-ID (CCCD); use a pseudonymous id"
                .into(),
        );
    }
    // Fast path: scan the data's JSON text; only when something looks like a CCCD, walk the values to
    // name the field and skip the keys that hold ids and hashes.
    let text = serde_json::to_string(&event.data).expect("event data serialises");
    if find_citizen_id(&text).is_some() {
        let data = serde_json::to_value(&event.data).expect("event data serialises");
        if let Some((path, _)) = citizen_id_in_data(&data, "data") {
            // The number itself is never repeated: the refusal is printed and stored.
            return refuse(
                &path,
                Rule::CitizenId,
                "holds a 12-digit number starting with 0, the shape of a raw citizen-ID (CCCD); events carry no personal data".into(),
            );
        }
    }

    let cycle = |year: i32| -> Result<(), Refusal> {
        if CYCLE_YEARS.contains(&year) {
            Ok(())
        } else {
            refuse("data.cycle_year", Rule::CycleYear, format!("cycle year {year} is outside 2021–2030"))
        }
    };
    let percent = |field: &str, v: f64| -> Result<(), Refusal> {
        if (0.0..=100.0).contains(&v) { Ok(()) } else { refuse(field, Rule::Range, format!("{v} is outside 0–100")) }
    };
    let same_subject = |code: &str| -> Result<(), Refusal> {
        if code == event.subject {
            Ok(())
        } else {
            refuse(
                "subject",
                Rule::SubjectMismatch,
                format!("subject `{}` must be the code the data names (`{code}`)", event.subject),
            )
        }
    };

    match &event.data {
        EventData::RegistrationSubmitted(d) => {
            cycle(d.cycle_year)?;
            if d.subject_kind.admin_level().is_some() && d.commune != event.subject {
                return refuse(
                    "data.commune",
                    Rule::SubjectMismatch,
                    format!(
                        "an administrative unit registers with its own code as commune (`{}`), not `{}`",
                        event.subject, d.commune
                    ),
                );
            }
            if d.subject_group.is_some() && d.subject_kind != crate::codes::SubjectKind::Citizen {
                return refuse("data.subject_group", Rule::Schema, "subject_group applies to citizens only".into());
            }
        }
        EventData::RegistrationWithdrawn(d) => cycle(d.cycle_year)?,
        EventData::DeclarationSubmitted(d) => {
            cycle(d.cycle_year)?;
            for (i, s) in d.scores.iter().enumerate() {
                percent(&format!("data.scores[{i}].score"), s.score.0)?;
            }
            percent("data.total", d.total.0)?;
        }
        EventData::EvidenceUploaded(d) => {
            cycle(d.cycle_year)?;
            if d.sha256.len() != 64 || !d.sha256.bytes().all(|b| b.is_ascii_digit() || (b'a'..=b'f').contains(&b)) {
                return refuse("data.sha256", Rule::Schema, "sha256 must be 64 lowercase hex digits".into());
            }
        }
        EventData::RecognitionGranted(d) => {
            cycle(d.cycle_year)?;
            if let Some(level) = d.level
                && !(1..=2).contains(&level)
            {
                return refuse("data.level", Rule::Range, format!("level {level} is not 1 or 2"));
            }
            if d.valid_until < d.valid_from {
                return refuse(
                    "data.valid_until",
                    Rule::ValidityOrder,
                    format!("valid_until {} is before valid_from {}", d.valid_until, d.valid_from),
                );
            }
        }
        EventData::RecognitionRevoked(d) => cycle(d.cycle_year)?,
        EventData::SkillCertified(_) | EventData::SubjectRelocated(_) | EventData::EventRetracted(_) => {}
        EventData::BaselineRecorded(d) => same_subject(&d.unit)?,
        EventData::TargetSet(d) => {
            same_subject(&d.scope)?;
            percent("data.percent", d.percent.0)?;
            if Indicator::parse(&d.indicator).is_none() {
                return refuse(
                    "data.indicator",
                    Rule::Indicator,
                    format!("`{}` is not an indicator the counting rules define", d.indicator),
                );
            }
        }
        EventData::AdminUnitEstablished(d) => {
            same_subject(&d.code)?;
            if let Some(c) = d.coordinates {
                if !(-90.0..=90.0).contains(&c.lat.0) {
                    return refuse("data.coordinates.lat", Rule::Range, format!("{} is outside −90…90", c.lat.0));
                }
                if !(-180.0..=180.0).contains(&c.lon.0) {
                    return refuse("data.coordinates.lon", Rule::Range, format!("{} is outside −180…180", c.lon.0));
                }
            }
            check_code("data.code", &d.code, d.level)
                .or_else(|detail| refuse("data.code", Rule::CodeFormat, detail))?;
            match (d.level, &d.parent) {
                (Level::Province, Some(_)) => {
                    return refuse("data.parent", Rule::Schema, "a province has no parent".into());
                }
                (Level::District | Level::Commune, None) => {
                    return refuse("data.parent", Rule::Schema, format!("a {} needs a parent", d.level));
                }
                _ => {}
            }
        }
        EventData::AdminUnitReparented(d) => same_subject(&d.code)?,
        EventData::AdminUnitRenamed(d) => same_subject(&d.code)?,
        EventData::AdminUnitDissolved(d) => {
            same_subject(&d.code)?;
            if d.successors.is_empty() {
                return refuse("data.successors", Rule::Schema, "a dissolved unit needs at least one successor".into());
            }
            let defaults = d.successors.iter().filter(|s| s.default).count();
            if defaults != 1 {
                return refuse(
                    "data.successors",
                    Rule::Schema,
                    format!("exactly one successor is the default (`\"default\": true`), not {defaults}"),
                );
            }
            for (i, successor) in d.successors.iter().enumerate() {
                let field = format!("data.successors[{i}].code");
                if successor.code == d.code {
                    return refuse(&field, Rule::Schema, "a unit cannot succeed itself".into());
                }
                if d.successors[..i].iter().any(|s| s.code == successor.code) {
                    return refuse(&field, Rule::Schema, format!("successor `{}` is named twice", successor.code));
                }
            }
        }
    }
    Ok(())
}

fn check_code(_field: &str, code: &str, level: Level) -> Result<(), String> {
    if code.len() == level.code_digits() && code.bytes().all(|b| b.is_ascii_digit()) {
        Ok(())
    } else {
        Err(format!("a {level} code has {} digits, not `{code}`", level.code_digits()))
    }
}

/// Fields whose values are ids or hashes, where long digit runs are expected and not personal data.
const EXEMPT_KEYS: &[&str] = &["event_id", "sha256"];

fn citizen_id_in_data(value: &Value, path: &str) -> Option<(String, String)> {
    match value {
        Value::String(s) => find_citizen_id(s).map(|found| (path.to_owned(), found.to_owned())),
        Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, v)| citizen_id_in_data(v, &format!("{path}[{i}]")))
        }
        Value::Object(map) => map
            .iter()
            .filter(|(k, _)| !EXEMPT_KEYS.contains(&k.as_str()))
            .find_map(|(k, v)| citizen_id_in_data(v, &format!("{path}.{k}"))),
        _ => None,
    }
}

/// `text` with every raw citizen-ID number replaced by a marker, for the places that keep refused
/// input (dead-letter file and topic): a CCCD never reaches a disk or a log.
pub fn mask_citizen_ids(text: &str) -> String {
    let mut text = text.to_owned();
    while let Some(found) = find_citizen_id(&text) {
        text = text.replacen(found, "[CCCD đã che]", 1);
    }
    text
}

/// Finds a raw CCCD: exactly 12 digits starting with 0, not inside a longer run of letters or digits.
pub fn find_citizen_id(text: &str) -> Option<&str> {
    let mut start = None;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        if c.is_alphanumeric() {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            let run = &text[s..i];
            if run.len() == 12 && run.starts_with('0') && run.bytes().all(|b| b.is_ascii_digit()) {
                return Some(run);
            }
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::find_citizen_id;

    #[test]
    fn citizen_id_shapes() {
        assert_eq!(find_citizen_id("001203004567"), Some("001203004567"));
        assert_eq!(find_citizen_id("https://x/001203004567.pdf"), Some("001203004567"));
        assert_eq!(find_citizen_id("cit-001203004567"), Some("001203004567"));
        assert_eq!(find_citizen_id("cit001203004567"), None, "inside a longer run");
        assert_eq!(find_citizen_id("0012030045678"), None, "13 digits");
        assert_eq!(find_citizen_id("101203004567"), None, "does not start with 0");
        assert_eq!(find_citizen_id("00120300456"), None, "11 digits");
        assert_eq!(find_citizen_id("Nguyễn001203004567"), None, "letters are Unicode letters");
    }
}
