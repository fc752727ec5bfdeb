//! The HTTP side: routes, query parameters, and how store errors become statuses.

use crate::answers::{Answers, Asked, Embedded};
use crate::dates::{MAX_POINTS, Series, Step, dates};
use crate::{Api, metrics};
use axum::body::Bytes;
use axum::extract::Request;
use axum::extract::rejection::{BytesRejection, QueryRejection};
use axum::extract::{DefaultBodyLimit, Path, Query, State};
use axum::http::header::{ALLOW, AUTHORIZATION, CONTENT_TYPE, HOST, ORIGIN, RETRY_AFTER, WWW_AUTHENTICATE};
use axum::http::{HeaderMap, HeaderValue, StatusCode};
use axum::middleware::Next;
use axum::response::{IntoResponse, Response};
use axum::routing::get;
use axum::{Json, Router, middleware};
use hoctap_domain::codes::Title;
use hoctap_domain::event::Decision;
use hoctap_domain::time::{format_instant, parse_known_at};
use hoctap_domain::{Day, QueryError};
use hoctap_store::{Schema, StoreError};
use hoctap_tokens::{Holder, Scope, Tokens};
use serde::{Deserialize, Serialize};
use tokio_postgres::error::SqlState;

/// The routes every server answers, over any source of [`Answers`]: the dashboard and `/v1/…`.
fn answering<A: Answers>() -> Router<A> {
    Router::new()
        .route("/", get(crate::dashboard::index))
        .route("/dashboard.js", get(crate::dashboard::script))
        .route("/dashboard.css", get(crate::dashboard::style))
        .route("/templates/{file}", get(crate::dashboard::template))
        .route("/v1/reviews", get(reviews::<A>))
        .route("/v1/reviews/diff", get(diff::<A>))
        .route("/v1/units", get(units::<A>))
        .route("/v1/units/{code}/series", get(series::<A>))
        .route(
            "/v1/approvals",
            get(approvals::<A>).post(approve::<A>).layer(DefaultBodyLimit::max(APPROVAL_BODY_LIMIT)),
        )
}

/// The largest body `POST /v1/approvals` reads: an approval is a few hundred bytes.
const APPROVAL_BODY_LIMIT: usize = 16 * 1024;

fn no_such_path() -> Failure {
    Failure::NotFound("no such path".into())
}

/// `hoctap api`: the shared routes within the request timeout, `/healthz` and `/metrics`, request
/// metrics around everything.
pub(crate) fn router(api: Api) -> Router {
    answering::<Api>()
        .route_layer(middleware::from_fn_with_state(api.clone(), timeout))
        .route("/healthz", get(healthz))
        .route("/metrics", get(metrics))
        .fallback(|| async { no_such_path() })
        .layer(middleware::from_fn_with_state(api.clone(), metrics::track))
        .with_state(api)
}

/// `hoctap serve`: the shared routes answered from an engine in memory.
pub(crate) fn embedded_router(embedded: Embedded) -> Router {
    answering::<Embedded>().fallback(|| async { no_such_path() }).with_state(embedded)
}

/// Answers 503 when the request is not answered within [`crate::ApiConfig::request_timeout`]. The
/// request is dropped: its connection goes back to the pool once the statement in flight ends (within
/// the statement timeout).
async fn timeout(State(api): State<Api>, request: Request, next: Next) -> Response {
    let limit = api.inner.request_timeout;
    match tokio::time::timeout(limit, next.run(request)).await {
        Ok(response) => response,
        Err(_) => {
            tracing::warn!(timeout = ?limit, "request timed out");
            Failure::Unavailable(format!(
                "the request was not answered within the API's request timeout ({} ms); retry later",
                limit.as_millis()
            ))
            .into_response()
        }
    }
}

