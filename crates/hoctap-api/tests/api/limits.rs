//! The API's cost limits: a statement past the statement timeout and a request past the request
//! timeout answer 503 with `Retry-After` (and the next request, once the read models are free, is
//! answered); `/healthz` answers promptly while every pooled connection is busy; PostgreSQL restarted
//! under the API is 503 with `Retry-After`, then the API recovers by itself.
//!
//! A request is held up by a transaction of the test's own that locks every table of the serving
//! generation (`ACCESS EXCLUSIVE`): the API's reads wait on the lock as they would on a slow query.

use crate::helpers::{App, Fresh, connect, spawn_api_with};
use hoctap_api::ApiConfig;
use hoctap_tests::scenario_world;
use serde_json::json;
use std::time::{Duration, Instant};
use tokio_postgres::Client;

const REVIEWS: &str = "/v1/reviews";
const QUERY: [(&str, &str); 2] = [("scope", "01"), ("as_of", "2025-12-31")];

/// A connection of its own that holds every table of `fresh`'s first generation locked until
/// [`release`].
async fn lock_generation(fresh: &Fresh) -> Client {
    let locker = connect().await;
    let schema = format!("{}_g1", fresh.deployment.name());
    let tables: Vec<String> = locker
        .query("SELECT format('%I.%I', schemaname, tablename) FROM pg_tables WHERE schemaname = $1", &[&schema])
        .await
        .unwrap()
        .iter()
        .map(|r| r.get(0))
        .collect();
    assert!(!tables.is_empty(), "no tables in {schema}");
    locker.batch_execute(&format!("BEGIN; LOCK TABLE {} IN ACCESS EXCLUSIVE MODE", tables.join(", "))).await.unwrap();
    locker
}

async fn release(locker: Client) {
    locker.batch_execute("ROLLBACK").await.unwrap();
}

/// `f`, or a panic naming `what` after `limit` (a request the API never answers fails the test, not
/// hangs it).
async fn within<T>(limit: Duration, what: &str, f: impl std::future::Future<Output = T>) -> T {
    tokio::time::timeout(limit, f).await.unwrap_or_else(|_| panic!("{what}: no answer within {limit:?}"))
}

/// The scenario's read models, an API with these timeouts over them, and every table locked.
struct Locked {
    client: Client,
    fresh: Fresh,
    app: App,
    locker: Client,
}

async fn locked_api(statement_timeout: Duration, request_timeout: Duration) -> Locked {
    let mut client = connect().await;
    let fresh = Fresh::filled(&mut client, &scenario_world()).await;
    let config = ApiConfig {
        statement_timeout,
        request_timeout,
        ..ApiConfig::new(crate::helpers::PG, fresh.deployment.clone())
    };
    let app = spawn_api_with(config).await;
    let locker = lock_generation(&fresh).await;
    Locked { client, fresh, app, locker }
}

