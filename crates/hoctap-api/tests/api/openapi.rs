//! `docs/openapi.json` against the running services: every answer of the API and of the gateway
//! (tansu started per test) matches the schema the document gives for its path, method and status,
//! and every path, method and status the document describes is answered at least once, so the
//! document cannot drift from the code. Plus the document's own consistency with the Rust vocabulary.

use crate::helpers::{Answer, App, Exercised, Fresh, OPENAPI, connect, read, refs, spawn_api};
use hoctap_api::Step;
use hoctap_domain::codes::{Level, Metric, Title};
use hoctap_domain::review::Status;
use hoctap_gateway::{GatewayConfig, Holders, Tokens, hash_token};
use hoctap_kafka::test_broker::TestBroker;
use hoctap_tests::{scenario_world, source_json};
use serde_json::{Value, json};
use std::collections::{BTreeMap, BTreeSet};
use std::net::SocketAddr;
use std::time::Duration;
use tokio::sync::oneshot;

const EVENTS: &str = "/v1/events";
const SINGLE: &str = "application/cloudevents+json";
const BATCH: &str = "application/cloudevents-batch+json";
const HN: &str = "token-hanoi";
const GSO: &str = "token-gso";
/// The gateway's body limit in this test, so that a 413 costs little.
const MAX_BODY: usize = 64 << 10;

/// Documented answers no test provokes: a bug (500) cannot be asked for.
const NOT_EXERCISED: &[(&str, &str, u16)] = &[
    (EVENTS, "post", 500),
    ("/v1/reviews", "get", 500),
    ("/v1/reviews/diff", "get", 500),
    ("/v1/units", "get", 500),
    ("/v1/units/{code}/series", "get", 500),
    ("/v1/approvals", "get", 500),
    ("/v1/approvals", "post", 500),
];

struct Gateway {
    /// The deployment whose `<name>_gateway` schema holds the gateway's memory; dropped with it.
    _fresh: crate::helpers::Fresh,
    broker: Option<TestBroker>,
    addr: SocketAddr,
    client: reqwest::Client,
    exercised: BTreeSet<Exercised>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<Result<(), hoctap_gateway::GatewayError>>>,
}

async fn spawn_gateway() -> Gateway {
    let broker = TestBroker::start();
    let text = format!(
        "[[source]]\nname = \"khuyenhoc-hanoi\"\nprovince = \"01\"\ntoken_sha256 = \"{}\"\n\n\
         [[source]]\nname = \"gso\"\nprovince = \"*\"\ntoken_sha256 = \"{}\"\n",
        hash_token(HN),
        hash_token(GSO)
    );
    let fresh = crate::helpers::Fresh::named();
    let mut config = GatewayConfig::new(
        broker.brokers(),
        Tokens::from_toml(&text, Holders::Sources).unwrap(),
        crate::helpers::PG,
        fresh.deployment.clone(),
    );
    config.event_partitions = 2;
    // As in the gateway's own tests: one record per producer batch against tansu, and a dead broker
    // fails a request within seconds.
    config.producer = BTreeMap::from([
        ("batch.num.messages".to_owned(), "1".to_owned()),
        ("message.timeout.ms".to_owned(), "4000".to_owned()),
    ]);
    config.read_idle = Duration::from_secs(15);
    config.max_body_bytes = MAX_BODY;
    // Small limits, so that each answer they give costs little to provoke.
    config.limits.batch_events = 20;
    config.limits.event_bytes = 4 << 10;
    config.limits.source_requests_per_second = 1;
    config.limits.source_burst = 30;
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(hoctap_gateway::serve(config, listener, async {
        let _ = stopped.await;
    }));
    let gateway = Gateway {
        _fresh: fresh,
        broker: Some(broker),
        addr,
        client: reqwest::Client::new(),
        exercised: BTreeSet::new(),
        stop: Some(stop),
        server: Some(server),
    };
    for _ in 0..600 {
        if let Ok(r) = gateway.client.get(format!("http://{addr}/healthz")).send().await
            && r.status().is_success()
        {
            return gateway;
        }
        assert!(!gateway.server.as_ref().unwrap().is_finished(), "the gateway stopped while starting");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    panic!("the gateway did not answer /healthz");
}

impl Gateway {
    /// `POST /v1/events`, checked against the document.
    async fn post(&mut self, token: Option<&str>, content_type: &str, body: String) -> Answer {
        let mut request =
            self.client.post(format!("http://{}{EVENTS}", self.addr)).header("content-type", content_type).body(body);
        if let Some(token) = token {
            request = request.bearer_auth(token);
        }
        let answer = read(request.send().await.unwrap()).await;
        OPENAPI.check("post", EVENTS, &answer);
        self.exercised.insert((EVENTS.to_owned(), "post".to_owned(), answer.status));
        answer
    }

    async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            self.server.take().unwrap().await.unwrap().unwrap();
        }
    }
}

