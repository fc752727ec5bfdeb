//! `hoctap bench …`: benchmarks that print figures (they assert nothing; docs/benchmarks.md keeps results).

use crate::progress;
use crate::tracker::Tracker;
use anyhow::{Context, Result};
use hoctap_domain::{CHECKPOINT_VERSION, Day, Engine, Event, Query};
use hoctap_log::{Log, checkpoint};
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Replay a generated log into memory and compare with plain serde_json decoding of the same
    /// events; time reviews for several dates on the replayed state; then write and load a checkpoint
    /// of it, and time a review that loads a checkpoint and replays the events it lacks.
    Replay(ReplayArgs),
    /// Kafka + PostgreSQL: produce a generated city once, then time raw rdkafka consumption, the
    /// projector into PostgreSQL and a naive one-transaction-per-event projector on the same records.
    Pipeline(crate::bench_pg::PipelineArgs),
    /// The read side at one city size: load a generated city into PostgreSQL through the projector's
    /// apply path, start a projector process on it, then time reviews and series; prints `key: value`.
    ReadSide(crate::bench_read::ReadSideArgs),
    /// The gateway's start time and resident memory after many accepted events: a generated city is
    /// written to the gateway's tables as the gateway writes them, then `hoctap gateway` is started
    /// (with a tail of the log to fold, then without) and asked about known events; prints `key: value`.
    Gateway(crate::bench_gateway::GatewayBenchArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Citizens of the generated city (250 000 gives about 10 M events).
    #[arg(long, default_value_t = 250_000)]
    citizens: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Replay the log in this data folder; when it holds none yet, the generated log is written there
    /// (and kept for the next run) instead of into a temporary folder. The benchmark leaves a
    /// checkpoint there.
    #[arg(long)]
    log: Option<PathBuf>,
    /// Events the checkpoint lacks when the benchmark times a review that loads it and replays them.
    #[arg(long, default_value_t = 100_000)]
    tail: u64,
}

pub fn run(cmd: BenchCommand) -> Result<ExitCode> {
    match cmd {
        BenchCommand::Replay(args) => replay(&args),
        BenchCommand::Pipeline(args) => crate::bench_pg::pipeline(&args),
        BenchCommand::ReadSide(args) => crate::bench_read::read_side(&args),
        BenchCommand::Gateway(args) => crate::bench_gateway::gateway(&args),
    }
}

