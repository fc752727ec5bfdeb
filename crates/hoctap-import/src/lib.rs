//! The lists of `hoctap import` (no I/O): the columns of each list a commune officer keeps (the Vietnamese
//! headers are written here once, for the template and the reader alike), a spreadsheet row turned into
//! the CloudEvent `hoctap ingest` would read, and the hints for Excel's habits (leading zeros dropped,
//! dates as serial numbers). No I/O: the caller reads the cells and records the events.
//!
//! A row becomes JSON, not a checked `Event`: every value the domain can judge (codes, titles, cycle
//! years, citizen-ID numbers) is left to it, through the same path as ingested NDJSON, and its
//! refusal is brought back here to the row and column ([`Layout::column_of_field`]).

use hoctap_domain::Day;
use hoctap_domain::codes::{Metric, SubjectGroup, SubjectKind, Title};
use serde_json::{Map, Value, json};
use sha2::{Digest as _, Sha256};
use uuid::Uuid;

/// Which list a spreadsheet holds.
#[derive(Clone, Copy, Debug, PartialEq, Eq, clap::ValueEnum)]
pub enum Kind {
    /// Đăng ký danh hiệu: `registration.submitted`, one row per subject, title and cycle year.
    Registrations,
    /// Công nhận danh hiệu: `recognition.granted`, one row per subject recognised by a decision.
    Recognitions,
    /// Số liệu nền (mẫu số): `baseline.recorded`, one row per unit and metric.
    Baselines,
}

impl Kind {
    pub const ALL: [Kind; 3] = [Kind::Registrations, Kind::Recognitions, Kind::Baselines];

    /// The kind named `text` (`registrations`, `recognitions`, `baselines`).
    pub fn parse(text: &str) -> Option<Kind> {
        Kind::ALL.into_iter().find(|k| k.as_str() == text)
    }

    pub fn as_str(self) -> &'static str {
        match self {
            Kind::Registrations => "registrations",
            Kind::Recognitions => "recognitions",
            Kind::Baselines => "baselines",
        }
    }

    /// The name of the sheet the template writes and the reader looks for first.
    pub fn sheet_name(self) -> &'static str {
        match self {
            Kind::Registrations => "Đăng ký",
            Kind::Recognitions => "Công nhận",
            Kind::Baselines => "Số liệu nền",
        }
    }

    /// The columns of this list, in the template's order.
    pub fn columns(self) -> &'static [Column] {
        match self {
            Kind::Registrations => REGISTRATIONS,
            Kind::Recognitions => RECOGNITIONS,
            Kind::Baselines => BASELINES,
        }
    }

    fn event_type(self) -> &'static str {
        match self {
            Kind::Registrations => "vn.hoctap.registration.submitted.v1",
            Kind::Recognitions => "vn.hoctap.recognition.granted.v1",
            Kind::Baselines => "vn.hoctap.baseline.recorded.v1",
        }
    }
}

/// What a column holds, which decides how a cell is read and which hints apply.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Shape {
    /// A pseudonymous id: never a citizen-ID number.
    Subject,
    /// Free text (a decision number, an issuer).
    Text,
    /// An administrative code of `digits` digits (2, 3 or 5 accepted by the domain where a unit of
    /// any level may stand).
    Code { digits: usize },
    /// A whole number.
    Integer,
    /// A calendar date.
    Date,
    /// One of a closed vocabulary; titles also by their Vietnamese name.
    Choice(Vocabulary),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Vocabulary {
    Title,
    SubjectKind,
    SubjectGroup,
    Metric,
}

