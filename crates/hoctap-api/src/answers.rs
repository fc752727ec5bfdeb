//! Where the HTTP API's answers come from: the PostgreSQL read models ([`Api`], `hoctap api`) or an
//! engine held in memory ([`Embedded`], `hoctap serve`). The routes are written once, over
//! [`Answers`], so both servers give the same documents byte for byte (but for `generated_at`).

use crate::Api;
use crate::http::{Access, Failure};
use hoctap_domain::codes::Title;
use hoctap_domain::review::{ListedUnit, TitleCounts};
use hoctap_domain::{Approval, Day, Engine, Query, Review, ReviewDiff};
use std::future::Future;
use std::sync::Arc;

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
    /// An engine holding at least the reference events as known now, to tell which provinces a unit
    /// lies in (`Engine::provinces_of`).
    fn reference(&self) -> impl Future<Output = Result<Arc<Engine>, Failure>> + Send;
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

    async fn reference(&self) -> Result<Arc<Engine>, Failure> {
        let client = self.connection().await?;
        let schema = self.serving(&client).await?;
        hoctap_store::reference(&**client, &schema, &self.inner.cache).await.map_err(Failure::store)
    }

    fn access(&self) -> Option<&Access> {
        Some(&self.inner.access)
    }
}

/// Answers from an engine held in memory: `hoctap serve` folds the embedded log once and answers
/// every request from it (read-only; a review runs on the blocking pool, off the async workers).
#[derive(Clone, Debug)]
pub struct Embedded {
    engine: Arc<Engine>,
}

impl Embedded {
    pub fn new(engine: Engine) -> Embedded {
        Embedded { engine: Arc::new(engine) }
    }

    /// Runs `f` on the engine on the blocking pool.
    async fn with<T: Send + 'static>(
        &self,
        f: impl FnOnce(&Engine) -> Result<T, Failure> + Send + 'static,
    ) -> Result<T, Failure> {
        let engine = self.engine.clone();
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

    async fn reference(&self) -> Result<Arc<Engine>, Failure> {
        Ok(self.engine.clone())
    }

    /// `hoctap serve` is a reviewer's own server (it listens on 127.0.0.1 by default): open.
    fn access(&self) -> Option<&Access> {
        None
    }
}
