//! `hoctap bench read-side`: the figures of the read side at one city size, as `key: value` lines.
//!
//! 1. A generated city is loaded into a fresh deployment through the projector's transactional apply
//!    (batches, one transaction each, no Kafka): `apply_events_per_s`, then `bytes_per_event`. Its
//!    events are stamped by the generator's arrival clock, so the load is ten years of recording
//!    (2020-12-31 … 2031), with the late and future-dated changes of a real feed.
//! 2. A fresh `hoctap project` process (this binary) is started on that deployment against a tansu
//!    broker of its own: `projector_start_ms` until it logs that it is ready for its first batch, then
//!    `projector_rss_mib` once it applied 100 000 more events produced to the broker. Then two members
//!    of one consumer group on that deployment, fed 100 000 events more: the partitions each owns
//!    (`projector_pair_partitions`) and the resident memory of each (`projector_pair_rss_mib`).
//! 3. City reviews (scope 01) at random dates, as known now and as known at random times within the
//!    load, and the series of `GET /v1/units/01/series` (the store's `series`, which the API serves),
//!    by month end and by day as known at a time within the load.

use crate::progress;
use anyhow::{Context, Result, bail};
use hoctap_domain::codes::Title;
use hoctap_domain::{Day, Event, Query};
use hoctap_kafka::{Producer, Route, Topics};
use hoctap_store::{Consumed, Deployment, Projection, ReadCache};
use std::collections::BTreeMap;
use std::io::{BufRead, BufReader};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct ReadSideArgs {
    /// Citizens of the generated city: 25 000 ≈ 1 M events, 250 000 ≈ 10 M.
    #[arg(long, default_value_t = 25_000)]
    citizens: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// PostgreSQL for the read models (a fresh deployment `bench_rs_<citizens>` is created; it is
    /// replaced when it exists, and kept afterwards for inspection).
    #[arg(long, env = "HOCTAP_POSTGRES", default_value = "postgresql://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
    /// Events per transaction while loading (the projector's batch bound).
    #[arg(long, default_value_t = hoctap_projector::DEFAULT_BATCH_MAX)]
    batch: usize,
    /// The bound, in MiB, of the cache of subject histories while loading (as `hoctap project`'s).
    #[arg(long, default_value_t = hoctap_store::DEFAULT_CACHE_BYTES >> 20)]
    subject_cache_mib: usize,
    /// Reviews timed for each of the two review figures.
    #[arg(long, default_value_t = 200)]
    reviews: usize,
    /// Skip the projector process figures (they need tansu on PATH).
    #[arg(long)]
    no_projector: bool,
    /// Keep the deployment a previous run loaded and time only reviews and series (no load, no
    /// projector process).
    #[arg(long)]
    reuse: bool,
}

/// Partitions the load spreads subjects over, as the events topic would.
const PARTITIONS: u64 = 6;

/// The events of a generated city as a consumer receives them: reference data on one partition,
/// subjects spread over [`PARTITIONS`] by their id, offsets counted per partition.
fn consumed(events: Vec<Event>, topics: &Topics) -> Vec<Consumed> {
    let mut next: BTreeMap<(String, i32), i64> = BTreeMap::new();
    events
        .into_iter()
        .map(|event| {
            let (topic, partition) = match Route::of(&event, |_| false) {
                Route::Reference => (topics.reference.clone(), 0),
                _ => (topics.events.clone(), (fxhash(&event.subject) % PARTITIONS) as i32),
            };
            let offset = next.entry((topic.clone(), partition)).or_default();
            *offset += 1;
            Consumed { topic, partition, offset: *offset - 1, event }
        })
        .collect()
}

fn fxhash(s: &str) -> u64 {
    s.bytes().fold(0xcbf2_9ce4_8422_2325, |h, b| (h ^ u64::from(b)).wrapping_mul(0x0100_0000_01b3))
}

fn percentile(took: &mut [Duration], p: f64) -> f64 {
    took.sort();
    took[((took.len() as f64 * p).ceil() as usize).clamp(1, took.len()) - 1].as_secs_f64() * 1000.0
}

