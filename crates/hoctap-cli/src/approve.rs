//! `hoctap approve`: record that a numbered decision adopted a review (`review.approved`), freezing the
//! instant the review is as known at, so that `hoctap review --approved NUMBER` gives it again exactly.

use crate::ingest::{self, Input};
use crate::tracker::Tracker;
use anyhow::{Context, Result};
use hoctap_domain::event::{Decision, EventData, EventType, ReviewApproved};
use hoctap_domain::{Day, Engine, Event, Query, QueryError, Refusal};
use sha2::{Digest as _, Sha256};
use std::path::Path;
use std::process::ExitCode;
use uuid::Uuid;

/// Where the approvals this command writes say they come from (`source`).
const SOURCE: &str = "/hoctap/approve";

#[derive(Debug, clap::Args)]
pub struct ApproveArgs {
    /// The unit reviewed, e.g. `01` for Hà Nội.
    #[arg(long)]
    scope: String,
    /// Valid date D of the review (YYYY-MM-DD).
    #[arg(long)]
    as_of: String,
    /// Milestone year of the targets compared (default: the review's own, the smallest milestone ≥ the
    /// year of D); the one the review used is recorded.
    #[arg(long)]
    milestone: Option<i32>,
    /// The transaction time the approved review is as known at: an RFC 3339 timestamp or a date (the
    /// end of that day, UTC+07:00), already passed. Default: the recordedtime of the newest event
    /// recorded, as a review states it.
    #[arg(long)]
    known_at: Option<String>,
    /// The decision's number as printed, e.g. `15/QĐ-UBND`: `review --approved` finds the review by it.
    #[arg(long)]
    number: String,
    /// Who issued the decision, e.g. `UBND-01`.
    #[arg(long)]
    issuer: String,
    /// The day the decision was signed (YYYY-MM-DD); also the event's time.
    #[arg(long)]
    date: String,
}

pub fn run(data_dir: &Path, args: &ApproveArgs) -> Result<ExitCode> {
    let date = Day::parse(&args.date).with_context(|| format!("--date `{}` is not a date YYYY-MM-DD", args.date))?;
    let query = Query {
        scope: args.scope.clone(),
        as_of: crate::as_of_arg(&args.as_of)?,
        known_at: crate::known_at_arg(args.known_at.as_deref())?,
        milestone: args.milestone,
    };
    let decision = Decision { number: args.number.clone(), issuer: args.issuer.clone(), date };
    let mut tracker = Tracker::open(data_dir)?;
    let recorded = record(&mut tracker, &query, decision)?;
    tracker.save_checkpoint();
    if let Outcome::Refused(refusal) = &recorded.outcome {
        eprintln!("refused: {refusal}");
        eprintln!("the refused approval was kept with its reason in {}", data_dir.join("dead-letter.ndjson").display());
        return Ok(ExitCode::from(1));
    }
    println!("{}", recorded.summary());
    println!("{}", recorded.event.to_json());
    println!("reproduce it with: hoctap review --approved '{}'", recorded.data.decision.number);
    Ok(ExitCode::SUCCESS)
}

/// What became of an approval.
pub enum Outcome {
    Recorded,
    /// The same approval was in the log already.
    AlreadyRecorded,
    Refused(Refusal),
}

/// An approval as [`record`] built it, and what became of it.
pub struct Approved {
    pub event: Event,
    pub data: ReviewApproved,
    /// Events recorded by the frozen known-at.
    pub events: u64,
    pub outcome: Outcome,
}

impl Approved {
    /// `recorded: vn.hoctap.review.approved.v1 <id> — decision … approves the review of scope … on …`.
    pub fn summary(&self) -> String {
        let verb = match self.outcome {
            Outcome::Recorded => "recorded",
            Outcome::AlreadyRecorded => "already recorded (the same approval)",
            Outcome::Refused(_) => "refused",
        };
        let (data, decision) = (&self.data, &self.data.decision);
        format!(
            "{verb}: {} {} — decision {} of {} dated {} approves the review of scope {} on {}{} as known at {} ({} events recorded by then)",
            EventType::ReviewApproved.type_name(),
            self.event.id,
            decision.number,
            decision.issuer,
            decision.date,
            data.scope,
            data.as_of,
            data.milestone.map(|m| format!(" (milestone {m})")).unwrap_or_default(),
            data.known_at,
            self.events
        )
    }
}

