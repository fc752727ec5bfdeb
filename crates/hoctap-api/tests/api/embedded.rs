//! `hoctap serve`'s routes, answered by an engine in memory (`hoctap_api::Embedded`), give byte for
//! byte the documents `hoctap api` gives from PostgreSQL for the same events (`generated_at` aside),
//! errors included; and the dashboard of `hoctap api` in a real browser (Debian's chromium).

use crate::helpers::{Fresh, NATIONAL_READER, city, connect, engine_of, spawn_api};
use hoctap_domain::Event;
use hoctap_domain::time::format_instant;
use hoctap_tests::without_generated_at;

/// The answer as both servers must give it: a review with its `generated_at` blanked (each stamps its
/// own), everything else as it is (a diff's `events` included).
fn comparable(text: &str) -> String {
    if text.contains("\"generated_at\"") {
        return without_generated_at(text);
    }
    text.to_owned()
}
use tokio::sync::oneshot;

/// An approval of the phase review of `01` as known at `known_at`, recorded at `recorded` (UTC µs).
fn approval(number: &str, known_at: i64, recorded: i64) -> Event {
    let json = format!(
        r#"{{"specversion":"1.0","id":"00000000-0000-4000-8000-000000000001","source":"test","type":"vn.hoctap.review.approved.v1","time":"2026-01-20T09:00:00+07:00","subject":"01","recordedtime":"{}","data":{{"scope":"01","as_of":"2025-12-31","milestone":2025,"known_at":"{}","decision":{{"number":"{number}","issuer":"UBND-01","date":"2026-01-20"}}}}}}"#,
        format_instant(recorded),
        format_instant(known_at)
    );
    Event::from_json_recorded(json.as_bytes()).unwrap_or_else(|r| panic!("the approval: {r}"))
}