impl Vocabulary {
    /// The values the domain accepts (the one list is the domain's).
    pub fn values(self) -> Vec<&'static str> {
        match self {
            Vocabulary::Title => Title::ALL.iter().map(|t| t.as_str()).collect(),
            Vocabulary::SubjectKind => SubjectKind::ALL.iter().map(|t| t.as_str()).collect(),
            Vocabulary::SubjectGroup => SubjectGroup::ALL.iter().map(|t| t.as_str()).collect(),
            Vocabulary::Metric => Metric::ALL.iter().map(|t| t.as_str()).collect(),
        }
    }

    /// What a template offers to choose from: the values, titles by their Vietnamese names.
    pub fn choices(self) -> Vec<&'static str> {
        match self {
            Vocabulary::Title => Title::ALL.iter().map(|t| t.label_vi()).collect(),
            _ => self.values(),
        }
    }

    /// The wire value of `text`: a value as the domain spells it (any case), or a title's Vietnamese
    /// name ("Công dân học tập"); otherwise the text as written, for the domain to refuse.
    fn read(self, text: &str) -> String {
        let lower = text.to_lowercase();
        if let Some(v) = self.values().into_iter().find(|v| *v == lower) {
            return v.to_owned();
        }
        if self == Vocabulary::Title
            && let Some(t) = Title::ALL.iter().find(|t| t.label_vi().to_lowercase() == lower)
        {
            return t.as_str().to_owned();
        }
        text.to_owned()
    }
}

/// One column of a list.
#[derive(Debug)]
pub struct Column {
    /// The Vietnamese header the template writes; the reader also accepts [`Column::key`].
    pub header: &'static str,
    /// The field's name in English, also accepted as a header.
    pub key: &'static str,
    pub required: bool,
    pub shape: Shape,
    /// Where the value goes in the event (`data.commune`); a refusal naming this field names this column.
    pub path: &'static str,
    /// What to write, for the template's guide sheet.
    pub help: &'static str,
    pub example: &'static str,
}

const fn col(
    header: &'static str,
    key: &'static str,
    required: bool,
    shape: Shape,
    path: &'static str,
    help: &'static str,
    example: &'static str,
) -> Column {
    Column { header, key, required, shape, path, help, example }
}

const SUBJECT_HELP: &str = "Mã bí danh của đối tượng (pseudonymous id), không ghi họ tên, không ghi số CCCD; \
     với Xã/Huyện/Thành phố học tập: mã đơn vị hành chính";

const REGISTRATIONS: &[Column] = &[
    col("Mã đối tượng", "subject", true, Shape::Subject, "subject", SUBJECT_HELP, "cit-7f3a9c21"),
    col(
        "Loại đối tượng",
        "subject_kind",
        true,
        Shape::Choice(Vocabulary::SubjectKind),
        "data.subject_kind",
        "citizen (công dân), family (hộ gia đình), clan (dòng họ), community (thôn, tổ dân phố), unit (cơ quan, đơn vị), commune, district, province",
        "citizen",
    ),
    col(
        "Mã xã",
        "commune",
        true,
        Shape::Code { digits: 5 },
        "data.commune",
        "Mã xã/phường 5 chữ số (00004); định dạng ô là Văn bản (Text) để giữ số 0 ở đầu",
        "00004",
    ),
    col(
        "Danh hiệu",
        "title",
        true,
        Shape::Choice(Vocabulary::Title),
        "data.title",
        "Tên danh hiệu (Công dân học tập, Gia đình học tập, …) hoặc mã (learning_citizen, learning_family, …)",
        "Công dân học tập",
    ),
    col("Năm đánh giá", "cycle_year", true, Shape::Integer, "data.cycle_year", "Năm của chu kỳ, 2021–2030", "2025"),
    col(
        "Nhóm công dân",
        "subject_group",
        false,
        Shape::Choice(Vocabulary::SubjectGroup),
        "data.subject_group",
        "Chỉ với công dân, có thể bỏ trống: resident (người dân), worker (người lao động), staff (cán bộ, công chức, viên chức), student (học sinh, sinh viên)",
        "resident",
    ),
    col("Ngày đăng ký", "date", true, Shape::Date, "time", "Ngày đăng ký: DD/MM/YYYY hoặc YYYY-MM-DD", "15/01/2025"),
];

