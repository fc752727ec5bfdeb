//! The embedded, append-only, crash-safe event log of the no-server mode.
//!
//! A log is a directory holding:
//!
//! - `events.log`: the accepted events, one checksummed record each (format in [`frame`]);
//! - `dead-letter.ndjson`: refused input lines with the reason, one JSON object per line;
//! - `LOCK`: the advisory lock a writer holds, so that two `hoctap ingest` cannot interleave;
//! - `torn-tail-<offset>-<micros>.bin`: bytes a writer cut off at open, kept for inspection;
//! - `checkpoint.bin` (with `checkpoint.bin.tmp` and `checkpoint.lock` while one is written): a
//!   caller's state as of a position of the log, see [`checkpoint`].
//!
//! Durability contract: when [`Log::append`] returns `Ok`, the events are on disk (`fdatasync`). A crash
//! in the middle of an append leaves at most a partial record at the end of the file; the next
//! [`Log::open`] finds the first record that is incomplete or fails its checksum and cuts the file
//! there (the "torn tail"), so every acknowledged event survives and nothing half-written is read.
//!
//! Replay decodes on a pool of worker threads and hands events to the caller in log order.
//!
//! A [`Position`] names a point in the log in a way a later process can check; the [`checkpoint`]
//! file keeps a caller's state as of such a point, so that a later process opens the log with
//! [`Log::open_resuming`] and replays only the records after it ([`Log::replay_from`]).

pub mod checkpoint;
pub mod frame;
mod replay;

use frame::{Framer, MAGIC, RECORD_HEADER};
use hoctap_domain::event::Event;
use hoctap_domain::refusal::Refusal;
use hoctap_domain::time;
use serde::Serialize;
use std::fs::{self, File, OpenOptions, TryLockError};
use std::io::{self, Read, Seek, SeekFrom, Write};
use std::path::{Path, PathBuf};
use std::time::{SystemTime, UNIX_EPOCH};

/// The events file inside a log directory.
pub const EVENTS_FILE: &str = "events.log";
/// The dead-letter file inside a log directory.
pub const DEAD_LETTER_FILE: &str = "dead-letter.ndjson";
/// The lock file inside a log directory.
pub const LOCK_FILE: &str = "LOCK";

