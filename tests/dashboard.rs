//! The dashboard of `hoctap serve` in a real browser (Debian's chromium): a generated city ingested
//! into an embedded log, served with no other service, walked through by `browser::drive_dashboard`
//! (targets with the API's figures, another date, charts, English, sort, filter, drill-down, a
//! series; an approved review and what changed since), with screenshots saved under
//! `<target>/screenshots/`. And `hoctap serve --approvals`: approvals posted over HTTP and from the
//! dashboard's form, recorded in the log as `hoctap approve` records them.

use hoctap_tests::browser::{drive_approval, drive_changes_since_approval, drive_dashboard, is_png};
use hoctap_tests::{hoctap, ingest, run, serve, serve_city, without_generated_at};
use serde_json::{Value, json};

#[test]
fn the_dashboard_of_hoctap_serve_shows_the_review_and_follows_the_date() {
    let dir = tempfile::tempdir().unwrap();
    let city = dir.path().join("city.ndjson");
    let data = dir.path().join("data");
    let generated =
        hoctap().args(["generate", "--citizens", "400", "--seed", "3", "--out"]).arg(&city).output().unwrap();
    assert!(generated.status.success(), "{}", String::from_utf8_lossy(&generated.stderr));
    // The city but every fifth recognition, the phase review approved as known then, then those
    // recognitions: the approved review and what changed since differ.
    let text = std::fs::read_to_string(&city).unwrap();
    let mut recognitions = 0;
    let (rest, first): (Vec<&str>, Vec<&str>) = text.lines().partition(|line| {
        let late = line.contains("recognition.granted") && recognitions % 5 == 4;
        recognitions += usize::from(line.contains("recognition.granted"));
        late
    });
    for (name, part) in [("first.ndjson", first), ("rest.ndjson", rest)] {
        let file = dir.path().join(name);
        std::fs::write(&file, part.join("\n") + "\n").unwrap();
        let ingested = hoctap().arg("--data-dir").arg(&data).arg("ingest").arg(&file).output().unwrap();
        assert!(ingested.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&ingested.stderr));
        if name == "first.ndjson" {
            let approved = hoctap()
                .arg("--data-dir")
                .arg(&data)
                .args(["approve", "--scope", "01", "--as-of", "2025-12-31", "--number", "15/QĐ-UBND"])
                .args(["--issuer", "UBND-01", "--date", "2026-01-20"])
                .output()
                .unwrap();
            assert!(approved.status.success(), "{}", String::from_utf8_lossy(&approved.stderr));
        }
    }

    let served = serve(&data, &[]);
    let (overview, chart) = drive_dashboard(&served.base, "serve", None);
    assert!(is_png(&overview, 50_000) && is_png(&chart, 5_000));
    let changes = drive_changes_since_approval(&served.base, "15/QĐ-UBND", "serve");
    assert!(is_png(&changes, 10_000));
}

/// POSTs `body` to `/v1/approvals` of `base` as JSON (with `origin` as the `Origin` header when given).
fn post(base: &str, body: &Value, origin: Option<&str>) -> (u16, Value) {
    let mut request = reqwest::blocking::Client::new()
        .post(format!("{base}/v1/approvals"))
        .header("Content-Type", "application/json")
        .body(body.to_string());
    if let Some(origin) = origin {
        request = request.header("Origin", origin);
    }
    let response = request.send().expect("POST /v1/approvals");
    let status = response.status().as_u16();
    (status, response.json().unwrap_or(Value::Null))
}

fn get_text(url: &str) -> String {
    reqwest::blocking::get(url).and_then(|r| r.error_for_status()).and_then(|r| r.text()).expect(url)
}

/// `hoctap review --approved NUMBER --format json` on `data`, without its generation time.
fn approved_by_cli(data: &std::path::Path, number: &str) -> String {
    let ran = run(hoctap().arg("--data-dir").arg(data).args(["review", "--approved", number, "--format", "json"]));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    without_generated_at(&ran.stdout)
}

/// Lines of the embedded log's dead-letter file.
fn dead_letters(data: &std::path::Path) -> usize {
    std::fs::read_to_string(data.join("dead-letter.ndjson")).map_or(0, |t| t.lines().count())
}

