//! The product as a city runs it, for real: the `hoctap` binary's gateway, projector(s) and API as
//! processes, a tansu broker (Kafka protocol, through rdkafka) and the machine's PostgreSQL (or a
//! private one, for the test that restarts it).
//!
//! Every test compares with the embedded engine fed the very records on the topics (with the
//! `recordedtime` the gateway stamped): the same reviews, byte for byte, from the HTTP API.
//! These tests need tansu and PostgreSQL and fail loudly without them (`scripts/services.sh` sets
//! both up).

use hoctap_domain::time::format_instant;
use hoctap_domain::{Day, Engine, Event, Query};
use hoctap_kafka::test_broker::TestBroker;
use hoctap_kafka::{DeadLetter, Topics, read_all};
use hoctap_store::{Deployment, Schema, events_applied};
use hoctap_tests::{PgCluster, hoctap, source_json};
use rdkafka::consumer::{BaseConsumer, Consumer};
use serde_json::{Value, json};
use std::collections::{HashMap, HashSet};
use std::net::TcpListener;
use std::path::PathBuf;
use std::process::{Child, Stdio};
use std::time::{Duration, Instant, SystemTime, UNIX_EPOCH};

const PG: &str = hoctap_tests::PG_URL;
const NATIONAL: &str = "token-national";
const HANOI: &str = "token-hanoi";
const BATCH: &str = "application/cloudevents-batch+json";
const PARTITIONS: &str = "4";

/// Dates every comparison checks: before and after the 2025 reform, the milestones.
const DATES: &[&str] =
    &["2022-12-31", "2024-06-30", "2025-06-30", "2025-07-01", "2025-12-31", "2028-01-15", "2030-12-31"];

/// A process of the `hoctap` binary, killed when dropped.
struct Service {
    name: String,
    child: Child,
    log: PathBuf,
    /// A projector's `/metrics`.
    metrics: Option<String>,
}

impl Service {
    fn start(name: &str, dir: &std::path::Path, args: &[String]) -> Service {
        let log = dir.join(format!("{name}.log"));
        let file = std::fs::OpenOptions::new().create(true).append(true).open(&log).expect("a log file");
        let child = hoctap()
            .args(args)
            .env("RUST_LOG", "info")
            .stdout(Stdio::null())
            .stderr(file)
            .spawn()
            .unwrap_or_else(|e| panic!("starting hoctap {name}: {e}"));
        Service { name: name.to_owned(), child, log, metrics: None }
    }

    fn kill(&mut self) {
        // SIGKILL: no chance to finish a batch or leave the group.
        let _ = self.child.kill();
        let _ = self.child.wait();
    }

    fn log(&self) -> String {
        std::fs::read_to_string(&self.log).unwrap_or_default()
    }

    fn assert_running(&mut self) {
        if let Ok(Some(status)) = self.child.try_wait() {
            panic!("hoctap {} exited with {status}:\n{}", self.name, self.log());
        }
    }
}

impl Drop for Service {
    fn drop(&mut self) {
        self.kill();
    }
}

/// A broker, a deployment in database `test` (or the PostgreSQL at `postgres`), a gateway, and
/// whatever projectors the test starts.
struct Stack {
    broker: TestBroker,
    postgres: String,
    deployment: Deployment,
    dir: tempfile::TempDir,
    runtime: tokio::runtime::Runtime,
    gateway: Service,
    gateway_url: String,
    http: reqwest::blocking::Client,
}

fn free_port() -> u16 {
    TcpListener::bind("127.0.0.1:0").expect("a free port").local_addr().expect("its address").port()
}

impl Stack {
    fn start() -> Stack {
        Stack::start_on(PG)
    }

