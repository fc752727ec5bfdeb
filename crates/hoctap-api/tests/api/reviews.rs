//! Reviews and series over HTTP equal the embedded engine's answers for the same events; the caller's
//! mistakes are 400 or 404; no read models or no PostgreSQL is 503; health and metrics.

use crate::helpers::{App, Fresh, city, connect, engine_of, spawn_api, spawn_api_on};
use hoctap_domain::codes::Title;
use hoctap_domain::review::TitleCounts;
use hoctap_domain::time::{format_instant, parse_instant};
use hoctap_domain::{Day, Engine, Query};
use hoctap_tests::scenario_world;
use serde_json::{Value, json};

const REVIEWS: &str = "/v1/reviews";
const SERIES: &str = "/v1/units/{code}/series";
const UNITS: &str = "/v1/units";

/// `GET /v1/units` for `as_of` and `known_at` equals what `hoctap units --format json` prints for the
/// same events (the engine's list rendered by `hoctap_report::units_json`), byte for byte. Returns the
/// number of units listed.
async fn assert_same_units(app: &App, engine: &Engine, as_of: &str, known_at: Option<i64>) -> usize {
    let k = known_at.map(format_instant);
    let mut params = vec![("as_of", as_of)];
    if let Some(k) = &k {
        params.push(("known_at", k));
    }
    let answer = app.get(UNITS, UNITS, &params).await;
    assert_eq!(answer.status, 200, "{params:?}: {}", answer.text);
    assert_eq!(answer.header("content-type"), Some("application/json"));
    let day = Day::parse(as_of).unwrap();
    let units = engine.units_on(day, known_at);
    assert_eq!(answer.text, hoctap_report::units_json(&units, day, k.as_deref()), "{params:?}");
    units.len()
}

/// `GET /v1/reviews` for `query` equals the engine's review rendered by `hoctap_report::json`, byte for
/// byte, once stamped with the answer's own generation time (the one field that names when, not what);
/// a review the engine cannot give is 404.
async fn assert_same_review(app: &App, engine: &Engine, query: &Query) -> bool {
    let as_of = query.as_of.to_string();
    let known_at = query.known_at.map(format_instant);
    let milestone = query.milestone.map(|m| m.to_string());
    let mut params = vec![("scope", query.scope.as_str()), ("as_of", as_of.as_str())];
    if let Some(k) = &known_at {
        params.push(("known_at", k));
    }
    if let Some(m) = &milestone {
        params.push(("milestone", m));
    }
    let answer = app.get(REVIEWS, REVIEWS, &params).await;
    match engine.review(query) {
        Ok(mut review) => {
            assert_eq!(answer.status, 200, "{query:?}: {}", answer.text);
            assert_eq!(answer.header("content-type"), Some("application/json"));
            let generated = answer.json()["generated_at"].as_str().map(parse_instant).expect("a generation time");
            hoctap_report::stamp(&mut review, generated.expect("RFC 3339"));
            assert_eq!(answer.text, hoctap_report::json(&review), "{query:?}");
            true
        }
        Err(e) => {
            assert_eq!(answer.status, 404, "{query:?}: the engine says {e}; got {}", answer.text);
            assert_eq!(answer.json()["error"], e.to_string());
            false
        }
    }
}

fn query(scope: &str, as_of: &str, known_at: Option<i64>) -> Query {
    Query { scope: scope.into(), as_of: Day::parse(as_of).unwrap(), known_at, milestone: None }
}

/// The points of a series over HTTP, as (date, counts).
async fn series(app: &App, unit: &str, params: &[(&str, &str)]) -> Vec<(String, TitleCounts)> {
    let answer = app.get(SERIES, &format!("/v1/units/{unit}/series"), params).await;
    assert_eq!(answer.status, 200, "{unit} {params:?}: {}", answer.text);
    let body = answer.json();
    assert_eq!(body["unit"], unit);
    body["points"]
        .as_array()
        .unwrap()
        .iter()
        .map(|p| {
            let n = |k: &str| p[k].as_u64().unwrap();
            let counts = TitleCounts {
                registered: n("registered"),
                declared: n("declared"),
                evidenced: n("evidenced"),
                recognised: n("recognised"),
            };
            (p["as_of"].as_str().unwrap().to_owned(), counts)
        })
        .collect()
}