#[test]
fn approvals_posted_to_hoctap_serve_reproduce_as_the_cli_gives_them_and_nothing_else_is_written() {
    let served = serve_city(300, &["--approvals"]);
    let data = served.data_dir.clone();
    let base = &served.base;
    let phase = json!({"scope": "01", "as_of": "2025-12-31", "number": "15/QĐ-UBND", "issuer": "UBND-01", "date": "2026-01-20"});

    let (status, first) = post(base, &phase, None);
    assert_eq!(status, 201, "{first}");
    assert_eq!(first["status"], "recorded");
    assert_eq!(first["event"]["type"], "vn.hoctap.review.approved.v1");
    assert_eq!(first["event"]["data"]["decision"]["number"], "15/QĐ-UBND");
    // The server's approved review is the CLI's, byte for byte but for the generation time.
    let by_server = without_generated_at(&get_text(&format!("{base}/v1/reviews?approved=15/Q%C4%90-UBND")));
    assert_eq!(by_server, approved_by_cli(&data, "15/QĐ-UBND"));
    let approved: Value = serde_json::from_str(&by_server).unwrap();
    assert_eq!(approved["events"], first["events"], "the review approved counts what was recorded then");

    // The same approval again (with the known-at it froze; without one, K is the newest record, the
    // approval itself): nothing written. The number for another review: 409, kept as a dead letter.
    let dead_before = dead_letters(&data);
    let mut same = phase.clone();
    same["known_at"] = first["event"]["data"]["known_at"].clone();
    let (status, again) = post(base, &same, None);
    assert_eq!((status, again["status"].as_str()), (200, Some("already_recorded")), "{again}");
    assert_eq!(again["event"]["id"], first["event"]["id"]);
    let mut other = phase.clone();
    other["as_of"] = "2024-12-31".into();
    let (status, conflict) = post(base, &other, None);
    assert_eq!((status, conflict["rule"].as_str()), (409, Some("approval_conflict")), "{conflict}");
    assert_eq!(dead_letters(&data), dead_before + 1, "the refused approval is kept with its reason");
    // A page of another site may not approve; a unit not in force cannot be approved; a bad date.
    let mut second = phase.clone();
    second["number"] = "16/QĐ-UBND".into();
    let (status, foreign) = post(base, &second, Some("http://evil.example"));
    assert_eq!((status, foreign["rule"].as_str()), (403, Some("origin")), "{foreign}");
    let mut abolished = second.clone();
    abolished["scope"] = "001".into();
    let (status, refused) = post(base, &abolished, None);
    assert_eq!(status, 422, "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("001"), "{refused}");
    let mut bad_date = second.clone();
    bad_date["date"] = "2026-02-30".into();
    let (status, bad) = post(base, &bad_date, None);
    assert_eq!((status, bad["field"].as_str()), (400, Some("date")), "{bad}");
    let listed: Value = serde_json::from_str(&get_text(&format!("{base}/v1/approvals"))).unwrap();
    assert_eq!(listed["approvals"].as_array().unwrap().len(), 1, "only the recorded approval: {listed}");

    // The server holds the log's writer lock only while it records: an ingest beside it works, and the
    // next approval counts what it added.
    let dir = tempfile::tempdir().unwrap();
    let more = dir.path().join("more.ndjson");
    let generated = run(hoctap().args(["generate", "--citizens", "40", "--seed", "9", "--out"]).arg(&more));
    assert_eq!(generated.code, Some(0), "{generated:?}");
    let ingested = ingest(&data, &[&more]);
    assert!(ingested.code.is_some_and(|c| c <= 1), "an ingest while the server runs: {ingested:?}");
    let mut final_review = second.clone();
    final_review["as_of"] = "2030-12-31".into();
    let (status, later) = post(base, &final_review, None);
    assert_eq!(status, 201, "{later}");
    assert!(later["events"].as_u64() > first["events"].as_u64(), "the ingested events count: {later}");
    let by_server = without_generated_at(&get_text(&format!("{base}/v1/reviews?approved=16/Q%C4%90-UBND")));
    assert_eq!(by_server, approved_by_cli(&data, "16/QĐ-UBND"));
}

#[test]
fn hoctap_serve_without_approvals_refuses_them_and_its_allow_header_offers_no_post() {
    let served = serve_city(60, &[]);
    let phase =
        json!({"scope": "01", "as_of": "2025-12-31", "number": "1/QĐ", "issuer": "UBND-01", "date": "2026-01-20"});
    let (status, refused) = post(&served.base, &phase, None);
    assert_eq!((status, refused["rule"].as_str()), (403, Some("approvals")), "{refused}");
    assert!(refused["error"].as_str().unwrap().contains("--approvals"), "{refused}");
    let allow = reqwest::blocking::get(format!("{}/v1/approvals", served.base)).unwrap();
    assert_eq!(allow.headers()["allow"], "GET");
}

#[test]
fn the_dashboard_of_hoctap_serve_approvals_approves_the_review_on_screen() {
    let served = serve_city(300, &["--approvals"]);
    let shots = drive_approval(&served.base, "20/QĐ-UBND", "serve");
    assert!(shots.iter().all(|shot| is_png(shot, 5_000)));
    assert_eq!(
        without_generated_at(&get_text(&format!("{}/v1/reviews?approved=20/Q%C4%90-UBND", served.base))),
        approved_by_cli(&served.data_dir, "20/QĐ-UBND")
    );
}
