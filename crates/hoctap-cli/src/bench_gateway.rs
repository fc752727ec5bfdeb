//! `hoctap bench gateway`: the gateway's start time and resident memory after many accepted events.
//!
//! A generated city is streamed once: its reference events (geography, baselines, targets) are
//! published to the reference topic; its first `--tail` subject events to the events topic (the tail a
//! start must fold, as after a crash between Kafka and PostgreSQL); every other subject event is written
//! to the gateway's tables exactly as the gateway writes an accepted request (`GatewayState::record`,
//! content digest, subject, placement). Then `hoctap gateway` is started as a process twice (with that
//! tail, then without), and its start time, resident memory and a request of known events are measured.
//! The events topic does not hold the events in the tables (producing 10 M records through tansu takes
//! half an hour): a start never reads the topic before the offsets the tables store, so what the topic
//! holds there does not change it. Prints `key: value` lines; asserts nothing.

use crate::progress;
use anyhow::{Context, Result, bail};
use hoctap_domain::Event;
use hoctap_kafka::{Producer, Route, Topics};
use hoctap_store::{Deployment, Folded, GatewayState};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::process::{Command, ExitCode, Stdio};
use std::time::{Duration, Instant};

#[derive(Debug, clap::Args)]
pub struct GatewayBenchArgs {
    /// Citizens of the generated city (about 40 events each: 250 000 gives about 10 M events).
    #[arg(long, default_value_t = 25_000)]
    citizens: u64,
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// Subject events published to the events topic but not to the tables: the tail the first start folds.
    #[arg(long, default_value_t = 20_000)]
    tail: usize,
    /// Known events posted again once the gateway is up (each a duplicate; a tenth of them also with
    /// other content, each a conflict).
    #[arg(long, default_value_t = 1_000)]
    sample: usize,
    /// PostgreSQL (a fresh deployment is created and dropped).
    #[arg(long, env = "HOCTAP_POSTGRES", default_value = "postgresql://postgres@127.0.0.1:5432/postgres")]
    postgres: String,
}

const TOKEN: &str = "bench-national";
const PARTITIONS: &str = "6";
/// Events written to the tables per transaction while loading.
const LOAD_CHUNK: usize = 20_000;