const RECOGNITIONS: &[Column] = &[
    col("Mã đối tượng", "subject", true, Shape::Subject, "subject", SUBJECT_HELP, "cit-7f3a9c21"),
    col(
        "Danh hiệu",
        "title",
        true,
        Shape::Choice(Vocabulary::Title),
        "data.title",
        "Tên danh hiệu (Công dân học tập, Gia đình học tập, …) hoặc mã (learning_citizen, learning_family, …)",
        "Công dân học tập",
    ),
    col("Năm đánh giá", "cycle_year", true, Shape::Integer, "data.cycle_year", "Năm của chu kỳ, 2021–2030", "2025"),
    col(
        "Mức độ",
        "level",
        false,
        Shape::Integer,
        "data.level",
        "1 hoặc 2, với danh hiệu công nhận theo mức độ; có thể bỏ trống",
        "",
    ),
    col(
        "Số quyết định",
        "decision_number",
        true,
        Shape::Text,
        "data.decision.number",
        "Số quyết định như in trên văn bản",
        "1234/QĐ-UBND",
    ),
    col(
        "Cơ quan ban hành",
        "decision_issuer",
        true,
        Shape::Text,
        "data.decision.issuer",
        "Cơ quan ban hành quyết định, ví dụ UBND-00004",
        "UBND-00004",
    ),
    col(
        "Ngày ký",
        "decision_date",
        true,
        Shape::Date,
        "data.decision.date",
        "Ngày ký quyết định (cũng là thời điểm của sự kiện): DD/MM/YYYY hoặc YYYY-MM-DD",
        "10/02/2026",
    ),
    col(
        "Hiệu lực từ",
        "valid_from",
        true,
        Shape::Date,
        "data.valid_from",
        "Ngày đầu tiên được tính: DD/MM/YYYY hoặc YYYY-MM-DD",
        "01/01/2025",
    ),
    col(
        "Hiệu lực đến",
        "valid_until",
        true,
        Shape::Date,
        "data.valid_until",
        "Ngày cuối cùng được tính (Công dân học tập năm Y: thường 31/12/Y+1)",
        "31/12/2026",
    ),
];

const BASELINES: &[Column] = &[
    col(
        "Mã đơn vị",
        "unit",
        true,
        Shape::Code { digits: 5 },
        "data.unit",
        "Mã đơn vị hành chính: tỉnh 2 chữ số (01), huyện 3 (001), xã 5 (00004); định dạng ô là Văn bản (Text)",
        "00004",
    ),
    col(
        "Chỉ số",
        "metric",
        true,
        Shape::Choice(Vocabulary::Metric),
        "data.metric",
        "adults (người trưởng thành), households (hộ gia đình), clans (dòng họ), communities (thôn, tổ dân phố), units (cơ quan, đơn vị), unit_staff (cán bộ, công chức, viên chức), adults_in_learning_models",
        "adults",
    ),
    col("Giá trị", "value", true, Shape::Integer, "data.value", "Số đếm, số nguyên ≥ 0", "8500"),
    col(
        "Ngày số liệu",
        "date",
        true,
        Shape::Date,
        "time",
        "Ngày của số liệu (tính từ ngày này): DD/MM/YYYY hoặc YYYY-MM-DD",
        "01/01/2025",
    ),
];

/// A cell as read from a file.
#[derive(Clone, Debug, PartialEq)]
pub enum Cell {
    Empty,
    /// Text as written (a CSV field, an XLSX string).
    Text(String),
    /// An XLSX number (Excel keeps codes and dates typed as numbers this way).
    Number(f64),
    /// An XLSX date or date-time, as Excel's serial number (days since 1899-12-30).
    Serial(f64),
}

