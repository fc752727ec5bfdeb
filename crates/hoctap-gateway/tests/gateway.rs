//! The gateway over HTTP against a real broker (tansu, started per test) and PostgreSQL (database
//! `test`, a fresh deployment per test): authentication, provinces, citizen-IDs, content types, batches
//! validated as a whole, what reaches the events and dead-letter topics, duplicates, a restart, Kafka
//! going away, and two gateways on one broker.

use hoctap_domain::Event;
use hoctap_gateway::{GatewayConfig, Holders, Tokens, hash_token};
use hoctap_kafka::test_broker::TestBroker;
use hoctap_kafka::{DeadLetter, Record, Topics, read_all};
use hoctap_store::{Deployment, GatewayState};
use reqwest::StatusCode;
use serde_json::{Value, json};
use std::collections::BTreeMap;
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;

const HN: &str = "token-hanoi";
const HCM: &str = "token-hcm";
const GSO: &str = "token-gso";
const SINGLE: &str = "application/cloudevents+json";
const BATCH: &str = "application/cloudevents-batch+json";
const CCCD: &str = "001203004567";
/// The test suite's PostgreSQL (it must run: a test fails, never skips, when it cannot connect).
const PG: &str = "postgresql://postgres@127.0.0.1:5432/test";

/// A deployment of its own for one test; its gateway schema is dropped when the test's [`Scratch`]
/// goes.
fn fresh_deployment() -> Scratch {
    let nanos = std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_nanos();
    static N: std::sync::atomic::AtomicU32 = std::sync::atomic::AtomicU32::new(0);
    let n = N.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
    let name = format!("gw_{:x}_{}_{n}", nanos & 0xffff_ffff_ffff, std::process::id());
    Scratch(Deployment::new(&name).unwrap())
}

/// A test's deployment; dropping it drops the gateway's schema.
struct Scratch(Deployment);

impl Drop for Scratch {
    fn drop(&mut self) {
        let schema = self.0.gateway_schema();
        let _ = std::thread::spawn(move || {
            let runtime = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            runtime.block_on(GatewayState::drop_schema(PG, &schema))
        })
        .join();
    }
}

struct App {
    deployment: Deployment,
    broker: Option<TestBroker>,
    brokers: String,
    addr: SocketAddr,
    client: reqwest::Client,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<Result<(), hoctap_gateway::GatewayError>>>,
}

fn tokens() -> Tokens {
    let text = format!(
        "[[source]]\nname = \"khuyenhoc-hanoi\"\nprovince = \"01\"\ntoken_sha256 = \"{}\"\n\n\
         [[source]]\nname = \"khuyenhoc-hcm\"\nprovince = \"79\"\ntoken_sha256 = \"{}\"\n\n\
         [[source]]\nname = \"gso\"\nprovince = \"*\"\ntoken_sha256 = \"{}\"\n",
        hash_token(HN),
        hash_token(HCM),
        hash_token(GSO)
    );
    Tokens::from_toml(&text, Holders::Sources).unwrap()
}

fn config(brokers: &str, deployment: &Deployment) -> GatewayConfig {
    let mut config = GatewayConfig::new(brokers, tokens(), PG, deployment.clone());
    config.event_partitions = 3;
    // Tests against tansu produce every record as its own batch (shared/broker.md, gap 1); a dead
    // broker fails a request within seconds.
    config.producer = BTreeMap::from([
        ("batch.num.messages".to_owned(), "1".to_owned()),
        ("message.timeout.ms".to_owned(), "4000".to_owned()),
    ]);
    config.read_idle = Duration::from_secs(15);
    config
}

/// A fresh broker and a gateway on port 0, with the geography of Hà Nội (01) and Hồ Chí Minh City (79)
/// published through it by the national source.
async fn spawn_app() -> (App, Scratch) {
    spawn_app_with(|_| {}).await
}

