//! A raw citizen-ID number (CCCD) hidden anywhere in an event, valid or not: in any attribute, in a
//! key, inside a string, plain or written with JSON escapes. Property: the event is refused with rule
//! `citizen_id` before anything else could repeat the number; the refusal does not hold it; the copy
//! kept for the dead-letter places holds no CCCD, yet keeps the event's id as it was.

use hoctap_domain::Event;
use hoctap_domain::refusal::Rule;
use hoctap_domain::validate::{find_citizen_id, find_citizen_id_in_json, mask_citizen_ids_in_json};
use proptest::prelude::*;
use serde_json::{Map, Value};
use std::path::Path;

/// Every golden example, valid and invalid, as JSON values (invalid ones that are not JSON objects
/// are skipped: there is nowhere to hide a number in them but their text, tested separately).
fn fixtures() -> Vec<Value> {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events/fixtures");
    let mut all = Vec::new();
    for dir in ["valid", "invalid"] {
        let mut paths: Vec<_> = std::fs::read_dir(root.join(dir)).unwrap().map(|e| e.unwrap().path()).collect();
        paths.sort();
        for path in paths.into_iter().filter(|p| p.extension().is_some_and(|e| e == "json")) {
            if path.ends_with("manifest.json") {
                continue;
            }
            if let Ok(value @ Value::Object(_)) =
                serde_json::from_str::<Value>(&std::fs::read_to_string(&path).unwrap())
            {
                all.push(value);
            }
        }
    }
    assert!(all.len() > 30, "the fixtures were found");
    all
}

/// A CCCD: 12 digits starting with 0.
fn cccd() -> impl Strategy<Value = String> {
    "0[0-9]{11}"
}

/// How the number is written.
#[derive(Clone, Copy, Debug)]
enum Writing {
    Plain,
    /// Every digit as `\u003N`.
    Escaped,
    /// The first three digits escaped, as in the report.
    PartlyEscaped,
}

/// Where it is hidden.
#[derive(Clone, Debug)]
enum Place {
    /// Replaces the n-th string value of the event (any depth, any attribute but `id`).
    Value(usize),
    /// Appended to the n-th string value, after a space.
    Inside(usize),
    /// As a key of the n-th object (`data` or the envelope).
    Key(usize),
    /// As a new extension attribute.
    Extension,
}

fn place() -> impl Strategy<Value = Place> {
    prop_oneof![
        (0..64usize).prop_map(Place::Value),
        (0..64usize).prop_map(Place::Inside),
        (0..8usize).prop_map(Place::Key),
        Just(Place::Extension),
    ]
}

fn writing() -> impl Strategy<Value = Writing> {
    prop_oneof![Just(Writing::Plain), Just(Writing::Escaped), Just(Writing::PartlyEscaped)]
}

/// Placeholder put in the value tree, replaced in the JSON text by the number as written.
const MARK: &str = "@@CCCD@@";

/// Calls `f` on the `n`-th string value (depth first; the envelope's `id` skipped); whether there was one.
fn nth_string(value: &mut Value, top: bool, n: &mut usize, f: &mut dyn FnMut(&mut String)) -> bool {
    match value {
        Value::String(s) => {
            if *n == 0 {
                f(s);
                return true;
            }
            *n -= 1;
            false
        }
        Value::Array(items) => items.iter_mut().any(|v| nth_string(v, false, n, f)),
        Value::Object(map) => map.iter_mut().any(|(k, v)| !(top && k == "id") && nth_string(v, false, n, f)),
        _ => false,
    }
}

/// Calls `f` on the `n`-th object (depth first); whether there was one.
fn nth_object(value: &mut Value, n: &mut usize, f: &mut dyn FnMut(&mut Map<String, Value>)) -> bool {
    match value {
        Value::Array(items) => items.iter_mut().any(|v| nth_object(v, n, f)),
        Value::Object(map) => {
            if *n == 0 {
                f(map);
                return true;
            }
            *n -= 1;
            map.values_mut().any(|v| nth_object(v, n, f))
        }
        _ => false,
    }
}

