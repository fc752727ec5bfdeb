//! Where the HTTP API's answers come from: the PostgreSQL read models ([`Api`], `hoctap api`) or an
//! engine held in memory ([`Embedded`], `hoctap serve`). The routes are written once, over
//! [`Answers`], so both servers give the same documents byte for byte (but for `generated_at`).
//!
//! Only `hoctap serve --approvals` writes: `POST /v1/approvals` records a `review.approved` through a
//! [`Recorder`] the CLI gives [`Embedded::recording`] (the embedded log behind the engine in memory).

use crate::Api;
use crate::http::{Access, Failure};
use hoctap_domain::codes::Title;
use hoctap_domain::event::Decision;
use hoctap_domain::review::{ListedUnit, TitleCounts};
use hoctap_domain::{Approval, Day, Engine, Event, Query, Refusal, Review, ReviewDiff};
use std::future::Future;
use std::sync::Arc;
use tokio::sync::RwLock;

/// What a request asks of `GET /v1/reviews`: a question, or the review a decision approved.
#[derive(Clone, Debug)]
pub enum Asked {
    Question(Query),
    Approved(String),
}

/// A source of answers to the API's questions. Each method is the domain's answer to one route; the
/// HTTP side (parameters, errors, rendering) is shared.
pub trait Answers: Clone + Send + Sync + 'static {
    /// The review asked (unstamped: the route stamps it).
    fn review(&self, asked: Asked) -> impl Future<Output = Result<Review, Failure>> + Send;
    /// The audit diff of the question asked (as known at its `known_at`) against the same question as
    /// known at `vs` (`None`: now): `Engine::diff`, from read models `hoctap_store::diff` (the same
    /// events listed from the histories of the subjects recorded since the first time).
    fn diff(&self, asked: Asked, vs: Option<i64>) -> impl Future<Output = Result<ReviewDiff, Failure>> + Send;
    /// The units established by `as_of` (`Engine::units_on`).
    fn units(&self, as_of: Day, known_at: Option<i64>)
    -> impl Future<Output = Result<Vec<ListedUnit>, Failure>> + Send;
    /// One title's counts in `unit` on each of `dates` (`Engine::series`); a unit in force on none of
    /// them is [`Failure::Unanswered`] with `QueryError::ScopeNotInForce`.
    fn series(
        &self,
        unit: String,
        title: Title,
        dates: Vec<Day>,
        known_at: Option<i64>,
    ) -> impl Future<Output = Result<Vec<(Day, TitleCounts)>, Failure>> + Send;
    /// The approved reviews as known at `known_at` (`Engine::approvals`).
    fn approvals(&self, known_at: Option<i64>) -> impl Future<Output = Result<Vec<Approval>, Failure>> + Send;
    /// Whether this server records approvals (`POST /v1/approvals`); if not, the 403 that says where
    /// they are recorded instead.
    fn records_approvals(&self) -> Result<(), Failure>;
    /// Records that `decision` approved the review `query` asks for.
    fn approve(&self, query: Query, decision: Decision) -> impl Future<Output = Result<Recorded, Failure>> + Send;
    /// The provinces each unit of `codes` ever lay in, as known now (`Engine::provinces_of`).
    fn provinces_of(&self, codes: Vec<String>) -> impl Future<Output = Result<Vec<Vec<String>>, Failure>> + Send;
    /// Who may read what; `None` answers everyone.
    fn access(&self) -> Option<&Access>;
}

impl Answers for Api {
    async fn review(&self, asked: Asked) -> Result<Review, Failure> {
        let mut client = self.connection().await?;
        let schema = self.serving(&client).await?;
        let cache = &self.inner.cache;
        match &asked {
            Asked::Question(query) => hoctap_store::review(&mut client, &schema, cache, query).await,
            Asked::Approved(number) => hoctap_store::review_approved(&mut client, &schema, cache, number).await,
        }
        .map_err(Failure::store)
    }

