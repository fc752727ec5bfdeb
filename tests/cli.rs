//! The command-line contract of `hoctap`: help for every command, exit statuses, idempotent ingest from
//! files and standard input, the review's JSON shape, CSV and table output, deterministic generation,
//! and the checkpoint beside the log (used when it matches the log, ignored with a note when not).

use hoctap_domain::Event;
use hoctap_tests::{Ran, hoctap, ingest, ndjson, review_json, run, scenario_world, source_line, without_generated_at};
use serde_json::Value;
use std::collections::BTreeSet;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Stdio;

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

/// The hand-checked world as its sources sent it (no `recordedtime`; event 80 twice).
fn scenario_ndjson() -> String {
    ndjson(scenario_world().iter().map(source_line))
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing an input file");
    path
}

/// A data folder holding the hand-checked world, ingested from a file.
fn scenario_data(dir: &Path) -> PathBuf {
    let file = write(dir, "world.ndjson", &scenario_ndjson());
    let data = dir.join("data");
    let ran = ingest(&data, &[&file]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    data
}

fn review(data: &Path, extra: &[&str]) -> Ran {
    run(hoctap().arg("--data-dir").arg(data).args(["review", "--scope", "01", "--as-of", "2025-12-31"]).args(extra))
}

fn keys(value: &Value) -> BTreeSet<&str> {
    value.as_object().unwrap_or_else(|| panic!("an object: {value}")).keys().map(String::as_str).collect()
}

fn set<'a>(items: &[&'a str]) -> BTreeSet<&'a str> {
    items.iter().copied().collect()
}

#[test]
fn help_for_every_command() {
    let ran = run(hoctap().arg("--help"));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains("Usage: hoctap"), "{}", ran.stdout);
    for command in ["ingest", "import", "review", "diff", "generate", "geography", "demo", "bench"] {
        assert!(ran.stdout.contains(&format!("\n  {command} ")), "--help lists `{command}`:\n{}", ran.stdout);
    }
    for command in [
        &["ingest"][..],
        &["import"],
        &["review"],
        &["diff"],
        &["generate"],
        &["geography"],
        &["demo"],
        &["bench"],
        &["bench", "replay"],
    ] {
        let ran = run(hoctap().args(command).arg("--help"));
        assert_eq!(ran.code, Some(0), "hoctap {command:?} --help: {ran:?}");
        let usage = format!("Usage: hoctap {}", command.join(" "));
        assert!(ran.stdout.contains(&usage), "hoctap {command:?} --help prints `{usage}`:\n{}", ran.stdout);
    }
}

#[test]
fn usage_errors_exit_2() {
    let dir = temp();
    assert_eq!(run(hoctap().arg("no-such-command")).code, Some(2));
    assert_eq!(run(hoctap().arg("review").args(["--as-of", "2025-12-31"])).code, Some(2), "--scope is required");
    let ran = run(hoctap().arg("--data-dir").arg(dir.path().join("none")).args([
        "review",
        "--scope",
        "01",
        "--as-of",
        "2025-12-31",
    ]));
    assert_eq!(ran.code, Some(2), "reviewing a folder without a log: {ran:?}");
    assert!(ran.stderr.contains("no event log"), "{}", ran.stderr);
}

#[test]
fn ingest_of_a_missing_file_exits_2() {
    let dir = temp();
    let missing = dir.path().join("missing.ndjson");
    let ran = ingest(&dir.path().join("data"), &[&missing]);
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.starts_with("error:") && ran.stderr.contains("missing.ndjson"), "{}", ran.stderr);
}

#[test]
fn a_bad_as_of_or_known_at_exits_2() {
    let dir = temp();
    let data = scenario_data(dir.path());
    for bad in ["2025-13-01", "31/12/2025", "2025-12-31T00:00:00Z"] {
        let ran = run(hoctap().arg("--data-dir").arg(&data).args(["review", "--scope", "01", "--as-of", bad]));
        assert_eq!(ran.code, Some(2), "--as-of {bad}: {ran:?}");
        assert!(ran.stderr.contains("--as-of") && ran.stderr.contains(bad), "{}", ran.stderr);
        assert!(ran.stdout.is_empty(), "no review is printed: {}", ran.stdout);
    }
    for bad in ["2026-02-31", "01/02/2026", "2026-02-01T00:00:00", "yesterday"] {
        let ran = review(&data, &["--known-at", bad]);
        assert_eq!(ran.code, Some(2), "{ran:?}");
        assert!(ran.stderr.contains("--known-at") && ran.stderr.contains(bad), "{}", ran.stderr);
        assert!(ran.stderr.contains("nor a date YYYY-MM-DD"), "{}", ran.stderr);
        assert!(ran.stdout.is_empty(), "no review is printed: {}", ran.stdout);
    }
}

#[test]
fn ingesting_the_same_file_twice_changes_nothing() {
    // A generated city: a messy feed with repeated sends, retractions and late events.
    let dir = temp();
    let city = dir.path().join("city.ndjson");
    let ran = run(hoctap().args(["generate", "--citizens", "200", "--seed", "3", "--out"]).arg(&city));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let data = dir.path().join("data");
    let first = ingest(&data, &[&city]);
    assert_eq!(first.code, Some(0), "{first:?}");
    assert!(!first.stdout.contains(" 0 accepted,"), "{}", first.stdout);
    let log = data.join("events.log");
    let size = std::fs::metadata(&log).unwrap().len();
    let reviews = |data: &Path| ["2025-06-30", "2025-12-31", "2030-12-31"].map(|d| review_json(data, d));
    let before = reviews(&data);

    let second = ingest(&data, &[&city]);
    assert_eq!(second.code, Some(0), "a repeated event counts as accepted: {second:?}");
    assert!(second.stdout.contains(" 0 accepted,") && second.stdout.contains(" 0 refused"), "{}", second.stdout);
    assert_eq!(std::fs::metadata(&log).unwrap().len(), size, "nothing is appended to the log");
    assert_eq!(reviews(&data), before, "the reviews are unchanged");
    assert!(!data.join("dead-letter.ndjson").exists(), "nothing was refused");
}

