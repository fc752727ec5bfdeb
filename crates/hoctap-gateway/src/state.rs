//! What the gateway holds in memory: the reference events it accepted (folded into an `Engine` for the
//! domain's rules of admission: units, approvals), the unit tree (for authorisation), which ids went to
//! the reference topic (to route retractions), and the last `recordedtime` stamped. The events topic
//! is remembered in PostgreSQL: a request's ids and subjects are looked up there ([`Decoded::lookups`])
//! and handed to [`State::judge`] as [`Known`]. Judging a request is a synchronous function of both;
//! publishing and recording happen in `http`.

use crate::Source;
use crate::places::{self, Places};
use hoctap_domain::validate::{CITIZEN_ID_DETAIL, find_citizen_id_in_json};
use hoctap_domain::{Admission, Batch, Engine, Event, EventData, Refusal, Rule, Warning};
use hoctap_kafka::{Reason, Route};
use hoctap_store::Known;
use std::collections::HashSet;
use uuid::Uuid;

#[derive(Debug, Default)]
pub(crate) struct State {
    engine: Engine,
    places: Places,
    reference_ids: HashSet<Uuid>,
    last_recorded: i64,
}

/// What became of one event of a request.
#[derive(Debug)]
pub(crate) enum Verdict {
    /// Admitted and new: to be stamped and published; with why it will not count as it stands.
    New(Event, Vec<Warning>),
    /// Known already with the same content: nothing to publish.
    Duplicate(Uuid),
    /// Refused with an HTTP status (400 not JSON, 422 bad input, 403 another province).
    Refused { status: u16, reason: Reason },
}

/// The judgement of a whole request.
#[derive(Debug)]
pub(crate) enum Judgement {
    /// A raw citizen-ID number somewhere: the whole request is refused and nothing is published.
    CitizenId(Vec<(usize, Reason)>),
    /// One verdict per event, in request order.
    Events(Vec<Verdict>),
}

/// The rule spelling of a refusal for another province (the domain has no such rule: it is the
/// gateway's).
pub(crate) const PROVINCE_RULE: &str = "province";

/// The rule spelling of a refusal for an event larger than the log takes (the broker's limit, not a
/// rule of the domain).
pub(crate) const SIZE_RULE: &str = "size";

/// The `id` of an event too large to decode, when it has a readable one.
fn sniff_id(raw: &[u8]) -> Option<String> {
    #[derive(serde::Deserialize)]
    struct Id {
        id: Option<String>,
    }
    serde_json::from_slice::<Id>(raw).ok()?.id
}

impl State {
    /// Takes in an event that is in the log (acknowledged by Kafka, or read back at start). Only
    /// reference events are held; an event of the events topic only moves the last stamp (PostgreSQL
    /// remembers it).
    pub fn fold(&mut self, event: &Event, route: Route) {
        if route == Route::Reference {
            self.engine.apply(event);
            self.places.fold(event);
            self.reference_ids.insert(event.id);
        }
        if let Some(r) = event.recordedtime {
            self.saw_recorded(r);
        }
    }

    /// Notes a `recordedtime` already in the log: every later stamp is after it.
    pub fn saw_recorded(&mut self, recorded: i64) {
        self.last_recorded = self.last_recorded.max(recorded);
    }

    /// Reference events held.
    pub fn reference_events(&self) -> usize {
        self.engine.len()
    }

    /// The next `recordedtime`: now in UTC microseconds, strictly after every one stamped or read before
    /// (so that "known at K" stays a prefix of what this gateway wrote, even if the clock steps back).
    pub fn stamp(&mut self) -> i64 {
        self.last_recorded = clock_micros().max(self.last_recorded + 1);
        self.last_recorded
    }

    /// The topic of an accepted event: a retraction follows the event it names.
    pub fn route(&self, event: &Event, batch_reference: &HashSet<Uuid>) -> Route {
        Route::of(event, |id| self.reference_ids.contains(id) || batch_reference.contains(id))
    }

