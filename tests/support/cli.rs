//! The real `hoctap` binary, built once per test process, and NDJSON inputs for it.

use hoctap_domain::Event;
use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::OnceLock;

/// A command running this workspace's `hoctap` binary, freshly built with the profile the tests run in.
///
/// `env!("CARGO_BIN_EXE_hoctap")` only exists inside the binary's own package, and a bin-only crate cannot
/// be a dev-dependency, so the first call runs `cargo build -p hoctap-cli` into the target folder of the
/// running test (a no-op when the binary is up to date) and later calls reuse its path.
/// `HOCTAP_DATA_DIR` is removed so that a developer's environment cannot point the tests at real data.
pub fn hoctap() -> Command {
    static BIN: OnceLock<PathBuf> = OnceLock::new();
    let mut command = Command::new(BIN.get_or_init(build_hoctap));
    command.env_remove("HOCTAP_DATA_DIR");
    command
}

fn build_hoctap() -> PathBuf {
    // A test executable lives in `<target>/<profile dir>/deps/`; the binary goes to `<target>/<profile dir>/`.
    let exe = std::env::current_exe().expect("the path of the running test");
    let profile_dir = exe.parent().and_then(Path::parent).expect("tests run from <target>/<profile>/deps/");
    let target_dir = profile_dir.parent().expect("a target folder above the profile folder");
    let profile = match profile_dir.file_name().and_then(|n| n.to_str()) {
        Some("debug") | None => "dev",
        Some(other) => other,
    };
    let workspace = Path::new(env!("CARGO_MANIFEST_DIR")).parent().expect("tests/ sits in the workspace root");
    let cargo = std::env::var_os("CARGO").unwrap_or_else(|| env!("CARGO").into());
    let out = Command::new(cargo)
        .current_dir(workspace)
        .args(["build", "--quiet", "-p", "hoctap-cli", "--bin", "hoctap", "--profile", profile, "--target-dir"])
        .arg(target_dir)
        .output()
        .expect("running cargo build");
    assert!(out.status.success(), "cargo build -p hoctap-cli failed:\n{}", String::from_utf8_lossy(&out.stderr));
    let bin = profile_dir.join(format!("hoctap{}", std::env::consts::EXE_SUFFIX));
    assert!(bin.is_file(), "cargo build did not leave {}", bin.display());
    bin
}

/// The event as a source publishes it: canonical JSON on one line, without the tracker's `recordedtime`.
pub fn source_line(event: &Event) -> String {
    let mut e = event.clone();
    e.recordedtime = None;
    e.to_json()
}

/// [`source_line`] as a JSON value, for tests that post events over HTTP or change them first.
pub fn source_json(event: &Event) -> serde_json::Value {
    serde_json::from_str(&source_line(event)).expect("canonical JSON parses")
}

/// NDJSON text: one line each, every line ended by a newline.
pub fn ndjson<S: AsRef<str>>(lines: impl IntoIterator<Item = S>) -> String {
    let mut out = String::new();
    for line in lines {
        out.push_str(line.as_ref());
        out.push('\n');
    }
    out
}

/// What one run of `hoctap` did.
#[derive(Debug)]
pub struct Ran {
    /// The exit status (`None` when killed by a signal).
    pub code: Option<i32>,
    pub stdout: String,
    pub stderr: String,
}

/// Runs `command` to the end and keeps what it printed.
pub fn run(command: &mut Command) -> Ran {
    let out = command.output().unwrap_or_else(|e| panic!("running {command:?}: {e}"));
    Ran {
        code: out.status.code(),
        stdout: String::from_utf8(out.stdout).expect("stdout is UTF-8"),
        stderr: String::from_utf8(out.stderr).expect("stderr is UTF-8"),
    }
}

/// `hoctap --data-dir <dir> ingest <files…>`.
pub fn ingest(dir: &Path, files: &[&Path]) -> Ran {
    run(hoctap().arg("--data-dir").arg(dir).arg("ingest").args(files))
}