/// A unit established, as its source sends it (the shared fixture of `hoctap-tests`).
fn unit(n: u128, code: &str, level: &str, parent: Option<&str>) -> Value {
    source_json(&hoctap_tests::unit(n, code, level, &format!("Đơn vị {code}"), parent))
}

/// A citizen's registration for 2025 in `commune`, as its source sends it.
fn registration(n: u128, subject: &str, commune: &str) -> Value {
    source_json(&hoctap_tests::reg(n, "2025-03-01T09:00:00+07:00", subject, commune, 2025, "resident"))
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn every_answer_of_both_services_matches_the_document_and_every_documented_answer_is_given() {
    // The API, on the hand world and on a deployment never set up.
    let mut client = connect().await;
    let fresh = Fresh::filled(&mut client, &scenario_world()).await;
    let never = Fresh::named();
    let api = spawn_api(&fresh.deployment).await;
    let empty = spawn_api(&never.deployment).await;
    let month = [("title", "learning_citizen"), ("from", "2025-01-01"), ("to", "2025-12-31")];
    let hcm = format!("Bearer {}", crate::helpers::HCM_READER);
    const DIFF: &str = "/v1/reviews/diff";
    let statuses = [
        api.get("/v1/reviews", "/v1/reviews", &[("scope", "01"), ("as_of", "2025-06-30")]).await.status,
        api.get(
            "/v1/reviews",
            "/v1/reviews",
            &[("scope", "01"), ("as_of", "2030-12-31"), ("known_at", "2026-01-15T00:00:00+07:00")],
        )
        .await
        .status,
        api.get("/v1/reviews", "/v1/reviews", &[("scope", "01"), ("as_of", "tomorrow")]).await.status,
        api.get_raw("/v1/reviews", "/v1/reviews?scope=01&as_of=2025-12-31&as_of=2030-12-31").await.status,
        // What became of district 001: a review with `reform`.
        api.get("/v1/reviews", "/v1/reviews", &[("scope", "001"), ("as_of", "2025-12-31")]).await.status,
        api.get("/v1/reviews", "/v1/reviews", &[("scope", "01"), ("as_of", "2020-06-30")]).await.status,
        empty.get("/v1/reviews", "/v1/reviews", &[("scope", "01"), ("as_of", "2025-12-31")]).await.status,
        api.get("/v1/units/{code}/series", "/v1/units/001/series", &month).await.status,
        api.get(
            "/v1/units/{code}/series",
            "/v1/units/01/series",
            &[
                ("title", "learning_family"),
                ("from", "2021-01-01"),
                ("to", "2030-12-31"),
                ("step", "year"),
                ("known_at", "2026-01-05T00:00:00Z"),
            ],
        )
        .await
        .status,
        api.get("/v1/units/{code}/series", "/v1/units/01/series", &[("title", "learning_citizen")]).await.status,
        api.get("/v1/units/{code}/series", "/v1/units/0/series", &month).await.status,
        empty.get("/v1/units/{code}/series", "/v1/units/01/series", &month).await.status,
        api.get("/v1/units", "/v1/units", &[("as_of", "2025-12-31")]).await.status,
        api.get("/v1/units", "/v1/units", &[("as_of", "2025-06-30"), ("known_at", "2026-01-15")]).await.status,
        api.get("/v1/units", "/v1/units", &[("as_of", "2025-06-31")]).await.status,
        empty.get("/v1/units", "/v1/units", &[("as_of", "2025-12-31")]).await.status,
        api.get("/healthz", "/healthz", &[]).await.status,
        empty.get("/healthz", "/healthz", &[]).await.status,
        api.get("/metrics", "/metrics", &[]).await.status,
        api.get("/", "/", &[]).await.status,
        api.get("/v1/approvals", "/v1/approvals", &[]).await.status,
        api.get("/v1/approvals", "/v1/approvals", &[("known_at", "2026-01-15")]).await.status,
        api.get("/v1/approvals", "/v1/approvals", &[("known_at", "soon")]).await.status,
        empty.get("/v1/approvals", "/v1/approvals", &[]).await.status,
        // Readers: none, or one of another province (access.rs tests each rule).
        api.get_as(None, "/v1/reviews", "/v1/reviews", &[("scope", "01"), ("as_of", "2025-12-31")]).await.status,
        api.get_as(Some(&hcm), "/v1/reviews", "/v1/reviews", &[("scope", "01"), ("as_of", "2025-12-31")]).await.status,
        api.get_as(Some("Bearer guessed"), "/v1/units/{code}/series", "/v1/units/01/series", &month).await.status,
        api.get_as(Some(&hcm), "/v1/units/{code}/series", "/v1/units/001/series", &month).await.status,
        api.get_as(None, "/v1/units", "/v1/units", &[("as_of", "2025-12-31")]).await.status,
        api.get_as(None, "/v1/approvals", "/v1/approvals", &[]).await.status,
        api.get("/templates/{file}", "/templates/recognitions.xlsx", &[]).await.status,
        api.get("/templates/{file}", "/templates/citizens.xlsx", &[]).await.status,
        // The audit diff.
        api.get(DIFF, DIFF, &[("scope", "01"), ("as_of", "2025-12-31"), ("known_at", "2026-01-05T00:00:00Z")])
            .await
            .status,
        api.get(DIFF, DIFF, &[("scope", "01"), ("as_of", "2025-12-31")]).await.status,
        api.get(DIFF, DIFF, &[("scope", "99"), ("as_of", "2025-12-31"), ("known_at", "2026-01-15")]).await.status,
        empty.get(DIFF, DIFF, &[("scope", "01"), ("as_of", "2025-12-31"), ("known_at", "2026-01-15")]).await.status,
        api.get_as(None, DIFF, DIFF, &[("scope", "01"), ("as_of", "2025-12-31"), ("known_at", "2026-01-15")])
            .await
            .status,
        api.get_as(Some(&hcm), DIFF, DIFF, &[("scope", "01"), ("as_of", "2025-12-31"), ("known_at", "2026-01-15")])
            .await
            .status,
    ];
    assert_eq!(
        statuses,
        [
            200, 200, 400, 400, 200, 404, 503, 200, 200, 400, 404, 503, 200, 200, 400, 503, 200, 503, 200, 200, 200,
            200, 400, 503, 401, 403, 401, 403, 401, 401, 200, 404, 200, 400, 404, 503, 401, 403
        ]
    );

    // `POST /v1/approvals`: `hoctap api` records none; `hoctap serve --approvals` (a process, on a
    // generated city) records them.
    let served = hoctap_tests::serve_city(60, &["--approvals"]);
    let embedded = App::at(&served.base);
    const APPROVALS: &str = "/v1/approvals";
    const AS_JSON: &str = "application/json";
    let approval = |number: &str, as_of: &str| json!({"scope": "01", "as_of": as_of, "number": number, "issuer": "UBND-01", "date": "2026-01-20"});
    let phase = approval("15/QĐ-UBND", "2025-12-31").to_string();
    let mut unknown = approval("16/QĐ-UBND", "2025-12-31");
    unknown["scope"] = "99".into();
    let mut future = approval("17/QĐ-UBND", "2025-12-31");
    future["known_at"] = "2099-01-01".into();
    let mut bad_date = approval("18/QĐ-UBND", "2025-12-31");
    bad_date["date"] = "2026-02-30".into();
    let big = json!({"scope": "x".repeat(20 << 10)}).to_string();
    let first = embedded.post(APPROVALS, APPROVALS, AS_JSON, phase.clone(), None).await;
    // The same approval again, with the known-at it froze (without one, K is the newest record: the
    // approval itself, another review).
    let mut again = approval("15/QĐ-UBND", "2025-12-31");
    again["known_at"] = first.json()["event"]["data"]["known_at"].clone();
    let mut posts = vec![
        api.post(APPROVALS, APPROVALS, AS_JSON, phase.clone(), None).await,
        first,
        embedded.post(APPROVALS, APPROVALS, AS_JSON, again.to_string(), None).await,
        embedded.post(APPROVALS, APPROVALS, AS_JSON, approval("15/QĐ-UBND", "2024-12-31").to_string(), None).await,
        embedded.post(APPROVALS, APPROVALS, AS_JSON, unknown.to_string(), None).await,
        embedded.post(APPROVALS, APPROVALS, AS_JSON, future.to_string(), None).await,
        embedded.post(APPROVALS, APPROVALS, AS_JSON, bad_date.to_string(), None).await,
        embedded.post(APPROVALS, APPROVALS, AS_JSON, "not JSON".into(), None).await,
        embedded.post(APPROVALS, APPROVALS, "text/plain", phase.clone(), None).await,
        embedded.post(APPROVALS, APPROVALS, AS_JSON, big, None).await,
        embedded.post(APPROVALS, APPROVALS, AS_JSON, phase.clone(), Some("http://evil.example")).await,
    ];
    // Another process holds the log's writer lock (as `hoctap ingest` does while it writes): 503.
    let lock =
        std::fs::File::options().create(true).truncate(false).write(true).open(served.data_dir.join("LOCK")).unwrap();
    lock.lock().unwrap();
    posts.push(
        embedded.post(APPROVALS, APPROVALS, AS_JSON, approval("19/QĐ-UBND", "2025-12-31").to_string(), None).await,
    );
    lock.unlock().unwrap();
    let statuses: Vec<u16> = posts.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [403, 201, 200, 409, 422, 422, 400, 400, 415, 413, 403, 503], "{posts:#?}");
    assert_eq!(posts[0].json()["rule"], "approvals");
    assert_eq!(posts[5].json()["rule"], "known_at_future");
    assert_eq!(posts[6].json()["field"], "date");
    assert_eq!(posts[10].json()["rule"], "origin");
    let listed = embedded.get(APPROVALS, APPROVALS, &[]).await;
    assert_eq!(listed.header("allow"), Some("GET, POST"));
    assert_eq!(api.get(APPROVALS, APPROVALS, &[]).await.header("allow"), Some("GET"));
    assert_eq!(listed.json()["approvals"].as_array().unwrap().len(), 1, "{}", listed.text);

    // The gateway, on a broker of its own.
    let mut gateway = spawn_gateway().await;
    let geography = json!([
        unit(1, "01", "province", None),
        unit(2, "001", "district", Some("01")),
        unit(3, "00001", "commune", Some("001")),
        unit(4, "79", "province", None),
        unit(5, "760", "district", Some("79")),
        unit(6, "26734", "commune", Some("760")),
    ]);
    let mut bad_year = registration(13, "cit-c", "00001");
    bad_year["data"]["cycle_year"] = 2019.into();
    let mut citizen_id = registration(14, "cit-d", "00001");
    citizen_id["data"]["commune"] = "001203004567".into();
    let mut invalid = registration(18, "cit-h", "00001");
    invalid["data"]["cycle_year"] = 2019.into();
    let big = json!([{"padding": "x".repeat(MAX_BODY)}]).to_string();
    let mut too_large = registration(21, "cit-l", "00001");
    too_large["padding"] = "x".repeat(5 << 10).into();
    let answers = [
        gateway.post(Some(GSO), BATCH, geography.to_string()).await,
        gateway.post(Some(HN), SINGLE, registration(10, "cit-a", "00001").to_string()).await,
        // A batch: one accepted, one duplicate, one refused for its province, one invalid, one not JSON.
        gateway
            .post(
                Some(HN),
                BATCH,
                json!([
                    registration(11, "cit-b", "00001"),
                    registration(10, "cit-a", "00001"),
                    registration(12, "cit-x", "26734"),
                    bad_year,
                    "not an event"
                ])
                .to_string(),
            )
            .await,
        gateway.post(Some(HN), BATCH, "{\"not\": \"an array\"}".into()).await,
        gateway.post(Some(HN), SINGLE, "not JSON".into()).await,
        gateway.post(None, SINGLE, registration(15, "cit-e", "00001").to_string()).await,
        gateway.post(Some("token-guessed"), SINGLE, registration(15, "cit-e", "00001").to_string()).await,
        gateway.post(Some(HN), SINGLE, registration(16, "cit-f", "26734").to_string()).await,
        gateway.post(Some(HN), BATCH, big).await,
        gateway.post(Some(HN), "application/json", registration(17, "cit-g", "00001").to_string()).await,
        gateway.post(Some(HN), SINGLE, invalid.to_string()).await,
        gateway.post(Some(HN), BATCH, json!([registration(19, "cit-i", "00001"), citizen_id]).to_string()).await,
        // Over the limits: a batch of too many events, an event too large for the log.
        gateway.post(Some(HN), BATCH, json!(vec![1; 21]).to_string()).await,
        gateway.post(Some(HN), SINGLE, too_large.to_string()).await,
    ];
    let statuses: Vec<u16> = answers.iter().map(|a| a.status).collect();
    assert_eq!(statuses, [202, 202, 202, 400, 400, 401, 401, 403, 413, 415, 422, 422, 413, 413], "{answers:#?}");
    assert_eq!(answers[13].json()["refused"][0]["rule"], "size");
    // The source's rate (1 per second after a burst of 30): soon 429.
    let mut limited = None;
    for n in 0..40 {
        let answer = gateway.post(Some(HN), SINGLE, registration(30 + n, "cit-k", "00001").to_string()).await;
        if answer.status == 429 {
            limited = Some(answer);
            break;
        }
    }
    assert!(limited.is_some(), "the source's rate was never enforced");
    let batch = answers[2].json();
    assert_eq!(
        (
            batch["accepted"].as_array().unwrap().len(),
            batch["duplicates"].as_array().unwrap().len(),
            batch["refused"].as_array().unwrap().len()
        ),
        (1, 1, 3),
        "{batch}"
    );
    assert!(answers[11].json()["error"].is_string());
    // Kafka gone: 503, nothing claimed.
    drop(gateway.broker.take());
    // (From the national source: Hà Nội's is over its rate now.)
    let gone = gateway.post(Some(GSO), SINGLE, registration(20, "cit-j", "00001").to_string()).await;
    assert_eq!(gone.status, 503, "{}", gone.text);

    let mut exercised: BTreeSet<Exercised> = api.exercised.lock().unwrap().clone();
    exercised.extend(empty.exercised.lock().unwrap().iter().cloned());
    exercised.extend(embedded.exercised.lock().unwrap().iter().cloned());
    exercised.extend(gateway.exercised.iter().cloned());
    let documented = OPENAPI.operations();
    let skipped: BTreeSet<Exercised> =
        NOT_EXERCISED.iter().map(|(p, m, s)| ((*p).to_owned(), (*m).to_owned(), *s)).collect();
    let missing: Vec<&Exercised> = documented.difference(&exercised).filter(|o| !skipped.contains(*o)).collect();
    assert!(missing.is_empty(), "documented but never answered in this test: {missing:?}");
    assert!(skipped.is_subset(&documented), "NOT_EXERCISED names answers the document does not have");
    // Every path and method of the document was exercised (the statuses above already imply it).
    let operations =
        |set: &BTreeSet<Exercised>| set.iter().map(|(p, m, _)| (p.clone(), m.clone())).collect::<BTreeSet<_>>();
    assert_eq!(operations(&exercised), operations(&documented));

    gateway.stop().await;
    api.stop().await;
    empty.stop().await;
    fresh.remove(&mut client).await;
    never.remove(&mut client).await;
}

