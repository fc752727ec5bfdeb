//! What every test of the API needs: a deployment of its own in database `test`, filled without Kafka;
//! the API on port 0; an HTTP client whose every answer is checked against `docs/openapi.json`.
//!
//! PostgreSQL must run at 127.0.0.1:5432 (trust auth): a test fails, never skips, when it cannot
//! connect. The gateway's tests in `openapi.rs` need tansu the same way.

use hoctap_domain::time::parse_instant;
use hoctap_domain::{Engine, Event};
use hoctap_store::{Consumed, Deployment, Projection};
use serde_json::Value;
use std::collections::BTreeSet;
use std::net::SocketAddr;
use std::sync::{Arc, LazyLock, Mutex};
use tokio::sync::oneshot;
use tokio_postgres::Client;

pub const PG: &str = hoctap_tests::PG_URL;

pub async fn connect() -> Client {
    hoctap_tests::pg_connect().await
}

/// A deployment with a random name, dropped (with its dashboard role) by [`Fresh::remove`] or, when a
/// test panics first, by `Drop`.
pub struct Fresh {
    pub deployment: Deployment,
    removed: bool,
}

impl Fresh {
    /// A name only: nothing is created (a deployment "never set up").
    pub fn named() -> Fresh {
        let name = format!("hoctap_api_{:012x}", fastrand::u64(..) >> 16);
        Fresh { deployment: Deployment::new(&name).unwrap(), removed: false }
    }

    /// A deployment set up and filled with `events`, applied in batches as a projector would.
    pub async fn filled(client: &mut Client, events: &[Event]) -> Fresh {
        let fresh = Fresh::named();
        let mut projection = Projection::load_serving(client, &fresh.deployment).await.unwrap();
        let consumed: Vec<Consumed> = events
            .iter()
            .enumerate()
            .map(|(i, e)| Consumed { topic: "events".into(), partition: 0, offset: i as i64, event: e.clone() })
            .collect();
        for batch in consumed.chunks(1000) {
            projection.apply_batch(client, batch).await.unwrap();
        }
        fresh
    }

    pub async fn remove(mut self, client: &mut Client) {
        drop_deployment(client, &self.deployment).await;
        self.removed = true;
    }
}

async fn drop_deployment(client: &mut Client, deployment: &Deployment) {
    deployment.drop_all(client).await.unwrap();
}

impl Drop for Fresh {
    fn drop(&mut self) {
        if self.removed {
            return;
        }
        let deployment = self.deployment.clone();
        // The test's runtime cannot be blocked on: a runtime of its own, on a thread of its own.
        let dropped = std::thread::spawn(move || {
            let rt = tokio::runtime::Builder::new_current_thread().enable_all().build().unwrap();
            rt.block_on(async { drop_deployment(&mut connect().await, &deployment).await })
        })
        .join();
        if dropped.is_err() {
            eprintln!("deployment {} is left in database `test`", self.deployment.name());
        }
    }
}

/// The generated city (duplicates, retractions and late events included), stamped with strictly
/// increasing `recordedtime`s in generation order, as the gateway would.
pub fn city(citizens: u64, seed: u64) -> Vec<Event> {
    hoctap_gen::generate_stamped(
        &hoctap_gen::Config::new(citizens, seed),
        parse_instant("2026-01-01T00:00:00Z").unwrap(),
        1_000,
    )
}

pub fn engine_of(events: &[Event]) -> Engine {
    let mut engine = Engine::new();
    for e in events {
        engine.apply(e);
    }
    engine
}

/// One answer, as read off the wire.
#[derive(Debug)]
pub struct Answer {
    pub status: u16,
    pub headers: reqwest::header::HeaderMap,
    pub text: String,
}

impl Answer {
    pub fn json(&self) -> Value {
        serde_json::from_str(&self.text).unwrap_or_else(|e| panic!("not JSON ({e}): {}", self.text))
    }

    pub fn header(&self, name: &str) -> Option<&str> {
        self.headers.get(name).and_then(|v| v.to_str().ok())
    }
}