pub fn gateway(args: &GatewayBenchArgs) -> Result<ExitCode> {
    let runtime = tokio::runtime::Runtime::new().context("starting the runtime")?;
    let broker = hoctap_kafka::test_broker::TestBroker::start();
    let brokers = broker.brokers();
    let topics = Topics::default();
    let deployment = Deployment::new(&format!("bench_gw_{:08x}", fastrand::u32(..)))?;
    let schema = deployment.gateway_schema();
    runtime.block_on(hoctap_kafka::ensure_topics_with(&brokers, &topics, PARTITIONS.parse()?, None))?;
    // tansu skips the rest of a producer batch when a fetch starts inside it (shared/broker.md, gap 1).
    let settings = BTreeMap::from([("batch.num.messages".to_owned(), "1".to_owned())]);
    let producer = Producer::new(&brokers, topics.clone(), &settings)?;

    // 1. Stream the city: reference → reference topic, tail → events topic, the rest → the tables.
    let started = Instant::now();
    let mut state = runtime.block_on(GatewayState::connect(&args.postgres, schema.clone()))?;
    let lease = runtime
        .block_on(state.acquire("bench-load", Duration::from_secs(3600)))?
        .context("the fresh deployment's lease is taken")?;
    let first = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH)?.as_micros() as i64;
    let mut n = 0i64;
    let (mut reference, mut tail, mut sample, mut chunk) = (Vec::new(), Vec::new(), Vec::new(), Vec::new());
    let mut loaded = 0u64;
    let bar = progress::items(args.citizens * 40, "events loaded");
    let mut load = |chunk: &mut Vec<Event>, state: &mut GatewayState| -> Result<()> {
        let mut folded = Folded::default();
        for e in chunk.iter() {
            folded.events.push((e.id, e.content_digest(), &e.subject));
            if let Some(commune) = hoctap_gateway::placement(e) {
                folded.placements.push((&e.subject, commune));
            }
            folded.last_recorded = folded.last_recorded.max(e.recordedtime.unwrap_or(0));
        }
        runtime.block_on(state.record(lease.epoch, &folded))?;
        loaded += chunk.len() as u64;
        bar.inc(chunk.len() as u64);
        chunk.clear();
        Ok(())
    };
    let mut failed = None;
    hoctap_gen::generate(&hoctap_gen::Config::new(args.citizens, args.seed), |e| {
        if failed.is_some() {
            return;
        }
        let mut e = e.clone();
        n += 1;
        e.recordedtime = Some(first + n);
        if e.event_type().is_reference() {
            reference.push(e);
        } else if tail.len() < args.tail {
            tail.push(e);
        } else {
            if sample.len() < args.sample {
                sample.push(e.clone());
            }
            chunk.push(e);
            if chunk.len() == LOAD_CHUNK
                && let Err(err) = load(&mut chunk, &mut state)
            {
                failed = Some(err);
            }
        }
    });
    if let Some(err) = failed {
        return Err(err);
    }
    load(&mut chunk, &mut state)?;
    bar.finish_and_clear();
    runtime.block_on(state.release("bench-load", lease.epoch))?;
    let load_s = started.elapsed().as_secs_f64();
    for (what, events) in [("reference", &reference), ("tail", &tail)] {
        let bar = progress::items(events.len() as u64, &format!("{what} events produced"));
        for part in events.chunks(5_000) {
            let routed: Vec<(Route, &Event)> = part.iter().map(|e| (Route::of(e, |_| false), e)).collect();
            runtime.block_on(producer.publish_routed(&routed))?;
            bar.inc(part.len() as u64);
        }
        bar.finish_and_clear();
    }
    let (rows, placements) = runtime.block_on(state.sizes())?;
    let bytes = runtime.block_on(state.total_bytes())?;
    println!("events_generated: {n}");
    println!("reference_events: {} (published to the reference topic, read whole at every start)", reference.len());
    println!("tail_events: {} (published to the events topic only)", tail.len());
    println!("accepted_rows: {rows} (events in the gateway's tables before the first start)");
    println!("placement_rows: {placements}");
    println!("tables_mib: {:.1} ({:.0} bytes per event)", bytes as f64 / 1048576.0, bytes as f64 / rows.max(1) as f64);
    println!("load_s: {load_s:.1} (generate, digest and write the tables)");

    // 2. Start the gateway twice: with the tail to fold, then with none.
    let dir = tempfile::tempdir()?;
    let tokens = dir.path().join("tokens.toml");
    std::fs::write(
        &tokens,
        format!(
            "[[source]]\nname = \"bench\"\nprovince = \"*\"\ntoken_sha256 = \"{}\"\n",
            hoctap_gateway::hash_token(TOKEN)
        ),
    )?;
    for run in ["with_tail", "restart"] {
        let port = std::net::TcpListener::bind("127.0.0.1:0")?.local_addr()?.port();
        let started = Instant::now();
        let mut child = Command::new(std::env::current_exe().context("finding this binary")?)
            .args(["gateway", "--brokers", &brokers, "--postgres", &args.postgres, "--deployment", deployment.name()])
            .args(["--listen", &format!("127.0.0.1:{port}"), "--partitions", PARTITIONS])
            .args(["--producer-setting", "batch.num.messages=1", "--tokens"])
            .arg(&tokens)
            .env("RUST_LOG", "warn")
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .context("starting hoctap gateway")?;
        loop {
            if http(port, "GET", "/healthz", "").is_ok_and(|(status, _)| status == 200) {
                break;
            }
            if let Some(status) = child.try_wait()? {
                bail!("hoctap gateway stopped while starting: {status}");
            }
            if started.elapsed() > Duration::from_secs(1800) {
                let _ = child.kill();
                bail!("hoctap gateway did not get ready within 30 minutes");
            }
            std::thread::sleep(Duration::from_millis(20));
        }
        let start_s = started.elapsed().as_secs_f64();
        let (rss, peak) = memory(child.id())?;
        println!("{run}_start_s: {start_s:.2}");
        println!("{run}_rss_mib: {rss:.1} (peak {peak:.1})");

        // Known events again: each a duplicate; a tenth with other content: each refused.
        let mut body: Vec<serde_json::Value> = sample
            .iter()
            .map(|e| {
                let mut v: serde_json::Value =
                    serde_json::from_str(&Event { recordedtime: None, ..e.clone() }.to_json()).expect("canonical JSON");
                v.as_object_mut().expect("an object").remove("recordedtime");
                v
            })
            .collect();
        let conflicts = body.len() / 10;
        let mut changed: Vec<serde_json::Value> = body[..conflicts].to_vec();
        for v in &mut changed {
            v["source"] = "bench-other-source".into();
        }
        body.extend(changed);
        let asked = Instant::now();
        let (status, answer) = http(port, "POST", "/v1/events", &serde_json::Value::Array(body).to_string())?;
        let request_ms = asked.elapsed().as_secs_f64() * 1000.0;
        let answer: serde_json::Value = serde_json::from_str(&answer).unwrap_or_default();
        let count = |list: &str| answer[list].as_array().map_or(0, Vec::len);
        let refused_as_duplicates =
            answer["refused"].as_array().map_or(0, |r| r.iter().filter(|r| r["rule"] == "duplicate_id").count());
        println!(
            "{run}_request: status {status}, {} duplicates of {} known, {refused_as_duplicates} conflicts refused of {conflicts}, {} accepted, {request_ms:.0} ms",
            count("duplicates"),
            sample.len(),
            count("accepted")
        );
        let (rss, peak) = memory(child.id())?;
        println!("{run}_rss_after_request_mib: {rss:.1} (peak {peak:.1})");
        Command::new("kill").args(["-INT", &child.id().to_string()]).status()?;
        child.wait()?;
    }
    drop(state);
    runtime.block_on(GatewayState::drop_schema(&args.postgres, &schema))?;
    Ok(ExitCode::SUCCESS)
}