    fn start_on(postgres: &str) -> Stack {
        let broker = TestBroker::start();
        let dir = tempfile::tempdir().expect("a temporary folder");
        let tokens = dir.path().join("tokens.toml");
        std::fs::write(
            &tokens,
            format!(
                "[[source]]\nname = \"national\"\nprovince = \"*\"\ntoken_sha256 = \"{}\"\n\n\
                 [[source]]\nname = \"khuyenhoc-hanoi\"\nprovince = \"01\"\ntoken_sha256 = \"{}\"\n",
                hoctap_gateway::hash_token(NATIONAL),
                hoctap_gateway::hash_token(HANOI)
            ),
        )
        .expect("writing the tokens");
        let port = free_port();
        let name = format!("t_{:016x}", fastrand::u64(..));
        let gateway = Service::start(
            "gateway",
            dir.path(),
            &[
                "gateway".into(),
                "--brokers".into(),
                broker.brokers(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                "--tokens".into(),
                tokens.display().to_string(),
                "--partitions".into(),
                PARTITIONS.into(),
                "--postgres".into(),
                postgres.into(),
                "--deployment".into(),
                name.clone(),
                // tansu skips the rest of a producer batch when a consumer resumes inside it
                // (shared/broker.md, gap 1): every record its own batch, so restarts are exact.
                "--producer-setting".into(),
                "batch.num.messages=1".into(),
            ],
        );
        let mut stack = Stack {
            broker,
            postgres: postgres.to_owned(),
            deployment: Deployment::new(&name).expect("a deployment name"),
            dir,
            runtime: tokio::runtime::Runtime::new().expect("a runtime"),
            gateway,
            gateway_url: format!("http://127.0.0.1:{port}"),
            http: reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().expect("a client"),
        };
        stack.wait_http(&format!("{}/healthz", stack.gateway_url), "gateway");
        stack
    }

    fn wait_http(&mut self, url: &str, what: &str) {
        let started = Instant::now();
        loop {
            if self.http.get(url).send().is_ok_and(|r| r.status().is_success()) {
                return;
            }
            self.gateway.assert_running();
            assert!(started.elapsed() < Duration::from_secs(90), "{what} did not answer {url}");
            std::thread::sleep(Duration::from_millis(200));
        }
    }

    fn projector(&self, name: &str, extra: &[&str]) -> Service {
        self.projector_in_group(name, &format!("{}-projector", self.deployment.name()), extra)
    }

    fn projector_in_group(&self, name: &str, group: &str, extra: &[&str]) -> Service {
        let metrics = format!("127.0.0.1:{}", free_port());
        let mut args: Vec<String> = vec![
            "project".into(),
            "--brokers".into(),
            self.broker.brokers(),
            "--postgres".into(),
            self.postgres.clone(),
            "--deployment".into(),
            self.deployment.name().into(),
            "--group".into(),
            group.into(),
            "--partitions".into(),
            PARTITIONS.into(),
            "--metrics-listen".into(),
            metrics.clone(),
            "--batch-max".into(),
            "500".into(),
            "--dashboard-every".into(),
            "0".into(),
            // A killed member's partitions move on within seconds, not the default 45 s; a rebalance
            // waits at most 15 s (the members' max.poll.interval.ms) for members that will never
            // rejoin.
            "--consumer-setting".into(),
            "session.timeout.ms=6000".into(),
            "--consumer-setting".into(),
            "max.poll.interval.ms=15000".into(),
            "--consumer-setting".into(),
            "heartbeat.interval.ms=500".into(),
        ];
        args.extend(extra.iter().map(|s| s.to_string()));
        let mut service = Service::start(name, self.dir.path(), &args);
        service.metrics = Some(format!("http://{metrics}/metrics"));
        service
    }

    fn api(&mut self) -> (Service, String) {
        let port = free_port();
        let service = Service::start(
            "api",
            self.dir.path(),
            &[
                "api".into(),
                "--postgres".into(),
                self.postgres.clone(),
                "--deployment".into(),
                self.deployment.name().into(),
                "--listen".into(),
                format!("127.0.0.1:{port}"),
                // The reviews compared with the engine are public; readers' tokens are tested in
                // crates/hoctap-api/tests/api/access.rs.
                "--public-reviews".into(),
            ],
        );
        let url = format!("http://127.0.0.1:{port}");
        self.wait_http(&format!("{url}/healthz"), "api");
        (service, url)
    }

    /// Posts one batch through the gateway; returns the per-event results.
    fn post(&self, token: &str, events: &[Value]) -> Value {
        post_batch(&self.http, &self.gateway_url, token, events)
    }

    /// Posts `batches` through the gateway from another thread, pausing between them.
    fn stream(&self, batches: &[Vec<Value>], pause: Duration) -> std::thread::JoinHandle<()> {
        let (url, batches) = (self.gateway_url.clone(), batches.to_vec());
        std::thread::spawn(move || {
            let http = reqwest::blocking::Client::builder().timeout(Duration::from_secs(60)).build().unwrap();
            for b in batches {
                post_batch(&http, &url, NATIONAL, &b);
                std::thread::sleep(pause);
            }
        })
    }

    /// Every record on the events and reference topics, decoded (refused records skipped).
    fn events_on_topics(&self) -> Vec<Event> {
        let topics = Topics::default();
        [topics.events, topics.reference]
            .iter()
            .flat_map(|t| read_all(&self.broker.brokers(), t, Duration::from_secs(20)).expect("reading a topic"))
            .filter_map(|r| Event::from_json_recorded(&r.payload).ok())
            .collect()
    }

    /// Waits until the serving generation stored offsets at the end of every partition.
    fn wait_caught_up(&self, projectors: &mut [&mut Service]) {
        let topics = Topics::default();
        let consumer: BaseConsumer =
            hoctap_kafka::reader_config(&self.broker.brokers()).create().expect("a Kafka client");
        let started = Instant::now();
        loop {
            let mut ends: HashMap<(String, i32), i64> = HashMap::new();
            let partitions: i32 = PARTITIONS.parse().unwrap();
            for (topic, n) in [(&topics.events, partitions), (&topics.reference, 1)] {
                for p in 0..n {
                    let (_, high) = consumer.fetch_watermarks(topic, p, Duration::from_secs(10)).expect("watermarks");
                    ends.insert((topic.clone(), p), high);
                }
            }
            let stored = self.runtime.block_on(async {
                let mut client = self.connect().await;
                let Ok(schema) = self.deployment.active(&client).await else { return HashMap::new() };
                let _ = &mut client;
                hoctap_store::offsets(&client, &schema).await.unwrap_or_default()
            });
            if ends.iter().all(|(k, &high)| high == 0 || stored.get(k).copied() == Some(high)) {
                return;
            }
            for p in projectors.iter_mut() {
                p.assert_running();
            }
            assert!(
                started.elapsed() < Duration::from_secs(240),
                "the projectors did not catch up: ends {ends:?}, stored {stored:?}\n{}",
                projectors.iter().map(|p| p.log()).collect::<Vec<_>>().join("\n----\n")
            );
            std::thread::sleep(Duration::from_millis(300));
        }
    }

    async fn connect(&self) -> tokio_postgres::Client {
        hoctap_tests::pg_connect_to(&self.postgres).await
    }

    /// Runs `hoctap rebuild` of the deployment and returns what it printed.
    fn rebuild(&self) -> String {
        let out = hoctap()
            .args(["rebuild", "--brokers", &self.broker.brokers(), "--postgres", &self.postgres, "--deployment"])
            .arg(self.deployment.name())
            .output()
            .expect("running hoctap rebuild");
        assert!(out.status.success(), "rebuild failed:\n{}", String::from_utf8_lossy(&out.stderr));
        String::from_utf8_lossy(&out.stdout).into_owned()
    }

    fn active(&self) -> Schema {
        self.runtime
            .block_on(async { self.deployment.active(&self.connect().await).await.expect("a serving generation") })
    }

    /// The API's reviews equal the embedded engine's, fed the records on the topics, on every date
    /// (and as known at `known_at`, when given).
    fn assert_reviews_equal_engine(&self, api: &str, known_at: &[Option<i64>]) {
        self.assert_reviews_equal_engine_without(api, known_at, &HashSet::new());
    }

    /// [`Stack::assert_reviews_equal_engine`], the events `refused` (by the projector) left out.
    fn assert_reviews_equal_engine_without(&self, api: &str, known_at: &[Option<i64>], refused: &HashSet<uuid::Uuid>) {
        let mut engine = Engine::new();
        for e in self.events_on_topics().iter().filter(|e| !refused.contains(&e.id)) {
            engine.apply(e);
        }
        let mut compared = 0;
        for &k in known_at {
            for date in DATES {
                let query =
                    Query { scope: "01".into(), as_of: Day::parse(date).unwrap(), known_at: k, milestone: None };
                let mut expected = engine.review(&query).expect("the engine's review");
                let mut url = format!("{api}/v1/reviews?scope=01&as_of={date}");
                if let Some(k) = k {
                    url.push_str(&format!("&known_at={}", format_instant(k)));
                }
                let response = self.http.get(&url).send().expect("asking the API");
                assert_eq!(response.status().as_u16(), 200, "{url}");
                let got = response.text().expect("a body");
                let got_v: Value = serde_json::from_str(&got).expect("JSON");
                // Byte for byte the engine's document, stamped with the answer's own generation time.
                let generated = got_v["generated_at"].as_str().and_then(hoctap_domain::time::parse_instant);
                hoctap_report::stamp(&mut expected, generated.expect("a generation time"));
                assert_eq!(
                    got,
                    hoctap_report::json(&expected),
                    "review of 01 on {date} known at {k:?} differs from the engine's"
                );
                compared += 1;
            }
        }
        assert!(compared >= DATES.len());
    }

    fn drop_deployment(&self) {
        self.runtime.block_on(async {
            let mut client = self.connect().await;
            self.deployment.drop_all(&mut client).await.expect("dropping the deployment");
        });
    }
}

impl Drop for Stack {
    fn drop(&mut self) {
        if !std::thread::panicking() {
            self.drop_deployment();
        }
    }
}

/// Posts one batch to the gateway at `url`; it must be accepted (202); returns the per-event results.
/// A 503 is retried after its `Retry-After`, as a source system does (PostgreSQL or Kafka restarting:
/// the events the log already took come back as duplicates), for at most a minute.
fn post_batch(http: &reqwest::blocking::Client, url: &str, token: &str, events: &[Value]) -> Value {
    let body = Value::Array(events.to_vec()).to_string();
    let deadline = std::time::Instant::now() + Duration::from_secs(60);
    loop {
        let response = http
            .post(format!("{url}/v1/events"))
            .bearer_auth(token)
            .header("content-type", BATCH)
            .body(body.clone())
            .send()
            .expect("posting to the gateway");
        let status = response.status();
        let wait = response.headers().get("retry-after").and_then(|v| v.to_str().ok()?.parse::<u64>().ok());
        let answer: Value = response.json().expect("a JSON answer");
        if status.as_u16() == 503 && std::time::Instant::now() < deadline {
            std::thread::sleep(Duration::from_secs(wait.unwrap_or(1).min(5)));
            continue;
        }
        assert_eq!(status.as_u16(), 202, "the gateway refused a batch: {answer}");
        return answer;
    }
}

fn now_micros() -> i64 {
    SystemTime::now().duration_since(UNIX_EPOCH).unwrap().as_micros() as i64
}

/// A generated city as the JSON its sources send (no `recordedtime`), in batches of `size`: the
/// reference data first (geography, baselines, targets), then the subjects' events.
fn city(citizens: u64, seed: u64, size: usize) -> Vec<Vec<Value>> {
    let mut events = Vec::new();
    hoctap_gen::generate(&hoctap_gen::Config::new(citizens, seed), |e| events.push(e.clone()));
    let (reference, rest): (Vec<Event>, Vec<Event>) = events.into_iter().partition(|e| e.event_type().is_reference());
    let mut batches: Vec<Vec<Value>> = reference.chunks(size).map(|c| c.iter().map(source_json).collect()).collect();
    batches.extend(rest.chunks(size).map(|c| c.iter().map(source_json).collect()));
    batches
}

#[test]
fn end_to_end_reviews_through_the_api_equal_the_embedded_engine() {
    let mut stack = Stack::start();
    let batches = city(300, 21, 400);
    let (last, first) = batches.split_last().unwrap();
    for b in first {
        stack.post(NATIONAL, b);
    }
    let mut projector = stack.projector("projector", &[]);
    // Known-at K: everything but the last batch.
    std::thread::sleep(Duration::from_millis(20));
    let before_last = now_micros();
    std::thread::sleep(Duration::from_millis(20));
    stack.post(NATIONAL, last);
    stack.wait_caught_up(&mut [&mut projector]);
    let (_api, url) = stack.api();
    stack.assert_reviews_equal_engine(&url, &[None, Some(before_last)]);

    // The dashboards' surface: the views answer for the read-only role, and only the views do.
    stack.runtime.block_on(async {
        let mut client = stack.connect().await;
        hoctap_store::refresh_dashboard(&mut client, &stack.deployment.generation(1)).await.unwrap();
        let v = stack.deployment.dashboard_schema();
        let role = stack.deployment.dashboard_role();
        let tx = client.transaction().await.unwrap();
        tx.batch_execute(&format!("SET LOCAL ROLE \"{role}\"")).await.unwrap();
        let row = tx
            .query_one(
                &format!(
                    "SELECT recognised FROM {v}.title_counts
                     WHERE as_of = '2025-12-31' AND unit_code = '01' AND title = 'learning_citizen'"
                ),
                &[],
            )
            .await
            .unwrap();
        let recognised: i64 = row.get(0);
        assert!(recognised > 0);
        let targets: i64 = tx.query_one(&format!("SELECT count(*) FROM {v}.targets"), &[]).await.unwrap().get(0);
        assert!(targets > 0);
        let denied =
            tx.query_one(&format!("SELECT count(*) FROM {}.subjects", stack.deployment.generation(1)), &[]).await;
        assert!(denied.is_err(), "the dashboard role must not read the tables");
    });
}

#[test]
fn a_projector_killed_twenty_times_while_events_stream_loses_and_doubles_nothing() {
    let mut stack = Stack::start();
    let batches = city(400, 33, 150);
    let (reference, rest) = batches.split_at(batches.iter().position(|b| b.iter().any(|e| !is_reference(e))).unwrap());
    for b in reference {
        stack.post(NATIONAL, b);
    }
    // Stream the subjects' events from another thread while the projector is killed and restarted.
    let streamer = stack.stream(rest, Duration::from_millis(30));
    // tansu does not expire the members of a killed process (seen: their partitions stayed with the
    // dead members for minutes), so each incarnation joins a consumer group of its own. What is
    // applied does not depend on the group: the offsets live in PostgreSQL, with the read models.
    let incarnation =
        |n: u32| stack.projector_in_group("projector", &format!("{}-run{n}", stack.deployment.name()), &[]);
    let mut kills = 0;
    let mut projector = incarnation(kills);
    while kills < 20 {
        std::thread::sleep(Duration::from_millis(fastrand::u64(300..1500)));
        projector.assert_running();
        projector.kill();
        kills += 1;
        projector = incarnation(kills);
    }
    streamer.join().expect("the streamer");
    stack.wait_caught_up(&mut [&mut projector]);
    assert!(kills >= 20);
    // Every event on the topics is stored once.
    let ids: HashSet<uuid::Uuid> = stack.events_on_topics().iter().map(|e| e.id).collect();
    let active = stack.active();
    let stored = stack.runtime.block_on(async { events_applied(&stack.connect().await, &active).await.unwrap() });
    assert_eq!(stored as usize, ids.len());
    let (_api, url) = stack.api();
    stack.assert_reviews_equal_engine(&url, &[None]);
}

fn is_reference(event: &Value) -> bool {
    let ty = event["type"].as_str().unwrap_or_default();
    ty.contains("admin_unit.") || ty.contains("baseline.") || ty.contains("target.")
}

#[test]
fn two_projectors_split_the_partitions_and_the_result_is_exact() {
    let mut stack = Stack::start();
    let batches = city(300, 45, 300);
    let mut a = stack.projector("projector-a", &[]);
    let mut b = stack.projector("projector-b", &[]);
    for batch in &batches {
        stack.post(NATIONAL, batch);
    }
    stack.wait_caught_up(&mut [&mut a, &mut b]);
    // Both members applied events (each logs the partitions it was given).
    for p in [&a, &b] {
        assert!(p.log().contains("partitions assigned"), "{} got no partitions:\n{}", p.name, p.log());
    }
    let (_api, url) = stack.api();
    stack.assert_reviews_equal_engine(&url, &[None]);
}

#[test]
fn refused_events_reach_the_dead_letter_topic_and_their_valid_neighbours_are_counted() {
    let mut stack = Stack::start();
    let batches = city(100, 5, 500);
    for b in &batches {
        stack.post(NATIONAL, b);
    }
    let mut projector = stack.projector("projector", &[]);
    // Hồ Chí Minh City, published by the national source.
    stack.post(
        NATIONAL,
        &[
            established(1, "79", "province", None),
            established(2, "760", "district", Some("79")),
            established(3, "26734", "commune", Some("760")),
        ],
    );
    // A batch from Hà Nội's source: two valid registrations (copies of a generated one) beside an
    // event for an unknown unit and one for a commune of another province.
    let template = batches
        .iter()
        .flatten()
        .find(|e| e["type"] == "vn.hoctap.registration.submitted.v1" && e["data"]["subject_kind"] == "citizen")
        .expect("a generated registration")
        .clone();
    let valid: Vec<Value> = (0..2).map(|i| copy(&template, &format!("cd-dlq-{i}"), None, i)).collect();
    let unknown = copy(&template, "cd-dlq-unknown", Some("99999"), 7);
    let other_province = copy(&template, "cd-dlq-hcm", Some("26734"), 8);
    let answer = stack.post(HANOI, &[valid[0].clone(), unknown, valid[1].clone(), other_province]);
    assert_eq!(answer["accepted"].as_array().map(Vec::len), Some(2), "{answer}");
    assert_eq!(answer["refused"].as_array().map(Vec::len), Some(2), "{answer}");
    // A record that is not an event, produced around the gateway: the projector dead-letters it and
    // goes on.
    produce_raw(&stack, &[(0, json!({"not": "an event"}))]);
    stack.wait_caught_up(&mut [&mut projector]);

    let letters: Vec<DeadLetter> =
        read_all(&stack.broker.brokers(), &Topics::default().dead_letter, Duration::from_secs(20))
            .unwrap()
            .iter()
            .map(|r| DeadLetter::from_json(&r.payload).expect("a dead letter"))
            .collect();
    let rules: Vec<(&str, Option<&str>)> =
        letters.iter().map(|l| (l.reason.rule.as_str(), l.source.as_deref())).collect();
    assert!(rules.iter().any(|(rule, _)| *rule == "unknown_unit"), "{rules:?}");
    assert!(rules.iter().any(|(rule, _)| *rule == "province"), "{rules:?}");
    assert!(rules.iter().any(|(_, source)| *source == Some("projector")), "{rules:?}");
    for l in &letters {
        assert!(!l.reason.field.is_empty() && !l.reason.detail.is_empty(), "{l:?}");
    }
    // The valid neighbours are counted: stored in the read models, like every event on the topics.
    let active = stack.active();
    let stored: Vec<String> = stack.runtime.block_on(async {
        stack
            .connect()
            .await
            .query(&format!("SELECT subject FROM {active}.subjects WHERE subject LIKE 'cd-dlq-%'"), &[])
            .await
            .unwrap()
            .iter()
            .map(|r| r.get(0))
            .collect()
    });
    let mut stored = stored;
    stored.sort();
    assert_eq!(stored, ["cd-dlq-0", "cd-dlq-1"]);
    let (_api, url) = stack.api();
    stack.assert_reviews_equal_engine(&url, &[None]);
}

/// `template` with another id and subject (and commune, when given).
fn copy(template: &Value, subject: &str, commune: Option<&str>, n: u128) -> Value {
    let mut e = template.clone();
    e["id"] = json!(uuid::Uuid::from_u128(0xd1e0_0000 + n).to_string());
    e["subject"] = json!(subject);
    if let Some(c) = commune {
        e["data"]["commune"] = json!(c);
    }
    e
}

/// A unit established, as its source sends it.
fn established(n: u128, code: &str, level: &str, parent: Option<&str>) -> Value {
    source_json(&hoctap_tests::unit(0xa0_0000 + n, code, level, &format!("Đơn vị {code}"), parent))
}

#[test]
fn a_rebuild_while_events_stream_equals_the_live_read_models_and_switches() {
    let mut stack = Stack::start();
    let batches = city(300, 77, 200);
    let (first, second) = batches.split_at(batches.len() / 2);
    for b in first {
        stack.post(NATIONAL, b);
    }
    let mut projector = stack.projector("projector", &[]);
    stack.wait_caught_up(&mut [&mut projector]);
    assert_eq!(stack.active(), stack.deployment.generation(1));
    let streamer = stack.stream(second, Duration::ZERO);
    let said = stack.rebuild();
    assert!(said.contains("now serving"), "{said}");
    assert_eq!(stack.active(), stack.deployment.generation(2));
    streamer.join().unwrap();
    stack.wait_caught_up(&mut [&mut projector]);
    assert!(projector.log().contains("moving to the new one") || !projector.log().is_empty());
    let (_api, url) = stack.api();
    stack.assert_reviews_equal_engine(&url, &[None]);
    // The old generation is kept and equals the new one up to the switch; the projector went on in
    // the new one only.
    let later: i64 = stack.runtime.block_on(async {
        let client = stack.connect().await;
        let g1 = events_applied(&client, &stack.deployment.generation(1)).await.unwrap();
        let g2 = events_applied(&client, &stack.deployment.generation(2)).await.unwrap();
        g2 - g1
    });
    assert!(later >= 0);

    // Quiet now, the serving generation's dashboard figures refreshed (as an idle projector does; this
    // one is told never to): a second rebuild copies them instead of computing them, and they are the
    // figures the new generation's own read models give.
    let serving = stack.deployment.generation(2);
    stack.runtime.block_on(async {
        let mut client = stack.connect().await;
        hoctap_store::refresh_dashboard(&mut client, &serving).await.unwrap().unwrap();
        assert!(hoctap_store::current_figures(&client, &serving).await.unwrap().is_some());
    });
    let said = stack.rebuild();
    assert!(said.contains(&format!("dashboard figures copied from {serving}")), "{said}");
    let third = stack.deployment.generation(3);
    assert_eq!(stack.active(), third);
    stack.runtime.block_on(async {
        let mut client = stack.connect().await;
        let figures = |g: &Schema| {
            format!(
                "SELECT q::text FROM \"{g}\".dashboard_unit_figures q
                 UNION ALL SELECT q::text FROM \"{g}\".dashboard_targets q ORDER BY 1"
            )
        };
        let rows = |r: Vec<tokio_postgres::Row>| r.iter().map(|r| r.get::<_, String>(0)).collect::<Vec<_>>();
        let copied = rows(client.query(&figures(&third), &[]).await.unwrap());
        assert!(copied.len() > 100, "{} rows", copied.len());
        hoctap_store::refresh_dashboard(&mut client, &third).await.unwrap().unwrap();
        assert_eq!(copied, rows(client.query(&figures(&third), &[]).await.unwrap()));
    });
}

#[test]
fn a_record_postgresql_refuses_is_dead_lettered_and_stalls_no_partition() {
    let mut stack = Stack::start();
    let batches = city(100, 9, 500);
    for b in &batches {
        stack.post(NATIONAL, b);
    }
    let mut projector = stack.projector("projector", &[]);
    stack.wait_caught_up(&mut [&mut projector]);

    // Around the gateway, as a misbehaving producer would: a registration whose subject holds a NUL
    // character, which PostgreSQL stores in no text or JSON; behind it a valid one in the same
    // partition and one in another, all three in one batch of the projector.
    let template = batches
        .iter()
        .flatten()
        .find(|e| e["type"] == "vn.hoctap.registration.submitted.v1" && e["data"]["subject_kind"] == "citizen")
        .expect("a generated registration")
        .clone();
    let recorded = |subject: &str, n: u128| {
        let mut e = copy(&template, subject, None, n);
        e["recordedtime"] = json!(format_instant(now_micros()));
        e
    };
    let nul = recorded("cit-\u{0}x", 100);
    let records = [(1, nul.clone()), (1, recorded("cd-nul-next", 101)), (2, recorded("cd-nul-other", 102))];
    produce_raw(&stack, &records);
    stack.wait_caught_up(&mut [&mut projector]);

    // The projector's lag returns to 0 on every partition it reads, with the record refused.
    let metrics = projector.metrics.clone().expect("a projector's metrics");
    let started = Instant::now();
    loop {
        let text = stack.http.get(&metrics).send().and_then(|r| r.text()).unwrap_or_default();
        let lags: Vec<i64> = text
            .lines()
            .filter(|l| l.starts_with("hoctap_projector_lag{"))
            .filter_map(|l| l.rsplit(' ').next()?.parse().ok())
            .collect();
        if lags.len() > 1
            && lags.iter().all(|&lag| lag == 0)
            && text.contains("hoctap_projector_records_refused_total 1")
        {
            break;
        }
        projector.assert_running();
        assert!(started.elapsed() < Duration::from_secs(60), "the lag did not return to 0:\n{text}");
        std::thread::sleep(Duration::from_millis(500));
    }

    let nul_id = nul["id"].as_str().unwrap().to_owned();
    let letters: Vec<DeadLetter> =
        read_all(&stack.broker.brokers(), &Topics::default().dead_letter, Duration::from_secs(20))
            .unwrap()
            .iter()
            .map(|r| DeadLetter::from_json(&r.payload).expect("a dead letter"))
            .collect();
    let letter =
        letters.iter().find(|l| l.reason.event_id.as_deref() == Some(&nul_id)).expect("the NUL record's dead letter");
    assert_eq!(letter.reason.rule, "store", "{letter:?}");
    assert_eq!(letter.source.as_deref(), Some("projector"));
    let detail = &letter.reason.detail;
    assert!(detail.contains("SQLSTATE 22") && (detail.contains("0x00") || detail.contains("\\u0000")), "{detail}");
    assert!(letter.event.contains("cit-"), "{letter:?}");

    // Its neighbours are counted, and nothing else is missing.
    let active = stack.active();
    let mut stored: Vec<String> = stack.runtime.block_on(async {
        let client = stack.connect().await;
        let sql = format!("SELECT subject FROM {active}.subjects WHERE subject LIKE 'cd-nul-%'");
        client.query(&sql, &[]).await.unwrap().iter().map(|r| r.get(0)).collect()
    });
    stored.sort();
    assert_eq!(stored, ["cd-nul-next", "cd-nul-other"]);
    let (_api, url) = stack.api();
    let refused = HashSet::from([nul_id.parse().unwrap()]);
    stack.assert_reviews_equal_engine_without(&url, &[None], &refused);
}

/// Produces raw records to partitions of the events topic, around the gateway (keyed by their
/// subject, if any).
fn produce_raw(stack: &Stack, records: &[(i32, Value)]) {
    use rdkafka::producer::{FutureProducer, FutureRecord};
    stack.runtime.block_on(async {
        let producer: FutureProducer = rdkafka::ClientConfig::new()
            .set("bootstrap.servers", stack.broker.brokers())
            .set("batch.num.messages", "1")
            .create()
            .expect("a producer");
        let topic = Topics::default().events;
        for (partition, value) in records {
            let (key, payload) = (value["subject"].as_str().unwrap_or_default(), value.to_string());
            let record = FutureRecord::to(&topic).partition(*partition).key(key).payload(&payload);
            producer.send(record, Duration::from_secs(10)).await.expect("producing a raw record");
        }
    });
}

#[test]
fn postgresql_restarted_while_events_stream_loses_and_doubles_nothing() {
    // A server of the test's own: the machine's is shared with the tests running beside this one.
    let postgres = PgCluster::start();
    let mut stack = Stack::start_on(&postgres.url());
    let batches = city(80, 61, 150);
    let (head, rest) = batches.split_at(2);
    for b in head {
        stack.post(NATIONAL, b);
    }
    let mut projector = stack.projector("projector", &[]);
    let (_api, url) = stack.api();
    let streamer = stack.stream(rest, Duration::from_millis(50));
    for _ in 0..2 {
        std::thread::sleep(Duration::from_millis(1500));
        assert!(!streamer.is_finished(), "the events were all sent before PostgreSQL restarted: send more");
        postgres.restart(Duration::from_secs(2));
    }
    streamer.join().expect("the streamer");
    stack.wait_caught_up(&mut [&mut projector]);
    let log = projector.log();
    assert!(log.contains("retrying"), "the projector never saw PostgreSQL go:\n{log}");
    stack.assert_reviews_equal_engine(&url, &[None]);
}
