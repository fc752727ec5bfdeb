//! `hoctap import` through the real binary: a template filled in Excel's way and imported (the review
//! counts its rows), the same file twice (nothing changes), a CSV with Excel's habits (a BOM, `;`, a
//! commune code without its leading zeros: refused by row and column with the hint, its neighbours
//! imported), `--dry-run` (nothing recorded), dates as Excel serial numbers, recognitions and baselines.

use hoctap_tests::{Ran, envelope, hoctap, ingest, ndjson, review_json, run};
use rust_xlsxwriter::{ExcelDateTime, Format, Workbook};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

/// Hà Nội with two communes directly under it, ingested into a fresh data folder.
fn world(dir: &Path) -> PathBuf {
    let commune = |n: u128, code: &str| {
        let data = json!({"code": code, "level": "commune", "name": format!("Phường {code}"), "parent": "01"});
        envelope(n, "admin_unit.established", "2021-01-01T00:00:00+07:00", code, data)
    };
    let lines = [
        envelope(
            1,
            "admin_unit.established",
            "2021-01-01T00:00:00+07:00",
            "01",
            json!({"code": "01", "level": "province", "name": "Hà Nội"}),
        ),
        commune(2, "00001"),
        commune(3, "00004"),
    ];
    let file = dir.join("geo.ndjson");
    std::fs::write(&file, ndjson(lines.iter().map(Value::to_string))).expect("writing the geography");
    let data = dir.join("data");
    let ran = ingest(&data, &[&file]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    data
}

fn import(data: &Path, file: &Path, kind: &str, extra: &[&str]) -> Ran {
    run(hoctap().arg("--data-dir").arg(data).arg("import").arg(file).args(["--kind", kind]).args(extra))
}

/// `(registered, recognised)` learning citizens in `code` on `as_of`.
fn learning_citizens(data: &Path, as_of: &str, code: &str) -> (u64, u64) {
    let review = review_json(data, as_of);
    let units = review["units"].as_array().expect("units");
    let unit = units.iter().find(|u| u["code"] == code).unwrap_or_else(|| panic!("unit {code} in {review:#}"));
    let lc = &unit["titles"]["learning_citizen"];
    let n = |k: &str| lc[k].as_u64().unwrap_or(0);
    (n("registered"), n("recognised"))
}

fn log_len(data: &Path) -> u64 {
    std::fs::metadata(data.join("events.log")).expect("the log").len()
}

/// The template's header row, read back from the XLSX `hoctap import --template` wrote.
fn template_headers(dir: &Path, kind: &str) -> Vec<String> {
    use calamine::Reader;
    let out = dir.join(format!("{kind}.xlsx"));
    let ran = run(hoctap().args(["import", "--template", kind, "--out"]).arg(&out));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let mut book = calamine::open_workbook_auto(&out).expect("the template opens");
    let first = book.sheet_names()[0].clone();
    let range = book.worksheet_range(&first).expect("its first sheet");
    let header = range.rows().next().expect("a header row").iter().map(|c| c.to_string()).collect();
    assert!(book.sheet_names().iter().any(|n| n == "Hướng dẫn"), "a guide sheet: {:?}", book.sheet_names());
    header
}

/// A cell as an officer fills it: text, a number, or a date typed as a date.
enum C {
    T(&'static str),
    N(f64),
    D(u16, u8, u8),
}

/// A workbook with `header` and `rows`, as Excel saves it.
fn workbook(path: &Path, header: &[String], rows: &[Vec<C>]) {
    let mut book = Workbook::new();
    let sheet = book.add_worksheet();
    let date = Format::new().set_num_format("dd/mm/yyyy");
    for (c, h) in header.iter().enumerate() {
        sheet.write_string(0, c as u16, h).unwrap();
    }
    for (r, row) in rows.iter().enumerate() {
        let r = r as u32 + 1;
        for (c, cell) in row.iter().enumerate() {
            let c = c as u16;
            match cell {
                C::T("") => {}
                C::T(t) => {
                    sheet.write_string(r, c, *t).unwrap();
                }
                C::N(n) => {
                    sheet.write_number(r, c, *n).unwrap();
                }
                C::D(y, m, d) => {
                    sheet
                        .write_datetime_with_format(r, c, ExcelDateTime::from_ymd(*y, *m, *d).unwrap(), &date)
                        .unwrap();
                }
            }
        }
    }
    book.save(path).expect("saving the workbook");
}

fn registrations(dir: &Path) -> PathBuf {
    let header = template_headers(dir, "registrations");
    assert_eq!(header[..3], ["Mã đối tượng", "Loại đối tượng", "Mã xã"].map(String::from));
    let path = dir.join("dang-ky.xlsx");
    let row = |subject, commune, group, date| {
        vec![C::T(subject), C::T("citizen"), C::T(commune), C::T("Công dân học tập"), C::N(2025.0), C::T(group), date]
    };
    workbook(
        &path,
        &header,
        &[
            row("cit-a", "00001", "staff", C::D(2025, 1, 15)),
            row("cit-b", "00001", "", C::D(2025, 2, 1)),
            vec![],
            // A date Excel keeps as a plain number: serial 45678 is 2025-01-21.
            row("cit-c", "00004", "resident", C::N(45678.0)),
        ],
    );
    path
}

#[test]
fn a_filled_template_is_imported_once_however_often_it_is_imported() {
    let dir = tempfile::tempdir().unwrap();
    let data = world(dir.path());
    let file = registrations(dir.path());

    let ran = import(&data, &file, "registrations", &[]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains("3 rows: 3 imported, 0 already recorded, 0 refused"), "{}", ran.stdout);
    assert_eq!(learning_citizens(&data, "2025-12-31", "01"), (3, 0));
    assert_eq!(learning_citizens(&data, "2025-12-31", "00004"), (1, 0));
    // The serial number was read as the date it stands for.
    assert_eq!(learning_citizens(&data, "2025-01-20", "00004"), (0, 0));
    assert_eq!(learning_citizens(&data, "2025-01-21", "00004"), (1, 0));

    let before = (log_len(&data), review_json(&data, "2025-12-31"));
    let ran = import(&data, &file, "registrations", &[]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains("3 rows: 0 imported, 3 already recorded, 0 refused"), "{}", ran.stdout);
    assert_eq!((log_len(&data), review_json(&data, "2025-12-31")), before, "the second import changes nothing");
}

#[test]
fn a_csv_with_excel_habits_refuses_the_bad_row_by_row_and_column_and_imports_the_others() {
    let dir = tempfile::tempdir().unwrap();
    let data = world(dir.path());
    let csv = dir.path().join("dang-ky.csv");
    let text = "\u{feff}Mã đối tượng;Loại đối tượng;Mã xã;Danh hiệu;Năm đánh giá;Nhóm công dân;Ngày đăng ký\n\
                cit-a;citizen;00001;Công dân học tập;2025;staff;15/01/2025\n\
                cit-b;citizen;4;learning_citizen;2025;;2025-01-16\n\
                cit-c;citizen;00004;learning_citizen;2025;;45678\n\
                001203004567;citizen;00004;learning_citizen;2025;;16/01/2025\n\
                cit-e;citizen;00004;learning_citizen;2025;;16/01/2025\n\
                cit-e;citizen;00004;learning_citizen;2025;;16/01/2025\n";
    std::fs::write(&csv, text).unwrap();

    // A dry run says the same and records nothing.
    let report = dir.path().join("report.csv");
    let before = log_len(&data);
    let dry = import(&data, &csv, "registrations", &["--dry-run", "--report", report.to_str().unwrap()]);
    assert_eq!(dry.code, Some(1), "{dry:?}");
    assert!(dry.stdout.contains("2 would be imported (dry run: nothing recorded)"), "{}", dry.stdout);
    assert_eq!(log_len(&data), before, "a dry run records nothing");
    assert_eq!(learning_citizens(&data, "2025-12-31", "01"), (0, 0));
    let written = std::fs::read_to_string(&report).unwrap();
    assert!(written.starts_with("\u{feff}row,status,column,rule,message\n"), "{written}");
    assert!(written.contains("3,refused,C (Mã xã),unknown_unit,"), "{written}");
    assert!(written.contains("2,would be imported,,,"), "{written}");
    assert!(written.contains("7,already recorded,,repeated,the same as row 6: recorded once"), "{written}");

    let ran = import(&data, &csv, "registrations", &[]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    let line = |row: &str| {
        ran.stdout
            .lines()
            .find(|l| l.starts_with(&format!("{row} ")))
            .unwrap_or_else(|| panic!("row {row}:\n{}", ran.stdout))
    };
    let commune = line("3");
    assert!(commune.contains("C (Mã xã)") && commune.contains("5 digits") && commune.contains("00004"), "{commune}");
    let serial = line("4");
    assert!(serial.contains("G (Ngày đăng ký)") && serial.contains("excel_serial_date"), "{serial}");
    let cccd = line("5");
    assert!(cccd.contains("A (Mã đối tượng)") && cccd.contains("citizen_id"), "{cccd}");
    assert!(!ran.stdout.contains("001203004567"), "a citizen-ID is never repeated: {}", ran.stdout);
    assert!(line("7").contains("repeated"), "a row repeated in the file: {}", line("7"));
    assert!(ran.stdout.contains("6 rows: 2 imported, 1 already recorded, 3 refused"), "{}", ran.stdout);
    assert_eq!(learning_citizens(&data, "2025-12-31", "01"), (2, 0), "cit-a and cit-e");
    assert_eq!(learning_citizens(&data, "2025-12-31", "00004"), (1, 0), "cit-e");
}

#[test]
fn recognitions_and_baselines_from_a_workbook() {
    let dir = tempfile::tempdir().unwrap();
    let data = world(dir.path());
    let regs = registrations(dir.path());
    assert_eq!(import(&data, &regs, "registrations", &[]).code, Some(0));

    let header = template_headers(dir.path(), "recognitions");
    let grants = dir.path().join("cong-nhan.xlsx");
    let grant = |subject, until| {
        vec![
            C::T(subject),
            C::T("learning_citizen"),
            C::N(2025.0),
            C::T(""),
            C::T("12/QĐ-UBND"),
            C::T("UBND-00001"),
            C::D(2025, 12, 20),
            C::T("01/01/2025"),
            until,
        ]
    };
    workbook(&grants, &header, &[grant("cit-a", C::D(2026, 12, 31)), grant("cit-b", C::T("2024-12-31"))]);
    let ran = import(&data, &grants, "recognitions", &[]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    let refused = ran.stdout.lines().find(|l| l.starts_with("3 ")).unwrap_or_else(|| panic!("{}", ran.stdout));
    assert!(refused.contains("validity_order") && refused.contains("I (Hiệu lực đến)"), "{refused}");
    assert_eq!(learning_citizens(&data, "2025-12-31", "00001"), (2, 1));

    let header = template_headers(dir.path(), "baselines");
    let baselines = dir.path().join("so-lieu.xlsx");
    workbook(
        &baselines,
        &header,
        &[
            vec![C::N(1.0), C::T("adults"), C::N(40.0), C::D(2021, 1, 1)],
            vec![C::T("00004"), C::T("adults"), C::N(10.0), C::D(2021, 1, 1)],
        ],
    );
    let ran = import(&data, &baselines, "baselines", &[]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    let refused = ran.stdout.lines().find(|l| l.starts_with("2 ")).unwrap_or_else(|| panic!("{}", ran.stdout));
    assert!(refused.contains("A (Mã đơn vị)") && refused.contains("01 or 00001"), "{refused}");
    let review = review_json(&data, "2025-12-31");
    let unit = review["units"].as_array().unwrap().iter().find(|u| u["code"] == "00004").unwrap().clone();
    assert_eq!(unit["baselines"]["adults"], 10, "the baseline of 00004 counts: {unit:#}");
}

/// A gateway process (with a tansu broker and its state in PostgreSQL), killed and cleaned up when dropped.
struct Gateway {
    _broker: hoctap_kafka::test_broker::TestBroker,
    child: std::process::Child,
    url: String,
    schema: hoctap_store::Schema,
    _dir: tempfile::TempDir,
}

const TOKEN: &str = "token-xa-00004";

impl Gateway {
    fn start() -> Gateway {
        let broker = hoctap_kafka::test_broker::TestBroker::start();
        let dir = tempfile::tempdir().unwrap();
        let tokens = dir.path().join("tokens.toml");
        let line = format!(
            "[[source]]\nname = \"xa-00004\"\nprovince = \"01\"\ntoken_sha256 = \"{}\"\n",
            hoctap_gateway::hash_token(TOKEN)
        );
        std::fs::write(&tokens, line).unwrap();
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let name = format!("t_import_{:08x}", fastrand::u32(..));
        let deployment = hoctap_store::Deployment::new(&name).unwrap();
        let log = std::fs::File::create(dir.path().join("gateway.log")).unwrap();
        let child = hoctap()
            .args(["gateway", "--brokers", &broker.brokers(), "--listen", &format!("127.0.0.1:{port}")])
            .arg("--tokens")
            .arg(&tokens)
            .args(["--postgres", hoctap_tests::PG_URL, "--deployment", &name])
            .args(["--producer-setting", "batch.num.messages=1"])
            .stdout(std::process::Stdio::null())
            .stderr(log)
            .spawn()
            .expect("starting hoctap gateway");
        let url = format!("http://127.0.0.1:{port}");
        let gateway = Gateway { _broker: broker, child, url, schema: deployment.gateway_schema(), _dir: dir };
        let started = std::time::Instant::now();
        while reqwest::blocking::get(format!("{}/healthz", gateway.url)).map_or(true, |r| !r.status().is_success()) {
            assert!(started.elapsed().as_secs() < 60, "the gateway did not start");
            std::thread::sleep(std::time::Duration::from_millis(200));
        }
        gateway
    }
}

impl Drop for Gateway {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
        let _ = runtime.block_on(hoctap_store::GatewayState::drop_schema(hoctap_tests::PG_URL, &self.schema));
    }
}

#[test]
fn through_the_gateway_each_row_gets_the_gateways_answer() {
    let gateway = Gateway::start();
    let dir = tempfile::tempdir().unwrap();
    // The map, through the gateway's front door.
    let data = json!({"code": "00004", "level": "commune", "name": "Phường 00004", "parent": "01"});
    let map = json!([
        envelope(
            1,
            "admin_unit.established",
            "2021-01-01T00:00:00+07:00",
            "01",
            json!({"code": "01", "level": "province", "name": "Hà Nội"})
        ),
        envelope(2, "admin_unit.established", "2021-01-01T00:00:00+07:00", "00004", data),
    ]);
    let answer = reqwest::blocking::Client::new()
        .post(format!("{}/v1/events", gateway.url))
        .bearer_auth(TOKEN)
        .header("content-type", hoctap_gateway::BATCH)
        .body(map.to_string())
        .send()
        .unwrap();
    assert_eq!(answer.status(), 202, "{:?}", answer.text());

    let csv = dir.path().join("dang-ky.csv");
    std::fs::write(
        &csv,
        "Mã đối tượng,Loại đối tượng,Mã xã,Danh hiệu,Năm đánh giá,Nhóm công dân,Ngày đăng ký\n\
         cit-a,citizen,00004,learning_citizen,2025,,15/01/2025\n\
         cit-b,citizen,4,learning_citizen,2025,,15/01/2025\n",
    )
    .unwrap();
    let post = || {
        run(hoctap().arg("import").arg(&csv).args([
            "--kind",
            "registrations",
            "--gateway",
            &gateway.url,
            "--token",
            TOKEN,
        ]))
    };
    let ran = post();
    assert_eq!(ran.code, Some(1), "{ran:?}");
    assert!(ran.stdout.contains("2 rows: 1 posted to the gateway, 0 already recorded, 1 refused"), "{}", ran.stdout);
    let refused = ran.stdout.lines().find(|l| l.starts_with("3 ")).unwrap_or_else(|| panic!("{}", ran.stdout));
    assert!(refused.contains("C (Mã xã)") && refused.contains("00004"), "{refused}");
    let again = post();
    assert!(
        again.stdout.contains("2 rows: 0 posted to the gateway, 1 already recorded, 1 refused"),
        "{}",
        again.stdout
    );
    // A wrong token is an error, not a report.
    let ran = run(hoctap().arg("import").arg(&csv).args([
        "--kind",
        "registrations",
        "--gateway",
        &gateway.url,
        "--token",
        "nope",
    ]));
    assert_eq!(ran.code, Some(2), "{ran:?}");
}