/// Why a request gets no answer; each variant is one status and the JSON body
/// `{"error": "...", "parameter": "..."}` (`parameter` only for [`Failure::Parameter`]).
#[derive(Debug)]
pub enum Failure {
    /// 400: one query parameter is missing or invalid.
    Parameter { parameter: &'static str, message: String },
    /// 400: the query string itself does not parse (e.g. a parameter given twice).
    Query(String),
    /// 401: no bearer token, or one no reader holds (`invalid`); the body names the rule `token`.
    Unauthenticated { invalid: bool },
    /// 403: the reader is allowed another province than the unit asked about; the rule `province`.
    Forbidden(String),
    /// 404: the unit is unknown or not in force (or the path does not exist).
    NotFound(String),
    /// 404: the domain cannot answer the question (unknown scope, not in force, nothing recorded by
    /// the known-at); the message is the domain's.
    Unanswered(hoctap_domain::QueryError),
    /// 403: this server records no approvals; the message says what does (the rule `approvals`).
    NotRecording(String),
    /// 403: a page of another origin posted (the rule `origin`).
    ForeignOrigin(String),
    /// 400, 413 or 415: the request's body is not an approval (malformed, too large, not JSON).
    Body(StatusCode, String),
    /// 400: a field of the body is invalid (`field` names it).
    Field { field: &'static str, message: String },
    /// 409 (`approval_conflict`: the number approves another review) or 422: the domain refused the
    /// event; the body names the rule and the field.
    Refused(hoctap_domain::Refusal),
    /// 422: the review asked cannot be approved (e.g. the scope is not in force on the date).
    Unapprovable(String),
    /// 503: PostgreSQL is unreachable or the deployment has no read models yet, or the embedded log is
    /// being written by another process; retry later.
    Unavailable(String),
    /// 500: a bug or a corrupt read model; details are in the log only.
    Internal,
}

#[derive(Serialize)]
struct ErrorBody<'a> {
    error: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    parameter: Option<&'static str>,
    /// The rule refused: of access (`token`, `province`, `origin`, `approvals`) or of the domain
    /// (`approval_conflict`, …).
    #[serde(skip_serializing_if = "Option::is_none")]
    rule: Option<&'static str>,
    /// Where in the event the domain found the problem (`data.decision.number`).
    #[serde(skip_serializing_if = "Option::is_none")]
    field: Option<&'a str>,
}

impl IntoResponse for Failure {
    fn into_response(self) -> Response {
        let (status, message, parameter, rule) = match &self {
            Failure::Parameter { parameter, message } => {
                (StatusCode::BAD_REQUEST, message.as_str(), Some(*parameter), None)
            }
            Failure::Query(message) => (StatusCode::BAD_REQUEST, message.as_str(), None, None),
            Failure::Unauthenticated { invalid: false } => (
                StatusCode::UNAUTHORIZED,
                "a reader's token is required: send an Authorization: Bearer <token> header",
                None,
                Some("token"),
            ),
            Failure::Unauthenticated { invalid: true } => {
                (StatusCode::UNAUTHORIZED, "the token is not a reader's token", None, Some("token"))
            }
            Failure::Forbidden(message) => (StatusCode::FORBIDDEN, message.as_str(), None, Some("province")),
            Failure::NotFound(message) => (StatusCode::NOT_FOUND, message.as_str(), None, None),
            Failure::Unanswered(error) => {
                let body = ErrorBody { error: &error.to_string(), parameter: None, rule: None, field: None };
                return (StatusCode::NOT_FOUND, Json(body)).into_response();
            }
            Failure::Refused(refusal) => {
                let status = match refusal.rule {
                    hoctap_domain::Rule::ApprovalConflict => StatusCode::CONFLICT,
                    _ => StatusCode::UNPROCESSABLE_ENTITY,
                };
                let (error, rule) = (refusal.to_string(), Some(refusal.rule.as_str()));
                let body = ErrorBody { error: &error, parameter: None, rule, field: Some(&refusal.field) };
                return (status, Json(body)).into_response();
            }
            Failure::NotRecording(message) => (StatusCode::FORBIDDEN, message.as_str(), None, Some("approvals")),
            Failure::ForeignOrigin(message) => (StatusCode::FORBIDDEN, message.as_str(), None, Some("origin")),
            Failure::Body(status, message) => (*status, message.as_str(), None, None),
            Failure::Field { field, message } => {
                let body = ErrorBody { error: message, parameter: None, rule: None, field: Some(*field) };
                return (StatusCode::BAD_REQUEST, Json(body)).into_response();
            }
            Failure::Unapprovable(message) => (StatusCode::UNPROCESSABLE_ENTITY, message.as_str(), None, None),
            Failure::Unavailable(message) => (StatusCode::SERVICE_UNAVAILABLE, message.as_str(), None, None),
            Failure::Internal => (StatusCode::INTERNAL_SERVER_ERROR, "internal error", None, None),
        };
        let mut response = (status, Json(ErrorBody { error: message, parameter, rule, field: None })).into_response();
        match self {
            Failure::Unavailable(_) => {
                response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("5"));
            }
            Failure::Unauthenticated { invalid } => {
                let challenge = if invalid {
                    "Bearer realm=\"hoctap\", error=\"invalid_token\""
                } else {
                    "Bearer realm=\"hoctap\""
                };
                response.headers_mut().insert(WWW_AUTHENTICATE, HeaderValue::from_static(challenge));
            }
            _ => {}
        }
        response
    }
}