/// What can go wrong with the log. Each variant says how a caller handles it.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The file system failed. Report and exit; nothing acknowledged was lost. After a failed
    /// append the `Log` is poisoned: drop it and open the log again.
    #[error("{op} {}: {source}", path.display())]
    Io {
        op: &'static str,
        path: PathBuf,
        #[source]
        source: io::Error,
    },
    /// Another process (or another `Log` in this one) is writing this log. Wait for it or pick another directory.
    #[error("the event log in {} is in use by another writer", dir.display())]
    Locked { dir: PathBuf },
    /// `events.log` does not start with the expected header: it is not a log, or one of a newer format.
    /// Nothing was changed; point the tool at the right directory.
    #[error("{} is not a hoctap event log of format {:?} (it starts with {found:?})", path.display(), String::from_utf8_lossy(MAGIC))]
    NotALog { path: PathBuf, found: Vec<u8> },
    /// Damage in the middle of `events.log`: the record at `offset` is incomplete or fails its
    /// checksum, yet whole records follow from `next_record` on. An interrupted write damages only the
    /// end of the log, so this is not one, and the records after the damage were acknowledged: nothing
    /// is cut. Stop; restore the log from a copy, or cut it at `offset` with [`Log::repair`]
    /// (`hoctap repair`), which keeps a copy of what it cuts.
    #[error(
        "{} is damaged at byte {offset} ({detail}), and whole records follow from byte {next_record}: \
         this is not an interrupted write, so nothing was cut; restore the log from a copy, or run \
         `hoctap --data-dir {} repair` to cut it at byte {offset} (a copy of what is cut is kept)",
        path.display(), dir.display()
    )]
    Damaged { path: PathBuf, dir: PathBuf, offset: u64, next_record: u64, detail: &'static str },
    /// During replay, a record that was whole when the log was opened no longer is: the file was
    /// changed underneath. Stop and open the log again.
    #[error("corrupt record at byte {offset} of {}: {detail}", path.display())]
    Corrupt { path: PathBuf, offset: u64, detail: &'static str },
    /// A record passed its checksum but is not an event this tracker can decode. Every record was
    /// validated when appended, so this means the decoder changed (a missing upcaster) or a bug: stop.
    #[error("record at byte {offset} of {} does not decode: {source}", path.display())]
    Undecodable {
        path: PathBuf,
        offset: u64,
        #[source]
        source: Refusal,
    },
    /// One event's JSON exceeds the largest record. Refuse the event (dead-letter it); the log is unchanged.
    #[error("an event of {bytes} bytes is larger than a record may be ({} bytes)", frame::MAX_RECORD)]
    TooLarge { bytes: usize },
    /// The log was opened with [`Log::open_read`]; open it with [`Log::open`] to write.
    #[error("the log was opened read-only")]
    ReadOnly,
    /// An earlier append failed, so where the file ends is no longer known. Drop the `Log` and reopen.
    #[error("an earlier write to the log failed; reopen it")]
    Poisoned,
}

/// Opens (creating it) the lock file at `path` and takes its exclusive lock without waiting; `None`
/// when another process holds it. The lock lasts as long as the returned file is open.
pub(crate) fn try_lock(path: &Path) -> Result<Option<File>, LogError> {
    let lock = OpenOptions::new()
        .read(true)
        .write(true)
        .create(true)
        .truncate(false)
        .open(path)
        .map_err(io_err("opening", path))?;
    match lock.try_lock() {
        Ok(()) => Ok(Some(lock)),
        Err(TryLockError::WouldBlock) => Ok(None),
        Err(TryLockError::Error(e)) => Err(io_err("locking", path)(e)),
    }
}

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LogError {
    move |source| LogError::Io { op, path: path.to_owned(), source }
}

/// What [`Log::repair`] did.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Repair {
    /// Whole records the log holds now.
    pub records: u64,
    /// What was cut; `None` when the log had no damage.
    pub cut: Option<Cut>,
}

/// The bytes [`Log::repair`] cut.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Cut {
    /// Where the log was cut (the first damaged record).
    pub offset: u64,
    pub bytes: u64,
    /// What was wrong with the record at `offset`.
    pub detail: &'static str,
    /// Whole records found after the damage (0 for a torn tail): acknowledged events now only in the copy.
    pub records_after: u64,
    /// The copy of every byte cut.
    pub copy: PathBuf,
}

/// What opening found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Whole, checked records (those before the position the log was resumed from were checked when
    /// that position was taken).
    pub records: u64,
    /// Bytes after the last good record: cut off by [`Log::open`], left alone by [`Log::open_read`].
    pub torn_bytes: u64,
    /// Where [`Log::open`] kept a copy of the bytes it cut.
    pub torn_copy: Option<PathBuf>,
}

/// A point in the log, between two records: the records before it, and enough of the last one to tell
/// later whether a log file still holds the same records up to here.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Position {
    /// Records before this point.
    pub records: u64,
    /// File offset of this point: the end of the last record before it (or of the header).
    pub offset: u64,
    /// Payload length and CRC of the last record before it (both 0 at the start of the log). The CRC
    /// covers its id and `recordedtime` (strictly increasing), so another log, or this one cut and
    /// written again, does not end a record with the same CRC at the same offset.
    pub last_len: u32,
    pub last_crc: u32,
}

impl Position {
    /// Before the first record.
    pub const START: Position = Position { records: 0, offset: MAGIC.len() as u64, last_len: 0, last_crc: 0 };
}

/// Whether a log still holds the records up to a [`Position`], as [`Log::open_resuming`] found.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Resume {
    /// It does: only the records after the position were scanned.
    Holds,
    /// It does not (it was cut before the position, or replaced); the whole log was scanned.
    Differs(&'static str),
}

