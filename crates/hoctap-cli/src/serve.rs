//! `hoctap serve`: the dashboard and the HTTP API's reviews, units, series and approvals, answered by
//! the embedded engine. The log is folded once at start (from the checkpoint when it matches); events
//! ingested afterwards are seen after a restart, or folded in when the server records an approval.
//!
//! With `--approvals` the server also records approvals (`POST /v1/approvals`, the dashboard's
//! "approve this review" form) through the path of `hoctap approve`: it takes the log's writer lock
//! for each one only, so `hoctap ingest` keeps working beside it.

use crate::approve::{self, Outcome};
use crate::tracker::Tracker;
use anyhow::{Context, Result};
use hoctap_api::{NotRecorded, Recorded, Recorder};
use hoctap_domain::event::Decision;
use hoctap_domain::{Engine, Query};
use hoctap_log::LogError;
use std::path::Path;
use std::process::ExitCode;
use std::sync::Mutex;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; open `http://ADDRESS/` in a browser for the dashboard.
    #[arg(long, env = "HOCTAP_LISTEN", default_value = "127.0.0.1:8090")]
    listen: String,
    /// Also record approvals: the dashboard offers to approve the review on screen (a decision's
    /// number, issuer and date), as `hoctap approve` does. Anyone who can reach the address can then
    /// write to the log: keep it on 127.0.0.1.
    #[arg(long)]
    approvals: bool,
}

pub fn run(data_dir: &Path, args: &ServeArgs) -> Result<ExitCode> {
    let mut tracker = Tracker::load(data_dir)?;
    tracker.save_checkpoint();
    let records = tracker.log.len();
    let engine = std::mem::take(&mut tracker.engine);
    let mut embedded = hoctap_api::Embedded::new(engine);
    if args.approvals {
        embedded = embedded.recording(LogRecorder { tracker: Mutex::new(tracker) });
    }
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        // The test harness and scripts read this line to learn the port (with --listen 127.0.0.1:0).
        let approving = if args.approvals { "; recording approvals" } else { "" };
        eprintln!("serve: {records} events from {}; dashboard at http://{addr}/{approving}", data_dir.display());
        hoctap_api::serve_embedded(embedded, listener, crate::services::shutdown_signal()).await.context("serve")?;
        Ok(ExitCode::SUCCESS)
    })
}

/// The embedded log behind the server's engine. The tracker's own engine is empty while the server
/// holds it; for an approval the two are swapped, so that the approval is recorded and folded exactly
/// as `hoctap approve` does it.
struct LogRecorder {
    tracker: Mutex<Tracker>,
}

impl Recorder for LogRecorder {
    fn approve(&self, engine: &mut Engine, query: &Query, decision: Decision) -> Result<Recorded, NotRecorded> {
        let mut tracker = self.tracker.lock().unwrap_or_else(|poisoned| poisoned.into_inner());
        std::mem::swap(&mut tracker.engine, engine);
        let result = approve_with(&mut tracker, query, decision);
        std::mem::swap(&mut tracker.engine, engine);
        result
    }
}

fn approve_with(tracker: &mut Tracker, query: &Query, decision: Decision) -> Result<Recorded, NotRecorded> {
    // Reviewed as the server shows it (what it had folded), then checked against the log as it is now.
    let prepared =
        approve::prepare(&tracker.engine, query, decision).map_err(|e| NotRecorded::Unapprovable(format!("{e:#}")))?;
    if let Err(e) = tracker.take_writer() {
        return Err(match e.downcast_ref::<LogError>() {
            Some(LogError::Locked { .. }) => {
                NotRecorded::Busy("another process is writing the embedded log (an ingest?); retry in a moment".into())
            }
            _ => NotRecorded::Failed(format!("{e:#}")),
        });
    }
    let approved = approve::record_prepared(tracker, prepared, None);
    tracker.save_checkpoint();
    let released = tracker.release_writer();
    let approved = approved.map_err(|e| NotRecorded::Failed(format!("{e:#}")))?;
    released.map_err(|e| NotRecorded::Failed(format!("{e:#}")))?;
    match approved.outcome {
        Outcome::Refused(refusal) => Err(NotRecorded::Refused(refusal)),
        outcome => {
            Ok(Recorded { event: approved.event, new: matches!(outcome, Outcome::Recorded), events: approved.events })
        }
    }
}