/// [`spawn_app`] with some settings changed (limits).
async fn spawn_app_with(tweak: impl FnOnce(&mut GatewayConfig)) -> (App, Scratch) {
    let broker = TestBroker::start();
    let brokers = broker.brokers();
    let scratch = fresh_deployment();
    let mut config = config(&brokers, &scratch.0);
    tweak(&mut config);
    let mut app = serve_config(Some(broker), &brokers, config).await;
    let geography = [
        unit(1, "01", "province", None),
        unit(2, "001", "district", Some("01")),
        unit(3, "00001", "commune", Some("001")),
        unit(4, "00004", "commune", Some("001")),
        unit(5, "79", "province", None),
        unit(6, "760", "district", Some("79")),
        unit(7, "26734", "commune", Some("760")),
    ];
    let (status, body) = app.post(GSO, BATCH, &json!(geography)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(body["accepted"].as_array().unwrap().len(), 7, "{body}");
    app.brokers = brokers;
    (app, scratch)
}

async fn serve(broker: Option<TestBroker>, brokers: &str, deployment: &Deployment) -> App {
    serve_config(broker, brokers, config(brokers, deployment)).await
}

async fn serve_config(broker: Option<TestBroker>, brokers: &str, config: GatewayConfig) -> App {
    serve_until(broker, brokers, config, StatusCode::OK).await
}

/// Starts a gateway and waits until `/healthz` answers `ready` (200 for the writer, 503 for a standby).
async fn serve_until(broker: Option<TestBroker>, brokers: &str, config: GatewayConfig, ready: StatusCode) -> App {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let deployment = config.deployment.clone();
    let server = tokio::spawn(hoctap_gateway::serve(config, listener, async {
        let _ = stopped.await;
    }));
    let client = reqwest::Client::new();
    let app =
        App { deployment, broker, brokers: brokers.to_owned(), addr, client, stop: Some(stop), server: Some(server) };
    for _ in 0..600 {
        if let Ok(r) = app.client.get(format!("http://{addr}/healthz")).send().await
            && r.status() == ready
        {
            return app;
        }
        assert!(!app.server.as_ref().unwrap().is_finished(), "the gateway stopped while starting");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gateway did not answer /healthz");
}

impl App {
    async fn post_raw(
        &self,
        token: Option<&str>,
        content_type: &str,
        body: String,
    ) -> (StatusCode, Value, reqwest::header::HeaderMap) {
        let mut request =
            self.client.post(format!("http://{}/v1/events", self.addr)).header("content-type", content_type).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let response = request.send().await.unwrap();
        let status = response.status();
        let headers = response.headers().clone();
        let text = response.text().await.unwrap();
        (status, serde_json::from_str(&text).unwrap_or(Value::String(text)), headers)
    }

    async fn post(&self, token: &str, content_type: &str, body: &Value) -> (StatusCode, Value) {
        let (status, body, _) = self.post_raw(Some(token), content_type, body.to_string()).await;
        (status, body)
    }

    async fn read(&self, topic: &str) -> Vec<Record> {
        let (brokers, topic) = (self.brokers.clone(), topic.to_owned());
        tokio::task::spawn_blocking(move || read_all(&brokers, &topic, Duration::from_secs(15))).await.unwrap().unwrap()
    }

    async fn events(&self) -> Vec<Event> {
        self.read(&Topics::default().events)
            .await
            .iter()
            .map(|r| Event::from_json_recorded(&r.payload).expect("the events topic holds stamped events"))
            .collect()
    }

    async fn dead_letters(&self) -> Vec<DeadLetter> {
        self.read(&Topics::default().dead_letter)
            .await
            .iter()
            .map(|r| DeadLetter::from_json(&r.payload).unwrap())
            .collect()
    }

    async fn stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            self.server.take().unwrap().await.unwrap().unwrap();
        }
    }
}

fn id(n: u32) -> String {
    format!("00000000-0000-4000-8000-{n:012}")
}

fn envelope(n: u32, ty: &str, subject: &str, data: Value) -> Value {
    json!({"specversion": "1.0", "id": id(n), "source": "test", "type": format!("vn.hoctap.{ty}.v1"),
           "time": "2025-03-01T09:00:00+07:00", "subject": subject, "data": data})
}

fn unit(n: u32, code: &str, level: &str, parent: Option<&str>) -> Value {
    let mut data = json!({"code": code, "level": level, "name": format!("Đơn vị {code}")});
    if let Some(p) = parent {
        data["parent"] = p.into();
    }
    let mut e = envelope(n, "admin_unit.established", code, data);
    e["time"] = "2020-01-01T00:00:00+07:00".into();
    e
}

fn registration(n: u32, subject: &str, commune: &str) -> Value {
    envelope(
        n,
        "registration.submitted",
        subject,
        json!({"subject_kind": "citizen", "commune": commune, "title": "learning_citizen", "cycle_year": 2025}),
    )
}

fn declaration(n: u32, subject: &str, total: u32) -> Value {
    envelope(
        n,
        "declaration.submitted",
        subject,
        json!({"title": "learning_citizen", "cycle_year": 2025, "criteria_set": "CDHT-324/QD-KHVN-2023",
               "scores": [{"criterion": "c1", "score": total}], "total": total}),
    )
}