/// Counts from one replay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub records: u64,
    /// Where reading ended: the file offset after the last record (the bytes of the whole replay,
    /// header included).
    pub bytes: u64,
}

/// An open event log. [`Log::open`] gives the one writer; [`Log::open_read`] gives readers.
pub struct Log {
    dir: PathBuf,
    path: PathBuf,
    file: File,
    /// Held for the life of a writer; `None` for readers.
    lock: Option<File>,
    dead: Option<DeadLetters>,
    /// After the last good record: everything before it is checked, everything after is not ours.
    end: Position,
    last_recorded: Option<i64>,
    opened: OpenReport,
    poisoned: bool,
}

struct DeadLetters {
    file: File,
    /// A previous write may have stopped mid-line: start the next one on a fresh line.
    needs_newline: bool,
}

impl Log {
    /// Opens the log in `dir` for writing, creating both as needed, and takes the writer lock.
    ///
    /// Checks every record; the first incomplete or corrupt one and everything after it is cut off
    /// (a copy is kept beside the log, see [`OpenReport::torn_copy`]) and the cut is made durable.
    pub fn open(dir: &Path) -> Result<Log, LogError> {
        Log::open_with(dir, None).map(|(log, _)| log)
    }

    /// [`Log::open`], taking the records up to `at` as checked when the log still holds them (`at` came
    /// from [`Log::position`] of this log, e.g. through a checkpoint): only the last of them and the
    /// records after it are read, and a torn tail after them is cut as usual. Otherwise the whole log
    /// is checked, as by [`Log::open`].
    pub fn open_resuming(dir: &Path, at: &Position) -> Result<(Log, Resume), LogError> {
        Log::open_with(dir, Some(at)).map(|(log, resume)| (log, resume.expect("asked to resume")))
    }

    fn open_with(dir: &Path, at: Option<&Position>) -> Result<(Log, Option<Resume>), LogError> {
        fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        let lock = try_lock(&dir.join(LOCK_FILE))?.ok_or_else(|| LogError::Locked { dir: dir.to_owned() })?;

        let path = dir.join(EVENTS_FILE);
        let mut file =
            OpenOptions::new().read(true).append(true).create(true).open(&path).map_err(io_err("opening", &path))?;
        let len = file.metadata().map_err(io_err("reading the size of", &path))?.len();
        if len < MAGIC.len() as u64 {
            let mut head = Vec::new();
            (&file).read_to_end(&mut head).map_err(io_err("reading", &path))?;
            if !MAGIC.starts_with(&head) {
                return Err(LogError::NotALog { path, found: head });
            }
            // New, or a crash while it was being created: (re)write the header and make the file's
            // existence durable before any event depends on it.
            file.set_len(0).map_err(io_err("truncating", &path))?;
            file.write_all(MAGIC).map_err(io_err("writing", &path))?;
            file.sync_all().map_err(io_err("syncing", &path))?;
            sync_dir(dir)?;
            // `create_dir_all` may have made `dir` itself just now.
            sync_dir(dir.parent().filter(|p| !p.as_os_str().is_empty()).unwrap_or(Path::new(".")))?;
        }

        let scan = scan(&path, &file, at, u64::MAX)?;
        scan.refuse_damage(dir, &path)?;
        let mut opened = scan.report();
        if opened.torn_bytes > 0 {
            opened.torn_copy = Some(keep_torn_tail(dir, &path, scan.end.offset)?);
            file.set_len(scan.end.offset).map_err(io_err("cutting the torn tail of", &path))?;
            file.sync_all().map_err(io_err("syncing", &path))?;
        }
        let resume = scan.resume;
        Ok((Log::new(dir, path, file, Some(lock), scan, opened), resume))
    }

