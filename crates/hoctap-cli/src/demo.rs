//! `hoctap demo`: the main job on the embedded default, from a generated city to the two reviews.

use crate::ingest::{self, Input};
use crate::tracker::Tracker;
use anyhow::{Context, Result};
use hoctap_domain::{Day, Query, Review};
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

/// The reviews the campaign plans: the phase review (sơ kết) and the final review (tổng kết).
const REVIEWS: [(&str, &str); 2] = [("phase-review", "2025-12-31"), ("final-review", "2030-12-31")];

pub fn run(args: &DemoArgs) -> Result<ExitCode> {
    let started = Instant::now();
    std::fs::create_dir_all(&args.out).with_context(|| format!("creating {}", args.out.display()))?;
    let events = args.out.join("events.ndjson");
    let config = hoctap_gen::Config::new(args.citizens, args.seed).in_province(args.province.clone());
    config.check()?;
    let scope = match &args.province {
        hoctap_geography::Scope::Province(code) => code.clone(),
        hoctap_geography::Scope::All => hoctap_gen::HANOI.to_owned(),
    };
    let file = std::fs::File::create(&events).with_context(|| format!("creating {}", events.display()))?;
    let stats = hoctap_gen::write_ndjson(&config, std::io::BufWriter::with_capacity(1 << 20, file))?;
    eprintln!(
        "generated {} citizens on the official map of {}: {} events for {} subjects in {:.1?} → {}",
        args.citizens,
        match &args.province {
            hoctap_geography::Scope::Province(code) => format!("province {code}"),
            hoctap_geography::Scope::All => "the whole country".to_owned(),
        },
        stats.events,
        stats.subjects,
        started.elapsed(),
        events.display()
    );

    let data_dir = args.out.join("data");
    fresh_log_dir(&data_dir)?;
    let mut tracker = Tracker::open(&data_dir)?;
    let t = Instant::now();
    let summary = ingest::ingest(&mut tracker, &Input::File(events.clone()), &mut |line, r| {
        eprintln!("refused (line {line}): {r}")
    })?;
    eprintln!(
        "ingested {} lines in {:.1?}: {} accepted, {} sent twice, {} refused",
        summary.lines,
        t.elapsed(),
        summary.accepted,
        summary.duplicates,
        summary.refused
    );
    // So that the reviews the demo suggests at the end start from here instead of replaying.
    tracker.save_checkpoint();

    let mut written = Vec::new();
    let mut reviews = Vec::new();
    for (name, date) in REVIEWS {
        let query =
            Query { scope: scope.clone(), as_of: Day::parse(date).expect("date"), known_at: None, milestone: None };
        let t = Instant::now();
        let mut review = tracker.engine.review(&query)?;
        hoctap_report::stamp(&mut review, hoctap_api::now_micros());
        let took = t.elapsed();
        println!("{}", hoctap_report::table(&review, hoctap_report::Rows::Summary).trim_end());
        println!("(computed in {took:.1?})\n");
        written.push(write(
            &args.out.join(format!("{name}-{date}.html")),
            &hoctap_report::html(&[&review], &hoctap_report::page_title(&review)),
        )?);
        written.push(write(&args.out.join(format!("{name}-{date}.csv")), &hoctap_report::csv(&review))?);
        written.push(write(&args.out.join(format!("{name}-{date}.json")), &hoctap_report::json(&review))?);
        reviews.push(review);
    }
    let all: Vec<&Review> = reviews.iter().collect();
    let name = reviews.first().and_then(|r| r.units.first()).map_or(scope.as_str(), |u| u.name.as_str());
    written.push(write(
        &args.out.join("report.html"),
        &hoctap_report::html(&all, &format!("{name} — sơ kết 2025 và tổng kết 2030")),
    )?);
    println!("Reports:");
    for path in &written {
        println!("  {}", path.display());
    }
    println!(
        "Ask more: hoctap --data-dir {} review --scope {scope} --as-of 2027-06-30   (done in {:.1?})",
        data_dir.display(),
        started.elapsed()
    );
    Ok(ExitCode::SUCCESS)
}

fn write(path: &Path, text: &str) -> Result<PathBuf> {
    std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))?;
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