    async fn diff(&self, asked: Asked, vs: Option<i64>) -> Result<ReviewDiff, Failure> {
        let query = match asked {
            Asked::Question(query) => query,
            Asked::Approved(number) => {
                // Approvals are reference data: the reference engine finds them as the full one does.
                self.reference().await?.approval(&number, None).map_err(Failure::approval)?.query()
            }
        };
        let mut client = self.connection().await?;
        let schema = self.serving(&client).await?;
        hoctap_store::diff(&mut client, &schema, &self.inner.cache, &query, vs).await.map_err(Failure::store)
    }

    async fn units(&self, as_of: Day, known_at: Option<i64>) -> Result<Vec<ListedUnit>, Failure> {
        let client = self.connection().await?;
        let schema = self.serving(&client).await?;
        hoctap_store::units(&**client, &schema, &self.inner.cache, as_of, known_at).await.map_err(Failure::store)
    }

    async fn series(
        &self,
        unit: String,
        title: Title,
        dates: Vec<Day>,
        known_at: Option<i64>,
    ) -> Result<Vec<(Day, TitleCounts)>, Failure> {
        let mut client = self.connection().await?;
        let schema = self.serving(&client).await?;
        hoctap_store::series(&mut client, &schema, &self.inner.cache, &unit, title, &dates, known_at)
            .await
            .map_err(Failure::store)
    }

    async fn approvals(&self, known_at: Option<i64>) -> Result<Vec<Approval>, Failure> {
        let client = self.connection().await?;
        let schema = self.serving(&client).await?;
        hoctap_store::approvals(&**client, &schema, &self.inner.cache, known_at).await.map_err(Failure::store)
    }

    /// The read models are folded from the log, never written by the API: an approval is an event,
    /// sent to the gateway like any other.
    fn records_approvals(&self) -> Result<(), Failure> {
        Err(Failure::NotRecording(
            "`hoctap api` only reads: an approval is a `review.approved` event, recorded through the gateway \
             (POST /v1/events, events/README.md) or with `hoctap approve`"
                .into(),
        ))
    }

    async fn approve(&self, _query: Query, _decision: Decision) -> Result<Recorded, Failure> {
        Err(self.records_approvals().expect_err("the API records no approval"))
    }

    async fn provinces_of(&self, codes: Vec<String>) -> Result<Vec<Vec<String>>, Failure> {
        let reference = self.reference().await?;
        Ok(codes.iter().map(|code| reference.provinces_of(code)).collect())
    }

    fn access(&self) -> Option<&Access> {
        Some(&self.inner.access)
    }
}

/// Records approvals for `hoctap serve --approvals`: the embedded log behind the engine the server
/// holds. It is called on the blocking pool with the engine locked for writing (no review runs
/// meanwhile), and leaves in `engine` what it recorded.
pub trait Recorder: Send + Sync + 'static {
    fn approve(&self, engine: &mut Engine, query: &Query, decision: Decision) -> Result<Recorded, NotRecorded>;
}

/// An approval a [`Recorder`] wrote, or found written already.
#[derive(Clone, Debug)]
pub struct Recorded {
    pub event: Event,
    /// `false`: the same approval was in the log already (nothing written).
    pub new: bool,
    /// Events recorded by the frozen known-at (the approved review's `events`).
    pub events: u64,
}

/// Why a [`Recorder`] recorded nothing.
#[derive(Clone, Debug)]
pub enum NotRecorded {
    /// The domain refused the event (`approval_conflict`: another review already approved under that
    /// number; `known_at_future`; a field out of range).
    Refused(Refusal),
    /// The review asked cannot be approved (scope unknown or not in force on D, nothing recorded by K).
    Unapprovable(String),
    /// Another process holds the log's writer lock (an ingest): retry.
    Busy(String),
    /// The log could not be written; details are in the server's log.
    Failed(String),
}

impl Api {
    /// An engine holding the reference events as known now (geography, baselines, targets, approvals).
    async fn reference(&self) -> Result<Arc<Engine>, Failure> {
        let client = self.connection().await?;
        let schema = self.serving(&client).await?;
        hoctap_store::reference(&**client, &schema, &self.inner.cache).await.map_err(Failure::store)
    }
}

