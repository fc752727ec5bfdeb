//! The rules of "bad input" that one event can break on its own (ranges, shapes, raw citizen-IDs).
//! Rules that need what is already known (unknown units, duplicate ids) live in [`crate::engine`].

use crate::codes::{CYCLE_YEARS, Level};
use crate::event::{Event, EventData};
use crate::indicator::Indicator;
use crate::refusal::{Refusal, Rule};
use serde_json::Value;

/// Why a raw citizen-ID number is refused; the number itself is never repeated.
pub const CITIZEN_ID_DETAIL: &str =
    "holds a 12-digit number starting with 0, the shape of a raw citizen-ID (CCCD); events carry no personal data";

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
        EventData::ReviewApproved(d) => {
            same_subject(&d.scope)?;
            if d.known_at_instant().is_none() {
                return refuse(
                    "data.known_at",
                    Rule::Schema,
                    format!(
                        "`{}` is not an RFC 3339 instant with an offset (2026-01-15T17:00:00Z): an approval freezes the exact instant the review was as known at, not a day",
                        d.known_at
                    ),
                );
            }
            if d.decision.number.trim().is_empty() {
                return refuse(
                    "data.decision.number",
                    Rule::Schema,
                    "the decision number is required: an approved review is found by it".into(),
                );
            }
            if d.decision.issuer.trim().is_empty() {
                return refuse("data.decision.issuer", Rule::Schema, "the decision's issuer is required".into());
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

/// The path of the first key or string of `value` that holds a raw CCCD. No key is exempt: ids
/// (`event_id`) are UUIDs, and a UUID is never one ([`find_citizen_id`]); hashes are runs of 64.
fn citizen_id_in_data(value: &Value, path: &str) -> Option<(String, String)> {
    let join = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
    match value {
        Value::String(s) => find_citizen_id(s).map(|found| (path.to_owned(), found.to_owned())),
        Value::Array(items) => {
            items.iter().enumerate().find_map(|(i, v)| citizen_id_in_data(v, &format!("{path}[{i}]")))
        }
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            // A key that is a number is named by its parent's path: the number is never repeated.
            if let Some(found) = find_citizen_id(k) {
                return Some((if path.is_empty() { "(event)".to_owned() } else { path.to_owned() }, found.to_owned()));
            }
            citizen_id_in_data(v, &join(k))
        }),
        _ => None,
    }
}

/// Where a raw CCCD stands in the JSON text of an event as a source sent it: the path of the key or
/// string holding it, in any attribute (`source`, extensions, `data` at any depth), JSON escapes
/// (`\u0030`) read as what they stand for; `(event)` for text that is not JSON and holds one.
pub fn find_citizen_id_in_json(raw: &[u8]) -> Option<String> {
    let text = String::from_utf8_lossy(raw);
    // Fast path: no digit run of the shape, and no escape that could write one.
    if find_citizen_id(&text).is_none() && !text.contains("\\u") {
        return None;
    }
    match serde_json::from_slice::<Value>(raw) {
        // A JSON text that is only the number (a string at the root) has no path: the event is at fault.
        Ok(value) => {
            citizen_id_in_data(&value, "").map(|(path, _)| if path.is_empty() { "(event)".to_owned() } else { path })
        }
        Err(_) => find_citizen_id(&unescape_digits(&text)).map(|_| "(event)".to_owned()),
    }
}

/// `text` with the JSON escapes of ASCII digits (`\u0030`…`\u0039`) written as the digits.
fn unescape_digits(text: &str) -> String {
    let mut out = String::with_capacity(text.len());
    let mut rest = text;
    const ESCAPE: &str = "\\u003";
    while let Some(at) = rest.find(ESCAPE) {
        out.push_str(&rest[..at]);
        let after = &rest[at + ESCAPE.len()..];
        match after.chars().next().filter(char::is_ascii_digit) {
            Some(d) => {
                out.push(d);
                rest = &after[1..];
            }
            None => {
                out.push_str(ESCAPE);
                rest = after;
            }
        }
    }
    out.push_str(rest);
    out
}

const MASK: &str = "[CCCD đã che]";