impl Failure {
    fn parameter(parameter: &'static str, message: impl Into<String>) -> Failure {
        Failure::Parameter { parameter, message: message.into() }
    }

    fn rejected(rejection: QueryRejection) -> Failure {
        Failure::Query(format!("the query string does not parse: {}", rejection.body_text()))
    }

    /// The domain's answer that there is no answer.
    pub(crate) fn query(error: QueryError) -> Failure {
        Failure::Unanswered(error)
    }

    /// No approved review for that decision number.
    pub(crate) fn approval(error: hoctap_domain::ApprovalError) -> Failure {
        match error {
            hoctap_domain::ApprovalError::Query(e) => Failure::Unanswered(e),
            other => Failure::NotFound(other.to_string()),
        }
    }

    /// Why an approval was not recorded.
    pub(crate) fn not_recorded(why: crate::NotRecorded) -> Failure {
        match why {
            crate::NotRecorded::Refused(refusal) => Failure::Refused(refusal),
            crate::NotRecorded::Unapprovable(message) => Failure::Unapprovable(message),
            crate::NotRecorded::Busy(message) => Failure::Unavailable(message),
            crate::NotRecorded::Failed(message) => {
                tracing::error!(error = %message, "recording an approval failed");
                Failure::Internal
            }
        }
    }

    pub(crate) fn store(error: StoreError) -> Failure {
        match error {
            StoreError::Query(e) => Failure::Unanswered(e),
            StoreError::Approval(e) => Failure::approval(e),
            StoreError::NoDeployment(_) => Failure::Unavailable(error.to_string()),
            StoreError::Db { ref source, .. } if source.code() == Some(&SqlState::QUERY_CANCELED) => {
                tracing::warn!(error = %error, "a statement was cancelled");
                Failure::Unavailable(
                    "a query ran longer than the API's statement timeout and was cancelled; retry later".into(),
                )
            }
            StoreError::Db { .. } => {
                tracing::warn!(error = %error, source = ?std::error::Error::source(&error), "PostgreSQL failed");
                Failure::Unavailable("PostgreSQL is unavailable; retry later".into())
            }
            other => {
                // InvalidSchema, Migration, Corrupt: a read model this binary cannot read. NotRecorded
                // and Retired come from writing only.
                tracing::error!(error = %other, "the read models cannot answer");
                Failure::Internal
            }
        }
    }
}

impl Api {
    /// A pooled connection, or 503.
    pub(crate) async fn connection(&self) -> Result<deadpool_postgres::Object, Failure> {
        self.inner.pool.get().await.map_err(|e| {
            tracing::warn!(error = %e, "no PostgreSQL connection");
            Failure::Unavailable("PostgreSQL is unreachable; retry later".into())
        })
    }