    /// Judges a request's events as one batch: the domain's rules (units established anywhere in the
    /// batch are known to all of it; ids accepted before, here or in `known`, are duplicates), then
    /// the source's province (subjects placed by `known` or by the batch).
    ///
    /// An event over `max_event_bytes` is refused alone (413, rule `size`) without being decoded.
    pub fn judge(&self, source: &Source, raws: &[&[u8]], decoded: &Decoded, known: &Known) -> Judgement {
        let Decoded { events: decoded, max_event_bytes } = decoded;
        let max_event_bytes = *max_event_bytes;
        let oversize = |raw: &[u8]| raw.len() > max_event_bytes;
        // Stamped after judging, under the same lock: at this instant or later (an approval's known-at
        // must lie before its stamp).
        let mut batch = Batch::recording_at(clock_micros().max(self.last_recorded + 1));
        for r in &known.events {
            batch.accepted_before(r.id, r.digest, &r.subject);
        }
        for (subject, _) in &known.placements {
            batch.placed_before(subject);
        }
        batch.add_units(&self.engine, decoded.iter().filter_map(|d| d.as_ref().ok()));

        let mut verdicts: Vec<Option<Verdict>> = Vec::with_capacity(raws.len());
        let mut admitted: Vec<(usize, Admission)> = Vec::new();
        let mut citizen_ids = Vec::new();
        for (i, d) in decoded.iter().enumerate() {
            if oversize(raws[i]) {
                verdicts.push(Some(Verdict::Refused {
                    status: 413,
                    reason: Reason {
                        event_id: sniff_id(raws[i]),
                        field: "(event)".to_owned(),
                        rule: SIZE_RULE.to_owned(),
                        detail: format!(
                            "the event is {} bytes; the log takes events of at most {max_event_bytes} bytes",
                            raws[i].len()
                        ),
                    },
                }));
                continue;
            }
            let refusal = match d {
                Ok(event) => match self.engine.admit(&mut batch, event) {
                    Ok(admission) => {
                        admitted.push((i, admission));
                        verdicts.push(None);
                        continue;
                    }
                    Err(r) => r,
                },
                Err(r) => r.clone(),
            };
            if refusal.rule == Rule::CitizenId {
                citizen_ids.push((i, Reason::from(&refusal)));
            }
            let status = if refusal.rule == Rule::Json { 400 } else { 422 };
            verdicts.push(Some(Verdict::Refused { status, reason: Reason::from(&refusal) }));
        }
        if !citizen_ids.is_empty() {
            return Judgement::CitizenId(citizen_ids);
        }

        let events: Vec<&Event> =
            admitted.iter().map(|(i, _)| decoded[*i].as_ref().expect("admitted events decoded")).collect();
        let prior = Places::placed(known.placements.iter().map(|(s, c)| (s.as_str(), c.as_str())));
        let foreign = places::check(&self.places, &prior, &source.scope, &source.name, &events);
        for ((i, admission), foreign) in admitted.into_iter().zip(foreign) {
            let event = decoded[i].as_ref().expect("admitted events decoded");
            verdicts[i] = Some(match (foreign, admission) {
                (Some(f), _) => Verdict::Refused {
                    status: 403,
                    reason: Reason {
                        event_id: Some(event.id.to_string()),
                        field: f.field,
                        rule: PROVINCE_RULE.to_owned(),
                        detail: f.detail,
                    },
                },
                (None, Admission::New) => Verdict::New(event.clone(), self.engine.warnings(&batch, event)),
                (None, Admission::Duplicate) => Verdict::Duplicate(event.id),
            });
        }
        Judgement::Events(verdicts.into_iter().map(|v| v.expect("every event judged")).collect())
    }
}

/// A request's events decoded, before judging: what to look up in PostgreSQL first.
#[derive(Debug)]
pub(crate) struct Decoded {
    events: Vec<Result<Event, Refusal>>,
    max_event_bytes: usize,
}

