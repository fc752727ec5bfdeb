//! `hoctap serve`: the dashboard and the HTTP API's reviews, units, series and approvals, answered by
//! the embedded engine. The log is folded once at start (from the checkpoint when it matches); events
//! ingested afterwards are seen after a restart.

use anyhow::{Context, Result};
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, clap::Args)]
pub struct ServeArgs {
    /// Address to listen on; open `http://ADDRESS/` in a browser for the dashboard.
    #[arg(long, env = "HOCTAP_LISTEN", default_value = "127.0.0.1:8090")]
    listen: String,
}

pub fn run(data_dir: &Path, args: &ServeArgs) -> Result<ExitCode> {
    let mut tracker = crate::tracker::Tracker::load(data_dir)?;
    tracker.save_checkpoint();
    let records = tracker.log.len();
    let embedded = hoctap_api::Embedded::new(tracker.engine);
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        let addr = listener.local_addr()?;
        // The test harness and scripts read this line to learn the port (with --listen 127.0.0.1:0).
        eprintln!("serve: {records} events from {}; dashboard at http://{addr}/", data_dir.display());
        hoctap_api::serve_embedded(embedded, listener, crate::services::shutdown_signal()).await.context("serve")?;
        Ok(ExitCode::SUCCESS)
    })
}