    /// The generation serving now. A deployment whose control schema does not exist yet is 503 like
    /// one without a generation: `hoctap project` creates it.
    pub(crate) async fn serving(&self, client: &tokio_postgres::Client) -> Result<Schema, Failure> {
        let deployment = &self.inner.deployment;
        match deployment.active(client).await {
            Err(StoreError::Db { source, .. }) if matches!(source.code(), Some(c) if *c == SqlState::UNDEFINED_TABLE || *c == SqlState::INVALID_SCHEMA_NAME) => {
                Err(Failure::store(StoreError::NoDeployment(deployment.name().to_owned())))
            }
            other => other.map_err(Failure::store),
        }
    }
}

/// Who may read what on a server: the readers' tokens and whether reviews are public. A server
/// without one (`hoctap serve`, local) answers everyone.
#[derive(Clone, Debug, Default)]
pub struct Access {
    pub readers: Tokens,
    pub public_reviews: bool,
}

/// The reader whose token the request carries. Without a token: `None` where the route is public
/// (`public`, or a server without [`Access`]), else 401; a token sent must be a reader's (401
/// otherwise), public route or not.
fn reader<A: Answers>(answers: &A, headers: &HeaderMap, public: bool) -> Result<Option<Holder>, Failure> {
    let Some(access) = answers.access() else { return Ok(None) };
    let Some(value) = headers.get(AUTHORIZATION) else {
        return if public { Ok(None) } else { Err(Failure::Unauthenticated { invalid: false }) };
    };
    value
        .to_str()
        .ok()
        .and_then(hoctap_tokens::bearer)
        .and_then(|token| access.readers.authenticate(token))
        .map(|holder| Some(holder.clone()))
        .ok_or(Failure::Unauthenticated { invalid: true })
}

/// The one province `reader` is limited to (`None`: a national reader or a public request).
fn province_of(reader: Option<&Holder>) -> Option<&str> {
    match reader {
        Some(Holder { scope: Scope::Province(province), .. }) => Some(province),
        _ => None,
    }
}

/// For each unit of `codes` in turn, whether it ever lay in `province`.
async fn lie_in<A: Answers>(
    answers: &A,
    province: &str,
    codes: Vec<String>,
) -> Result<impl Iterator<Item = bool>, Failure> {
    let provinces = answers.provinces_of(codes).await?;
    let province = province.to_owned();
    Ok(provinces.into_iter().map(move |of| of.contains(&province)))
}

/// Whether `reader` (`None`: a public request) may read unit `code`: a reader of one province only
/// units that ever lay in it (`Engine::provinces_of`, over the reference events as known now).
async fn allowed<A: Answers>(answers: &A, reader: Option<&Holder>, code: &str) -> Result<(), Failure> {
    let Some(province) = province_of(reader) else { return Ok(()) };
    let provinces = answers.provinces_of(vec![code.to_owned()]).await?.pop().unwrap_or_default();
    if provinces.iter().any(|p| p == province) {
        return Ok(());
    }
    let lies = if provinces.is_empty() {
        "is not a unit known to lie in any province".to_owned()
    } else {
        format!("lies in province {}", provinces.join(", "))
    };
    let name = reader.map(|r| r.name.as_str()).unwrap_or_default();
    Err(Failure::Forbidden(format!(
        "reader `{name}` may read province {province} only, and unit `{code}` {lies} (rule: province)"
    )))
}

/// A parameter that must be present and not empty.
fn required(parameter: &'static str, value: Option<String>) -> Result<String, Failure> {
    value.filter(|v| !v.is_empty()).ok_or_else(|| Failure::parameter(parameter, format!("`{parameter}` is required")))
}

fn day(parameter: &'static str, value: Option<String>) -> Result<Day, Failure> {
    let text = required(parameter, value)?;
    Day::parse(&text)
        .ok_or_else(|| Failure::parameter(parameter, format!("`{parameter}` `{text}` is not a date YYYY-MM-DD")))
}

