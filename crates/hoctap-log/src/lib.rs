//! The embedded, append-only, crash-safe event log of the no-server mode.
//!
//! A log is a directory holding:
//!
//! - `events.log`: the accepted events, one checksummed record each (format in [`frame`]);
//! - `dead-letter.ndjson`: refused input lines with the reason, one JSON object per line;
//! - `LOCK`: the advisory lock a writer holds, so that two `hoctap ingest` cannot interleave;
//! - `torn-tail-<offset>-<micros>.bin`: bytes a writer cut off at open, kept for inspection.
//!
//! Durability contract: when [`Log::append`] returns `Ok`, the events are on disk (`fdatasync`). A crash
//! in the middle of an append leaves at most a partial record at the end of the file; the next
//! [`Log::open`] finds the first record that is incomplete or fails its checksum and cuts the file
//! there (the "torn tail"), so every acknowledged event survives and nothing half-written is read.
//!
//! Replay decodes on a pool of worker threads and hands events to the caller in log order.

pub mod frame;
mod replay;

use frame::{Framer, MAGIC};
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
    /// During replay, a record that was whole when the log was opened no longer is: the file was
    /// changed underneath. Stop; reopening cuts the damage off as a torn tail (and keeps a copy).
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

fn io_err(op: &'static str, path: &Path) -> impl FnOnce(io::Error) -> LogError {
    move |source| LogError::Io { op, path: path.to_owned(), source }
}

/// What opening found.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OpenReport {
    /// Whole, checked records.
    pub records: u64,
    /// Bytes after the last good record: cut off by [`Log::open`], left alone by [`Log::open_read`].
    pub torn_bytes: u64,
    /// Where [`Log::open`] kept a copy of the bytes it cut.
    pub torn_copy: Option<PathBuf>,
}

/// Counts from one replay.
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq)]
pub struct ReplayStats {
    pub records: u64,
    /// Bytes of the file read, header included.
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
    /// End of the last good record: everything before it is checked, everything after is not ours.
    end: u64,
    records: u64,
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
        fs::create_dir_all(dir).map_err(io_err("creating", dir))?;
        let lock_path = dir.join(LOCK_FILE);
        let lock = OpenOptions::new()
            .read(true)
            .write(true)
            .create(true)
            .truncate(false)
            .open(&lock_path)
            .map_err(io_err("opening", &lock_path))?;
        match lock.try_lock() {
            Ok(()) => {}
            Err(TryLockError::WouldBlock) => return Err(LogError::Locked { dir: dir.to_owned() }),
            Err(TryLockError::Error(e)) => return Err(io_err("locking", &lock_path)(e)),
        }

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

