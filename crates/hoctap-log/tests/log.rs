//! The log against real files: round trips, torn tails after crashes, damage, locking, dead letters and replay order.

use hoctap_domain::event::{Event, EventData, SubjectRelocated};
use hoctap_domain::refusal::{Refusal, Rule};
use hoctap_domain::time;
use hoctap_log::frame::{self, MAGIC};
use hoctap_log::{DEAD_LETTER_FILE, EVENTS_FILE, Log, LogError, Position};
use std::fs;
use std::path::Path;
use uuid::Uuid;

fn event(i: u64) -> Event {
    let data = EventData::SubjectRelocated(SubjectRelocated { commune: format!("{:05}", i % 100_000) });
    Event::new(Uuid::from_u128(i as u128 + 1), "test", "2025-01-01T08:00:00+07:00", &format!("cit-{i}"), data)
        .expect("a valid time")
}

fn events(range: std::ops::Range<u64>) -> Vec<Event> {
    range.map(event).collect()
}

fn replay_all(log: &Log) -> Vec<Event> {
    let mut out = Vec::new();
    let stats = log.replay(|e| out.push(e)).expect("replay");
    assert_eq!(stats.records, out.len() as u64);
    out
}

/// Start offsets of the records in a log file's bytes, read independently of the crate, then the file length.
fn record_offsets(bytes: &[u8]) -> Vec<u64> {
    assert_eq!(&bytes[..8], MAGIC);
    let mut offsets = Vec::new();
    let mut at = 8;
    while at < bytes.len() {
        offsets.push(at as u64);
        let len = u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
        at += 8 + len;
    }
    assert_eq!(at, bytes.len());
    offsets.push(at as u64);
    offsets
}

/// A log of `n` events written in two appends; returns the stamped events and the file's bytes.
fn written_log(dir: &Path, n: u64) -> (Vec<Event>, Vec<u8>) {
    let mut log = Log::open(dir).unwrap();
    let mut written = events(0..n);
    let (a, b) = written.split_at_mut(n as usize / 2);
    log.append(a).unwrap();
    log.append(b).unwrap();
    drop(log);
    let bytes = fs::read(dir.join(EVENTS_FILE)).unwrap();
    (written, bytes)
}

#[test]
fn append_reopen_replay_returns_the_events_in_order() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path()).unwrap();
    assert!(log.is_empty());
    let mut written = events(0..1000);
    for batch in written.chunks_mut(300) {
        log.append(batch).unwrap();
    }
    log.append(&mut []).unwrap();
    assert_eq!(log.records(), 1000);
    assert_eq!(replay_all(&log), written, "a writer replays what it appended");
    drop(log);

    let log = Log::open(dir.path()).unwrap();
    assert_eq!(log.opened_report().torn_bytes, 0);
    assert_eq!(log.opened_report().torn_copy, None);
    assert_eq!(log.len(), 1000);
    assert_eq!(log.byte_len(), fs::metadata(dir.path().join(EVENTS_FILE)).unwrap().len());
    let replayed = replay_all(&log);
    assert_eq!(replayed, written);
    let stamps: Vec<i64> = replayed.iter().map(|e| e.recordedtime.unwrap()).collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "recordedtime strictly increases, even within a batch");
    assert_eq!(log.last_recorded(), stamps.last().copied());
    let now = time::parse_instant("2025-01-01T00:00:00Z").unwrap();
    assert!(stamps[0] > now, "stamps are UTC now, in microseconds");
}

#[test]
fn stamps_stay_after_the_last_one_even_if_it_is_in_the_future() {
    // A clock that stepped back: the log holds a stamp from 2100, written before the step.
    let dir = tempfile::tempdir().unwrap();
    let future = time::parse_instant("2100-01-01T00:00:00Z").unwrap();
    let mut e = event(0);
    e.recordedtime = Some(future);
    let mut bytes = MAGIC.to_vec();
    frame::encode(&mut bytes, e.to_json().as_bytes());
    fs::write(dir.path().join(EVENTS_FILE), &bytes).unwrap();

    let mut log = Log::open(dir.path()).unwrap();
    assert_eq!(log.last_recorded(), Some(future));
    let mut more = events(1..4);
    log.append(&mut more).unwrap();
    let stamps: Vec<i64> = more.iter().map(|e| e.recordedtime.unwrap()).collect();
    assert_eq!(stamps, [future + 1, future + 2, future + 3]);
}

