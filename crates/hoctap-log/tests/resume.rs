//! Resuming: positions in the log, opening from one (only when the log still holds it), replaying the
//! records after it, and the checkpoint file that keeps a state as of a position.

use hoctap_domain::event::{Event, EventData, SubjectRelocated};
use hoctap_log::checkpoint::{self, CHECKPOINT_FILE, CHECKPOINT_LOCK_FILE, CHECKPOINT_TEMP_FILE, Unusable};
use hoctap_log::frame::{self, MAGIC};
use hoctap_log::{EVENTS_FILE, Log, Position, Resume};
use std::fs::{self, File, OpenOptions};
use std::io::Write;
use std::path::Path;
use uuid::Uuid;

fn events(range: std::ops::Range<u64>, source: &str) -> Vec<Event> {
    range
        .map(|i| {
            let data = EventData::SubjectRelocated(SubjectRelocated { commune: format!("{:05}", i % 100_000) });
            Event::new(Uuid::from_u128(i as u128 + 1), source, "2025-01-01T08:00:00+07:00", &format!("cit-{i}"), data)
                .expect("a valid time")
        })
        .collect()
}

/// A log of `first` then `then` events (two appends, from `source`); the position between them.
fn two_appends(dir: &Path, first: u64, then: u64, source: &str) -> (Vec<Event>, Position) {
    let mut log = Log::open(dir).unwrap();
    let mut all = events(0..first + then, source);
    let (a, b) = all.split_at_mut(first as usize);
    log.append(a).unwrap();
    let between = log.position();
    log.append(b).unwrap();
    (all, between)
}

fn replay_from(log: &Log, from: &Position) -> Vec<Event> {
    let mut out = Vec::new();
    log.replay_from(from, |e| out.push(e)).unwrap();
    out
}

#[test]
fn a_position_is_the_same_whether_appended_or_scanned() {
    let dir = tempfile::tempdir().unwrap();
    let (_, between) = two_appends(dir.path(), 40, 60, "a");
    assert_eq!(between.records, 40);
    assert_eq!(Log::open_read_prefix(dir.path(), 40).unwrap().position(), between);
    let whole = Log::open_read(dir.path()).unwrap();
    assert_eq!(whole.position().offset, fs::metadata(dir.path().join(EVENTS_FILE)).unwrap().len());
    assert_eq!(Log::open_read_prefix(dir.path(), 1000).unwrap().position(), whole.position());
    assert_eq!(Log::open_read_prefix(dir.path(), 0).unwrap().position(), Position::START);
}

#[test]
fn resuming_replays_only_the_records_after_the_position() {
    let dir = tempfile::tempdir().unwrap();
    let (all, between) = two_appends(dir.path(), 40, 60, "a");
    let whole = Log::open_read(dir.path()).unwrap();

    let (reader, resume) = Log::open_read_resuming(dir.path(), &between).unwrap();
    assert_eq!(resume, Resume::Holds);
    assert_eq!((reader.position(), reader.last_recorded()), (whole.position(), whole.last_recorded()));
    let replayed = replay_from(&reader, &between);
    assert_eq!(replayed, all[40..]);
    assert_eq!(replay_from(&reader, &reader.position()), []);

    // The writer resumes too, and appends after the last record.
    let (mut writer, resume) = Log::open_resuming(dir.path(), &whole.position()).unwrap();
    assert_eq!(resume, Resume::Holds);
    assert_eq!(writer.last_recorded(), whole.last_recorded(), "new stamps follow the last one");
    let mut more = events(100..110, "a");
    writer.append(&mut more).unwrap();
    assert_eq!(replay_from(&writer, &whole.position()), more);
}

#[test]
fn a_torn_tail_after_the_position_is_cut_as_usual() {
    let dir = tempfile::tempdir().unwrap();
    let (all, between) = two_appends(dir.path(), 40, 60, "a");
    let good = fs::metadata(dir.path().join(EVENTS_FILE)).unwrap().len();
    OpenOptions::new().append(true).open(dir.path().join(EVENTS_FILE)).unwrap().write_all(&[7; 13]).unwrap();

    let (log, resume) = Log::open_resuming(dir.path(), &between).unwrap();
    assert_eq!(resume, Resume::Holds);
    assert_eq!(log.opened_report().torn_bytes, 13);
    assert_eq!(fs::metadata(dir.path().join(EVENTS_FILE)).unwrap().len(), good);
    assert_eq!(replay_from(&log, &between), all[40..]);
}

