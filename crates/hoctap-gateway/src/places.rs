//! Which provinces an event belongs to, so that a source publishes only for its own province.
//!
//! Commune codes do not start with their province's code (they are national serial numbers), so the
//! province comes from the geography: a unit belongs to every province reached by following its
//! parents upward. "Every parent it was ever given" rather than "its parent on the event's date": an
//! event's date may lie before the unit's establishment or across the 2025 reform, and authorisation
//! asks whether the source speaks for that unit at all, not where a review counts it on a date. A unit
//! that moved from one province to another (a province merger) therefore belongs to both, and the
//! sources of both may publish its history.
//!
//! An event belongs to the provinces of the units it names (commune, unit, scope, code, parent,
//! successor: all of them must lie in the source's province). An event that names no unit (a
//! declaration, evidence, a recognition, a withdrawal, a retraction) belongs to its subject: the
//! provinces of the communes the subject's accepted events named, or of the subject itself when it is a
//! unit. A subject the gateway has never placed belongs to no province yet; such an event is allowed
//! (it places the subject nowhere, and counts nowhere until an event names its commune).
//!
//! An event that places its subject (a registration, a skill certification, a relocation) needs both:
//! its commune in the source's province, and the subject, when placed already, too. A subject is not
//! taken over by naming a commune of another province; a move across provinces comes from a source
//! allowed in both (a national one). A retraction has the subject of the event it names (the domain
//! refuses any other, `subject_mismatch`), so it belongs to that event's provinces.

use crate::Scope;
use hoctap_domain::codes::Level;
use hoctap_domain::{Event, EventData};
use std::collections::{HashMap, HashSet};

/// The geography and subject places the gateway has accepted, reduced to what authorisation needs.
#[derive(Debug, Default)]
pub(crate) struct Places {
    /// Every unit established, with every parent it was ever given.
    parents: HashMap<Box<str>, Vec<Box<str>>>,
    /// The units established at province level.
    provinces: HashSet<Box<str>>,
    /// The communes each subject's accepted events named.
    subjects: HashMap<Box<str>, Vec<Box<str>>>,
}

impl Places {
    /// Takes in an accepted event.
    pub fn fold(&mut self, event: &Event) {
        match &event.data {
            EventData::AdminUnitEstablished(d) => {
                let parents = self.parents.entry(d.code.as_str().into()).or_default();
                if let Some(p) = &d.parent {
                    push_new(parents, p);
                }
                if d.level == Level::Province {
                    self.provinces.insert(d.code.as_str().into());
                }
            }
            EventData::AdminUnitReparented(d) => {
                push_new(self.parents.entry(d.code.as_str().into()).or_default(), &d.parent)
            }
            _ => {
                if let Some(commune) = placement(event) {
                    self.place_subject(&event.subject, commune);
                }
            }
        }
    }

    /// Subjects placed in communes, as PostgreSQL remembers them: (subject, commune).
    pub fn placed<'a>(placements: impl IntoIterator<Item = (&'a str, &'a str)>) -> Places {
        let mut places = Places::default();
        for (subject, commune) in placements {
            places.place_subject(subject, commune);
        }
        places
    }

    fn place_subject(&mut self, subject: &str, commune: &str) {
        match self.subjects.get_mut(subject) {
            Some(communes) => push_new(communes, commune),
            None => {
                self.subjects.insert(subject.into(), vec![commune.into()]);
            }
        }
    }

    fn is_unit(&self, code: &str) -> bool {
        self.parents.contains_key(code)
    }
}

/// The commune an event places its subject in (a registration, a skill certification, a relocation).
pub fn placement(event: &Event) -> Option<&str> {
    match &event.data {
        EventData::RegistrationSubmitted(d) => Some(&d.commune),
        EventData::SkillCertified(d) => Some(&d.commune),
        EventData::SubjectRelocated(d) => Some(&d.commune),
        _ => None,
    }
}

fn push_new(list: &mut Vec<Box<str>>, item: &str) {
    if !list.iter().any(|x| &**x == item) {
        list.push(item.into());
    }
}

/// The accepted places (the unit tree in memory, the batch's subjects as PostgreSQL remembers them)
/// with what one batch adds on top.
struct View<'a> {
    base: &'a Places,
    prior: &'a Places,
    batch: &'a Places,
}