/// One problem with one row (or with the header, row 1), for the report.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Issue {
    /// The row as the spreadsheet numbers it (the header is row 1 in a template).
    pub row: usize,
    /// The column as the spreadsheet shows it: `C (Mã xã)`; `None` for the row as a whole.
    pub column: Option<String>,
    pub rule: String,
    pub message: String,
}

/// Where each column of a list stands in the file.
#[derive(Debug)]
pub struct Layout {
    pub kind: Kind,
    /// For each of `kind.columns()`, its index in the file's rows.
    at: Vec<Option<usize>>,
}

/// `A`, `B`, …, `Z`, `AA`: the column's letter as a spreadsheet shows it.
pub fn letter(index: usize) -> String {
    let mut n = index + 1;
    let mut out = Vec::new();
    while n > 0 {
        out.push(b'A' + ((n - 1) % 26) as u8);
        n = (n - 1) / 26;
    }
    out.reverse();
    String::from_utf8(out).expect("ASCII letters")
}

fn normalise(header: &str) -> String {
    header.trim().trim_start_matches('\u{feff}').trim().to_lowercase()
}

impl Layout {
    /// Finds the columns of `kind` in the header row (row `row` of the file): each by its Vietnamese
    /// header or its English key, any case. An unknown header or a missing required column is an issue.
    pub fn read(kind: Kind, header: &[String], row: usize) -> Result<Layout, Vec<Issue>> {
        let columns = kind.columns();
        let mut at = vec![None; columns.len()];
        let mut issues = Vec::new();
        for (i, text) in header.iter().enumerate() {
            let name = normalise(text);
            if name.is_empty() {
                continue;
            }
            match columns.iter().position(|c| normalise(c.header) == name || c.key == name) {
                Some(c) if at[c].is_none() => at[c] = Some(i),
                Some(_) => issues.push(Issue {
                    row,
                    column: Some(format!("{} ({})", letter(i), text.trim())),
                    rule: "header".into(),
                    message: "this column appears twice; keep one".into(),
                }),
                None => issues.push(Issue {
                    row,
                    column: Some(format!("{} ({})", letter(i), text.trim())),
                    rule: "header".into(),
                    message: format!(
                        "not a column of the {} list; its columns are: {} (write `hoctap import --template {}` for the template)",
                        kind.as_str(),
                        headers(kind).join(", "),
                        kind.as_str()
                    ),
                }),
            }
        }
        for (c, column) in columns.iter().enumerate() {
            if column.required && at[c].is_none() {
                issues.push(Issue {
                    row,
                    column: None,
                    rule: "header".into(),
                    message: format!(
                        "the column `{}` is missing (a {} list needs: {})",
                        column.header,
                        kind.as_str(),
                        columns.iter().filter(|c| c.required).map(|c| c.header).collect::<Vec<_>>().join(", ")
                    ),
                });
            }
        }
        if issues.is_empty() { Ok(Layout { kind, at }) } else { Err(issues) }
    }

    /// How the report names a column of the list: `C (Mã xã)`.
    fn name(&self, c: usize) -> String {
        let column = &self.kind.columns()[c];
        match self.at[c] {
            Some(i) => format!("{} ({})", letter(i), column.header),
            None => column.header.to_owned(),
        }
    }

    /// The column a refusal's field (`data.commune`, `data.decision.date`) comes from, when one does.
    pub fn column_of_field(&self, field: &str) -> Option<String> {
        let columns = self.kind.columns();
        let exact = columns.iter().position(|c| c.path == field);
        // The subject of a baseline is the unit's code; the time of a recognition its decision's date.
        let stand_in = || match (self.kind, field) {
            (Kind::Baselines, "subject") => columns.iter().position(|c| c.key == "unit"),
            (Kind::Recognitions, "time") => columns.iter().position(|c| c.key == "decision_date"),
            _ => columns.iter().position(|c| field.starts_with(c.path) && c.path.starts_with("data.")),
        };
        exact.or_else(stand_in).map(|c| self.name(c))
    }

