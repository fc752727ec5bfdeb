//! The dashboard of `hoctap serve` in a real browser (Debian's chromium): a generated city ingested
//! into an embedded log, served with no other service, walked through by `browser::drive_dashboard`
//! (targets with the API's figures, another date, charts, English, sort, filter, drill-down, a
//! series; an approved review and what changed since), with screenshots saved under
//! `<target>/screenshots/`.

use hoctap_tests::browser::{drive_changes_since_approval, drive_dashboard, is_png};
use hoctap_tests::hoctap;
use std::io::{BufRead, BufReader};
use std::process::{Child, Stdio};

/// `hoctap serve` on a free port; killed when dropped.
struct Served {
    child: Child,
    base: String,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

fn serve(data_dir: &std::path::Path) -> Served {
    let mut child = hoctap()
        .arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .spawn()
        .expect("starting hoctap serve");
    let stderr = child.stderr.take().expect("stderr");
    let mut lines = BufReader::new(stderr).lines();
    let base = loop {
        let line = match lines.next() {
            Some(Ok(line)) => line,
            other => panic!("hoctap serve stopped before listening: {other:?} (exit {:?})", child.try_wait()),
        };
        if let Some(url) = line.split("dashboard at ").nth(1) {
            break url.trim_end_matches('/').to_owned();
        }
    };
    // Keep reading standard error so that the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served { child, base }
}

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

    let served = serve(&data);
    let (overview, chart) = drive_dashboard(&served.base, "serve", None);
    assert!(is_png(&overview, 50_000) && is_png(&chart, 5_000));
    let changes = drive_changes_since_approval(&served.base, "15/QĐ-UBND", "serve");
    assert!(is_png(&changes, 10_000));
}
