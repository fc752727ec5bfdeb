//! Approved reviews (`review.approved`): the question a numbered decision adopted, with the instant
//! it froze, found again by the decision number.
//!
//! A decision number approves one review. Admission refuses a second approval that gives a number
//! another review ([`Rule::ApprovalConflict`]); should two conflicting approvals be in the log anyway
//! (admitted by doors that did not see each other), the lookup answers neither but names both
//! ([`ApprovalError::Conflict`]): a function of the set of approvals, never of their arrival order.

use super::{Batch, Engine, Query, QueryError};
use crate::event::{Decision, Event, ReviewApproved};
use crate::refusal::{Refusal, Rule};
use crate::review::Review;
use crate::time;
use uuid::Uuid;

/// An approved review as the engine found it by its decision number.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Approval {
    /// The `review.approved` event (of identical copies under several ids, the one recorded first).
    pub event_id: Uuid,
    /// When the tracker recorded it (UTC microseconds); `None` for an event folded by hand.
    pub recorded: Option<i64>,
    /// What it approved: scope, as-of, milestone, known-at and the decision.
    pub data: ReviewApproved,
    /// `data.known_at` as UTC microseconds.
    pub known_at: i64,
}

impl Approval {
    /// The question that was approved: the same scope, date and milestone, as known at the frozen instant.
    pub fn query(&self) -> Query {
        Query {
            scope: self.data.scope.clone(),
            as_of: self.data.as_of,
            known_at: Some(self.known_at),
            milestone: self.data.milestone,
        }
    }

    /// Marks `review` (the answer to [`Approval::query`]) as the approved review.
    pub fn mark(&self, review: &mut Review) {
        review.approved = Some(self.data.decision.clone());
    }

    pub fn decision(&self) -> &Decision {
        &self.data.decision
    }
}

/// Why no approved review can be given for a decision number. All are answered as the caller's
/// question (HTTP 404, CLI exit 2): nothing is wrong with the tracker.
#[derive(Clone, Debug, PartialEq, Eq, thiserror::Error)]
pub enum ApprovalError {
    #[error("no review was approved by decision `{number}`{}", as_known(.known_at))]
    NotFound { number: String, known_at: Option<String> },
    #[error(
        "decision `{number}` approves more than one review (events {}): a decision number approves one review; retract the approvals entered in error",
        .events.iter().map(Uuid::to_string).collect::<Vec<_>>().join(", ")
    )]
    Conflict { number: String, events: Vec<Uuid> },
    #[error(
        "decision `{number}` approved the review as known at {known_at}, which is not before the approval was recorded ({recorded}): events recorded since could change its figures, so it cannot be reproduced; approve it again with an earlier known-at"
    )]
    NotFrozen { number: String, known_at: String, recorded: String },
    #[error(transparent)]
    Query(#[from] QueryError),
}

fn as_known(known_at: &Option<String>) -> String {
    known_at.as_ref().map(|k| format!(" as known at {k}")).unwrap_or_default()
}

