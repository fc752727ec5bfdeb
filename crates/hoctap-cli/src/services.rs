//! The pipeline's services as subcommands: `hoctap gateway`, `hoctap api` (more follow: `project`).

use anyhow::{Context, Result};
use std::path::PathBuf;
use std::process::ExitCode;

/// Settings of `hoctap gateway`: flags, or `HOCTAP_…` environment variables.
#[derive(Debug, clap::Args)]
pub struct GatewayArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "HOCTAP_BROKERS", default_value = "127.0.0.1:9092")]
    brokers: String,
    /// Address to listen on.
    #[arg(long, env = "HOCTAP_LISTEN", default_value = "127.0.0.1:8080")]
    listen: String,
    /// PostgreSQL (`--postgres`) keeps what the gateway remembers of the events topic (ids, content
    /// digests, subjects' communes, folded offsets, the writer lease) in the schema
    /// `<deployment>_gateway`; the start reads only the topic's tail.
    #[command(flatten)]
    store: crate::pipeline::StoreArgs,
    /// Seconds the writer lease lasts without renewal: with several gateways, one writes and the others
    /// answer 503 until it is released (a graceful stop) or expires (a crash). Must exceed 10/9 of two
    /// publish timeouts plus 2 s.
    #[arg(long, env = "HOCTAP_LEASE_SECONDS", default_value_t = 30)]
    lease_seconds: u64,
    /// TOML file of source systems: `[[source]] name, province, token_sha256` (tokens are stored hashed;
    /// `hoctap gateway --hash-token TOKEN` prints the hash of one).
    #[arg(long, env = "HOCTAP_TOKENS", required_unless_present = "hash_token")]
    tokens: Option<PathBuf>,
    /// Partitions of the events topic when the gateway creates it.
    #[arg(long, env = "HOCTAP_EVENT_PARTITIONS", default_value_t = hoctap_kafka::DEFAULT_EVENT_PARTITIONS)]
    partitions: i32,
    /// A librdkafka producer setting, KEY=VALUE (repeatable), e.g. `linger.ms=20`; idempotence and
    /// `acks=all` cannot be overridden.
    #[arg(long = "producer-setting", value_name = "KEY=VALUE", value_parser = crate::pipeline::parse_setting)]
    producer_settings: Vec<(String, String)>,
    /// Print the SHA-256 of a token, for the tokens file, and exit.
    #[arg(long, value_name = "TOKEN")]
    hash_token: Option<String>,
    /// Events in one batch; a larger batch is refused whole (413).
    #[arg(long, env = "HOCTAP_MAX_BATCH_EVENTS", default_value_t = hoctap_gateway::Limits::default().batch_events)]
    max_batch_events: usize,
    /// Bytes of one event as sent; a larger one is refused alone (413, rule `size`). Keep it below the
    /// broker's `message.max.bytes`.
    #[arg(long, env = "HOCTAP_MAX_EVENT_BYTES", default_value_t = hoctap_gateway::Limits::default().event_bytes)]
    max_event_bytes: usize,
    /// Requests served at once; more are answered 503 with Retry-After before their body is read.
    #[arg(long, env = "HOCTAP_MAX_CONCURRENT_REQUESTS", default_value_t = hoctap_gateway::Limits::default().concurrent_requests)]
    max_concurrent_requests: usize,
    /// Seconds within which a request is answered (else 503 with Retry-After).
    #[arg(long, env = "HOCTAP_REQUEST_TIMEOUT", default_value_t = hoctap_gateway::Limits::default().request_timeout.as_secs())]
    request_timeout: u64,
    /// Seconds Kafka may take to acknowledge a record (else 503); `message.timeout.ms` in
    /// `--producer-setting` takes precedence.
    #[arg(long, env = "HOCTAP_PUBLISH_TIMEOUT", default_value_t = hoctap_gateway::Limits::default().publish_timeout.as_secs())]
    publish_timeout: u64,
    /// Requests per second each source may send on average (above: 429 with Retry-After).
    #[arg(long, env = "HOCTAP_SOURCE_RATE", default_value_t = hoctap_gateway::Limits::default().source_requests_per_second)]
    source_rate: u32,
    /// Requests each source may send at once, above its rate.
    #[arg(long, env = "HOCTAP_SOURCE_BURST", default_value_t = hoctap_gateway::Limits::default().source_burst)]
    source_burst: u32,
}