    fn new(dir: &Path, path: PathBuf, file: File, lock: Option<File>, scan: Scan, opened: OpenReport) -> Log {
        Log {
            dir: dir.to_owned(),
            path,
            file,
            lock,
            dead: None,
            end: scan.end,
            last_recorded: scan.last_recorded,
            opened,
            poisoned: false,
        }
    }

    /// Cuts the log at its first damaged record, wherever it lies, keeping a copy of every byte cut
    /// (`cut-<offset>-<micros>.bin` beside the log). For a log that [`Log::open`] refuses with
    /// [`LogError::Damaged`]: the records after the damage are lost from the log (they stay in the
    /// copy). A log without damage is left as it is. Takes the writer lock.
    pub fn repair(dir: &Path) -> Result<Repair, LogError> {
        let _lock = try_lock(&dir.join(LOCK_FILE))?.ok_or_else(|| LogError::Locked { dir: dir.to_owned() })?;
        let path = dir.join(EVENTS_FILE);
        let file = OpenOptions::new().read(true).write(true).open(&path).map_err(io_err("opening", &path))?;
        let scan = scan(&path, &file, None, u64::MAX)?;
        let Some((stop, next_record)) = scan.damage else {
            return Ok(Repair { records: scan.end.records, cut: None });
        };
        // Whole records in what is cut (from the first one after the damage, up to further damage).
        let lost = match next_record {
            None => 0,
            Some(from) => frame::count_records(&path, from, scan.file_len).map_err(io_err("reading", &path))?,
        };
        let copy = keep_cut(dir, &path, stop.offset, "cut")?;
        file.set_len(stop.offset).map_err(io_err("cutting", &path))?;
        file.sync_all().map_err(io_err("syncing", &path))?;
        Ok(Repair {
            records: scan.end.records,
            cut: Some(Cut {
                offset: stop.offset,
                bytes: scan.file_len - stop.offset,
                detail: stop.damage.describe(),
                records_after: lost,
                copy,
            }),
        })
    }

    /// Opens an existing log for reading only: no lock, nothing created or cut. A torn tail is
    /// ignored, and so is anything a writer appends after this call; reopen to see it.
    pub fn open_read(dir: &Path) -> Result<Log, LogError> {
        Log::open_read_with(dir, None, u64::MAX).map(|(log, _)| log)
    }

    /// [`Log::open_read`] as [`Log::open_resuming`] does it: the records up to `at` are taken as
    /// checked when the log still holds them.
    pub fn open_read_resuming(dir: &Path, at: &Position) -> Result<(Log, Resume), LogError> {
        Log::open_read_with(dir, Some(at), u64::MAX).map(|(log, resume)| (log, resume.expect("asked to resume")))
    }

    /// [`Log::open_read`] of the first `records` records only: the log as it stood when it held that
    /// many (all of them when it holds fewer). For benchmarks and tests of resuming.
    pub fn open_read_prefix(dir: &Path, records: u64) -> Result<Log, LogError> {
        Log::open_read_with(dir, None, records).map(|(log, _)| log)
    }

    fn open_read_with(dir: &Path, at: Option<&Position>, limit: u64) -> Result<(Log, Option<Resume>), LogError> {
        let path = dir.join(EVENTS_FILE);
        let file = File::open(&path).map_err(io_err("opening", &path))?;
        let scan = scan(&path, &file, at, limit)?;
        scan.refuse_damage(dir, &path)?;
        let opened = scan.report();
        let resume = scan.resume;
        Ok((Log::new(dir, path, file, None, scan, opened), resume))
    }

    /// The log directory.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// What opening found (records, torn tail).
    pub fn opened_report(&self) -> &OpenReport {
        &self.opened
    }

    /// Records in the log, including those appended through this `Log`.
    pub fn records(&self) -> u64 {
        self.end.records
    }

    /// Same as [`Log::records`].
    pub fn len(&self) -> u64 {
        self.end.records
    }

    pub fn is_empty(&self) -> bool {
        self.end.records == 0
    }

