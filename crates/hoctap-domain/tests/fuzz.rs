//! A fuzz-style test of decoding and validation: 1 000 000 random mutations of the golden valid events
//! (`support/mutate.rs`), in batches of 1 000 with 20 valid neighbours each, judged as a door judges a
//! batch (`Event::from_json`, `Batch::add_units` over the whole batch, `Engine::admit`, `warnings`),
//! then folded and reviewed. It checks:
//!
//! - nothing panics: decoding, admission, warnings, the fold, the canonical encoding and reviews;
//! - every refusal names the field (an attribute of the event, or `(line)` for text that is not a JSON
//!   object), the rule, and the event's id whenever the text holds a UUID `id`;
//! - every accepted event is stored (its canonical form decodes back to the same event) and counts as
//!   if the refused ones had never been there: the reviews of an engine fed the whole batch equal those
//!   of an engine fed only the accepted events, in reverse order;
//! - every valid neighbour is accepted and counted: the 20 registrations in commune 32001 of province
//!   96 (the mutants come from province 01's events, and no mutation writes 32001 or 96 where a unit
//!   is named) are exactly the 20 registered in 96's review.
//!
//! Deterministic: batch `b` draws from `fastrand::Rng::with_seed(SEED + b)`, whatever the threads.

#[path = "support/mutate.rs"]
mod mutate;

use hoctap_domain::codes::Title;
use hoctap_domain::engine::{Admission, Batch};
use hoctap_domain::time::parse_instant;
use hoctap_domain::{Day, Engine, Event, Query, Refusal, Rule};
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

const MUTANTS: usize = 1_000_000;
const BATCH: usize = 1_000;
const NEIGHBOURS: usize = 20;
const SEED: u64 = 0x686f_6374_6170;

/// The CloudEvents attributes a refusal may name although the event lacks them (a missing one).
const ATTRIBUTES: &[&str] =
    &["id", "specversion", "source", "type", "time", "subject", "datacontenttype", "recordedtime", "data"];

fn source_event(id: &str, stem: &str, time: &str, subject: &str, data: Value) -> Vec<u8> {
    serde_json::to_vec(&json!({
        "specversion": "1.0", "id": id, "source": "/fuzz", "type": format!("vn.hoctap.{stem}.v1"),
        "time": time, "subject": subject, "data": data
    }))
    .unwrap()
}

fn unit(n: u32, code: &str, level: &str, parent: Option<&str>) -> Event {
    let mut data = json!({"code": code, "level": level, "name": format!("Đơn vị {code}")});
    if let Some(p) = parent {
        data["parent"] = json!(p);
    }
    let id = format!("00000000-0000-4000-8000-{n:012}");
    let mut event =
        Event::from_json(&source_event(&id, "admin_unit.established", "2021-01-01T00:00:00+07:00", code, data))
            .unwrap_or_else(|r| panic!("{r}"));
    event.recordedtime = Some(parse_instant("2026-01-01T00:00:00Z").unwrap() + i64::from(n));
    event
}

/// Province 01 with the units the golden events name, and province 96 with the neighbours' commune.
fn base() -> Engine {
    let mut engine = Engine::new();
    let units: Vec<_> =
        (1..).zip(mutate::WORLD).map(|(n, (code, level, parent))| unit(n, code, level, parent)).collect();
    for u in &units {
        engine.apply(u);
    }
    engine
}

fn neighbour(rng: &mut fastrand::Rng, batch: usize, n: usize) -> Vec<u8> {
    let data = json!({"subject_kind": "citizen", "commune": "32001", "title": "learning_citizen",
                      "cycle_year": 2025, "subject_group": "resident"});
    source_event(
        &mutate::uuid(rng),
        "registration.submitted",
        "2025-03-01T09:00:00+07:00",
        &format!("nb-{batch}-{n}"),
        data,
    )
}