#[test]
fn a_log_that_no_longer_holds_the_position_is_scanned_whole() {
    // Cut before the position.
    let dir = tempfile::tempdir().unwrap();
    two_appends(dir.path(), 40, 60, "a");
    let end = Log::open_read(dir.path()).unwrap().position();
    let cut_at = Log::open_read_prefix(dir.path(), 70).unwrap().position();
    File::options().write(true).open(dir.path().join(EVENTS_FILE)).unwrap().set_len(cut_at.offset).unwrap();
    let (log, resume) = Log::open_read_resuming(dir.path(), &end).unwrap();
    assert!(matches!(resume, Resume::Differs(why) if why.contains("shorter")), "{resume:?}");
    assert_eq!(log.position(), cut_at);

    // Cut, then written again past the old end: the record before the position is another one.
    let (mut writer, resume) = Log::open_resuming(dir.path(), &end).unwrap();
    assert!(matches!(resume, Resume::Differs(_)));
    writer.append(&mut events(200..260, "a")).unwrap();
    assert!(writer.position().offset > end.offset);
    drop(writer);
    let (_, resume) = Log::open_read_resuming(dir.path(), &end).unwrap();
    assert!(matches!(resume, Resume::Differs(why) if why.contains("replaced")), "{resume:?}");

    // Another log of exactly the same shape: the first log's records as they were, with another
    // source and their checksums redone.
    let dir = tempfile::tempdir().unwrap();
    let (all, _) = two_appends(dir.path(), 40, 60, "a");
    let end = Log::open_read(dir.path()).unwrap().position();
    let mut bytes = MAGIC.to_vec();
    Log::open_read(dir.path())
        .unwrap()
        .replay_raw(|payload| {
            let json = String::from_utf8(payload.to_vec()).unwrap();
            frame::encode(&mut bytes, json.replacen(r#""source":"a""#, r#""source":"b""#, 1).as_bytes());
        })
        .unwrap();
    let other = tempfile::tempdir().unwrap();
    fs::write(other.path().join(EVENTS_FILE), &bytes).unwrap();
    let (log, resume) = Log::open_read_resuming(other.path(), &end).unwrap();
    assert!(matches!(resume, Resume::Differs(_)), "{resume:?}");
    assert_eq!((log.len(), log.byte_len()), (100, end.offset), "same shape, scanned whole");
    let mut replayed = Vec::new();
    log.replay(|e| replayed.push(e)).unwrap();
    assert_ne!(replayed, all);
}

#[test]
fn a_checkpoint_reads_back_what_was_written() {
    let dir = tempfile::tempdir().unwrap();
    assert!(matches!(checkpoint::read(dir.path(), 3), Err(Unusable::Missing)));
    let at = Position { records: 5, offset: 1234, last_len: 77, last_crc: 0xdead_beef };
    let payload: Vec<u8> = (0..100_000u32).map(|i| (i % 251) as u8).collect();
    let written = checkpoint::write(dir.path(), &at, 3, &payload).unwrap().expect("nobody else writes");
    assert_eq!(written, fs::metadata(dir.path().join(CHECKPOINT_FILE)).unwrap().len());
    assert!(!dir.path().join(CHECKPOINT_TEMP_FILE).exists(), "the temporary file was renamed into place");
    let read = checkpoint::read(dir.path(), 3).unwrap();
    assert_eq!((read.position, read.payload()), (at, &payload[..]));

    // Written again: replaced whole.
    let later = Position { records: 6, ..at };
    checkpoint::write(dir.path(), &later, 3, b"new").unwrap();
    let read = checkpoint::read(dir.path(), 3).unwrap();
    assert_eq!((read.position, read.payload()), (later, &b"new"[..]));
    assert!(matches!(checkpoint::read(dir.path(), 4), Err(Unusable::Version { found: 3, expected: 4 })));
}

#[test]
fn a_damaged_or_foreign_checkpoint_is_unusable() {
    let dir = tempfile::tempdir().unwrap();
    let at = Position { records: 5, offset: 1234, last_len: 77, last_crc: 9 };
    checkpoint::write(dir.path(), &at, 1, &[42; 1000]).unwrap();
    let path = dir.path().join(CHECKPOINT_FILE);
    let good = fs::read(&path).unwrap();
    let unusable = |bytes: &[u8]| {
        fs::write(&path, bytes).unwrap();
        checkpoint::read(dir.path(), 1).expect_err("unusable")
    };
    // Every single flipped bit, in the header and in the payload, is found.
    for at in [0, 8, 12, 20, 28, 36, 40, 44, 48, good.len() - 1] {
        let mut bytes = good.clone();
        bytes[at] ^= 0x10;
        let why = unusable(&bytes);
        assert!(matches!(why, Unusable::Damaged(_) | Unusable::Layout), "bit flipped at {at}: {why:?}");
    }
    assert!(matches!(unusable(&good[..good.len() - 1]), Unusable::Damaged(_)));
    assert!(matches!(unusable(&good[..20]), Unusable::Damaged(_)));
    assert!(matches!(unusable(b"{\"not\": \"a checkpoint\"}"), Unusable::Layout));
    fs::write(&path, &good).unwrap();
    assert!(checkpoint::read(dir.path(), 1).is_ok());
}

#[test]
fn a_checkpoint_being_written_by_another_process_is_left_to_it() {
    let dir = tempfile::tempdir().unwrap();
    let lock = File::create(dir.path().join(CHECKPOINT_LOCK_FILE)).unwrap();
    lock.lock().unwrap();
    assert_eq!(checkpoint::write(dir.path(), &Position::START, 1, b"x").unwrap(), None);
    assert!(!dir.path().join(CHECKPOINT_FILE).exists());
    drop(lock);
    assert_eq!(checkpoint::write(dir.path(), &Position::START, 1, b"x").unwrap(), Some(49));
}