/// (path template, method, status) of an answer, for the coverage of the document.
pub type Exercised = (String, String, u16);

/// The readers every test API knows: a national one (the token [`App::get`] sends), Hà Nội's (01)
/// and Hồ Chí Minh City's (79).
pub const NATIONAL_READER: &str = "reader-token-national";
pub const HANOI_READER: &str = "reader-token-hanoi";
pub const HCM_READER: &str = "reader-token-hcm";

pub fn readers() -> hoctap_api::Tokens {
    let text =
        [("bo-gddt", "*", NATIONAL_READER), ("so-gddt-hanoi", "01", HANOI_READER), ("so-gddt-hcm", "79", HCM_READER)]
            .iter()
            .map(|(name, province, token)| {
                format!(
                    "[[reader]]\nname = \"{name}\"\nprovince = \"{province}\"\ntoken_sha256 = \"{}\"\n",
                    hoctap_api::hash_token(token)
                )
            })
            .collect::<String>();
    hoctap_api::Tokens::from_toml(&text, hoctap_api::Holders::Readers).unwrap()
}

/// A running API on port 0 and a client that checks every answer against the document. `client`
/// sends the national reader's token with every request; [`App::get_as`] sends another or none.
pub struct App {
    pub addr: SocketAddr,
    pub client: reqwest::Client,
    pub exercised: Mutex<BTreeSet<Exercised>>,
    stop: Option<oneshot::Sender<()>>,
    server: Option<tokio::task::JoinHandle<Result<(), hoctap_api::ApiError>>>,
}

pub async fn spawn_api(deployment: &Deployment) -> App {
    spawn_api_on(PG, deployment).await
}

pub async fn spawn_api_on(postgres: &str, deployment: &Deployment) -> App {
    spawn_api_with(hoctap_api::ApiConfig::new(postgres, deployment.clone())).await
}

/// The API with `config`; with [`readers`] when it names none.
pub async fn spawn_api_with(mut config: hoctap_api::ApiConfig) -> App {
    if config.readers.is_empty() {
        config.readers = readers();
    }
    let listener = tokio::net::TcpListener::bind("127.0.0.1:0").await.unwrap();
    let addr = listener.local_addr().unwrap();
    let (stop, stopped) = oneshot::channel::<()>();
    let server = tokio::spawn(hoctap_api::serve(config, listener, async {
        let _ = stopped.await;
    }));
    let mut headers = reqwest::header::HeaderMap::new();
    headers.insert(
        reqwest::header::AUTHORIZATION,
        reqwest::header::HeaderValue::from_str(&format!("Bearer {NATIONAL_READER}")).unwrap(),
    );
    let client = reqwest::Client::builder().default_headers(headers).build().unwrap();
    App { addr, client, exercised: Mutex::default(), stop: Some(stop), server: Some(server) }
}

impl App {
    /// A client of a server running elsewhere (`hoctap serve` as a process, at `base`).
    pub fn at(base: &str) -> App {
        let addr = base.trim_start_matches("http://").parse().unwrap_or_else(|e| panic!("{base}: {e}"));
        App { addr, client: reqwest::Client::new(), exercised: Mutex::default(), stop: None, server: None }
    }

    /// `POST path` with `body` sent as `content_type` (and `origin` as the `Origin` header), checked
    /// like [`App::get`].
    pub async fn post(
        &self,
        template: &str,
        path: &str,
        content_type: &str,
        body: String,
        origin: Option<&str>,
    ) -> Answer {
        let mut request = self
            .client
            .post(format!("http://{}{path}", self.addr))
            .header(reqwest::header::CONTENT_TYPE, content_type)
            .body(body);
        if let Some(origin) = origin {
            request = request.header(reqwest::header::ORIGIN, origin);
        }
        let answer = read(request.send().await.unwrap_or_else(|e| panic!("POST {path}: {e}"))).await;
        self.check("post", template, &answer);
        answer
    }

