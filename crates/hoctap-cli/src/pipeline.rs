//! `hoctap project` and `hoctap rebuild`: the commands that fill the PostgreSQL read models from Kafka.

use crate::progress;
use crate::services::shutdown_signal;
use anyhow::{Context, Result, bail};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::time::Duration;

/// Where the read models live: flags, or `HOCTAP_…` environment variables.
#[derive(Debug, clap::Args)]
pub struct StoreArgs {
    /// PostgreSQL holding the read models (and the gateway's memory of the events topic): a `postgresql://` URL or libpq-style `host=… user=… dbname=…`.
    /// The value is never shown in `--help` (it may hold a password).
    #[arg(
        long,
        env = "HOCTAP_POSTGRES",
        hide_env_values = true,
        default_value = "postgresql://postgres@127.0.0.1:5432/postgres"
    )]
    pub postgres: String,
    /// The deployment: its control schema names the serving generation (`<name>_g1`, …); the
    /// dashboards read the views of `<name>_dashboard_v1`.
    #[arg(long, env = "HOCTAP_DEPLOYMENT", default_value = "hoctap")]
    pub deployment: String,
}

impl StoreArgs {
    pub fn deployment(&self) -> Result<hoctap_store::Deployment> {
        hoctap_store::Deployment::new(&self.deployment).context("--deployment")
    }
}

/// Settings of the Kafka consumers: flags, or `HOCTAP_…` environment variables.
#[derive(Debug, clap::Args)]
pub struct KafkaArgs {
    /// Kafka bootstrap servers.
    #[arg(long, env = "HOCTAP_BROKERS", default_value = "127.0.0.1:9092")]
    pub brokers: String,
    /// A librdkafka consumer setting, KEY=VALUE (repeatable), e.g. `session.timeout.ms=10000`.
    #[arg(long = "consumer-setting", value_name = "KEY=VALUE", value_parser = parse_setting)]
    pub consumer_settings: Vec<(String, String)>,
}

impl KafkaArgs {
    fn overrides(&self) -> BTreeMap<String, String> {
        self.consumer_settings.iter().cloned().collect()
    }
}

pub(crate) fn parse_setting(text: &str) -> Result<(String, String), String> {
    match text.split_once('=') {
        Some((k, v)) if !k.is_empty() => Ok((k.to_owned(), v.to_owned())),
        _ => Err(format!("`{text}` is not KEY=VALUE")),
    }
}

/// Settings of `hoctap project`.
#[derive(Debug, clap::Args)]
pub struct ProjectArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Consumer group: the instances of one group split the partitions of the events topic.
    #[arg(long, env = "HOCTAP_GROUP", default_value = "hoctap-projector")]
    group: String,
    /// Address of /metrics (Prometheus) and /healthz; `off` serves none.
    #[arg(long, env = "HOCTAP_METRICS_LISTEN", default_value = "127.0.0.1:9464")]
    metrics_listen: String,
    /// Partitions of the events topic when the projector creates it.
    #[arg(long, env = "HOCTAP_EVENT_PARTITIONS", default_value_t = hoctap_kafka::DEFAULT_EVENT_PARTITIONS)]
    partitions: i32,
    /// The most records applied in one transaction.
    #[arg(long, default_value_t = hoctap_projector::DEFAULT_BATCH_MAX)]
    batch_max: usize,
    /// Refresh the dashboard figures when idle, at most every this many seconds (0: never).
    #[arg(long, env = "HOCTAP_DASHBOARD_EVERY", default_value_t = 60)]
    dashboard_every: u64,
    /// The bound, in MiB, of the cache of subject histories kept between batches (what the projector's
    /// memory grows to; a subject not cached is read from PostgreSQL when a batch touches it).
    #[arg(long, env = "HOCTAP_SUBJECT_CACHE_MIB", default_value_t = hoctap_store::DEFAULT_CACHE_BYTES >> 20)]
    subject_cache_mib: usize,
}

pub fn project(args: &ProjectArgs) -> Result<ExitCode> {
    let mut config = hoctap_projector::ProjectorConfig::new(
        args.kafka.brokers.clone(),
        args.store.postgres.clone(),
        args.store.deployment()?,
    );
    config.group = args.group.clone();
    config.event_partitions = args.partitions;
    if args.batch_max == 0 {
        bail!("--batch-max must be at least 1");
    }
    config.batch_max = args.batch_max;
    config.dashboard_every = (args.dashboard_every > 0).then(|| Duration::from_secs(args.dashboard_every));
    config.cache_bytes = args.subject_cache_mib << 20;
    config.consumer_overrides = args.kafka.overrides();
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    runtime.block_on(async {
        let listener = match args.metrics_listen.as_str() {
            "off" => None,
            address => {
                Some(tokio::net::TcpListener::bind(address).await.with_context(|| format!("listening on {address}"))?)
            }
        };
        let metrics = listener.as_ref().and_then(|l| l.local_addr().ok()).map(|a| a.to_string());
        eprintln!(
            "project: group `{}` from {} into deployment `{}`; metrics on {}",
            args.group,
            args.kafka.brokers,
            args.store.deployment,
            metrics.as_deref().unwrap_or("(off)")
        );
        hoctap_projector::serve(config, listener, shutdown_signal()).await.context("projector")?;
        Ok(ExitCode::SUCCESS)
    })
}

/// Settings of `hoctap rebuild`.
#[derive(Debug, clap::Args)]
pub struct RebuildArgs {
    #[command(flatten)]
    kafka: KafkaArgs,
    #[command(flatten)]
    store: StoreArgs,
    /// Drop the old generation after the switch (by default it is kept, to compare or to switch back).
    #[arg(long)]
    drop_old: bool,
    /// Give up when no record arrives for this many seconds while records are still expected.
    #[arg(long, default_value_t = 60)]
    idle_seconds: u64,
}

pub fn rebuild(args: &RebuildArgs) -> Result<ExitCode> {
    let mut config = hoctap_projector::RebuildConfig::new(
        args.kafka.brokers.clone(),
        args.store.postgres.clone(),
        args.store.deployment()?,
    );
    config.drop_old = args.drop_old;
    config.consumer_overrides = args.kafka.overrides();
    config.idle = Duration::from_secs(args.idle_seconds);
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let bar = progress::items(0, "records");
    let report = hoctap_projector::rebuild(&config, runtime.handle(), |p| {
        bar.set_length(p.total.max(p.read));
        bar.set_position(p.read);
    })
    .context("rebuild")?;
    bar.finish_and_clear();
    println!(
        "rebuilt {} from offset 0: {} records, {} events in {:.1} s; equal to {} table by table; dashboard figures {}; now serving (projectors waited {} ms for the last {} records){}",
        report.new,
        report.records,
        report.events,
        report.elapsed.as_secs_f64(),
        report.old,
        if report.dashboard_copied { format!("copied from {}", report.old) } else { "computed".to_owned() },
        report.locked_for.as_millis(),
        report.caught_up_under_lock,
        if report.dropped_old { format!("; {} dropped", report.old) } else { format!("; {} kept", report.old) }
    );
    Ok(ExitCode::SUCCESS)
}