fn replay(args: &ReplayArgs) -> Result<ExitCode> {
    let temp;
    let dir = match &args.log {
        Some(dir) if dir.join(hoctap_log::EVENTS_FILE).exists() => dir.clone(),
        Some(dir) => {
            write_generated_log(dir.clone(), args.citizens, args.seed)?;
            dir.clone()
        }
        None => {
            temp = tempfile::tempdir().context("creating a temporary folder")?;
            write_generated_log(temp.path().to_owned(), args.citizens, args.seed)?;
            temp.path().to_owned()
        }
    };
    let log = Log::open_read(&dir).with_context(|| format!("opening {}", dir.display()))?;
    println!("log: {} events, {:.1} MiB in {}", log.len(), mib(log.byte_len()), dir.display());
    println!("threads available: {}", std::thread::available_parallelism().map_or(1, |n| n.get()));

    // (b) Plain serde_json decoding of the same events into the same types, from memory, one thread.
    let mut payloads = Vec::with_capacity(log.byte_len() as usize);
    let mut ends = Vec::with_capacity(log.len() as usize);
    log.replay_raw(|payload| {
        payloads.extend_from_slice(payload);
        ends.push(payloads.len());
    })?;
    let t = Instant::now();
    let mut start = 0;
    let mut decoded = 0u64;
    for &end in &ends {
        let event = Event::from_json_recorded(&payloads[start..end]).map_err(|r| anyhow::anyhow!("{r}"))?;
        std::hint::black_box(&event);
        decoded += 1;
        start = end;
    }
    let decode_rate = decoded as f64 / t.elapsed().as_secs_f64();
    drop(payloads);
    drop(ends);

    // Reading and decoding alone (the same parallel replay with a fold that does nothing), to show
    // where the time of (a) goes.
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let mut m = 0u64;
    log.replay_digested(
        &hoctap_log::Position::START,
        |event| event,
        |event| {
            std::hint::black_box(event);
            m += 1;
        },
    )?;
    let decode_only_rate = m as f64 / t.elapsed().as_secs_f64();
    let decode_only_cpu = cpu_seconds() - cpu;

    // (a) The full replay: read, check, decode and fold into the engine.
    let rss_before = rss_kib("VmRSS");
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let engine = replay_into_engine(&log)?;
    let replay_time = t.elapsed();
    let replay_cpu = cpu_seconds() - cpu;
    let rss_after = rss_kib("VmRSS");
    let replay_rate = log.len() as f64 / replay_time.as_secs_f64();

    println!("replay_events: {}", log.len());
    println!("replay_s: {:.2}", replay_time.as_secs_f64());
    println!("replay_events_per_s: {replay_rate:.0} (goal ≥ 1000000)");
    // CPU time is what a busy shared machine distorts least: on two idle cores a replay can go at
    // up to twice its events per CPU-second, as long as the fold's own thread keeps up.
    println!(
        "replay_cpu_s: {replay_cpu:.2} ({:.0} events per CPU-second; without the fold {:.0})",
        log.len() as f64 / replay_cpu,
        m as f64 / decode_only_cpu
    );
    println!("plain_decode_events_per_s: {decode_rate:.0} (one thread, from memory)");
    println!("replay_vs_plain_decode: {:.2} (goal ≥ 0.5)", replay_rate / decode_rate);
    println!("replay_without_fold_events_per_s: {decode_only_rate:.0}");
    let stats = engine.memory_stats();
    println!(
        "state: {} subjects, {} subject records, ~{:.1} MiB by count ({:.0} bytes per subject, {:.0} per event)",
        stats.subjects,
        stats.subject_records,
        mib(stats.approx_bytes),
        stats.approx_bytes as f64 / stats.subjects.max(1) as f64,
        stats.approx_bytes as f64 / stats.events.max(1) as f64,
    );
    if let (Some(before), Some(after)) = (rss_before, rss_after) {
        println!(
            "resident memory grew by {:.1} MiB during the replay ({:.0} bytes per subject); peak {:.1} MiB",
            (after.saturating_sub(before)) as f64 / 1024.0,
            (after.saturating_sub(before)) as f64 * 1024.0 / stats.subjects.max(1) as f64,
            rss_kib("VmHWM").unwrap_or(0) as f64 / 1024.0
        );
    }

    // Reviews for any date answer from the replayed state, without reading the log again. They run
    // right after the replay, as they would in `hoctap review`.
    let mut times = Vec::new();
    let known_at = engine_known_at_middle(&log);
    for date in ["2021-12-31", "2023-06-30", "2025-06-30", "2025-12-31", "2027-12-31", "2030-12-31"] {
        for k in [None, known_at] {
            let t = Instant::now();
            let review = engine.review(&city_query(date, k))?;
            let took = t.elapsed();
            std::hint::black_box(&review);
            println!("review 01 as of {date}{}: {took:>9.2?}", if k.is_some() { " (as known mid-log)" } else { "" });
            times.push(took);
        }
    }
    times.sort();
    let max = times.last().copied().unwrap_or(Duration::ZERO);
    println!(
        "review latency: median {:.2?}, max {:.2?} over {} reviews (goal ≤ 200 ms)",
        times[times.len() / 2],
        max,
        times.len()
    );

    // The checkpoint of the whole state: written as `hoctap review` writes it, then loaded back.
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let state = engine.to_checkpoint();
    let encode = t.elapsed();
    let written = checkpoint::write(&dir, &log.position(), CHECKPOINT_VERSION, &state)?
        .context("another process is writing a checkpoint in the benchmark's log folder")?;
    let write_time = t.elapsed();
    let write_cpu = cpu_seconds() - cpu;
    drop(state);
    println!(
        "checkpoint_write_s: {:.2} (encoding {:.2}; CPU {write_cpu:.2} s)",
        write_time.as_secs_f64(),
        encode.as_secs_f64()
    );
    println!("checkpoint_mib: {:.1} ({:.0} bytes per event)", mib(written), written as f64 / log.len().max(1) as f64);
    let (t, cpu) = (Instant::now(), cpu_seconds());
    let read = checkpoint::read(&dir, CHECKPOINT_VERSION).map_err(|e| anyhow::anyhow!("reading it back: {e}"))?;
    let read_time = t.elapsed();
    let loaded = Engine::from_checkpoint(read.payload())?;
    let load_time = t.elapsed();
    let load_cpu = cpu_seconds() - cpu;
    drop(read);
    println!(
        "checkpoint_load_s: {:.2} (reading {:.2}; CPU {load_cpu:.2} s)",
        load_time.as_secs_f64(),
        read_time.as_secs_f64()
    );
    let phase = city_query("2025-12-31", known_at);
    anyhow::ensure!(loaded.review(&phase)? == engine.review(&phase)?, "the loaded checkpoint answers differently");
    drop(loaded);
    drop(engine);

    // What `hoctap review` does when the checkpoint lacks the last `tail` events: a checkpoint of the
    // log as it stood before them, then the command's own path (load, replay the tail, review).
    let tail = args.tail.min(log.len());
    let before = Log::open_read_prefix(&dir, log.len() - tail)?;
    let state = replay_into_engine(&before)?.to_checkpoint();
    checkpoint::write(&dir, &before.position(), CHECKPOINT_VERSION, &state)?;
    drop(state);
    let t = Instant::now();
    let tracker = Tracker::load(&dir)?;
    let review = tracker.engine.review(&phase)?;
    let took = t.elapsed();
    std::hint::black_box(&review);
    let started = tracker.started;
    anyhow::ensure!(started.replayed == tail, "the review replayed {} events, not the tail", started.replayed);
    println!("tail_events: {tail}");
    println!(
        "review_from_checkpoint_and_tail_s: {:.2} (checkpoint {:.2}, tail {:.2}, review {:.2})",
        took.as_secs_f64(),
        started.checkpoint_load.as_secs_f64(),
        started.replay.as_secs_f64(),
        (took - started.checkpoint_load - started.replay).as_secs_f64()
    );
    Ok(ExitCode::SUCCESS)
}