    /// `GET path` with `query`, checked against the document's operation for `template` (the path as
    /// the document writes it, e.g. `/v1/units/{code}/series`).
    pub async fn get(&self, template: &str, path: &str, query: &[(&str, &str)]) -> Answer {
        let response = self
            .client
            .get(format!("http://{}{path}", self.addr))
            .query(query)
            .send()
            .await
            .unwrap_or_else(|e| panic!("GET {path}: {e}"));
        let answer = read(response).await;
        self.check("get", template, &answer);
        answer
    }

    /// `GET path` with `query` and `authorization` as the `Authorization` header (none: `None`),
    /// checked like [`App::get`].
    pub async fn get_as(
        &self,
        authorization: Option<&str>,
        template: &str,
        path: &str,
        query: &[(&str, &str)],
    ) -> Answer {
        let mut request = reqwest::Client::new().get(format!("http://{}{path}", self.addr)).query(query);
        if let Some(value) = authorization {
            request = request.header(reqwest::header::AUTHORIZATION, value);
        }
        let answer = read(request.send().await.unwrap_or_else(|e| panic!("GET {path}: {e}")));
        let answer = answer.await;
        self.check("get", template, &answer);
        answer
    }

    /// `GET` of a raw path and query string (to send what `query` cannot, e.g. a parameter twice).
    pub async fn get_raw(&self, template: &str, path_and_query: &str) -> Answer {
        let response = self.client.get(format!("http://{}{path_and_query}", self.addr)).send().await.unwrap();
        let answer = read(response).await;
        self.check("get", template, &answer);
        answer
    }

    pub fn check(&self, method: &str, template: &str, answer: &Answer) {
        OPENAPI.check(method, template, answer);
        self.exercised.lock().unwrap().insert((template.to_owned(), method.to_owned(), answer.status));
    }

    pub async fn stop(mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
            self.server.take().unwrap().await.unwrap().unwrap();
        }
    }
}

pub async fn read(response: reqwest::Response) -> Answer {
    let status = response.status().as_u16();
    let headers = response.headers().clone();
    let text = response.text().await.unwrap();
    Answer { status, headers, text }
}

/// `docs/openapi.json`, read once.
pub static OPENAPI: LazyLock<OpenApi> = LazyLock::new(OpenApi::load);

pub struct OpenApi {
    pub doc: Value,
    /// `components`, with every object schema that lists `properties` and says nothing of others made
    /// closed: the document lets clients expect more fields, the tests let the services send no field
    /// the document does not describe.
    strict_components: Arc<Value>,
}