/// What is wrong with `refusal` of the event sent as `text`, if anything.
fn unnamed(text: &[u8], refusal: &Refusal) -> Option<String> {
    if refusal.field.is_empty() || refusal.detail.trim().is_empty() {
        return Some("no field or no detail".into());
    }
    let Some(object) = serde_json::from_slice::<Value>(text).ok().and_then(|v| v.as_object().cloned()) else {
        // Not a JSON object: the whole line is at fault.
        return None;
    };
    if let Some(id) = object.get("id").and_then(Value::as_str).and_then(|s| uuid::Uuid::parse_str(s).ok()) {
        let named = refusal.event_id.as_deref().and_then(|s| uuid::Uuid::parse_str(s).ok());
        if named != Some(id) {
            return Some(format!("the id {id} is not named (named: {:?})", refusal.event_id));
        }
    }
    // A key holding a control character or a citizen-ID is named as shown (escaped, masked).
    let shown_key = matches!(refusal.rule, Rule::ControlCharacter | Rule::CitizenId);
    let first = refusal.field.split(['.', '[']).next().unwrap_or("");
    if !(shown_key || object.contains_key(first) || ATTRIBUTES.contains(&first)) {
        return Some(format!("the field `{}` names no attribute of the event", refusal.field));
    }
    None
}

#[derive(Default)]
struct Tally {
    mutants: usize,
    accepted: usize,
    duplicates: usize,
    refused: BTreeMap<&'static str, usize>,
    failures: Vec<String>,
}

impl Tally {
    fn fail(&mut self, what: String) {
        if self.failures.len() < 20 {
            self.failures.push(what);
        }
    }

    fn add(&mut self, other: Tally) {
        self.mutants += other.mutants;
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        for (rule, n) in other.refused {
            *self.refused.entry(rule).or_default() += n;
        }
        for f in other.failures {
            self.fail(f);
        }
    }
}

fn shown(text: &[u8]) -> String {
    let s = String::from_utf8_lossy(text);
    match s.char_indices().nth(600) {
        Some((cut, _)) => format!("{}…", &s[..cut]),
        None => s.into_owned(),
    }
}

fn reviews(engine: &Engine) -> Result<Vec<String>, String> {
    let mut out = Vec::new();
    for scope in ["01", "96"] {
        for as_of in ["2025-06-30", "2025-12-31", "2030-12-31"] {
            let query =
                Query { scope: scope.into(), as_of: Day::parse(as_of).unwrap(), known_at: None, milestone: None };
            let review = catch_unwind(AssertUnwindSafe(|| engine.review(&query)))
                .map_err(|_| format!("review of {scope} on {as_of} panicked"))?
                .map_err(|e| format!("review of {scope} on {as_of}: {e}"))?;
            out.push(serde_json::to_string(&review).unwrap());
        }
    }
    Ok(out)
}