    /// Bytes of `events.log` that hold checked records (header included).
    pub fn byte_len(&self) -> u64 {
        self.end.offset
    }

    /// The point after the last record, including those appended through this `Log`.
    pub fn position(&self) -> Position {
        self.end
    }

    /// The `recordedtime` of the last record, UTC microseconds.
    pub fn last_recorded(&self) -> Option<i64> {
        self.last_recorded
    }

    /// Stamps each event's `recordedtime` and appends them all, durably, in order.
    ///
    /// Stamps are UTC microseconds, strictly increasing over the whole log even if the clock steps
    /// back. On `Ok` the events are on disk. On `Err` the events keep their previous `recordedtime`,
    /// none of them is acknowledged, and (after an I/O error) this `Log` refuses further appends.
    pub fn append(&mut self, events: &mut [Event]) -> Result<(), LogError> {
        self.append_at(events, now_micros())
    }

    /// [`Log::append`] on a clock the caller reads: `now` (UTC microseconds) stands for the system
    /// clock, so the stamps are `now`, or just after the last record's when that is later. A
    /// simulation that records a history as it happened (the demo) passes its own clock.
    pub fn append_at(&mut self, events: &mut [Event], now: i64) -> Result<(), LogError> {
        self.writable()?;
        if events.is_empty() {
            return Ok(());
        }
        let before: Vec<Option<i64>> = events.iter().map(|e| e.recordedtime).collect();
        let mut last = self.last_recorded;
        let mut end = self.end;
        let mut buf = Vec::with_capacity(events.len() * 512);
        for event in events.iter_mut() {
            let stamp = last.map_or(now, |l| now.max(l + 1));
            event.recordedtime = Some(stamp);
            last = Some(stamp);
            let json = event.to_json();
            if json.len() > frame::MAX_RECORD {
                for (event, old) in events.iter_mut().zip(&before) {
                    event.recordedtime = *old;
                }
                return Err(LogError::TooLarge { bytes: json.len() });
            }
            end.last_crc = frame::encode(&mut buf, json.as_bytes());
            end.last_len = json.len() as u32;
        }
        end.records += events.len() as u64;
        end.offset += buf.len() as u64;
        // One write, then one fdatasync: the batch costs one disk flush however many events it has.
        let written = self.file.write_all(&buf).and_then(|()| self.file.sync_data());
        if let Err(e) = written {
            for (event, old) in events.iter_mut().zip(&before) {
                event.recordedtime = *old;
            }
            // Part of the batch may have reached the file. Cutting it back keeps later appends from
            // landing behind garbage, but after a failed write or fsync the state of the file is not
            // trustworthy, so the next append must go through a fresh open and its scan.
            self.poisoned = true;
            let _ = self.file.set_len(self.end.offset).and_then(|()| self.file.sync_all());
            return Err(io_err("appending to", &self.path)(e));
        }
        self.end = end;
        self.last_recorded = last;
        Ok(())
    }

    /// Appends one refused input line with its reason to `dead-letter.ndjson` and syncs it.
    pub fn dead_letter(&mut self, raw_line: &[u8], refusal: &Refusal) -> Result<(), LogError> {
        self.dead_letters(&[(raw_line, refusal)])
    }