fn known_at(value: Option<String>) -> Result<Option<i64>, Failure> {
    match value.filter(|v| !v.is_empty()) {
        None => Ok(None),
        Some(text) => parse_known_at(&text).map(Some).ok_or_else(|| {
            Failure::parameter(
                "known_at",
                format!(
                    "`known_at` `{text}` is neither an RFC 3339 timestamp with an offset (e.g. 2026-01-15T00:00:00Z) \
                     nor a date YYYY-MM-DD (the end of that day, UTC+07:00)"
                ),
            )
        }),
    }
}

#[derive(Debug, Deserialize)]
struct ReviewParams {
    approved: Option<String>,
    scope: Option<String>,
    as_of: Option<String>,
    known_at: Option<String>,
    milestone: Option<String>,
}

/// The question a request asks: `approved` alone, or `scope`, `as_of`, `known_at` (required when
/// `known_at_required`) and `milestone`.
fn asked(p: ReviewParams, known_at_required: bool) -> Result<Asked, Failure> {
    if let Some(number) = p.approved.filter(|n| !n.is_empty()) {
        if [&p.scope, &p.as_of, &p.known_at, &p.milestone].into_iter().any(|v| v.is_some()) {
            return Err(Failure::parameter(
                "approved",
                "`approved` names the whole question (scope, date, milestone, known-at): give it alone",
            ));
        }
        return Ok(Asked::Approved(number));
    }
    let scope = required("scope", p.scope)?;
    let as_of = day("as_of", p.as_of)?;
    let known_at = match known_at_required {
        true => Some(known_at(Some(required("known_at", p.known_at)?))?.expect("a required value")),
        false => known_at(p.known_at)?,
    };
    let milestone = match p.milestone.filter(|m| !m.is_empty()) {
        None => None,
        Some(text) => Some(text.parse::<i32>().map_err(|_| {
            Failure::parameter("milestone", format!("`milestone` `{text}` is not a year (an integer such as 2025)"))
        })?),
    };
    Ok(Asked::Question(hoctap_domain::Query { scope, as_of, known_at, milestone }))
}

/// Checks that `reader` may read the question's scope before it is answered (an approved review's
/// scope is known only once it is found: [`allowed`] again on the answer).
async fn allowed_to_ask<A: Answers>(answers: &A, reader: Option<&Holder>, asked: &Asked) -> Result<(), Failure> {
    match asked {
        Asked::Question(query) => allowed(answers, reader, &query.scope).await,
        Asked::Approved(_) => Ok(()),
    }
}

/// The reader of a review or a diff: public with `--public-reviews` (then a province restricts nothing).
fn review_reader<A: Answers>(answers: &A, headers: &HeaderMap) -> Result<Option<Holder>, Failure> {
    let public = answers.access().is_some_and(|a| a.public_reviews);
    Ok(reader(answers, headers, public)?.filter(|_| !public))
}

async fn reviews<A: Answers>(
    State(answers): State<A>,
    headers: HeaderMap,
    params: Result<Query<ReviewParams>, QueryRejection>,
) -> Result<Response, Failure> {
    let reader = review_reader(&answers, &headers)?;
    let Query(p) = params.map_err(Failure::rejected)?;
    let asked = asked(p, false)?;
    allowed_to_ask(&answers, reader.as_ref(), &asked).await?;
    let mut review = answers.review(asked).await?;
    allowed(&answers, reader.as_ref(), &review.scope).await?;
    hoctap_report::stamp(&mut review, crate::now_micros());
    Ok(([(CONTENT_TYPE, HeaderValue::from_static("application/json"))], hoctap_report::json(&review)).into_response())
}

#[derive(Debug, Deserialize)]
struct DiffParams {
    #[serde(flatten)]
    question: ReviewParams,
    vs: Option<String>,
}