/// Writes `bytes` as the log in a fresh directory, opens it and checks that exactly the records before
/// `keep_until` survive, the file is cut there, the cut bytes are kept, and appending then works.
fn assert_reopens_to(bytes: &[u8], written: &[Event], offsets: &[u64], kept: usize) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(EVENTS_FILE);
    fs::write(&path, bytes).unwrap();
    let good_end = offsets[kept];

    let mut log = Log::open(dir.path()).unwrap();
    let report = log.opened_report().clone();
    assert_eq!(report.records, kept as u64);
    assert_eq!(report.torn_bytes, bytes.len() as u64 - good_end);
    assert_eq!(fs::metadata(&path).unwrap().len(), good_end, "the file is cut after the last good record");
    match &report.torn_copy {
        None => assert_eq!(report.torn_bytes, 0),
        Some(copy) => assert_eq!(fs::read(copy).unwrap(), &bytes[good_end as usize..], "the cut bytes are kept"),
    }
    assert_eq!(replay_all(&log), &written[..kept]);

    let mut extra = vec![event(9_999)];
    log.append(&mut extra).unwrap();
    drop(log);
    let log = Log::open(dir.path()).unwrap();
    assert_eq!(log.opened_report().torn_bytes, 0);
    let mut expected = written[..kept].to_vec();
    expected.extend(extra);
    assert_eq!(replay_all(&log), expected);
}

/// Cut positions strictly inside record `k`: every byte of its header, then a stride through the payload.
fn cuts_inside(offsets: &[u64], k: usize) -> impl Iterator<Item = u64> {
    let (start, end) = (offsets[k], offsets[k + 1]);
    (start + 1..start + 8).chain((start + 8..end).step_by(17)).chain([end - 1])
}

#[test]
fn a_crash_inside_the_last_record_loses_only_that_record() {
    let dir = tempfile::tempdir().unwrap();
    let (written, bytes) = written_log(dir.path(), 20);
    let offsets = record_offsets(&bytes);
    for cut in cuts_inside(&offsets, 19) {
        assert_reopens_to(&bytes[..cut as usize], &written, &offsets, 19);
    }
    // A cut exactly between records is no torn tail at all.
    assert_reopens_to(&bytes[..offsets[19] as usize], &written, &offsets, 19);
    assert_reopens_to(&bytes, &written, &offsets, 20);
}

#[test]
fn a_cut_inside_a_middle_record_drops_it_and_everything_after() {
    let dir = tempfile::tempdir().unwrap();
    let (written, bytes) = written_log(dir.path(), 20);
    let offsets = record_offsets(&bytes);
    for cut in cuts_inside(&offsets, 7) {
        assert_reopens_to(&bytes[..cut as usize], &written, &offsets, 7);
    }
}