impl Locked {
    /// Releases the lock, checks that the next review is answered, and removes everything.
    async fn release_and_review(self) {
        let Locked { mut client, fresh, app, locker } = self;
        release(locker).await;
        let review = within(Duration::from_secs(10), "the review after", app.get(REVIEWS, REVIEWS, &QUERY)).await;
        assert_eq!(review.status, 200, "{}", review.text);
        app.stop().await;
        fresh.remove(&mut client).await;
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_statement_past_the_statement_timeout_is_503_and_the_next_request_is_answered() {
    let locked = locked_api(Duration::from_millis(300), Duration::from_secs(60)).await;
    let started = Instant::now();
    let slow = within(Duration::from_secs(10), "a locked review", locked.app.get(REVIEWS, REVIEWS, &QUERY)).await;
    assert_eq!(slow.status, 503, "{}", slow.text);
    assert_eq!(slow.header("retry-after"), Some("5"));
    assert!(slow.json()["error"].as_str().unwrap().contains("statement timeout"), "{}", slow.text);
    assert!(started.elapsed() < Duration::from_secs(5), "cancelled after {:?}", started.elapsed());
    // The cancelled statement left its connection usable: once the lock goes, the review is answered.
    locked.release_and_review().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_request_past_the_request_timeout_is_503_and_the_next_request_is_answered() {
    let locked = locked_api(Duration::from_secs(60), Duration::from_millis(300)).await;
    let started = Instant::now();
    for (template, path, query) in [
        (REVIEWS, REVIEWS, &QUERY[..]),
        (
            "/v1/units/{code}/series",
            "/v1/units/01/series",
            &[("title", "learning_citizen"), ("from", "2025-01-01"), ("to", "2025-12-31")][..],
        ),
    ] {
        let slow = within(Duration::from_secs(10), path, locked.app.get(template, path, query)).await;
        assert_eq!(slow.status, 503, "{path}: {}", slow.text);
        assert_eq!(slow.header("retry-after"), Some("5"));
        assert!(slow.json()["error"].as_str().unwrap().contains("request timeout (300 ms)"), "{}", slow.text);
    }
    assert!(started.elapsed() < Duration::from_secs(5), "answered after {:?}", started.elapsed());
    locked.release_and_review().await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn healthz_answers_promptly_while_every_pooled_connection_is_busy() {
    let locked = locked_api(Duration::from_secs(60), Duration::from_secs(60)).await;
    let (app, fresh, client) = (&locked.app, &locked.fresh, &locked.client);
    // More requests than the pool has connections: every connection waits on the lock.
    let busy: Vec<_> = (0..20)
        .map(|_| {
            let request = app.client.get(format!("http://{}{REVIEWS}", app.addr)).query(&QUERY);
            tokio::spawn(async move { request.send().await.map(|r| r.status().as_u16()) })
        })
        .collect();
    let pattern = format!("%{}_g1%", fresh.deployment.name());
    let waited = Instant::now();
    loop {
        let row = client
            .query_one(
                "SELECT count(*) FROM pg_stat_activity WHERE application_name = 'hoctap-api' \
                 AND wait_event_type = 'Lock' AND query LIKE $1",
                &[&pattern],
            )
            .await
            .unwrap();
        let waiting: i64 = row.get(0);
        if waiting >= 16 {
            break;
        }
        assert!(waited.elapsed() < Duration::from_secs(20), "only {waiting} connections wait on the lock");
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let metrics = app.get("/metrics", "/metrics", &[]).await.text;
    assert!(metrics.lines().any(|l| l == "hoctap_api_postgres_connections{state=\"idle\"} 0"), "{metrics}");

    let started = Instant::now();
    let health = within(Duration::from_secs(10), "/healthz", app.get("/healthz", "/healthz", &[])).await;
    let took = started.elapsed();
    assert_eq!(health.status, 200, "{}", health.text);
    assert_eq!(health.json(), json!({"status": "ok", "generation": format!("{}_g1", fresh.deployment.name())}));
    assert!(took < Duration::from_secs(1), "/healthz took {took:?} while the pool was busy");

    // Nothing was lost by the busy pool: once the lock goes, the requests that held a connection are
    // answered; those that waited past the pool's wait are 503, never anything else.
    let Locked { mut client, fresh, app, locker } = locked;
    release(locker).await;
    let mut answered = 0;
    for request in busy {
        match request.await.unwrap().unwrap() {
            200 => answered += 1,
            503 => {}
            other => panic!("a busy request answered {other}"),
        }
    }
    assert!(answered >= 16, "only {answered} requests answered 200");
    app.stop().await;
    fresh.remove(&mut client).await;
}

/// The review without `generated_at` (the one field that says when, not what).
fn what(answer: &crate::helpers::Answer) -> serde_json::Value {
    let mut review = answer.json();
    review.as_object_mut().unwrap().remove("generated_at");
    review
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn postgresql_restarted_under_the_api_is_503_with_retry_after_then_recovers() {
    // A server of the test's own: the machine's is shared with the tests running beside this one.
    let postgres = std::sync::Arc::new(hoctap_tests::PgCluster::start());
    let url = postgres.url();
    let mut client = hoctap_tests::pg_connect_to(&url).await;
    let fresh = Fresh::filled(&mut client, &scenario_world()).await;
    drop(client);
    let app = crate::helpers::spawn_api_on(&url, &fresh.deployment).await;
    let before = app.get(REVIEWS, REVIEWS, &QUERY).await;
    assert_eq!(before.status, 200, "{}", before.text);

    let restarting = {
        let postgres = postgres.clone();
        tokio::task::spawn_blocking(move || postgres.restart(Duration::from_secs(3)))
    };
    // While it is down: 503 with Retry-After, promptly, for reviews and health alike.
    let mut down = None;
    while !restarting.is_finished() {
        let started = Instant::now();
        let review = within(Duration::from_secs(10), "a review while down", app.get(REVIEWS, REVIEWS, &QUERY)).await;
        assert!(matches!(review.status, 200 | 503), "{}: {}", review.status, review.text);
        if review.status == 503 {
            assert_eq!(review.header("retry-after"), Some("5"));
            assert!(started.elapsed() < Duration::from_secs(6), "503 after {:?}", started.elapsed());
            let health =
                within(Duration::from_secs(10), "/healthz while down", app.get("/healthz", "/healthz", &[])).await;
            down = Some((review, health));
            break;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let (review, health) = down.expect("PostgreSQL went down and up without a request noticing");
    assert!(review.json()["error"].as_str().unwrap().contains("PostgreSQL"), "{}", review.text);
    assert_eq!(health.status, 503, "{}", health.text);
    assert_eq!(health.header("retry-after"), Some("5"));
    restarting.await.unwrap();

    // Up again: the API recovers without a restart of its own, with the same answer.
    let waited = Instant::now();
    let after = loop {
        let review = app.get(REVIEWS, REVIEWS, &QUERY).await;
        if review.status == 200 {
            break review;
        }
        assert_eq!(review.status, 503, "{}", review.text);
        assert!(
            waited.elapsed() < Duration::from_secs(15),
            "not recovered after {:?}: {}",
            waited.elapsed(),
            review.text
        );
        tokio::time::sleep(Duration::from_millis(200)).await;
    };
    assert_eq!(what(&after), what(&before));
    let health = app.get("/healthz", "/healthz", &[]).await;
    assert_eq!(health.status, 200, "{}", health.text);
    app.stop().await;
    fresh.remove(&mut hoctap_tests::pg_connect_to(&url).await).await;
}