fn ids(body: &Value, list: &str) -> Vec<String> {
    body[list]
        .as_array()
        .unwrap_or_else(|| panic!("no {list} in {body}"))
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect()
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn no_token_or_a_wrong_one_is_401() {
    let (app, _scratch) = spawn_app().await;
    let batch = json!([registration(10, "cit-a", "00001")]).to_string();
    let (status, body, headers) = app.post_raw(None, BATCH, batch.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED, "{body}");
    assert!(headers["www-authenticate"].to_str().unwrap().starts_with("Bearer"));
    let (status, _, headers) = app.post_raw(Some("token-guessed"), BATCH, batch.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    assert!(headers["www-authenticate"].to_str().unwrap().contains("invalid_token"));
    // The hash itself is not a token.
    let (status, _, _) = app.post_raw(Some(&hash_token(HN)), BATCH, batch.clone()).await;
    assert_eq!(status, StatusCode::UNAUTHORIZED);
    let basic = app
        .client
        .post(format!("http://{}/v1/events", app.addr))
        .header("content-type", BATCH)
        .header("authorization", format!("Basic {HN}"))
        .body(batch)
        .send()
        .await
        .unwrap();
    assert_eq!(basic.status(), StatusCode::UNAUTHORIZED);
    assert!(app.events().await.is_empty(), "nothing was published");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_content_type_is_415() {
    let (app, _scratch) = spawn_app().await;
    for content_type in ["application/json", "text/plain", "application/cloudevents+xml"] {
        let (status, body, _) =
            app.post_raw(Some(HN), content_type, registration(10, "cit-a", "00001").to_string()).await;
        assert_eq!(status, StatusCode::UNSUPPORTED_MEDIA_TYPE, "{content_type}: {body}");
    }
    // Parameters and case do not matter.
    let (status, body, _) = app
        .post_raw(
            Some(HN),
            "Application/CloudEvents+JSON; charset=utf-8",
            registration(10, "cit-a", "00001").to_string(),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_of_another_province_is_403_and_the_rest_of_the_batch_is_accepted() {
    let (app, _scratch) = spawn_app().await;
    let batch = json!([
        registration(10, "cit-a", "00001"),
        registration(11, "cit-b", "26734"), // Hồ Chí Minh City
        registration(12, "cit-c", "00004"),
        declaration(13, "cit-a", 90),
    ]);
    let (status, body) = app.post(HN, BATCH, &batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(ids(&body, "accepted"), [id(10), id(12), id(13)]);
    let refused = &body["refused"][0];
    assert_eq!(body["refused"].as_array().unwrap().len(), 1, "{body}");
    assert_eq!(
        (refused["id"].as_str(), refused["status"].as_u64(), refused["rule"].as_str(), refused["field"].as_str()),
        (Some(id(11).as_str()), Some(403), Some("province"), Some("data.commune"))
    );
    assert_eq!(refused["index"], 1);

    // A single event of another province: the answer's status is the event's.
    let (status, body) = app.post(HN, SINGLE, &registration(14, "cit-d", "26734")).await;
    assert_eq!(status, StatusCode::FORBIDDEN, "{body}");
    // An event that names no unit belongs to its subject's province: cit-b is not placed (refused
    // above); place it with the right source, then Hà Nội may not declare for it.
    let (status, _) = app.post(HCM, SINGLE, &registration(15, "cit-b", "26734")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    let (status, body) = app.post(HN, SINGLE, &declaration(16, "cit-b", 90)).await;
    assert_eq!((status, body["refused"][0]["field"].as_str()), (StatusCode::FORBIDDEN, Some("subject")), "{body}");
    // Reference data is a province's too: a baseline for 79 from Hà Nội's source.
    let baseline = envelope(17, "baseline.recorded", "79", json!({"unit": "79", "metric": "adults", "value": 1000}));
    let (status, _) = app.post(HN, SINGLE, &baseline).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let mut published: Vec<String> = app.events().await.iter().map(|e| e.id.to_string()).collect();
    published.sort();
    assert_eq!(published, [id(10), id(12), id(13), id(15)]);
    let dead: Vec<(String, String)> =
        app.dead_letters().await.into_iter().map(|d| (d.reason.event_id.unwrap(), d.reason.rule)).collect();
    assert_eq!(
        dead,
        [
            (id(11), "province".into()),
            (id(14), "province".into()),
            (id(16), "province".into()),
            (id(17), "province".into())
        ]
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_raw_citizen_id_anywhere_refuses_the_whole_request_422_without_repeating_it() {
    let (app, _scratch) = spawn_app().await;
    let mut in_data = registration(21, "cit-b", "00001");
    in_data["data"]["commune"] = format!("00001 {CCCD}").into();
    let mut in_extension = registration(22, "cit-c", "00001");
    in_extension["note"] = format!("CCCD: {CCCD}").into();
    let mut in_key = registration(23, "cit-d", "00001");
    in_key["data"][CCCD] = 1.into();
    let mut in_source = registration(24, "cit-e", "00001");
    in_source["source"] = "/hs/@".into();
    // Written with JSON escapes, as in the report ("/hs/\u0030\u0030\u0031203004567").
    let escaped = CCCD[..3].chars().map(|c| format!("\\u003{c}")).collect::<String>() + &CCCD[3..];
    for (n, bad) in
        [(20, registration(20, CCCD, "00001")), (21, in_data), (22, in_extension), (23, in_key), (24, in_source)]
    {
        let batch = format!(
            "[{}, {}]",
            registration(10, "cit-a", "00001"),
            bad.to_string().replace("/hs/@", &format!("/hs/{escaped}"))
        );
        let (status, body, _) = app.post_raw(Some(HN), BATCH, batch).await;
        assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
        assert!(!body.to_string().contains(CCCD), "the number is never echoed: {body}");
        assert_eq!(body["accepted"], json!([]));
        assert_eq!(
            (body["refused"][0]["rule"].as_str(), body["refused"][0]["id"].as_str()),
            (Some("citizen_id"), Some(id(n).as_str()))
        );
    }
    let (status, body, _) = app.post_raw(Some(HN), SINGLE, format!("{{\"subject\": \"{CCCD}\", broken")).await;
    assert_eq!(status, StatusCode::UNPROCESSABLE_ENTITY, "{body}");
    // Ids are not personal data, even when a group of their digits looks like a citizen-ID: the
    // event's own id and the id a retraction names.
    let retraction =
        envelope(1_203_004_567, "event.retracted", "cit-a", json!({"event_id": id(1_203_004_568), "reason": "sai"}));
    assert!(retraction.to_string().contains(CCCD));
    let (status, body) = app.post(HN, SINGLE, &retraction).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    // Nothing of the refused requests reached any topic.
    let published: Vec<String> = app.events().await.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(published, [id(1_203_004_567)]);
    assert!(app.dead_letters().await.is_empty());
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_with_an_invalid_event_publishes_the_valid_ones_and_dead_letters_the_other() {
    let (app, _scratch) = spawn_app().await;
    let mut bad_year = registration(11, "cit-b", "00001");
    bad_year["data"]["cycle_year"] = 2019.into();
    let batch = json!([
        registration(10, "cit-a", "00001"),
        bad_year.clone(),
        // Names a commune that this batch establishes further down: a batch is validated as a whole.
        registration(12, "cit-c", "00007"),
        declaration(13, "cit-a", 85),
        unit(14, "00007", "commune", Some("001")),
        "not an event",
    ]);
    let (status, body) = app.post(HN, BATCH, &batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(ids(&body, "accepted"), [id(10), id(12), id(13), id(14)]);
    let refused = body["refused"].as_array().unwrap();
    assert_eq!(refused.len(), 2, "{body}");
    assert_eq!(
        (
            refused[0]["id"].as_str(),
            refused[0]["status"].as_u64(),
            refused[0]["rule"].as_str(),
            refused[0]["field"].as_str()
        ),
        (Some(id(11).as_str()), Some(422), Some("cycle_year"), Some("data.cycle_year"))
    );
    assert_eq!((refused[1]["index"].as_u64(), refused[1]["id"].as_str()), (Some(5), None));

    // The valid subject events are in the events topic, stamped, in the order they were accepted; the
    // new commune went to the reference topic.
    let events = app.events().await;
    let mut got: Vec<(String, i64)> = events.iter().map(|e| (e.id.to_string(), e.recordedtime.unwrap())).collect();
    got.sort_by_key(|(_, recorded)| *recorded);
    assert_eq!(got.iter().map(|(i, _)| i.clone()).collect::<Vec<_>>(), [id(10), id(12), id(13)]);
    assert!(got.windows(2).all(|w| w[0].1 < w[1].1), "recordedtime strictly increasing");
    let reference: Vec<Event> = app
        .read(&Topics::default().reference)
        .await
        .iter()
        .map(|r| Event::from_json_recorded(&r.payload).unwrap())
        .collect();
    assert_eq!(reference.last().unwrap().id.to_string(), id(14));
    assert!(reference.iter().all(|e| e.recordedtime.is_some()));

    // The invalid one reached the dead-letter topic as it was sent, with its reason and its source.
    let dead = app.dead_letters().await;
    assert_eq!(dead.len(), 2);
    assert_eq!(serde_json::from_str::<Value>(&dead[0].event).unwrap(), bad_year);
    assert_eq!((dead[0].reason.rule.as_str(), dead[0].reason.field.as_str()), ("cycle_year", "data.cycle_year"));
    assert_eq!(dead[0].source.as_deref(), Some("khuyenhoc-hanoi"));
    assert_eq!(dead[1].event, "\"not an event\"");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn duplicates_are_reported_as_such_also_after_a_restart() {
    let (mut app, _scratch) = spawn_app().await;
    let batch = json!([registration(10, "cit-a", "00001"), declaration(11, "cit-a", 90)]);
    let (status, body) = app.post(HN, BATCH, &batch).await;
    assert_eq!((status, ids(&body, "accepted")), (StatusCode::ACCEPTED, vec![id(10), id(11)]));

    // The same events again, and one id twice in one batch: duplicates, published once.
    let again = json!([
        registration(10, "cit-a", "00001"),
        declaration(11, "cit-a", 90),
        declaration(12, "cit-a", 95),
        declaration(12, "cit-a", 95)
    ]);
    let (status, body) = app.post(HN, BATCH, &again).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(ids(&body, "accepted"), [id(12)]);
    assert_eq!(ids(&body, "duplicates"), [id(10), id(11), id(12)]);
    let (status, body) = app.post(HN, SINGLE, &registration(10, "cit-a", "00001")).await;
    assert_eq!((status, ids(&body, "duplicates")), (StatusCode::ACCEPTED, vec![id(10)]));
    // The same id with other content is bad input.
    let (status, body) = app.post(HN, SINGLE, &declaration(11, "cit-a", 40)).await;
    assert_eq!(
        (status, body["refused"][0]["rule"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("duplicate_id")),
        "{body}"
    );

    // A new gateway on the same log rebuilds what it knows: the geography and the accepted ids.
    app.stop().await;
    let broker = app.broker.take();
    let brokers = app.brokers.clone();
    let app2 = serve(broker, &brokers, &app.deployment).await;
    let (status, body) =
        app2.post(HN, BATCH, &json!([registration(10, "cit-a", "00001"), registration(13, "cit-z", "00004")])).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!((ids(&body, "duplicates"), ids(&body, "accepted")), (vec![id(10)], vec![id(13)]));
    // ... and the subjects' provinces.
    let (status, _) = app2.post(HCM, SINGLE, &declaration(14, "cit-a", 90)).await;
    assert_eq!(status, StatusCode::FORBIDDEN);

    let mut published: Vec<String> = app2.events().await.iter().map(|e| e.id.to_string()).collect();
    published.sort();
    assert_eq!(published, [id(10), id(11), id(12), id(13)], "each event once in the log");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_kafka_is_gone_the_answer_is_503_and_nothing_is_claimed() {
    let (mut app, _scratch) = spawn_app().await;
    drop(app.broker.take());
    let (status, body, headers) =
        app.post_raw(Some(HN), BATCH, json!([registration(10, "cit-a", "00001")]).to_string()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body.get("accepted").is_none(), "{body}");
    assert!(headers.contains_key("retry-after"));
    // The health check says so, and why.
    let health = app.client.get(format!("http://{}/healthz", app.addr)).send().await.unwrap();
    assert_eq!(health.status(), StatusCode::SERVICE_UNAVAILABLE);
    assert!(health.headers().contains_key("retry-after"));
    assert!(health.text().await.unwrap().contains("Kafka is unreachable"));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn another_provinces_subject_cannot_be_retracted_moved_or_taken_over() {
    let (app, _scratch) = spawn_app().await;
    // Hồ Chí Minh City's citizen.
    let (status, body) = app.post(HCM, SINGLE, &registration(10, "cit-h", "26734")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let retract = |n: u32, subject: &str| {
        envelope(n, "event.retracted", subject, json!({"event_id": id(10), "reason": "nhập nhầm"}))
    };
    let batch = json!([
        retract(20, "zzz"),
        retract(21, "cit-h"),
        envelope(22, "subject.relocated", "cit-h", json!({"commune": "00001"})),
        registration(23, "cit-h", "00001"),
        envelope(24, "skill.certified", "cit-h", json!({"commune": "00004", "level": "basic"})),
        registration(25, "cit-ok", "00001"),
    ]);
    let (status, body) = app.post(HN, BATCH, &batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(ids(&body, "accepted"), [id(25)], "{body}");
    let refused: Vec<(u64, &str, &str)> = body["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["status"].as_u64().unwrap(), r["field"].as_str().unwrap(), r["rule"].as_str().unwrap()))
        .collect();
    assert_eq!(
        refused,
        [
            (422, "subject", "subject_mismatch"),
            (403, "subject", "province"),
            (403, "subject", "province"),
            (403, "subject", "province"),
            (403, "subject", "province"),
        ]
    );

    // The national source moves the citizen to Hà Nội; from then on Hà Nội may write about it (and
    // Hồ Chí Minh City still may: it lay there).
    let (status, body) =
        app.post(GSO, SINGLE, &envelope(30, "subject.relocated", "cit-h", json!({"commune": "00001"}))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let (status, body) = app.post(HN, SINGLE, &declaration(31, "cit-h", 90)).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let mut published: Vec<String> = app.events().await.iter().map(|e| e.id.to_string()).collect();
    published.sort();
    assert_eq!(published, [id(10), id(25), id(30), id(31)]);
    let dead: Vec<String> = app.dead_letters().await.into_iter().map(|d| d.reason.event_id.unwrap()).collect();
    assert_eq!(dead, [id(20), id(21), id(22), id(23), id(24)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_batch_over_the_event_limit_is_413_whole_and_costs_nothing() {
    let (app, _scratch) = spawn_app_with(|c| c.limits.batch_events = 100).await;
    // The batch of the report: 200 000 non-events.
    let ones = format!("[{}1]", "1,".repeat(199_999));
    let started = std::time::Instant::now();
    let (status, body, _) = app.post_raw(Some(HN), BATCH, ones).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("at most 100 events"), "{body}");
    assert!(body.get("refused").is_none(), "no list of 200 000 refusals: {body}");
    assert!(started.elapsed() < Duration::from_secs(5));
    let over: Vec<Value> = (0..101).map(|i| registration(100 + i, &format!("cit-{i}"), "00001")).collect();
    let (status, _) = app.post(HN, BATCH, &json!(over)).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    // At the limit: accepted.
    let (status, body) = app.post(HN, BATCH, &json!(over[..100])).await;
    assert_eq!((status, ids(&body, "accepted").len()), (StatusCode::ACCEPTED, 100), "{body}");
    assert!(app.dead_letters().await.is_empty(), "nothing of the refused batches was dead-lettered");
    assert_eq!(app.events().await.len(), 100);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_event_over_the_brokers_message_size_is_413_alone_and_the_batch_goes_on() {
    let (app, _scratch) = spawn_app().await;
    let retraction =
        |n: u32, reason: String| envelope(n, "event.retracted", "cit-a", json!({"event_id": id(10), "reason": reason}));
    // 2 MB: more than the broker's 1 MB message limit.
    let big = retraction(11, "x".repeat(2 << 20));
    let batch = json!([registration(10, "cit-a", "00001"), big.clone(), declaration(12, "cit-a", 90)]);
    let (status, body) = app.post(HN, BATCH, &batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(ids(&body, "accepted"), [id(10), id(12)]);
    let refused = &body["refused"][0];
    assert_eq!(
        (refused["index"].as_u64(), refused["id"].as_str(), refused["status"].as_u64(), refused["rule"].as_str()),
        (Some(1), Some(id(11).as_str()), Some(413), Some("size")),
        "{body}"
    );
    assert!(refused["detail"].as_str().unwrap().contains(&(512 << 10).to_string()), "names the limit: {body}");
    // Alone, the same answer as the event's status; just under the limit, accepted.
    let (status, _) = app.post(HN, SINGLE, &big).await;
    assert_eq!(status, StatusCode::PAYLOAD_TOO_LARGE);
    let (status, body) = app.post(HN, SINGLE, &retraction(13, "y".repeat(500 << 10))).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");

    let mut published: Vec<String> = app.events().await.iter().map(|e| e.id.to_string()).collect();
    published.sort();
    assert_eq!(published, [id(10), id(12), id(13)]);
    let dead = app.dead_letters().await;
    assert_eq!(dead.len(), 2, "one dead letter per refusal");
    assert!(dead.iter().all(|d| d.reason.rule == "size" && d.event.len() <= 4096), "the beginning only");
    assert_eq!(dead[0].reason.event_id.as_deref(), Some(id(11).as_str()));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_control_character_in_any_string_is_422_and_the_batch_goes_on() {
    let (app, _scratch) = spawn_app().await;
    let nul = registration(11, "cit-\u{0}x", "00001");
    assert!(nul.to_string().contains(r"cit-\u0000x"));
    let mut in_extension = registration(12, "cit-b", "00001");
    in_extension["traceparent"] = "00-\u{1b}[2J".into();
    let batch = json!([registration(10, "cit-a", "00001"), nul, in_extension]);
    let (status, body) = app.post(HN, BATCH, &batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(ids(&body, "accepted"), [id(10)]);
    let refused: Vec<(&str, &str, u64)> = body["refused"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| (r["field"].as_str().unwrap(), r["rule"].as_str().unwrap(), r["status"].as_u64().unwrap()))
        .collect();
    assert_eq!(refused, [("subject", "control_character", 422), ("traceparent", "control_character", 422)]);
    let published: Vec<String> = app.events().await.iter().map(|e| e.id.to_string()).collect();
    assert_eq!(published, [id(10)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_source_over_its_rate_is_429_with_retry_after_and_others_go_on() {
    let (app, _scratch) = spawn_app_with(|c| {
        c.limits.source_requests_per_second = 1;
        c.limits.source_burst = 2;
    })
    .await;
    for n in 0..2 {
        let (status, body) = app.post(HN, SINGLE, &registration(10 + n, "cit-a", "00001")).await;
        assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    }
    let (status, body, headers) = app.post_raw(Some(HN), SINGLE, registration(12, "cit-a", "00001").to_string()).await;
    assert_eq!(status, StatusCode::TOO_MANY_REQUESTS, "{body}");
    assert!(body["error"].as_str().unwrap().contains("khuyenhoc-hanoi"), "{body}");
    let wait: u64 = headers["retry-after"].to_str().unwrap().parse().unwrap();
    assert!((1..=2).contains(&wait), "Retry-After {wait}");
    // Another source is not held back by Hà Nội's.
    let (status, _) = app.post(HCM, SINGLE, &registration(20, "cit-h", "26734")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    tokio::time::sleep(Duration::from_secs(wait)).await;
    let (status, body) = app.post(HN, SINGLE, &registration(12, "cit-a", "00001")).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    let mut published: Vec<String> = app.events().await.iter().map(|e| e.id.to_string()).collect();
    published.sort();
    assert_eq!(published, [id(10), id(11), id(12), id(20)]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn requests_over_the_concurrency_bound_or_the_timeout_are_503_with_retry_after() {
    let (mut app, _scratch) = spawn_app_with(|c| {
        c.limits.concurrent_requests = 1;
        c.limits.request_timeout = Duration::from_secs(2);
    })
    .await;
    // With the broker gone, a request waits for Kafka until the request timeout (the publish timeout
    // of these tests is 4 s).
    drop(app.broker.take());
    let slow = {
        let (client, addr) = (app.client.clone(), app.addr);
        tokio::spawn(async move {
            let started = std::time::Instant::now();
            let response = client
                .post(format!("http://{addr}/v1/events"))
                .header("content-type", BATCH)
                .bearer_auth(HN)
                .body(json!([registration(10, "cit-a", "00001")]).to_string())
                .send()
                .await
                .unwrap();
            let retry = response.headers().contains_key("retry-after");
            (response.status(), retry, response.text().await.unwrap(), started.elapsed())
        })
    };
    tokio::time::sleep(Duration::from_millis(500)).await;
    let started = std::time::Instant::now();
    let (status, body, headers) =
        app.post_raw(Some(HN), BATCH, json!([registration(11, "cit-b", "00001")]).to_string()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(body["error"].as_str().unwrap().contains("too many requests"), "{body}");
    assert!(headers.contains_key("retry-after"));
    assert!(started.elapsed() < Duration::from_secs(1), "shed at once, not queued");
    // /healthz is outside the bound: answered (Kafka is gone), not shed.
    let health = app.client.get(format!("http://{}/healthz", app.addr)).send().await.unwrap();
    assert!(health.text().await.unwrap().contains("Kafka is unreachable"), "/healthz is outside the bound");

    let (status, retry, text, took) = slow.await.unwrap();
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{text}");
    assert!(retry && text.contains("timeout"), "{text}");
    assert!(took < Duration::from_millis(3500), "answered at the request timeout: {took:?}");
    app.stop().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_that_will_not_count_as_they_stand_are_accepted_with_warnings() {
    let (app, _scratch) = spawn_app().await;
    let mut far = registration(10, "cit-far", "00001");
    far["time"] = "2205-03-01T09:00:00+07:00".into();
    let batch = json!([
        far,
        declaration(11, "cit-nowhere", 90),
        envelope(12, "event.retracted", "cit-far", json!({"event_id": id(9_999), "reason": "nhầm"})),
        registration(13, "cit-a", "00001"),
        declaration(14, "cit-a", 90),
        envelope(15, "event.retracted", "cit-a", json!({"event_id": id(14), "reason": "nhầm"})),
    ]);
    let (status, body) = app.post(HN, BATCH, &batch).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!(ids(&body, "accepted").len(), 6, "warnings do not refuse: {body}");
    let warnings: Vec<(u64, &str, &str, &str)> = body["warnings"]
        .as_array()
        .unwrap()
        .iter()
        .map(|w| {
            (
                w["index"].as_u64().unwrap(),
                w["id"].as_str().unwrap(),
                w["field"].as_str().unwrap(),
                w["warning"].as_str().unwrap(),
            )
        })
        .collect();
    assert_eq!(
        warnings,
        [
            (0, id(10).as_str(), "time", "after_campaign"),
            (1, id(11).as_str(), "subject", "not_placed"),
            (2, id(12).as_str(), "data.event_id", "retracts_unknown"),
        ]
    );
    let (status, body) = app.post(HN, SINGLE, &declaration(16, "cit-a", 95)).await;
    assert_eq!((status, body["warnings"].clone()), (StatusCode::ACCEPTED, json!([])), "{body}");
}

/// Peak resident memory of this process (the gateway and its clients), in MiB.
fn peak_rss_mib() -> u64 {
    let status = std::fs::read_to_string("/proc/self/status").unwrap();
    let line = status.lines().find(|l| l.starts_with("VmHWM:")).expect("VmHWM in /proc/self/status");
    line.split_whitespace().nth(1).unwrap().parse::<u64>().unwrap() / 1024
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_flood_of_large_requests_while_kafka_is_down_leaves_the_gateway_up_and_bounded() {
    let (mut app, _scratch) = spawn_app().await;
    drop(app.broker.take());
    // One batch of 10 000 valid events padded to 16 MiB (the body limit), shared by every client (the
    // clients hold one copy; each request the gateway reads is its own).
    let padding = "x".repeat(1_330);
    let events: Vec<Value> = (0..10_000)
        .map(|i| {
            let mut e = registration(1_000 + i, &format!("cit-{i}"), "00001");
            e["padding"] = padding.clone().into();
            e
        })
        .collect();
    let body = axum::body::Bytes::from(json!(events).to_string());
    assert!(body.len() < 16 << 20 && body.len() > 15 << 20, "{}", body.len());
    let before = peak_rss_mib();
    let mut clients = Vec::new();
    for _ in 0..200 {
        let (client, addr, body) = (app.client.clone(), app.addr, body.clone());
        clients.push(tokio::spawn(async move {
            let sent = client
                .post(format!("http://{addr}/v1/events"))
                .header("content-type", BATCH)
                .bearer_auth(GSO)
                .body(body)
                .send()
                .await;
            match sent {
                Ok(response) => Some(response.status()),
                // The gateway may close a connection whose body it will not read.
                Err(_) => None,
            }
        }));
    }
    let mut statuses = BTreeMap::new();
    for client in clients {
        *statuses.entry(client.await.unwrap().map(|s| s.as_u16())).or_insert(0) += 1;
    }
    let grown = peak_rss_mib().saturating_sub(before);
    eprintln!("flood: answers {statuses:?}; peak resident memory grew by {grown} MiB");
    // Nothing accepted: Kafka is down (503) or the request was shed (503, or the connection closed
    // before the body was sent), or the source's rate ran out (429).
    assert!(statuses.keys().all(|s| matches!(s, Some(503) | Some(429) | None)), "{statuses:?}");
    assert!(statuses.get(&Some(503)).copied().unwrap_or(0) > 0, "{statuses:?}");
    // 8 requests in flight of 16 MiB each, and one batch judged at a time: far below 200 × 16 MiB.
    assert!(grown < 600, "peak memory grew by {grown} MiB");
    let health = app.client.get(format!("http://{}/healthz", app.addr)).send().await.unwrap();
    assert!(
        health.text().await.unwrap().contains("Kafka is unreachable"),
        "the gateway is up and says why it is not ready"
    );
    app.stop().await;
}

/// `/healthz` status and headers of a gateway.
async fn health(app: &App) -> (StatusCode, String, bool) {
    let r = app.client.get(format!("http://{}/healthz", app.addr)).send().await.unwrap();
    let (status, retry) = (r.status(), r.headers().contains_key("retry-after"));
    (status, r.text().await.unwrap(), retry)
}

/// Waits until `app` is the writer (its `/healthz` says ok); panics after two minutes.
async fn until_writer(app: &App) {
    for _ in 0..1200 {
        if health(app).await.0 == StatusCode::OK {
            return;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    panic!("the standby never took the writer lease");
}

/// Within each partition of the events topic, `recordedtime` increases with the offset: "known at K"
/// is a prefix of every partition.
async fn assert_recorded_in_offset_order(app: &App) -> Vec<Event> {
    let records = app.read(&Topics::default().events).await;
    let mut last: BTreeMap<i32, i64> = BTreeMap::new();
    let mut events = Vec::new();
    for r in &records {
        let e = Event::from_json_recorded(&r.payload).unwrap();
        let at = e.recordedtime.unwrap();
        if let Some(before) = last.insert(r.partition, at) {
            assert!(at > before, "partition {} offset {}: recordedtime {at} after {before}", r.partition, r.offset);
        }
        events.push(e);
    }
    events
}

/// A config with a short writer lease (20 s; the test's publish timeout is 4 s), so that a crash is
/// taken over soon.
fn short_lease(brokers: &str, deployment: &Deployment) -> GatewayConfig {
    let mut c = config(brokers, deployment);
    c.lease = Duration::from_secs(20);
    c
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_restart_reads_only_the_tail_of_the_log_and_still_knows_what_kafka_took() {
    let (mut app, scratch) = spawn_app().await;
    let (status, _) = app.post(HN, SINGLE, &registration(10, "cit-a", "00001")).await;
    assert_eq!(status, StatusCode::ACCEPTED);
    app.stop().await;
    // What a gateway that died between Kafka's acknowledgement and PostgreSQL's commit leaves: a
    // stamped event in the topic that the tables do not hold.
    let producer = hoctap_kafka::Producer::new(&app.brokers, Topics::default(), &BTreeMap::new()).unwrap();
    let mut orphan = Event::from_json(registration(11, "cit-b", "26734").to_string().as_bytes()).unwrap();
    orphan.recordedtime = Some(
        i64::try_from(std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).unwrap().as_micros()).unwrap(),
    );
    producer.publish(std::slice::from_ref(&orphan)).await.unwrap();

    let app2 = serve(app.broker.take(), &app.brokers, &scratch.0).await;
    // The tail was folded: the orphan's id with other content is refused, its subject is HCM's.
    let (status, body) = app2.post(HN, SINGLE, &registration(11, "cit-b", "00001")).await;
    assert_eq!(
        (status, body["refused"][0]["rule"].as_str()),
        (StatusCode::UNPROCESSABLE_ENTITY, Some("duplicate_id")),
        "{body}"
    );
    let (status, body) = app2.post(HN, SINGLE, &declaration(12, "cit-b", 90)).await;
    assert_eq!((status, body["refused"][0]["field"].as_str()), (StatusCode::FORBIDDEN, Some("subject")), "{body}");
    // The same event as sent is a duplicate; what PostgreSQL remembers is one row per event.
    let (status, body) = app2.post(HCM, SINGLE, &registration(11, "cit-b", "26734")).await;
    assert_eq!((status, ids(&body, "duplicates")), (StatusCode::ACCEPTED, vec![id(11)]), "{body}");
    let state = GatewayState::connect(PG, scratch.0.gateway_schema()).await.unwrap();
    assert_eq!(state.sizes().await.unwrap(), (2, 2), "accepted and placements: cit-a and cit-b");
    let folded: i64 = state.folded(&Topics::default().events).await.unwrap().values().sum();
    assert_eq!(folded, 2, "the next offsets of the partitions add up to the two records in the topic");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn two_gateways_on_one_broker_write_one_at_a_time_and_hand_over_on_a_graceful_stop() {
    let broker = TestBroker::start();
    let brokers = broker.brokers();
    let scratch = fresh_deployment();
    let mut a = serve_config(Some(broker), &brokers, short_lease(&brokers, &scratch.0)).await;
    let geography = [
        unit(1, "01", "province", None),
        unit(2, "00001", "commune", Some("01")),
        unit(5, "79", "province", None),
        unit(7, "26734", "commune", Some("79")),
    ];
    assert_eq!(a.post(GSO, BATCH, &json!(geography)).await.0, StatusCode::ACCEPTED);
    let (status, body) =
        a.post(HN, BATCH, &json!([registration(10, "cit-a", "00001"), declaration(11, "cit-a", 90)])).await;
    assert_eq!(ids(&body, "accepted"), [id(10), id(11)], "{status} {body}");

    // The second one stands by: 503 with Retry-After, on /healthz and on events.
    let b = serve_until(None, &brokers, short_lease(&brokers, &scratch.0), StatusCode::SERVICE_UNAVAILABLE).await;
    let (status, text, retry) = health(&b).await;
    assert_eq!((status, retry), (StatusCode::SERVICE_UNAVAILABLE, true), "{text}");
    assert!(text.contains("standby"), "{text}");
    let (status, body, headers) = b.post_raw(Some(HN), SINGLE, registration(12, "cit-c", "00001").to_string()).await;
    assert_eq!(status, StatusCode::SERVICE_UNAVAILABLE, "{body}");
    assert!(headers.contains_key("retry-after") && body["error"].as_str().unwrap().contains("standby"), "{body}");
    // The writer goes on meanwhile.
    let (status, body) = a.post(HN, SINGLE, &registration(13, "cit-d", "00001")).await;
    assert_eq!((status, ids(&body, "accepted")), (StatusCode::ACCEPTED, vec![id(13)]), "{body}");

    // A graceful stop releases the lease: the standby takes over and judges against what A accepted.
    a.stop().await;
    until_writer(&b).await;
    let (status, body) = b
        .post(
            HN,
            BATCH,
            &json!([
                registration(10, "cit-a", "00001"),
                declaration(11, "cit-a", 40),
                registration(12, "cit-c", "00001")
            ]),
        )
        .await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!((ids(&body, "duplicates"), ids(&body, "accepted")), (vec![id(10)], vec![id(12)]), "{body}");
    assert_eq!(body["refused"][0]["rule"], "duplicate_id", "{body}");
    let (status, body) = b.post(HCM, SINGLE, &declaration(14, "cit-d", 90)).await;
    assert_eq!((status, body["refused"][0]["rule"].as_str()), (StatusCode::FORBIDDEN, Some("province")), "{body}");

    // Every event once, and within each partition stamped in offset order, across the hand-over.
    let events = assert_recorded_in_offset_order(&b).await;
    let mut published: Vec<String> = events.iter().map(|e| e.id.to_string()).collect();
    published.sort();
    assert_eq!(published, [id(10), id(11), id(12), id(13)]);
    let stamp = |n: u32| events.iter().find(|e| e.id.to_string() == id(n)).unwrap().recordedtime.unwrap();
    assert!(stamp(12) > stamp(13), "the new writer stamps after the last stamp of the old one");
    drop(a);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn when_the_writer_dies_the_standby_takes_over_once_its_lease_expired() {
    let broker = TestBroker::start();
    let brokers = broker.brokers();
    let scratch = fresh_deployment();
    let mut a = serve_config(Some(broker), &brokers, short_lease(&brokers, &scratch.0)).await;
    let geography = [unit(1, "01", "province", None), unit(2, "00001", "commune", Some("01"))];
    assert_eq!(a.post(GSO, BATCH, &json!(geography)).await.0, StatusCode::ACCEPTED);
    let (_, body) = a.post(HN, SINGLE, &registration(10, "cit-a", "00001")).await;
    assert_eq!(ids(&body, "accepted"), [id(10)]);
    let b = serve_until(None, &brokers, short_lease(&brokers, &scratch.0), StatusCode::SERVICE_UNAVAILABLE).await;

    // A dies without releasing anything: its server, its connections and its lease renewals stop
    // (the broker, which the test holds in A's struct, stays).
    let _broker = a.broker.take();
    a.server.take().unwrap().abort();
    a.stop.take();
    drop(a);
    // The lease still runs: B stands by until it expires.
    assert_eq!(health(&b).await.0, StatusCode::SERVICE_UNAVAILABLE);
    until_writer(&b).await;
    let (status, body) =
        b.post(HN, BATCH, &json!([registration(10, "cit-a", "00001"), registration(11, "cit-b", "00001")])).await;
    assert_eq!(status, StatusCode::ACCEPTED, "{body}");
    assert_eq!((ids(&body, "duplicates"), ids(&body, "accepted")), (vec![id(10)], vec![id(11)]), "{body}");
    assert_recorded_in_offset_order(&b).await;
}