impl Engine {
    /// The review approved by decision `number` as known at `known_at` (`None`: now): among the
    /// approvals recorded by then and not retracted, those with that number. Copies approving the
    /// same review by the same decision are one approval; different reviews under one number are a
    /// conflict. An approval whose `known_at` is not before its own `recordedtime` is refused: events
    /// recorded after it could still change the figures it approved.
    pub fn approval(&self, number: &str, known_at: Option<i64>) -> Result<Approval, ApprovalError> {
        let mut found: Vec<(i64, Uuid, ReviewApproved)> = self
            .approvals
            .iter()
            .filter(|a| a.value.decision.number == number && self.alive(a.ev, known_at))
            .map(|a| {
                let meta = &self.metas[a.ev as usize];
                (meta.recorded, meta.id, a.value.data())
            })
            .collect();
        // The first recorded (then the smallest id) stands for identical copies: an order of the set.
        found.sort_unstable_by_key(|&(recorded, id, _)| (recorded, id));
        let Some((recorded, event_id, first)) = found.first().cloned() else {
            return Err(ApprovalError::NotFound {
                number: number.to_owned(),
                known_at: known_at.map(time::format_instant),
            });
        };
        if found.iter().any(|(_, _, other)| !other.same_approval(&first)) {
            let mut events: Vec<Uuid> = found.iter().map(|&(_, id, _)| id).collect();
            events.sort_unstable();
            return Err(ApprovalError::Conflict { number: number.to_owned(), events });
        }
        // Validation refuses an approval without an instant; such an event is not an approval.
        let frozen = first.known_at_instant().ok_or_else(|| ApprovalError::NotFound {
            number: number.to_owned(),
            known_at: known_at.map(time::format_instant),
        })?;
        let recorded = (recorded != i64::MIN).then_some(recorded);
        if let Some(r) = recorded
            && frozen >= r
        {
            return Err(ApprovalError::NotFrozen {
                number: number.to_owned(),
                known_at: time::format_instant(frozen),
                recorded: time::format_instant(r),
            });
        }
        Ok(Approval { event_id, recorded, data: first, known_at: frozen })
    }

    /// Every approved review that can be reproduced as known at `known_at` (`None`: now): one per
    /// decision number among the approvals recorded by then and not retracted, as [`Engine::approval`]
    /// finds it. A number in conflict, or an approval that froze no past instant, is left out: it
    /// answers no review. Ordered by the review's date, then the decision's date and number.
    pub fn approvals(&self, known_at: Option<i64>) -> Vec<Approval> {
        let mut numbers: Vec<&str> = self
            .approvals
            .iter()
            .filter(|a| self.alive(a.ev, known_at))
            .map(|a| a.value.decision.number.as_str())
            .collect();
        numbers.sort_unstable();
        numbers.dedup();
        let mut found: Vec<Approval> =
            numbers.into_iter().filter_map(|number| self.approval(number, known_at).ok()).collect();
        found.sort_by(|a, b| {
            (a.data.as_of, a.data.decision.date, &a.data.decision.number).cmp(&(
                b.data.as_of,
                b.data.decision.date,
                &b.data.decision.number,
            ))
        });
        found
    }

    /// The review approved by decision `number` (as known now), computed again and marked as the
    /// approved review: the same figures, `known_at` and `events` as when it was approved.
    pub fn approved_review(&self, number: &str) -> Result<Review, ApprovalError> {
        let approval = self.approval(number, None)?;
        let mut review = self.review(&approval.query())?;
        approval.mark(&mut review);
        Ok(review)
    }