pub fn read_side(args: &ReadSideArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let deployment = Deployment::new(&format!("bench_rs_{}", args.citizens))?;
    // Topics of the load only: the projector process below reads the default topics of its own broker.
    let topics = Topics::prefixed("bench-load.");
    let (mut client, connection) = runtime
        .block_on(tokio_postgres::connect(&args.postgres, tokio_postgres::NoTls))
        .context("connecting to PostgreSQL")?;
    runtime.spawn(connection);

    // 1. Load (or reuse an earlier run's load).
    let loaded = runtime.block_on(async {
        let schema = deployment.active(&client).await.ok()?;
        hoctap_store::events_applied(&client, &schema).await.ok().filter(|n| *n > 0).map(|n| (schema, n))
    });
    let schema = match loaded.filter(|_| args.reuse) {
        Some((schema, events)) => {
            println!("events: {events} (loaded by an earlier run)");
            schema
        }
        None => load(args, &runtime, &mut client, &deployment, &topics)?,
    };
    let (first, last) =
        runtime.block_on(hoctap_store::recorded_span(&client, &schema))?.context("the load recorded nothing")?;

    // 2. A fresh projector process.
    if !args.no_projector && !args.reuse {
        projector(args, &runtime, &deployment, last)?;
    }

    // 3. Reviews and series.
    let cache = ReadCache::new();
    let start = Day::parse("2021-01-01").expect("a date").0;
    let days = Day::parse("2030-12-31").expect("a date").0 - start;
    let random_day = || Day(start + fastrand::i32(0..=days));
    for (name, known) in [("review_now_p99_ms", false), ("review_known_at_p99_ms", true)] {
        let mut took = Vec::with_capacity(args.reviews);
        runtime.block_on(async {
            // One review first: the reference engine and keys are read once per process.
            let q = Query { scope: "01".into(), as_of: random_day(), known_at: None, milestone: None };
            hoctap_store::review(&mut client, &schema, &cache, &q).await?;
            for _ in 0..args.reviews {
                let known_at = known.then(|| fastrand::i64(first..=last));
                let query = Query { scope: "01".into(), as_of: random_day(), known_at, milestone: None };
                let started = Instant::now();
                hoctap_store::review(&mut client, &schema, &cache, &query).await?;
                took.push(started.elapsed());
            }
            anyhow::Ok(())
        })?;
        println!("{}: {:.1}", name.replace("p99", "p50"), percentile(&mut took, 0.5));
        println!("{name}: {:.1}", percentile(&mut took, 0.99));
    }
    let month_ends: Vec<Day> = hoctap_store::dashboard_dates();
    let days_1000: Vec<Day> = (0..1000).map(|i| Day(Day::parse("2025-01-01").expect("a date").0 + i)).collect();
    for (name, dates, known_at) in
        [("series_month_ms", &month_ends, None), ("series_day_known_at_ms", &days_1000, Some((first + last) / 2))]
    {
        let mut took = Vec::new();
        for _ in 0..5 {
            let started = Instant::now();
            runtime.block_on(hoctap_store::series(
                &mut client,
                &schema,
                &cache,
                "01",
                Title::LearningCitizen,
                dates,
                known_at,
            ))?;
            took.push(started.elapsed());
        }
        println!("{name}: {:.1}", percentile(&mut took, 0.5));
    }
    Ok(ExitCode::SUCCESS)
}

