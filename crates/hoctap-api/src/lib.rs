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
//!   It has a connection of its own, so it answers within seconds even when every pooled connection is
//!   busy.
//! - `GET /metrics`: Prometheus (OpenMetrics text): requests by route and status, their durations, the
//!   connection pool.
//!
//! Every `/v1/…` route asks for a reader's bearer token (`Authorization: Bearer <token>`; readers are
//! [`ApiConfig::readers`], stored hashed like the gateway's sources: `hoctap_tokens`). A reader is
//! allowed one province or all (`*`): a reader of province P gets reviews and series only of units
//! that lie in P (a unit belongs to every province its parents ever reached: `Engine::provinces_of`)
//! and the units list of P; anything else is 403 with `"rule": "province"`. No token, or one not known,
//! is 401 with `"rule": "token"`. With [`ApiConfig::public_reviews`], `GET /v1/reviews` also answers
//! without a token, for every scope (campaign figures are published); a token sent anyway must be
//! valid. `/healthz` and `/metrics` never ask for one.
//!
//! Errors are JSON `{"error": "...", "parameter": "as_of"}` (`parameter` only when one query parameter
//! is missing or invalid; `rule` on 401 and 403): 400 for the caller's parameters, 404 for a unit unknown or not in force,
//! 503 (with `Retry-After`) when PostgreSQL is unreachable, the deployment has no read models yet, a
//! statement ran past [`ApiConfig::statement_timeout`] or the request past [`ApiConfig::request_timeout`].
//! The contract is `docs/openapi.json`; the tests check every answer against it.
//!
//! Every request asks the deployment which generation serves ([`Deployment::active`]), so a rebuild's
//! switch takes effect on the next request without a restart. Nothing is cached: the read models are
//! the state, and the API can run as many replicas as PostgreSQL tolerates.

mod answers;
mod dashboard;
mod dates;
mod http;
mod metrics;

pub use answers::{Answers, Asked, Embedded, NotRecorded, Recorded, Recorder};
pub use dates::{MAX_POINTS, Point, Series, Step, TooManyPoints, dates};
pub use http::{Access, Failure};

use deadpool_postgres::{Manager, ManagerConfig, Pool, RecyclingMethod, Runtime};
use hoctap_store::Deployment;
pub use hoctap_tokens::{Holders, Scope, Tokens, TokensError, hash_token};
use metrics::Metrics;
use std::future::Future;
use std::sync::Arc;
use std::time::Duration;
use tokio_postgres::NoTls;

/// Connections the API keeps to PostgreSQL at most (each request holds one for its snapshot).
const POOL_SIZE: usize = 16;
/// How long a request waits for a connection, and a new connection for PostgreSQL, before 503.
const POOL_TIMEOUT: Duration = Duration::from_secs(5);
/// `/healthz`'s own connection: how long it waits for it, for PostgreSQL to accept it, and for its one
/// query. A health check answers within a few of these even when every pooled connection is busy.
const HEALTH_TIMEOUT: Duration = Duration::from_secs(2);
/// The default of [`ApiConfig::statement_timeout`].
pub const DEFAULT_STATEMENT_TIMEOUT: Duration = Duration::from_secs(5);
/// The default of [`ApiConfig::request_timeout`].
pub const DEFAULT_REQUEST_TIMEOUT: Duration = Duration::from_secs(10);

/// Everything the API needs. The CLI fills it from flags or `HOCTAP_…` variables.
#[derive(Clone, Debug)]
pub struct ApiConfig {
    /// libpq-style (`host=127.0.0.1 user=postgres dbname=hoctap`) or a `postgresql://` URL.
    pub postgres: String,
    /// Whose serving generation is read.
    pub deployment: Deployment,
    /// The longest one SQL statement of a request may run (PostgreSQL `statement_timeout`, set on every
    /// pooled connection); a statement cancelled by it answers 503 with `Retry-After`.
    pub statement_timeout: Duration,
    /// The longest a request to `/v1/…` may take, waiting for a connection included; past it the answer
    /// is 503 with `Retry-After`. `/healthz` and `/metrics` are outside it (they bound themselves).
    pub request_timeout: Duration,
    /// The readers and the province each may read (`[[reader]]` entries; tokens stored hashed). None
    /// configured: only what [`ApiConfig::public_reviews`] opens, and `/healthz`, `/metrics`, answer.
    pub readers: Tokens,
    /// `GET /v1/reviews` answers without a token, for every scope: aggregate figures are public.
    pub public_reviews: bool,
}

