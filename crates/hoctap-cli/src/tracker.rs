//! The embedded tracker: the log on disk folded into the in-memory engine, resumed from the checkpoint
//! beside the log when it still matches the log, and checkpointed again after the work.

use crate::progress;
use anyhow::{Context, Result};
use hoctap_domain::{CHECKPOINT_VERSION, Digest, Engine};
use hoctap_log::checkpoint::{self, Unusable};
use hoctap_log::{Log, LogError, Position, Resume};
use std::path::Path;
use std::time::{Duration, Instant};

/// A checkpoint is written again once the events it lacks are at least 1/`REWRITE_FRACTION` of those it
/// holds. Writing costs in proportion to the whole state, replaying the events it lacks in
/// proportion to them: rewriting after every few events would make each small ingest pay for the
/// whole state, never rewriting would make every command replay a growing tail.
const REWRITE_FRACTION: u64 = 16;

pub struct Tracker {
    pub engine: Engine,
    pub log: Log,
    dir: std::path::PathBuf,
    /// Where the checkpoint on disk stands, when the engine was resumed from it.
    checkpoint: Option<Position>,
    pub started: Started,
}

/// How the engine was brought up to the end of the log.
#[derive(Clone, Copy, Debug, Default)]
pub struct Started {
    /// Reading and decoding the checkpoint (also when it then turned out not to match the log).
    pub checkpoint_load: Duration,
    /// Records folded after it (the whole log when no checkpoint was used), and how long that took.
    pub replayed: u64,
    pub replay: Duration,
}

impl Tracker {
    /// Opens the log for reading and folds it (for reviews).
    pub fn load(dir: &Path) -> Result<Tracker> {
        if !dir.join(hoctap_log::EVENTS_FILE).exists() {
            anyhow::bail!("no event log in {} (run `hoctap ingest` first, or pass --data-dir)", dir.display());
        }
        Self::start(dir, |at| match at {
            None => Ok((Log::open_read(dir)?, None)),
            Some(at) => Log::open_read_resuming(dir, at).map(|(log, resume)| (log, Some(resume))),
        })
    }

    /// Opens the log for writing (cutting a torn tail) and folds it (for ingest).
    pub fn open(dir: &Path) -> Result<Tracker> {
        let tracker = Self::start(dir, |at| match at {
            None => Ok((Log::open(dir)?, None)),
            Some(at) => Log::open_resuming(dir, at).map(|(log, resume)| (log, Some(resume))),
        })?;
        let report = tracker.log.opened_report();
        if report.torn_bytes > 0 {
            eprintln!(
                "note: cut a torn tail of {} bytes from {} (an interrupted write)",
                report.torn_bytes,
                dir.display()
            );
        }
        Ok(tracker)
    }

    /// Loads the checkpoint when there is a usable one, opens the log with `open` (resuming at the
    /// checkpoint's position, if any) and folds the records the engine does not hold yet.
    fn start(
        dir: &Path,
        open: impl FnOnce(Option<&Position>) -> Result<(Log, Option<Resume>), LogError>,
    ) -> Result<Tracker> {
        let note = |why: &dyn std::fmt::Display| {
            eprintln!("note: ignoring the checkpoint in {} ({why}); replaying the whole log", dir.display());
        };
        let t = Instant::now();
        let mut missing = false;
        let resumed = match checkpoint::read(dir, CHECKPOINT_VERSION) {
            Ok(read) => match Engine::from_checkpoint(read.payload()) {
                Ok(engine) => Some((read.position, engine)),
                Err(e) => {
                    note(&e);
                    None
                }
            },
            Err(Unusable::Missing) => {
                missing = true;
                None
            }
            Err(e) => {
                note(&e);
                None
            }
        };
        let checkpoint_load = t.elapsed();
        let (log, resume) = open(resumed.as_ref().map(|(at, _)| at))
            .with_context(|| format!("opening the log in {}", dir.display()))?;
        let (mut engine, from) = match (resumed, resume) {
            (Some((at, engine)), Some(Resume::Holds)) => (engine, Some(at)),
            (Some(_), Some(Resume::Differs(why))) => {
                note(&format_args!("it does not match the log: {why}"));
                (Engine::new(), None)
            }
            _ => (Engine::new(), None),
        };
        if missing && !log.is_empty() {
            eprintln!("note: no checkpoint in {} yet; replaying the whole log", dir.display());
        }

        let t = Instant::now();
        let start = from.unwrap_or(Position::START);
        let tail = log.len() - start.records;
        engine.reserve(tail as usize);
        let bar = progress::items(tail, "replay");
        fold(&mut engine, &log, &start, |n| bar.set_position(n)).context("replaying the log")?;
        // A loaded state is packed already; a few events folded onto it do not scatter it.
        if worth_writing(from.map(|at| at.records), log.len()) {
            engine.pack();
        }
        bar.finish_and_clear();
        let started = Started { checkpoint_load, replayed: tail, replay: t.elapsed() };
        Ok(Tracker { engine, log, dir: dir.to_owned(), checkpoint: from, started })
    }

