//! `hoctap bench pipeline`: figures of the Kafka + PostgreSQL path.

use crate::progress;
use anyhow::{Context, Result, bail};
use hoctap_domain::Event;
use hoctap_kafka::{Producer, Route, Topics};
use hoctap_store::{Consumed, Deployment, Projection};
use std::collections::BTreeMap;
use std::process::ExitCode;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

#[derive(Debug, clap::Args)]
pub struct PipelineArgs {
    /// Citizens of the generated city (about 40 events each).
    #[arg(long, default_value_t = 5_000)]
    citizens: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Kafka bootstrap servers; when absent a throwaway tansu broker is started (tansu on PATH).
    #[arg(long)]
    brokers: Option<String>,
    /// PostgreSQL for the read models (fresh deployments are created and dropped).
    #[arg(long, env = "HOCTAP_POSTGRES", default_value = "postgresql://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
    /// Partitions of the benchmark's events topic.
    #[arg(long, default_value_t = 6)]
    partitions: i32,
    /// Events applied one transaction each by the naive projector (a sample: it is slow).
    #[arg(long, default_value_t = 3_000)]
    naive_events: usize,
}

fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map(|d| d.as_micros() as i64).unwrap_or(0)
}

/// The generated city with increasing `recordedtime`s from now, as the log stamps them.
fn stamped_city(citizens: u64, seed: u64) -> Vec<Event> {
    hoctap_gen::generate_stamped(&hoctap_gen::Config::new(citizens, seed), now_micros(), 1)
}