impl ApiConfig {
    /// The settings with the default timeouts, no reader and no public review.
    pub fn new(postgres: impl Into<String>, deployment: Deployment) -> ApiConfig {
        ApiConfig {
            postgres: postgres.into(),
            deployment,
            statement_timeout: DEFAULT_STATEMENT_TIMEOUT,
            request_timeout: DEFAULT_REQUEST_TIMEOUT,
            readers: Tokens::default(),
            public_reviews: false,
        }
    }
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
    /// One connection of `/healthz`'s own, so a busy `pool` cannot hold a health check up.
    health: Pool,
    request_timeout: Duration,
    access: Access,
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
        let pool = new_pool(&pg, config.statement_timeout, POOL_SIZE, POOL_TIMEOUT)?;
        let mut health = pg.clone();
        health.connect_timeout(pg.get_connect_timeout().copied().unwrap_or(HEALTH_TIMEOUT).min(HEALTH_TIMEOUT));
        let health = new_pool(&health, HEALTH_TIMEOUT, 1, HEALTH_TIMEOUT)?;
        Ok(Api {
            inner: Arc::new(Inner {
                pool,
                health,
                request_timeout: config.request_timeout,
                access: Access { readers: config.readers.clone(), public_reviews: config.public_reviews },
                deployment: config.deployment.clone(),
                metrics: Metrics::new(),
                cache: hoctap_store::ReadCache::new(),
            }),
        })
    }
}

/// A pool of at most `size` connections whose every statement is cancelled after `statement_timeout`
/// (added to the connection's startup `options`, so a `-c statement_timeout` of the settings' own loses).
fn new_pool(
    pg: &tokio_postgres::Config,
    statement_timeout: Duration,
    size: usize,
    wait: Duration,
) -> Result<Pool, ApiError> {
    let mut pg = pg.clone();
    let ms = statement_timeout.as_millis().max(1);
    let options = match pg.get_options() {
        Some(given) if !given.trim().is_empty() => format!("{given} -c statement_timeout={ms}"),
        _ => format!("-c statement_timeout={ms}"),
    };
    pg.options(&options);
    let manager = Manager::from_config(pg, NoTls, ManagerConfig { recycling_method: RecyclingMethod::Fast });
    Ok(Pool::builder(manager)
        .max_size(size)
        .runtime(Runtime::Tokio1)
        .wait_timeout(Some(wait))
        .create_timeout(Some(wait))
        .recycle_timeout(Some(wait))
        .build()?)
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
    api.inner.health.close();
    tracing::info!("api stopped");
    Ok(())
}

/// The routes of `hoctap serve`: the dashboard and the same `/v1/…` routes as [`router`], answered by
/// an engine in memory.
pub fn embedded_router(embedded: Embedded) -> axum::Router {
    http::embedded_router(embedded)
}

/// Serves `embedded` on `listener` until `shutdown` completes, letting every request in flight finish.
pub async fn serve_embedded(
    embedded: Embedded,
    listener: tokio::net::TcpListener,
    shutdown: impl Future<Output = ()> + Send + 'static,
) -> Result<(), ApiError> {
    axum::serve(listener, embedded_router(embedded)).with_graceful_shutdown(shutdown).await?;
    Ok(())
}

/// The clock, in UTC microseconds: when a review was generated (`hoctap_report::stamp`). The HTTP API
/// and the CLI both stamp with it.
pub fn now_micros() -> i64 {
    let since = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap_or_default();
    i64::try_from(since.as_micros()).unwrap_or(i64::MAX)
}