    /// Admission's rules for an approval (see the module docs): its number may not approve another
    /// review, among the approvals accepted (and not retracted) or admitted earlier in the batch; and
    /// when the door says when it stamps (`Batch::recording_at`), its `known_at` must lie before.
    pub(super) fn admit_approval(&self, batch: &Batch, event: &Event, d: &ReviewApproved) -> Result<(), Refusal> {
        let refuse =
            |field: &str, rule: Rule, detail: String| Refusal::new(Some(event.id.to_string()), field, rule, detail);
        if let (Some(now), Some(k)) = (batch.now, d.known_at_instant())
            && k >= now
        {
            return Err(refuse(
                "data.known_at",
                Rule::KnownAtFuture,
                format!(
                    "known_at {} is not in the past (now {}): events recorded until then could still change the approved figures; approve the review as known at an instant already passed",
                    time::format_instant(k),
                    time::format_instant(now)
                ),
            ));
        }
        let number = &d.decision.number;
        let known = self
            .approvals
            .iter()
            .filter(|a| a.value.decision.number == *number && self.alive(a.ev, None))
            .map(|a| a.value.data());
        let in_batch = batch.approvals.iter().filter(|a| a.decision.number == *number).cloned();
        if let Some(other) = known.chain(in_batch).find(|other| !other.same_approval(d)) {
            return Err(refuse(
                "data.decision.number",
                Rule::ApprovalConflict,
                format!(
                    "decision `{number}` already approves another review (scope `{}` on {} as known at {}, issued by {} on {}); a decision number approves one review: retract that approval first if it was entered in error",
                    other.scope, other.as_of, other.known_at, other.decision.issuer, other.decision.date
                ),
            ));
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::engine::{Admission, Batch};
    use crate::time::{Day, parse_instant};

    /// One event: id, type stem, time, subject, recordedtime, data.
    fn event(n: u128, stem: &str, time: &str, subject: &str, recorded: &str, data: &str) -> Event {
        let id = Uuid::from_u128(n);
        let json = format!(
            r#"{{"specversion":"1.0","id":"{id}","source":"test","type":"vn.hoctap.{stem}.v1","time":"{time}","subject":"{subject}","recordedtime":"{recorded}","data":{data}}}"#
        );
        Event::from_json_recorded(json.as_bytes()).unwrap_or_else(|r| panic!("test event {n}: {r}"))
    }

    fn unit(n: u128, code: &str, level: &str, parent: Option<&str>) -> Event {
        let parent = parent.map(|p| format!(r#","parent":"{p}""#)).unwrap_or_default();
        event(
            n,
            "admin_unit.established",
            "2021-01-01T00:00:00+07:00",
            code,
            "2026-01-05T00:00:00Z",
            &format!(r#"{{"code":"{code}","level":"{level}","name":"U{code}"{parent}}}"#),
        )
    }

    fn recognised(n: u128, subject: &str, recorded: &str) -> Vec<Event> {
        vec![
            event(
                n,
                "registration.submitted",
                "2025-02-01T09:00:00+07:00",
                subject,
                recorded,
                r#"{"subject_kind":"citizen","commune":"00004","title":"learning_citizen","cycle_year":2025}"#,
            ),
            event(
                n + 1,
                "recognition.granted",
                "2025-11-01T09:00:00+07:00",
                subject,
                recorded,
                r#"{"title":"learning_citizen","cycle_year":2025,"decision":{"number":"9/QD","issuer":"UBND-01","date":"2025-11-01"},"valid_from":"2025-01-01","valid_until":"2026-12-31"}"#,
            ),
        ]
    }

    fn approval(n: u128, as_of: &str, known_at: &str, number: &str, recorded: &str) -> Event {
        event(
            n,
            "review.approved",
            "2026-01-20T00:00:00+07:00",
            "01",
            recorded,
            &format!(
                r#"{{"scope":"01","as_of":"{as_of}","milestone":2025,"known_at":"{known_at}","decision":{{"number":"{number}","issuer":"UBND-01","date":"2026-01-20"}}}}"#
            ),
        )
    }

    fn retraction(n: u128, of: u128, recorded: &str) -> Event {
        event(
            n,
            "event.retracted",
            "2026-01-25T00:00:00+07:00",
            "01",
            recorded,
            &format!(r#"{{"event_id":"{}","reason":"entered in error"}}"#, Uuid::from_u128(of)),
        )
    }

    /// Hà Nội with one commune, a baseline, a target and one recognised citizen, recorded by 2026-01-10.
    fn world() -> Vec<Event> {
        let mut events = vec![
            unit(1, "01", "province", None),
            unit(2, "00004", "commune", Some("01")),
            event(
                3,
                "baseline.recorded",
                "2021-01-01T00:00:00+07:00",
                "01",
                "2026-01-05T00:00:00Z",
                r#"{"unit":"01","metric":"adults","value":4}"#,
            ),
            event(
                4,
                "target.set",
                "2021-12-15T00:00:00+07:00",
                "01",
                "2026-01-05T00:00:00Z",
                r#"{"plan":{"issuer":"UBND-01","number":"290","year":2021},"scope":"01","indicator":"learning_citizen/adults","milestone":2025,"percent":50}"#,
            ),
        ];
        events.extend(recognised(10, "cit-a", "2026-01-10T00:00:00Z"));
        events
    }

    fn fold(events: &[Event]) -> Engine {
        let mut engine = Engine::new();
        events.iter().for_each(|e| engine.apply(e));
        engine
    }

    fn recognised_in_scope(review: &Review) -> u64 {
        review.units[0].titles.values().map(|t| t.recognised).sum()
    }

    #[test]
    fn the_approved_review_is_the_question_as_known_at_the_frozen_instant() {
        let mut events = world();
        events.push(approval(20, "2025-12-31", "2026-01-10T00:00:00Z", "15/QD-UBND", "2026-01-21T00:00:00Z"));
        let engine = fold(&events);
        let approved = engine.approved_review("15/QD-UBND").unwrap();
        let query = Query {
            scope: "01".into(),
            as_of: Day::parse("2025-12-31").unwrap(),
            known_at: parse_instant("2026-01-10T00:00:00Z"),
            milestone: Some(2025),
        };
        let mut expected = engine.review(&query).unwrap();
        assert_eq!(expected.approved, None);
        expected.approved = Some(Decision {
            number: "15/QD-UBND".into(),
            issuer: "UBND-01".into(),
            date: Day::parse("2026-01-20").unwrap(),
        });
        assert_eq!(approved, expected);
        assert_eq!(approved.known_at.as_deref(), Some("2026-01-10T00:00:00Z"));
        assert_eq!(approved.events, 6, "the events recorded by the frozen instant, the approval not among them");
        assert_eq!(recognised_in_scope(&approved), 1);

        // Later events change the plain review, never the approved one.
        let mut later = events.clone();
        later.extend(recognised(30, "cit-b", "2026-02-01T00:00:00Z"));
        let engine = fold(&later);
        assert_eq!(engine.approved_review("15/QD-UBND").unwrap(), approved);
        let now = engine.review(&Query { known_at: None, ..query.clone() }).unwrap();
        assert_eq!(recognised_in_scope(&now), 2);
        assert_ne!(now.known_at, approved.known_at);
    }

    #[test]
    fn an_approval_is_found_as_known_at_a_time_and_not_before_it_was_recorded() {
        let mut events = world();
        events.push(approval(20, "2025-12-31", "2026-01-10T00:00:00Z", "15/QD-UBND", "2026-01-21T00:00:00Z"));
        let engine = fold(&events);
        let at = |k: &str| engine.approval("15/QD-UBND", parse_instant(k));
        assert!(matches!(at("2026-01-20T23:59:59Z"), Err(ApprovalError::NotFound { .. })));
        let found = at("2026-01-21T00:00:00Z").unwrap();
        assert_eq!(found.event_id, Uuid::from_u128(20));
        assert_eq!(found.recorded, parse_instant("2026-01-21T00:00:00Z"));
        assert_eq!(found.query().known_at, parse_instant("2026-01-10T00:00:00Z"));
        assert!(matches!(engine.approval("16/QD-UBND", None), Err(ApprovalError::NotFound { .. })));
        let message = engine.approval("16/QD-UBND", None).unwrap_err().to_string();
        assert!(message.contains("16/QD-UBND"), "{message}");
    }

    #[test]
    fn the_list_of_approvals_holds_each_reproducible_decision_once_as_known_at_a_time() {
        let mut events = world();
        events.push(approval(20, "2025-12-31", "2026-01-10T00:00:00Z", "15/QD-UBND", "2026-01-21T00:00:00Z"));
        // An identical copy under another id is the same approval.
        events.push(approval(21, "2025-12-31", "2026-01-10T07:00:00+07:00", "15/QD-UBND", "2026-01-22T00:00:00Z"));
        events.push(approval(22, "2025-06-30", "2026-01-10T00:00:00Z", "16/QD-UBND", "2026-01-23T00:00:00Z"));
        // Frozen after its own recording: it reproduces nothing, so it is not offered.
        events.push(approval(23, "2025-12-31", "2026-02-10T00:00:00Z", "17/QD-UBND", "2026-02-01T00:00:00Z"));
        let engine = fold(&events);
        let numbers = |k: Option<i64>| -> Vec<String> {
            engine.approvals(k).into_iter().map(|a| a.data.decision.number).collect()
        };
        assert_eq!(numbers(None), ["16/QD-UBND", "15/QD-UBND"], "ordered by the review's date");
        assert_eq!(numbers(parse_instant("2026-01-22T12:00:00Z")), ["15/QD-UBND"]);
        assert!(numbers(parse_instant("2026-01-20T00:00:00Z")).is_empty());
        let first = &engine.approvals(None)[1];
        assert_eq!(
            (first.event_id, first.known_at),
            (Uuid::from_u128(20), parse_instant("2026-01-10T00:00:00Z").unwrap())
        );

        // A retracted approval leaves the list; a conflict answers neither review.
        let mut retracted = events.clone();
        retracted.push(retraction(24, 22, "2026-01-24T00:00:00Z"));
        retracted.push(approval(25, "2025-09-30", "2026-01-10T00:00:00Z", "15/QD-UBND", "2026-01-25T00:00:00Z"));
        assert!(fold(&retracted).approvals(None).is_empty());
    }

    #[test]
    fn an_approval_that_froze_no_past_instant_is_not_reproduced() {
        let mut events = world();
        // Frozen after its own recording: an event recorded in between would change the figures.
        events.push(approval(20, "2025-12-31", "2026-01-22T00:00:00Z", "15/QD-UBND", "2026-01-21T00:00:00Z"));
        let engine = fold(&events);
        let err = engine.approved_review("15/QD-UBND").unwrap_err();
        assert!(matches!(err, ApprovalError::NotFrozen { .. }), "{err}");
        assert!(err.to_string().contains("2026-01-22T00:00:00Z"), "{err}");
    }

    #[test]
    fn one_number_for_two_reviews_is_a_conflict_whatever_the_arrival_order() {
        let a = approval(20, "2025-12-31", "2026-01-10T00:00:00Z", "15/QD-UBND", "2026-01-21T00:00:00Z");
        let b = approval(21, "2025-06-30", "2026-01-10T00:00:00Z", "15/QD-UBND", "2026-01-22T00:00:00Z");
        let copy = approval(22, "2025-12-31", "2026-01-10T07:00:00+07:00", "15/QD-UBND", "2026-01-23T00:00:00Z");
        let mut orders = Vec::new();
        for order in [[&a, &b, &copy], [&b, &copy, &a], [&copy, &a, &b]] {
            let mut events = world();
            events.extend(order.into_iter().cloned());
            events.reverse();
            let engine = fold(&events);
            orders.push(engine.approval("15/QD-UBND", None));
            // As known before b was recorded, a (and its identical copy, later) stand alone.
            let before_b = engine.approval("15/QD-UBND", parse_instant("2026-01-21T12:00:00Z")).unwrap();
            assert_eq!(before_b.event_id, Uuid::from_u128(20));
        }
        let expected = Err(ApprovalError::Conflict {
            number: "15/QD-UBND".into(),
            events: vec![Uuid::from_u128(20), Uuid::from_u128(21), Uuid::from_u128(22)],
        });
        assert!(orders.iter().all(|o| *o == expected), "{orders:#?}");
        let message = orders[0].as_ref().unwrap_err().to_string();
        assert!(
            message.contains("more than one review") && message.contains(&Uuid::from_u128(21).to_string()),
            "{message}"
        );

        // Retracting the approval entered in error settles it, in every order too.
        for order in [[&a, &b], [&b, &a]] {
            let mut events = world();
            events.extend(order.into_iter().cloned());
            events.push(retraction(23, 21, "2026-01-24T00:00:00Z"));
            let engine = fold(&events);
            assert_eq!(engine.approval("15/QD-UBND", None).unwrap().event_id, Uuid::from_u128(20));
            assert!(matches!(
                engine.approval("15/QD-UBND", parse_instant("2026-01-23T00:00:00Z")),
                Err(ApprovalError::Conflict { .. })
            ));
        }
    }

    /// Admission: a number already approving another review is refused (accepted before, or earlier in
    /// the batch); the same approval again under another id is not; a known-at not in the past is
    /// refused when the door says when it stamps.
    #[test]
    fn admission_refuses_a_second_review_under_one_number_and_an_unfrozen_known_at() {
        let mut events = world();
        events.push(approval(20, "2025-12-31", "2026-01-10T00:00:00Z", "15/QD-UBND", "2026-01-21T00:00:00Z"));
        let engine = fold(&events);
        let fresh = |mut e: Event| {
            e.recordedtime = None;
            e
        };
        let other = fresh(approval(21, "2025-06-30", "2026-01-10T00:00:00Z", "15/QD-UBND", "2026-01-22T00:00:00Z"));
        let refusal = engine.admit(&mut Batch::default(), &other).unwrap_err();
        assert_eq!((refusal.field.as_str(), refusal.rule), ("data.decision.number", Rule::ApprovalConflict));
        assert!(refusal.detail.contains("2025-12-31"), "names the review it approves: {}", refusal.detail);

        let same = fresh(approval(22, "2025-12-31", "2026-01-10T07:00:00+07:00", "15/QD-UBND", "2026-01-22T00:00:00Z"));
        assert_eq!(engine.admit(&mut Batch::default(), &same), Ok(Admission::New));

        // In one batch: the first approval of a number stands, the second is refused.
        let empty = fold(&world());
        let mut batch = Batch::default();
        let first = fresh(approval(30, "2025-12-31", "2026-01-10T00:00:00Z", "16/QD-UBND", "2026-01-22T00:00:00Z"));
        let second = fresh(approval(31, "2025-06-30", "2026-01-10T00:00:00Z", "16/QD-UBND", "2026-01-22T00:00:00Z"));
        assert_eq!(empty.admit(&mut batch, &first), Ok(Admission::New));
        assert_eq!(empty.admit(&mut batch, &second).unwrap_err().rule, Rule::ApprovalConflict);

        // A retracted approval frees its number.
        let mut retracted = events.clone();
        retracted.push(retraction(23, 20, "2026-01-24T00:00:00Z"));
        assert_eq!(fold(&retracted).admit(&mut Batch::default(), &other), Ok(Admission::New));

        let now = parse_instant("2026-01-10T00:00:00Z").unwrap();
        let mut batch = Batch::recording_at(now);
        let refusal = empty.admit(&mut batch, &first).unwrap_err();
        assert_eq!((refusal.field.as_str(), refusal.rule), ("data.known_at", Rule::KnownAtFuture));
        let mut batch = Batch::recording_at(now + 1);
        assert_eq!(empty.admit(&mut batch, &first), Ok(Admission::New));
    }

    #[test]
    fn an_approval_needs_a_known_unit_and_an_instant() {
        let empty = fold(&world());
        let mut e = approval(20, "2025-12-31", "2026-01-10T00:00:00Z", "15/QD-UBND", "2026-01-21T00:00:00Z");
        e.recordedtime = None;
        let mut elsewhere = e.clone();
        elsewhere.subject = "79".into();
        if let crate::EventData::ReviewApproved(d) = &mut elsewhere.data {
            d.scope = "79".into();
        }
        let refusal = empty.admit(&mut Batch::default(), &elsewhere).unwrap_err();
        assert_eq!((refusal.field.as_str(), refusal.rule), ("data.scope", Rule::UnknownUnit));
        let mut day = e.clone();
        if let crate::EventData::ReviewApproved(d) = &mut day.data {
            d.known_at = "2026-01-10".into();
        }
        let refusal = empty.admit(&mut Batch::default(), &day).unwrap_err();
        assert_eq!((refusal.field.as_str(), refusal.rule), ("data.known_at", Rule::Schema));
    }
}
