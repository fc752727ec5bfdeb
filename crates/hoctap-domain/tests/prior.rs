//! A batch told what was accepted before (`Batch::accepted_before`, `Batch::placed_before`), as the
//! gateway does from PostgreSQL, judges exactly like an engine that folded those events: duplicates,
//! conflicting ids, a retraction's subject and the warnings.

use hoctap_domain::{Batch, Engine, Event, EventData};
use serde_json::{Value, json};

fn event(n: u32, ty: &str, subject: &str, data: Value) -> Event {
    let v = json!({"specversion": "1.0", "id": format!("00000000-0000-4000-8000-{n:012}"), "source": "t",
        "type": format!("vn.hoctap.{ty}.v1"), "time": "2025-03-01T09:00:00+07:00", "subject": subject, "data": data});
    Event::from_json(v.to_string().as_bytes()).unwrap()
}

fn unit(n: u32, code: &str, level: &str, parent: Option<&str>) -> Event {
    let mut data = json!({"code": code, "level": level, "name": format!("U{code}")});
    if let Some(p) = parent {
        data["parent"] = p.into();
    }
    event(n, "admin_unit.established", code, data)
}

fn registration(n: u32, subject: &str, commune: &str) -> Event {
    event(
        n,
        "registration.submitted",
        subject,
        json!({"subject_kind": "citizen", "commune": commune, "title": "learning_citizen", "cycle_year": 2025}),
    )
}

fn withdrawal(n: u32, subject: &str) -> Event {
    event(n, "registration.withdrawn", subject, json!({"title": "learning_citizen", "cycle_year": 2025}))
}

fn retraction(n: u32, subject: &str, of: u32) -> Event {
    event(
        n,
        "event.retracted",
        subject,
        json!({"event_id": format!("00000000-0000-4000-8000-{of:012}"), "reason": "entered in error"}),
    )
}

/// Every admission and warning of `request`, judged by `engine` with `batch`.
fn judge(engine: &Engine, mut batch: Batch, request: &[Event]) -> Vec<String> {
    batch.add_units(engine, request);
    request
        .iter()
        .map(|e| match engine.admit(&mut batch, e) {
            Ok(a) => {
                let warnings: Vec<&str> = engine.warnings(&batch, e).iter().map(|w| w.warning.as_str()).collect();
                format!("{a:?} {warnings:?}")
            }
            Err(r) => format!("refused {} {}", r.field, r.rule.as_str()),
        })
        .collect()
}

#[test]
fn a_batch_told_what_was_accepted_before_judges_like_the_engine_that_holds_it() {
    let geography = [unit(1, "01", "province", None), unit(2, "00001", "commune", Some("01"))];
    let accepted = [registration(10, "cit-a", "00001"), withdrawal(11, "cit-a"), withdrawal(12, "cit-b")];
    let request = [
        registration(10, "cit-a", "00001"), // the same event again
        withdrawal(20, "cit-b"),            // a new one about a subject placed nowhere
        registration(11, "cit-a", "00001"), // an accepted id with other content
        retraction(21, "cit-b", 10),        // a retraction of another subject's event
        retraction(22, "cit-a", 11),        // of its own subject's
        retraction(23, "cit-a", 99),        // of an id nobody sent
        withdrawal(24, "cit-a"),            // about a subject placed before
    ];

    let mut full = Engine::new();
    for e in geography.iter().chain(&accepted) {
        full.apply(e);
    }
    let holds = judge(&full, Batch::default(), &request);

    // Only the reference events in memory; the subject events as a door remembers them elsewhere.
    let mut reference = Engine::new();
    for e in &geography {
        reference.apply(e);
    }
    let mut told = Batch::default();
    for e in &accepted {
        told.accepted_before(e.id, e.content_digest(), &e.subject);
        if matches!(e.data, EventData::RegistrationSubmitted(_)) {
            told.placed_before(&e.subject);
        }
    }
    assert_eq!(judge(&reference, told, &request), holds);
    assert_eq!(
        holds,
        [
            "Duplicate []",
            "New [\"not_placed\"]",
            "refused id duplicate_id",
            "refused subject subject_mismatch",
            "New []",
            "New [\"retracts_unknown\"]",
            "New []",
        ]
    );
    // And without being told, the same batch would accept a conflicting copy: the test can fail.
    let blind = judge(&reference, Batch::default(), &request);
    assert_ne!(blind, holds);
    assert_eq!(blind[2], "New []");
}

#[test]
fn the_content_digest_ignores_recordedtime_and_sees_any_other_change() {
    let e = registration(10, "cit-a", "00001");
    let mut stamped = e.clone();
    stamped.recordedtime = Some(1_700_000_000_000_000);
    assert_eq!(e.content_digest(), stamped.content_digest());
    assert_ne!(e.content_digest(), registration(10, "cit-a", "00002").content_digest());
    let mut other_source = e.clone();
    other_source.source = "u".into();
    assert_ne!(e.content_digest(), other_source.content_digest());
}