    /// A hint for a refusal of the domain about the cell a field came from (Excel's habits).
    pub fn hint(&self, field: &str, row: &[Cell]) -> Option<String> {
        let columns = self.kind.columns();
        let c = columns.iter().position(|c| c.path == field).or(match (self.kind, field) {
            (Kind::Baselines, "subject") => columns.iter().position(|c| c.key == "unit"),
            _ => None,
        })?;
        let text = cell_text(row.get(self.at[c]?)?)?;
        match columns[c].shape {
            Shape::Code { digits } => code_hint(&text, digits, self.kind),
            Shape::Choice(vocabulary) => Some(format!("write one of: {}", vocabulary.values().join(", "))),
            _ => None,
        }
    }

    /// The event a row stands for, as the JSON a source would send (id derived from the content, so
    /// the same row imported twice is the same event), or the issues that keep the row from being one.
    /// `Ok(None)`: an empty row, skipped.
    pub fn event(&self, source: &str, row: usize, cells: &[Cell]) -> Result<Option<Value>, Vec<Issue>> {
        let columns = self.kind.columns();
        let values: Vec<&Cell> =
            self.at.iter().map(|at| at.and_then(|i| cells.get(i)).unwrap_or(&Cell::Empty)).collect();
        if values.iter().all(|v| cell_text(v).is_none()) {
            return Ok(None);
        }
        let mut issues = Vec::new();
        let mut fields: Vec<(&'static str, Value)> = Vec::new();
        for (c, (column, cell)) in columns.iter().zip(&values).enumerate() {
            let issue =
                |rule: &str, message: String| Issue { row, column: Some(self.name(c)), rule: rule.to_owned(), message };
            let Some(text) = cell_text(cell) else {
                if column.required {
                    issues.push(issue("required", format!("empty; {}", column.help)));
                }
                continue;
            };
            match read_cell(column.shape, cell, &text) {
                Ok(value) => fields.push((column.key, value)),
                Err((rule, message)) => issues.push(issue(rule, message)),
            }
        }
        if !issues.is_empty() {
            return Err(issues);
        }
        let get = |key: &str| fields.iter().find(|(k, _)| *k == key).map(|(_, v)| v.clone());
        let text = |key: &str| get(key).and_then(|v| v.as_str().map(str::to_owned)).unwrap_or_default();
        let time = |key: &str| format!("{}T00:00:00+07:00", text(key));
        let mut data = Map::new();
        let mut put = |key: &str, value: Option<Value>| {
            if let Some(v) = value {
                data.insert(key.to_owned(), v);
            }
        };
        let (subject, time) = match self.kind {
            Kind::Registrations => {
                for key in ["subject_kind", "commune", "title", "cycle_year", "subject_group"] {
                    put(key, get(key));
                }
                (text("subject"), time("date"))
            }
            Kind::Recognitions => {
                for key in ["title", "cycle_year", "level"] {
                    put(key, get(key));
                }
                put(
                    "decision",
                    Some(
                        json!({"number": get("decision_number"), "issuer": get("decision_issuer"), "date": get("decision_date")}),
                    ),
                );
                put("valid_from", get("valid_from"));
                put("valid_until", get("valid_until"));
                (text("subject"), time("decision_date"))
            }
            Kind::Baselines => {
                for key in ["unit", "metric", "value"] {
                    put(key, get(key));
                }
                (text("unit"), time("date"))
            }
        };
        let mut event = json!({
            "specversion": "1.0",
            "source": source,
            "type": self.kind.event_type(),
            "time": time,
            "subject": subject,
            "data": Value::Object(data),
        });
        event["id"] = json!(content_id(&event).to_string());
        Ok(Some(event))
    }
}

/// The header row of a list, in the template's order.
pub fn headers(kind: Kind) -> Vec<&'static str> {
    kind.columns().iter().map(|c| c.header).collect()
}