        let scan = scan(&path, &file)?;
        let mut opened = OpenReport { records: scan.records, torn_bytes: scan.file_len - scan.end, torn_copy: None };
        if opened.torn_bytes > 0 {
            opened.torn_copy = Some(keep_torn_tail(dir, &path, scan.end)?);
            file.set_len(scan.end).map_err(io_err("cutting the torn tail of", &path))?;
            file.sync_all().map_err(io_err("syncing", &path))?;
        }
        Ok(Log {
            dir: dir.to_owned(),
            path,
            file,
            lock: Some(lock),
            dead: None,
            end: scan.end,
            records: scan.records,
            last_recorded: scan.last_recorded,
            opened,
            poisoned: false,
        })
    }

    /// Opens an existing log for reading only: no lock, nothing created or cut. A torn tail is
    /// ignored, and so is anything a writer appends after this call; reopen to see it.
    pub fn open_read(dir: &Path) -> Result<Log, LogError> {
        let path = dir.join(EVENTS_FILE);
        let file = File::open(&path).map_err(io_err("opening", &path))?;
        let scan = scan(&path, &file)?;
        Ok(Log {
            dir: dir.to_owned(),
            path,
            file,
            lock: None,
            dead: None,
            end: scan.end,
            records: scan.records,
            last_recorded: scan.last_recorded,
            opened: OpenReport { records: scan.records, torn_bytes: scan.file_len - scan.end, torn_copy: None },
            poisoned: false,
        })
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
        self.records
    }

    /// Same as [`Log::records`].
    pub fn len(&self) -> u64 {
        self.records
    }

    pub fn is_empty(&self) -> bool {
        self.records == 0
    }

    /// Bytes of `events.log` that hold checked records (header included).
    pub fn byte_len(&self) -> u64 {
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
        self.writable()?;
        if events.is_empty() {
            return Ok(());
        }
        let before: Vec<Option<i64>> = events.iter().map(|e| e.recordedtime).collect();
        let now = now_micros();
        let mut last = self.last_recorded;
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
            frame::encode(&mut buf, json.as_bytes());
        }
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
            let _ = self.file.set_len(self.end).and_then(|()| self.file.sync_all());
            return Err(io_err("appending to", &self.path)(e));
        }
        self.end += buf.len() as u64;
        self.records += events.len() as u64;
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
        let records = replay::run(self.framer()?, &self.path, f)?;
        Ok(ReplayStats { records, bytes: self.end })
    }

    /// Calls `f` with every record's payload (the event's JSON) in log order, on this thread, with
    /// framing and checksums checked but nothing decoded. For tools and benchmarks.
    pub fn replay_raw(&self, mut f: impl FnMut(&[u8])) -> Result<ReplayStats, LogError> {
        let mut framer = self.framer()?;
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
        Ok(ReplayStats { records, bytes: self.end })
    }

    /// A framer over the records this `Log` knows to be good, on its own file handle so that reading
    /// never moves the writer's position.
    fn framer(&self) -> Result<Framer, LogError> {
        let mut file = File::open(&self.path).map_err(io_err("opening", &self.path))?;
        let start = MAGIC.len() as u64;
        file.seek(SeekFrom::Start(start)).map_err(io_err("seeking in", &self.path))?;
        // A file shorter than `end` shows up as an incomplete record: reported, not silently short.
        Ok(Framer::new(file, start, self.end))
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
    /// End of the last good record.
    end: u64,
    records: u64,
    last_recorded: Option<i64>,
}

/// Checks the header and every record of an open log file.
fn scan(path: &Path, file: &File) -> Result<Scan, LogError> {
    let file_len = file.metadata().map_err(io_err("reading the size of", path))?.len();
    let mut reader = File::open(path).map_err(io_err("opening", path))?;
    let mut head = Vec::with_capacity(MAGIC.len());
    (&mut reader).take(MAGIC.len() as u64).read_to_end(&mut head).map_err(io_err("reading", path))?;
    if head != MAGIC {
        return Err(LogError::NotALog { path: path.to_owned(), found: head });
    }
    let mut framer = Framer::new(reader, MAGIC.len() as u64, file_len);
    let mut records = 0;
    let mut end = MAGIC.len() as u64;
    // The last payload seen, copied out because its chunk's buffer is reused.
    let mut last: Option<(u64, Vec<u8>)> = None;
    while let Some(chunk) = framer.next_chunk().map_err(io_err("reading", path))? {
        records += chunk.payloads.len() as u64;
        let tail = chunk.payloads.last().expect("chunks are never empty");
        last = Some((chunk.record_offset(tail), chunk.bytes[tail.clone()].to_vec()));
        end = chunk.base + chunk.bytes.len() as u64;
        framer.recycle(chunk.bytes);
    }
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
    Ok(Scan { file_len, end, records, last_recorded })
}

/// Copies the bytes from `from` to the end of `path` into a new file beside it, durably, before they
/// are cut. A crash's torn tail is a partial batch that was never acknowledged, but a damaged record
/// in the middle would take every later record with it: keeping the bytes leaves that recoverable.
fn keep_torn_tail(dir: &Path, path: &Path, from: u64) -> Result<PathBuf, LogError> {
    let copy = dir.join(format!("torn-tail-{from}-{}.bin", now_micros()));
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