pub fn pipeline(args: &PipelineArgs) -> Result<ExitCode> {
    let broker = match &args.brokers {
        Some(_) => None,
        None => Some(hoctap_kafka::test_broker::TestBroker::start()),
    };
    let brokers = args.brokers.clone().unwrap_or_else(|| broker.as_ref().expect("started").brokers());
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let tag = format!("{:08x}", fastrand::u32(..));
    let topics = Topics::prefixed(&format!("bench-{tag}."));
    let events = stamped_city(args.citizens, args.seed);
    println!("events: {} generated ({} citizens, seed {}), broker {brokers}", events.len(), args.citizens, args.seed);

    // Produce once; every consumer below reads these same records.
    runtime.block_on(hoctap_kafka::ensure_topics_with(&brokers, &topics, args.partitions, None))?;
    // tansu skips the rest of a producer batch when a fetch resumes inside it (shared/broker.md, gap
    // 1), which a large sequential read does: against our own tansu every record is its own batch.
    let settings: BTreeMap<String, String> = match broker {
        Some(_) => BTreeMap::from([("batch.num.messages".to_owned(), "1".to_owned())]),
        None => BTreeMap::new(),
    };
    let producer = Producer::new(&brokers, topics.clone(), &settings)?;
    let bar = progress::items(events.len() as u64, "produced");
    let started = Instant::now();
    for chunk in events.chunks(10_000) {
        let routed: Vec<(Route, &Event)> = chunk.iter().map(|e| (Route::of(e, |_| false), e)).collect();
        runtime.block_on(producer.publish_routed(&routed))?;
        bar.inc(chunk.len() as u64);
    }
    bar.finish_and_clear();
    let total = events.len() as f64;
    println!("produce (idempotent, acks=all)  : {:>10.0} records/s", total / started.elapsed().as_secs_f64());

    // (a) Raw rdkafka consumption of the same records: no decoding, no PostgreSQL.
    let started = Instant::now();
    let mut bytes = 0usize;
    let mut records = 0u64;
    for topic in [&topics.events, &topics.reference] {
        records += hoctap_kafka::read_to_end(&brokers, topic, Duration::from_secs(10), |r| bytes += r.payload.len())?;
    }
    let raw_rate = records as f64 / started.elapsed().as_secs_f64();
    println!("(a) raw rdkafka consume         : {raw_rate:>10.0} records/s ({:.1} MiB)", bytes as f64 / 1048576.0);
    if records != events.len() as u64 {
        bail!("read {records} records back, {} were produced", events.len());
    }

    // (b) The projector (batches, one transaction each) into a fresh deployment.
    let deployment = Deployment::new(&format!("bench_p{tag}"))?;
    let mut config = hoctap_projector::ProjectorConfig::new(brokers.clone(), args.postgres.clone(), deployment.clone());
    let batch_max = config.batch_max;
    config.topics = topics.clone();
    config.group = format!("bench-{tag}");
    config.dashboard_every = None;
    let stop = Arc::new(AtomicBool::new(false));
    let metrics = hoctap_projector::Metrics::new();
    let started = Instant::now();
    let worker = {
        let (stop, metrics, handle) = (stop.clone(), metrics.clone(), runtime.handle().clone());
        std::thread::spawn(move || hoctap_projector::run(&config, &metrics, &stop, &handle))
    };
    let bar = progress::items(records, "projected");
    let projected = runtime.block_on(async {
        let mut client = connect(&args.postgres).await?;
        loop {
            tokio::time::sleep(Duration::from_millis(100)).await;
            let Ok(schema) = deployment.active(&client).await else { continue };
            let done: i64 = hoctap_store::offsets(&client, &schema).await?.values().sum();
            bar.set_position(done as u64);
            if done as u64 >= records {
                let _ = &mut client;
                return anyhow::Ok(started.elapsed());
            }
            if worker.is_finished() {
                bail!("the projector stopped early");
            }
        }
    })?;
    bar.finish_and_clear();
    stop.store(true, Ordering::Relaxed);
    worker.join().map_err(|_| anyhow::anyhow!("the projector panicked"))??;
    let projector_rate = records as f64 / projected.as_secs_f64();
    println!(
        "(b) projector into PostgreSQL   : {projector_rate:>10.0} records/s ({} events in {:.1} s, batches of ≤ {batch_max})",
        metrics.events_applied.get(),
        projected.as_secs_f64()
    );
    println!("ratio (b) / (a)                 : {:.2} (goal ≥ 0.8)", projector_rate / raw_rate);
    // Idle, a serving deployment's projector refreshes its dashboard figures (here once, untimed): the
    // rebuild below meets the deployment as it serves.
    let figures = runtime.block_on(async {
        let mut client = connect(&args.postgres).await?;
        let schema = deployment.active(&client).await?;
        let started = Instant::now();
        hoctap_store::refresh_dashboard(&mut client, &schema).await?;
        anyhow::Ok(started.elapsed())
    })?;
    println!(
        "dashboard figures refreshed     : {:>10.1} s (as the idle projector does; untimed)",
        figures.as_secs_f64()
    );

    // (d) `hoctap rebuild` of the deployment (b) filled: every record again into a new generation,
    // compared with the serving one, then switched to.
    let mut rebuild = hoctap_projector::RebuildConfig::new(brokers.clone(), args.postgres.clone(), deployment.clone());
    rebuild.topics = topics.clone();
    rebuild.idle = Duration::from_secs(10);
    let bar = progress::items(records, "rebuilt");
    let report = hoctap_projector::rebuild(&rebuild, runtime.handle(), |p| {
        bar.set_length(p.total);
        bar.set_position(p.read);
    })?;
    bar.finish_and_clear();
    let rebuild_rate = report.records as f64 / report.elapsed.as_secs_f64();
    println!(
        "(d) hoctap rebuild              : {rebuild_rate:>10.0} records/s ({} records in {:.1} s: read, apply, compare, switch; dashboard figures {})",
        report.records,
        report.elapsed.as_secs_f64(),
        if report.dashboard_copied { "copied" } else { "computed" }
    );
    println!("ratio (d) / (a)                 : {:.2} (goal ≥ 0.8)", rebuild_rate / raw_rate);

    // (c) A naive projector: the same fold, one transaction per event.
    let naive = Deployment::new(&format!("bench_n{tag}"))?;
    let naive_rate = runtime.block_on(async {
        let mut client = connect(&args.postgres).await?;
        let mut projection = Projection::load_serving(&mut client, &naive).await?;
        let sample = &events[..args.naive_events.min(events.len())];
        let started = Instant::now();
        for (i, e) in sample.iter().enumerate() {
            let c = Consumed { topic: "naive".into(), partition: 0, offset: i as i64, event: e.clone() };
            projection.apply_batch(&mut client, std::slice::from_ref(&c)).await?;
        }
        anyhow::Ok(sample.len() as f64 / started.elapsed().as_secs_f64())
    })?;
    println!("(c) naive, one transaction/event: {naive_rate:>10.0} events/s (first {} events)", args.naive_events);
    println!("ratio (b) / (c)                 : {:.1}× (goal ≥ 20×)", projector_rate / naive_rate);

    runtime.block_on(async {
        let mut client = connect(&args.postgres).await?;
        deployment.drop_all(&mut client).await?;
        naive.drop_all(&mut client).await?;
        anyhow::Ok(())
    })?;
    Ok(ExitCode::SUCCESS)
}

async fn connect(postgres: &str) -> Result<tokio_postgres::Client> {
    let (client, connection) =
        tokio_postgres::connect(postgres, tokio_postgres::NoTls).await.context("connecting to PostgreSQL")?;
    tokio::spawn(connection);
    Ok(client)
}