#[test]
fn ingest_reads_standard_input() {
    let dir = temp();
    let data = dir.path().join("data");
    let mut child = hoctap()
        .arg("--data-dir")
        .arg(&data)
        .args(["ingest", "-"])
        .stdin(Stdio::piped())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("spawning hoctap");
    child.stdin.take().unwrap().write_all(scenario_ndjson().as_bytes()).unwrap();
    let out = child.wait_with_output().unwrap();
    let stdout = String::from_utf8(out.stdout).unwrap();
    assert_eq!(out.status.code(), Some(0), "{stdout}{}", String::from_utf8_lossy(&out.stderr));
    let events = scenario_world().len();
    assert!(
        stdout
            .contains(&format!("standard input: {events} lines, {} accepted, 1 already known, 0 refused", events - 1)),
        "{stdout}"
    );
    // The same figures as from a file (recorded at other instants: only `known_at` differs).
    let other = temp();
    let from_file = scenario_data(other.path());
    let (mut a, mut b) = (review_json(&data, "2025-12-31"), review_json(&from_file, "2025-12-31"));
    assert_ne!(a["known_at"], b["known_at"], "each log states its own newest record");
    (a["known_at"], b["known_at"]) = (Value::Null, Value::Null);
    assert_eq!(a, b);
}

#[test]
fn the_official_geography_of_hanoi_loads_as_30_districts_and_526_communes_then_126() {
    let dir = temp();
    let units = dir.path().join("hanoi.ndjson");
    let ran = run(hoctap().args(["geography", "--province", "01", "--out"]).arg(&units));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stderr.contains("vietnamadminunits") && ran.stderr.contains("MIT"), "{}", ran.stderr);
    let data = dir.path().join("data");
    let ingested = ingest(&data, &[&units]);
    assert_eq!(ingested.code, Some(0), "every official event is accepted: {ingested:?}");
    let geography = |as_of: &str| {
        let review = review_json(&data, as_of);
        let g = &review["geography"];
        (g["districts"].as_u64().unwrap(), g["communes"].as_u64().unwrap(), review["units"].as_array().unwrap().len())
    };
    assert_eq!(geography("2025-06-30"), (30, 526, 1 + 30));
    assert_eq!(geography("2025-07-01"), (0, 126, 1 + 126));
    let after = review_json(&data, "2025-07-01");
    assert_eq!(after["units"][0]["name"], "Thành phố Hà Nội");
    assert!(after["units"].as_array().unwrap().iter().any(|u| u["code"] == "00004" && u["name"] == "Phường Ba Đình"));

    // District 001 after the reform: what became of it, in Vietnamese first, and as data.
    let ba_dinh = |format: &str| {
        let args = ["review", "--scope", "001", "--as-of", "2025-07-01", "--format", format];
        let ran = run(hoctap().arg("--data-dir").arg(&data).args(args));
        assert_eq!(ran.code, Some(0), "{ran:?}");
        ran.stdout
    };
    let table = ba_dinh("table");
    assert!(table.contains("(001) không còn từ 01/07/2025."), "{table}");
    assert!(table.contains("Phường Ba Đình (00004"), "{table}");
    let json: Value = serde_json::from_str(&ba_dinh("json")).unwrap();
    assert_eq!(json["reform"]["relation"], "successors");
    let successors = json["reform"]["units"].as_array().unwrap();
    // Dissolved into the city: what its communes became, none of them a default.
    assert!(successors.len() > 1 && successors.iter().all(|u| u["default"] == false), "{json}");
    assert_eq!(successors.len(), json["units"].as_array().unwrap().len());
    assert!(json["units"].as_array().unwrap().iter().all(|u| u["level"] == "commune"), "{json}");
    // No decision adopts it: it is not the district's own review.
    let args = ["approve", "--scope", "001", "--as-of", "2025-07-01", "--number", "9/QĐ-UBND", "--issuer", "UBND-01"];
    let ran = run(hoctap().arg("--data-dir").arg(&data).args(args).args(["--date", "2026-01-20"]));
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains("not in force on 2025-07-01"), "{}", ran.stderr);

    // Standard output gives the same events; ingesting them again changes nothing.
    let again = run(hoctap().args(["geography", "--province", "01"]));
    assert_eq!(again.stdout, std::fs::read_to_string(&units).unwrap());
    let twice = ingest(&data, &[&units]);
    assert!(twice.stdout.contains(" 0 accepted,"), "{}", twice.stdout);

    // A province merged into another names the one to ask for; nothing is written.
    let ran = run(hoctap().args(["geography", "--province", "30"]));
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains("--province 31") && ran.stdout.is_empty(), "{}", ran.stderr);
    let ran = run(hoctap().args(["geography", "--province", "1"]));
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains("2-digit province code"), "{}", ran.stderr);
}