/// Writes `bytes` as the log in a fresh directory: opening it, to write or to read, fails naming the
/// damaged record's offset and changes nothing; [`Log::repair`] cuts it there, keeping a copy of the
/// bytes cut, and reports the whole records it cut; then the log opens with the records before it.
fn assert_damaged_at(bytes: &[u8], written: &[Event], offsets: &[u64], damaged: usize, records_after: u64) {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(EVENTS_FILE);
    fs::write(&path, bytes).unwrap();
    let at = offsets[damaged];
    for opened in [Log::open(dir.path()).err(), Log::open_read(dir.path()).err()] {
        match opened {
            Some(LogError::Damaged { offset, .. }) if offset == at => {}
            other => panic!("expected damage at byte {at}, got {other:?}"),
        }
    }
    let message = Log::open(dir.path()).err().unwrap().to_string();
    assert!(message.contains(&format!("byte {at}")) && message.contains("repair"), "{message}");
    assert_eq!(fs::read(&path).unwrap(), bytes, "nothing was cut");
    assert!(fs::read_dir(dir.path()).unwrap().all(|e| !e.unwrap().file_name().to_string_lossy().ends_with(".bin")));

    let repair = Log::repair(dir.path()).unwrap();
    assert_eq!(repair.records, damaged as u64);
    let cut = repair.cut.expect("a cut");
    assert_eq!((cut.offset, cut.bytes, cut.records_after), (at, bytes.len() as u64 - at, records_after));
    assert_eq!(fs::read(&cut.copy).unwrap(), &bytes[at as usize..], "a copy of every byte cut");
    assert_eq!(fs::metadata(&path).unwrap().len(), at);
    let log = Log::open(dir.path()).unwrap();
    assert_eq!(log.opened_report().torn_bytes, 0);
    assert_eq!(replay_all(&log), &written[..damaged]);
    drop(log);
    assert_eq!(Log::repair(dir.path()).unwrap().cut, None, "a sound log is left as it is");
}

#[test]
fn damage_in_the_middle_stops_open_naming_the_offset_and_repair_cuts_it_keeping_a_copy() {
    let dir = tempfile::tempdir().unwrap();
    let (written, bytes) = written_log(dir.path(), 20);
    let offsets = record_offsets(&bytes);

    let mut flipped = bytes.clone();
    flipped[offsets[7] as usize + 8 + 30] ^= 0x01;
    assert_damaged_at(&flipped, &written, &offsets, 7, 12);

    let mut bad_crc = bytes.clone();
    bad_crc[offsets[12] as usize + 5] ^= 0x80;
    assert_damaged_at(&bad_crc, &written, &offsets, 12, 7);

    let mut huge_len = bytes.clone();
    huge_len[offsets[3] as usize + 3] = 0x7f;
    assert_damaged_at(&huge_len, &written, &offsets, 3, 16);

    // A record cut short with whole records behind it: not a torn write either.
    let mut spliced = bytes[..offsets[7] as usize + 20].to_vec();
    spliced.extend_from_slice(&bytes[offsets[8] as usize..]);
    assert_damaged_at(&spliced, &written, &offsets, 7, 12);
}

#[test]
fn damage_that_reaches_the_end_is_a_torn_tail_cut_silently() {
    let dir = tempfile::tempdir().unwrap();
    let (written, bytes) = written_log(dir.path(), 20);
    let offsets = record_offsets(&bytes);
    // The last record damaged: nothing whole after it.
    let mut flipped = bytes.clone();
    flipped[offsets[19] as usize + 8 + 30] ^= 0x01;
    assert_reopens_to(&flipped, &written, &offsets, 19);
    // Some file systems leave zero-filled blocks after a crash; zeros must not read as empty records.
    let mut zeros = bytes.clone();
    zeros.extend_from_slice(&[0; 4096]);
    assert_reopens_to(&zeros, &written, &offsets, 20);
    // Garbage after the damage that happens to hold a length and a matching checksum, but no JSON
    // object, is no record either.
    let mut garbage = flipped.clone();
    frame::encode(&mut garbage, b"not an event");
    assert_reopens_to(&garbage, &written, &offsets, 19);
}

#[test]
fn a_header_torn_at_creation_is_rewritten_and_a_foreign_file_is_left_alone() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(EVENTS_FILE);
    fs::write(&path, &MAGIC[..3]).unwrap();
    let mut log = Log::open(dir.path()).unwrap();
    assert_eq!(log.records(), 0);
    log.append(&mut events(0..2)).unwrap();
    assert_eq!(replay_all(&log).len(), 2);
    drop(log);

    let other = tempfile::tempdir().unwrap();
    let path = other.path().join(EVENTS_FILE);
    fs::write(&path, b"id,name\n1,x\n").unwrap();
    assert!(matches!(Log::open(other.path()), Err(LogError::NotALog { .. })));
    assert!(matches!(Log::open_read(other.path()), Err(LogError::NotALog { .. })));
    assert_eq!(fs::read(&path).unwrap(), b"id,name\n1,x\n");
}

