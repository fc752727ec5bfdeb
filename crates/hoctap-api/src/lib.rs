//! `hoctap api`: the read side over HTTP, answered from the PostgreSQL read models.
//!
//! - `GET /v1/reviews?scope=&as_of=[&known_at=][&milestone=]`: the review, byte for byte the document
//!   `hoctap review --format json` prints (`hoctap_report::json`).
//! - `GET /v1/units?as_of=[&known_at=]`: the units established by `as_of`, in force with their parent or
//!   dissolved with their successor: the document `hoctap units --format json` prints.
//! - `GET /v1/units/{code}/series?title=&from=&to=[&step=][&known_at=]`: one title's four counts in one
//!   unit on many dates (day, week, month ends or year ends from `from` to `to`, at most
//!   [`MAX_POINTS`]).
//! - `GET /healthz`: 200 when PostgreSQL answers and the deployment has a serving generation, else 503.
//! - `GET /metrics`: Prometheus (OpenMetrics text): requests by route and status, their durations, the
//!   connection pool.
//!
//! Errors are JSON `{"error": "...", "parameter": "as_of"}` (`parameter` only when one query parameter
//! is missing or invalid): 400 for the caller's parameters, 404 for a unit unknown or not in force,
//! 503 (with `Retry-After`) when PostgreSQL is unreachable or the deployment has no read models yet.
//! The contract is `docs/openapi.json`; the tests check every answer against it.
//!
//! Every request asks the deployment which generation serves ([`Deployment::active`]), so a rebuild's
//! switch takes effect on the next request without a restart. Nothing is cached: the read models are
//! the state, and the API can run as many replicas as PostgreSQL tolerates.

mod dates;
mod http;
mod metrics;

pub use dates::{MAX_POINTS, Point, Series, Step, TooManyPoints, dates};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use hoctap_store::Deployment;
use metrics::Metrics;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::NoTls;

/// Connections the API keeps to PostgreSQL at most (each request holds one for its snapshot).
const POOL_SIZE: usize = 16;
/// How long a request waits for a connection, and a new connection for PostgreSQL, before 503.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);

/// Everything the API needs. The CLI fills it from flags or `HOCTAP_…` variables.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// libpq-style (`host=127.0.0.1 user=postgres dbname=hoctap`) or a `postgresql://` URL.
    pub postgres: String,
    /// Whose serving generation is read.
    pub deployment: Deployment,
}

/// The API could not start or stopped serving. Both are fatal for the process.
#[derive(Debug, thiserror::Error)]
pub enum ApiError {
    /// The PostgreSQL settings do not parse. **Fail**: fix `--postgres`.
    #[error("the PostgreSQL connection settings are invalid")]
    Settings(#[source] tokio_postgres::Error),
    /// The connection pool could not be built (a bug: the settings are static).
    #[error("building the PostgreSQL connection pool")]
    Pool(#[from] deadpool_postgres::BuildError),
    /// The HTTP server failed.
    #[error("serving HTTP")]
    Io(#[from] std::io::Error),
}

/// A configured API: the connection pool, the deployment and the metrics. Cheap to clone (shared).
///
/// Building it does not connect: an API started before PostgreSQL answers 503 until it is reachable.
#[derive(Clone)]
pub struct Api {
    inner: Arc<Inner>,
}

struct Inner {
    pool: Pool,
    deployment: Deployment,
    metrics: Metrics,
    /// The reference engine and count keys of the serving generation, kept between requests.
    cache: hoctap_store::ReadCache,
}

impl std::fmt::Debug for Api {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Api").field("deployment", &self.inner.deployment.name()).finish_non_exhaustive()
    }
}

impl Api {
    pub fn new(config: &ApiConfig) -> Result<Api, ApiError> {
        let mut pg: tokio_postgres::Config = config.postgres.parse().map_err(ApiError::Settings)?;
        if pg.get_connect_timeout().is_none() {
            pg.connect_timeout(POOL_TIMEOUT);
        }
        if pg.get_application_name().is_none() {
            pg.application_name("hoctap-api");
        }
        let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
        let pool = Pool::builder(manager)
            .max_size(POOL_SIZE)
            .runtime(Runtime::Tokio1)
            .wait_timeout(Some(POOL_TIMEOUT))
            .create_timeout(Some(POOL_TIMEOUT))
            .recycle_timeout(Some(POOL_TIMEOUT))
            .build()?;
        Ok(Api {
            inner: Arc::new(Inner {
                pool,
                deployment: config.deployment.clone(),
                metrics: Metrics::new(),
                cache: hoctap_store::ReadCache::new(),
            }),
        })
    }
}

/// The HTTP routes (see the crate docs), with request metrics.
pub fn router(api: Api) -> axum::Router {
    http::router(api)
}

/// Serves on `listener` until `shutdown` completes, then stops taking connections and lets every
/// request in flight finish (a review is one read-only transaction: nothing is left half done).
pub async fn serve(
    config: ApiConfig,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    let api = Api::new(&config)?;
    tracing::info!(addr = ?listener.local_addr().ok(), deployment = config.deployment.name(), "api listening");
    axum::serve(listener, router(api.clone())).with_graceful_shutdown(shutdown).await?;
    api.inner.pool.close();
    tracing::info!("api stopped");
    Ok(())
}

/// The clock, in UTC microseconds: when a review was generated (`hoctap_report::stamp`). The HTTP API
/// and the CLI both stamp with it.
pub fn now_micros() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}
