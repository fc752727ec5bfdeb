//! The HTTP side: routes, authentication, content types, and one request from judgement to answer.

use crate::Source;
use crate::lease::{self, NotReady, Writer};
use crate::state::{Decoded, Judgement, SIZE_RULE, Verdict};
use crate::{Gateway, Inner};
use axum::body::Bytes;
use axum::error_handling::HandleErrorLayer;
use axum::extract::rejection::BytesRejection;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use governor::clock::DefaultClock;
use hoctap_domain::Event;
use hoctap_kafka::{DeadLetter, PublishError, Reason, Route, Written};
use hoctap_store::{Folded, StoreError};
use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::{HashMap, HashSet};
use tower::{BoxError, ServiceBuilder};
use uuid::Uuid;

/// One CloudEvent, structured mode (CloudEvents HTTP binding).
pub const SINGLE: &str = "application/cloudevents+json";
/// A JSON array of CloudEvents (CloudEvents HTTP binding, batched mode).
pub const BATCH: &str = "application/cloudevents-batch+json";

pub(crate) fn router(gateway: Gateway) -> Router {
    let limit = gateway.inner.max_body_bytes;
    let limits = &gateway.inner.limits;
    // Outermost first: a request over the concurrency bound is shed (503) before its body is read; a
    // request admitted is answered within the timeout. `/healthz` is outside both.
    let bounded = ServiceBuilder::new()
        .layer(HandleErrorLayer::new(overloaded))
        .load_shed()
        .concurrency_limit(limits.concurrent_requests.max(1))
        .timeout(limits.request_timeout);
    Router::new()
        .route("/v1/events", post(post_events).layer(bounded))
        .route("/healthz", get(healthz))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(gateway)
}