    /// Appends refused input lines with their reasons, one JSON object per line:
    /// `{"refused_at": RFC 3339, "reason": {event_id, field, rule, detail}, "event": "<raw line>"}`.
    /// The raw line is kept as a JSON string (invalid UTF-8 replaced by U+FFFD). One write, one sync.
    pub fn dead_letters(&mut self, refused: &[(&[u8], &Refusal)]) -> Result<(), LogError> {
        #[derive(Serialize)]
        struct Line<'a> {
            refused_at: &'a str,
            reason: &'a Refusal,
            event: &'a str,
        }
        self.writable()?;
        if refused.is_empty() {
            return Ok(());
        }
        let refused_at = time::format_instant(now_micros());
        let path = self.dir.join(DEAD_LETTER_FILE);
        let dead = match &mut self.dead {
            Some(dead) => dead,
            None => self.dead.insert(open_dead_letters(&self.dir, &path)?),
        };
        let mut buf = Vec::new();
        if dead.needs_newline {
            buf.push(b'\n');
        }
        for (raw, reason) in refused {
            let event = String::from_utf8_lossy(raw);
            let line = Line { refused_at: &refused_at, reason, event: &event };
            serde_json::to_writer(&mut buf, &line).expect("a dead letter always serialises");
            buf.push(b'\n');
        }
        let written = dead.file.write_all(&buf).and_then(|()| dead.file.sync_data());
        dead.needs_newline = written.is_err();
        written.map_err(io_err("appending to", &path))
    }

    /// Calls `f` with every event in log order, decoding on `available_parallelism()` worker threads;
    /// `f` runs on the calling thread. Stops at the first record that is damaged or does not decode
    /// (every event before it has been passed to `f`).
    pub fn replay(&self, f: impl FnMut(Event)) -> Result<ReplayStats, LogError> {
        self.replay_from(&Position::START, f)
    }

    /// [`Log::replay`] of the records after `from`, a position of this log ([`Log::position`], or one
    /// that [`Log::open_resuming`] found the log holds).
    pub fn replay_from(&self, from: &Position, mut f: impl FnMut(Event)) -> Result<ReplayStats, LogError> {
        let records = replay::run(self.framer(from.offset)?, &self.path, &|event| event, |events| {
            events.drain(..).for_each(&mut f);
        })?;
        Ok(ReplayStats { records, bytes: self.end.offset })
    }

    /// [`Log::replay_from`] for a caller that only reads each event: `digest` runs on the decoding
    /// threads (whatever it computes is off the calling thread), `f` gets each digest in log order on
    /// the calling thread, and the digests are dropped on the decoding threads.
    pub fn replay_digested<T: Send>(
        &self,
        from: &Position,
        digest: impl Fn(Event) -> T + Sync,
        mut f: impl FnMut(&T),
    ) -> Result<ReplayStats, LogError> {
        let records =
            replay::run(self.framer(from.offset)?, &self.path, &digest, |items| items.iter().for_each(&mut f))?;
        Ok(ReplayStats { records, bytes: self.end.offset })
    }

    /// Calls `f` with every record's payload (the event's JSON) in log order, on this thread, with
    /// framing and checksums checked but nothing decoded. For tools and benchmarks.
    pub fn replay_raw(&self, mut f: impl FnMut(&[u8])) -> Result<ReplayStats, LogError> {
        let mut framer = self.framer(MAGIC.len() as u64)?;
        let mut records = 0;
        while let Some(chunk) = framer.next_chunk().map_err(io_err("reading", &self.path))? {
            for payload in &chunk.payloads {
                f(&chunk.bytes[payload.clone()]);
            }
            records += chunk.payloads.len() as u64;
            framer.recycle(chunk.bytes);
        }
        if let Some(stop) = framer.stop() {
            return Err(LogError::Corrupt {
                path: self.path.clone(),
                offset: stop.offset,
                detail: stop.damage.describe(),
            });
        }
        Ok(ReplayStats { records, bytes: self.end.offset })
    }

    /// A framer over the records this `Log` knows to be good from `start`, on its own file handle so
    /// that reading never moves the writer's position.
    fn framer(&self, start: u64) -> Result<Framer, LogError> {
        let mut file = File::open(&self.path).map_err(io_err("opening", &self.path))?;
        file.seek(SeekFrom::Start(start)).map_err(io_err("seeking in", &self.path))?;
        // A file shorter than `end` shows up as an incomplete record: reported, not silently short.
        Ok(Framer::new(file, start, self.end.offset))
    }

    fn writable(&self) -> Result<(), LogError> {
        if self.lock.is_none() {
            return Err(LogError::ReadOnly);
        }
        if self.poisoned {
            return Err(LogError::Poisoned);
        }
        Ok(())
    }
}