/// The approval `decision` makes of the review `query` asks, built but not recorded. The review must
/// exist as asked (scope in force on D, something recorded by K); its statement of known-at (K, or the
/// newest event recorded) and its milestone are what the approval freezes.
pub struct Prepared {
    pub event: Event,
    pub data: ReviewApproved,
    /// Events recorded by the frozen known-at.
    pub events: u64,
}

/// Builds the approval of the review `query` asks (an error says why that review cannot be approved).
pub fn prepare(engine: &Engine, query: &Query, decision: Decision) -> Result<Prepared> {
    let review = engine.review(query)?;
    // A unit not in force on D has no review of its own to adopt: its review only says what the reform
    // made of it, with other units' figures.
    if review.reform.is_some() {
        return Err(QueryError::ScopeNotInForce { code: query.scope.clone(), as_of: query.as_of })
            .context("a decision approves the review of a unit in force on its date");
    }
    let known_at = review.known_at.clone().context("the review states no known-at: no event in the log is stamped")?;
    let data = ReviewApproved {
        scope: review.scope.clone(),
        as_of: review.as_of,
        milestone: review.milestone,
        known_at,
        decision,
    };
    let time = format!("{}T00:00:00+07:00", data.decision.date);
    let event = Event::new(event_id(&data), SOURCE, &time, &data.scope, EventData::ReviewApproved(data.clone()))
        .context("building the approval event")?;
    Ok(Prepared { event, data, events: review.events })
}

/// Records a prepared approval through the path of `hoctap ingest` (the same rules, the log, the
/// dead-letter file), stamped on the tracker's clock, or on `recorded_at` (UTC microseconds) when the
/// caller simulates one. An error is the log's.
pub fn record_prepared(tracker: &mut Tracker, prepared: Prepared, recorded_at: Option<i64>) -> Result<Approved> {
    let Prepared { event, data, events } = prepared;
    let input = Input::Bytes(event.to_json().into_bytes());
    let mut refusals = Vec::new();
    let mut on_refusal = |_: u64, r: &Refusal| refusals.push(r.clone());
    let summary = match recorded_at {
        None => ingest::ingest(tracker, &input, &mut on_refusal)?,
        Some(now) => ingest::ingest_recorded_at(tracker, &input, now, &mut on_refusal)?,
    };
    let outcome = match refusals.into_iter().next() {
        Some(refusal) => Outcome::Refused(refusal),
        None if summary.accepted == 1 => Outcome::Recorded,
        None => Outcome::AlreadyRecorded,
    };
    Ok(Approved { event, data, events, outcome })
}

/// Records that `decision` approved the review `query` asks for: [`prepare`], then
/// [`record_prepared`].
pub fn record_at(
    tracker: &mut Tracker,
    query: &Query,
    decision: Decision,
    recorded_at: Option<i64>,
) -> Result<Approved> {
    let prepared = prepare(&tracker.engine, query, decision)?;
    record_prepared(tracker, prepared, recorded_at)
}

/// [`record_at`] on the system clock.
pub fn record(tracker: &mut Tracker, query: &Query, decision: Decision) -> Result<Approved> {
    record_at(tracker, query, decision, None)
}

/// The approval's id, from its content: approving the same review by the same decision twice gives the
/// same event (a duplicate, skipped), and the same number for another review a different one (refused
/// as `approval_conflict`).
fn event_id(data: &ReviewApproved) -> Uuid {
    let content = serde_json::to_string(data).expect("approval data serialises");
    let digest = Sha256::digest(format!("hoctap review.approved\n{content}").as_bytes());
    let mut bytes = [0u8; 16];
    bytes.copy_from_slice(&digest[..16]);
    uuid::Builder::from_custom_bytes(bytes).into_uuid()
}
