//! The projector of hoctap: folds the events on Kafka into the PostgreSQL read models.
//!
//! - [`run`] / [`serve`]: a consumer-group member (`hoctap project`). Each batch is applied in one
//!   PostgreSQL transaction together with the next offsets of its partitions; on assignment the
//!   consumer starts at those stored offsets. So a crash at any instant loses nothing and counts
//!   nothing twice, and several instances split the partitions of the events topic. The reference
//!   topic (geography, baselines, targets) is read whole by every instance.
//! - [`rebuild()`]: fills a new generation of the read models from offset 0 while the old one
//!   serves, checks that it equals the old one, and switches atomically (`hoctap rebuild`).
//! - [`Metrics`]: Prometheus metrics (events applied, lag, dead letters, …) served on `/metrics`.
//!
//! The counting rules are not here: the store asks the domain crate for each subject's contributions.

mod isolate;
mod metrics;
mod projector;
mod rebuild;
mod record;

pub use metrics::{Metrics, PartitionLabels};
pub use projector::{DEFAULT_BATCH_MAX, ProjectorConfig, run};
pub use rebuild::{RebuildConfig, RebuildProgress, RebuildReport, rebuild};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod};
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::Duration;

/// What stops the projector or a rebuild.
#[derive(Debug, thiserror::Error)]
pub enum ProjectorError {
    /// Kafka settings, topics or reading failed.
    #[error(transparent)]
    Kafka(#[from] hoctap_kafka::Error),
    /// A dead letter could not be published (retried while transient).
    #[error(transparent)]
    Publish(#[from] hoctap_kafka::PublishError),
    /// The read models refused or PostgreSQL failed.
    #[error(transparent)]
    Store(#[from] hoctap_store::StoreError),
    /// No PostgreSQL connection could be had from the pool.
    #[error("connecting to PostgreSQL: {0}")]
    Pool(#[from] deadpool_postgres::PoolError),
    /// The PostgreSQL connection string or pool settings are wrong. **Fail**: fix the configuration.
    #[error("PostgreSQL settings: {0}")]
    PostgresConfig(String),
    /// The consumer thread panicked (a bug): the process should exit and be restarted.
    #[error("the consumer thread panicked: {0}")]
    Panicked(String),
    /// A rebuild could not be checked or switched.
    #[error("rebuild: {0}")]
    Rebuild(String),
}

impl ProjectorError {
    /// Worth retrying after a pause: PostgreSQL or Kafka unreachable for a while.
    pub fn is_transient(&self) -> bool {
        match self {
            ProjectorError::Store(e @ hoctap_store::StoreError::Db { .. }) => !e.is_content_fault(),
            ProjectorError::Pool(_) | ProjectorError::Publish(_) => true,
            _ => false,
        }
    }

    /// PostgreSQL refused what a batch holds: retrying the same batch cannot help, isolating the
    /// record can ([`hoctap_store::StoreError::is_content_fault`]).
    pub fn is_content_fault(&self) -> bool {
        matches!(self, ProjectorError::Store(e) if e.is_content_fault())
    }
}

/// A pool of PostgreSQL connections from a connection string.
pub fn pg_pool(postgres: &str) -> Result<Pool, ProjectorError> {
    let config: tokio_postgres::Config =
        postgres.parse().map_err(|e: tokio_postgres::Error| ProjectorError::PostgresConfig(e.to_string()))?;
    let manager =
        Manager::from_config(config, tokio_postgres::NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Pool::builder(manager).max_size(4).build().map_err(|e| ProjectorError::PostgresConfig(e.to_string()))
}

/// Runs the projector and, when `metrics_listener` is given, serves `/metrics` and `/healthz` on it,
/// until `shutdown` completes; then the batch in hand is finished and the group left.
pub async fn serve(
    config: ProjectorConfig,
    metrics_listener: Option<tokio::net::TcpListener>,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ProjectorError> {
    let metrics = Metrics::new();
    let stop = Arc::new(AtomicBool::new(false));
    let (stopped_tx, stopped_rx) = tokio::sync::watch::channel(false);
    if let Some(listener) = metrics_listener {
        let router = metrics.router(Duration::from_secs(60));
        let mut stopped = stopped_rx.clone();
        tokio::spawn(async move {
            let result = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.wait_for(|s| *s).await;
                })
                .await;
            if let Err(e) = result {
                tracing::error!(error = %e, "metrics server failed");
            }
        });
    }
    {
        let stop = stop.clone();
        tokio::spawn(async move {
            shutdown.await;
            stop.store(true, Ordering::Relaxed);
        });
    }
    let handle = tokio::runtime::Handle::current();
    let result = tokio::task::spawn_blocking(move || run(&config, &metrics, &stop, &handle))
        .await
        .unwrap_or_else(|e| Err(ProjectorError::Panicked(e.to_string())));
    let _ = stopped_tx.send(true);
    result
}