/// `GET /v1/reviews/diff`: the document `hoctap diff --format json` prints (`hoctap_report::diff_json`),
/// `events` included, from either source of answers.
async fn diff<A: Answers>(
    State(answers): State<A>,
    headers: HeaderMap,
    params: Result<Query<DiffParams>, QueryRejection>,
) -> Result<Response, Failure> {
    let reader = review_reader(&answers, &headers)?;
    let Query(p) = params.map_err(Failure::rejected)?;
    let vs = known_at(p.vs).map_err(|_| {
        Failure::parameter("vs", "`vs` is neither an RFC 3339 timestamp with an offset nor a date YYYY-MM-DD")
    })?;
    let asked = asked(p.question, true)?;
    allowed_to_ask(&answers, reader.as_ref(), &asked).await?;
    let diff = answers.diff(asked, vs).await?;
    allowed(&answers, reader.as_ref(), &diff.scope).await?;
    Ok(([(CONTENT_TYPE, HeaderValue::from_static("application/json"))], hoctap_report::diff_json(&diff))
        .into_response())
}

#[derive(Debug, Deserialize)]
struct UnitsParams {
    as_of: Option<String>,
    known_at: Option<String>,
}

/// `GET /v1/units`: the document `hoctap units --format json` prints (`hoctap_report::units_json`).
async fn units<A: Answers>(
    State(answers): State<A>,
    headers: HeaderMap,
    params: Result<Query<UnitsParams>, QueryRejection>,
) -> Result<Response, Failure> {
    let reader = reader(&answers, &headers, false)?;
    let Query(p) = params.map_err(Failure::rejected)?;
    let as_of = day("as_of", p.as_of)?;
    let known_at = known_at(p.known_at)?;
    let mut units = answers.units(as_of, known_at).await?;
    if let Some(province) = province_of(reader.as_ref()) {
        // A reader of one province lists the units it may ask about.
        let mut keep = lie_in(&answers, province, units.iter().map(|u| u.code.clone()).collect()).await?;
        units.retain(|_| keep.next().unwrap_or(false));
    }
    let k = known_at.map(format_instant);
    let body = hoctap_report::units_json(&units, as_of, k.as_deref());
    Ok(([(CONTENT_TYPE, HeaderValue::from_static("application/json"))], body).into_response())
}

#[derive(Debug, Deserialize)]
struct SeriesParams {
    title: Option<String>,
    from: Option<String>,
    to: Option<String>,
    step: Option<String>,
    known_at: Option<String>,
}

async fn series<A: Answers>(
    State(answers): State<A>,
    headers: HeaderMap,
    Path(unit): Path<String>,
    params: Result<Query<SeriesParams>, QueryRejection>,
) -> Result<Response, Failure> {
    let reader = reader(&answers, &headers, false)?;
    let Query(p) = params.map_err(Failure::rejected)?;
    let title_text = required("title", p.title)?;
    let title = Title::parse(&title_text).ok_or_else(|| {
        let known: Vec<&str> = Title::ALL.iter().map(|t| t.as_str()).collect();
        Failure::parameter("title", format!("`title` `{title_text}` is not one of {}", known.join(", ")))
    })?;
    let from = day("from", p.from)?;
    let to = day("to", p.to)?;
    if to < from {
        return Err(Failure::parameter("to", format!("`to` {to} is before `from` {from}")));
    }
    let step = match p.step.filter(|s| !s.is_empty()) {
        None => Step::Month,
        Some(text) => Step::parse(&text).ok_or_else(|| {
            Failure::parameter("step", format!("`step` `{text}` is not one of day, week, month, year"))
        })?,
    };
    let known_at = known_at(p.known_at)?;
    let dates = dates(from, to, step, MAX_POINTS).map_err(|e| {
        Failure::parameter(
            "step",
            format!("from {from} to {to} by {} is {e}: use a longer step or a shorter range", step.as_str()),
        )
    })?;
    if dates.is_empty() {
        return Err(Failure::parameter("step", format!("no {} end lies between {from} and {to}", step.as_str())));
    }
    allowed(&answers, reader.as_ref(), &unit).await?;
    let points = match answers.series(unit.clone(), title, dates, known_at).await {
        Ok(points) => points,
        Err(Failure::Unanswered(QueryError::ScopeNotInForce { code, .. })) => {
            return Err(Failure::NotFound(format!("unit `{code}` is not in force on any date from {from} to {to}")));
        }
        Err(e) => return Err(e),
    };
    Ok(Json(Series::new(unit, title, step, known_at, points)).into_response())
}

