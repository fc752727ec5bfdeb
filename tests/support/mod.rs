//! Helpers for the end-to-end tests: a terse way to write the events of a hand-checked world, that world
//! itself ([`scenario_world`]), and the real `hoctap` binary ([`hoctap`]) with NDJSON inputs for it.

pub mod browser;
mod cli;
mod pg;
mod pg_cluster;
mod world;

pub use cli::{
    Ran, Served, hoctap, ingest, ndjson, review_json, run, serve, serve_city, source_json, source_line,
    without_generated_at,
};
pub use pg::{PG_URL, pg_connect, pg_connect_to};
pub use pg_cluster::PgCluster;
pub use world::{EARLY, REFORM, START, baseline, divided_world, grant, reg, retraction, scenario_world, target, unit};

use hoctap_domain::time::parse_instant;
use hoctap_domain::{Day, Event};
use serde_json::{Value, json};
use uuid::Uuid;

/// Builds an event from its parts through the real decoder, as a source would send it.
/// `n` gives a readable, stable id (`00000000-0000-0000-0000-0000000000nn`).
pub fn event(n: u128, stem: &str, time: &str, subject: &str, data: Value) -> Event {
    let json = envelope(n, stem, time, subject, data);
    Event::from_json(json.to_string().as_bytes()).unwrap_or_else(|r| panic!("fixture event {n} is invalid: {r}"))
}

/// The raw CloudEvent JSON that [`event`] decodes, for tests that need to break it before it is sent.
pub fn envelope(n: u128, stem: &str, time: &str, subject: &str, data: Value) -> Value {
    json!({
        "specversion": "1.0",
        "id": Uuid::from_u128(n).to_string(),
        "source": "test.hoctap",
        "type": format!("vn.hoctap.{stem}.v1"),
        "time": time,
        "subject": subject,
        "data": data,
    })
}

/// The same event as the tracker would have recorded it at `recorded` (RFC 3339).
pub fn recorded(mut e: Event, recorded: &str) -> Event {
    e.recordedtime = Some(parse_instant(recorded).expect("recorded time"));
    e
}

pub fn day(text: &str) -> Day {
    Day::parse(text).expect("date")
}

pub fn instant(text: &str) -> i64 {
    parse_instant(text).expect("instant")
}

/// The id helper used by [`event`], for retractions.
pub fn id(n: u128) -> String {
    Uuid::from_u128(n).to_string()
}