/// Resident and peak resident memory of a process, MiB (`VmRSS`, `VmHWM` of `/proc/<pid>/status`).
fn memory(pid: u32) -> Result<(f64, f64)> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status"))?;
    let field = |name: &str| -> f64 {
        status
            .lines()
            .find_map(|l| l.strip_prefix(name))
            .and_then(|v| v.split_whitespace().next()?.parse::<f64>().ok())
            .map_or(f64::NAN, |kib| kib / 1024.0)
    };
    Ok((field("VmRSS:"), field("VmHWM:")))
}

/// One HTTP/1.0 request to 127.0.0.1:`port` (a batch of CloudEvents when there is a body): status and body.
fn http(port: u16, method: &str, path: &str, body: &str) -> Result<(u16, String)> {
    let mut stream = std::net::TcpStream::connect(("127.0.0.1", port))?;
    stream.set_read_timeout(Some(Duration::from_secs(300)))?;
    let mut request = format!("{method} {path} HTTP/1.0\r\nHost: 127.0.0.1\r\n");
    if !body.is_empty() {
        request.push_str(&format!(
            "Authorization: Bearer {TOKEN}\r\nContent-Type: application/cloudevents-batch+json\r\nContent-Length: {}\r\n",
            body.len()
        ));
    }
    request.push_str("\r\n");
    stream.write_all(request.as_bytes())?;
    stream.write_all(body.as_bytes())?;
    let mut response = String::new();
    stream.read_to_string(&mut response)?;
    let status = response.split_whitespace().nth(1).and_then(|s| s.parse().ok()).context("an HTTP status line")?;
    let body = response.split_once("\r\n\r\n").map_or("", |(_, b)| b).to_owned();
    Ok((status, body))
}