#[test]
fn one_writer_at_a_time_and_readers_need_no_lock() {
    let dir = tempfile::tempdir().unwrap();
    let mut writer = Log::open(dir.path()).unwrap();
    let mut written = events(0..5);
    writer.append(&mut written).unwrap();

    let second = Log::open(dir.path());
    assert!(matches!(second, Err(LogError::Locked { .. })), "{:?}", second.err());
    let mut reader = Log::open_read(dir.path()).unwrap();
    assert_eq!(replay_all(&reader), written);
    assert!(matches!(reader.append(&mut events(5..6)), Err(LogError::ReadOnly)));
    drop(reader);

    drop(writer);
    Log::open(dir.path()).expect("the lock goes with the writer");
}

#[test]
fn a_reader_ignores_a_torn_tail_without_cutting_it() {
    let dir = tempfile::tempdir().unwrap();
    let (written, mut bytes) = written_log(dir.path(), 10);
    bytes.extend_from_slice(&[0x40, 0x01, 0, 0, 0xaa]);
    let path = dir.path().join(EVENTS_FILE);
    fs::write(&path, &bytes).unwrap();

    let reader = Log::open_read(dir.path()).unwrap();
    assert_eq!(reader.opened_report().torn_bytes, 5);
    assert_eq!(replay_all(&reader), written);
    assert_eq!(fs::read(&path).unwrap(), bytes, "a reader changes nothing");
}