#[test]
fn review_json_has_the_contract_shape() {
    let dir = temp();
    let data = scenario_data(dir.path());
    let ran = review(&data, &["--format", "json"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let r: Value = serde_json::from_str(&ran.stdout).expect("JSON");
    // The contract's keys, and only fields the docs add (rule 10: the milestone and geography used).
    let top = keys(&r);
    assert!(top.is_superset(&set(&["scope", "as_of", "units", "targets"])), "{top:?}");
    assert_eq!(
        top,
        set(&[
            "scope",
            "as_of",
            "known_at",
            "events",
            "software",
            "generated_at",
            "units",
            "targets",
            "milestone",
            "geography",
            "completeness"
        ])
    );
    // Never "now": the newest record of the log, every event of it, this software, a real instant.
    let newest = hoctap_log::Log::open_read(&data).unwrap().last_recorded().unwrap();
    assert_eq!(r["known_at"], hoctap_domain::time::format_instant(newest));
    assert_eq!(r["events"], scenario_world().len() - 1, "the repeated event 80 is one event");
    assert_eq!(r["software"], concat!("hoctap ", env!("CARGO_PKG_VERSION")));
    let generated = hoctap_domain::time::parse_instant(r["generated_at"].as_str().unwrap()).unwrap();
    assert!(generated >= newest, "generated after the last record");
    assert_eq!((&r["scope"], &r["as_of"]), (&Value::from("01"), &Value::from("2025-12-31")));
    let units = r["units"].as_array().expect("units");
    let unit_keys = set(&["code", "level", "name", "titles", "digital_skill", "baselines"]);
    for unit in units {
        assert_eq!(keys(unit), unit_keys, "{unit}");
    }
    // The hand-checked figures of scenario.rs, through the log and the CLI.
    let city = &units[0];
    assert_eq!(
        (&city["code"], &city["level"], &city["name"]),
        (&Value::from("01"), &Value::from("province"), &Value::from("Hà Nội"))
    );
    let lc = &city["titles"]["learning_citizen"];
    assert_eq!(keys(lc), set(&["registered", "declared", "evidenced", "recognised"]));
    let counts: Vec<u64> =
        ["registered", "declared", "evidenced", "recognised"].iter().map(|k| lc[k].as_u64().unwrap()).collect();
    assert_eq!(counts, [5, 1, 1, 2]);
    assert_eq!(city["digital_skill"], 1);
    assert_eq!(city["baselines"]["adults"], 32);
    let codes: Vec<&str> = units.iter().map(|u| u["code"].as_str().unwrap()).collect();
    assert_eq!(codes, ["01", "00001", "00002", "00005"]);

    let targets = r["targets"].as_array().expect("targets");
    assert_eq!(targets.len(), 4);
    let target_keys = set(&[
        "plan",
        "indicator",
        "milestone",
        "target_percent",
        "numerator",
        "denominator",
        "actual_percent",
        "status",
    ]);
    for t in targets {
        let k = keys(t);
        assert!(k.is_superset(&target_keys), "{t}");
        assert_eq!(
            k.difference(&target_keys).copied().collect::<Vec<_>>(),
            ["gap_points"],
            "rule 10's gap is the one addition"
        );
    }
    let adults = &targets[0];
    assert_eq!(
        (&adults["plan"], &adults["indicator"]),
        (&Value::from("UBND-01/290/2021"), &Value::from("learning_citizen/adults"))
    );
    assert_eq!((adults["target_percent"].as_f64(), adults["actual_percent"].as_f64()), (Some(55.0), Some(6.25)));
    assert_eq!(adults["status"], "behind");
    // No percentage without a denominator: null, never 0.
    let households = targets.iter().find(|t| t["indicator"] == "learning_family/households").unwrap();
    assert!(households["actual_percent"].is_null() && households["denominator"].is_null(), "{households}");
    assert_eq!(households["status"], "no_denominator");
    let districts = targets.iter().find(|t| t["indicator"] == "learning_district/districts").unwrap();
    assert_eq!(districts["status"], "unit_abolished");
    assert!(districts["actual_percent"].is_null());
}

#[test]
fn review_json_states_known_at_when_given() {
    let dir = temp();
    let data = scenario_data(dir.path());
    let ran = review(&data, &["--format", "json", "--known-at", "2099-01-01T00:00:00Z"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let r: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert!(keys(&r).contains("known_at"), "{:?}", keys(&r));
    assert_eq!(r["known_at"], "2099-01-01T00:00:00Z");
    // Everything was recorded before 2099: the same figures as "now".
    let mut now = review_json(&data, "2025-12-31");
    now["known_at"] = r["known_at"].clone();
    let mut r = r;
    r.as_object_mut().unwrap().remove("generated_at");
    assert_eq!(r, now);
}

#[test]
fn a_review_asked_again_with_its_known_at_is_the_same_review() {
    // A reviewer prints the review as known now; later events arrive; the printed known-at gives the
    // printed figures again, in every format, while "now" moves on.
    let dir = temp();
    let (head, tail) = city_in_two(dir.path(), 3000);
    let data = dir.path().join("data");
    assert_eq!(ingest(&data, &[&head]).code, Some(0));
    let printed: Vec<Ran> = ["json", "csv", "table"].iter().map(|f| review(&data, &["--format", f])).collect();
    let stated = serde_json::from_str::<Value>(&printed[0].stdout).unwrap()["known_at"].as_str().unwrap().to_owned();
    let events = serde_json::from_str::<Value>(&printed[0].stdout).unwrap()["events"].as_u64().unwrap();
    assert!(printed[1].stdout.lines().skip(1).all(|row| row.contains(&format!(",{stated},"))), "every CSV row");
    assert!(printed[2].stdout.contains(&format!("Dữ liệu đến (known at): {stated} (")), "{}", printed[2].stdout);

    assert_eq!(ingest(&data, &[&tail]).code, Some(0));
    let now = review_json(&data, "2025-12-31");
    assert_ne!(now["known_at"], stated.as_str(), "the newest record moved on");
    assert!(now["events"].as_u64().unwrap() > events, "{now}");
    for (format, then) in ["json", "csv", "table"].iter().zip(&printed) {
        let again = review(&data, &["--format", format, "--known-at", &stated]);
        assert_eq!(again.code, Some(0), "{again:?}");
        assert_eq!(without_generated_at(&again.stdout), without_generated_at(&then.stdout), "{format}");
        assert_ne!(again.stdout, then.stdout, "{format}: generated at another instant");
    }
}

#[test]
fn a_known_at_date_means_the_end_of_that_day_in_vietnam() {
    let dir = temp();
    let data = scenario_data(dir.path());
    let today = {
        let newest = hoctap_log::Log::open_read(&data).unwrap().last_recorded().unwrap();
        hoctap_domain::Day::of_instant(newest).to_string()
    };
    let ran = review(&data, &["--format", "json", "--known-at", &today]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let r: Value = serde_json::from_str(&ran.stdout).unwrap();
    let end = hoctap_domain::Day::parse(&today).unwrap().end_instant();
    assert_eq!(r["known_at"], hoctap_domain::time::format_instant(end));
    assert!(r["known_at"].as_str().unwrap().ends_with("T16:59:59.999999Z"), "{}", r["known_at"]);
    let mut now = review_json(&data, "2025-12-31");
    now["known_at"] = r["known_at"].clone();
    let mut r = r;
    r.as_object_mut().unwrap().remove("generated_at");
    assert_eq!(r, now, "everything recorded today counts");
}

#[test]
fn review_known_at_before_anything_was_recorded_is_an_error() {
    // Before the first event was recorded the tracker knew nothing: the error says exactly that (not that
    // the scope is not in force), with the instant of the first record, and exits 2 rather than printing
    // an empty review that would read as "zero everywhere".
    let dir = temp();
    let data = scenario_data(dir.path());
    let first = {
        let log = hoctap_log::Log::open_read(&data).unwrap();
        let mut payloads = Vec::new();
        log.replay_raw(|p| payloads.push(p.to_vec())).unwrap();
        Event::from_json_recorded(&payloads[0]).unwrap().recordedtime.unwrap()
    };
    for (known_at, stated) in [
        ("2020-01-01T00:00:00Z", "2020-01-01T00:00:00Z".to_owned()),
        ("2020-01-01", "2020-01-01T16:59:59.999999Z".to_owned()),
        (&*hoctap_domain::time::format_instant(first - 1), hoctap_domain::time::format_instant(first - 1)),
    ] {
        let ran = review(&data, &["--format", "json", "--known-at", known_at]);
        assert_eq!(ran.code, Some(2), "{ran:?}");
        assert!(ran.stdout.is_empty(), "{}", ran.stdout);
        let want = format!(
            "error: nothing had been recorded by known-at {stated}: the first event was recorded at {}",
            hoctap_domain::time::format_instant(first)
        );
        assert!(ran.stderr.contains(&want), "{known_at}: {}", ran.stderr);
        assert!(!ran.stderr.contains("not in force"), "{}", ran.stderr);
    }
    // At the first record's own instant, that one event counts.
    let ran = review(&data, &["--format", "json", "--known-at", &hoctap_domain::time::format_instant(first)]);
    assert!(!ran.stderr.contains("nothing had been recorded"), "{}", ran.stderr);
}

#[test]
fn review_csv_parses() {
    let dir = temp();
    let data = scenario_data(dir.path());
    let ran = review(&data, &["--format", "csv"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let mut reader = csv::Reader::from_reader(ran.stdout.as_bytes());
    let header: Vec<String> = reader.headers().expect("a header").iter().map(str::to_owned).collect();
    let documented = "section,scope,as_of,known_at,unit_code,unit_level,unit_name,title,measure,value,plan,indicator,milestone,target_percent,actual_percent,gap_points,numerator,denominator,status,events,software,generated_at,approved_number,approved_issuer,approved_date";
    assert_eq!(header.join(","), documented);
    let col = |name: &str| header.iter().position(|h| h == name).unwrap();
    let rows: Vec<csv::StringRecord> =
        reader.records().collect::<Result<_, _>>().expect("every row parses, all as wide as the header");
    let unit_row = |unit: &str, measure: &str| {
        rows.iter()
            .find(|r| {
                r[col("section")] == *"unit"
                    && r[col("unit_code")] == *unit
                    && r[col("title")] == *"learning_citizen"
                    && r[col("measure")] == *measure
            })
            .map(|r| r[col("value")].to_owned())
    };
    assert_eq!(unit_row("01", "registered").as_deref(), Some("5"));
    assert_eq!(unit_row("01", "recognised").as_deref(), Some("2"));
    assert_eq!(unit_row("00005", "registered").as_deref(), Some("2"));
    let targets: Vec<_> = rows.iter().filter(|r| r[col("section")] == *"target").collect();
    assert_eq!(targets.len(), 4);
    let adults = targets.iter().find(|r| r[col("indicator")] == *"learning_citizen/adults").unwrap();
    assert_eq!((&adults[col("actual_percent")], &adults[col("status")]), ("6.25", "behind"));
    let households = targets.iter().find(|r| r[col("indicator")] == *"learning_family/households").unwrap();
    assert_eq!(&households[col("actual_percent")], "", "a missing percentage is an empty cell");
}

#[test]
fn review_table_speaks_vietnamese() {
    let dir = temp();
    let data = scenario_data(dir.path());
    let default = review(&data, &[]);
    let table = review(&data, &["--format", "table"]);
    assert_eq!(table.code, Some(0), "{table:?}");
    assert_eq!(without_generated_at(&default.stdout), without_generated_at(&table.stdout), "table is the default");
    for label in [
        "Hà Nội (01)",
        "Ngày đánh giá",
        "Công dân học tập",
        "Đăng ký",
        "Công nhận",
        "Chưa đạt",
        "sơ kết",
        "Phường Ba Đình",
    ] {
        assert!(table.stdout.contains(label), "the table shows `{label}`:\n{}", table.stdout);
    }
    // Vietnamese number style: 6,25 %, not 6.25.
    assert!(table.stdout.contains("6,25") && !table.stdout.contains("6.25"), "{}", table.stdout);
}

#[test]
fn generate_is_deterministic() {
    let generate = |seed: &str| run(hoctap().args(["generate", "--citizens", "200", "--seed", seed]));
    let (a, b, other) = (generate("7"), generate("7"), generate("8"));
    assert_eq!(a.code, Some(0), "{:?}", a.stderr);
    assert!(a.stdout == b.stdout, "the same seed gives the same bytes");
    assert!(a.stdout != other.stdout, "another seed gives another city");
    let lines: Vec<&str> = a.stdout.lines().collect();
    assert!(lines.len() > 10_000, "a city of 200 citizens: {} lines", lines.len());
    for line in lines.iter().step_by(101) {
        Event::from_json(line.as_bytes()).unwrap_or_else(|r| panic!("a generated line is a valid source event: {r}"));
    }
    assert!(a.stderr.contains(&format!("generated {} events", lines.len())), "{}", a.stderr);
}

// The checkpoint beside the log: a shortcut that never changes an answer.

const CHECKPOINT: &str = "checkpoint.bin";

/// A generated city split in two NDJSON files: most of it, then the last `tail` lines.
fn city_in_two(dir: &Path, tail: usize) -> (PathBuf, PathBuf) {
    let ran = run(hoctap().args(["generate", "--citizens", "200", "--seed", "5"]));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let lines: Vec<&str> = ran.stdout.lines().collect();
    let (head, rest) = lines.split_at(lines.len() - tail);
    (write(dir, "head.ndjson", &ndjson(head)), write(dir, "tail.ndjson", &ndjson(rest)))
}

/// The `recordedtime` of the log's record `n`, for "as known at" questions.
fn recorded_at(data: &Path, n: usize) -> String {
    let log = hoctap_log::Log::open_read(data).expect("the log");
    let mut payloads = Vec::new();
    log.replay_raw(|p| payloads.push(p.to_vec())).expect("reading the log");
    let event = Event::from_json_recorded(&payloads[n]).expect("a logged event");
    hoctap_domain::time::format_instant(event.recordedtime.expect("stamped"))
}

/// Every review the tests compare, as JSON text, with the first run's standard error (where notes go).
fn answers(data: &Path, known_at: &str) -> (Vec<String>, String) {
    let mut out = Vec::new();
    let mut first_stderr = None;
    for as_of in ["2025-06-30", "2025-12-31", "2030-12-31"] {
        for k in [None, Some(known_at)] {
            let mut command = hoctap();
            command.arg("--data-dir").arg(data).args(["review", "--scope", "01", "--as-of", as_of, "--format", "json"]);
            if let Some(k) = k {
                command.args(["--known-at", k]);
            }
            let ran = run(&mut command);
            assert_eq!(ran.code, Some(0), "review as of {as_of} known at {k:?}: {ran:?}");
            first_stderr.get_or_insert(ran.stderr);
            out.push(without_generated_at(&ran.stdout));
        }
    }
    (out, first_stderr.unwrap_or_default())
}

fn checkpoint_bytes(data: &Path) -> Vec<u8> {
    std::fs::read(data.join(CHECKPOINT)).expect("a checkpoint beside the log")
}

#[test]
fn reviews_from_the_checkpoint_are_those_of_a_full_replay() {
    let dir = temp();
    let (head, tail) = city_in_two(dir.path(), 0);
    let data = dir.path().join("data");
    assert_eq!(ingest(&data, &[&head, &tail]).code, Some(0));
    let from_ingest = checkpoint_bytes(&data);
    let known_at = recorded_at(&data, 4000);

    let (resumed, stderr) = answers(&data, &known_at);
    assert!(!stderr.contains("note:"), "the checkpoint of the ingest is used as it is: {stderr}");
    assert_eq!(checkpoint_bytes(&data), from_ingest, "nothing new, nothing rewritten");

    std::fs::remove_file(data.join(CHECKPOINT)).unwrap();
    let (replayed, stderr) = answers(&data, &known_at);
    assert!(stderr.contains("note: no checkpoint"), "{stderr}");
    assert_eq!(resumed, replayed);
    assert_eq!(checkpoint_bytes(&data), from_ingest, "folding at ingest and replaying keep the same state");
}

#[test]
fn a_checkpoint_that_lacks_the_last_events_replays_only_them() {
    let dir = temp();
    let (head, tail) = city_in_two(dir.path(), 200);
    let data = dir.path().join("data");
    assert_eq!(ingest(&data, &[&head]).code, Some(0));
    let before_tail = checkpoint_bytes(&data);
    let end_of_head = hoctap_log::Log::open_read(&data).unwrap().last_recorded().unwrap();
    let known_at = hoctap_domain::time::format_instant(end_of_head);
    let (head_only, _) = answers(&data, &known_at);

    // Too few events to be worth a new checkpoint: every later command replays them.
    let ran = ingest(&data, &[&tail]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(checkpoint_bytes(&data), before_tail);
    let (resumed, stderr) = answers(&data, &known_at);
    assert!(!stderr.contains("note:"), "{stderr}");
    assert_eq!(checkpoint_bytes(&data), before_tail);
    // As known at the end of the head nothing changed; as known now the tail counts.
    let (now, then): (Vec<_>, Vec<_>) = resumed.iter().zip(&head_only).enumerate().partition(|(i, _)| i % 2 == 0);
    assert!(then.iter().all(|(_, (a, b))| a == b), "as known at the end of the head");
    assert!(now.iter().any(|(_, (a, b))| a != b), "the tail changes some answer as known now");

    std::fs::remove_file(data.join(CHECKPOINT)).unwrap();
    let (replayed, _) = answers(&data, &known_at);
    assert_eq!(resumed, replayed, "the checkpoint plus the tail answer as the whole log");
}

#[test]
fn a_checkpoint_that_does_not_match_is_ignored_with_a_note() {
    let dir = temp();
    let (head, tail) = city_in_two(dir.path(), 300);
    let data = dir.path().join("data");
    assert_eq!(ingest(&data, &[&head, &tail]).code, Some(0));
    let log = data.join("events.log");
    let known_at = recorded_at(&data, 4000);
    let (want, _) = answers(&data, &known_at);
    let good = checkpoint_bytes(&data);
    let restore = || std::fs::write(data.join(CHECKPOINT), &good).unwrap();
    let check = |what: &str, note: &str| {
        let (got, stderr) = answers(&data, &known_at);
        assert_eq!(got, want, "{what}");
        assert!(
            stderr.lines().any(|l| l.starts_with("note: ignoring the checkpoint") && l.contains(note)),
            "{what}: {stderr}"
        );
        assert_eq!(checkpoint_bytes(&data), good, "{what}: a full replay writes the checkpoint again");
    };

    let mut damaged = good.clone();
    let middle = damaged.len() / 2;
    damaged[middle] ^= 0x40;
    std::fs::write(data.join(CHECKPOINT), &damaged).unwrap();
    check("a damaged checkpoint", "damaged");

    let read = hoctap_log::checkpoint::read(&data, hoctap_domain::CHECKPOINT_VERSION).unwrap();
    let older = hoctap_domain::CHECKPOINT_VERSION - 1;
    hoctap_log::checkpoint::write(&data, &read.position, older, read.payload()).unwrap();
    check("a checkpoint of an older version", "version");

    // A torn tail after the checkpoint's position: readers ignore it and writers cut it.
    restore();
    std::fs::OpenOptions::new().append(true).open(&log).unwrap().write_all(b"\x07\x00\x00\x00torn").unwrap();
    let (got, stderr) = answers(&data, &known_at);
    assert_eq!((got, stderr), (want.clone(), String::new()), "the checkpoint still holds");
    let ran = ingest(&data, &[&tail]);
    assert!(ran.stderr.contains("cut a torn tail") && !ran.stderr.contains("ignoring"), "{ran:?}");
    assert_eq!(answers(&data, &known_at), (want.clone(), String::new()));

    // The log cut before the checkpoint's position, then written again past it: another log now.
    let events = std::fs::read(&log).unwrap();
    std::fs::write(&log, &events[..events.len() / 2]).unwrap();
    let ran = ingest(&data, &[&tail]);
    assert!(ran.stderr.contains("does not match the log"), "{ran:?}");
    let rewritten = dir.path().join("rewritten");
    std::fs::create_dir(&rewritten).unwrap();
    std::fs::copy(&log, rewritten.join("events.log")).unwrap();
    std::fs::write(data.join(CHECKPOINT), &good).unwrap();
    let (got, stderr) = answers(&data, &known_at);
    assert!(stderr.contains("does not match the log"), "{stderr}");
    assert_eq!(got, answers(&rewritten, &known_at).0, "the answers are the new log's");
}

#[test]
fn a_checkpoint_that_cannot_be_written_does_not_fail_the_command() {
    let dir = temp();
    let data = scenario_data(dir.path());
    std::fs::remove_file(data.join(CHECKPOINT)).unwrap();
    // A folder where the temporary file must go: the write fails, the review does not.
    std::fs::create_dir(data.join("checkpoint.bin.tmp")).unwrap();
    let ran = review(&data, &["--format", "json"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stderr.contains("note: could not write a checkpoint"), "{}", ran.stderr);
    assert!(!data.join(CHECKPOINT).exists());
}

#[test]
fn damage_in_the_middle_of_the_log_stops_every_command_until_repair_cuts_it_keeping_a_copy() {
    let dir = temp();
    let data = scenario_data(dir.path());
    let log = data.join("events.log");
    let bytes = std::fs::read(&log).unwrap();
    // One byte of the payload of a record in the middle: its checksum fails, whole records follow.
    let records = hoctap_log::frame::MAGIC.len()..bytes.len();
    let mut at = records.start;
    let mut offsets = Vec::new();
    while at < records.end {
        offsets.push(at);
        at += 8 + u32::from_le_bytes(bytes[at..at + 4].try_into().unwrap()) as usize;
    }
    let damaged = offsets[offsets.len() / 2];
    let mut broken = bytes.clone();
    broken[damaged + 8 + 10] ^= 0x20;
    std::fs::write(&log, &broken).unwrap();
    let _ = std::fs::remove_file(data.join("checkpoint.bin"));

    let ran = review(&data, &[]);
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains(&format!("damaged at byte {damaged}")), "names the offset: {}", ran.stderr);
    assert!(ran.stderr.contains("repair"), "says how to repair: {}", ran.stderr);
    assert_eq!(std::fs::read(&log).unwrap(), broken, "nothing was cut");

    let ran = run(hoctap().arg("--data-dir").arg(&data).arg("repair"));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains(&format!("cut at byte {damaged}")), "{}", ran.stdout);
    let copies: Vec<PathBuf> = std::fs::read_dir(&data)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.file_name().unwrap().to_string_lossy().starts_with(&format!("cut-{damaged}-")))
        .collect();
    assert_eq!(copies.len(), 1, "one copy of what was cut");
    assert_eq!(std::fs::read(&copies[0]).unwrap(), &broken[damaged..]);
    assert_eq!(std::fs::read(&log).unwrap(), &bytes[..damaged]);
    let ran = review(&data, &[]);
    assert_eq!(ran.code, Some(0), "the cut log opens: {ran:?}");
    let ran = run(hoctap().arg("--data-dir").arg(&data).arg("repair"));
    assert!(ran.stdout.contains("no damage"), "{}", ran.stdout);
}

#[test]
fn review_xlsx_opens_in_a_spreadsheet_reader_with_the_json_figures() {
    use calamine::{Data, Reader, Xlsx};
    let dir = temp();
    let data = scenario_data(dir.path());
    let file = dir.path().join("so-ket.xlsx");
    let ran = review(&data, &["--format", "xlsx", "--out", file.to_str().unwrap(), "--known-at", "2099-01-01"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let json = review(&data, &["--format", "json", "--known-at", "2099-01-01"]);
    let r: Value = serde_json::from_str(&json.stdout).unwrap();

    let mut book: Xlsx<_> = calamine::open_workbook(&file).expect("calamine opens the workbook");
    let num = |cell: &Data| match cell {
        Data::Float(f) => Some(*f),
        Data::Empty => None,
        other => panic!("not a number: {other:?}"),
    };
    let targets = book.worksheet_range("Chỉ tiêu").unwrap();
    let rows: Vec<&[Data]> = targets.rows().skip(1).collect();
    let expected = r["targets"].as_array().unwrap();
    assert_eq!(rows.len(), expected.len());
    for (row, t) in rows.iter().zip(expected) {
        assert_eq!(row[11].to_string(), t["indicator"].as_str().unwrap());
        assert_eq!(num(&row[4]), t["actual_percent"].as_f64().map(|a| a / 100.0), "{t}");
        assert_eq!(num(&row[6]), t["numerator"].as_f64());
        assert_eq!(num(&row[7]), t["denominator"].as_f64());
        assert_eq!(row[9].to_string(), t["status"].as_str().unwrap());
    }
    let citizens = book.worksheet_range("Công dân học tập").unwrap();
    for (row, unit) in citizens.rows().skip(1).zip(r["units"].as_array().unwrap()) {
        assert_eq!(row[0].to_string(), unit["code"].as_str().unwrap());
        let lc = &unit["titles"]["learning_citizen"];
        let got: Vec<Option<f64>> = row[3..7].iter().map(num).collect();
        let want: Vec<Option<f64>> = ["registered", "declared", "evidenced", "recognised"]
            .iter()
            .map(|k| Some(lc[k].as_f64().unwrap_or(0.0)))
            .collect();
        assert_eq!(got, want, "{unit}");
    }
    let asked = book.worksheet_range("Câu hỏi").unwrap();
    let known_at = asked.rows().find(|row| row[2] == "known_at").map(|row| row[1].to_string());
    assert_eq!(known_at.as_deref(), r["known_at"].as_str());

    // A workbook needs a file; --bom is for CSV only; both refused before any work, nothing written.
    let ran = review(&data, &["--format", "xlsx"]);
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains("--out") && ran.stdout.is_empty(), "{ran:?}");
    let ran = review(&data, &["--format", "json", "--bom"]);
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains("--bom applies to --format csv only"), "{ran:?}");
    let ran = review(&data, &["--format", "csv", "--bom"]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.starts_with("\u{feff}section,scope,"), "{:?}", &ran.stdout[..20]);
}

#[test]
fn units_lists_the_codes_in_force_with_parents_and_the_dissolved_with_successors() {
    let dir = temp();
    let data = scenario_data(dir.path());
    let units = |as_of: &str, extra: &[&str]| {
        let ran = run(hoctap().arg("--data-dir").arg(&data).args(["units", "--as-of", as_of]).args(extra));
        assert_eq!(ran.code, Some(0), "{ran:?}");
        ran.stdout
    };
    let listed = |as_of: &str| -> Vec<(String, bool, Value, Value)> {
        let doc: Value = serde_json::from_str(&units(as_of, &["--format", "json"])).expect("JSON");
        assert_eq!(doc["as_of"], as_of);
        doc["units"]
            .as_array()
            .unwrap()
            .iter()
            .map(|u| {
                let successor = u.get("successor").cloned().unwrap_or(Value::Null);
                (
                    u["code"].as_str().unwrap().to_owned(),
                    u["in_force"].as_bool().unwrap(),
                    u["parent"].clone(),
                    successor,
                )
            })
            .collect()
    };
    let before = listed("2025-06-30");
    let codes: Vec<&str> = before.iter().map(|u| u.0.as_str()).collect();
    assert_eq!(codes, ["00001", "00002", "00003", "00004", "001", "002", "01"], "00005 is not established yet");
    assert!(before.iter().all(|u| u.1), "all in force before the reform");
    assert_eq!(before.iter().find(|u| u.0 == "00003").unwrap().2, "002");

    let after = listed("2025-12-31");
    let find = |code: &str| after.iter().find(|u| u.0 == code).unwrap_or_else(|| panic!("{code} listed"));
    assert_eq!(find("00001").2, "01", "reparented to the city");
    assert_eq!((find("00003").1, &find("00003").3), (false, &Value::from("00005")), "merged into 00005");
    assert_eq!((find("001").1, &find("001").2, &find("001").3), (false, &Value::Null, &Value::from("01")));
    assert!(find("00005").1);

    let table = units("2025-12-31", &[]);
    assert!(table.contains("Đơn vị hành chính có hiệu lực ngày 2025-12-31"), "{table}");
    assert!(table.contains("Kế thừa bởi") && table.contains("Quận Ba Đình"), "{table}");
    // Before anything was recorded, nothing is listed; a bad date is refused.
    assert!(listed("2020-01-01").is_empty());
    let ran = run(hoctap().arg("--data-dir").arg(&data).args(["units", "--as-of", "30/06/2025"]));
    assert_eq!(ran.code, Some(2), "{ran:?}");
    assert!(ran.stderr.contains("--as-of `30/06/2025`"), "{}", ran.stderr);
}

/// The date of the review approved: the final review, which the last events of a generated city change.
const APPROVED_AS_OF: &str = "2030-12-31";

/// `hoctap --data-dir <data> approve …` of the final review of Hà Nội by decision `number`.
fn approve(data: &Path, number: &str, extra: &[&str]) -> Ran {
    run(hoctap()
        .arg("--data-dir")
        .arg(data)
        .args([
            "approve",
            "--scope",
            "01",
            "--as-of",
            APPROVED_AS_OF,
            "--number",
            number,
            "--issuer",
            "UBND-01",
            "--date",
            "2026-01-20",
        ])
        .args(extra))
}

fn approved(data: &Path, number: &str, format: &str) -> Ran {
    run(hoctap().arg("--data-dir").arg(data).args(["review", "--approved", number, "--format", format]))
}

#[test]
fn an_approved_review_keeps_its_figures_while_later_events_arrive() {
    let dir = temp();
    let (head, tail) = city_in_two(dir.path(), 3000);
    let data = dir.path().join("data");
    assert_eq!(ingest(&data, &[&head]).code, Some(0));
    let before = review_json(&data, APPROVED_AS_OF);

    let ran = approve(&data, "15/QĐ-UBND", &[]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.starts_with("recorded: vn.hoctap.review.approved.v1 "), "{}", ran.stdout);
    assert!(ran.stdout.contains(&format!("as known at {}", before["known_at"].as_str().unwrap())), "{}", ran.stdout);
    // Logged like any ingested event: one more record, a review.approved.
    let log = hoctap_log::Log::open_read(&data).unwrap();
    let mut last = Vec::new();
    log.replay_raw(|p| last = p.to_vec()).unwrap();
    let logged = Event::from_json_recorded(&last).unwrap();
    assert_eq!(logged.event_type(), hoctap_domain::EventType::ReviewApproved);
    assert_eq!(logged.subject, "01");

    // The approved review: the figures of the review approved, stating the decision.
    let first = approved(&data, "15/QĐ-UBND", "json");
    assert_eq!(first.code, Some(0), "{first:?}");
    let mut doc: Value = serde_json::from_str(&first.stdout).unwrap();
    let decision = doc.as_object_mut().unwrap().remove("approved").expect("the decision is stated");
    assert_eq!(decision, serde_json::json!({"number": "15/QĐ-UBND", "issuer": "UBND-01", "date": "2026-01-20"}));
    doc.as_object_mut().unwrap().remove("generated_at");
    assert_eq!(doc, before, "the same figures, known-at and events as the review approved");
    let table = approved(&data, "15/QĐ-UBND", "table");
    assert!(
        table.stdout.contains("Đã phê duyệt (approved review): Quyết định số 15/QĐ-UBND (UBND-01), ngày 2026-01-20"),
        "{}",
        table.stdout
    );
    let csv = approved(&data, "15/QĐ-UBND", "csv");
    assert!(csv.stdout.lines().next().unwrap().ends_with(",approved_number,approved_issuer,approved_date"));
    assert!(csv.stdout.lines().skip(1).all(|row| row.ends_with(",15/QĐ-UBND,UBND-01,2026-01-20")), "every row");

    // Later events: the plain review moves on, the approved one stays byte for byte.
    assert_eq!(ingest(&data, &[&tail]).code, Some(0));
    let now = review_json(&data, APPROVED_AS_OF);
    assert_ne!(now["known_at"], before["known_at"]);
    assert_ne!(now["units"], before["units"], "the later events change the final review's figures");
    for (format, then) in [("json", &first), ("table", &table), ("csv", &csv)] {
        let again = approved(&data, "15/QĐ-UBND", format);
        assert_eq!(again.code, Some(0), "{again:?}");
        assert_eq!(without_generated_at(&again.stdout), without_generated_at(&then.stdout), "{format}");
    }

    // The same approval again is already recorded; the number for another question is refused.
    let same = run(hoctap().arg("--data-dir").arg(&data).args([
        "approve",
        "--scope",
        "01",
        "--as-of",
        APPROVED_AS_OF,
        "--known-at",
        before["known_at"].as_str().unwrap(),
        "--number",
        "15/QĐ-UBND",
        "--issuer",
        "UBND-01",
        "--date",
        "2026-01-20",
    ]));
    assert_eq!(same.code, Some(0), "{same:?}");
    assert!(same.stdout.starts_with("already recorded"), "{}", same.stdout);
    let other = approve(&data, "15/QĐ-UBND", &["--milestone", "2025"]);
    assert_eq!(other.code, Some(1), "{other:?}");
    assert!(
        other.stderr.contains("approval_conflict") && other.stderr.contains("data.decision.number"),
        "{}",
        other.stderr
    );
    // An instant not passed yet cannot be approved: later events could change it.
    let future = approve(&data, "16/QĐ-UBND", &["--known-at", "2099-01-01"]);
    assert_eq!(future.code, Some(1), "{future:?}");
    assert!(future.stderr.contains("known_at_future"), "{}", future.stderr);

    let unknown = approved(&data, "99/QĐ-UBND", "json");
    assert_eq!(unknown.code, Some(2), "{unknown:?}");
    assert!(unknown.stderr.contains("no review was approved by decision `99/QĐ-UBND`"), "{}", unknown.stderr);
    let both = run(hoctap().arg("--data-dir").arg(&data).args(["review", "--approved", "15/QĐ-UBND", "--scope", "01"]));
    assert_eq!(both.code, Some(2), "--approved names the whole question: {both:?}");
}

/// The demo records the campaign day by day on a simulated clock, approves the phase review as reported
/// at the sơ kết meeting, and shows what changed since; `hoctap diff --approved` gives the same changes,
/// each listed event recorded between the meeting and now, and the approved review is the one written.
#[test]
fn the_demo_tells_the_story_of_an_approved_review_and_what_changed_since() {
    let dir = temp();
    let out = dir.path().join("demo");
    let ran = run(hoctap().args(["demo", "--citizens", "200", "--out"]).arg(&out));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains("as reported at the meeting on 2026-01-15"), "{}", ran.stdout);
    assert!(ran.stdout.contains("recorded: vn.hoctap.review.approved.v1"), "{}", ran.stdout);
    assert!(ran.stdout.contains("What changed since the approved review"), "{}", ran.stdout);
    assert!(ran.stdout.contains("\nReports:\n"), "CI looks for the list of reports: {}", ran.stdout);
    for file in ["phase-review-2025-12-31.xlsx", "final-review-2030-12-31.xlsx", "changes-since-approval.json"] {
        assert!(out.join(file).metadata().is_ok_and(|m| m.len() > 0), "{file} written");
    }
    let data = out.join("data");

    // The approved review is the review as known at the end of the meeting's day, and the one written.
    let approved =
        run(hoctap().arg("--data-dir").arg(&data).args(["review", "--approved", "15/QĐ-UBND", "--format", "json"]));
    assert_eq!(approved.code, Some(0), "{approved:?}");
    let approved: Value = serde_json::from_str(&approved.stdout).expect("JSON");
    assert_eq!(approved["known_at"], "2026-01-15T16:59:59.999999Z");
    let written: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("phase-review-2025-12-31.json")).unwrap()).unwrap();
    assert_eq!(written["units"], approved["units"]);
    assert_eq!(written["approved"]["number"], "15/QĐ-UBND");
    // History was recorded as it happened: as known now the phase review differs from the approved one.
    let now = review_json(&data, "2025-12-31");
    assert_ne!(now["units"], approved["units"], "late reports after the meeting changed the 2025 figures");

    let diff =
        run(hoctap().arg("--data-dir").arg(&data).args(["diff", "--approved", "15/QĐ-UBND", "--format", "json"]));
    assert_eq!(diff.code, Some(0), "{diff:?}");
    let diff: Value = serde_json::from_str(&diff.stdout).expect("JSON");
    let saved: Value =
        serde_json::from_str(&std::fs::read_to_string(out.join("changes-since-approval.json")).unwrap()).unwrap();
    assert_eq!(diff, saved, "the demo's diff is the command's");
    assert_eq!(diff["before"]["known_at"], "2026-01-15T16:59:59.999999Z");
    // Every figure that changed is one where the approved review and the review now differ.
    let figures = diff["figures"].as_array().expect("figures");
    assert!(!figures.is_empty());
    let city_now = &now["units"][0]["titles"];
    let city_then = &approved["units"][0]["titles"];
    for f in figures.iter().filter(|f| f["unit"] == "01" && f["title"].is_string()) {
        let (title, count) = (f["title"].as_str().unwrap(), f["count"].as_str().unwrap());
        assert_eq!(f["before"], city_then[title][count], "{f}");
        assert_eq!(f["after"], city_now[title][count], "{f}");
    }
    // Every event listed was recorded after the meeting, in the order recorded.
    let events = diff["events"].as_array().expect("events");
    assert!(!events.is_empty());
    let instant = |t: &str| hoctap_domain::time::parse_instant(t).unwrap_or_else(|| panic!("an instant: {t}"));
    let times: Vec<i64> = events.iter().map(|e| instant(e["recordedtime"].as_str().unwrap())).collect();
    let meeting = instant("2026-01-15T16:59:59.999999Z");
    assert!(times.iter().all(|&t| t > meeting), "{times:?}");
    assert!(times.windows(2).all(|w| w[0] <= w[1]), "in recorded order");
    assert!(events.iter().all(|e| e["source"].as_str().is_some_and(|s| !s.is_empty())));

    // The table: the two knowledge times and the scope's own figures by default.
    let table = run(hoctap().arg("--data-dir").arg(&data).args([
        "diff",
        "--scope",
        "01",
        "--as-of",
        "2025-12-31",
        "--known-at",
        "2026-01-15",
    ]));
    assert_eq!(table.code, Some(0), "{table:?}");
    assert!(table.stdout.contains("Trước (known at): 2026-01-15T16:59:59.999999Z"), "{}", table.stdout);
    assert!(table.stdout.contains("Số liệu thay đổi (figures that changed)"), "{}", table.stdout);
    // Nothing changes between a time and itself.
    let same = run(hoctap().arg("--data-dir").arg(&data).args([
        "diff",
        "--scope",
        "01",
        "--as-of",
        "2025-12-31",
        "--known-at",
        "2026-01-15",
        "--vs",
        "2026-01-15",
    ]));
    assert!(same.stdout.contains("Không có số liệu nào thay đổi (no figure changed)."), "{}", same.stdout);
}
