//! `hoctap series`: each point is the review's count of that title in that unit on that date (so the
//! same as `GET /v1/units/{code}/series`, which `crates/hoctap-api` checks against the same engine);
//! JSON, CSV and table say the same; every mistake is refused by name and loses nothing.

use hoctap_tests::{Ran, hoctap, ingest, ndjson, run, scenario_world, source_line};
use serde_json::Value;
use std::path::{Path, PathBuf};

/// Events of the hand-checked world ingested in a second command (so that "as known at" between the
/// two differs from now).
const TAIL: usize = 12;

/// A data folder holding the hand-checked world, ingested from two files, and the `recordedtime` of
/// the first file's last event.
fn scenario_data(dir: &Path) -> (PathBuf, String) {
    let lines: Vec<String> = scenario_world().iter().map(source_line).collect();
    let (head, tail) = lines.split_at(lines.len() - TAIL);
    let data = dir.join("data");
    for (name, part) in [("head.ndjson", head), ("tail.ndjson", tail)] {
        let file = dir.join(name);
        std::fs::write(&file, ndjson(part)).unwrap();
        let ran = ingest(&data, &[&file]);
        assert_eq!(ran.code, Some(0), "{ran:?}");
    }
    let log = hoctap_log::Log::open_read(&data).expect("the log");
    let mut payloads = Vec::new();
    log.replay_raw(|p| payloads.push(p.to_vec())).expect("reading the log");
    let event = hoctap_domain::Event::from_json_recorded(&payloads[head.len() - 2]).expect("a logged event");
    (data, hoctap_domain::time::format_instant(event.recordedtime.expect("stamped")))
}

fn series(data: &Path, args: &[&str]) -> Ran {
    run(hoctap().arg("--data-dir").arg(data).arg("series").args(args))
}

fn json(data: &Path, args: &[&str]) -> Value {
    let ran = series(data, &[args, &["--format", "json"]].concat());
    assert_eq!(ran.code, Some(0), "{args:?}: {ran:?}");
    serde_json::from_str(&ran.stdout).unwrap_or_else(|e| panic!("{e}: {}", ran.stdout))
}

/// (date, [registered, declared, evidenced, recognised]) of a series document.
fn points(doc: &Value) -> Vec<(String, [u64; 4])> {
    doc["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let n = |k: &str| p[k].as_u64().unwrap();
            (p["as_of"].as_str().unwrap().to_owned(), [n("registered"), n("declared"), n("evidenced"), n("recognised")])
        })
        .collect()
}

/// What the review of `scope` on `as_of` says of `title` in its first unit (`None`: not in force, whether
/// the review is an error or what the reform made of the unit).
fn reviewed(data: &Path, scope: &str, title: &str, as_of: &str, known_at: Option<&str>) -> Option<[u64; 4]> {
    let mut args = vec!["review", "--scope", scope, "--as-of", as_of, "--format", "json"];
    if let Some(k) = known_at {
        args.extend(["--known-at", k]);
    }
    let ran = run(hoctap().arg("--data-dir").arg(data).args(&args));
    if ran.code != Some(0) {
        assert!(ran.stderr.contains("not in force"), "{args:?}: {ran:?}");
        return None;
    }
    let review: Value = serde_json::from_str(&ran.stdout).unwrap();
    if review.get("reform").is_some() {
        // Not in force: the review says what became of it, the series has no point.
        return None;
    }
    let t = &review["units"][0]["titles"][title];
    let n = |k: &str| t.get(k).and_then(Value::as_u64).unwrap_or(0);
    Some([n("registered"), n("declared"), n("evidenced"), n("recognised")])
}