#[test]
fn a_record_that_does_not_decode_fails_replay_at_its_offset() {
    let dir = tempfile::tempdir().unwrap();
    let mut good = events(0..2);
    for (i, e) in good.iter_mut().enumerate() {
        e.recordedtime = Some(1_700_000_000_000_000 + i as i64);
    }
    let mut bytes = MAGIC.to_vec();
    frame::encode(&mut bytes, good[0].to_json().as_bytes());
    let bad_at = bytes.len() as u64;
    frame::encode(&mut bytes, br#"{"specversion":"1.0"}"#);
    frame::encode(&mut bytes, good[1].to_json().as_bytes());
    fs::write(dir.path().join(EVENTS_FILE), &bytes).unwrap();

    let log = Log::open(dir.path()).unwrap();
    assert_eq!(log.records(), 3, "the checksums hold, so open keeps all three");
    let mut seen = Vec::new();
    match log.replay(|e| seen.push(e)) {
        Err(LogError::Undecodable { offset, source, .. }) => {
            assert_eq!(offset, bad_at);
            assert_eq!(source.field, "id");
        }
        other => panic!("expected Undecodable, got {other:?}"),
    }
    assert_eq!(seen, good[..1], "the events before the bad record were delivered");
    let mut raw = 0;
    log.replay_raw(|_| raw += 1).unwrap();
    assert_eq!(raw, 3, "the raw reader does not decode");
}

#[test]
fn damage_after_open_is_reported_by_replay() {
    let dir = tempfile::tempdir().unwrap();
    let (written, mut bytes) = written_log(dir.path(), 10);
    let offsets = record_offsets(&bytes);
    let log = Log::open_read(dir.path()).unwrap();
    bytes[offsets[3] as usize + 20] ^= 0x04;
    fs::write(dir.path().join(EVENTS_FILE), &bytes).unwrap();

    let mut seen = Vec::new();
    match log.replay(|e| seen.push(e)) {
        Err(LogError::Corrupt { offset, .. }) => assert_eq!(offset, offsets[3]),
        other => panic!("expected Corrupt, got {other:?}"),
    }
    assert_eq!(seen, written[..3]);
    assert!(matches!(log.replay_raw(|_| {}), Err(LogError::Corrupt { offset, .. }) if offset == offsets[3]));

    // A file cut shorter than it was at open is damage too, not a quietly shorter replay.
    fs::write(dir.path().join(EVENTS_FILE), &bytes[..offsets[2] as usize]).unwrap();
    assert!(matches!(log.replay(|_| {}), Err(LogError::Corrupt { offset, .. }) if offset == offsets[2]));
}

#[test]
fn dead_letters_are_json_lines_with_the_reason() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join(DEAD_LETTER_FILE);
    // A crash mid-line earlier: the next line must start on its own.
    fs::write(&path, br#"{"refused_at":"2025-"#).unwrap();

    let mut log = Log::open(dir.path()).unwrap();
    let r1 = Refusal::new(Some("e-1".into()), "data.cycle_year", Rule::CycleYear, "2019 is outside 2021–2030");
    let r2 = Refusal::new(None, "(line)", Rule::Json, "expected value at line 1 column 1");
    let raw1 = br#"{"id":"e-1","data":{"cycle_year":2019}}"#;
    log.dead_letter(raw1, &r1).unwrap();
    log.dead_letters(&[(b"not json \xff", &r2), (b"{\"a\":\"x\ny\"}", &r1)]).unwrap();

    let text = fs::read_to_string(&path).unwrap();
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), 4);
    assert!(serde_json::from_str::<serde_json::Value>(lines[0]).is_err(), "the torn line stays alone");
    let parsed: Vec<serde_json::Value> = lines[1..].iter().map(|l| serde_json::from_str(l).unwrap()).collect();

    assert_eq!(parsed[0]["event"], std::str::from_utf8(raw1).unwrap());
    assert_eq!(parsed[0]["reason"]["event_id"], "e-1");
    assert_eq!(parsed[0]["reason"]["field"], "data.cycle_year");
    assert_eq!(parsed[0]["reason"]["rule"], "cycle_year");
    assert_eq!(parsed[0]["reason"]["detail"], "2019 is outside 2021–2030");
    assert!(time::parse_instant(parsed[0]["refused_at"].as_str().unwrap()).is_some());
    assert_eq!(parsed[1]["reason"]["event_id"], serde_json::Value::Null);
    assert_eq!(parsed[1]["reason"]["rule"], "json");
    assert_eq!(parsed[1]["event"], "not json \u{fffd}");
    assert_eq!(parsed[2]["event"], "{\"a\":\"x\ny\"}");
    assert!(text.ends_with('\n'));
}

#[test]
fn parallel_replay_keeps_log_order_over_many_records() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path()).unwrap();
    let mut written = events(0..50_000);
    for batch in written.chunks_mut(4_999) {
        log.append(batch).unwrap();
    }
    drop(log);

    let log = Log::open_read(dir.path()).unwrap();
    let mut raw = Vec::new();
    let raw_stats = log.replay_raw(|payload| raw.push(Event::from_json_recorded(payload).unwrap())).unwrap();
    let mut replayed = Vec::new();
    let stats = log.replay(|e| replayed.push(e)).unwrap();
    assert_eq!(stats, raw_stats);
    assert_eq!(stats.records, 50_000);
    assert_eq!(replayed, raw);
    assert_eq!(replayed, written);

    // Digests computed on the decoding threads arrive in log order too.
    let mut digests = Vec::new();
    let digest = |e: Event| (e.id, e.fingerprint());
    let stats = log.replay_digested(&Position::START, digest, |d| digests.push(*d)).unwrap();
    assert_eq!(stats, raw_stats);
    assert_eq!(digests, written.into_iter().map(digest).collect::<Vec<_>>());
}

#[test]
fn a_panicking_consumer_stops_replay_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let mut log = Log::open(dir.path()).unwrap();
    log.append(&mut events(0..20_000)).unwrap();
    let outcome = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
        let mut n = 0;
        log.replay(|_| {
            n += 1;
            assert!(n < 5_000, "stop here");
        })
    }));
    assert!(outcome.is_err());
    // Nothing is left running or locked: the log still replays in full.
    assert_eq!(replay_all(&log).len(), 20_000);
}