/// `ok` when this gateway holds the writer lease and a Kafka broker answers (within 2 s); else 503
/// with `Retry-After`: events cannot be accepted here now (a standby says so, so that a load balancer
/// sends requests to the writer). Outside the concurrency bound, so a busy gateway still answers it.
async fn healthz(State(gateway): State<Gateway>) -> Response {
    if !gateway.inner.lease.may_publish() {
        return standby(&gateway);
    }
    let producer = gateway.inner.producer.clone();
    match tokio::task::spawn_blocking(move || producer.reachable(std::time::Duration::from_secs(2))).await {
        Ok(Ok(())) => "ok".into_response(),
        Ok(Err(e)) => {
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                &format!("Kafka is unreachable ({e}): events cannot be accepted now"),
            );
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
        Err(e) => {
            tracing::error!(error = %e, "health check failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// The answer when the concurrency bound or the request timeout is hit: 503, retry later.
async fn overloaded(e: BoxError) -> Response {
    let message = if e.is::<tower::load_shed::error::Overloaded>() {
        "too many requests in flight; retry later"
    } else if e.is::<tower::timeout::error::Elapsed>() {
        "the request was not answered within the gateway's request timeout; events already judged are \
         still published and come back as duplicates on retry; retry later"
    } else {
        tracing::error!(error = %e, "request failed in the gateway's middleware");
        "internal error"
    };
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, message);
    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("5"));
    response
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Kind {
    Single,
    Batch,
}

/// The authenticated source. Extracted before the body is read, so an unauthenticated request is
/// answered 401 without the gateway reading its body.
struct Authenticated(Source);

impl FromRequestParts<Gateway> for Authenticated {
    type Rejection = Response;

    async fn from_request_parts(parts: &mut Parts, gateway: &Gateway) -> Result<Authenticated, Response> {
        let token = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(hoctap_tokens::bearer);
        match token.and_then(|t| gateway.inner.tokens.authenticate(t)) {
            Some(source) => match gateway.inner.rate.check_key(&source.name) {
                Ok(()) => Ok(Authenticated(source.clone())),
                Err(not_until) => {
                    let wait = not_until.wait_time_from(governor::clock::Clock::now(&DefaultClock::default()));
                    let seconds = wait.as_secs() + u64::from(wait.subsec_nanos() > 0);
                    let mut response = error(
                        StatusCode::TOO_MANY_REQUESTS,
                        &format!(
                            "source `{}` sent more than {} requests per second (burst {}); retry after {seconds} s",
                            source.name,
                            gateway.inner.limits.source_requests_per_second,
                            gateway.inner.limits.source_burst
                        ),
                    );
                    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(seconds.max(1)));
                    Err(response)
                }
            },
            None => {
                let (challenge, message) = match token {
                    None => ("Bearer realm=\"hoctap\"", "an Authorization: Bearer <token> header is required"),
                    Some(_) => ("Bearer realm=\"hoctap\", error=\"invalid_token\"", "the token is not known"),
                };
                let mut response = error(StatusCode::UNAUTHORIZED, message);
                response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
                Err(response)
            }
        }
    }
}

fn kind_of(headers: &HeaderMap) -> Option<Kind> {
    let media = headers.get(CONTENT_TYPE)?.to_str().ok()?.split(';').next()?.trim().to_ascii_lowercase();
    match media.as_str() {
        SINGLE => Some(Kind::Single),
        BATCH => Some(Kind::Batch),
        _ => None,
    }
}

fn error(status: StatusCode, message: &str) -> Response {
    (status, Json(serde_json::json!({ "error": message }))).into_response()
}

async fn post_events(
    State(gateway): State<Gateway>,
    Authenticated(source): Authenticated,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Response {
    let Some(kind) = kind_of(&headers) else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("Content-Type must be {SINGLE} (one event) or {BATCH} (a JSON array of events)"),
        );
    };
    let body = match body {
        Ok(body) => body,
        Err(e) if e.status() == StatusCode::PAYLOAD_TOO_LARGE => {
            let limit = gateway.inner.max_body_bytes;
            return error(
                StatusCode::PAYLOAD_TOO_LARGE,
                &format!("the body is larger than the gateway's limit of {limit} bytes; split the batch"),
            );
        }
        Err(e) => return error(e.status(), &e.body_text()),
    };
    // In a task of its own: once judged, a request is published and folded to the end even when the
    // client goes away or the request times out, so the state never misses an event that Kafka
    // acknowledged. Until then, a request given up on stops waiting (and frees its body): only the one
    // request holding the state outlives its answer, so memory stays within the concurrency bound.
    let (answer, answered) = tokio::sync::oneshot::channel();
    tokio::spawn(async move {
        let mut answer = answer;
        let response = handle(gateway, source, kind, body, &mut answer).await;
        // Nobody to answer when the request was given up on.
        let _ = answer.send(response);
    });
    match answered.await {
        Ok(response) => response,
        Err(_) => {
            tracing::error!("request handler failed");
            error(StatusCode::INTERNAL_SERVER_ERROR, "internal error")
        }
    }
}

/// The answer for a request's events.
#[derive(Debug, Default, Serialize)]
struct Answer {
    #[serde(skip_serializing_if = "Option::is_none")]
    error: Option<&'static str>,
    accepted: Vec<Uuid>,
    duplicates: Vec<Uuid>,
    refused: Vec<Refused>,
    /// Accepted events that will not count as they stand.
    warnings: Vec<Warned>,
}

/// A warning about an accepted event.
#[derive(Debug, Serialize)]
struct Warned {
    index: usize,
    id: String,
    field: &'static str,
    warning: &'static str,
    detail: String,
}

#[derive(Debug, Serialize)]
struct Refused {
    /// Position of the event in the batch (0 for a single event).
    index: usize,
    id: Option<String>,
    status: u16,
    field: String,
    rule: String,
    detail: String,
}

impl Refused {
    fn new(index: usize, status: u16, reason: Reason) -> Refused {
        Refused { index, id: reason.event_id, status, field: reason.field, rule: reason.rule, detail: reason.detail }
    }
}

const TOO_MANY: &str = "too many events";

/// How much of an event refused for its size its dead letter keeps.
const DEAD_LETTER_PREFIX: usize = 4096;

/// A JSON array of raw values that stops reading at the element after `max`: a batch over the limit
/// costs no more than the limit to refuse, however many elements it holds.
struct Bounded {
    max: usize,
}

impl Bounded {
    fn parse(body: &[u8], max: usize) -> Result<Vec<&RawValue>, serde_json::Error> {
        use serde::de::DeserializeSeed;
        let mut de = serde_json::Deserializer::from_slice(body);
        let items = Bounded { max }.deserialize(&mut de)?;
        de.end()?;
        Ok(items)
    }
}

impl<'de> serde::de::DeserializeSeed<'de> for Bounded {
    type Value = Vec<&'de RawValue>;

    fn deserialize<D: serde::Deserializer<'de>>(self, de: D) -> Result<Self::Value, D::Error> {
        de.deserialize_seq(self)
    }
}

impl<'de> serde::de::Visitor<'de> for Bounded {
    type Value = Vec<&'de RawValue>;

    fn expecting(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str("a JSON array of CloudEvents")
    }

    fn visit_seq<A: serde::de::SeqAccess<'de>>(self, mut seq: A) -> Result<Self::Value, A::Error> {
        let mut items = Vec::new();
        while let Some(item) = seq.next_element::<&'de RawValue>()? {
            if items.len() == self.max {
                return Err(serde::de::Error::custom(TOO_MANY));
            }
            items.push(item);
        }
        Ok(items)
    }
}