/// What a series point must be: the engine's review of that date, first unit, that title; `None` when
/// the unit is not in force then (its review may still answer with what became of it).
fn expected_point(engine: &Engine, unit: &str, title: Title, date: &str, known_at: Option<i64>) -> Option<TitleCounts> {
    engine
        .review(&query(unit, date, known_at))
        .ok()
        .filter(|r| r.reform.is_none())
        .map(|r| r.units[0].titles.get(&title).copied().unwrap_or_default())
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn reviews_and_series_of_a_generated_city_equal_the_embedded_engine() {
    let mut client = connect().await;
    let events = city(300, 7);
    let engine = engine_of(&events);
    let fresh = Fresh::filled(&mut client, &events).await;
    let app = spawn_api(&fresh.deployment).await;
    let middle = events[events.len() / 2].recordedtime;

    let mut compared = 0;
    for date in ["2021-06-30", "2025-06-30", "2025-07-01", "2025-12-31", "2030-12-31"] {
        for known_at in [None, middle] {
            let city = engine.review(&query("01", date, known_at)).unwrap();
            // The city, its first and last child unit (districts up to 2025-06-30, communes after).
            let children = [city.units.get(1), city.units.last()].into_iter().flatten().map(|u| u.code.clone());
            for scope in std::iter::once("01".to_owned()).chain(children) {
                compared += usize::from(assert_same_review(&app, &engine, &query(&scope, date, known_at)).await);
            }
        }
    }
    assert!(compared >= 25, "only {compared} reviews compared");
    // Milestones: the final review's targets asked for on the phase date, and a year without targets.
    for milestone in [2025, 2030, 2027] {
        let q = Query { milestone: Some(milestone), ..query("01", "2025-12-31", None) };
        assert!(assert_same_review(&app, &engine, &q).await);
    }
    let review = engine.review(&query("01", "2025-12-31", None)).unwrap();
    assert!(review.units[0].titles.values().any(|t| t.recognised > 0), "a city with nothing recognised proves little");

    // The units in force before and after the reform, as known now and at the middle.
    for date in ["2020-12-31", "2025-06-30", "2025-07-01", "2030-12-31"] {
        for known_at in [None, middle] {
            assert_same_units(&app, &engine, date, known_at).await;
        }
    }
    let before = engine.units_on(Day::parse("2025-06-30").unwrap(), None);
    assert!(before.iter().filter(|u| u.in_force).count() > 100, "a city of districts and communes");

    // Yearly series of every title of the city, as known now and at the middle: the reviews' figures.
    for title in [Title::LearningCitizen, Title::LearningFamily, Title::LearningCity] {
        for known_at in [None, middle] {
            let k = known_at.map(format_instant);
            let mut params =
                vec![("title", title.as_str()), ("from", "2021-01-01"), ("to", "2030-12-31"), ("step", "year")];
            if let Some(k) = &k {
                params.push(("known_at", k));
            }
            let got = series(&app, "01", &params).await;
            let want: Vec<(String, TitleCounts)> = (2021..=2030)
                .map(|y| format!("{y}-12-31"))
                .map(|d| (d.clone(), expected_point(&engine, "01", title, &d, known_at).unwrap()))
                .collect();
            assert_eq!(got, want, "{title} as known at {k:?}");
            // `hoctap series` answers from `Engine::series`: the same points as PostgreSQL's.
            let dates: Vec<Day> = want.iter().map(|(d, _)| Day::parse(d).unwrap()).collect();
            let embedded: Vec<(String, TitleCounts)> = engine
                .series("01", title, &dates, known_at)
                .unwrap()
                .into_iter()
                .map(|(d, c)| (d.to_string(), c))
                .collect();
            assert_eq!(got, embedded, "{title} as known at {k:?}: the embedded series");
        }
    }
    app.stop().await;
    fresh.remove(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn series_of_the_hand_world_follow_the_reform_and_known_at() {
    let mut client = connect().await;
    let events = scenario_world();
    let engine = engine_of(&events);
    let fresh = Fresh::filled(&mut client, &events).await;
    let app = spawn_api(&fresh.deployment).await;
    let lc = Title::LearningCitizen;

    // Reviews first: the hand-checked world through HTTP, including the late events.
    for date in ["2024-06-30", "2025-06-30", "2025-07-01", "2025-12-31", "2026-03-31", "2030-12-31"] {
        for known_at in [
            None,
            Some(hoctap_tests::instant("2026-01-05T00:00:00Z")),
            Some(hoctap_tests::instant("2026-03-15T00:00:00Z")),
        ] {
            for scope in ["01", "001", "002", "00001", "00003", "00005"] {
                assert_same_review(&app, &engine, &query(scope, date, known_at)).await;
            }
        }
    }
    // Among them, the reform's answers: district 001 after 1 July 2025 is what became of it (it was
    // dissolved into the city: its communes, which kept their codes), 00003 its successor 00005, and
    // 00005 before then the communes it comes from.
    for (scope, as_of, relation, units) in [
        ("001", "2025-07-01", "successors", vec!["00001", "00002"]),
        ("00003", "2025-12-31", "successors", vec!["00005"]),
        ("00005", "2025-06-30", "predecessors", vec!["00003", "00004"]),
    ] {
        assert!(assert_same_review(&app, &engine, &query(scope, as_of, None)).await);
        let body = app.get(REVIEWS, REVIEWS, &[("scope", scope), ("as_of", as_of)]).await.json();
        assert_eq!(body["scope"], scope);
        assert_eq!(body["reform"]["code"], scope);
        assert_eq!(body["reform"]["relation"], relation, "{body}");
        let listed: Vec<&str> =
            body["reform"]["units"].as_array().unwrap().iter().map(|u| u["code"].as_str().unwrap()).collect();
        assert_eq!(listed, units);
        let rows: Vec<&str> = body["units"].as_array().unwrap().iter().map(|u| u["code"].as_str().unwrap()).collect();
        assert_eq!(rows, units, "the rows are the related units'");
    }

    // Month ends across the reform: the city has every point; district 001, abolished on 2025-07-01,
    // stops at 2025-06-30; commune 00005, made on that day, starts at 2025-07-31.
    for unit in ["01", "001", "00001", "00005"] {
        for known_at in [None, Some("2026-01-05T00:00:00Z")] {
            let k = known_at.map(hoctap_tests::instant);
            let mut params = vec![("title", lc.as_str()), ("from", "2024-12-15"), ("to", "2026-06-30")];
            if let Some(k) = known_at {
                params.push(("known_at", k));
            }
            let got = series(&app, unit, &params).await;
            let month_ends = hoctap_api::dates(
                Day::parse("2024-12-15").unwrap(),
                Day::parse("2026-06-30").unwrap(),
                hoctap_api::Step::Month,
                1000,
            )
            .unwrap();
            assert_eq!(month_ends.len(), 19);
            let want: Vec<(String, TitleCounts)> = month_ends
                .iter()
                .map(Day::to_string)
                .filter_map(|d| expected_point(&engine, unit, lc, &d, k).map(|c| (d, c)))
                .collect();
            assert_eq!(got, want, "{unit} as known at {known_at:?}");
            match unit {
                "001" => assert_eq!(got.last().map(|p| p.0.as_str()), Some("2025-06-30")),
                "00005" => assert_eq!(got.first().map(|p| p.0.as_str()), Some("2025-07-31")),
                _ => assert_eq!(got.len(), 19),
            }
        }
    }
    assert!(
        series(&app, "01", &[("title", "learning_citizen"), ("from", "2025-01-01"), ("to", "2025-12-31")])
            .await
            .iter()
            .any(|(_, c)| !c.is_zero()),
        "a series of zeros proves little"
    );

    // Days and weeks; the echo of the request.
    let answer = app
        .get(
            SERIES,
            "/v1/units/01/series",
            &[
                ("title", "learning_citizen"),
                ("from", "2025-06-29"),
                ("to", "2025-07-02"),
                ("step", "day"),
                ("known_at", "2026-01-05T07:00:00+07:00"),
            ],
        )
        .await;
    let body = answer.json();
    assert_eq!(
        (&body["title"], &body["step"], &body["known_at"]),
        (&json!("learning_citizen"), &json!("day"), &json!("2026-01-05T00:00:00Z"))
    );
    let days: Vec<&str> = body["points"].as_array().unwrap().iter().map(|p| p["as_of"].as_str().unwrap()).collect();
    assert_eq!(days, ["2025-06-29", "2025-06-30", "2025-07-01", "2025-07-02"]);
    let weeks = series(
        &app,
        "00001",
        &[("title", "learning_citizen"), ("from", "2025-01-01"), ("to", "2025-01-29"), ("step", "week")],
    )
    .await;
    let want: Vec<(String, TitleCounts)> = ["2025-01-01", "2025-01-08", "2025-01-15", "2025-01-22", "2025-01-29"]
        .into_iter()
        .map(|d| (d.to_owned(), expected_point(&engine, "00001", lc, d, None).unwrap()))
        .collect();
    assert_eq!(weeks, want);
    let as_known_now = app
        .get(
            SERIES,
            "/v1/units/01/series",
            &[("title", "learning_citizen"), ("from", "2025-01-01"), ("to", "2025-01-31")],
        )
        .await;
    assert_eq!((&as_known_now.json()["known_at"], &as_known_now.json()["step"]), (&Value::Null, &json!("month")));

    app.stop().await;
    fresh.remove(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn units_of_the_hand_world_name_parents_and_successors_as_the_embedded_engine_does() {
    let mut client = connect().await;
    let events = scenario_world();
    let engine = engine_of(&events);
    let fresh = Fresh::filled(&mut client, &events).await;
    let app = spawn_api(&fresh.deployment).await;
    let first = events.iter().filter_map(|e| e.recordedtime).min().unwrap();
    let last = events.iter().filter_map(|e| e.recordedtime).max().unwrap();

    for date in ["2020-06-30", "2024-06-30", "2025-06-30", "2025-07-01", "2025-12-31", "2030-12-31"] {
        for known_at in [None, Some(first), Some(last), Some(first - 1)] {
            assert_same_units(&app, &engine, date, known_at).await;
        }
    }
    // What the list says, read back from HTTP: the district in force with its parent before the
    // reform, dissolved with its successor after it; nothing before the geography was recorded.
    let body = |a: crate::helpers::Answer| a.json()["units"].as_array().unwrap().clone();
    let find = |units: &[Value], code: &str| units.iter().find(|u| u["code"] == code).cloned().unwrap();
    let june = body(app.get(UNITS, UNITS, &[("as_of", "2025-06-30")]).await);
    assert_eq!(
        find(&june, "001"),
        json!({"code": "001", "level": "district", "name": find(&june, "001")["name"], "in_force": true, "parent": "01"})
    );
    let july = body(app.get(UNITS, UNITS, &[("as_of", "2025-07-01")]).await);
    let district = find(&july, "001");
    assert_eq!(
        (&district["in_force"], &district["parent"], &district["successor"]),
        (&json!(false), &Value::Null, &json!("01"))
    );
    assert!(july.iter().filter(|u| u["in_force"] == true).all(|u| u["code"] != "001"));
    let early = format_instant(first - 1);
    let nothing = app.get(UNITS, UNITS, &[("as_of", "2025-06-30"), ("known_at", &early)]).await;
    assert_eq!((nothing.status, body(nothing).len()), (200, 0));

    // The caller's mistakes: 400 naming the parameter.
    for (parameter, params) in [
        ("as_of", vec![]),
        ("as_of", vec![("as_of", "")]),
        ("as_of", vec![("as_of", "2025-02-30")]),
        ("as_of", vec![("as_of", "30/06/2025")]),
        ("known_at", vec![("as_of", "2025-06-30"), ("known_at", "yesterday")]),
        ("known_at", vec![("as_of", "2025-06-30"), ("known_at", "2026-01-15T00:00:00")]),
    ] {
        let answer = app.get(UNITS, UNITS, &params).await;
        assert_eq!(answer.status, 400, "{params:?}: {}", answer.text);
        assert_eq!(answer.json()["parameter"], parameter, "{params:?}: {}", answer.text);
    }
    let twice = app.get_raw(UNITS, "/v1/units?as_of=2025-06-30&as_of=2025-07-01").await;
    assert_eq!((twice.status, twice.json().get("parameter")), (400, None), "{}", twice.text);
    // A mistake beside a good question loses nothing: the good one is still answered the same.
    assert_same_units(&app, &engine, "2025-07-01", None).await;

    app.stop().await;
    fresh.remove(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_callers_mistakes_are_400_naming_the_parameter_and_unknown_units_404() {
    let mut client = connect().await;
    let fresh = Fresh::filled(&mut client, &scenario_world()).await;
    let app = spawn_api(&fresh.deployment).await;

    let bad = |parameter: &'static str, params: &'static [(&'static str, &'static str)]| (parameter, params);
    for (parameter, params) in [
        bad("scope", &[("as_of", "2025-12-31")]),
        bad("scope", &[("scope", ""), ("as_of", "2025-12-31")]),
        bad("as_of", &[("scope", "01")]),
        bad("as_of", &[("scope", "01"), ("as_of", "2025-13-01")]),
        bad("as_of", &[("scope", "01"), ("as_of", "31/12/2025")]),
        bad("known_at", &[("scope", "01"), ("as_of", "2025-12-31"), ("known_at", "15/01/2026")]),
        bad("known_at", &[("scope", "01"), ("as_of", "2025-12-31"), ("known_at", "2026-01-15T00:00:00")]),
        bad("milestone", &[("scope", "01"), ("as_of", "2025-12-31"), ("milestone", "phase")]),
    ] {
        let answer = app.get(REVIEWS, REVIEWS, params).await;
        assert_eq!(answer.status, 400, "{params:?}: {}", answer.text);
        assert_eq!(answer.json()["parameter"], parameter, "{params:?}: {}", answer.text);
    }
    let twice = app.get_raw(REVIEWS, "/v1/reviews?scope=01&scope=02&as_of=2025-12-31").await;
    assert_eq!((twice.status, twice.json().get("parameter")), (400, None), "{}", twice.text);

    let month = [("title", "learning_citizen"), ("from", "2025-01-01"), ("to", "2025-12-31")];
    for (parameter, params) in [
        bad("title", &[("from", "2025-01-01"), ("to", "2025-12-31")]),
        bad("title", &[("title", "learning_town"), ("from", "2025-01-01"), ("to", "2025-12-31")]),
        bad("from", &[("title", "learning_citizen"), ("to", "2025-12-31")]),
        bad("to", &[("title", "learning_citizen"), ("from", "2025-01-01"), ("to", "2025-02-30")]),
        bad("to", &[("title", "learning_citizen"), ("from", "2025-12-31"), ("to", "2025-01-01")]),
        bad(
            "step",
            &[("title", "learning_citizen"), ("from", "2025-01-01"), ("to", "2025-12-31"), ("step", "quarter")],
        ),
        // 1096 days: over the limit of 1000 points.
        bad("step", &[("title", "learning_citizen"), ("from", "2023-01-01"), ("to", "2025-12-31"), ("step", "day")]),
        // No month ends between.
        bad("step", &[("title", "learning_citizen"), ("from", "2025-01-02"), ("to", "2025-01-30")]),
        bad(
            "known_at",
            &[("title", "learning_citizen"), ("from", "2025-01-01"), ("to", "2025-12-31"), ("known_at", "yesterday")],
        ),
    ] {
        let answer = app.get(SERIES, "/v1/units/01/series", params).await;
        assert_eq!(answer.status, 400, "{params:?}: {}", answer.text);
        assert_eq!(answer.json()["parameter"], parameter, "{params:?}: {}", answer.text);
    }
    // 1000 points exactly is allowed.
    let days = app
        .get(
            SERIES,
            "/v1/units/00001/series",
            &[("title", "learning_citizen"), ("from", "2023-04-07"), ("to", "2025-12-31"), ("step", "day")],
        )
        .await;
    assert_eq!(
        (days.status, days.json()["points"].as_array().map(Vec::len)),
        (200, Some(1000)),
        "{}",
        &days.text[..200.min(days.text.len())]
    );

    // Unknown units, and units not in force that the reform relates to none in force: 404 (district
    // 001 after the reform and commune 00005 before it answer with their successors and predecessors).
    for (scope, as_of, why) in
        [("99", "2025-12-31", "not a known administrative unit"), ("01", "2020-06-30", "not in force on 2020-06-30")]
    {
        let answer = app.get(REVIEWS, REVIEWS, &[("scope", scope), ("as_of", as_of)]).await;
        assert_eq!(answer.status, 404, "{scope} {as_of}: {}", answer.text);
        assert!(answer.json()["error"].as_str().unwrap().contains(why), "{}", answer.text);
    }
    let unknown = app.get(SERIES, "/v1/units/99/series", &month).await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    let abolished = app
        .get(
            SERIES,
            "/v1/units/001/series",
            &[("title", "learning_citizen"), ("from", "2025-07-01"), ("to", "2026-12-31")],
        )
        .await;
    assert_eq!(abolished.status, 404, "{}", abolished.text);
    assert!(abolished.json()["error"].as_str().unwrap().contains("not in force on any date"), "{}", abolished.text);

    app.stop().await;
    fresh.remove(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn without_read_models_or_without_postgresql_the_answer_is_503() {
    let never_set_up = Fresh::named();
    let mut apps = vec![("no deployment", spawn_api(&never_set_up.deployment).await, "hoctap project")];
    // Nothing listens on port 1: PostgreSQL is unreachable.
    let unreachable = "host=127.0.0.1 port=1 user=postgres dbname=test connect_timeout=2";
    apps.push(("no PostgreSQL", spawn_api_on(unreachable, &never_set_up.deployment).await, "unreachable"));
    for (why, app, reason) in apps {
        let review = app.get(REVIEWS, REVIEWS, &[("scope", "01"), ("as_of", "2025-12-31")]).await;
        assert_eq!(review.status, 503, "{why}: {}", review.text);
        assert_eq!(review.header("retry-after"), Some("5"));
        assert!(review.json()["error"].as_str().unwrap().contains(reason), "{why}: {}", review.text);
        let units = app.get(UNITS, UNITS, &[("as_of", "2025-12-31")]).await;
        assert_eq!((units.status, units.header("retry-after")), (503, Some("5")), "{why}: {}", units.text);
        let series = app
            .get(
                SERIES,
                "/v1/units/01/series",
                &[("title", "learning_citizen"), ("from", "2025-01-01"), ("to", "2025-12-31")],
            )
            .await;
        assert_eq!(series.status, 503, "{why}: {}", series.text);
        let health = app.get("/healthz", "/healthz", &[]).await;
        assert_eq!((health.status, &health.json()["status"]), (503, &json!("unavailable")), "{why}: {}", health.text);
        assert!(health.json()["reason"].as_str().unwrap().contains(reason), "{why}: {}", health.text);
        // The parameters are still checked first: a mistake is the caller's whatever the state.
        let bad = app.get(REVIEWS, REVIEWS, &[("scope", "01")]).await;
        assert_eq!(bad.status, 400);
        app.stop().await;
    }
    // Nothing was created by asking.
    let mut client = connect().await;
    let rows = client
        .query("SELECT 1 FROM pg_namespace WHERE nspname = $1", &[&never_set_up.deployment.name()])
        .await
        .unwrap();
    assert!(rows.is_empty());
    never_set_up.remove(&mut client).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn health_names_the_serving_generation_and_metrics_count_answers() {
    let mut client = connect().await;
    let fresh = Fresh::filled(&mut client, &scenario_world()).await;
    let app = spawn_api(&fresh.deployment).await;

    let health = app.get("/healthz", "/healthz", &[]).await;
    assert_eq!(health.status, 200, "{}", health.text);
    assert_eq!(health.json(), json!({"status": "ok", "generation": format!("{}_g1", fresh.deployment.name())}));

    app.get(REVIEWS, REVIEWS, &[("scope", "01"), ("as_of", "2025-12-31")]).await;
    app.get(REVIEWS, REVIEWS, &[("scope", "01"), ("as_of", "2025-12-31")]).await;
    app.get(REVIEWS, REVIEWS, &[("scope", "99"), ("as_of", "2025-12-31")]).await;
    app.get(
        SERIES,
        "/v1/units/01/series",
        &[("title", "learning_citizen"), ("from", "2025-01-01"), ("to", "2025-03-31")],
    )
    .await;
    let metrics = app.get("/metrics", "/metrics", &[]).await;
    assert_eq!(metrics.status, 200);
    assert!(metrics.header("content-type").unwrap().starts_with("application/openmetrics-text"));
    let text = &metrics.text;
    for line in [
        "hoctap_api_requests_answered_total{method=\"GET\",route=\"/v1/reviews\",status=\"200\"} 2",
        "hoctap_api_requests_answered_total{method=\"GET\",route=\"/v1/reviews\",status=\"404\"} 1",
        "hoctap_api_requests_answered_total{method=\"GET\",route=\"/v1/units/{code}/series\",status=\"200\"} 1",
        "hoctap_api_requests_answered_total{method=\"GET\",route=\"/healthz\",status=\"200\"} 1",
        "hoctap_api_request_duration_seconds_count{method=\"GET\",route=\"/v1/reviews\"} 3",
        "hoctap_api_postgres_connections_max 16",
    ] {
        assert!(text.lines().any(|l| l == line), "no line `{line}` in\n{text}");
    }
    assert!(text.contains("hoctap_api_postgres_connections{state=\"open\"}"), "{text}");
    assert!(text.trim_end().ends_with("# EOF"));
    // Unknown paths are counted under one route, not one per path.
    let nowhere = app.client.get(format!("http://{}/v1/nowhere/42", app.addr)).send().await.unwrap();
    assert_eq!(nowhere.status(), 404);
    let text = app.get("/metrics", "/metrics", &[]).await.text;
    assert!(text.contains("route=\"unmatched\",status=\"404\"} 1"), "{text}");
    assert!(!text.contains("nowhere"));

    app.stop().await;
    fresh.remove(&mut client).await;
}

/// `GET /v1/reviews?approved=N` is the embedded engine's approved review byte for byte (but for
/// `generated_at`): the review as known at the instant the approval froze, stating the decision,
/// while the plain review has moved on with the events recorded after it.
#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_approved_review_over_http_is_the_embedded_one_whatever_came_later() {
    let mut client = connect().await;
    let mut events = city(100, 3);
    let middle = events.len() / 2;
    let frozen = events[middle].recordedtime.unwrap();
    // Approved right after the middle event was recorded; the second half of the city comes after.
    let approval = hoctap_domain::Event::from_json_recorded(
        json!({
            "specversion": "1.0",
            "id": "9c2e4f1a-5b7d-4e3c-8a6f-1d2b3c4e5f60",
            "source": "/ubnd/01",
            "type": "vn.hoctap.review.approved.v1",
            "time": "2026-01-20T00:00:00+07:00",
            "subject": "01",
            "recordedtime": format_instant(frozen + 1),
            "data": {"scope": "01", "as_of": "2030-12-31", "known_at": format_instant(frozen),
                     "decision": {"number": "15/QĐ-UBND", "issuer": "UBND-01", "date": "2026-01-20"}}
        })
        .to_string()
        .as_bytes(),
    )
    .unwrap();
    events.insert(middle + 1, approval);
    let engine = engine_of(&events);
    let fresh = Fresh::filled(&mut client, &events).await;
    let app = spawn_api(&fresh.deployment).await;

    let answer = app.get(REVIEWS, REVIEWS, &[("approved", "15/QĐ-UBND")]).await;
    assert_eq!(answer.status, 200, "{}", answer.text);
    let mut expected = engine.approved_review("15/QĐ-UBND").unwrap();
    let generated = parse_instant(answer.json()["generated_at"].as_str().unwrap()).unwrap();
    hoctap_report::stamp(&mut expected, generated);
    assert_eq!(answer.text, hoctap_report::json(&expected));
    assert_eq!(answer.json()["approved"], json!({"number": "15/QĐ-UBND", "issuer": "UBND-01", "date": "2026-01-20"}));
    assert_eq!(answer.json()["known_at"], format_instant(frozen));

    // The plain review of the same date counts the second half too.
    let now = app.get(REVIEWS, REVIEWS, &[("scope", "01"), ("as_of", "2030-12-31")]).await.json();
    assert_ne!(now["units"], answer.json()["units"], "the later events change the figures");
    assert!(now["events"].as_u64() > answer.json()["events"].as_u64());

    let unknown = app.get(REVIEWS, REVIEWS, &[("approved", "99/QĐ-UBND")]).await;
    assert_eq!(unknown.status, 404, "{}", unknown.text);
    assert_eq!(unknown.json()["error"], engine.approved_review("99/QĐ-UBND").unwrap_err().to_string());
    let both = app.get(REVIEWS, REVIEWS, &[("approved", "15/QĐ-UBND"), ("scope", "01")]).await;
    assert_eq!((both.status, both.json()["parameter"].clone()), (400, json!("approved")), "{}", both.text);

    app.stop().await;
    fresh.remove(&mut client).await;
}
