//! `hoctap demo`: the main job on the embedded default, from a generated city to the two reviews.

use crate::ingest::{self, Input};
use crate::tracker::Tracker;
use crate::{approve, progress};
use anyhow::{Context, Result};
use hoctap_domain::event::Decision;
use hoctap_domain::time::parse_known_at;
use hoctap_domain::{Day, Event, Query};
use std::io::Write as _;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::time::Instant;

#[derive(Debug, clap::Args)]
pub struct DemoArgs {
    /// Number of citizens of the generated city.
    #[arg(long, default_value_t = 20_000)]
    citizens: u64,
    /// Seed of the generator.
    #[arg(long, default_value_t = 1)]
    seed: u64,
    /// The province to generate and review (as it stands from 1 July 2025: 01 Hà Nội, 31 Hải Phòng
    /// with Hải Dương, …); `all` generates the whole country and reviews Hà Nội.
    #[arg(long, default_value = "01")]
    province: hoctap_geography::Scope,
    /// Folder for the generated events, the demo's own log and the reports (its log is started afresh).
    #[arg(long, default_value = "demo-out")]
    out: PathBuf,
}

/// The sơ kết meeting: the phase review is reported as known at the end of this day (UTC+07:00) …
const MEETING: &str = "2026-01-15";
/// … and adopted by this decision of the province's people's committee (`UBND-<code>`), signed that day.
const DECISION: (&str, &str) = ("15/QĐ-UBND", "2026-01-20");

pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let config = hoctap_gen::Config::new(args.citizens, args.seed).in_province(args.province.clone());
    config.check()?;
    let scope = match &args.province {
        hoctap_geography::Scope::Province(code) => code.clone(),
        hoctap_geography::Scope::All => hoctap_gen::HANOI.to_owned(),
    };
    // Every event with the instant it arrives on the generator's clock, in arrival order.
    let mut events = hoctap_gen::generate_arrived(&config);
    let arrivals: Vec<i64> = events.iter_mut().map(|e| e.recordedtime.take().expect("arrival stamp")).collect();
    let path = args.out.join("events.ndjson");
    write_ndjson(&path, &events)?;
    eprintln!(
        "generated {} citizens on the official map of {}: {} events in {:.1?} → {}",
        args.citizens,
        match &args.province {
            hoctap_geography::Scope::Province(code) => format!("province {code}"),
            hoctap_geography::Scope::All => "the whole country".to_owned(),
        },
        events.len(),
        started.elapsed(),
        path.display()
    );

    let data_dir = args.out.join("data");
    fresh_log_dir(&data_dir)?;
    let mut tracker = Tracker::open(&data_dir)?;
    let t = Instant::now();
    // The history up to the day the decision is signed; the approval is recorded that day.
    let (number, date) = DECISION;
    let signed = parse_known_at(date).expect("date");
    let split = arrivals.partition_point(|&a| a <= signed);
    let mut summary = record_history(&mut tracker, &events[..split], &arrivals[..split])?;

    // The sơ kết meeting: the phase review as the city knew it that day, adopted by a decision.
    let meeting = Query {
        scope: scope.clone(),
        as_of: Day::parse("2025-12-31").expect("date"),
        known_at: parse_known_at(MEETING),
        milestone: None,
    };
    let mut reported = tracker.engine.review(&meeting)?;
    hoctap_report::stamp(&mut reported, hoctap_api::now_micros());
    println!("Sơ kết: the phase review as reported at the meeting on {MEETING} (known at its end, UTC+07:00)\n");
    println!("{}", hoctap_report::table(&reported, hoctap_report::Rows::Summary).trim_end());
    let issuer = format!("UBND-{scope}");
    let decision = Decision { number: number.into(), issuer, date: Day::parse(date).expect("date") };
    let approved = approve::record_at(&mut tracker, &meeting, decision, Some(signed))?;
    if let approve::Outcome::Refused(refusal) = &approved.outcome {
        anyhow::bail!("the demo's approval was refused: {refusal}");
    }
    println!("\n{}\n", approved.summary());

    // The rest of the campaign, with the late reports about 2025.
    summary.add(&record_history(&mut tracker, &events[split..], &arrivals[split..])?);
    let (first, last) = (arrivals.first().copied().unwrap_or(0), arrivals.last().copied().unwrap_or(0));
    eprintln!(
        "recorded the campaign as it happened, each day's events on that day ({} … {}), in {:.1?}: {} accepted, {} sent twice, {} refused",
        Day::of_instant(first),
        Day::of_instant(last),
        t.elapsed(),
        summary.accepted,
        summary.duplicates,
        summary.refused
    );
    drop(events);

    // What the late reports changed since: the same question as known now.
    let diff = tracker.engine.diff(&meeting, None)?;
    println!("What changed since the approved review (hoctap diff --approved '{number}'):\n");
    println!("{}\n", hoctap_report::diff_table(&diff, hoctap_report::Rows::Summary).trim_end());

    let mut written = Vec::new();
    let mut phase = tracker.engine.approved_review(number)?;
    hoctap_report::stamp(&mut phase, hoctap_api::now_micros());
    let final_query =
        Query { scope: scope.clone(), as_of: Day::parse("2030-12-31").expect("date"), known_at: None, milestone: None };
    let t = Instant::now();
    let mut last_review = tracker.engine.review(&final_query)?;
    hoctap_report::stamp(&mut last_review, hoctap_api::now_micros());
    let took = t.elapsed();
    println!("Tổng kết: the final review as known now\n");
    println!("{}", hoctap_report::table(&last_review, hoctap_report::Rows::Summary).trim_end());
    println!("(computed in {took:.1?})\n");
    // The phase review written is the approved one.
    for (name, review) in [("phase-review", &phase), ("final-review", &last_review)] {
        let stem = format!("{name}-{}", review.as_of);
        let html = hoctap_report::html(&[review], &hoctap_report::page_title(review));
        written.push(write(&args.out.join(format!("{stem}.html")), html.as_bytes())?);
        written.push(write(&args.out.join(format!("{stem}.csv")), hoctap_report::csv(review).as_bytes())?);
        written.push(write(&args.out.join(format!("{stem}.json")), hoctap_report::json(review).as_bytes())?);
        let xlsx = hoctap_report::xlsx(review).context("building the workbook")?;
        written.push(write(&args.out.join(format!("{stem}.xlsx")), &xlsx)?);
    }
    written.push(write(&args.out.join("changes-since-approval.json"), hoctap_report::diff_json(&diff).as_bytes())?);
    written.push(write(
        &args.out.join("report.html"),
        hoctap_report::html(&[&phase, &last_review], &format!("{} — sơ kết 2025 và tổng kết 2030", phase_name(&phase)))
            .as_bytes(),
    )?);
    // So that the commands the demo suggests start from here instead of replaying.
    tracker.save_checkpoint();
    println!("Reports:");
    for path in &written {
        println!("  {}", path.display());
    }
    let dir = data_dir.display();
    println!("Ask more:");
    println!("  hoctap --data-dir {dir} review --scope {scope} --as-of 2027-06-30");
    println!("  hoctap --data-dir {dir} review --approved '{number}'");
    println!("  hoctap --data-dir {dir} diff --approved '{number}' --units all");
    println!("Dashboard: hoctap --data-dir {dir} serve   then open http://127.0.0.1:8090/ in a browser");
    println!("(done in {:.1?})", started.elapsed());
    Ok(ExitCode::SUCCESS)
}