impl Decoded {
    /// Decodes a request's events. A raw citizen-ID number anywhere refuses the whole request
    /// ([`Judgement::CitizenId`]); an event over `max_event_bytes` is not decoded (refused when judged).
    pub fn new(raws: &[&[u8]], max_event_bytes: usize) -> Result<Decoded, Judgement> {
        let citizen_ids: Vec<(usize, Reason)> =
            raws.iter().enumerate().filter_map(|(i, raw)| citizen_id_in(raw).map(|r| (i, r))).collect();
        if !citizen_ids.is_empty() {
            return Err(Judgement::CitizenId(citizen_ids));
        }
        let events = raws
            .iter()
            .map(|raw| {
                if raw.len() > max_event_bytes {
                    // Not decoded (nor counted in the batch's units): refused when judged.
                    Err(Refusal::new(None, "(event)", Rule::Json, String::new()))
                } else {
                    Event::from_json(raw)
                }
            })
            .collect();
        Ok(Decoded { events, max_event_bytes })
    }

    /// What PostgreSQL must say before judging: the ids of the events and of the events their
    /// retractions name; the subjects of the events.
    pub fn lookups(&self) -> (Vec<Uuid>, Vec<&str>) {
        let events = || self.events.iter().filter_map(|e| e.as_ref().ok());
        let mut ids: Vec<Uuid> = events().map(|e| e.id).collect();
        ids.extend(events().filter_map(|e| match &e.data {
            EventData::EventRetracted(d) => Some(d.event_id),
            _ => None,
        }));
        ids.sort_unstable();
        ids.dedup();
        let mut subjects: Vec<&str> = events().map(|e| e.subject.as_str()).collect();
        subjects.sort_unstable();
        subjects.dedup();
        (ids, subjects)
    }
}

/// The clock, in UTC microseconds.
fn clock_micros() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| i64::try_from(d.as_micros()).unwrap_or(i64::MAX))
        .unwrap_or(0)
}

/// A raw citizen-ID number anywhere in an event, as the domain finds it in the text as sent (every
/// attribute, keys, JSON escapes; UUIDs are never one). An event that is not even JSON but holds such
/// a number is treated alike: it would otherwise reach the dead-letter topic as it is. The number is
/// never repeated, and the event is named only by a UUID id.
fn citizen_id_in(raw: &[u8]) -> Option<Reason> {
    let field = find_citizen_id_in_json(raw)?;
    Some(Reason {
        event_id: sniff_id(raw).filter(|id| Uuid::parse_str(id).is_ok()),
        field,
        rule: Rule::CitizenId.as_str().to_owned(),
        detail: CITIZEN_ID_DETAIL.to_owned(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_citizen_ids_where_the_rule_says() {
        let ev = |subject: &str, data: &str| {
            format!(
                r#"{{"specversion":"1.0","id":"6f1c1a52-3d8e-4f0e-9a43-012345678901","source":"s","type":"vn.hoctap.registration.withdrawn.v1","time":"2025-03-01T09:00:00+07:00","subject":"{subject}","data":{data}}}"#
            )
        };
        let clean = ev("cit-1", r#"{"title":"learning_citizen","cycle_year":2025}"#);
        assert_eq!(citizen_id_in(clean.as_bytes()), None, "a UUID's digits are not a citizen-ID");
        let in_subject = ev("001203004567", r#"{"title":"learning_citizen","cycle_year":2025}"#);
        let r = citizen_id_in(in_subject.as_bytes()).unwrap();
        assert_eq!(
            (r.field.as_str(), r.event_id.as_deref()),
            ("subject", Some("6f1c1a52-3d8e-4f0e-9a43-012345678901"))
        );
        assert!(!r.detail.contains("001203004567"));
        let in_data = ev("cit-1", r#"{"note":["x","CCCD 001203004567"]}"#);
        assert_eq!(citizen_id_in(in_data.as_bytes()).unwrap().field, "data.note[1]");
        // Ids and hashes are not exempt by their key: only a UUID is not a citizen-ID.
        let named = ev("cit-1", r#"{"x":{"event_id":"001203004567"}}"#);
        assert_eq!(citizen_id_in(named.as_bytes()).unwrap().field, "data.x.event_id");
        let escaped = ev("cit-1", r#"{"title":"learning_citizen"}"#)
            .replace("\"source\":\"s\"", r#""source":"/hs/\u0030\u0030\u0031203004567""#);
        assert_eq!(citizen_id_in(escaped.as_bytes()).unwrap().field, "source");
        assert_eq!(citizen_id_in(b"{not json 001203004567").unwrap().field, "(event)");
    }
}