/// The event's text with the number hidden at `place`, or `None` when the event has no such place.
fn hide(mut event: Value, place: &Place, number: &str, writing: Writing) -> Option<String> {
    let count = |event: &Value, nth: &dyn Fn(&mut Value, &mut usize) -> bool| {
        let mut left = usize::MAX;
        nth(&mut event.clone(), &mut left);
        usize::MAX - left
    };
    let strings = count(&event, &|v, n| nth_string(v, true, n, &mut |_| {})).max(1);
    let objects = count(&event, &|v, n| nth_object(v, n, &mut |_| {})).max(1);
    let hidden = match place {
        Place::Value(n) => nth_string(&mut event, true, &mut (n % strings), &mut |s| *s = MARK.to_owned()),
        Place::Inside(n) => nth_string(&mut event, true, &mut (n % strings), &mut |s| {
            s.push(' ');
            s.push_str(MARK);
        }),
        Place::Key(n) => nth_object(&mut event, &mut (n % objects), &mut |m| {
            m.insert(MARK.to_owned(), Value::from(1));
        }),
        Place::Extension => event.as_object_mut()?.insert("cccd".to_owned(), Value::from(MARK)).is_none(),
    };
    if !hidden {
        return None;
    }
    let written: String = match writing {
        Writing::Plain => number.to_owned(),
        Writing::Escaped => number.chars().map(|c| format!("\\u003{c}")).collect(),
        Writing::PartlyEscaped => number[..3].chars().map(|c| format!("\\u003{c}")).collect::<String>() + &number[3..],
    };
    Some(event.to_string().replace(MARK, &written))
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 2000, ..ProptestConfig::default() })]

    #[test]
    fn a_hidden_citizen_id_is_refused_and_never_kept(
        which in 0..1000usize,
        number in cccd(),
        place in place(),
        writing in writing(),
    ) {
        let all = fixtures();
        let original = all[which % all.len()].clone();
        let id = original.get("id").and_then(Value::as_str).map(str::to_owned);
        let Some(text) = hide(original, &place, &number, writing) else { return Ok(()) };

        // Refused, for the number, and the refusal does not repeat it.
        let refusal = Event::from_json(text.as_bytes()).expect_err("an event with a CCCD is refused");
        prop_assert_eq!(refusal.rule, Rule::CitizenId, "{} in {}", refusal, text);
        prop_assert!(!refusal.to_string().contains(&number), "{}", refusal);
        prop_assert!(find_citizen_id_in_json(text.as_bytes()).is_some());

        // The copy for the dead-letter places holds no CCCD, in any writing, and keeps the id.
        let kept = mask_citizen_ids_in_json(text.as_bytes());
        prop_assert!(find_citizen_id_in_json(kept.as_bytes()).is_none(), "{}", kept);
        prop_assert!(find_citizen_id(&kept).is_none(), "{}", kept);
        if let Some(id) = id.filter(|id| id.len() == 36) {
            prop_assert!(kept.contains(&id), "the id {} survives: {}", id, kept);
        }
    }

    #[test]
    fn an_id_whose_last_group_looks_like_a_citizen_id_is_an_id(which in 0..15usize, number in cccd()) {
        let valid: Vec<Value> = fixtures().into_iter().take(15).collect();
        let mut event = valid[which % valid.len()].clone();
        let id = format!("b0000000-0000-4000-8000-{number}");
        event["id"] = Value::from(id.clone());
        let text = event.to_string();
        prop_assert!(find_citizen_id_in_json(text.as_bytes()).is_none());
        if let Err(refusal) = Event::from_json(text.as_bytes()) {
            prop_assert_ne!(refusal.rule, Rule::CitizenId);
        }
        prop_assert_eq!(mask_citizen_ids_in_json(text.as_bytes()), text.clone());
    }
}

#[test]
fn text_that_is_not_json_is_masked_too() {
    for text in [r#"{"subject": "001203004567", broken"#, r#"[1, "\u0030\u0030\u0031203004567""#] {
        assert!(Event::from_json(text.as_bytes()).is_err_and(|r| r.rule == Rule::CitizenId));
        let kept = mask_citizen_ids_in_json(text.as_bytes());
        assert!(!kept.contains("203004567"), "{kept}");
    }
}