/// Serves `hoctap_api::embedded_router` on port 0; stopped when the sender is dropped.
async fn spawn_embedded(events: &[Event]) -> (String, oneshot::Sender<()>) {
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let base = format!("http://{}", listener.local_addr().unwrap());
    let (stop, stopped) = oneshot::channel::<()>();
    let embedded = hoctap_api::Embedded::new(engine_of(events));
    tokio::spawn(hoctap_api::serve_embedded(embedded, listener, async {
        let _ = stopped.await;
    }));
    (base, stop)
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_embedded_server_answers_byte_for_byte_what_the_api_answers() {
    let mut client = connect().await;
    let mut events = city(200, 11);
    let middle = events[events.len() / 2].recordedtime.unwrap();
    let last = events.last().unwrap().recordedtime.unwrap();
    events.push(approval("15/QĐ-UBND", middle, last + 1_000));
    let fresh = Fresh::filled(&mut client, &events).await;
    let api = spawn_api(&fresh.deployment).await;
    let (embedded, stop) = spawn_embedded(&events).await;
    let k = format_instant(middle);
    let asked = [
        "/".to_owned(),
        "/dashboard.js".to_owned(),
        "/dashboard.css".to_owned(),
        "/v1/reviews?scope=01&as_of=2025-12-31".to_owned(),
        format!("/v1/reviews?scope=01&as_of=2025-06-30&known_at={k}"),
        "/v1/reviews?scope=01&as_of=2030-12-31&milestone=2025".to_owned(),
        "/v1/reviews?scope=001&as_of=2025-12-31".to_owned(),
        "/v1/reviews?approved=15/QĐ-UBND".to_owned(),
        "/v1/reviews?approved=16/QĐ-UBND".to_owned(),
        "/v1/reviews?scope=99&as_of=2025-12-31".to_owned(),
        "/v1/reviews?scope=01&as_of=2025-12-31&known_at=2020-01-01".to_owned(),
        "/v1/reviews?scope=01&as_of=tomorrow".to_owned(),
        "/v1/units?as_of=2025-06-30".to_owned(),
        format!("/v1/units?as_of=2025-12-31&known_at={k}"),
        "/v1/units/01/series?title=learning_citizen&from=2021-01-01&to=2030-12-31&step=year".to_owned(),
        format!("/v1/units/001/series?title=learning_family&from=2024-01-01&to=2026-12-31&known_at={k}"),
        "/v1/units/001/series?title=learning_citizen&from=2026-01-01&to=2026-12-31".to_owned(),
        format!("/v1/reviews/diff?scope=01&as_of=2025-12-31&known_at={k}"),
        format!("/v1/reviews/diff?scope=001&as_of=2025-06-30&known_at={k}&vs={}", format_instant(last)),
        "/v1/reviews/diff?approved=15/QĐ-UBND".to_owned(),
        "/v1/reviews/diff?scope=01&as_of=2025-12-31".to_owned(),
        "/v1/approvals".to_owned(),
        format!("/v1/approvals?known_at={}", format_instant(last)),
        "/v1/approvals?known_at=soon".to_owned(),
        "/no/such/path".to_owned(),
    ];
    // The national reader's token: `hoctap api` asks for one, `hoctap serve` (local) needs none.
    let mut headers = reqwest::header::HeaderMap::new();
    let bearer = format!("Bearer {NATIONAL_READER}");
    headers.insert(reqwest::header::AUTHORIZATION, reqwest::header::HeaderValue::from_str(&bearer).unwrap());
    let http = reqwest::Client::builder().default_headers(headers).build().unwrap();
    let mut statuses = Vec::new();
    for path in &asked {
        let get = |base: String| {
            let http = http.clone();
            async move {
                let response = http.get(format!("{base}{path}")).send().await.unwrap();
                let status = response.status().as_u16();
                let kind = response.headers().get("content-type").map(|v| v.to_str().unwrap().to_owned());
                (status, kind, response.text().await.unwrap())
            }
        };
        let from_pg = get(format!("http://{}", api.addr)).await;
        let in_memory = get(embedded.clone()).await;
        assert_eq!(
            (from_pg.0, &from_pg.1, comparable(&from_pg.2)),
            (in_memory.0, &in_memory.1, comparable(&in_memory.2)),
            "{path}"
        );
        statuses.push(from_pg.0);
        if path.starts_with(&format!("/v1/reviews/diff?scope=01&as_of=2025-12-31&known_at={k}")) {
            // The events in between that changed the figures, listed from PostgreSQL too.
            let diff: serde_json::Value = serde_json::from_str(&from_pg.2).unwrap();
            let listed = diff["events"].as_array().unwrap();
            assert!(!listed.is_empty() && listed.iter().all(|e| !e["source"].as_str().unwrap().is_empty()), "{diff}");
        }
    }
    assert_eq!(
        statuses,
        [
            200, 200, 200, 200, 200, 200, 200, 200, 404, 404, 404, 400, 200, 200, 200, 200, 404, 200, 200, 200, 400,
            200, 200, 400, 404
        ],
        "{asked:?}"
    );
    // The approval is listed once it is recorded, with the question it approved.
    let listed: serde_json::Value =
        serde_json::from_str(&http.get(format!("{embedded}/v1/approvals")).send().await.unwrap().text().await.unwrap())
            .unwrap();
    assert_eq!(listed["approvals"][0]["number"], "15/QĐ-UBND");
    assert_eq!(listed["approvals"][0]["known_at"], k);
    let before: serde_json::Value = serde_json::from_str(
        &http
            .get(format!("{embedded}/v1/approvals?known_at={}", format_instant(last)))
            .send()
            .await
            .unwrap()
            .text()
            .await
            .unwrap(),
    )
    .unwrap();
    assert_eq!(before["approvals"], serde_json::json!([]), "not yet recorded at {last}");

    drop(stop);
    api.stop().await;
    fresh.remove(&mut client).await;
}

/// The dashboard of `hoctap api` (PostgreSQL read models) in chromium: the walk-through of
/// `hoctap_tests::browser::drive_dashboard` with the national reader's token typed into the page,
/// screenshots `api-….png`.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_dashboard_of_the_api_shows_the_review_and_follows_the_date_in_a_browser() {
    let mut client = connect().await;
    let events = city(300, 5);
    let fresh = Fresh::filled(&mut client, &events).await;
    let api = spawn_api(&fresh.deployment).await;
    let base = format!("http://{}", api.addr);
    // The browser is driven synchronously, off the runtime that serves the API.
    let (overview, chart) = tokio::task::spawn_blocking(move || {
        hoctap_tests::browser::drive_dashboard(&base, "api", Some(NATIONAL_READER))
    })
    .await
    .unwrap();
    assert!(hoctap_tests::browser::is_png(&overview, 50_000) && hoctap_tests::browser::is_png(&chart, 5_000));
    api.stop().await;
    fresh.remove(&mut client).await;
}
