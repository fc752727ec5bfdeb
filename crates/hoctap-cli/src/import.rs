//! `hoctap import`: a commune officer's spreadsheet (XLSX or CSV) of registrations, recognitions or
//! baselines, each row turned into the event a source would send (`hoctap_import`, pure) and recorded through
//! the path of `hoctap ingest` (or posted to the gateway), with a report row by row; and the templates.

use crate::ingest::{self, Hear, Input};
use crate::tracker::Tracker;
use anyhow::{Context, Result};
use hoctap_domain::Refusal;
pub use hoctap_import::Kind;
use hoctap_import::{Cell, Issue, Layout};
use serde_json::Value;
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Where imported events say they come from (`source`) unless `--source` says otherwise.
const SOURCE: &str = "/hoctap/import";

#[derive(Debug, clap::Args)]
pub struct ImportArgs {
    /// The spreadsheet: FILE.xlsx (its sheet named like the template's, else the first) or FILE.csv
    /// (UTF-8, `,` or `;` between fields).
    #[arg(required_unless_present = "template", conflicts_with = "template")]
    file: Option<PathBuf>,
    /// Which list the file holds.
    #[arg(long, value_enum, required_unless_present = "template")]
    kind: Option<Kind>,
    /// Write the empty template of a list instead (Vietnamese headers, a guide sheet in XLSX) to --out.
    #[arg(long, value_enum, value_name = "KIND")]
    template: Option<Kind>,
    /// Where the template goes: FILE.xlsx or FILE.csv (default: `<kind>.xlsx`).
    #[arg(long, short, requires = "template")]
    out: Option<PathBuf>,
    /// Check every row exactly as an import would, and record nothing.
    #[arg(long)]
    dry_run: bool,
    /// Also write the report, one line per row (row, status, column, rule, message), to this CSV file.
    #[arg(long)]
    report: Option<PathBuf>,
    /// The `source` of the events, e.g. `/khuyen-hoc/00004`.
    #[arg(long, default_value = SOURCE)]
    source: String,
    /// Post the events to this gateway (e.g. http://127.0.0.1:8080) instead of the embedded log.
    #[arg(long, requires = "token", conflicts_with = "dry_run")]
    gateway: Option<String>,
    /// The source's bearer token for --gateway.
    #[arg(long, env = "HOCTAP_TOKEN", hide_env_values = true)]
    token: Option<String>,
}

pub fn run(data_dir: &Path, args: &ImportArgs) -> Result<ExitCode> {
    if let Some(kind) = args.template {
        let out = args.out.clone().unwrap_or_else(|| PathBuf::from(format!("{}.xlsx", kind.as_str())));
        return template(kind, &out);
    }
    let (Some(file), Some(kind)) = (&args.file, args.kind) else {
        anyhow::bail!("name the FILE and its --kind (or --template KIND)");
    };
    let table = read_table(file, kind)?;
    let mut report = BTreeMap::new();
    let mut events = Vec::new();
    let layout = Layout::read(kind, &table.header.1, table.header.0);
    match &layout {
        Ok(layout) => judge_rows(layout, &args.source, &table, &mut report, &mut events),
        Err(issues) => {
            report.insert(table.header.0, RowReport { status: Status::Refused, issues: issues.clone() });
        }
    }
    let verb = if let Some(url) = &args.gateway {
        if let Ok(layout) = &layout {
            post(url, args.token.as_deref().unwrap_or_default(), layout, &table, &events, &mut report)?;
        }
        "posted to the gateway"
    } else {
        if let Ok(layout) = &layout {
            record(data_dir, args.dry_run, layout, &table, &events, &mut report)?;
        }
        if args.dry_run { "would be imported (dry run: nothing recorded)" } else { "imported" }
    };
    let refused = report.values().filter(|r| r.status == Status::Refused).count();
    let count = |s: Status| report.values().filter(|r| r.status == s).count();
    print!("{}", report_table(&report));
    println!(
        "{}: {} rows: {} {verb}, {} already recorded, {} refused; {} with warnings",
        file.display(),
        report.len(),
        count(Status::Imported) + count(Status::WouldImport),
        count(Status::Duplicate),
        refused,
        report.values().filter(|r| r.status != Status::Refused && !r.issues.is_empty()).count()
    );
    if let Some(path) = &args.report {
        std::fs::write(path, report_csv(&report)?).with_context(|| format!("writing {}", path.display()))?;
        eprintln!("wrote the report to {}", path.display());
    }
    Ok(if refused > 0 { ExitCode::from(1) } else { ExitCode::SUCCESS })
}