/// `text` with every raw citizen-ID number replaced by a marker, for the places that keep refused
/// input (dead-letter file and topic): a CCCD never reaches a disk or a log. UUIDs are left alone.
pub fn mask_citizen_ids(text: &str) -> String {
    let mut text = text.to_owned();
    while let Some(found) = find_citizen_id(&text) {
        let at = found.as_ptr() as usize - text.as_ptr() as usize;
        text.replace_range(at..at + found.len(), MASK);
    }
    text
}

/// The refused input `raw` as it may be kept in a dead letter: unchanged when it holds no CCCD;
/// else, when it is JSON, re-written with every key and string masked (escapes read, so an escaped
/// number is masked too; ids, being UUIDs, are kept); else the text with digit escapes read and masked.
pub fn mask_citizen_ids_in_json(raw: &[u8]) -> String {
    if find_citizen_id_in_json(raw).is_none() {
        return String::from_utf8_lossy(raw).into_owned();
    }
    fn mask(value: Value) -> Value {
        match value {
            Value::String(s) => Value::String(mask_citizen_ids(&s)),
            Value::Array(items) => Value::Array(items.into_iter().map(mask).collect()),
            Value::Object(map) => {
                Value::Object(map.into_iter().map(|(k, v)| (mask_citizen_ids(&k), mask(v))).collect())
            }
            other => other,
        }
    }
    match serde_json::from_slice::<Value>(raw) {
        Ok(value) => mask(value).to_string(),
        Err(_) => mask_citizen_ids(&unescape_digits(&String::from_utf8_lossy(raw))),
    }
}

/// Finds a raw CCCD: exactly 12 digits starting with 0, not inside a longer run of letters or digits,
/// and not the last group of a UUID (`8-4-4-4-12` hex digits: an id, random, not personal data).
pub fn find_citizen_id(text: &str) -> Option<&str> {
    let mut start = None;
    for (i, c) in text.char_indices().chain(std::iter::once((text.len(), ' '))) {
        if c.is_alphanumeric() {
            start.get_or_insert(i);
        } else if let Some(s) = start.take() {
            let run = &text[s..i];
            if run.len() == 12 && run.starts_with('0') && run.bytes().all(|b| b.is_ascii_digit()) && !ends_uuid(text, s)
            {
                return Some(run);
            }
        }
    }
    None
}

/// Whether the 12 characters at `at` end a UUID: the 24 before them are `8-4-4-4-` hex groups, not
/// themselves inside a longer run.
fn ends_uuid(text: &str, at: usize) -> bool {
    let Some(head) = at.checked_sub(24).and_then(|from| text.get(from..at)) else { return false };
    let shape = head.bytes().enumerate().all(|(i, b)| match i {
        8 | 13 | 18 | 23 => b == b'-',
        _ => b.is_ascii_hexdigit(),
    });
    let before = text[..at - 24].chars().next_back();
    shape && !before.is_some_and(char::is_alphanumeric)
}

/// The path of the first key or string of the JSON text `json` that holds a control character other
/// than tab, newline and carriage return (C0, DEL or C1), in any attribute: such characters are
/// invisible, end C strings (NUL, which PostgreSQL refuses in text) and have no place in an event.
/// `None` for text that is not JSON (other rules refuse it).
pub fn find_control_character(json: &[u8]) -> Option<String> {
    // Fast path: in valid JSON a C0 control can only be written escaped (`\u00XX`, `\b`, `\f`); DEL and
    // the C1 controls may also stand raw (0x7F, UTF-8 0xC2 0x80..0x9F). Most events hold none of these.
    let suspect = json.windows(2).any(|w| {
        (w[0] == b'\\' && matches!(w[1], b'u' | b'b' | b'f')) || (w[0] == 0xC2 && (0x80..=0x9F).contains(&w[1]))
    }) || json.contains(&0x7F);
    if !suspect {
        return None;
    }
    let value: Value = serde_json::from_slice(json).ok()?;
    control_in(&value, "")
}

fn is_forbidden_control(c: char) -> bool {
    c.is_control() && !matches!(c, '\t' | '\n' | '\r')
}