#[test]
fn the_document_is_consistent_with_itself_and_with_the_vocabulary() {
    let doc = &OPENAPI.doc;
    assert_eq!(doc["openapi"], "3.1.0");
    let mut all = Vec::new();
    refs(doc, &mut all);
    assert!(all.len() > 20);
    for r in &all {
        OPENAPI.resolve(&json!({ "$ref": r }));
    }
    for (name, schema) in doc["components"]["schemas"].as_object().unwrap() {
        jsonschema::meta::validate(schema).unwrap_or_else(|e| panic!("{name}: not a valid JSON Schema: {e}"));
        OPENAPI.validator(schema);
    }

    let schema_enum = |name: &str| -> Vec<Value> {
        let schema = &doc["components"]["schemas"][name];
        schema["enum"].as_array().unwrap_or_else(|| panic!("{name} has no enum")).clone()
    };
    let strings = |items: Vec<&str>| items.into_iter().map(Value::from).collect::<Vec<_>>();
    assert_eq!(schema_enum("Title"), strings(Title::ALL.iter().map(|t| t.as_str()).collect()));
    assert_eq!(schema_enum("Metric"), strings(Metric::ALL.iter().map(|m| m.as_str()).collect()));
    assert_eq!(schema_enum("Level"), strings(Level::ALL.iter().map(|l| l.as_str()).collect()));
    assert_eq!(schema_enum("Step"), strings(Step::ALL.iter().map(|s| s.as_str()).collect()));
    assert_eq!(
        doc["components"]["schemas"]["EventWarning"]["properties"]["warning"]["enum"],
        Value::from(strings(hoctap_domain::WarningKind::ALL.iter().map(|w| w.as_str()).collect()))
    );
    let statuses = [Status::Met, Status::Behind, Status::NoDenominator, Status::UnitAbolished];
    assert_eq!(
        doc["components"]["schemas"]["TargetReview"]["properties"]["status"]["enum"],
        Value::from(strings(statuses.iter().map(|s| s.as_str()).collect()))
    );

    // The API's 400 names exactly the query parameters its operations take.
    let mut parameters = BTreeSet::new();
    for path in ["/v1/reviews", "/v1/units", "/v1/units/{code}/series"] {
        for p in doc["paths"][path]["get"]["parameters"].as_array().unwrap() {
            let p = OPENAPI.resolve(p);
            if p["in"] == "query" {
                parameters.insert(p["name"].as_str().unwrap().to_owned());
            }
        }
    }
    let named: BTreeSet<String> = doc["components"]["schemas"]["Error"]["properties"]["parameter"]["enum"]
        .as_array()
        .unwrap()
        .iter()
        .map(|v| v.as_str().unwrap().to_owned())
        .collect();
    assert_eq!(named, parameters);

    // Every operation has an id and every answer a description.
    for (path, item) in doc["paths"].as_object().unwrap() {
        for (method, op) in item.as_object().unwrap().iter().filter(|(k, _)| *k != "servers") {
            assert!(op["operationId"].is_string(), "{method} {path}");
            for (status, response) in op["responses"].as_object().unwrap() {
                assert!(OPENAPI.resolve(response)["description"].is_string(), "{method} {path} {status}");
            }
        }
    }
}