/// Folds the whole of `log` into a fresh engine, as a full replay does.
fn replay_into_engine(log: &Log) -> Result<Engine> {
    let mut engine = Engine::new();
    engine.reserve(log.len() as usize);
    crate::tracker::fold(&mut engine, log, &hoctap_log::Position::START, drop)?;
    engine.pack();
    Ok(engine)
}

fn city_query(date: &str, known_at: Option<i64>) -> Query {
    Query { scope: "01".into(), as_of: Day::parse(date).expect("date"), known_at, milestone: None }
}

fn mib(bytes: u64) -> f64 {
    bytes as f64 / (1 << 20) as f64
}

/// A transaction time half-way through the log, for the "as known at" reviews.
fn engine_known_at_middle(log: &Log) -> Option<i64> {
    let mut first = None;
    log.replay_raw(|payload| {
        if first.is_none() {
            first = Event::from_json_recorded(payload).ok().and_then(|e| e.recordedtime);
        }
    })
    .ok()?;
    Some((first? + log.last_recorded()?) / 2)
}

/// Generates a city straight into a log (the events are valid by construction; ingest is measured elsewhere).
fn write_generated_log(dir: PathBuf, citizens: u64, seed: u64) -> Result<()> {
    let mut log = Log::open(&dir)?;
    let config = hoctap_gen::Config::new(citizens, seed);
    let bar = progress::items(citizens * 40, "generate");
    let mut chunk = Vec::with_capacity(65_536);
    let mut failure = None;
    let mut seen = std::collections::HashSet::new();
    hoctap_gen::generate(&config, |event| {
        if failure.is_some() || !seen.insert(event.id) {
            return; // repeated copies are the ingest's business, not the replay's
        }
        chunk.push(event.clone());
        if chunk.len() == chunk.capacity() {
            if let Err(e) = log.append(&mut chunk) {
                failure = Some(e);
            }
            bar.inc(chunk.len() as u64);
            chunk.clear();
        }
    });
    if let Some(e) = failure {
        return Err(e.into());
    }
    log.append(&mut chunk)?;
    bar.finish_and_clear();
    Ok(())
}

/// CPU time this process used so far, all threads, user and system (Linux only; 0 elsewhere).
fn cpu_seconds() -> f64 {
    let Ok(stat) = std::fs::read_to_string("/proc/self/stat") else { return 0.0 };
    // Fields after the command name, which is in parentheses and may hold spaces: utime and stime are
    // the 14th and 15th fields of the line, in clock ticks (100 per second on Linux).
    let after_name = stat.rsplit_once(')').map_or("", |(_, rest)| rest);
    let ticks: u64 = after_name.split_whitespace().skip(11).take(2).filter_map(|f| f.parse::<u64>().ok()).sum();
    ticks as f64 / 100.0
}

/// A line of /proc/self/status in KiB (Linux only).
fn rss_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