fn control_in(value: &Value, path: &str) -> Option<String> {
    let join = |key: &str| if path.is_empty() { key.to_owned() } else { format!("{path}.{key}") };
    match value {
        Value::String(s) => s
            .chars()
            .any(is_forbidden_control)
            .then(|| if path.is_empty() { "(event)".to_owned() } else { path.to_owned() }),
        Value::Array(items) => items.iter().enumerate().find_map(|(i, v)| control_in(v, &format!("{path}[{i}]"))),
        Value::Object(map) => map.iter().find_map(|(k, v)| {
            if k.chars().any(is_forbidden_control) {
                // The key itself is the problem: name it printable.
                return Some(join(&k.escape_debug().to_string()));
            }
            control_in(v, &join(k))
        }),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::find_citizen_id;
    use super::find_control_character;

    #[test]
    fn control_characters_anywhere() {
        let find = |text: &str| find_control_character(text.as_bytes());
        assert_eq!(find(r#"{"subject":"cit-\u0000x"}"#).as_deref(), Some("subject"));
        assert_eq!(find(r#"{"data":{"reason":["ok","a\bb"]}}"#).as_deref(), Some("data.reason[1]"));
        assert_eq!(find(r#"{"note":"\u007f"}"#).as_deref(), Some("note"));
        assert_eq!(find("{\"note\":\"\u{85}\"}").as_deref(), Some("note"), "a raw C1 control");
        assert_eq!(find(r#"{"data":{"a\u0001":1}}"#).as_deref(), Some("data.a\\u{1}"));
        assert_eq!(find(r#"{"reason":"line\none\ttab\r"}"#), None, "tab, newline and CR are text");
        assert_eq!(find(r#"{"reason":"\\u0000 is written \\b"}"#), None, "an escaped backslash is not an escape");
        assert_eq!(find(r#"{"name":"Nguyễn Thị Ánh \u00e1"}"#), None);
    }

    #[test]
    fn citizen_ids_in_keys_escapes_and_every_attribute_but_never_uuids() {
        use super::{find_citizen_id_in_json as find, mask_citizen_ids, mask_citizen_ids_in_json as mask};
        let f = |t: &str| find(t.as_bytes());
        assert_eq!(f(r#"{"source":"/hs/\u0030\u0030\u0031203004567"}"#).as_deref(), Some("source"));
        assert_eq!(f(r#"{"cccd":"001203004567"}"#).as_deref(), Some("cccd"));
        assert_eq!(f(r#"{"data":{"001203004567":1}}"#).as_deref(), Some("data"), "a key: named by its parent");
        assert_eq!(f(r#"{"data":{"x":{"event_id":"001203004567"}}}"#).as_deref(), Some("data.x.event_id"));
        assert_eq!(f(r#"{"data":{"sha256":"001203004567"}}"#).as_deref(), Some("data.sha256"), "no key is exempt");
        assert_eq!(
            f(
                r#"{"id":"b0000000-0000-4000-8000-001203004567","data":{"event_id":"b0000000-0000-4000-8000-001203004567"}}"#
            ),
            None
        );
        assert_eq!(f(r#"{"id":"001203004567"}"#).as_deref(), Some("id"), "an id that is no UUID is not spared");
        assert_eq!(f(r#"{"subject": "\u0030\u0030\u0031203004567", broken"#).as_deref(), Some("(event)"));
        assert_eq!(f(r#"{"reason":"\u00e1 1234"}"#), None);

        assert_eq!(
            mask_citizen_ids("b0000000-0000-4000-8000-001203004567 and 001203004567"),
            "b0000000-0000-4000-8000-001203004567 and [CCCD đã che]"
        );
        let masked = mask(br#"{"id":"b0000000-0000-4000-8000-001203004567","source":"/hs/\u0030\u0030\u0031203004567","data":{"001203004567":"x"}}"#);
        assert_eq!(masked.matches("001203004567").count(), 1, "the id only: {masked}");
        assert!(masked.contains("b0000000-0000-4000-8000-001203004567"), "the id is kept: {masked}");
        assert_eq!(mask(br#"{"subject":"cit-1"}"#), r#"{"subject":"cit-1"}"#, "untouched without one");
        assert!(!mask(br#"{"x": "\u0030\u0030\u0031203004567" broken"#).contains("203004567"));
    }

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