pub fn gateway(args: &GatewayArgs) -> Result<ExitCode> {
    if let Some(token) = &args.hash_token {
        println!("{}", hoctap_gateway::hash_token(token));
        return Ok(ExitCode::SUCCESS);
    }
    let path = args.tokens.as_ref().context("--tokens is required")?;
    let tokens = hoctap_gateway::Tokens::load(path, hoctap_gateway::Holders::Sources)
        .with_context(|| format!("reading {}", path.display()))?;
    let mut config = hoctap_gateway::GatewayConfig::new(
        args.brokers.clone(),
        tokens,
        args.store.postgres.clone(),
        args.store.deployment()?,
    );
    config.lease = std::time::Duration::from_secs(args.lease_seconds);
    config.event_partitions = args.partitions;
    config.producer = args.producer_settings.iter().cloned().collect();
    config.limits = hoctap_gateway::Limits {
        batch_events: args.max_batch_events,
        event_bytes: args.max_event_bytes,
        concurrent_requests: args.max_concurrent_requests,
        request_timeout: std::time::Duration::from_secs(args.request_timeout),
        publish_timeout: std::time::Duration::from_secs(args.publish_timeout),
        source_requests_per_second: args.source_rate,
        source_burst: args.source_burst,
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        eprintln!("gateway: listening on {}, publishing to {}", listener.local_addr()?, args.brokers);
        hoctap_gateway::serve(config, listener, shutdown_signal()).await.context("gateway")?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Settings of `hoctap api`: flags, or `HOCTAP_…` environment variables.
#[derive(Debug, clap::Args)]
pub struct ApiArgs {
    #[command(flatten)]
    store: crate::pipeline::StoreArgs,
    /// Address to listen on.
    #[arg(long, env = "HOCTAP_LISTEN", default_value = "127.0.0.1:8081")]
    listen: String,
    /// Seconds one SQL statement of a request may run before PostgreSQL cancels it (503).
    #[arg(long, env = "HOCTAP_STATEMENT_TIMEOUT", default_value_t = hoctap_api::DEFAULT_STATEMENT_TIMEOUT.as_secs())]
    statement_timeout: u64,
    /// Seconds a request to `/v1/…` may take in all before it is answered 503.
    #[arg(long, env = "HOCTAP_API_REQUEST_TIMEOUT", default_value_t = hoctap_api::DEFAULT_REQUEST_TIMEOUT.as_secs())]
    request_timeout: u64,
    /// TOML file of readers: `[[reader]] name, province ("01", or "*" for every province),
    /// token_sha256` (tokens are stored hashed; `hoctap gateway --hash-token TOKEN` prints the hash of
    /// one). A reader of one province reads reviews, series and units of that province only.
    #[arg(long, env = "HOCTAP_READERS")]
    readers: Option<PathBuf>,
    /// Answer `GET /v1/reviews` without a token, for every scope (campaign figures are published);
    /// series and units still need a reader's token.
    #[arg(long, env = "HOCTAP_PUBLIC_REVIEWS")]
    public_reviews: bool,
}

pub fn api(args: &ApiArgs) -> Result<ExitCode> {
    let readers = match &args.readers {
        Some(path) => hoctap_api::Tokens::load(path, hoctap_api::Holders::Readers)
            .with_context(|| format!("reading {}", path.display()))?,
        None if args.public_reviews => hoctap_api::Tokens::default(),
        None => anyhow::bail!(
            "give --readers FILE (the readers' tokens) or --public-reviews (reviews open to all), or both: \
             without either the API would answer nothing but /healthz and /metrics"
        ),
    };
    let config = hoctap_api::ApiConfig {
        statement_timeout: std::time::Duration::from_secs(args.statement_timeout.max(1)),
        request_timeout: std::time::Duration::from_secs(args.request_timeout.max(1)),
        readers,
        public_reviews: args.public_reviews,
        ..hoctap_api::ApiConfig::new(args.store.postgres.clone(), args.store.deployment()?)
    };
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let listener = tokio::net::TcpListener::bind(&args.listen)
            .await
            .with_context(|| format!("listening on {}", args.listen))?;
        // The address only: the PostgreSQL settings may hold a password.
        eprintln!("api: listening on {}, reading deployment `{}`", listener.local_addr()?, args.store.deployment);
        hoctap_api::serve(config, listener, shutdown_signal()).await.context("api")?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Completes on Ctrl-C (SIGINT) or SIGTERM (what `docker stop` and Kubernetes send first).
pub(crate) async fn shutdown_signal() {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{SignalKind, signal};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = tokio::signal::ctrl_c() => {}
                    _ = term.recv() => {}
                }
            }
            Err(e) => {
                eprintln!("warning: cannot listen for SIGTERM ({e}); stopping on Ctrl-C only");
                let _ = tokio::signal::ctrl_c().await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = tokio::signal::ctrl_c().await;
    }
}
