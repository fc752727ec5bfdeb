//! The HTTP side: routes, authentication, content types, and one request from judgement to answer.

use crate::Gateway;
use crate::state::{Judgement, Verdict};
use crate::tokens::Source;
use axum::body::Bytes;
use axum::extract::{DefaultBodyLimit, FromRequestParts, State};
use axum::http::header::{AUTHORIZATION, CONTENT_TYPE, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::request::Parts;
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::response::{IntoResponse, Response};
use axum::routing::{get, post};
use axum::{Json, Router};
use hoctap_domain::Event;
use hoctap_kafka::{DeadLetter, PublishError, Reason, Route};
use serde::Serialize;
use serde_json::value::RawValue;
use std::collections::HashSet;
use uuid::Uuid;

/// One CloudEvent, structured mode (CloudEvents HTTP binding).
pub const SINGLE: &str = "application/cloudevents+json";
/// A JSON array of CloudEvents (CloudEvents HTTP binding, batched mode).
pub const BATCH: &str = "application/cloudevents-batch+json";

pub(crate) fn router(gateway: Gateway) -> Router {
    let limit = gateway.inner.max_body_bytes;
    Router::new()
        .route("/v1/events", post(post_events))
        .route("/healthz", get(|| async { "ok" }))
        .layer(DefaultBodyLimit::max(limit))
        .with_state(gateway)
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
        let token = parts.headers.get(AUTHORIZATION).and_then(|v| v.to_str().ok()).and_then(|v| {
            let (scheme, token) = v.trim().split_once(' ')?;
            scheme.eq_ignore_ascii_case("bearer").then(|| token.trim())
        });
        match token.and_then(|t| gateway.inner.tokens.authenticate(t)) {
            Some(source) => Ok(Authenticated(source.clone())),
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
    body: Bytes,
) -> Response {
    let Some(kind) = kind_of(&headers) else {
        return error(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            &format!("Content-Type must be {SINGLE} (one event) or {BATCH} (a JSON array of events)"),
        );
    };
    // In a task of its own: once judged, a request is published and folded to the end even when the
    // client goes away, so the state never misses an event that Kafka acknowledged.
    match tokio::spawn(handle(gateway, source, kind, body)).await {
        Ok(response) => response,
        Err(e) => {
            tracing::error!(error = %e, "request handler failed");
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

async fn handle(gateway: Gateway, source: Source, kind: Kind, body: Bytes) -> Response {
    let parsed: Vec<&RawValue>;
    let raws: Vec<&[u8]> = match kind {
        Kind::Single => vec![&body[..]],
        Kind::Batch => match serde_json::from_slice::<Vec<&RawValue>>(&body) {
            Ok(items) => {
                parsed = items;
                parsed.iter().map(|r| r.get().as_bytes()).collect()
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
    let mut state = inner.state.lock().await;
    let mut verdicts = match state.judge(&source, &raws) {
        Judgement::CitizenId(found) => {
            drop(state);
            tracing::info!(source = %source.name, events = raws.len(), "request refused: raw citizen-ID number");
            let answer = Answer {
                error: Some("a raw citizen-ID number (CCCD) was found; nothing in this request was accepted"),
                refused: found.into_iter().map(|(i, reason)| Refused::new(i, 422, reason)).collect(),
                ..Answer::default()
            };
            return (StatusCode::UNPROCESSABLE_ENTITY, Json(answer)).into_response();
        }
        Judgement::Events(verdicts) => verdicts,
    };

    // Stamp in request order: the order in which they are handed to Kafka.
    for v in &mut verdicts {
        if let Verdict::New(event) = v {
            event.recordedtime = Some(state.stamp());
        }
    }
    let new: Vec<&Event> =
        verdicts.iter().filter_map(|v| if let Verdict::New(e) = v { Some(e) } else { None }).collect();
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
            Verdict::Refused { reason, .. } => Some(DeadLetter::new(raws[i], reason.clone()).with_source(&source.name)),
            _ => None,
        })
        .collect();

    let published = match inner.producer.publish_dead_letters(&letters).await {
        Ok(()) => inner.producer.publish_routed(&routed).await,
        Err(e) => Err(e),
    };
    match published {
        Ok(()) => {
            for (route, event) in &routed {
                state.fold(event, *route);
            }
        }
        Err(e) => {
            // What Kafka did take is in the log: know it, so that the source's retry finds it a duplicate.
            if let PublishError::Delivery { delivered, .. } = &e {
                for (route, event) in delivered.iter().filter_map(|&i| routed.get(i)) {
                    state.fold(event, *route);
                }
            }
            drop(state);
            tracing::warn!(source = %source.name, error = %e, "Kafka did not acknowledge a request's records");
            let mut response = error(
                StatusCode::SERVICE_UNAVAILABLE,
                "the log did not acknowledge the events; nothing was accepted; retry",
            );
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("5"));
            return response;
        }
    }
    drop(state);

    let mut answer = Answer::default();
    let mut single_status = StatusCode::ACCEPTED;
    for (i, v) in verdicts.into_iter().enumerate() {
        match v {
            Verdict::New(e) => answer.accepted.push(e.id),
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
