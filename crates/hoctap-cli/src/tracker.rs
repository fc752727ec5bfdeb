//! The embedded tracker: the log on disk folded into the in-memory engine.

use crate::progress;
use anyhow::{Context, Result};
use hoctap_domain::Engine;
use hoctap_log::Log;
use std::path::Path;

pub struct Tracker {
    pub engine: Engine,
    pub log: Log,
}

impl Tracker {
    /// Opens the log for reading and replays it (for reviews).
    pub fn load(dir: &Path) -> Result<Tracker> {
        if !dir.join("events.log").exists() {
            anyhow::bail!("no event log in {} (run `hoctap ingest` first, or pass --data-dir)", dir.display());
        }
        let log = Log::open_read(dir).with_context(|| format!("opening the log in {}", dir.display()))?;
        Self::replay(log)
    }

    /// Opens the log for writing (cutting a torn tail) and replays it (for ingest).
    pub fn open(dir: &Path) -> Result<Tracker> {
        let log = Log::open(dir).with_context(|| format!("opening the log in {}", dir.display()))?;
        let report = log.opened_report();
        if report.torn_bytes > 0 {
            eprintln!(
                "note: cut a torn tail of {} bytes from {} (an interrupted write)",
                report.torn_bytes,
                dir.display()
            );
        }
        Self::replay(log)
    }

    fn replay(log: Log) -> Result<Tracker> {
        let mut engine = Engine::new();
        engine.reserve(log.len() as usize);
        let bar = progress::items(log.len(), "replay");
        let mut n = 0u64;
        log.replay(|event| {
            engine.apply(&event);
            n += 1;
            if n.is_multiple_of(65_536) {
                bar.set_position(n);
            }
        })
        .context("replaying the log")?;
        engine.pack();
        bar.finish_and_clear();
        Ok(Tracker { engine, log })
    }
}
