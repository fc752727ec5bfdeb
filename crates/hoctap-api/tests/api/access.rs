//! Who may read what: readers' tokens per province, the public-reviews option, and the API's
//! least-privilege PostgreSQL role. Every refusal is asked of the real API on PostgreSQL.

use crate::helpers::{Answer, App, Fresh, HANOI_READER, HCM_READER, NATIONAL_READER, connect, spawn_api_with};
use hoctap_domain::Event;
use hoctap_tests::{event, recorded, scenario_world, unit};
use serde_json::{Value, json};

const REVIEWS: &str = "/v1/reviews";
const SERIES: &str = "/v1/units/{code}/series";
const UNITS: &str = "/v1/units";
const APPROVALS: &str = "/v1/approvals";

/// The hand world (Hà Nội, 01) with Hồ Chí Minh City (79) beside it, one commune that passed from a
/// Hà Nội district to HCM (so it belongs to both), and a review of 01 approved by a decision.
fn two_provinces() -> Vec<Event> {
    let late = "2026-01-06T00:00:00Z";
    let mut events = scenario_world();
    for e in [
        unit(900, "79", "province", "Hồ Chí Minh", None),
        unit(901, "760", "district", "Quận 1", Some("79")),
        unit(902, "26734", "commune", "Tân Định", Some("760")),
        unit(903, "00099", "commune", "Xã Biên", Some("001")),
        event(
            904,
            "admin_unit.reparented",
            "2025-07-01T00:00:00+07:00",
            "00099",
            json!({"code": "00099", "parent": "79"}),
        ),
        event(
            905,
            "review.approved",
            "2026-01-06T00:00:00+07:00",
            "01",
            json!({"scope": "01", "as_of": "2025-12-31", "milestone": 2025, "known_at": "2026-01-05T12:00:00Z",
                   "decision": {"number": "15/QĐ-UBND", "issuer": "UBND-01", "date": "2026-01-06"}}),
        ),
    ] {
        events.push(recorded(e, late));
    }
    events
}

fn bearer(token: &str) -> String {
    format!("Bearer {token}")
}

fn review(scope: &str) -> [(&str, &str); 2] {
    [("scope", scope), ("as_of", "2025-12-31")]
}

const YEARS: [(&str, &str); 4] =
    [("title", "learning_citizen"), ("from", "2021-01-01"), ("to", "2025-12-31"), ("step", "year")];

fn refused(answer: &Answer, status: u16, rule: &str) {
    assert_eq!(answer.status, status, "{}", answer.text);
    let body = answer.json();
    assert_eq!(body["rule"], rule, "{body}");
    assert!(body["error"].as_str().is_some_and(|e| !e.is_empty()), "{body}");
}

fn codes(answer: &Answer) -> Vec<String> {
    assert_eq!(answer.status, 200, "{}", answer.text);
    answer.json()["units"].as_array().unwrap().iter().map(|u| u["code"].as_str().unwrap().to_owned()).collect()
}

