//! Random mutations of valid events, for the fuzz-style tests of decoding and validation
//! (`crates/hoctap-domain/tests/fuzz.rs`).
//!
//! A mutant starts from a golden valid event (`events/fixtures/valid/`) with a fresh id, then gets one
//! to three changes: to a JSON value anywhere in it (another type, a huge or negative number, unicode,
//! control characters, a citizen-ID number, deep nesting, a key removed, added or renamed, a value from
//! another event) or to its bytes (flipped, cut, repeated, escaped, invalid UTF-8). Everything comes
//! from a seeded [`fastrand::Rng`], so a run is the same on every machine. No mutation writes the codes
//! of province 96 (`96`, `964`, `32001`), where the tests put their valid neighbours.

#![allow(dead_code)]

use serde_json::{Map, Number, Value};
use std::path::Path;

/// The units the golden events name (province 01) and province 96 of the valid neighbours, as
/// (code, level, parent): the world every fuzz test establishes first.
pub const WORLD: [(&str, &str, Option<&str>); 9] = [
    ("01", "province", None),
    ("001", "district", Some("01")),
    ("00004", "commune", Some("001")),
    ("00008", "commune", Some("001")),
    ("00013", "commune", Some("001")),
    ("00025", "commune", Some("001")),
    ("96", "province", None),
    ("964", "district", Some("96")),
    ("32001", "commune", Some("964")),
];

/// The golden valid events, as JSON values, in file-name order.
pub fn seeds(events_dir: &Path) -> Vec<Value> {
    let dir = events_dir.join("fixtures/valid");
    let mut names: Vec<_> = std::fs::read_dir(&dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "json"))
        .collect();
    names.sort();
    names
        .iter()
        .map(|p| {
            serde_json::from_str(&std::fs::read_to_string(p).unwrap())
                .unwrap_or_else(|e| panic!("{}: {e}", p.display()))
        })
        .collect()
}

/// A random (version 4 shaped) UUID from `rng`.
pub fn uuid(rng: &mut fastrand::Rng) -> String {
    let bytes: [u8; 16] = std::array::from_fn(|_| rng.u8(..));
    let mut b = bytes;
    b[6] = (b[6] & 0x0f) | 0x40;
    b[8] = (b[8] & 0x3f) | 0x80;
    uuid::Uuid::from_bytes(b).to_string()
}

const STRINGS: &[&str] = &[
    "",
    " ",
    "x",
    "Hà Nội",
    "Phường Ba Đình",
    "🎓📚",
    "\u{202E}lanigiro",
    "e\u{301}\u{301}\u{301}",
    "\u{200B}",
    "\u{FEFF}01",
    "\u{0}",
    "cit-\u{0}x",
    "\u{1b}[31mred",
    "tab\there",
    "line\nbreak",
    "\u{7f}",
    "\u{85}",
    "\u{2028}",
    "\u{D7FF}\u{E000}\u{10FFFF}",
    "001203004567",
    "cccd 079203004567 here",
    "0012030045678",
    "01",
    "001",
    "00004",
    "00025",
    "0",
    "000000",
    "learning_citizen",
    "learning_commune",
    "learning_family",
    "citizen",
    "commune",
    "province",
    "district",
    "adults",
    "basic",
    "proficient",
    "staff",
    "2025-12-31",
    "2025-02-30",
    "2025-13-01",
    "0000-01-01",
    "9999-12-31",
    "2025-1-1",
    "2025-01-01T00:00:00Z",
    "2025-01-01T00:00:00",
    "2025-01-01T00:00:00+07:00",
    "2025-01-01T24:00:00+07:00",
    "+275760-09-13T00:00:00Z",
    "2205-01-01T00:00:00+07:00",
    "1.0",
    "0.3",
    "application/json",
    "text/xml",
    "vn.hoctap.registration.submitted.v1",
    "vn.hoctap.registration.submitted.v2",
    "vn.hoctap.admin_unit.dissolved.v1",
    "vn.hoctap.admin_unit.established.v1",
    "vn.hoctap.review.approved.v0",
    "vn.hoctap.nothing.v1",
    "vn.hoctap.registration.submitted.v99999999999999999999",
    "learning_citizen/adults",
    "learning_citizen:staff/unit_staff",
    "digital_skill/learning_citizen",
    "learning_district/districts",
    "nonsense/ratio",
    "9f2c4e7a1b8d3f6e0a5c9b2d7e4f1a8c3b6d9e2f5a8c1b4d7e0f3a6c9b2e5d8f",
    "8e2f4b61-7a3c-4d95-b1e8-6c0a9f2d7b14",
    "b0000000-0000-4000-8000-001203004567",
    "\\u0030",
    "\"quoted\"",
];