impl View<'_> {
    fn is_unit(&self, code: &str) -> bool {
        self.base.is_unit(code) || self.batch.is_unit(code)
    }

    /// Every province `code` lies or lay in (itself, when it is one), sorted.
    fn provinces_of<'s>(&'s self, code: &'s str) -> Vec<&'s str> {
        let mut seen: HashSet<&str> = HashSet::new();
        let mut stack: Vec<&str> = vec![code];
        let mut found = Vec::new();
        while let Some(c) = stack.pop() {
            if !seen.insert(c) {
                continue;
            }
            if self.base.provinces.contains(c) || self.batch.provinces.contains(c) {
                found.push(c);
            }
            for places in [self.base, self.prior, self.batch] {
                if let Some(parents) = places.parents.get(c) {
                    stack.extend(parents.iter().map(|p| &**p));
                }
            }
        }
        found.sort_unstable();
        found
    }

    fn subject_provinces<'s>(&'s self, subject: &'s str) -> Vec<&'s str> {
        if self.is_unit(subject) {
            return self.provinces_of(subject);
        }
        let mut found: Vec<&str> = [self.base, self.prior, self.batch]
            .into_iter()
            .filter_map(|p| p.subjects.get(subject))
            .flatten()
            .flat_map(|c| self.provinces_of(c))
            .collect();
        found.sort_unstable();
        found.dedup();
        found
    }
}

/// An event of another province: the field that names the foreign unit, and why.
#[derive(Clone, Debug, PartialEq, Eq)]
pub(crate) struct Foreign {
    pub field: String,
    pub detail: String,
}

/// For each of `events` (admitted by the domain rules), whether it lies outside `scope`.
///
/// A batch is judged as a whole, like the domain's validation: a unit it establishes belongs to the
/// provinces of its parent (settled until nothing changes, since a parent may be established later in
/// the batch), and a subject it places is placed for its other events. Only new units get their place
/// from the batch, so a batch cannot move a known unit into the source's province to then publish
/// for it: re-establishing or reparenting a known unit needs the unit and the new parent to be in it.
/// `prior` holds the placements of the batch's subjects that PostgreSQL remembers.
pub(crate) fn check(
    places: &Places,
    prior: &Places,
    scope: &Scope,
    source: &str,
    events: &[&Event],
) -> Vec<Option<Foreign>> {
    let mut verdicts: Vec<Option<Option<Foreign>>> = vec![None; events.len()];
    let mut batch = Places::default();
    let outside = |field: &str, code: &str, provinces: &[&str]| Foreign {
        field: field.to_owned(),
        detail: format!(
            "`{code}` lies in {}; source `{source}` may publish events of province {scope} only",
            if provinces.is_empty() {
                "no known province".to_owned()
            } else {
                format!("province {}", provinces.join(", "))
            }
        ),
    };

    // 1. Establishments of units not known before: their place comes from their parent.
    let mut pending: Vec<usize> = (0..events.len())
        .filter(|&i| matches!(&events[i].data, EventData::AdminUnitEstablished(d) if !places.is_unit(&d.code)))
        .collect();
    loop {
        let before = pending.len();
        pending.retain(|&i| {
            let EventData::AdminUnitEstablished(d) = &events[i].data else { unreachable!("filtered above") };
            let view = View { base: places, prior, batch: &batch };
            let allowed = match &d.parent {
                None => scope.allows(std::iter::once(d.code.as_str())),
                Some(p) => scope.allows(view.provinces_of(p).into_iter()),
            };
            if allowed {
                batch.fold(events[i]);
                verdicts[i] = Some(None);
            }
            !allowed
        });
        if pending.len() == before {
            break;
        }
    }
    for &i in &pending {
        let EventData::AdminUnitEstablished(d) = &events[i].data else { unreachable!("filtered above") };
        let view = View { base: places, prior, batch: &batch };
        let (field, code) = match &d.parent {
            Some(p) => ("data.parent", p.as_str()),
            None => ("data.code", d.code.as_str()),
        };
        let provinces = if d.parent.is_some() { view.provinces_of(code) } else { vec![code] };
        verdicts[i] = Some(Some(outside(field, code, &provinces)));
    }

    // 2. Events that name units: every unit must lie in the province. The subjects they place are
    //    placed for the rest of the batch.
    for (i, event) in events.iter().enumerate() {
        if verdicts[i].is_some() {
            continue;
        }
        let named = event.data.named_units();
        if named.is_empty() {
            continue;
        }
        let view = View { base: places, prior, batch: &batch };
        let places_subject = matches!(
            event.data,
            EventData::RegistrationSubmitted(_) | EventData::SkillCertified(_) | EventData::SubjectRelocated(_)
        );
        let foreign = named
            .iter()
            .find_map(|(field, code)| {
                let provinces = view.provinces_of(code);
                (!scope.allows(provinces.iter().copied())).then(|| outside(field, code, &provinces))
            })
            // A subject placed in another province is not taken over by naming a commune of this one:
            // a move across provinces comes from a source allowed in both (a national one).
            .or_else(|| places_subject.then(|| subject_outside(&view, scope, source, &event.subject)).flatten());
        if foreign.is_none() && places_subject {
            batch.fold(event);
        }
        verdicts[i] = Some(foreign);
    }

    // 3. Events that name no unit belong to their subject's provinces.
    let view = View { base: places, prior, batch: &batch };
    for (i, event) in events.iter().enumerate() {
        if verdicts[i].is_some() {
            continue;
        }
        verdicts[i] = Some(subject_outside(&view, scope, source, &event.subject));
    }
    verdicts.into_iter().map(|v| v.expect("every event judged")).collect()
}