#[test]
fn every_point_is_the_reviews_count_and_every_format_says_the_same() {
    let dir = tempfile::tempdir().unwrap();
    let (data, middle) = scenario_data(dir.path());
    let mut nonzero = 0;
    for (scope, title, known_at) in [
        ("01", "learning_citizen", None),
        ("01", "learning_family", None),
        ("001", "learning_citizen", None),
        ("00005", "learning_citizen", None),
        ("01", "learning_citizen", Some(middle.as_str())),
    ] {
        let mut args = vec!["--scope", scope, "--title", title, "--from", "2021-01-01", "--to", "2030-12-31"];
        args.extend(["--step", "year"]);
        if let Some(k) = known_at {
            args.extend(["--known-at", k]);
        }
        let doc = json(&data, &args);
        assert_eq!(
            (doc["unit"].as_str(), doc["title"].as_str(), doc["step"].as_str()),
            (Some(scope), Some(title), Some("year"))
        );
        assert_eq!(doc["known_at"].as_str().is_some(), known_at.is_some());
        let got = points(&doc);
        let want: Vec<(String, [u64; 4])> = (2021..=2030)
            .map(|y| format!("{y}-12-31"))
            .filter_map(|d| reviewed(&data, scope, title, &d, known_at).map(|c| (d, c)))
            .collect();
        assert_eq!(got, want, "{scope} {title} {known_at:?}");
        nonzero += got.iter().filter(|(_, c)| c.iter().any(|&n| n > 0)).count();
    }
    assert!(nonzero >= 5, "a series of zeros proves little ({nonzero} points with counts)");

    // The district abolished on 2025-07-01 has month points up to 2025-06-30 only.
    let district = points(&json(
        &data,
        &["--scope", "001", "--title", "learning_citizen", "--from", "2025-01-01", "--to", "2025-12-31"],
    ));
    let dates: Vec<&str> = district.iter().map(|(d, _)| d.as_str()).collect();
    assert_eq!(dates, ["2025-01-31", "2025-02-28", "2025-03-31", "2025-04-30", "2025-05-31", "2025-06-30"]);

    // The defaults: every month end of the campaign; CSV and table carry the same figures.
    let all = points(&json(&data, &["--scope", "01", "--title", "learning_citizen"]));
    assert_eq!((all.len(), all[0].0.as_str(), all[119].0.as_str()), (120, "2021-01-31", "2030-12-31"));
    let csv = series(&data, &["--scope", "01", "--title", "learning_citizen", "--format", "csv"]);
    assert_eq!(csv.code, Some(0), "{csv:?}");
    let mut lines = csv.stdout.lines();
    assert_eq!(lines.next(), Some("as_of,registered,declared,evidenced,recognised"));
    let rows: Vec<String> = lines.map(str::to_owned).collect();
    let want: Vec<String> = all.iter().map(|(d, c)| format!("{d},{},{},{},{}", c[0], c[1], c[2], c[3])).collect();
    assert_eq!(rows, want);
    let table = series(&data, &["--scope", "01", "--title", "learning_citizen"]);
    assert_eq!(table.code, Some(0), "{table:?}");
    assert!(table.stdout.starts_with("Công dân học tập (learning_citizen)"), "{}", table.stdout);
    let last = table.stdout.lines().last().unwrap();
    let figures: Vec<&str> = last.split_whitespace().collect();
    let c = all[119].1;
    assert_eq!(figures, ["2030-12-31", &c[0].to_string(), &c[1].to_string(), &c[2].to_string(), &c[3].to_string()]);
}

#[test]
fn mistakes_are_refused_by_name_and_lose_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let (data, _) = scenario_data(dir.path());
    let good = ["--scope", "01", "--title", "learning_citizen", "--step", "year"];
    let before = series(&data, &good);
    assert_eq!(before.code, Some(0), "{before:?}");
    let log = std::fs::read(data.join("events.log")).unwrap();

    let lc = ["--scope", "01", "--title", "learning_citizen"];
    for (args, says) in [
        (vec!["--scope", "01", "--title", "learning_town"], vec!["--title `learning_town`", "learning_citizen"]),
        (vec!["--scope", "01"], vec!["--title"]),
        ([&lc[..], &["--from", "2025-02-30"]].concat(), vec!["--from `2025-02-30`", "YYYY-MM-DD"]),
        ([&lc[..], &["--to", "31/12/2025"]].concat(), vec!["--to `31/12/2025`"]),
        ([&lc[..], &["--from", "2025-12-31", "--to", "2025-01-01"]].concat(), vec!["before --from"]),
        ([&lc[..], &["--step", "quarter"]].concat(), vec!["--step `quarter`", "day, week, month, year"]),
        ([&lc[..], &["--step", "day"]].concat(), vec!["more than 1000 points"]),
        ([&lc[..], &["--from", "2025-01-02", "--to", "2025-01-30"]].concat(), vec!["no month end"]),
        ([&lc[..], &["--known-at", "yesterday"]].concat(), vec!["--known-at `yesterday`"]),
        ([&lc[..], &["--known-at", "2000-01-01"]].concat(), vec!["2000-01-01"]),
        (vec!["--scope", "99", "--title", "learning_citizen"], vec!["99"]),
        (
            vec!["--scope", "001", "--title", "learning_citizen", "--from", "2025-07-01", "--to", "2026-12-31"],
            vec!["001", "not in force"],
        ),
    ] {
        let ran = series(&data, &args);
        assert_eq!(ran.code, Some(2), "{args:?}: {ran:?}");
        assert!(ran.stdout.is_empty(), "{args:?}: nothing printed: {}", ran.stdout);
        for s in says {
            assert!(ran.stderr.contains(s), "{args:?}: `{s}` in {}", ran.stderr);
        }
    }
    // The help names every option and the step's choices.
    let help = run(hoctap().args(["series", "--help"]));
    assert_eq!(help.code, Some(0), "{help:?}");
    for s in
        ["Usage: hoctap series", "--scope", "--title", "--from", "--to", "--step", "--known-at", "--format", "year"]
    {
        assert!(help.stdout.contains(s), "`{s}` in {}", help.stdout);
    }
    // Nothing was lost or changed: the log is the same and the same question gives the same answer.
    assert_eq!(std::fs::read(data.join("events.log")).unwrap(), log);
    assert_eq!(series(&data, &good).stdout, before.stdout);
}