/// Loads the generated city into a fresh `deployment` through the projector's apply path; prints
/// `events`, `apply_events_per_s` and `bytes_per_event`.
fn load(
    args: &ReadSideArgs,
    runtime: &tokio::runtime::Runtime,
    client: &mut tokio_postgres::Client,
    deployment: &Deployment,
    topics: &Topics,
) -> Result<hoctap_store::Schema> {
    // Stamped by the generator's arrival clock: ten years of recording, as the log would hold them.
    let events = hoctap_gen::generate_arrived(&hoctap_gen::Config::new(args.citizens, args.seed));
    let total = events.len();
    let batch = consumed(events, topics);
    runtime.block_on(async {
        deployment.drop_all(client).await?;
        let mut projection = Projection::load_serving(client, deployment)
            .await?
            .with_reference_topic(&topics.reference)
            .with_cache_bytes(args.subject_cache_mib << 20);
        let bar = progress::items(total as u64, "loaded");
        let started = Instant::now();
        for chunk in batch.chunks(args.batch) {
            projection.apply_batch(client, chunk).await?;
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        let elapsed = started.elapsed();
        hoctap_store::analyze(&*client, projection.schema()).await?;
        println!("events: {total}");
        println!("apply_events_per_s: {:.0}", total as f64 / elapsed.as_secs_f64());
        let bytes = hoctap_store::size_bytes(&*client, projection.schema()).await?;
        println!("bytes_per_event: {:.0}", bytes as f64 / total as f64);
        anyhow::Ok(projection.schema().clone())
    })
}

/// Starts `hoctap project` on `deployment` against a throwaway tansu, times its start, feeds it
/// 100 000 more events and reads its resident memory; then starts two members of one group on the
/// same deployment, feeds them 100 000 events more and reads the resident memory of each.
fn projector(
    args: &ReadSideArgs,
    runtime: &tokio::runtime::Runtime,
    deployment: &Deployment,
    loaded_until: i64,
) -> Result<()> {
    let broker = hoctap_kafka::test_broker::TestBroker::start();
    let brokers = broker.brokers();
    let topics = Topics::default();
    runtime.block_on(hoctap_kafka::ensure_topics_with(&brokers, &topics, PARTITIONS as i32, None))?;
    let (client, connection) = runtime.block_on(tokio_postgres::connect(&args.postgres, tokio_postgres::NoTls))?;
    runtime.spawn(connection);
    let feed = Feed { runtime, brokers: &brokers, topics: &topics, client: &client, deployment };

    let started = Instant::now();
    let mut single = Member::start(args, &brokers, deployment)?;
    single.ready(Duration::from_secs(600))?;
    println!("projector_start_ms: {:.0}", started.elapsed().as_secs_f64() * 1000.0);
    // 100 000 more events: another city's subjects (its geography is known already).
    let fed_until = feed.send(args.seed + 1000, loaded_until + 1, &mut [&mut single])?;
    println!("projector_rss_mib: {:.0}", single.rss_mib());
    drop(single);

    // Two members of the group: each owns half of the partitions, and holds only their subjects.
    let mut a = Member::start(args, &brokers, deployment)?;
    let mut b = Member::start(args, &brokers, deployment)?;
    a.ready(Duration::from_secs(600))?;
    b.ready(Duration::from_secs(600))?;
    feed.send(args.seed + 2000, fed_until + 1, &mut [&mut a, &mut b])?;
    println!("projector_pair_partitions: {} / {}", a.assigned(), b.assigned());
    println!("projector_pair_rss_mib: {:.0} / {:.0}", a.rss_mib(), b.rss_mib());
    Ok(())
}

/// A `hoctap project` process of the benchmark, killed when dropped.
struct Member {
    child: std::process::Child,
    ready: std::sync::mpsc::Receiver<()>,
    /// The partitions it last logged as assigned.
    assigned: std::sync::Arc<std::sync::Mutex<String>>,
}

impl Member {
    fn start(args: &ReadSideArgs, brokers: &str, deployment: &Deployment) -> Result<Member> {
        let mut child = Command::new(std::env::current_exe().context("finding this binary")?)
            .args(["project", "--brokers", brokers, "--postgres", &args.postgres, "--deployment", deployment.name()])
            .args(["--group", "bench-read-side", "--metrics-listen", "off", "--dashboard-every", "0"])
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(Stdio::piped())
            .spawn()
            .context("starting hoctap project")?;
        let stderr = child.stderr.take().expect("piped");
        let (ready_tx, ready) = std::sync::mpsc::channel();
        let assigned = std::sync::Arc::new(std::sync::Mutex::new(String::from("none")));
        let logged = assigned.clone();
        std::thread::spawn(move || {
            for line in BufReader::new(stderr).lines().map_while(Result::ok) {
                if line.contains("projector started") {
                    let _ = ready_tx.send(());
                }
                if line.contains("partitions assigned") {
                    // `partitions={0, 2, 4}` (the log is plain text in a pipe).
                    let partitions = line.split("partitions=").nth(1).and_then(|p| p.split('}').next());
                    *logged.lock().expect("not poisoned") = partitions.map_or(line.clone(), |p| format!("{p}}}"));
                }
            }
        });
        Ok(Member { child, ready, assigned })
    }

    fn ready(&mut self, within: Duration) -> Result<()> {
        self.ready.recv_timeout(within).map_err(|_| anyhow::anyhow!("hoctap project did not get ready"))
    }

    fn assigned(&self) -> String {
        self.assigned.lock().expect("not poisoned").clone()
    }

    fn rss_mib(&self) -> f64 {
        let status = std::fs::read_to_string(format!("/proc/{}/status", self.child.id())).unwrap_or_default();
        let kib: f64 = status
            .lines()
            .find_map(|l| l.strip_prefix("VmRSS:"))
            .and_then(|v| v.trim().trim_end_matches("kB").trim().parse().ok())
            .unwrap_or(f64::NAN);
        kib / 1024.0
    }
}

impl Drop for Member {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Produces generated events to the benchmark's broker and waits until the projector members applied them.
struct Feed<'a> {
    runtime: &'a tokio::runtime::Runtime,
    brokers: &'a str,
    topics: &'a Topics,
    client: &'a tokio_postgres::Client,
    deployment: &'a Deployment,
}

impl Feed<'_> {
    /// 100 000 subject events of a city generated with `seed`, stamped from `from` on; returns the last
    /// stamp sent.
    fn send(&self, seed: u64, from: i64, members: &mut [&mut Member]) -> Result<i64> {
        let runtime = self.runtime;
        let more: Vec<Event> = hoctap_gen::generate_stamped(&hoctap_gen::Config::new(2_600, seed), from, 1)
            .into_iter()
            .filter(|e| !e.event_type().is_reference())
            .take(100_000)
            .collect();
        let schema = runtime.block_on(self.deployment.active(self.client))?;
        let applied = |client: &tokio_postgres::Client| -> Result<i64> {
            let offsets = runtime.block_on(hoctap_store::offsets(client, &schema))?;
            Ok(offsets.iter().filter(|((t, _), _)| *t == self.topics.events).map(|(_, o)| *o).sum())
        };
        let before = applied(self.client)?;
        // tansu skips the rest of a producer batch when a fetch starts inside it (shared/broker.md, gap 1).
        let settings = BTreeMap::from([("batch.num.messages".to_owned(), "1".to_owned())]);
        let producer = Producer::new(self.brokers, self.topics.clone(), &settings)?;
        let bar = progress::items(more.len() as u64, "produced");
        for chunk in more.chunks(5_000) {
            let routed: Vec<(Route, &Event)> = chunk.iter().map(|e| (Route::of(e, |_| false), e)).collect();
            runtime.block_on(producer.publish_routed(&routed))?;
            bar.inc(chunk.len() as u64);
        }
        bar.finish_and_clear();
        let bar = progress::items(more.len() as u64, "projected");
        let waited = Instant::now();
        loop {
            let done = applied(self.client)? - before;
            bar.set_position(done as u64);
            if done as usize >= more.len() {
                break;
            }
            for member in members.iter_mut() {
                if let Some(status) = member.child.try_wait()? {
                    bail!("hoctap project stopped: {status}");
                }
            }
            if waited.elapsed() > Duration::from_secs(1800) {
                bail!("hoctap project applied {done} of {} events in 30 minutes", more.len());
            }
            std::thread::sleep(Duration::from_millis(200));
        }
        bar.finish_and_clear();
        Ok(more.iter().filter_map(|e| e.recordedtime).max().unwrap_or(from))
    }
}