/// Whether `subject` is placed (by accepted events or earlier in the batch) outside `scope`. A subject
/// placed nowhere yet belongs to no province and is allowed.
fn subject_outside(view: &View<'_>, scope: &Scope, source: &str, subject: &str) -> Option<Foreign> {
    let provinces = view.subject_provinces(subject);
    (!provinces.is_empty() && !scope.allows(provinces.iter().copied())).then(|| Foreign {
        field: "subject".to_owned(),
        detail: format!(
            "subject `{subject}` is placed in province {}; source `{source}` may publish events of province {scope} only",
            provinces.join(", ")
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn ev(json: serde_json::Value) -> Event {
        Event::from_json(json.to_string().as_bytes()).unwrap()
    }

    fn unit(id: u32, code: &str, level: &str, parent: Option<&str>) -> Event {
        let mut data = serde_json::json!({"code": code, "level": level, "name": format!("U{code}")});
        if let Some(p) = parent {
            data["parent"] = p.into();
        }
        ev(serde_json::json!({"specversion": "1.0", "id": format!("00000000-0000-4000-8000-{id:012}"),
            "source": "t", "type": "vn.hoctap.admin_unit.established.v1", "time": "2020-01-01T00:00:00+07:00",
            "subject": code, "data": data}))
    }

    fn registration(id: u32, subject: &str, commune: &str) -> Event {
        ev(serde_json::json!({"specversion": "1.0", "id": format!("00000000-0000-4000-8000-{id:012}"),
            "source": "t", "type": "vn.hoctap.registration.submitted.v1", "time": "2025-03-01T00:00:00+07:00",
            "subject": subject, "data": {"subject_kind": "citizen", "commune": commune,
            "title": "learning_citizen", "cycle_year": 2025}}))
    }

    fn withdrawal(id: u32, subject: &str) -> Event {
        ev(serde_json::json!({"specversion": "1.0", "id": format!("00000000-0000-4000-8000-{id:012}"),
            "source": "t", "type": "vn.hoctap.registration.withdrawn.v1", "time": "2025-04-01T00:00:00+07:00",
            "subject": subject, "data": {"title": "learning_citizen", "cycle_year": 2025}}))
    }

    fn reparent(id: u32, code: &str, parent: &str) -> Event {
        ev(serde_json::json!({"specversion": "1.0", "id": format!("00000000-0000-4000-8000-{id:012}"),
            "source": "t", "type": "vn.hoctap.admin_unit.reparented.v1", "time": "2025-07-01T00:00:00+07:00",
            "subject": code, "data": {"code": code, "parent": parent}}))
    }

    fn known() -> Places {
        let mut p = Places::default();
        for e in [
            unit(1, "01", "province", None),
            unit(2, "001", "district", Some("01")),
            unit(3, "00001", "commune", Some("001")),
            unit(4, "79", "province", None),
            unit(5, "760", "district", Some("79")),
            unit(6, "26734", "commune", Some("760")),
        ] {
            p.fold(&e);
        }
        p
    }

    fn hanoi() -> Scope {
        Scope::Province("01".into())
    }

    #[test]
    fn units_belong_to_their_ancestors_provinces() {
        let places = known();
        let events = [registration(10, "cit-a", "00001"), registration(11, "cit-b", "26734")];
        let verdicts = check(&places, &Places::default(), &hanoi(), "hn", &events.iter().collect::<Vec<_>>());
        assert_eq!(verdicts[0], None);
        let foreign = verdicts[1].as_ref().unwrap();
        assert_eq!(foreign.field, "data.commune");
        assert!(foreign.detail.contains("province 79"), "{}", foreign.detail);
        assert!(
            check(&places, &Places::default(), &Scope::All, "gso", &events.iter().collect::<Vec<_>>())
                .iter()
                .all(Option::is_none)
        );
    }

    fn approval(id: u32, scope: &str) -> Event {
        ev(serde_json::json!({"specversion": "1.0", "id": format!("00000000-0000-4000-8000-{id:012}"),
            "source": "t", "type": "vn.hoctap.review.approved.v1", "time": "2026-01-20T00:00:00+07:00",
            "subject": scope, "data": {"scope": scope, "as_of": "2025-12-31", "known_at": "2026-01-14T17:00:00Z",
            "decision": {"number": "15/QĐ-UBND", "issuer": "UBND-01", "date": "2026-01-20"}}}))
    }

    #[test]
    fn a_source_approves_only_reviews_of_its_province() {
        let places = known();
        let events = [approval(20, "01"), approval(21, "760")];
        let verdicts = check(&places, &Places::default(), &hanoi(), "hn", &events.iter().collect::<Vec<_>>());
        assert_eq!(verdicts[0], None);
        let foreign = verdicts[1].as_ref().unwrap();
        assert_eq!(foreign.field, "data.scope");
        assert!(foreign.detail.contains("province 79"), "{}", foreign.detail);
    }

    #[test]
    fn a_batch_places_its_new_units_and_subjects_wherever_they_stand() {
        let places = known();
        let events = [
            withdrawal(20, "cit-c"),
            registration(21, "cit-c", "00002"),
            unit(22, "00002", "commune", Some("002")),
            unit(23, "002", "district", Some("01")),
            unit(24, "00003", "commune", Some("760")),
            registration(25, "cit-d", "00003"),
            withdrawal(26, "cit-d"),
            withdrawal(27, "cit-unknown"),
        ];
        let verdicts = check(&places, &Places::default(), &hanoi(), "hn", &events.iter().collect::<Vec<_>>());
        let foreign: Vec<bool> = verdicts.iter().map(Option::is_some).collect();
        // cit-d's withdrawal names no unit and cit-d was never placed (its registration was refused): allowed.
        assert_eq!(foreign, [false, false, false, false, true, true, false, false]);
    }

    #[test]
    fn a_known_unit_cannot_be_pulled_into_the_province() {
        let places = known();
        let events =
            [unit(30, "26734", "commune", Some("001")), reparent(31, "26734", "001"), registration(32, "x", "26734")];
        let verdicts = check(&places, &Places::default(), &hanoi(), "hn", &events.iter().collect::<Vec<_>>());
        assert!(verdicts.iter().all(Option::is_some), "{verdicts:?}");
        assert_eq!(verdicts[0].as_ref().unwrap().field, "data.code");
    }

    fn relocation(id: u32, subject: &str, commune: &str) -> Event {
        ev(serde_json::json!({"specversion": "1.0", "id": format!("00000000-0000-4000-8000-{id:012}"),
            "source": "t", "type": "vn.hoctap.subject.relocated.v1", "time": "2025-05-01T00:00:00+07:00",
            "subject": subject, "data": {"commune": commune}}))
    }

    #[test]
    fn a_subject_placed_in_another_province_is_not_taken_over() {
        // The unit tree in memory, the subject's placement as PostgreSQL remembers it.
        let places = known();
        let prior = Places::placed([("cit-hcm", "26734")]);
        let events = [
            relocation(51, "cit-hcm", "00001"),
            registration(52, "cit-hcm", "00001"),
            relocation(53, "cit-new", "00001"),
            withdrawal(54, "cit-new"),
        ];
        let verdicts = check(&places, &prior, &hanoi(), "hn", &events.iter().collect::<Vec<_>>());
        let fields: Vec<Option<&str>> = verdicts.iter().map(|v| v.as_ref().map(|f| f.field.as_str())).collect();
        assert_eq!(fields, [Some("subject"), Some("subject"), None, None]);
        assert!(verdicts[0].as_ref().unwrap().detail.contains("province 79"));
        // Without what PostgreSQL remembers, the subject would be free to take.
        let blind = check(&places, &Places::default(), &hanoi(), "hn", &events.iter().collect::<Vec<_>>());
        assert!(blind.iter().all(Option::is_none), "{blind:?}");
        // A national source moves it; then both provinces may write about it.
        assert!(check(&places, &prior, &Scope::All, "gso", &events[..1].iter().collect::<Vec<_>>())[0].is_none());
        let moved = Places::placed([("cit-hcm", "26734"), ("cit-hcm", "00001")]);
        assert_eq!(check(&places, &moved, &hanoi(), "hn", &[&withdrawal(55, "cit-hcm")]), [None]);
    }

    #[test]
    fn a_merged_unit_belongs_to_both_provinces() {
        let mut places = known();
        places.fold(&reparent(40, "26734", "01"));
        let events = [registration(41, "x", "26734")];
        assert_eq!(check(&places, &Places::default(), &hanoi(), "hn", &events.iter().collect::<Vec<_>>()), [None]);
        assert_eq!(
            check(
                &places,
                &Places::default(),
                &Scope::Province("79".into()),
                "hcm",
                &events.iter().collect::<Vec<_>>()
            ),
            [None]
        );
    }
}