/// Ingests the events day by day of their arrival, each day's batch recorded on a clock that reads
/// that day (the first arrival of the day), so that the log holds the history as it happened.
fn record_history(tracker: &mut Tracker, events: &[Event], arrivals: &[i64]) -> Result<ingest::Summary> {
    let bar = progress::items(events.len() as u64, "record");
    let mut total = ingest::Summary::default();
    let mut from = 0;
    while from < events.len() {
        let day = Day::of_instant(arrivals[from]);
        let to = from + arrivals[from..].iter().take_while(|&&a| Day::of_instant(a) == day).count();
        let mut lines = Vec::new();
        for event in &events[from..to] {
            lines.extend_from_slice(event.to_json().as_bytes());
            lines.push(b'\n');
        }
        let summary = ingest::ingest_recorded_at(tracker, &Input::Bytes(lines), arrivals[from], &mut |line, r| {
            eprintln!("refused (day {day}, line {line}): {r}")
        })?;
        total.add(&summary);
        bar.inc((to - from) as u64);
        from = to;
    }
    bar.finish_and_clear();
    Ok(total)
}

/// The name of the scope a review is about, for the report's title.
fn phase_name(review: &hoctap_domain::Review) -> &str {
    review.units.first().map_or(review.scope.as_str(), |u| u.name.as_str())
}

fn write_ndjson(path: &Path, events: &[Event]) -> Result<()> {
    let file = std::fs::File::create(path).with_context(|| format!("creating {}", path.display()))?;
    let mut out = std::io::BufWriter::with_capacity(1 << 20, file);
    for event in events {
        writeln!(out, "{}", event.to_json()).with_context(|| format!("writing {}", path.display()))?;
    }
    out.flush().with_context(|| format!("writing {}", path.display()))
}

fn write(path: &Path, bytes: &[u8]) -> Result<PathBuf> {
    std::fs::write(path, bytes).with_context(|| format!("writing {}", path.display()))?;
    Ok(path.to_owned())
}

/// Removes the demo's previous log, but only the files a log consists of: never a folder of the user's.
fn fresh_log_dir(dir: &Path) -> Result<()> {
    use hoctap_log::checkpoint::{CHECKPOINT_FILE, CHECKPOINT_LOCK_FILE, CHECKPOINT_TEMP_FILE};
    for name in [
        hoctap_log::EVENTS_FILE,
        hoctap_log::DEAD_LETTER_FILE,
        hoctap_log::LOCK_FILE,
        CHECKPOINT_FILE,
        CHECKPOINT_TEMP_FILE,
        CHECKPOINT_LOCK_FILE,
    ] {
        let path = dir.join(name);
        if path.exists() {
            std::fs::remove_file(&path).with_context(|| format!("removing {}", path.display()))?;
        }
    }
    Ok(())
}
