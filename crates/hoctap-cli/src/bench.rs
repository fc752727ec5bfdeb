//! `hoctap bench …`: benchmarks that print figures (they assert nothing; docs/benchmarks.md keeps results).

use crate::progress;
use anyhow::{Context, Result};
use hoctap_domain::{Day, Engine, Event, Query};
use hoctap_log::Log;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::{Duration, Instant};

#[derive(Debug, clap::Subcommand)]
pub enum BenchCommand {
    /// Replay a generated log into memory and compare with plain serde_json decoding of the same
    /// events; then time reviews for several dates on the replayed state.
    Replay(ReplayArgs),
    /// Kafka + PostgreSQL: produce a generated city once, then time raw rdkafka consumption, the
    /// projector into PostgreSQL and a naive one-transaction-per-event projector on the same records.
    Pipeline(crate::bench_pg::PipelineArgs),
    /// The read side at one city size: load a generated city into PostgreSQL through the projector's
    /// apply path, start a projector process on it, then time reviews and series; prints `key: value`.
    ReadSide(crate::bench_read::ReadSideArgs),
}

#[derive(Debug, clap::Args)]
pub struct ReplayArgs {
    /// Citizens of the generated city (250 000 gives about 10 M events).
    #[arg(long, default_value_t = 250_000)]
    citizens: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Replay the log in this data folder; when it holds none yet, the generated log is written there
    /// (and kept for the next run) instead of into a temporary folder.
    #[arg(long)]
    log: Option<PathBuf>,
}

pub fn run(cmd: BenchCommand) -> Result<ExitCode> {
    match cmd {
        BenchCommand::Replay(args) => replay(&args),
        BenchCommand::Pipeline(args) => crate::bench_pg::pipeline(&args),
        BenchCommand::ReadSide(args) => crate::bench_read::read_side(&args),
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
    println!("log: {} events, {:.1} MiB in {}", log.len(), log.byte_len() as f64 / (1 << 20) as f64, dir.display());
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
    let decode_time = t.elapsed();
    let decode_rate = decoded as f64 / decode_time.as_secs_f64();
    drop(payloads);
    drop(ends);

    // Reading and decoding alone (the same parallel replay with a fold that does nothing), to show
    // where the time of (a) goes.
    let t = Instant::now();
    let mut m = 0u64;
    log.replay(|event| {
        std::hint::black_box(&event);
        m += 1;
    })?;
    let decode_only = t.elapsed();

    // (a) The full replay: read, check, decode and fold into the engine.
    let rss_before = rss_kib("VmRSS");
    let t = Instant::now();
    let mut engine = Engine::new();
    engine.reserve(log.len() as usize);
    let mut n = 0u64;
    log.replay(|event| {
        engine.apply(&event);
        n += 1;
    })?;
    engine.pack();
    let replay_time = t.elapsed();
    let rss_after = rss_kib("VmRSS");
    let replay_rate = n as f64 / replay_time.as_secs_f64();

    let stats = engine.memory_stats();
    println!("(a) full replay into memory : {n:>11} events in {replay_time:>9.2?} = {:>10.0} events/s", replay_rate);
    println!(
        "(b) plain serde_json decode  : {decoded:>11} events in {decode_time:>9.2?} = {:>10.0} events/s",
        decode_rate
    );
    println!("ratio replay / plain decode  : {:.2} (goal ≥ 0.5)", replay_rate / decode_rate);
    println!(
        "    (replay without the fold  : {m:>11} events in {decode_only:>9.2?} = {:>10.0} events/s)",
        m as f64 / decode_only.as_secs_f64()
    );
    println!(
        "state: {} subjects, {} subject records, ~{:.1} MiB by count ({:.0} bytes per subject, {:.0} per event)",
        stats.subjects,
        stats.subject_records,
        stats.approx_bytes as f64 / (1 << 20) as f64,
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
            let query =
                Query { scope: "01".into(), as_of: Day::parse(date).expect("date"), known_at: k, milestone: None };
            let t = Instant::now();
            let review = engine.review(&query)?;
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
    Ok(ExitCode::SUCCESS)
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

/// A line of /proc/self/status in KiB (Linux only).
fn rss_kib(key: &str) -> Option<u64> {
    let status = std::fs::read_to_string("/proc/self/status").ok()?;
    let line = status.lines().find(|l| l.starts_with(key))?;
    line.split_whitespace().nth(1)?.parse().ok()
}