#[derive(Debug, Deserialize)]
struct ApprovalsParams {
    known_at: Option<String>,
}

/// `GET /v1/approvals`: the approved reviews a reviewer can open (`hoctap_report::approvals_json`).
async fn approvals<A: Answers>(
    State(answers): State<A>,
    headers: HeaderMap,
    params: Result<Query<ApprovalsParams>, QueryRejection>,
) -> Result<Response, Failure> {
    // Which reviews were approved is as public as the reviews themselves.
    let public = answers.access().is_some_and(|a| a.public_reviews);
    let reader = reader(&answers, &headers, public)?.filter(|_| !public);
    let Query(p) = params.map_err(Failure::rejected)?;
    let known_at = known_at(p.known_at)?;
    let mut approvals = answers.approvals(known_at).await?;
    if let Some(province) = province_of(reader.as_ref()) {
        // A reader of one province lists the approvals of the scopes it may read.
        let mut keep = lie_in(&answers, province, approvals.iter().map(|a| a.data.scope.clone()).collect()).await?;
        approvals.retain(|_| keep.next().unwrap_or(false));
    }
    let k = known_at.map(format_instant);
    let body = hoctap_report::approvals_json(&approvals, k.as_deref());
    // The dashboard offers its approval form where the server records approvals.
    let allow = if answers.records_approvals().is_ok() { "GET, POST" } else { "GET" };
    let headers =
        [(CONTENT_TYPE, HeaderValue::from_static("application/json")), (ALLOW, HeaderValue::from_static(allow))];
    Ok((headers, body).into_response())
}

/// What `POST /v1/approvals` reads: the review (as `GET /v1/reviews` asks it) and the decision.
#[derive(Debug, Deserialize)]
#[serde(deny_unknown_fields)]
struct ApprovalBody {
    scope: String,
    as_of: String,
    #[serde(default)]
    known_at: Option<String>,
    #[serde(default)]
    milestone: Option<i32>,
    number: String,
    issuer: String,
    date: String,
}

/// `POST /v1/approvals` (`hoctap serve --approvals` only): records that a numbered decision approved
/// a review, as `hoctap approve` does — 201 with the event, or 200 when the same approval was recorded
/// already; 409 when the number approves another review; 422 when the review cannot be approved or
/// a field breaks a rule.
async fn approve<A: Answers>(
    State(answers): State<A>,
    headers: HeaderMap,
    body: Result<Bytes, BytesRejection>,
) -> Result<Response, Failure> {
    answers.records_approvals()?;
    same_origin(&headers)?;
    let media = headers.get(CONTENT_TYPE).and_then(|v| v.to_str().ok()).and_then(|v| v.split(';').next());
    if !media.is_some_and(|m| m.trim().eq_ignore_ascii_case("application/json")) {
        return Err(Failure::Body(
            StatusCode::UNSUPPORTED_MEDIA_TYPE,
            "an approval is sent as JSON, with Content-Type: application/json".into(),
        ));
    }
    let body = body.map_err(|rejection| match rejection.status() {
        StatusCode::PAYLOAD_TOO_LARGE => Failure::Body(
            StatusCode::PAYLOAD_TOO_LARGE,
            format!("an approval's body is at most {} KiB", APPROVAL_BODY_LIMIT / 1024),
        ),
        status => Failure::Body(status, rejection.body_text()),
    })?;
    let asked: ApprovalBody = serde_json::from_slice(&body).map_err(|e| {
        Failure::Body(
            StatusCode::BAD_REQUEST,
            format!(
                "the body is not an approval ({e}); send {{\"scope\", \"as_of\", \"number\", \"issuer\", \"date\"}}, \
                 and optionally \"known_at\" and \"milestone\""
            ),
        )
    })?;
    // The body's dates read as the query's parameters are, their errors naming the field.
    let field = |failure: Failure| match failure {
        Failure::Parameter { parameter, message } => Failure::Field { field: parameter, message },
        other => other,
    };
    let query = hoctap_domain::Query {
        scope: asked.scope,
        as_of: day("as_of", Some(asked.as_of)).map_err(field)?,
        known_at: known_at(asked.known_at).map_err(field)?,
        milestone: asked.milestone,
    };
    let date = day("date", Some(asked.date)).map_err(field)?;
    let decision = Decision { number: asked.number, issuer: asked.issuer, date };
    let recorded = answers.approve(query, decision).await?;
    let (status, word) =
        if recorded.new { (StatusCode::CREATED, "recorded") } else { (StatusCode::OK, "already_recorded") };
    let event: serde_json::Value = serde_json::from_str(&recorded.event.to_json()).map_err(|e| {
        tracing::error!(error = %e, "an event's canonical JSON does not parse");
        Failure::Internal
    })?;
    let body = serde_json::json!({ "status": word, "events": recorded.events, "event": event });
    Ok((status, Json(body)).into_response())
}