/// One request from its body to its answer. A request given up on (`answer` dropped: a timeout, the
/// client gone) before it is judged stops waiting for the state and is answered to nobody.
async fn handle(
    gateway: Gateway,
    source: Source,
    kind: Kind,
    body: Bytes,
    answer: &mut tokio::sync::oneshot::Sender<Response>,
) -> Response {
    let max_events = gateway.inner.limits.batch_events;
    let parsed: Vec<&RawValue>;
    let raws: Vec<&[u8]> = match kind {
        Kind::Single => vec![&body[..]],
        Kind::Batch => match Bounded::parse(&body, max_events) {
            Ok(items) => {
                parsed = items;
                parsed.iter().map(|r| r.get().as_bytes()).collect()
            }
            Err(e) if e.to_string().starts_with(TOO_MANY) => {
                return error(
                    StatusCode::PAYLOAD_TOO_LARGE,
                    &format!("a batch holds at most {max_events} events; this one holds more; split it"),
                );
            }
            // Position only: serde's message may quote the input, which may hold personal data.
            Err(e) => {
                return error(
                    StatusCode::BAD_REQUEST,
                    &format!(
                        "a batch is a JSON array of CloudEvents; this is not one (line {}, column {})",
                        e.line(),
                        e.column()
                    ),
                );
            }
        },
    };

    let inner = &gateway.inner;
    // Decoded before the lock: it needs no state.
    let decoded = match Decoded::new(&raws, inner.limits.event_bytes) {
        Ok(decoded) => decoded,
        Err(judgement) => return citizen_id_answer(&source, raws.len(), judgement),
    };
    let mut writer = tokio::select! {
        writer = inner.state.lock() => writer,
        () = answer.closed() => return error(StatusCode::SERVICE_UNAVAILABLE, "given up before it was judged"),
    };
    let Some(epoch) = inner.lease.epoch_to_publish() else {
        return standby(&gateway);
    };
    if let Err(e) = lease::ready(inner, &mut writer).await {
        if let NotReady::Store(StoreError::Fenced { epoch, .. }) = &e {
            inner.lease.lost(*epoch);
        }
        tracing::warn!(error = %e, "the gateway cannot judge now");
        return unavailable(inner, "the gateway cannot reach its state (PostgreSQL or the log) now; retry");
    }
    let Writer { db, ready } = &mut *writer;
    let Some(current) = ready.as_mut().filter(|r| r.epoch == epoch) else {
        return standby(&gateway);
    };
    let (ids, subjects) = decoded.lookups();
    let known = match db.known(&ids, &subjects).await {
        Ok(known) => known,
        Err(e) => {
            tracing::warn!(error = %e, "looking up a request's ids and subjects");
            return unavailable(inner, "the gateway cannot reach its state (PostgreSQL) now; retry");
        }
    };
    let state = &mut current.state;
    let mut verdicts = match state.judge(&source, &raws, &decoded, &known) {
        judgement @ Judgement::CitizenId(_) => return citizen_id_answer(&source, raws.len(), judgement),
        Judgement::Events(verdicts) => verdicts,
    };

    // Stamp in request order: the order in which they are handed to Kafka.
    for v in &mut verdicts {
        if let Verdict::New(event, _) = v {
            event.recordedtime = Some(state.stamp());
        }
    }
    let new: Vec<&Event> =
        verdicts.iter().filter_map(|v| if let Verdict::New(e, _) = v { Some(e) } else { None }).collect();
    // A retraction follows the event it names, also when that one came in this very batch.
    let mut batch_reference: HashSet<Uuid> =
        new.iter().filter(|e| Route::is_reference_type(e.event_type())).map(|e| e.id).collect();
    let routed: Vec<(Route, &Event)> = new
        .iter()
        .map(|e| {
            let route = state.route(e, &batch_reference);
            if route == Route::Reference {
                batch_reference.insert(e.id);
            }
            (route, *e)
        })
        .collect();
    let letters: Vec<DeadLetter> = verdicts
        .iter()
        .enumerate()
        .filter_map(|(i, v)| match v {
            // An event too large for the log is too large for the dead-letter topic: its beginning only.
            Verdict::Refused { reason, .. } if reason.rule == SIZE_RULE => Some(
                DeadLetter::new(&raws[i][..DEAD_LETTER_PREFIX.min(raws[i].len())], reason.clone())
                    .with_source(&source.name),
            ),
            Verdict::Refused { reason, .. } => Some(DeadLetter::new(raws[i], reason.clone()).with_source(&source.name)),
            _ => None,
        })
        .collect();

    let published = match inner.producer.publish_dead_letters(&letters).await {
        Ok(()) => inner.producer.publish_routed(&routed).await,
        Err(e) => Err(e),
    };
    match published {
        Ok(written) => {
            for (route, event) in &routed {
                state.fold(event, *route);
            }
            let folded = remembered(&routed, &written, &inner.topics.events);
            match db.record(epoch, &folded).await {
                Ok(()) => {}
                Err(e) => {
                    if let StoreError::Fenced { .. } = e {
                        inner.lease.lost(epoch);
                        *ready = None;
                    } else {
                        current.stale = true;
                    }
                    tracing::warn!(source = %source.name, error = %e, "Kafka took a request's records but PostgreSQL did not remember them");
                    return unavailable(
                        inner,
                        "the log took the events but the gateway could not record them; nothing is claimed accepted; \
                         retry: those in the log come back as duplicates",
                    );
                }
            }
        }
        Err(e) => {
            // What Kafka did take is in the log: know it, so that the source's retry finds it a duplicate.
            if let PublishError::Delivery { delivered, .. } = &e {
                for (route, event) in delivered.iter().filter_map(|&i| routed.get(i)) {
                    state.fold(event, *route);
                }
                // The events topic's records among them are read back from the log before the next judgement.
                current.stale = true;
            }
            drop(writer);
            tracing::warn!(source = %source.name, error = %e, "Kafka did not acknowledge a request's records");
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the log did not acknowledge the events; nothing was accepted; retry",
            );
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("5"));
            return response;
        }
    }
    drop(writer);

    let mut answer = Answer::default();
    let mut single_status = StatusCode::ACCEPTED;
    for (i, v) in verdicts.into_iter().enumerate() {
        match v {
            Verdict::New(e, warnings) => {
                answer.accepted.push(e.id);
                answer.warnings.extend(warnings.into_iter().map(|w| Warned {
                    index: i,
                    id: w.event_id,
                    field: w.field,
                    warning: w.warning.as_str(),
                    detail: w.detail,
                }));
            }
            Verdict::Duplicate(id) => answer.duplicates.push(id),
            Verdict::Refused { status, reason } => {
                single_status = StatusCode::from_u16(status).unwrap_or(StatusCode::UNPROCESSABLE_ENTITY);
                answer.refused.push(Refused::new(i, status, reason));
            }
        }
    }
    tracing::info!(
        source = %source.name,
        accepted = answer.accepted.len(),
        duplicates = answer.duplicates.len(),
        refused = answer.refused.len(),
        "request published"
    );
    let status = if kind == Kind::Single { single_status } else { StatusCode::ACCEPTED };
    (status, Json(answer)).into_response()
}