/// `hoctap --data-dir <dir> review --scope 01 --as-of <as_of> --format json`, which must succeed, parsed,
/// without its `generated_at` (checked present first): what is left depends only on the question.
pub fn review_json(dir: &Path, as_of: &str) -> serde_json::Value {
    let ran = run(hoctap()
        .arg("--data-dir")
        .arg(dir)
        .args(["review", "--scope", "01", "--as-of", as_of, "--format", "json"]));
    assert_eq!(ran.code, Some(0), "review failed: {ran:?}");
    let mut review: serde_json::Value = serde_json::from_str(&ran.stdout)
        .unwrap_or_else(|e| panic!("review --format json is not JSON ({e}):\n{}", ran.stdout));
    let generated = review.as_object_mut().and_then(|r| r.remove("generated_at"));
    assert!(generated.as_ref().is_some_and(serde_json::Value::is_string), "no generated_at: {}", ran.stdout);
    review
}

/// A review printed by `hoctap review` (any format) with the value of its generation time blanked: two
/// answers to the same question are equal once it is. Panics when the text states no generation time.
pub fn without_generated_at(text: &str) -> String {
    let software = concat!("hoctap ", env!("CARGO_PKG_VERSION"));
    let mut found = false;
    let out = text
        .lines()
        .map(|line| {
            // JSON `"generated_at": "…",`; CSV rows `,hoctap 0.1.0,<instant>,…`; table and HTML
            // `hoctap 0.1.0, lúc <instant>`.
            let at = line
                .find("\"generated_at\": \"")
                .map(|i| i + "\"generated_at\": \"".len())
                .or_else(|| line.find(&format!("{software}, lúc ")).map(|i| i + software.len() + ", lúc ".len()))
                .or_else(|| line.find(&format!(",{software},")).map(|i| i + software.len() + 2));
            match at {
                Some(start) => {
                    found = true;
                    let end = line[start..].find(['"', '<', ' ', ',']).map_or(line.len(), |e| start + e);
                    format!("{}<generated_at>{}", &line[..start], &line[end..])
                }
                None => line.to_owned(),
            }
        })
        .collect::<Vec<_>>()
        .join("\n");
    assert!(found, "the review states no generation time:\n{text}");
    out
}

/// `hoctap serve` on a free port, at the address it printed; killed when dropped.
pub struct Served {
    child: Child,
    /// `http://127.0.0.1:PORT`.
    pub base: String,
    pub data_dir: PathBuf,
    _dir: Option<tempfile::TempDir>,
}

impl Drop for Served {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// `hoctap --data-dir DATA_DIR serve --listen 127.0.0.1:0 ARGS…`, once it listens.
pub fn serve(data_dir: &Path, args: &[&str]) -> Served {
    let mut child = hoctap()
        .arg("--data-dir")
        .arg(data_dir)
        .args(["serve", "--listen", "127.0.0.1:0"])
        .args(args)
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
            break url.split('/').take(3).collect::<Vec<_>>().join("/");
        }
    };
    // Keep reading standard error so that the server never blocks on a full pipe.
    std::thread::spawn(move || for _ in lines {});
    Served { child, base, data_dir: data_dir.to_owned(), _dir: None }
}

/// A generated city of `citizens` (seed 3) ingested into a new embedded log, served with `args`.
pub fn serve_city(citizens: u64, args: &[&str]) -> Served {
    let dir = tempfile::tempdir().expect("a temporary folder");
    let city = dir.path().join("city.ndjson");
    let data = dir.path().join("data");
    let citizens = citizens.to_string();
    let generated = run(hoctap().args(["generate", "--citizens", &citizens, "--seed", "3", "--out"]).arg(&city));
    assert_eq!(generated.code, Some(0), "generating the city: {}", generated.stderr);
    let ingested = ingest(&data, &[&city]);
    assert!(ingested.code.is_some_and(|c| c <= 1), "ingesting the city: {}", ingested.stderr);
    let mut served = serve(&data, args);
    served._dir = Some(dir);
    served
}