/// An event's id from its content (everything but the id; the JSON text is deterministic): the same
/// row imported twice is one event, a corrected row a new one.
fn content_id(event: &Value) -> Uuid {
    let digest = Sha256::digest(format!("hoctap import\n{event}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}

/// The cell as text, trimmed; `None` when empty. Numbers as Excel shows them without a format
/// (`4`, not `4.0`).
fn cell_text(cell: &Cell) -> Option<String> {
    let text = match cell {
        Cell::Empty => return None,
        Cell::Text(t) => t.trim().to_owned(),
        Cell::Number(n) | Cell::Serial(n) => number_text(*n),
    };
    (!text.is_empty()).then_some(text)
}

fn number_text(n: f64) -> String {
    if n.fract() == 0.0 && n.abs() < 1e15 { format!("{}", n as i64) } else { n.to_string() }
}

/// Reads one cell of a column of `shape` into its JSON value, or says why it cannot be one.
fn read_cell(shape: Shape, cell: &Cell, text: &str) -> Result<Value, (&'static str, String)> {
    match shape {
        Shape::Subject => {
            let digits = text.chars().filter(char::is_ascii_digit).count();
            // The domain refuses a 12-digit number starting with 0; Excel drops the 0 of a number.
            if text.chars().all(|c| c.is_ascii_digit()) && (digits == 11 || digits == 12) {
                return Err((
                    "citizen_id",
                    "a number of 11–12 digits, the shape of a citizen-ID (CCCD) number (Excel drops its leading 0); \
                     the subject is a pseudonymous id (cit-7f3a9c21), never a CCCD"
                        .into(),
                ));
            }
            Ok(json!(text))
        }
        Shape::Text => Ok(json!(text)),
        Shape::Code { .. } => Ok(json!(text)),
        Shape::Choice(vocabulary) => Ok(json!(vocabulary.read(text))),
        Shape::Integer => integer(text).map(|n| json!(n)).ok_or(("integer", format!("`{text}` is not a whole number"))),
        Shape::Date => {
            let day = match cell {
                Cell::Serial(n) | Cell::Number(n) => serial_day(*n).ok_or((
                    "date",
                    format!("{} is not a date Excel can hold; write the date as DD/MM/YYYY", number_text(*n)),
                ))?,
                _ => text_day(text)?,
            };
            Ok(json!(day.to_string()))
        }
    }
}

fn integer(text: &str) -> Option<i64> {
    let n: f64 = text.parse().ok()?;
    (n.fract() == 0.0 && n.abs() < 1e15).then_some(n as i64)
}

/// Excel's day number (1900 date system: serial 1 is 1900-01-01, 60 the phantom 1900-02-29, 25569
/// is 1970-01-01) as a day; the time of day is dropped.
pub fn serial_day(serial: f64) -> Option<Day> {
    if !(61.0..2_958_466.0).contains(&serial) {
        return None;
    }
    Some(Day(serial.floor() as i32 - 25_569))
}

/// A date written as text: `YYYY-MM-DD` (also with a time after it), or `DD/MM/YYYY` as Vietnam writes
/// it (`D/M/YYYY`, `-` or `.` also accepted).
fn text_day(text: &str) -> Result<Day, (&'static str, String)> {
    if text.len() >= 10
        && let Some(day) = text.get(..10).and_then(Day::parse)
    {
        return Ok(day);
    }
    let parts: Vec<&str> = text.split(['/', '-', '.']).collect();
    if let [d, m, y] = parts[..]
        && y.len() == 4
        && let (Ok(d), Ok(m), Ok(y)) = (d.parse::<u32>(), m.parse::<u32>(), y.parse::<i32>())
        && let Some(day) = Day::from_ymd(y, m, d)
    {
        return Ok(day);
    }
    if let Ok(n) = text.parse::<f64>()
        && let Some(day) = serial_day(n)
        && text.len() == 5
    {
        return Err((
            "excel_serial_date",
            format!(
                "`{text}` is a date as Excel numbers it (serial {text} = {}); a CSV keeps the number, not the date: \
                 write it as DD/MM/YYYY or YYYY-MM-DD (in Excel, format the column as a date before saving as CSV)",
                day.date().format("%d/%m/%Y")
            ),
        ));
    }
    Err(("date", format!("`{text}` is not a date; write DD/MM/YYYY (15/01/2025) or YYYY-MM-DD (2025-01-15)")))
}

/// The hint for a code the domain refused: a number shorter than a code is one whose leading zeros
/// Excel dropped.
fn code_hint(text: &str, digits: usize, kind: Kind) -> Option<String> {
    if text.is_empty() || !text.chars().all(|c| c.is_ascii_digit()) || text.len() >= digits {
        return None;
    }
    let padded = format!("{text:0>digits$}");
    Some(match kind {
        Kind::Baselines => format!(
            "codes have 2 (province), 3 (district) or 5 (commune) digits; Excel drops leading zeros: \
             did you mean {} or {padded}? Format the column as Text",
            format_args!("{text:0>2}")
        ),
        _ => format!(
            "a commune code has {digits} digits: did Excel drop the leading zeros? write {padded} (format the column as Text)"
        ),
    })
}

/// The empty template of a list as an XLSX workbook: the headers in bold, codes and ids formatted as
/// text so that Excel keeps their leading zeros, dates as dates, drop-downs of the allowed values, and a
/// guide sheet ("Hướng dẫn") explaining each column. `hoctap import --template` and the dashboard's
/// download links give it.
pub fn template_xlsx(kind: Kind) -> Result<Vec<u8>, rust_xlsxwriter::XlsxError> {
    use rust_xlsxwriter::{DataValidation, DataValidationErrorStyle, Format, Workbook};
    let mut book = Workbook::new();
    let bold = Format::new().set_bold().set_background_color("#DDEBF7");
    let text = Format::new().set_num_format("@");
    let date = Format::new().set_num_format("dd/mm/yyyy");
    let sheet = book.add_worksheet().set_name(kind.sheet_name())?;
    for (c, column) in kind.columns().iter().enumerate() {
        let c = c as u16;
        sheet.write_string_with_format(0, c, column.header, &bold)?;
        sheet.set_column_width(c, column.header.chars().count().max(14) as f64 + 2.0)?;
        match column.shape {
            Shape::Date => sheet.set_column_format(c, &date)?,
            Shape::Integer => sheet,
            _ => sheet.set_column_format(c, &text)?,
        };
        if let Shape::Choice(vocabulary) = column.shape {
            // A drop-down of the values (titles by their Vietnamese names); a warning, not a stop,
            // since the codes are accepted too.
            let list = DataValidation::new()
                .allow_list_strings(&vocabulary.choices())?
                .set_error_style(DataValidationErrorStyle::Warning);
            sheet.add_data_validation(1, c, 65_535, c, &list)?;
        }
    }
    sheet.set_freeze_panes(1, 0)?;
    let guide = book.add_worksheet().set_name("Hướng dẫn")?;
    for (c, h) in ["Cột", "Bắt buộc", "Cách ghi", "Ví dụ"].iter().enumerate() {
        guide.write_string_with_format(0, c as u16, *h, &bold)?;
    }
    for (r, column) in kind.columns().iter().enumerate() {
        let r = r as u32 + 1;
        guide.write_string(r, 0, column.header)?;
        guide.write_string(r, 1, if column.required { "có" } else { "không" })?;
        guide.write_string(r, 2, column.help)?;
        guide.write_string(r, 3, column.example)?;
    }
    guide.set_column_width(0, 20)?;
    guide.set_column_width(2, 90)?;
    guide.set_column_width(3, 20)?;
    book.save_to_buffer()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> Cell {
        Cell::Text(s.into())
    }

    fn layout(kind: Kind) -> Layout {
        let header: Vec<String> = headers(kind).into_iter().map(str::to_owned).collect();
        Layout::read(kind, &header, 1).expect("the template's headers")
    }

    #[test]
    fn a_row_becomes_the_event_a_source_would_send_with_an_id_from_its_content() {
        let l = layout(Kind::Registrations);
        let row = [t("cit-1"), t("citizen"), t("00004"), t("Công dân học tập"), t("2025"), t("staff"), t("15/01/2025")];
        let event = l.event("/hoctap/import", 2, &row).unwrap().unwrap();
        assert_eq!(event["time"], "2025-01-15T00:00:00+07:00");
        assert_eq!(event["data"]["title"], "learning_citizen");
        assert_eq!(event["data"]["cycle_year"], 2025);
        let again = l.event("/hoctap/import", 9, &row).unwrap().unwrap();
        assert_eq!(event["id"], again["id"], "the same content, the same id");
        let mut other = row.clone();
        other[4] = t("2026");
        assert_ne!(event["id"], l.event("/hoctap/import", 2, &other).unwrap().unwrap()["id"]);
        hoctap_domain::Event::from_json(event.to_string().as_bytes()).expect("a valid event");
    }

    #[test]
    fn excel_habits_get_hints() {
        let l = layout(Kind::Registrations);
        let hint = l.hint("data.commune", &[t("cit-1"), t("citizen"), Cell::Number(4.0)]).unwrap();
        assert!(hint.contains("5 digits") && hint.contains("00004"), "{hint}");
        // A serial number in a CSV's date column is named as such.
        let row = [t("cit-1"), t("citizen"), t("00004"), t("learning_citizen"), t("2025"), Cell::Empty, t("45678")];
        let issues = l.event("s", 3, &row).unwrap_err();
        assert_eq!(issues[0].rule, "excel_serial_date");
        assert_eq!(issues[0].column.as_deref(), Some("G (Ngày đăng ký)"));
        assert!(issues[0].message.contains("21/01/2025"), "{}", issues[0].message);
        // In an XLSX it is a date.
        let mut row = row;
        row[6] = Cell::Serial(45678.0);
        assert_eq!(l.event("s", 3, &row).unwrap().unwrap()["time"], "2025-01-21T00:00:00+07:00");
        // A CCCD whose leading 0 Excel dropped is still refused.
        row[0] = Cell::Number(1_203_004_567.0 * 10.0 + 1.0);
        assert_eq!(l.event("s", 3, &row).unwrap_err()[0].rule, "citizen_id");
    }

    #[test]
    fn headers_are_matched_by_name_or_key_and_unknown_ones_named() {
        let header = ["unit", "Chỉ số", " GIÁ TRỊ ", "\u{feff}Ngày số liệu"].map(String::from);
        assert!(Layout::read(Kind::Baselines, &header, 1).is_ok());
        let header = ["Mã đơn vị", "Chi so"].map(String::from);
        let issues = Layout::read(Kind::Baselines, &header, 1).unwrap_err();
        assert_eq!(issues[0].column.as_deref(), Some("B (Chi so)"));
        assert!(issues.iter().any(|i| i.message.contains("`Giá trị` is missing")), "{issues:?}");
        assert_eq!(letter(0), "A");
        assert_eq!(letter(26), "AA");
    }

    #[test]
    fn refusals_find_their_column() {
        let l = layout(Kind::Recognitions);
        assert_eq!(l.column_of_field("data.decision.date").as_deref(), Some("G (Ngày ký)"));
        assert_eq!(l.column_of_field("time").as_deref(), Some("G (Ngày ký)"));
        assert_eq!(l.column_of_field("data.valid_until").as_deref(), Some("I (Hiệu lực đến)"));
        assert_eq!(layout(Kind::Baselines).column_of_field("subject").as_deref(), Some("A (Mã đơn vị)"));
    }
}