/// The rows of a file: the header's row number and cells, then each row's.
struct Table {
    header: (usize, Vec<String>),
    /// In the order of their row numbers.
    rows: Vec<(usize, Vec<Cell>)>,
}

impl Table {
    /// The cells of row `row` (none when the file has no such row).
    fn cells(&self, row: usize) -> &[Cell] {
        self.rows.binary_search_by_key(&row, |(r, _)| *r).map_or(&[], |i| self.rows[i].1.as_slice())
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Status {
    Imported,
    /// A dry run's row that would be imported.
    WouldImport,
    Duplicate,
    Refused,
}

impl Status {
    fn as_str(self) -> &'static str {
        match self {
            Status::Imported => "imported",
            Status::WouldImport => "would be imported",
            Status::Duplicate => "already recorded",
            Status::Refused => "refused",
        }
    }
}

/// What became of one row; `issues` are the reasons it was refused, or the warnings of an imported one.
struct RowReport {
    status: Status,
    issues: Vec<Issue>,
}

/// Reports the rows that are no event (refused) and the rows that repeat an earlier row of the file (the
/// same content, so the same id: recorded once), and gives the events of the others with their rows.
fn judge_rows(
    layout: &Layout,
    source: &str,
    table: &Table,
    report: &mut BTreeMap<usize, RowReport>,
    events: &mut Vec<(usize, Value)>,
) {
    let mut first_row: std::collections::HashMap<String, usize> = std::collections::HashMap::new();
    for (row, cells) in &table.rows {
        match layout.event(source, *row, cells) {
            Ok(None) => {}
            Ok(Some(event)) => {
                let id = event["id"].as_str().unwrap_or_default().to_owned();
                match first_row.get(&id) {
                    Some(first) => {
                        let message = format!("the same as row {first}: recorded once");
                        let issue = Issue { row: *row, column: None, rule: "repeated".into(), message };
                        report.insert(*row, RowReport { status: Status::Duplicate, issues: vec![issue] });
                    }
                    None => {
                        first_row.insert(id, *row);
                        events.push((*row, event));
                    }
                }
            }
            Err(issues) => {
                report.insert(*row, RowReport { status: Status::Refused, issues });
            }
        }
    }
}

/// The issue a refusal of the domain (or the gateway) makes for its row: its column, and the hint for
/// Excel's habits when one applies.
fn refusal_issue(layout: &Layout, row: usize, cells: &[Cell], field: &str, rule: &str, detail: &str) -> Issue {
    let mut message = detail.to_owned();
    if let Some(hint) = layout.hint(field, cells) {
        message = format!("{message}; {hint}");
    }
    let column = layout.column_of_field(field).or_else(|| Some(format!("({field})")));
    Issue { row, column, rule: rule.to_owned(), message }
}

/// The events through the path of `hoctap ingest`, as one batch (recorded, or only judged).
fn record(
    data_dir: &Path,
    dry_run: bool,
    layout: &Layout,
    table: &Table,
    events: &[(usize, Value)],
    report: &mut BTreeMap<usize, RowReport>,
) -> Result<()> {
    if events.is_empty() {
        return Ok(());
    }
    let mut tracker = if dry_run { Tracker::load(data_dir) } else { Tracker::open(data_dir) }?;
    let mut ndjson = String::new();
    for (_, event) in events {
        ndjson.push_str(&event.to_string());
        ndjson.push('\n');
    }
    let rows: Vec<usize> = events.iter().map(|(row, _)| *row).collect();
    let row_of = |line: u64| rows[line as usize - 1];
    let mut refused: Vec<(usize, Refusal)> = Vec::new();
    let mut warned: Vec<(usize, String, String, String)> = Vec::new();
    let mut duplicates: Vec<usize> = Vec::new();
    let mut hear = Hear {
        refusal: &mut |line, r| refused.push((row_of(line), r.clone())),
        warning: &mut |line, w| {
            warned.push((row_of(line), w.field.to_owned(), w.warning.as_str().to_owned(), w.detail.clone()))
        },
        duplicate: &mut |line| duplicates.push(row_of(line)),
    };
    ingest::ingest_lines(&mut tracker, &Input::Bytes(ndjson.into_bytes()), !dry_run, &mut hear)?;
    if !dry_run {
        tracker.save_checkpoint();
    }
    let imported = if dry_run { Status::WouldImport } else { Status::Imported };
    for (row, _) in events {
        report.insert(*row, RowReport { status: imported, issues: Vec::new() });
    }
    for row in duplicates {
        report.insert(row, RowReport { status: Status::Duplicate, issues: Vec::new() });
    }
    for (row, r) in refused {
        let issue = refusal_issue(layout, row, table.cells(row), &r.field, r.rule.as_str(), &r.detail);
        report.insert(row, RowReport { status: Status::Refused, issues: vec![issue] });
    }
    for (row, field, kind, detail) in warned {
        let issue = refusal_issue(layout, row, table.cells(row), &field, &format!("warning: {kind}"), &detail);
        report.entry(row).or_insert(RowReport { status: imported, issues: Vec::new() }).issues.push(issue);
    }
    Ok(())
}

/// Events per request to the gateway: well under its default limit (10 000 events, and bytes).
const GATEWAY_BATCH: usize = 1_000;

/// Posts the events to the gateway as CloudEvents batches and reads its answer per event.
fn post(
    url: &str,
    token: &str,
    layout: &Layout,
    table: &Table,
    events: &[(usize, Value)],
    report: &mut BTreeMap<usize, RowReport>,
) -> Result<()> {
    let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build()?;
    let client = reqwest::Client::new();
    for chunk in events.chunks(GATEWAY_BATCH) {
        post_batch(&runtime, &client, url, token, layout, table, chunk, report)?;
    }
    Ok(())
}

#[allow(clippy::too_many_arguments)]
fn post_batch(
    runtime: &tokio::runtime::Runtime,
    client: &reqwest::Client,
    url: &str,
    token: &str,
    layout: &Layout,
    table: &Table,
    events: &[(usize, Value)],
    report: &mut BTreeMap<usize, RowReport>,
) -> Result<()> {
    let body = Value::Array(events.iter().map(|(_, e)| e.clone()).collect());
    let endpoint = format!("{}/v1/events", url.trim_end_matches('/'));
    let (status, answer) = runtime.block_on(async {
        let response = client
            .post(&endpoint)
            .bearer_auth(token)
            .header(reqwest::header::CONTENT_TYPE, hoctap_gateway::BATCH)
            .body(body.to_string())
            .send()
            .await
            .with_context(|| format!("posting to {endpoint}"))?;
        let status = response.status();
        let text = response.text().await.context("reading the gateway's answer")?;
        anyhow::Ok((status, text))
    })?;
    let answer: Value = serde_json::from_str(&answer)
        .with_context(|| format!("the gateway answered {status} with something not JSON: {answer}"))?;
    if let Some(error) = answer.get("error").and_then(Value::as_str)
        && answer.get("refused").is_none_or(|r| r.as_array().is_none_or(Vec::is_empty))
    {
        anyhow::bail!("the gateway answered {status}: {error}");
    }
    let ids = |key: &str| -> std::collections::HashSet<String> {
        answer[key]
            .as_array()
            .map(|a| a.iter().filter_map(|v| v.as_str().map(str::to_owned)).collect())
            .unwrap_or_default()
    };
    let (accepted, duplicates) = (ids("accepted"), ids("duplicates"));
    for (row, event) in events {
        let id = event["id"].as_str().unwrap_or_default().to_owned();
        let status = if duplicates.contains(&id) {
            Status::Duplicate
        } else if accepted.contains(&id) {
            Status::Imported
        } else {
            Status::Refused
        };
        report.insert(*row, RowReport { status, issues: Vec::new() });
    }
    let at = |v: &Value| v["index"].as_u64().and_then(|i| events.get(i as usize)).map(|(row, _)| *row);
    let text = |v: &Value, key: &str| v[key].as_str().unwrap_or_default().to_owned();
    for r in answer["refused"].as_array().into_iter().flatten() {
        let Some(row) = at(r) else { continue };
        let issue =
            refusal_issue(layout, row, table.cells(row), &text(r, "field"), &text(r, "rule"), &text(r, "detail"));
        report.insert(row, RowReport { status: Status::Refused, issues: vec![issue] });
    }
    for w in answer["warnings"].as_array().into_iter().flatten() {
        let Some(row) = at(w) else { continue };
        let rule = format!("warning: {}", text(w, "warning"));
        let issue = refusal_issue(layout, row, table.cells(row), &text(w, "field"), &rule, &text(w, "detail"));
        report.entry(row).or_insert(RowReport { status: Status::Imported, issues: Vec::new() }).issues.push(issue);
    }
    Ok(())
}

/// The rows that need a look (refused, or imported with warnings), one line per issue.
fn report_table(report: &BTreeMap<usize, RowReport>) -> String {
    let mut lines: Vec<[String; 5]> = vec![["row", "status", "column", "rule", "message"].map(String::from)];
    for (row, r) in report {
        for issue in &r.issues {
            lines.push([
                row.to_string(),
                r.status.as_str().to_owned(),
                issue.column.clone().unwrap_or_default(),
                issue.rule.clone(),
                issue.message.clone(),
            ]);
        }
    }
    if lines.len() == 1 {
        return String::new();
    }
    let width = |i: usize| lines.iter().map(|l| l[i].chars().count()).max().unwrap_or(0);
    let widths: Vec<usize> = (0..4).map(width).collect();
    let mut out = String::new();
    for line in &lines {
        for (i, w) in widths.iter().enumerate() {
            let pad = w - line[i].chars().count();
            out.push_str(&line[i]);
            out.push_str(&" ".repeat(pad + 2));
        }
        out.push_str(&line[4]);
        out.push('\n');
    }
    out
}

/// Every row, one line per issue (one line for a row without any), as CSV with a BOM for Excel.
fn report_csv(report: &BTreeMap<usize, RowReport>) -> Result<Vec<u8>> {
    let mut writer = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
    writer.write_record(["row", "status", "column", "rule", "message"])?;
    for (row, r) in report {
        let status = r.status.as_str();
        if r.issues.is_empty() {
            writer.write_record([row.to_string().as_str(), status, "", "", ""])?;
        }
        for issue in &r.issues {
            let column = issue.column.clone().unwrap_or_default();
            writer.write_record([row.to_string().as_str(), status, &column, &issue.rule, &issue.message])?;
        }
    }
    writer.into_inner().context("writing the report")
}

fn is_xlsx(path: &Path) -> bool {
    path.extension().and_then(|e| e.to_str()).is_some_and(|e| e.eq_ignore_ascii_case("xlsx"))
}

/// Reads a spreadsheet's rows: XLSX by its extension, CSV otherwise.
fn read_table(path: &Path, kind: Kind) -> Result<Table> {
    let bytes = std::fs::read(path).with_context(|| format!("reading {}", path.display()))?;
    let rows = if is_xlsx(path) { xlsx_rows(bytes, kind) } else { csv_rows(&bytes) }
        .with_context(|| format!("reading {}", path.display()))?;
    let mut rows = rows.into_iter().filter(|(_, cells)| cells.iter().any(|c| *c != Cell::Empty));
    let Some((row, header)) = rows.next() else {
        anyhow::bail!("{} holds no rows: it needs the header row of the template", path.display());
    };
    let header = header
        .into_iter()
        .map(|c| match c {
            Cell::Text(t) => t,
            Cell::Number(n) | Cell::Serial(n) => n.to_string(),
            Cell::Empty => String::new(),
        })
        .collect();
    Ok(Table { header: (row, header), rows: rows.collect() })
}

fn csv_rows(bytes: &[u8]) -> Result<Vec<(usize, Vec<Cell>)>> {
    // Excel writes a BOM in "CSV UTF-8"; a Vietnamese Excel writes `;` between fields where `,` is
    // the decimal comma.
    let bytes = bytes.strip_prefix(b"\xEF\xBB\xBF").unwrap_or(bytes);
    let first = bytes.split(|b| *b == b'\n').next().unwrap_or_default();
    let count = |c: u8| first.iter().filter(|b| **b == c).count();
    let delimiter = if count(b';') > count(b',') { b';' } else { b',' };
    let mut reader =
        csv::ReaderBuilder::new().has_headers(false).flexible(true).delimiter(delimiter).from_reader(bytes);
    let mut rows = Vec::new();
    for record in reader.records() {
        let record = record.map_err(|e| match e.kind() {
            csv::ErrorKind::Utf8 { .. } => anyhow::anyhow!(
                "{e}: the file is not UTF-8; in Excel save it as \"CSV UTF-8 (Comma delimited)\", or import the .xlsx"
            ),
            _ => anyhow::Error::new(e),
        })?;
        let line = record.position().map_or(rows.len() + 1, |p| p.line() as usize);
        let cells =
            record.iter().map(|f| if f.trim().is_empty() { Cell::Empty } else { Cell::Text(f.to_owned()) }).collect();
        rows.push((line, cells));
    }
    Ok(rows)
}

fn xlsx_rows(bytes: Vec<u8>, kind: Kind) -> Result<Vec<(usize, Vec<Cell>)>> {
    use calamine::{Data, Reader};
    let mut book =
        calamine::open_workbook_auto_from_rs(std::io::Cursor::new(bytes)).context("not a readable XLSX workbook")?;
    let names = book.sheet_names();
    let name = names
        .iter()
        .find(|n| n.as_str() == kind.sheet_name())
        .or(names.first())
        .context("a workbook without sheets")?
        .clone();
    let range = book.worksheet_range(&name).with_context(|| format!("reading the sheet `{name}`"))?;
    let (top, left) = range.start().unwrap_or((0, 0));
    let mut rows = Vec::new();
    for (i, row) in range.rows().enumerate() {
        let mut cells = vec![Cell::Empty; left as usize];
        cells.extend(row.iter().map(|d| match d {
            Data::Empty => Cell::Empty,
            Data::Int(n) => Cell::Number(*n as f64),
            Data::Float(n) => Cell::Number(*n),
            Data::DateTime(d) => Cell::Serial(d.as_f64()),
            Data::String(s) | Data::DateTimeIso(s) | Data::DurationIso(s) => Cell::Text(s.clone()),
            Data::Bool(b) => Cell::Text(b.to_string()),
            Data::Error(e) => Cell::Text(format!("#{e:?}")),
        }));
        rows.push((top as usize + i + 1, cells));
    }
    Ok(rows)
}

/// Writes the empty template of a list: XLSX (codes and ids formatted as text so Excel keeps their
/// leading zeros, dates as dates, a guide sheet) or CSV (the header row, with a BOM for Excel).
fn template(kind: Kind, out: &Path) -> Result<ExitCode> {
    let bytes = if is_xlsx(out) {
        hoctap_import::template_xlsx(kind).context("building the template")?
    } else {
        let mut writer = csv::Writer::from_writer(b"\xEF\xBB\xBF".to_vec());
        writer.write_record(hoctap_import::headers(kind))?;
        writer.into_inner().context("writing the template")?
    };
    std::fs::write(out, bytes).with_context(|| format!("writing {}", out.display()))?;
    eprintln!("wrote the template of the {} list to {}", kind.as_str(), out.display());
    Ok(ExitCode::SUCCESS)
}
