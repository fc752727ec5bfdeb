//! `hoctap series`: one title's counts in one unit over time, from the embedded engine. The dates are
//! the API's (`hoctap_api::dates`), the points the domain's (`Engine::series`), the JSON document the
//! API's (`hoctap_api::Series`): the same question gives the points `GET /v1/units/{code}/series` gives
//! from PostgreSQL.

use anyhow::{Context, Result, bail};
use clap::{Args, ValueEnum};
use hoctap_api::{MAX_POINTS, Series, Step, dates};
use hoctap_domain::Day;
use hoctap_domain::codes::{CYCLE_YEARS, Title};
use std::fmt::Write;
use std::path::Path;
use std::process::ExitCode;

#[derive(Debug, Args)]
pub struct SeriesArgs {
    /// The unit's code (01 Hà Nội, a district, a commune); its counts include its children's.
    #[arg(long)]
    scope: String,
    /// The title counted: learning_citizen, learning_family, learning_clan, learning_community,
    /// learning_unit, learning_commune, learning_district, learning_city, …
    #[arg(long)]
    title: String,
    /// The first day of the range (YYYY-MM-DD); default the campaign's first day.
    #[arg(long)]
    from: Option<String>,
    /// The last day of the range (YYYY-MM-DD); default the campaign's last day.
    #[arg(long)]
    to: Option<String>,
    /// How far apart the points are: `month` (every month end, the default), `day`, `week` (every 7
    /// days from --from) or `year` (every 31 December). At most 1000 points.
    #[arg(long, default_value = "month")]
    step: String,
    /// Only what the tracker had recorded by then (RFC 3339, or a date: the end of that day, UTC+07:00).
    #[arg(long)]
    known_at: Option<String>,
    /// `table` for a person, `json` the document of `GET /v1/units/{code}/series`, `csv` one date a row.
    #[arg(long, value_enum, default_value_t = SeriesFormat::Table)]
    format: SeriesFormat,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum SeriesFormat {
    Table,
    Json,
    Csv,
}

/// The question, checked: every mistake is named before the log is read.
struct Question {
    title: Title,
    step: Step,
    known_at: Option<i64>,
    dates: Vec<Day>,
}

fn day(flag: &str, text: Option<&str>, default: Day) -> Result<Day> {
    match text {
        None => Ok(default),
        Some(text) => Day::parse(text).with_context(|| format!("--{flag} `{text}` is not a date YYYY-MM-DD")),
    }
}

fn question(args: &SeriesArgs) -> Result<Question> {
    let title = Title::parse(&args.title).with_context(|| {
        let known: Vec<&str> = Title::ALL.iter().map(|t| t.as_str()).collect();
        format!("--title `{}` is not one of {}", args.title, known.join(", "))
    })?;
    let first = Day::parse(&format!("{}-01-01", CYCLE_YEARS.start())).expect("a date");
    let last = Day::parse(&format!("{}-12-31", CYCLE_YEARS.end())).expect("a date");
    let from = day("from", args.from.as_deref(), first)?;
    let to = day("to", args.to.as_deref(), last)?;
    if to < from {
        bail!("--to {to} is before --from {from}");
    }
    let step = Step::parse(&args.step).with_context(|| {
        let known: Vec<&str> = Step::ALL.iter().map(|s| s.as_str()).collect();
        format!("--step `{}` is not one of {}", args.step, known.join(", "))
    })?;
    let known_at = crate::known_at_arg(args.known_at.as_deref())?;
    let dates = dates(from, to, step, MAX_POINTS).map_err(|e| {
        anyhow::anyhow!("from {from} to {to} by {} is {e}: use a longer --step or a shorter range", step.as_str())
    })?;
    if dates.is_empty() {
        bail!("no {} end lies between --from {from} and --to {to}", step.as_str());
    }
    Ok(Question { title, step, known_at, dates })
}

pub fn run(data_dir: &Path, args: &SeriesArgs) -> Result<ExitCode> {
    let q = question(args)?;
    let mut tracker = crate::tracker::Tracker::load(data_dir)?;
    let bar = crate::progress::items(q.dates.len() as u64, "dates");
    let points = tracker.engine.series_with(&args.scope, q.title, &q.dates, q.known_at, |_| bar.inc(1));
    bar.finish_and_clear();
    let points = points?;
    let series = Series::new(args.scope.clone(), q.title, q.step, q.known_at, points);
    let text = match args.format {
        SeriesFormat::Json => serde_json::to_string_pretty(&series).expect("a series always serialises"),
        SeriesFormat::Csv => csv(&series),
        SeriesFormat::Table => table(&series),
    };
    let printed = crate::print_out(text.trim_end());
    tracker.save_checkpoint();
    printed
}

/// `as_of,registered,declared,evidenced,recognised`, one date a row.
fn csv(series: &Series) -> String {
    let mut out = String::from("as_of,registered,declared,evidenced,recognised\n");
    for p in &series.points {
        let c = &p.counts;
        let _ = writeln!(out, "{},{},{},{},{}", p.as_of, c.registered, c.declared, c.evidenced, c.recognised);
    }
    out
}

/// A heading (unit, title in Vietnamese and its code, what is known) and one aligned row per date.
fn table(series: &Series) -> String {
    let known = series.known_at.as_deref().unwrap_or("everything recorded");
    let mut out = format!(
        "{} ({}) — đơn vị {} — theo {} — known at: {known}\n",
        series.title.label_vi(),
        series.title.as_str(),
        series.unit,
        series.step.as_str()
    );
    let _ = writeln!(
        out,
        "{:<10}  {:>10}  {:>10}  {:>10}  {:>10}",
        "Ngày", "Đăng ký", "Kê khai", "Minh chứng", "Công nhận"
    );
    for p in &series.points {
        let c = &p.counts;
        let _ = writeln!(
            out,
            "{:<10}  {:>10}  {:>10}  {:>10}  {:>10}",
            p.as_of.to_string(),
            c.registered,
            c.declared,
            c.evidenced,
            c.recognised
        );
    }
    out
}