    /// Takes the log's writer lock for a write, as a server holding the engine between requests does
    /// (`hoctap serve --approvals`): reopens the log for writing where this tracker stands and folds
    /// what other processes appended since. [`Tracker::release_writer`] gives the lock back. When
    /// another process writes the log now, the error is [`LogError::Locked`].
    pub fn take_writer(&mut self) -> Result<()> {
        let at = self.log.position();
        let (log, resume) = Log::open_resuming(&self.dir, &at)?;
        if let Resume::Differs(why) = resume {
            anyhow::bail!(
                "the log in {} no longer holds what this process folded ({why}); restart it",
                self.dir.display()
            );
        }
        fold(&mut self.engine, &log, &at, |_| {}).context("folding what was appended to the log")?;
        self.log = log;
        Ok(())
    }

    /// Gives the writer lock [`Tracker::take_writer`] took back, keeping the log open for reading.
    pub fn release_writer(&mut self) -> Result<()> {
        let (log, _) = Log::open_read_resuming(&self.dir, &self.log.position())?;
        self.log = log;
        Ok(())
    }

    /// Writes a checkpoint of the engine as of the end of the log, when the one on disk lacks enough of
    /// it (see [`REWRITE_FRACTION`]). A checkpoint is only a shortcut: when it cannot be written the
    /// command still succeeds, and says so on standard error.
    pub fn save_checkpoint(&mut self) {
        let at = self.log.position();
        if !worth_writing(self.checkpoint.map(|c| c.records), at.records) {
            return;
        }
        let state = self.engine.to_checkpoint();
        match checkpoint::write(&self.dir, &at, CHECKPOINT_VERSION, &state) {
            Ok(Some(_)) => self.checkpoint = Some(at),
            // Another process is writing one right now; the next command can write it again.
            Ok(None) => {}
            Err(e) => eprintln!("note: could not write a checkpoint ({e}); the next command replays the log again"),
        }
    }
}

/// Folds the records of `log` after `from` into `engine`, telling `progress` the count now and then.
pub fn fold(engine: &mut Engine, log: &Log, from: &Position, mut progress: impl FnMut(u64)) -> Result<(), LogError> {
    let mut n = 0u64;
    log.replay_digested(
        from,
        |event| {
            let digest = Digest::of(&event);
            (event, digest)
        },
        |(event, digest)| {
            engine.apply_digested(event, digest);
            n += 1;
            if n.is_multiple_of(65_536) {
                progress(n);
            }
        },
    )?;
    Ok(())
}

/// Whether a checkpoint of `records` events is worth writing over one of `on_disk` events.
fn worth_writing(on_disk: Option<u64>, records: u64) -> bool {
    match on_disk {
        None => records > 0,
        Some(old) => records > old && (records - old) * REWRITE_FRACTION >= old,
    }
}

#[cfg(test)]
mod tests {
    use super::worth_writing;

    #[test]
    fn a_checkpoint_is_rewritten_once_it_lacks_a_sixteenth_of_its_events() {
        assert!(!worth_writing(None, 0), "nothing to keep");
        assert!(worth_writing(None, 1));
        assert!(!worth_writing(Some(1600), 1600), "nothing new");
        assert!(!worth_writing(Some(1600), 1699));
        assert!(worth_writing(Some(1600), 1700));
        assert!(worth_writing(Some(0), 1));
    }
}
