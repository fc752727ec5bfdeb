//! A PostgreSQL server of a test's own (a fresh cluster in a temporary folder, on a free port), for
//! tests that restart PostgreSQL: the machine's shared server must stay up for the tests running
//! beside them.

use std::net::TcpListener;
use std::os::unix::fs::MetadataExt;
use std::path::PathBuf;
use std::process::Command;
use std::time::Duration;

/// A private PostgreSQL server: trust authentication, user `postgres`, database `postgres`. Stopped
/// (immediately) and deleted when dropped.
pub struct PgCluster {
    bin: PathBuf,
    dir: tempfile::TempDir,
    port: u16,
    /// PostgreSQL refuses to run as root: as root, its tools run as this user.
    user: Option<&'static str>,
}

impl PgCluster {
    /// Creates the cluster and starts the server.
    ///
    /// # Panics
    /// When PostgreSQL's server programs (`initdb`, `pg_ctl`) are not installed, or the server does
    /// not start (with its log). Tests that need it fail loudly rather than skip.
    pub fn start() -> PgCluster {
        let bin = server_programs().unwrap_or_else(|| {
            panic!(
                "this test runs a PostgreSQL server of its own and needs initdb and pg_ctl \
                 (/usr/lib/postgresql/<version>/bin): install the `postgresql` package"
            )
        });
        let dir = tempfile::tempdir().expect("a temporary folder");
        let root = std::fs::metadata("/proc/self").is_ok_and(|m| m.uid() == 0);
        let user = root.then_some("postgres");
        if let Some(user) = user {
            run(Command::new("chown").arg(format!("{user}:")).arg(dir.path()), "chown");
        }
        let port = TcpListener::bind("127.0.0.1:0").and_then(|l| l.local_addr()).expect("a free port").port();
        let cluster = PgCluster { bin, dir, port, user };
        let data = cluster.data();
        run(
            cluster
                .tool("initdb")
                .args(["-U", "postgres", "-A", "trust", "-E", "UTF8", "--locale=C", "--no-sync", "-D"])
                .arg(&data),
            "initdb",
        );
        cluster.pg_ctl("start");
        cluster
    }

    /// The connection string.
    pub fn url(&self) -> String {
        format!("postgresql://postgres@127.0.0.1:{}/postgres", self.port)
    }

    /// Stops the server, leaves it down for `down`, starts it and waits until it accepts connections
    /// again. `-m fast`: every client is disconnected and its open transaction rolled back, as in a
    /// failover or an upgrade; a restart alone takes a fraction of a second, too short for a client
    /// between two statements to notice.
    pub fn restart(&self, down: Duration) {
        self.pg_ctl("stop");
        std::thread::sleep(down);
        self.pg_ctl("start");
    }

    /// The server's log.
    pub fn log(&self) -> String {
        std::fs::read_to_string(self.dir.path().join("server.log")).unwrap_or_default()
    }

    fn data(&self) -> PathBuf {
        self.dir.path().join("data")
    }

    fn pg_ctl(&self, action: &str) {
        let options =
            format!("-p {} -k {} -c listen_addresses=127.0.0.1 -c fsync=off", self.port, self.dir.path().display());
        let mut command = self.tool("pg_ctl");
        command.args([action, "-w", "-t", "60", "-m", "fast", "-o", &options, "-D"]).arg(self.data());
        command.arg("-l").arg(self.dir.path().join("server.log"));
        let out = command.output().unwrap_or_else(|e| panic!("running pg_ctl {action}: {e}"));
        assert!(
            out.status.success(),
            "pg_ctl {action} failed: {}{}\n{}",
            String::from_utf8_lossy(&out.stdout),
            String::from_utf8_lossy(&out.stderr),
            self.log()
        );
    }

    fn tool(&self, name: &str) -> Command {
        let program = self.bin.join(name);
        match self.user {
            Some(user) => {
                let mut command = Command::new("runuser");
                command.args(["-u", user, "--"]).arg(program);
                command
            }
            None => Command::new(program),
        }
    }
}

impl Drop for PgCluster {
    fn drop(&mut self) {
        let _ = self.tool("pg_ctl").args(["stop", "-m", "immediate", "-D"]).arg(self.data()).output();
    }
}

/// The folder of the newest installed PostgreSQL's server programs.
fn server_programs() -> Option<PathBuf> {
    let mut found: Vec<(u32, PathBuf)> = std::fs::read_dir("/usr/lib/postgresql")
        .ok()?
        .flatten()
        .filter_map(|e| Some((e.file_name().to_str()?.parse().ok()?, e.path().join("bin"))))
        .filter(|(_, bin)| bin.join("initdb").is_file() && bin.join("pg_ctl").is_file())
        .collect();
    found.sort();
    found.pop().map(|(_, bin)| bin)
}

fn run(command: &mut Command, what: &str) {
    let out = command.output().unwrap_or_else(|e| panic!("running {what}: {e}"));
    assert!(out.status.success(), "{what} failed:\n{}", String::from_utf8_lossy(&out.stderr));
}