/// What a scan of `events.log` at open found.
struct Scan {
    file_len: u64,
    /// After the last good record.
    end: Position,
    /// Where reading stopped before the end of the file, and the first whole record after that
    /// point when there is one (then the damage is in the middle of the log).
    damage: Option<(frame::Stop, Option<u64>)>,
    last_recorded: Option<i64>,
    /// Whether the log held the position the scan was asked to resume from.
    resume: Option<Resume>,
}

impl Scan {
    /// An error when the scan stopped at damage in the middle of the log (whole records after it).
    fn refuse_damage(&self, dir: &Path, path: &Path) -> Result<(), LogError> {
        match self.damage {
            Some((stop, Some(next_record))) => Err(LogError::Damaged {
                path: path.to_owned(),
                dir: dir.to_owned(),
                offset: stop.offset,
                next_record,
                detail: stop.damage.describe(),
            }),
            _ => Ok(()),
        }
    }

    fn report(&self) -> OpenReport {
        OpenReport { records: self.end.records, torn_bytes: self.file_len - self.end.offset, torn_copy: None }
    }
}

/// Checks the header and the records of an open log file: every record, or only the last one before
/// `at` and those after it when the file still holds `at`. Stops after `limit` records.
fn scan(path: &Path, file: &File, at: Option<&Position>, limit: u64) -> Result<Scan, LogError> {
    let file_len = file.metadata().map_err(io_err("reading the size of", path))?.len();
    let mut reader = File::open(path).map_err(io_err("opening", path))?;
    let mut head = Vec::with_capacity(MAGIC.len());
    (&mut reader).take(MAGIC.len() as u64).read_to_end(&mut head).map_err(io_err("reading", path))?;
    if head != MAGIC {
        return Err(LogError::NotALog { path: path.to_owned(), found: head });
    }
    let mut end = Position::START;
    // The last payload seen, copied out because its chunk's buffer is reused.
    let mut last: Option<(u64, Vec<u8>)> = None;
    let resume = match at {
        None => None,
        Some(at) => Some(match holds(&mut reader, at, file_len).map_err(io_err("reading", path))? {
            Ok(payload) => {
                end = *at;
                last = payload.map(|p| (at.offset - (RECORD_HEADER + p.len()) as u64, p));
                Resume::Holds
            }
            Err(why) => Resume::Differs(why),
        }),
    };
    reader.seek(SeekFrom::Start(end.offset)).map_err(io_err("seeking in", path))?;
    let mut framer = Framer::new(reader, end.offset, file_len);
    while end.records < limit
        && let Some(chunk) = framer.next_chunk().map_err(io_err("reading", path))?
    {
        let take = chunk.payloads.len().min(usize::try_from(limit - end.records).unwrap_or(usize::MAX));
        let tail = &chunk.payloads[take - 1];
        let header = &chunk.bytes[tail.start - RECORD_HEADER..tail.start];
        end = Position {
            records: end.records + take as u64,
            offset: chunk.base + tail.end as u64,
            last_len: tail.len() as u32,
            last_crc: u32::from_le_bytes(header[4..].try_into().expect("4 bytes")),
        };
        last = Some((chunk.record_offset(tail), chunk.bytes[tail.clone()].to_vec()));
        framer.recycle(chunk.bytes);
    }
    let damage = match framer.stop() {
        Some(stop) if end.records < limit => {
            let next =
                frame::find_record(&mut File::open(path).map_err(io_err("opening", path))?, stop.offset + 1, file_len)
                    .map_err(io_err("reading", path))?;
            Some((stop, next))
        }
        _ => None,
    };
    let last_recorded = match last {
        None => None,
        Some((offset, payload)) => {
            let event = Event::from_json_recorded(&payload).map_err(|source| LogError::Undecodable {
                path: path.to_owned(),
                offset,
                source,
            })?;
            event.recordedtime
        }
    };
    Ok(Scan { file_len, end, damage, last_recorded, resume })
}