/// Answers from an engine held in memory: `hoctap serve` folds the embedded log once and answers
/// every request from it (a review runs on the blocking pool, off the async workers). With a
/// [`Recorder`] it also records approvals, folded into the same engine.
#[derive(Clone)]
pub struct Embedded {
    engine: Arc<RwLock<Engine>>,
    recorder: Option<Arc<dyn Recorder>>,
}

impl std::fmt::Debug for Embedded {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Embedded").field("records_approvals", &self.recorder.is_some()).finish_non_exhaustive()
    }
}

impl Embedded {
    pub fn new(engine: Engine) -> Embedded {
        Embedded { engine: Arc::new(RwLock::new(engine)), recorder: None }
    }

    /// The same server, recording approvals with `recorder` (`POST /v1/approvals`).
    pub fn recording(self, recorder: impl Recorder) -> Embedded {
        Embedded { recorder: Some(Arc::new(recorder)), ..self }
    }

    /// Runs `f` on the engine on the blocking pool (with many readers at once; none while an approval
    /// is recorded).
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, Failure> {
        let engine = self.engine.clone().read_owned().await;
        tokio::task::spawn_blocking(move || f(&engine)).await.map_err(|e| {
            tracing::error!(error = %e, "an answer panicked");
            Failure::Internal
        })?
    }
}

impl Answers for Embedded {
    async fn review(&self, asked: Asked) -> Result<Review, Failure> {
        self.with(move |engine| match &asked {
            Asked::Question(query) => engine.review(query).map_err(Failure::query),
            Asked::Approved(number) => engine.approved_review(number).map_err(Failure::approval),
        })
        .await
    }

    async fn diff(&self, asked: Asked, vs: Option<i64>) -> Result<ReviewDiff, Failure> {
        self.with(move |engine| {
            let query = match asked {
                Asked::Question(query) => query,
                Asked::Approved(number) => engine.approval(&number, None).map_err(Failure::approval)?.query(),
            };
            engine.diff(&query, vs).map_err(Failure::query)
        })
        .await
    }

    async fn units(&self, as_of: Day, known_at: Option<i64>) -> Result<Vec<ListedUnit>, Failure> {
        self.with(move |engine| Ok(engine.units_on(as_of, known_at))).await
    }

    async fn series(
        &self,
        unit: String,
        title: Title,
        dates: Vec<Day>,
        known_at: Option<i64>,
    ) -> Result<Vec<(Day, TitleCounts)>, Failure> {
        self.with(move |engine| engine.series(&unit, title, &dates, known_at).map_err(Failure::query)).await
    }

    async fn approvals(&self, known_at: Option<i64>) -> Result<Vec<Approval>, Failure> {
        self.with(move |engine| Ok(engine.approvals(known_at))).await
    }

    fn records_approvals(&self) -> Result<(), Failure> {
        match self.recorder {
            Some(_) => Ok(()),
            None => Err(Failure::NotRecording(
                "this server was started without --approvals: restart it with `hoctap serve --approvals`, \
                 or record the approval with `hoctap approve`"
                    .into(),
            )),
        }
    }

    async fn approve(&self, query: Query, decision: Decision) -> Result<Recorded, Failure> {
        self.records_approvals()?;
        let recorder = self.recorder.clone().expect("checked above");
        let mut engine = self.engine.clone().write_owned().await;
        let recorded = tokio::task::spawn_blocking(move || recorder.approve(&mut engine, &query, decision))
            .await
            .map_err(|e| {
                tracing::error!(error = %e, "recording an approval panicked");
                Failure::Internal
            })?;
        recorded.map_err(Failure::not_recorded)
    }

    async fn provinces_of(&self, codes: Vec<String>) -> Result<Vec<Vec<String>>, Failure> {
        self.with(move |engine| Ok(codes.iter().map(|code| engine.provinces_of(code)).collect())).await
    }

    /// `hoctap serve` is a reviewer's own server (it listens on 127.0.0.1 by default): open.
    fn access(&self) -> Option<&Access> {
        None
    }
}