async fn spawn(fresh: &Fresh, public_reviews: bool) -> App {
    let mut config = hoctap_api::ApiConfig::new(crate::helpers::PG, fresh.deployment.clone());
    config.public_reviews = public_reviews;
    spawn_api_with(config).await
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_reader_reads_its_province_only_and_nobody_reads_without_a_token() {
    let mut client = connect().await;
    let fresh = Fresh::filled(&mut client, &two_provinces()).await;
    let app = spawn(&fresh, false).await;
    let (hn, hcm, national) = (bearer(HANOI_READER), bearer(HCM_READER), bearer(NATIONAL_READER));

    // No token, a token nobody holds, another scheme: 401 on every /v1 route, with the challenge.
    for authorization in [None, Some("Bearer not-a-reader".to_owned()), Some(format!("Basic {HANOI_READER}"))] {
        let a = authorization.as_deref();
        let answers = [
            app.get_as(a, REVIEWS, REVIEWS, &review("01")).await,
            app.get_as(a, REVIEWS, REVIEWS, &[("approved", "15/QĐ-UBND")]).await,
            app.get_as(a, SERIES, "/v1/units/01/series", &YEARS).await,
            app.get_as(a, UNITS, UNITS, &[("as_of", "2025-12-31")]).await,
            app.get_as(a, APPROVALS, APPROVALS, &[]).await,
            // Refused before the parameters are read: a caller without a token learns nothing.
            app.get_as(a, REVIEWS, REVIEWS, &[("scope", "01")]).await,
        ];
        for answer in &answers {
            refused(answer, 401, "token");
            let challenge = answer.header("www-authenticate").unwrap();
            assert_eq!(challenge.contains("invalid_token"), a.is_some(), "{challenge}");
        }
    }
    // Health and metrics stay open.
    assert_eq!(app.get_as(None, "/healthz", "/healthz", &[]).await.status, 200);
    assert_eq!(app.get_as(None, "/metrics", "/metrics", &[]).await.status, 200);

    // Hà Nội's reader: its province, a district and a commune of it, and the commune that passed to HCM.
    let h = Some(hn.as_str());
    for scope in ["01", "001", "00001", "00099"] {
        let answer = app.get_as(h, REVIEWS, REVIEWS, &review(scope)).await;
        assert_eq!(answer.status, 200, "{scope}: {}", answer.text);
    }
    assert_eq!(app.get_as(h, SERIES, "/v1/units/00001/series", &YEARS).await.status, 200);
    assert_eq!(app.get_as(h, REVIEWS, REVIEWS, &[("approved", "15/QĐ-UBND")]).await.status, 200);
    // ... and nothing of HCM, nor a code no province holds.
    for scope in ["79", "760", "26734", "99"] {
        let answer = app.get_as(h, REVIEWS, REVIEWS, &review(scope)).await;
        refused(&answer, 403, "province");
        let error = answer.json()["error"].as_str().unwrap().to_owned();
        assert!(error.contains("so-gddt-hanoi") && error.contains(&format!("`{scope}`")), "{error}");
    }
    refused(&app.get_as(h, SERIES, "/v1/units/26734/series", &YEARS).await, 403, "province");
    refused(&app.get_as(h, SERIES, "/v1/units/79/series", &YEARS).await, 403, "province");

    // HCM's reader: the reverse, including Hà Nội's approved review; the commune both held is its too.
    let c = Some(hcm.as_str());
    refused(&app.get_as(c, REVIEWS, REVIEWS, &review("01")).await, 403, "province");
    refused(&app.get_as(c, REVIEWS, REVIEWS, &[("approved", "15/QĐ-UBND")]).await, 403, "province");
    refused(&app.get_as(c, SERIES, "/v1/units/00001/series", &YEARS).await, 403, "province");
    assert_eq!(app.get_as(c, REVIEWS, REVIEWS, &review("79")).await.status, 200);
    assert_eq!(app.get_as(c, REVIEWS, REVIEWS, &review("00099")).await.status, 200);
    assert_eq!(app.get_as(c, SERIES, "/v1/units/26734/series", &YEARS).await.status, 200);

    // The approvals list: a province reader gets those of its scopes (Hà Nội's decision is not HCM's).
    let approved = |answer: Answer| -> Vec<String> {
        assert_eq!(answer.status, 200, "{}", answer.text);
        answer.json()["approvals"]
            .as_array()
            .unwrap()
            .iter()
            .map(|a| a["number"].as_str().unwrap().to_owned())
            .collect()
    };
    assert_eq!(approved(app.get_as(h, APPROVALS, APPROVALS, &[]).await), ["15/QĐ-UBND"]);
    assert!(approved(app.get_as(c, APPROVALS, APPROVALS, &[]).await).is_empty());

    // The units list: each province reader gets its own units; the national reader every one.
    let as_of = [("as_of", "2025-06-30")];
    let all = codes(&app.get_as(Some(&national), UNITS, UNITS, &as_of).await);
    let of_hn = codes(&app.get_as(h, UNITS, UNITS, &as_of).await);
    let of_hcm = codes(&app.get_as(c, UNITS, UNITS, &as_of).await);
    assert!(of_hn.contains(&"01".to_owned()) && of_hn.contains(&"00001".to_owned()), "{of_hn:?}");
    assert!(!of_hn.iter().any(|c| ["79", "760", "26734"].contains(&c.as_str())), "{of_hn:?}");
    assert_eq!(of_hcm, ["00099", "26734", "760", "79"]);
    let mut both: Vec<String> = of_hn.iter().chain(&of_hcm).filter(|c| *c != "00099").cloned().collect();
    both.push("00099".into());
    both.sort();
    assert_eq!(all, both);

    // The national reader reads every province, and gets 404 (not 403) for a code nobody holds.
    let n = Some(national.as_str());
    assert_eq!(app.get_as(n, REVIEWS, REVIEWS, &review("79")).await.status, 200);
    assert_eq!(app.get_as(n, REVIEWS, REVIEWS, &review("01")).await.status, 200);
    assert_eq!(app.get_as(n, REVIEWS, REVIEWS, &review("99")).await.status, 404);

    app.stop().await;
    fresh.remove(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn public_reviews_open_the_reviews_and_nothing_else() {
    let mut client = connect().await;
    let fresh = Fresh::filled(&mut client, &two_provinces()).await;
    let public = spawn(&fresh, true).await;
    let closed = spawn(&fresh, false).await;

    // Without a token: every scope's review, the same document a national reader gets.
    let open = public.get_as(None, REVIEWS, REVIEWS, &review("01")).await;
    assert_eq!(open.status, 200, "{}", open.text);
    let national = closed.get(REVIEWS, REVIEWS, &review("01")).await;
    let figures = |a: &Answer| {
        let mut v: Value = a.json();
        v.as_object_mut().unwrap().remove("generated_at");
        v
    };
    assert_eq!(figures(&open), figures(&national));
    assert_eq!(public.get_as(None, REVIEWS, REVIEWS, &review("79")).await.status, 200);
    assert_eq!(public.get_as(None, REVIEWS, REVIEWS, &[("approved", "15/QĐ-UBND")]).await.status, 200);
    // Which reviews were approved is as public as the reviews.
    let approvals = public.get_as(None, APPROVALS, APPROVALS, &[]).await;
    assert_eq!(approvals.json()["approvals"][0]["number"], "15/QĐ-UBND", "{}", approvals.text);
    // A province reader's token restricts nothing on a public review...
    let hcm = bearer(HCM_READER);
    assert_eq!(public.get_as(Some(&hcm), REVIEWS, REVIEWS, &review("01")).await.status, 200);
    // ... but a token sent must be valid, and series and units still need one.
    refused(&public.get_as(Some("Bearer not-a-reader"), REVIEWS, REVIEWS, &review("01")).await, 401, "token");
    refused(&public.get_as(None, SERIES, "/v1/units/01/series", &YEARS).await, 401, "token");
    refused(&public.get_as(None, UNITS, UNITS, &[("as_of", "2025-12-31")]).await, 401, "token");
    refused(&public.get_as(Some(&hcm), SERIES, "/v1/units/01/series", &YEARS).await, 403, "province");
    // Without the option the same review is closed.
    refused(&closed.get_as(None, REVIEWS, REVIEWS, &review("01")).await, 401, "token");
    refused(&closed.get_as(None, APPROVALS, APPROVALS, &[]).await, 401, "token");

    public.stop().await;
    closed.stop().await;
    fresh.remove(&mut client).await;
}

/// The API connects as a login role granted only the deployment's API role (as compose does): it
/// answers, and that role can read the control schema and the serving generation, write nothing, and
/// read no other schema. A generation switched to is granted in the switch's transaction.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_api_reads_through_a_role_that_can_only_select_the_serving_read_models() {
    let mut client = connect().await;
    let fresh = Fresh::filled(&mut client, &two_provinces()).await;
    let other = Fresh::filled(&mut client, &scenario_world()[..10]).await;
    let deployment = &fresh.deployment;
    let role = deployment.api_role();
    let login = format!("{}_login", deployment.name());
    client.batch_execute(&format!("CREATE ROLE \"{login}\" LOGIN IN ROLE \"{role}\"")).await.unwrap();

    let url = format!("postgresql://{login}@127.0.0.1:5432/test");
    let app = spawn_api_with(hoctap_api::ApiConfig::new(&url, deployment.clone())).await;
    let answer = app.get(REVIEWS, REVIEWS, &review("01")).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    assert_eq!(app.get(SERIES, "/v1/units/01/series", &YEARS).await.status, 200);
    assert_eq!(app.get(UNITS, UNITS, &[("as_of", "2025-12-31")]).await.status, 200);
    assert_eq!(app.get("/healthz", "/healthz", &[]).await.status, 200);
    app.stop().await;

    let limited = hoctap_tests::pg_connect_to(&url).await;
    let serving = deployment.active(&limited).await.unwrap();
    let control = deployment.name();
    for (sql, what) in [
        (format!("INSERT INTO \"{control}\".generation (schema) VALUES ('x')"), "write the control row"),
        (format!("UPDATE \"{serving}\".count_keys SET measure = measure"), "write the read models"),
        (format!("DELETE FROM \"{serving}\".subjects"), "delete from the read models"),
        (format!("CREATE TABLE \"{serving}\".mine (x int)"), "create a table"),
        (format!("SELECT count(*) FROM \"{}\".generation", other.deployment.name()), "read another deployment"),
        (format!("SELECT count(*) FROM \"{}_g1\".subjects", other.deployment.name()), "read another generation"),
    ] {
        let error = limited.batch_execute(&sql).await.expect_err(what);
        assert_eq!(error.code(), Some(&tokio_postgres::error::SqlState::INSUFFICIENT_PRIVILEGE), "{what}: {error}");
    }
    drop(limited);

    // A rebuild's switch grants the new generation before anyone can read it.
    let next = deployment.create_next_generation(&mut client).await.unwrap();
    let tx = client.transaction().await.unwrap();
    deployment.lock_for_switch(&tx).await.unwrap();
    deployment.switch(&tx, &next).await.unwrap();
    tx.commit().await.unwrap();
    let row = client
        .query_one(
            "SELECT has_table_privilege($1, $2, 'SELECT'), has_table_privilege($1, $2, 'INSERT')",
            &[&role, &format!("\"{next}\".count_keys")],
        )
        .await
        .unwrap();
    assert_eq!((row.get::<_, bool>(0), row.get::<_, bool>(1)), (true, false));

    client.batch_execute(&format!("DROP ROLE \"{login}\"")).await.unwrap();
    fresh.remove(&mut client).await;
    other.remove(&mut client).await;
    // The API role went with its deployment.
    let left = client.query_opt("SELECT 1 FROM pg_roles WHERE rolname = $1", &[&role]).await.unwrap();
    assert!(left.is_none());
}
