//! Measures replay throughput against plain `serde_json` decoding of the same lines.
//!
//! `cargo run --release -p hoctap-log --example replay_throughput -- [events] [dir] [replay-only]`
//! (default 1 000 000 events in a temporary directory; pass a directory to keep the log, and
//! `replay-only` to skip the single-threaded baselines).

use hoctap_domain::event::Event;
use hoctap_log::Log;
use std::time::Instant;

/// A mix of small and large events, as a campaign's sources publish them.
fn line(i: u64) -> String {
    let id = format!("{:08x}-0000-4000-8000-{:012x}", i >> 16, i);
    let commune = format!("{:05}", i % 10_000);
    let head = format!(
        r#""specversion":"1.0","id":"{id}","source":"congdanhoctap.vn","time":"2025-03-01T09:00:00+07:00","subject":"cit-{i:x}""#
    );
    match i % 4 {
        0 => format!(
            r#"{{{head},"type":"vn.hoctap.registration.submitted.v1","data":{{"subject_kind":"citizen","commune":"{commune}","title":"learning_citizen","cycle_year":2025,"subject_group":"resident"}}}}"#
        ),
        1 => format!(
            r#"{{{head},"type":"vn.hoctap.declaration.submitted.v1","data":{{"title":"learning_citizen","cycle_year":2025,"criteria_set":"CDHT-2021","scores":[{{"criterion":"c1","score":80}},{{"criterion":"c2","score":90}},{{"criterion":"c3","score":75}}],"total":81.7}}}}"#
        ),
        2 => format!(
            r#"{{{head},"type":"vn.hoctap.evidence.uploaded.v1","data":{{"title":"learning_citizen","cycle_year":2025,"criterion":"c1","sha256":"9f86d081884c7d659a2feaa0c55ad015a3bf4f1b2b0b822cd15d6c15b0f00a08","uri":"s3://evidence/{id}.pdf","media_type":"application/pdf","bytes":48213}}}}"#
        ),
        _ => format!(r#"{{{head},"type":"vn.hoctap.subject.relocated.v1","data":{{"commune":"{commune}"}}}}"#),
    }
}

fn rate(n: u64, start: Instant) -> String {
    let secs = start.elapsed().as_secs_f64();
    format!("{:>6.0} ms  {:>5.2} M events/s", secs * 1e3, n as f64 / secs / 1e6)
}

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let mut args = std::env::args().skip(1);
    let n: u64 = args.next().map(|a| a.parse()).transpose()?.unwrap_or(1_000_000);
    let tmp = tempfile::tempdir()?;
    let dir = args.next().map_or_else(|| tmp.path().to_owned(), std::path::PathBuf::from);
    let baselines = args.next().as_deref() != Some("replay-only");

    let mut log = Log::open(&dir)?;
    if log.records() < n {
        let start = Instant::now();
        let mut batch = Vec::new();
        for i in log.records()..n {
            batch.push(Event::from_json(line(i).as_bytes())?);
            if batch.len() == 10_000 {
                log.append(&mut batch)?;
                batch.clear();
            }
        }
        log.append(&mut batch)?;
        println!("append   {}  ({} bytes)", rate(n, start), log.byte_len());
    }
    drop(log);
    println!("workers  {}", std::thread::available_parallelism()?);

    let start = Instant::now();
    let log = Log::open_read(&dir)?;
    let records = log.records();
    println!("open     {}  (scan + checksums)", rate(records, start));

    let start = Instant::now();
    let mut bytes = 0;
    log.replay_raw(|payload| bytes += payload.len())?;
    println!("raw      {}  (framing + checksums)", rate(records, start));

    let mut plain = None;
    if baselines {
        let mut lines = Vec::with_capacity(records as usize);
        log.replay_raw(|payload| lines.push(payload.to_vec()))?;
        let start = Instant::now();
        let mut count = 0u64;
        for l in &lines {
            let v: serde_json::Value = serde_json::from_slice(l)?;
            count += v.is_object() as u64;
        }
        plain = Some(start.elapsed());
        println!("serde    {}  (serde_json::Value, one thread, in memory)", rate(count, start));

        let start = Instant::now();
        for l in &lines {
            Event::from_json_recorded(l)?;
        }
        println!("decode   {}  (Event::from_json_recorded, one thread, in memory)", rate(records, start));

        // The ceiling for replay on this machine: the same decoding split over every core, no I/O.
        let workers = std::thread::available_parallelism()?.get();
        let start = Instant::now();
        std::thread::scope(|s| {
            for part in lines.chunks(lines.len().div_ceil(workers).max(1)) {
                s.spawn(move || part.iter().for_each(|l| drop(Event::from_json_recorded(l))));
            }
        });
        println!("decode×{workers} {}  (the same on {workers} threads, in memory)", rate(records, start));
    }

    for _ in 0..3 {
        let start = Instant::now();
        let mut sum = 0i64;
        let stats = log.replay(|e| sum = sum.wrapping_add(e.recordedtime.unwrap_or(0)))?;
        let took = start.elapsed();
        let ratio = plain.map(|p| format!("  ({:.2}× plain serde_json)", p.as_secs_f64() / took.as_secs_f64()));
        println!("replay   {}{}", rate(stats.records, start), ratio.unwrap_or_default());
        std::hint::black_box(sum);
    }
    Ok(())
}