const KEYS: &[&str] = &[
    "id",
    "specversion",
    "source",
    "type",
    "time",
    "subject",
    "datacontenttype",
    "recordedtime",
    "data",
    "cccd",
    "dataschema",
    "commune",
    "title",
    "cycle_year",
    "subject_kind",
    "subject_group",
    "level",
    "code",
    "parent",
    "successor",
    "successors",
    "default",
    "unit",
    "metric",
    "value",
    "scope",
    "indicator",
    "milestone",
    "percent",
    "plan",
    "decision",
    "number",
    "issuer",
    "date",
    "valid_from",
    "valid_until",
    "effective",
    "event_id",
    "reason",
    "scores",
    "score",
    "criterion",
    "total",
    "sha256",
    "uri",
    "media_type",
    "bytes",
    "coordinates",
    "lat",
    "lon",
    "as_of",
    "known_at",
    "001203004567",
    "",
    "Subject",
    "da\u{0}ta",
];

/// Every place in `value` (JSON pointers), the root included.
fn places(value: &Value, at: String, out: &mut Vec<String>) {
    match value {
        Value::Object(map) => {
            for (k, v) in map {
                places(v, format!("{at}/{}", k.replace('~', "~0").replace('/', "~1")), out);
            }
        }
        Value::Array(items) => {
            for (i, v) in items.iter().enumerate() {
                places(v, format!("{at}/{i}"), out);
            }
        }
        _ => {}
    }
    out.push(at);
}

fn pick<'a, T>(rng: &mut fastrand::Rng, items: &'a [T]) -> &'a T {
    &items[rng.usize(..items.len())]
}

fn number(rng: &mut fastrand::Rng) -> Value {
    match rng.u8(..14) {
        0 => Value::from(0),
        1 => Value::from(-1),
        2 => Value::from(u64::MAX),
        3 => Value::from(i64::MIN),
        4 => Number::from_f64(1e308).map_or(Value::Null, Value::Number),
        5 => Number::from_f64(-1e-308).map_or(Value::Null, Value::Number),
        6 => Number::from_f64(1.5).map_or(Value::Null, Value::Number),
        7 => Value::from(rng.i32(2019..2033)),
        8 => Value::from(rng.i64(-200..300)),
        9 => Number::from_f64(100.000001).map_or(Value::Null, Value::Number),
        10 => Value::from(rng.u64(..)),
        11 => Number::from_f64(-0.0).map_or(Value::Null, Value::Number),
        12 => Value::from(4_294_967_296u64),
        _ => Value::from(rng.i64(..)),
    }
}

fn string(rng: &mut fastrand::Rng) -> String {
    match rng.u8(..10) {
        0 => "x".repeat(rng.usize(1..20_000)),
        1 => (0..rng.usize(1..40)).map(|_| char::from_u32(rng.u32(..0x11_0000)).unwrap_or('\u{FFFD}')).collect(),
        2 => (0..rng.usize(1..20)).map(|_| char::from(rng.u8(..0x80))).collect(),
        3 => uuid(rng),
        _ => (*pick(rng, STRINGS)).to_owned(),
    }
}

fn nested(rng: &mut fastrand::Rng, depth: usize) -> Value {
    let mut v = Value::from(1);
    for _ in 0..depth {
        v = if rng.bool() { Value::Array(vec![v]) } else { Value::Object(Map::from_iter([("a".to_owned(), v)])) };
    }
    v
}

/// Any JSON value, for a replacement.
fn any(rng: &mut fastrand::Rng, old: &Value, seeds: &[Value]) -> Value {
    match rng.u8(..16) {
        0 => Value::Null,
        1 => Value::Bool(rng.bool()),
        2..=4 => number(rng),
        5..=8 => Value::String(string(rng)),
        9 => Value::Array(vec![]),
        10 => Value::Object(Map::new()),
        11 => {
            let depth = rng.usize(1..200);
            nested(rng, depth)
        }
        12 => Value::Array(vec![old.clone(), old.clone()]),
        // The same value as another type: 2025 → "2025", "2025" → 2025.
        13 => match old {
            Value::Number(n) => Value::String(n.to_string()),
            Value::String(s) => s.parse::<i64>().map(Value::from).unwrap_or(Value::String(s.to_uppercase())),
            Value::Bool(b) => Value::String(b.to_string()),
            other => Value::String(other.to_string()),
        },
        // A value from another event.
        _ => {
            let seed = pick(rng, seeds);
            let mut at = Vec::new();
            places(seed, String::new(), &mut at);
            seed.pointer(pick(rng, &at).as_str()).cloned().unwrap_or(Value::Null)
        }
    }
}