/// Whether the file still holds the records up to `at`, judged by the last of them: `Ok` with its
/// payload (`None` at the start of the log), or why not.
fn holds(file: &mut File, at: &Position, file_len: u64) -> io::Result<Result<Option<Vec<u8>>, &'static str>> {
    if at.records == 0 {
        return Ok(if *at == Position::START { Ok(None) } else { Err("the position is not one of a log") });
    }
    let record = RECORD_HEADER as u64 + u64::from(at.last_len);
    if at.offset > file_len {
        return Ok(Err("the log is shorter than the position (it was cut or replaced)"));
    }
    if at.offset < MAGIC.len() as u64 + record || at.last_len as usize > frame::MAX_RECORD {
        return Ok(Err("the position is not one of a log"));
    }
    let mut header = [0; RECORD_HEADER];
    let mut payload = vec![0; at.last_len as usize];
    file.seek(SeekFrom::Start(at.offset - record))?;
    file.read_exact(&mut header)?;
    file.read_exact(&mut payload)?;
    let same = header[..4] == at.last_len.to_le_bytes()
        && header[4..] == at.last_crc.to_le_bytes()
        && crc32fast::hash(&payload) == at.last_crc;
    if !same {
        return Ok(Err("the record before the position is not the one it was taken after (the log was replaced)"));
    }
    Ok(Ok(Some(payload)))
}

/// Copies the bytes from `from` to the end of `path` into a new file beside it, durably, before they
/// are cut. A crash's torn tail is a partial batch that was never acknowledged, but a damaged record
/// in the middle would take every later record with it: keeping the bytes leaves that recoverable.
fn keep_torn_tail(dir: &Path, path: &Path, from: u64) -> Result<PathBuf, LogError> {
    keep_cut(dir, path, from, "torn-tail")
}

/// Copies the bytes of `path` from `from` on into `<prefix>-<from>-<micros>.bin` in `dir`, durably.
fn keep_cut(dir: &Path, path: &Path, from: u64, prefix: &str) -> Result<PathBuf, LogError> {
    let copy = dir.join(format!("{prefix}-{from}-{}.bin", now_micros()));
    let mut src = File::open(path).map_err(io_err("opening", path))?;
    src.seek(SeekFrom::Start(from)).map_err(io_err("seeking in", path))?;
    let mut dst = OpenOptions::new().write(true).create_new(true).open(&copy).map_err(io_err("creating", &copy))?;
    io::copy(&mut src, &mut dst).map_err(io_err("writing", &copy))?;
    dst.sync_all().map_err(io_err("syncing", &copy))?;
    sync_dir(dir)?;
    Ok(copy)
}

fn open_dead_letters(dir: &Path, path: &Path) -> Result<DeadLetters, LogError> {
    let existed = path.exists();
    let mut file =
        OpenOptions::new().read(true).append(true).create(true).open(path).map_err(io_err("opening", path))?;
    let len = file.metadata().map_err(io_err("reading the size of", path))?.len();
    let mut needs_newline = false;
    if len > 0 {
        // A crash mid-line leaves a partial last line; the next line must not be glued onto it.
        let mut last = [0u8];
        file.seek(SeekFrom::Start(len - 1)).map_err(io_err("seeking in", path))?;
        file.read_exact(&mut last).map_err(io_err("reading", path))?;
        needs_newline = last[0] != b'\n';
    }
    if !existed {
        sync_dir(dir)?;
    }
    Ok(DeadLetters { file, needs_newline })
}

/// Makes a new directory entry durable (on Unix a file's creation is only durable once its directory is synced).
fn sync_dir(dir: &Path) -> Result<(), LogError> {
    #[cfg(unix)]
    File::open(dir).and_then(|d| d.sync_all()).map_err(io_err("syncing", dir))?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// UTC now in microseconds.
fn now_micros() -> i64 {
    let since = SystemTime::now().duration_since(UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}