impl OpenApi {
    fn load() -> OpenApi {
        let path = concat!(env!("CARGO_MANIFEST_DIR"), "/../../docs/openapi.json");
        let text = std::fs::read_to_string(path).unwrap_or_else(|e| panic!("{path}: {e}"));
        let doc: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path} is not JSON: {e}"));
        let mut components = doc["components"].clone();
        close_objects(&mut components);
        OpenApi { doc, strict_components: Arc::new(components) }
    }

    /// Follows a local `$ref` (`#/components/...`) to what it names.
    pub fn resolve<'a>(&'a self, node: &'a Value) -> &'a Value {
        match node.get("$ref").and_then(Value::as_str) {
            Some(r) => {
                let pointer = r.strip_prefix('#').unwrap_or_else(|| panic!("non-local $ref {r}"));
                self.resolve(self.doc.pointer(pointer).unwrap_or_else(|| panic!("$ref {r} names nothing")))
            }
            None => node,
        }
    }

    /// Every (path template, method, status) the document describes.
    pub fn operations(&self) -> BTreeSet<Exercised> {
        let mut out = BTreeSet::new();
        for (path, item) in self.doc["paths"].as_object().unwrap() {
            for (method, op) in item.as_object().unwrap() {
                if let Some(responses) = op.get("responses").and_then(Value::as_object) {
                    for status in responses.keys() {
                        out.insert((path.clone(), method.clone(), status.parse().unwrap()));
                    }
                }
            }
        }
        out
    }

    /// Panics unless `answer` is one the document describes for `method` on `template`: a documented
    /// status, a documented media type, the documented headers, a body valid against the schema.
    pub fn check(&self, method: &str, template: &str, answer: &Answer) {
        let what = format!("{} {template} → {}", method.to_uppercase(), answer.status);
        let op = self.doc["paths"]
            .get(template)
            .and_then(|item| item.get(method))
            .unwrap_or_else(|| panic!("{what}: the document has no such operation"));
        let response = op["responses"]
            .get(answer.status.to_string())
            .map(|r| self.resolve(r))
            .unwrap_or_else(|| panic!("{what}: status not documented; body: {}", answer.text));
        for (name, header) in response.get("headers").and_then(Value::as_object).into_iter().flatten() {
            let value = answer.header(name).unwrap_or_else(|| panic!("{what}: documented header {name} missing"));
            if self.resolve(header)["schema"]["type"] == "integer" {
                assert!(value.parse::<u64>().is_ok(), "{what}: header {name} `{value}` is not an integer");
            }
        }
        let media =
            answer.header("content-type").map(|c| c.split(';').next().unwrap_or("").trim().to_ascii_lowercase());
        let Some(content) = response.get("content").and_then(Value::as_object) else {
            assert!(answer.text.is_empty(), "{what}: a body where the document has none: {}", answer.text);
            return;
        };
        let media = media.unwrap_or_else(|| panic!("{what}: no Content-Type"));
        let schema = content
            .get(&media)
            .map(|c| &c["schema"])
            .unwrap_or_else(|| panic!("{what}: media type {media} not documented (only {:?})", content.keys()));
        let instance = if media == "application/json" {
            serde_json::from_str(&answer.text).unwrap_or_else(|e| panic!("{what}: not JSON ({e}): {}", answer.text))
        } else {
            Value::String(answer.text.clone())
        };
        let validator = self.validator(schema);
        let errors: Vec<String> =
            validator.iter_errors(&instance).map(|e| format!("{} at {}", e, e.instance_path())).collect();
        assert!(
            errors.is_empty(),
            "{what}: the body does not match the document:\n{}\nbody: {}",
            errors.join("\n"),
            answer.text
        );
    }

    /// A validator of `schema` (a schema object of the document), with `#/components/...` resolvable:
    /// the closed components ride along in the root resource.
    pub fn validator(&self, schema: &Value) -> jsonschema::Validator {
        let mut root = match schema {
            Value::Object(map) => map.clone(),
            other => panic!("a schema object expected, not {other}"),
        };
        root.insert("components".into(), (*self.strict_components).clone());
        jsonschema::options()
            .with_draft(jsonschema::Draft::Draft202012)
            .should_validate_formats(true)
            .build(&Value::Object(root))
            .unwrap_or_else(|e| panic!("schema {schema} does not compile: {e}"))
    }
}

/// Adds `additionalProperties: false` to every object schema that lists `properties` and leaves
/// others open.
fn close_objects(node: &mut Value) {
    match node {
        Value::Object(map) => {
            if map.get("properties").is_some_and(Value::is_object) && !map.contains_key("additionalProperties") {
                map.insert("additionalProperties".into(), Value::Bool(false));
            }
            for (key, value) in map.iter_mut() {
                // Property names are not schemas; their values are.
                if key == "properties" {
                    if let Value::Object(props) = value {
                        props.values_mut().for_each(close_objects);
                    }
                } else {
                    close_objects(value);
                }
            }
        }
        Value::Array(items) => items.iter_mut().for_each(close_objects),
        _ => {}
    }
}

/// Every `$ref` string in `node`.
pub fn refs(node: &Value, out: &mut Vec<String>) {
    match node {
        Value::Object(map) => {
            if let Some(Value::String(r)) = map.get("$ref") {
                out.push(r.clone());
            }
            map.values().for_each(|v| refs(v, out));
        }
        Value::Array(items) => items.iter().for_each(|v| refs(v, out)),
        _ => {}
    }
}