/// The answer to a request holding a raw citizen-ID number: 422, nothing published.
fn citizen_id_answer(source: &Source, events: usize, judgement: Judgement) -> Response {
    let Judgement::CitizenId(found) = judgement else { unreachable!("called for a citizen-ID judgement only") };
    tracing::info!(source = %source.name, events, "request refused: raw citizen-ID number");
    let answer = Answer {
        error: Some("a raw citizen-ID number (CCCD) was found; nothing in this request was accepted"),
        refused: found.into_iter().map(|(i, reason)| Refused::new(i, 422, reason)).collect(),
        ..Answer::default()
    };
    (StatusCode::UNPROCESSABLE_ENTITY, Json(answer)).into_response()
}

/// 503 with `Retry-After`: nothing was accepted.
fn unavailable(inner: &Inner, message: &str) -> Response {
    let mut response = error(StatusCode::SERVICE_UNAVAILABLE, message);
    response.headers_mut().insert(RETRY_AFTER, HeaderValue::from(inner.lease.retry_after()));
    response
}

/// The answer of a gateway that does not hold the writer lease (another one does).
fn standby(gateway: &Gateway) -> Response {
    unavailable(
        &gateway.inner,
        "standby: another gateway holds the writer lease; this one writes once it is released or expires; retry",
    )
}

/// What PostgreSQL remembers of a request's records once Kafka took them: the events topic's ids,
/// digests, subjects and placements, and the offsets after them.
fn remembered<'a>(routed: &[(Route, &'a Event)], written: &[Written], events_topic: &'a str) -> Folded<'a> {
    let mut folded = Folded::default();
    let mut next: HashMap<(&str, i32), i64> = HashMap::new();
    for ((route, event), w) in routed.iter().zip(written) {
        if let Some(r) = event.recordedtime {
            folded.last_recorded = folded.last_recorded.max(r);
        }
        if *route != Route::Events {
            continue;
        }
        let n = next.entry((events_topic, w.partition)).or_insert(0);
        *n = (*n).max(w.offset + 1);
        folded.events.push((event.id, event.content_digest(), &event.subject));
        if let Some(commune) = crate::places::placement(event) {
            folded.placements.push((&event.subject, commune));
        }
    }
    folded.next_offsets = next;
    folded
}
