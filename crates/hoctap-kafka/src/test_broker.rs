//! A throwaway Kafka-protocol broker for tests: tansu with its in-memory storage, on a free port,
//! stopped when dropped. A test that needs a broker fails loudly when tansu is missing (it is never
//! skipped): install it with [`INSTALL`].
//!
//! Mind tansu's gaps (shared/broker.md): it skips the rest of a producer batch when a consumer starts
//! inside one (produce with `batch.num.messages=1` in tests that seek or resume mid-stream), it forgets
//! everything when stopped, and it does not answer offset look-ups by time reliably.

use std::net::{Ipv4Addr, SocketAddrV4, TcpListener, TcpStream};
use std::path::PathBuf;
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

/// How to install the broker the tests need.
pub const INSTALL: &str = "cargo install tansu --locked --features \"dynostore postgres\"";

/// A running tansu broker. Killed (and waited for) on drop.
#[derive(Debug)]
pub struct TestBroker {
    child: Child,
    port: u16,
    log: PathBuf,
}

impl TestBroker {
    /// Starts tansu on a free port of 127.0.0.1 and waits until it accepts connections.
    ///
    /// # Panics
    /// When tansu is not installed (with the command that installs it) or does not come up.
    pub fn start() -> TestBroker {
        let bin = tansu_binary().unwrap_or_else(|| {
            panic!(
                "these tests need the tansu broker, which is not on PATH nor in ~/.cargo/bin \
                 (set HOCTAP_TANSU to its path, or install it: {INSTALL})"
            )
        });
        // Several attempts: another process may take the free port between our probe and tansu's bind.
        let mut last_failure = String::new();
        for _ in 0..5 {
            let port = free_port();
            let url = format!("tcp://127.0.0.1:{port}");
            let log = std::env::temp_dir().join(format!("hoctap-tansu-{}-{port}.log", std::process::id()));
            let out = std::fs::File::create(&log).expect("creating the broker's log file");
            let err = out.try_clone().expect("cloning the broker's log file");
            let child = Command::new(&bin)
                .args(["broker", "--listener-url", &url, "--advertised-listener-url", &url])
                .args(["--storage-engine", "memory://tansu/"])
                .stdin(Stdio::null())
                .stdout(out)
                .stderr(err)
                .spawn()
                .unwrap_or_else(|e| panic!("starting {}: {e}", bin.display()));
            let mut broker = TestBroker { child, port, log };
            match broker.wait_ready(Duration::from_secs(30)) {
                Ok(()) => return broker,
                Err(why) => last_failure = why,
            }
        }
        panic!("tansu did not start: {last_failure}");
    }

    /// `bootstrap.servers` for clients.
    pub fn brokers(&self) -> String {
        format!("127.0.0.1:{}", self.port)
    }

    /// The broker's output so far (for failure messages).
    pub fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn wait_ready(&mut self, within: Duration) -> Result<(), String> {
        let addr = SocketAddrV4::new(Ipv4Addr::LOCALHOST, self.port).into();
        let start = Instant::now();
        while start.elapsed() < within {
            if let Ok(Some(status)) = self.child.try_wait() {
                return Err(format!("tansu exited with {status}:\n{}", self.log()));
            }
            if TcpStream::connect_timeout(&addr, Duration::from_millis(200)).is_ok() {
                return Ok(());
            }
            std::thread::sleep(Duration::from_millis(50));
        }
        Err(format!("tansu did not accept connections within {within:?}:\n{}", self.log()))
    }
}

impl Drop for TestBroker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        let _ = std::fs::remove_file(&self.log);
    }
}

fn tansu_binary() -> Option<PathBuf> {
    if let Some(path) = std::env::var_os("HOCTAP_TANSU") {
        return Some(PathBuf::from(path));
    }
    let on_path = std::env::var_os("PATH")
        .into_iter()
        .flat_map(|p| std::env::split_paths(&p).collect::<Vec<_>>())
        .map(|dir| dir.join("tansu"));
    let cargo_home = std::env::var_os("CARGO_HOME")
        .map(PathBuf::from)
        .or_else(|| std::env::var_os("HOME").map(|h| PathBuf::from(h).join(".cargo")))
        .map(|home| home.join("bin").join("tansu"));
    on_path.chain(cargo_home).find(|p| p.is_file())
}

fn free_port() -> u16 {
    let listener = TcpListener::bind((Ipv4Addr::LOCALHOST, 0)).expect("binding a free port");
    listener.local_addr().expect("local address").port()
}