/// A browser sends `Origin` with a POST: a page of another site may not record approvals. The
/// dashboard is served by this server, so its origin names the `Host` asked. Requests without
/// `Origin` (curl, scripts) are not a browser's.
fn same_origin(headers: &HeaderMap) -> Result<(), Failure> {
    let Some(origin) = headers.get(ORIGIN) else { return Ok(()) };
    let origin = origin.to_str().unwrap_or("");
    let host = headers.get(HOST).and_then(|h| h.to_str().ok());
    let authority = origin.strip_prefix("http://").or_else(|| origin.strip_prefix("https://"));
    if authority.is_some() && authority == host {
        return Ok(());
    }
    Err(Failure::ForeignOrigin(format!("a page of `{origin}` may not record approvals on this server")))
}

#[derive(Debug, Serialize)]
#[serde(tag = "status", rename_all = "lowercase")]
enum Health {
    Ok { generation: String },
    Unavailable { reason: String },
}

/// On `/healthz`'s own connection (one, with short timeouts), not the pool's: a busy pool cannot hold
/// it up.
async fn healthz(State(api): State<Api>) -> Response {
    let health = api.inner.health.get().await.map_err(|e| {
        tracing::warn!(error = %e, "no PostgreSQL connection for the health check");
        Failure::Unavailable("PostgreSQL is unreachable; retry later".into())
    });
    let serving = match health {
        Ok(client) => api.serving(&client).await,
        Err(e) => Err(e),
    };
    match serving {
        Ok(schema) => Json(Health::Ok { generation: schema.to_string() }).into_response(),
        Err(failure) => {
            let reason = match failure {
                Failure::Unavailable(reason) | Failure::NotFound(reason) | Failure::Query(reason) => reason,
                Failure::Unanswered(e) => e.to_string(),
                Failure::Parameter { message, .. }
                | Failure::Forbidden(message)
                | Failure::NotRecording(message)
                | Failure::ForeignOrigin(message)
                | Failure::Body(_, message)
                | Failure::Field { message, .. }
                | Failure::Unapprovable(message) => message,
                Failure::Refused(refusal) => refusal.to_string(),
                Failure::Unauthenticated { .. } => "unauthenticated".into(),
                Failure::Internal => "the serving generation cannot be read".into(),
            };
            let mut response = (StatusCode::SERVICE_UNAVAILABLE, Json(Health::Unavailable { reason })).into_response();
            response.headers_mut().insert(RETRY_AFTER, HeaderValue::from_static("5"));
            response
        }
    }
}

async fn metrics(State(api): State<Api>) -> Response {
    match api.inner.metrics.encode(api.inner.pool.status()) {
        Ok(text) => ([(CONTENT_TYPE, HeaderValue::from_static(metrics::CONTENT_TYPE))], text).into_response(),
        Err(e) => {
            tracing::error!(error = %e, "encoding the metrics");
            Failure::Internal.into_response()
        }
    }
}
