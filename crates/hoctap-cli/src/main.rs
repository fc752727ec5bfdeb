//! `hoctap`: the command line of the learning-society tracker on its embedded log (no servers).

mod approve;
mod bench;
mod bench_gateway;
mod bench_pg;
mod bench_read;
mod demo;
mod diff;
mod import;
mod ingest;
mod pipeline;
mod progress;
mod series;
mod serve;
mod services;
mod tracker;

use anyhow::{Context, Result};
use clap::{Parser, Subcommand, ValueEnum};
use hoctap_domain::{Day, Query, time::parse_known_at};
use std::path::PathBuf;
use std::process::ExitCode;

// Replay decodes on worker threads and folds on the main thread: mimalloc keeps those cross-thread
// allocations and frees cheap, where the system allocator spends a large share of the replay.
#[global_allocator]
static GLOBAL: mimalloc::MiMalloc = mimalloc::MiMalloc;

/// Event-sourced tracker for Vietnam's learning-society campaign (xã hội học tập, 2021–2030).
///
/// Events (registrations, declarations, evidence, recognitions, geography, baselines and plan targets)
/// are CloudEvents kept in an append-only log; reviews for any date are computed from them.
#[derive(Debug, Parser)]
#[command(name = "hoctap", version, propagate_version = true)]
struct Cli {
    /// Folder of the embedded event log (created when missing).
    #[arg(long, global = true, env = "HOCTAP_DATA_DIR", default_value = "hoctap-data")]
    data_dir: PathBuf,

    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate NDJSON CloudEvents and append the valid ones to the log.
    ///
    /// Each FILE is one batch: a unit established anywhere in it is known to all its events.
    /// Refused events are listed one a line (event id, field, rule) and kept in the dead-letter
    /// file with their reason. Exit status: 0 all accepted (a repeated event counts as accepted),
    /// 1 some refused (the others are stored), 2 usage or I/O error.
    Ingest {
        /// NDJSON files, one CloudEvent a line; `-` reads standard input.
        #[arg(required = true)]
        files: Vec<PathBuf>,
    },
    /// Import a commune officer's spreadsheet (XLSX or CSV) of registrations, recognitions or
    /// baselines: each row becomes an event, judged and recorded exactly as `ingest` does.
    ///
    /// The report lists each refused row with its row, column, rule and message (hints for Excel's
    /// habits: a commune code whose leading zeros were dropped, a date left as a serial number). Event
    /// ids come from each row's content: importing the same file again changes nothing. `--template
    /// KIND` writes the empty list with its Vietnamese headers. Exit status: 0 every row imported (or
    /// already recorded), 1 some refused (the others are recorded), 2 usage or I/O error.
    Import(import::ImportArgs),
    /// Review a scope at a date: counts per unit and each target's actual, gap and status.
    ///
    /// Or, with --approved NUMBER, the review that decision approved, exactly as it was approved.
    Review(ReviewArgs),
    /// Record that a numbered decision approved a review (a `review.approved` event, through the
    /// path of `ingest`), freezing the instant it is as known at.
    ///
    /// `review --approved NUMBER` then gives that review again, with the same figures, whatever is
    /// recorded later. A decision number approves one review: the same number for another question
    /// is refused (rule approval_conflict). Exit status: 0 recorded (or already recorded), 1 refused,
    /// 2 usage or I/O error, or a review that cannot be given (scope not in force, nothing recorded).
    Approve(approve::ApproveArgs),
    /// What changed in a review between two knowledge times: each figure and target that differs
    /// (unit, title, count, before, after) and the events recorded in between that changed them (id,
    /// type, source, subject, recordedtime).
    ///
    /// `--approved NUMBER` compares the approved review with what is known now (or at --vs): what
    /// changed since the meeting that adopted it. The same as GET /v1/reviews/diff.
    Diff(diff::DiffArgs),
    /// Cut the log at its first damaged record, keeping a copy of everything cut.
    ///
    /// For a log that commands refuse to open because a record in its middle is damaged (the error
    /// names its byte offset): the damaged record and every record after it leave `events.log` and
    /// are kept in `cut-<offset>-<micros>.bin` beside it. Restoring the log from a backup loses less;
    /// use this when there is none. A log without damage is left as it is.
    Repair,
    /// List the administrative units on a date: those in force with their parent, and those dissolved
    /// by then with the unit in force that succeeds them (where their subjects are counted).
    ///
    /// The codes a source system may name in events for that date.
    Units {
        /// The date (YYYY-MM-DD, Vietnam calendar day).
        #[arg(long)]
        as_of: String,
        /// Only what the tracker had recorded by then (RFC 3339, or a date: the end of that day).
        #[arg(long)]
        known_at: Option<String>,
        /// `table` for a person, `json` for a program.
        #[arg(long, value_enum, default_value_t = ListFormat::Table)]
        format: ListFormat,
    },
    /// One title's counts (registered, declared, evidenced, recognised) in one unit over time.
    ///
    /// For each date exactly the counts of the review of --scope on that date; dates on which the
    /// unit is not in force are left out. The same points as GET /v1/units/{code}/series.
    Series(series::SeriesArgs),
    /// Write a deterministic synthetic city on the real map as NDJSON: Hà Nội by default.
    ///
    /// The official units of the province (those `hoctap geography` writes, the 1 July 2025 reform
    /// and its divided communes included), its baselines and targets, and the people of the
    /// campaign's 2021–2030 cycles living in its real communes and wards.
    Generate {
        /// Number of citizens (about 40 events each over 2021–2030).
        #[arg(long, default_value_t = 20_000)]
        citizens: u64,
        /// Seed of the generator: the same seed gives the same bytes.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// A province as it stands from 1 July 2025 (01 Hà Nội, 31 Hải Phòng with Hải Dương, …), with
        /// every old province merged into it; or `all`: the whole country, --citizens spread over it.
        #[arg(long, default_value = "01")]
        province: hoctap_geography::Scope,
        /// Output file; standard output when absent.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// Write Vietnam's official administrative units as NDJSON events: the units before 1 July 2025,
    /// then the reform (districts abolished, provinces merged, communes merged or divided).
    ///
    /// Established on --established, then on 2025-07-01: old communes dissolved into their successors
    /// (all of them when divided, one the default), communes that kept their code reparented under the province (and renamed), new
    /// communes established, districts and merged provinces dissolved. Official names with their
    /// types, national statistics codes. Derived from the PyPI package vietnamadminunits (MIT;
    /// provenance in data/geography/provenance.json); nothing is downloaded. Writing it twice gives
    /// the same events, so ingesting it again changes nothing.
    Geography {
        /// A province as it stands from 1 July 2025 (01 Hà Nội, 31 Hải Phòng with Hải Dương, …), with
        /// every old province merged into it; or `all` for the whole country.
        #[arg(long)]
        province: hoctap_geography::Scope,
        /// The day the old units are established (YYYY-MM-DD, before 2025-07-01).
        #[arg(long, default_value = "2021-01-01")]
        established: String,
        /// Output file; standard output when absent.
        #[arg(long, short)]
        out: Option<PathBuf>,
    },
    /// One command from events to reviews: generate a city on the real map (Hà Nội by default),
    /// record it day by day as it arrived, print the phase review (2025-12-31) as reported at the sơ
    /// kết meeting and approve it, show what changed since, print the final review (2030-12-31), and
    /// write them as HTML, CSV, JSON and XLSX.
    Demo(demo::DemoArgs),
    /// Benchmarks that print figures.
    #[command(subcommand)]
    Bench(bench::BenchCommand),
    /// The reviewers' web dashboard and the HTTP API (reviews, diffs, units, series, approvals,
    /// import templates) from the embedded log, with no other service: open http://127.0.0.1:8090/.
    ///
    /// Vietnamese first, with English; targets against the plans, the units table (sort, filter,
    /// city → district → commune), each indicator 2021–2030, any date and known-at, the approved
    /// reviews and what changed since each. No token is asked (it listens on 127.0.0.1 by default).
    /// The same routes and documents as `hoctap api` (docs/openapi.json). The log is read
    /// once at start: restart to see events ingested since. Stops on Ctrl-C or SIGTERM.
    Serve(serve::ServeArgs),
    /// The front door for source systems: HTTP in, Kafka out (POST /v1/events, bearer tokens per source).
    Gateway(services::GatewayArgs),
    /// The read side over HTTP: reviews and time series from the PostgreSQL read models, and the
    /// dashboard at `/`.
    ///
    /// GET /v1/reviews?scope=&as_of=[&known_at=][&milestone=] answers the same document as
    /// `review --format json`, from the read models that `hoctap project` fills; GET
    /// /v1/units/{code}/series?title=&from=&to=[&step=] one title's counts over time; /healthz and
    /// /metrics (Prometheus). Contract: docs/openapi.json. Stops on Ctrl-C or SIGTERM after the
    /// requests in flight.
    Api(services::ApiArgs),
    /// The projector: a consumer-group member folding the events on Kafka into the PostgreSQL read models.
    ///
    /// Each batch is one transaction holding the read-model change and the consumed offsets; on
    /// assignment the consumer starts at the offsets stored in PostgreSQL, so a crash at any instant
    /// loses nothing and counts nothing twice. Run several with one --group to split the partitions.
    /// Creates the topics, the schemas and the dashboard views when missing. Metrics: /metrics.
    Project(pipeline::ProjectArgs),
    /// Build the read models again from offset 0 into a new generation, check it equals the serving
    /// one, and switch to it atomically (projectors wait only for the last few records).
    Rebuild(pipeline::RebuildArgs),
}

#[derive(Debug, clap::Args)]
struct ReviewArgs {
    /// The unit reviewed, e.g. `01` for Hà Nội. A unit not in force on --as-of answers with what the
    /// reform made of it: a dissolved one (district `001` after 2025-07-01) with its successors' figures,
    /// one not yet established with the units it comes from.
    #[arg(long, required_unless_present = "approved")]
    scope: Option<String>,
    /// Valid date D (YYYY-MM-DD): what was true on that day. Phase review 2025-12-31, final 2030-12-31.
    #[arg(long, required_unless_present = "approved")]
    as_of: Option<String>,
    /// The review approved by this decision number (`hoctap approve`): its scope, date, milestone and
    /// known-at, and the decision stated in the report. The same figures whatever was recorded since.
    #[arg(long, conflicts_with_all = ["scope", "as_of", "known_at", "milestone"])]
    approved: Option<String>,
    /// Transaction time K: only events the tracker had recorded by then count. An RFC 3339 timestamp
    /// (2026-01-15T00:00:00+07:00) or a date (2026-01-15: the end of that day, UTC+07:00). Default: the
    /// recordedtime of the newest event, which the review states, so the same question asked later
    /// with that known-at gives the same figures.
    #[arg(long)]
    known_at: Option<String>,
    /// Milestone year of the targets compared (default: the smallest milestone ≥ the year of D).
    #[arg(long)]
    milestone: Option<i32>,
    #[arg(long, value_enum, default_value_t = Format::Table)]
    format: Format,
    /// Write the review to this file instead of standard output (required for `xlsx`).
    #[arg(long, short)]
    out: Option<PathBuf>,
    /// Start the CSV with a UTF-8 byte order mark, so that Excel on Windows reads "Hà Nội" right.
    #[arg(long)]
    bom: bool,
    /// Rows of the table format: `summary` (the scope's row and, per title, the five units furthest
    /// behind their denominator) or `all` (every unit). Other formats always hold every unit.
    #[arg(long, value_enum, default_value_t = Units::Summary)]
    units: Units,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Units {
    /// The scope's row and the units furthest behind.
    Summary,
    /// Every unit's row.
    All,
}

impl Units {
    fn rows(self) -> hoctap_report::Rows {
        match self {
            Units::Summary => hoctap_report::Rows::Summary,
            Units::All => hoctap_report::Rows::All,
        }
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum ListFormat {
    /// For a person at a terminal.
    Table,
    /// For a program.
    Json,
}

#[derive(Clone, Copy, Debug, PartialEq, Eq, ValueEnum)]
enum Format {
    /// For a person at a terminal (Vietnamese labels with the codes).
    Table,
    /// The review as data, the shape dashboards read.
    Json,
    /// Long-format CSV, one figure a row.
    Csv,
    /// A self-contained HTML page (prints on A4 landscape).
    Html,
    /// An Excel workbook: targets, a sheet per title, digital skills and baselines, what was asked
    /// (needs --out).
    Xlsx,
}

/// What `hoctap review` is asked for.
enum Asked {
    /// A question: scope, date, known-at, milestone.
    Question(Query),
    /// The review a decision approved, by its number.
    Approved(String),
}

impl ReviewArgs {
    fn asked(&self) -> Result<Asked> {
        if let Some(number) = &self.approved {
            return Ok(Asked::Approved(number.clone()));
        }
        let (Some(scope), Some(as_of)) = (&self.scope, &self.as_of) else {
            anyhow::bail!("--scope and --as-of are required (or --approved NUMBER)");
        };
        let as_of = as_of_arg(as_of)?;
        let known_at = known_at_arg(self.known_at.as_deref())?;
        Ok(Asked::Question(Query { scope: scope.clone(), as_of, known_at, milestone: self.milestone }))
    }
}

fn as_of_arg(text: &str) -> Result<Day> {
    Day::parse(text).with_context(|| format!("--as-of `{text}` is not a date YYYY-MM-DD"))
}

fn known_at_arg(text: Option<&str>) -> Result<Option<i64>> {
    let Some(text) = text else { return Ok(None) };
    let k = parse_known_at(text).with_context(|| {
        format!(
            "--known-at `{text}` is neither an RFC 3339 timestamp with an offset (2026-01-15T00:00:00+07:00) \
             nor a date YYYY-MM-DD (the end of that day, UTC+07:00)"
        )
    })?;
    Ok(Some(k))
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    // Logs go to standard error: `RUST_LOG` chooses what (default: warnings, and the services' own
    // information such as assignments, switches and refused records).
    let filter = tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| {
        tracing_subscriber::EnvFilter::new(
            "warn,hoctap_projector=info,hoctap_gateway=info,hoctap_api=info,hoctap_store=info",
        )
    });
    // Colours only on a terminal: a pipe, a log file or a supervisor's journal gets plain text.
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt().with_env_filter(filter).with_writer(std::io::stderr).with_ansi(ansi).init();
    match run(cli) {
        Ok(code) => code,
        Err(e) => {
            eprintln!("error: {e:#}");
            ExitCode::from(2)
        }
    }
}

fn run(cli: Cli) -> Result<ExitCode> {
    match cli.command {
        Command::Ingest { files } => ingest::run(&cli.data_dir, &files),
        Command::Approve(args) => approve::run(&cli.data_dir, &args),
        Command::Import(args) => import::run(&cli.data_dir, &args),
        Command::Diff(args) => diff::run(&cli.data_dir, &args),
        Command::Review(args) => {
            let asked = args.asked()?;
            if args.format == Format::Xlsx && args.out.is_none() {
                anyhow::bail!("--format xlsx writes a binary workbook: name the file with --out FILE.xlsx");
            }
            if args.bom && args.format != Format::Csv {
                anyhow::bail!("--bom applies to --format csv only");
            }
            let mut tracker = tracker::Tracker::load(&cli.data_dir)?;
            let mut review = match &asked {
                Asked::Question(query) => tracker.engine.review(query)?,
                Asked::Approved(number) => tracker.engine.approved_review(number)?,
            };
            hoctap_report::stamp(&mut review, hoctap_api::now_micros());
            let bytes = match args.format {
                Format::Table => hoctap_report::table(&review, args.units.rows()).into_bytes(),
                Format::Json => hoctap_report::json(&review).into_bytes(),
                Format::Csv if args.bom => hoctap_report::csv_with_bom(&review).into_bytes(),
                Format::Csv => hoctap_report::csv(&review).into_bytes(),
                Format::Html => hoctap_report::html(&[&review], &hoctap_report::page_title(&review)).into_bytes(),
                Format::Xlsx => hoctap_report::xlsx(&review).context("building the workbook")?,
            };
            let printed = match &args.out {
                Some(path) => {
                    std::fs::write(path, &bytes).with_context(|| format!("writing {}", path.display()))?;
                    eprintln!("wrote {}", path.display());
                    Ok(ExitCode::SUCCESS)
                }
                None => print_out(String::from_utf8_lossy(&bytes).trim_end()),
            };
            // After the answer is out: the next command starts from here instead of replaying.
            tracker.save_checkpoint();
            printed
        }
        Command::Units { as_of, known_at, format } => {
            let (as_of, known_at) = (as_of_arg(&as_of)?, known_at_arg(known_at.as_deref())?);
            let mut tracker = tracker::Tracker::load(&cli.data_dir)?;
            let units = tracker.engine.units_on(as_of, known_at);
            let text = match format {
                ListFormat::Table => hoctap_report::units_table(&units, as_of),
                ListFormat::Json => {
                    let k = known_at.map(hoctap_domain::time::format_instant);
                    hoctap_report::units_json(&units, as_of, k.as_deref())
                }
            };
            let printed = print_out(text.trim_end());
            tracker.save_checkpoint();
            printed
        }
        Command::Series(args) => series::run(&cli.data_dir, &args),
        Command::Repair => repair(&cli.data_dir),
        Command::Generate { citizens, seed, province, out } => {
            let config = hoctap_gen::Config::new(citizens, seed).in_province(province);
            config.check()?;
            let stats = match out {
                Some(path) => {
                    let file = std::fs::File::create(&path).with_context(|| format!("creating {}", path.display()))?;
                    hoctap_gen::write_ndjson(&config, std::io::BufWriter::with_capacity(1 << 20, file))?
                }
                None => hoctap_gen::write_ndjson(
                    &config,
                    std::io::BufWriter::with_capacity(1 << 20, std::io::stdout().lock()),
                )?,
            };
            eprintln!("generated {} events for {} subjects (seed {seed})", stats.events, stats.subjects);
            Ok(ExitCode::SUCCESS)
        }
        Command::Geography { province, established, out } => geography(&province, &established, out.as_deref()),
        Command::Demo(args) => demo::run(&args),
        Command::Bench(cmd) => bench::run(cmd),
        Command::Serve(args) => serve::run(&cli.data_dir, &args),
        Command::Gateway(args) => services::gateway(&args),
        Command::Api(args) => services::api(&args),
        Command::Project(args) => pipeline::project(&args),
        Command::Rebuild(args) => pipeline::rebuild(&args),
    }
}

/// `hoctap geography`: the official units as NDJSON.
fn geography(province: &hoctap_geography::Scope, established: &str, out: Option<&std::path::Path>) -> Result<ExitCode> {
    use std::io::Write;
    let day =
        Day::parse(established).with_context(|| format!("--established `{established}` is not a date YYYY-MM-DD"))?;
    let official = hoctap_geography::Official::load()?;
    let events = official.events(province, day)?;
    let mut text = String::with_capacity(events.len() * 200);
    for event in &events {
        text.push_str(&event.to_json());
        text.push('\n');
    }
    match out {
        Some(path) => std::fs::write(path, &text).with_context(|| format!("writing {}", path.display()))?,
        None => {
            let mut stdout = std::io::stdout().lock();
            match stdout.write_all(text.as_bytes()).and_then(|()| stdout.flush()) {
                Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => {
                    return Err(e).context("writing to standard output");
                }
                _ => {}
            }
        }
    }
    let source = &official.source;
    eprintln!(
        "wrote {} events of the official geography ({} {}, {})",
        events.len(),
        source.package,
        source.version,
        source.licence
    );
    Ok(ExitCode::SUCCESS)
}

/// Prints the command's output. A reader that stops early (`hoctap review … | head`) is not an error.
fn print_out(text: &str) -> Result<ExitCode> {
    use std::io::Write;
    let mut out = std::io::stdout().lock();
    match writeln!(out, "{text}").and_then(|()| out.flush()) {
        Err(e) if e.kind() != std::io::ErrorKind::BrokenPipe => Err(e).context("writing to standard output"),
        _ => Ok(ExitCode::SUCCESS),
    }
}

fn repair(dir: &std::path::Path) -> Result<ExitCode> {
    let path = dir.join(hoctap_log::EVENTS_FILE);
    let repair = hoctap_log::Log::repair(dir).with_context(|| format!("repairing {}", path.display()))?;
    match repair.cut {
        None => println!("{}: no damage; {} records; nothing cut", path.display(), repair.records),
        Some(cut) => {
            println!(
                "{}: cut at byte {} ({}); {} bytes cut, holding {} whole records after the damage; \
                 a copy of them is in {}; the log holds {} records",
                path.display(),
                cut.offset,
                cut.detail,
                cut.bytes,
                cut.records_after,
                cut.copy.display(),
                repair.records
            );
        }
    }
    Ok(ExitCode::SUCCESS)
}