/// One batch: mutants and neighbours, judged as a whole, folded, reviewed.
fn batch(b: usize, seeds: &[Value]) -> Tally {
    let mut rng = fastrand::Rng::with_seed(SEED + b as u64);
    let mut tally = Tally::default();
    let mut texts: Vec<(bool, Vec<u8>)> = (0..BATCH).map(|_| (false, mutate::mutant(&mut rng, seeds))).collect();
    for n in 0..NEIGHBOURS {
        let at = rng.usize(..=texts.len());
        texts.insert(at, (true, neighbour(&mut rng, b, n)));
    }
    tally.mutants = BATCH;

    let decoded: Vec<(bool, &[u8], Result<Event, Refusal>)> = texts
        .iter()
        .filter_map(|(is_neighbour, text)| match catch_unwind(|| Event::from_json(text)) {
            Ok(result) => Some((*is_neighbour, text.as_slice(), result)),
            Err(_) => {
                tally.fail(format!("decoding panicked on: {}", shown(text)));
                None
            }
        })
        .collect();
    let mut a = base();
    let mut judged = Batch::default();
    let events = decoded.iter().filter_map(|(_, _, r)| r.as_ref().ok());
    if catch_unwind(AssertUnwindSafe(|| judged.add_units(&a, events))).is_err() {
        tally.fail(format!("Batch::add_units panicked in batch {b}"));
        return tally;
    }
    let mut accepted: Vec<Event> = Vec::new();
    let mut recorded = parse_instant("2026-02-01T00:00:00Z").unwrap();
    for (is_neighbour, text, result) in &decoded {
        let admitted = match result {
            Ok(event) => match catch_unwind(AssertUnwindSafe(|| {
                let admitted = a.admit(&mut judged, event);
                let _ = a.warnings(&judged, event);
                admitted
            })) {
                Ok(admitted) => admitted.map(|admission| (event, admission)),
                Err(_) => {
                    tally.fail(format!("admission panicked on: {}", shown(text)));
                    continue;
                }
            },
            Err(refusal) => Err(refusal.clone()),
        };
        match admitted {
            Ok((event, Admission::New)) => {
                let mut event = event.clone();
                recorded += 1;
                event.recordedtime = Some(recorded);
                accepted.push(event);
                tally.accepted += usize::from(!is_neighbour);
            }
            Ok((_, Admission::Duplicate)) if !is_neighbour => tally.duplicates += 1,
            Ok((_, Admission::Duplicate)) => {
                tally.fail(format!("a neighbour was taken for a duplicate: {}", shown(text)))
            }
            Err(refusal) if *is_neighbour => {
                tally.fail(format!("a neighbour was refused ({refusal}): {}", shown(text)))
            }
            Err(refusal) => {
                *tally.refused.entry(refusal.rule.as_str()).or_default() += 1;
                if let Some(problem) = unnamed(text, &refusal) {
                    tally.fail(format!("{problem}: {refusal}\n    sent: {}", shown(text)));
                }
            }
        }
    }

    // Stored: the canonical form of each accepted event reads back as that event.
    for event in &accepted {
        let stored = catch_unwind(|| event.to_json());
        match stored.as_ref().map(|json| Event::from_json_recorded(json.as_bytes())) {
            Ok(Ok(back)) if back == *event => {}
            Ok(back) => tally.fail(format!("stored {} reads back as {back:?}", event.id)),
            Err(_) => tally.fail(format!("encoding {} panicked", event.id)),
        }
    }
    // Counted as if the refused events had never been sent, whatever the order.
    let folded = catch_unwind(AssertUnwindSafe(|| {
        for event in &accepted {
            a.apply(event);
        }
        let mut only = base();
        for event in accepted.iter().rev() {
            only.apply(event);
        }
        only
    }));
    let Ok(only) = folded else {
        tally.fail(format!("the fold panicked in batch {b}"));
        return tally;
    };
    match (reviews(&a), reviews(&only)) {
        (Ok(mixed), Ok(alone)) if mixed == alone => {}
        (Ok(_), Ok(_)) => tally.fail(format!("batch {b}: the refused events changed a review")),
        (Err(e), _) | (_, Err(e)) => tally.fail(format!("batch {b}: {e}")),
    }
    // Every neighbour counted, once.
    let query = Query { scope: "96".into(), as_of: Day::parse("2025-12-31").unwrap(), known_at: None, milestone: None };
    let registered =
        a.review(&query).ok().and_then(|r| r.units[0].titles.get(&Title::LearningCitizen).map(|c| c.registered));
    if registered != Some(NEIGHBOURS as u64) {
        tally.fail(format!("batch {b}: {registered:?} registered in 96, not the {NEIGHBOURS} neighbours"));
    }
    tally
}

#[test]
fn a_million_mutations_of_valid_events_never_panic_are_refused_by_name_and_leave_the_valid_counted() {
    let seeds = mutate::seeds(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events"));
    assert!(seeds.len() >= 15, "the golden valid events are missing");
    let batches = MUTANTS / BATCH;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get()).min(4);
    let tally = std::thread::scope(|scope| {
        let workers: Vec<_> = (0..threads)
            .map(|t| {
                let seeds = &seeds;
                scope.spawn(move || {
                    let mut tally = Tally::default();
                    for b in (t..batches).step_by(threads) {
                        tally.add(batch(b, seeds));
                    }
                    tally
                })
            })
            .collect();
        let mut all = Tally::default();
        for w in workers {
            all.add(w.join().expect("a worker panicked outside catch_unwind"));
        }
        all
    });
    eprintln!(
        "{} mutants: {} accepted, {} duplicates, refused by rule: {:?}",
        tally.mutants, tally.accepted, tally.duplicates, tally.refused
    );
    assert!(tally.failures.is_empty(), "{} failures, the first:\n{}", tally.failures.len(), tally.failures.join("\n"));
    assert_eq!(tally.mutants, MUTANTS);
    // The mutations reach deep: many valid mutants, and refusals under most rules.
    assert!(tally.accepted > MUTANTS / 50, "only {} mutants were valid", tally.accepted);
    let rules = [
        Rule::Json,
        Rule::Schema,
        Rule::UnknownType,
        Rule::Range,
        Rule::CycleYear,
        Rule::UnknownUnit,
        Rule::CodeFormat,
        Rule::CitizenId,
        Rule::SubjectMismatch,
        Rule::RecordedTime,
        Rule::Indicator,
        Rule::ControlCharacter,
    ];
    let missing: Vec<&str> = rules.iter().map(|r| r.as_str()).filter(|r| !tally.refused.contains_key(r)).collect();
    assert!(missing.is_empty(), "no mutant was refused under {missing:?}: {:?}", tally.refused);
}
