//! The dashboard of `hoctap serve` in a real browser (Debian's chromium): a generated city ingested
//! into an embedded log, served with no other service, walked through by `browser::drive_dashboard`
//! (targets with the API's figures, another date, charts, English, sort, filter, drill-down, a
//! series), with screenshots saved under `<target>/screenshots/`.

use hoctap_tests::browser::{drive_dashboard, is_png};
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
    let ingested = hoctap().arg("--data-dir").arg(&data).arg("ingest").arg(&city).output().unwrap();
    assert!(ingested.status.code().is_some_and(|c| c <= 1), "{}", String::from_utf8_lossy(&ingested.stderr));

    let served = serve(&data);
    let (overview, chart) = drive_dashboard(&served.base, "serve", None);
    assert!(is_png(&overview, 50_000) && is_png(&chart, 5_000));
}