/// One change to a JSON value, somewhere in `root`.
fn mutate_value(rng: &mut fastrand::Rng, root: &mut Value, seeds: &[Value]) {
    let mut at = Vec::new();
    places(root, String::new(), &mut at);
    let pointer = pick(rng, &at).clone();
    let Some(node) = root.pointer_mut(&pointer) else { return };
    match rng.u8(..10) {
        // Delete a key or an element.
        0 | 1 => match node {
            Value::Object(map) if !map.is_empty() => {
                let key = map.keys().nth(rng.usize(..map.len())).unwrap().clone();
                map.remove(&key);
            }
            Value::Array(items) if !items.is_empty() => {
                items.remove(rng.usize(..items.len()));
            }
            other => *other = Value::Null,
        },
        // Add a key.
        2 => match node {
            Value::Object(map) => {
                let key = if rng.u8(..4) == 0 { string(rng) } else { (*pick(rng, KEYS)).to_owned() };
                let value = match key.as_str() {
                    // A source setting the tracker's stamp, well formed.
                    "recordedtime" if rng.bool() => Value::String("2026-01-01T00:00:00Z".to_owned()),
                    _ => any(rng, &Value::Null, seeds),
                };
                map.insert(key, value);
            }
            Value::Array(items) => {
                let copy = items.first().cloned().unwrap_or(Value::Null);
                items.push(copy);
            }
            other => *other = any(rng, &other.clone(), seeds),
        },
        // Rename a key.
        3 => match node {
            Value::Object(map) if !map.is_empty() => {
                let key = map.keys().nth(rng.usize(..map.len())).unwrap().clone();
                let value = map.remove(&key).unwrap();
                let renamed = match rng.u8(..4) {
                    0 => key.to_uppercase(),
                    1 => format!("{key} "),
                    2 => format!("{key}\u{0}"),
                    _ => (*pick(rng, KEYS)).to_owned(),
                };
                map.insert(renamed, value);
            }
            other => *other = any(rng, &other.clone(), seeds),
        },
        // Replace the value.
        _ => *node = any(rng, &node.clone(), seeds),
    }
}

/// One change to the bytes of a JSON text.
fn mutate_bytes(rng: &mut fastrand::Rng, bytes: &mut Vec<u8>) {
    if bytes.is_empty() {
        bytes.push(b'{');
        return;
    }
    let at = rng.usize(..bytes.len());
    match rng.u8(..12) {
        0 => bytes[at] ^= 1 << rng.u8(..8),
        1 => bytes[at] = rng.u8(..),
        2 => {
            let end = (at + rng.usize(1..16)).min(bytes.len());
            bytes.drain(at..end);
        }
        3 => {
            let extra: Vec<u8> = (0..rng.usize(1..8)).map(|_| rng.u8(..)).collect();
            bytes.splice(at..at, extra);
        }
        4 => {
            let end = (at + rng.usize(1..64)).min(bytes.len());
            let copy = bytes[at..end].to_vec();
            bytes.splice(end..end, copy);
        }
        5 => bytes.truncate(at),
        // Text only a JSON string may hold: escapes of control characters, of digits, lone surrogates.
        6 => {
            let escapes: &[&[u8]] = &[
                b"\\u0000",
                b"\\u001b",
                b"\\u0030\\u0030\\u0031",
                b"\\ud800",
                b"\\udc00\\ud800",
                b"\\u00e0",
                b"\\/",
                b"\\",
            ];
            let e = pick(rng, escapes).to_vec();
            bytes.splice(at..at, e);
        }
        // Invalid UTF-8.
        7 => {
            let bad: &[&[u8]] =
                &[&[0xff], &[0xc3], &[0xe2, 0x82], &[0xed, 0xa0, 0x80], &[0xf8, 0x88, 0x80, 0x80, 0x80]];
            let b = pick(rng, bad).to_vec();
            bytes.splice(at..at, b);
        }
        8 => bytes.splice(0..0, [0xef, 0xbb, 0xbf]).for_each(drop),
        // Numbers serde_json may not hold.
        9 => {
            let numbers: &[&[u8]] = &[
                b"1e400",
                b"-1e400",
                b"123456789012345678901234567890",
                b"-0",
                b"1E+2",
                b"0.0000000000000000000000001",
                b"NaN",
                b"01",
            ];
            let n = pick(rng, numbers).to_vec();
            bytes.splice(at..at, n);
        }
        // A key repeated: the first `"k": v,` pair after `at` written twice.
        10 => {
            if let Some(start) = bytes[at..].iter().position(|&b| b == b'"').map(|p| p + at)
                && let Some(comma) = bytes[start..].iter().position(|&b| b == b',').map(|p| p + start)
            {
                let pair = bytes[start..=comma].to_vec();
                bytes.splice(start..start, pair);
            }
        }
        _ => {
            let ws: &[&[u8]] = &[b" ", b"\n", b"\t", b"\r\n", b"\x0b", b"\x00"];
            let w = pick(rng, ws).to_vec();
            bytes.splice(at..at, w);
        }
    }
}

/// A mutant of a random seed: a fresh id, then one to three changes (values first, then bytes).
pub fn mutant(rng: &mut fastrand::Rng, seeds: &[Value]) -> Vec<u8> {
    let mut value = pick(rng, seeds).clone();
    value["id"] = Value::String(uuid(rng));
    let changes = rng.usize(1..=3);
    let byte_changes = if rng.u8(..3) == 0 { rng.usize(1..=changes) } else { 0 };
    for _ in byte_changes..changes {
        mutate_value(rng, &mut value, seeds);
    }
    let mut bytes = if rng.bool() { serde_json::to_vec(&value) } else { serde_json::to_vec_pretty(&value) }.unwrap();
    for _ in 0..byte_changes {
        mutate_bytes(rng, &mut bytes);
    }
    bytes
}
