//! The generated city against the domain contract: deterministic, the right size, every event valid
//! on its own, every unit known before it is named, the reform in place, and the mess of real feeds.

use hoctap_domain::codes::Level;
use hoctap_domain::event::{Event, EventData, EventType};
use hoctap_domain::time::{Day, parse_instant};
use hoctap_domain::validate::{check_content, find_citizen_id};
use hoctap_gen::{Config, Stats, generate, write_ndjson};
use std::collections::{HashMap, HashSet};
use std::sync::OnceLock;

const CITIZENS: u64 = 2_000;

/// One small city shared by the tests of this binary (built once: the tests run unoptimised).
fn city() -> &'static (Vec<Event>, Stats, Vec<u8>) {
    static CITY: OnceLock<(Vec<Event>, Stats, Vec<u8>)> = OnceLock::new();
    CITY.get_or_init(|| {
        let config = Config::new(CITIZENS, 7);
        let mut events = Vec::new();
        let stats = generate(&config, |e| events.push(e.clone()));
        let mut bytes = Vec::new();
        let written = write_ndjson(&config, &mut bytes).expect("writing to memory cannot fail");
        assert_eq!(written, stats, "both entry points generate the same stream");
        (events, stats, bytes)
    })
}

fn day(text: &str) -> Day {
    Day::parse(text).expect("a date")
}

#[test]
fn the_same_config_gives_the_same_bytes_and_another_seed_others() {
    let (_, _, bytes) = city();
    let mut again = Vec::new();
    write_ndjson(&Config::new(CITIZENS, 7), &mut again).unwrap();
    assert!(*bytes == again, "same config, same bytes");
    let mut other = Vec::new();
    write_ndjson(&Config::new(CITIZENS, 8), &mut other).unwrap();
    assert!(*bytes != other, "another seed, another city");
}

#[test]
fn ndjson_lines_are_exactly_event_to_json() {
    // write_ndjson spells subject events without building them (for speed); it must not drift from
    // the domain's canonical encoding.
    let (events, _, bytes) = city();
    let text = std::str::from_utf8(bytes).expect("UTF-8");
    let lines: Vec<&str> = text.lines().collect();
    assert_eq!(lines.len(), events.len());
    assert!(text.ends_with('\n'));
    for (line, event) in lines.iter().zip(events) {
        assert_eq!(*line, event.to_json());
    }
    // And every line reads back as the event it came from.
    for (line, event) in lines.iter().zip(events).step_by(97) {
        assert_eq!(Event::from_json(line.as_bytes()).as_ref(), Ok(event));
    }
}

#[test]
fn size_is_about_48_events_per_citizen_at_this_scale() {
    // ≈ 40 events per citizen (families, clans, communities and units included) plus ≈ 16,000 for
    // the map, the baselines, the targets and the administrative units' own cycles.
    let (events, stats, _) = city();
    assert_eq!(stats.events, events.len() as u64);
    assert!((60_000..=120_000).contains(&stats.events), "{} events", stats.events);
    assert_eq!(stats.by_type.values().sum::<u64>(), stats.events);
    // Hà Nội's official units: the city, 30 districts, 526 communes; on 1 July 2025 the 126 that
    // kept an old code are reparented, the 400 others dissolved with the 30 districts.
    assert_eq!(stats.by_type[&EventType::AdminUnitEstablished], 1 + 30 + 526);
    assert_eq!(stats.by_type[&EventType::AdminUnitReparented], 126);
    assert_eq!(stats.by_type[&EventType::AdminUnitDissolved], 400 + 30);
    assert_eq!(stats.by_type[&EventType::TargetSet], 31);
    let subjects: HashSet<&str> = events.iter().map(|e| e.subject.as_str()).collect();
    assert!(subjects.len() as u64 <= stats.subjects);
    assert!(subjects.len() as u64 > stats.subjects * 9 / 10, "nearly every subject has events");
}

#[test]
fn every_event_passes_the_stateless_rules() {
    let (events, _, _) = city();
    for event in events {
        if let Err(refusal) = check_content(event) {
            panic!("{refusal}\n{}", event.to_json());
        }
        assert!(event.recordedtime.is_none(), "a source never stamps recordedtime");
        assert!(event.time.ends_with("+07:00"), "{}", event.time);
        assert!(find_citizen_id(&event.subject).is_none());
    }
}

#[test]
fn every_named_unit_was_established_earlier_and_is_in_force_that_day() {
    let (events, _, _) = city();
    // code -> (level, established, dissolved)
    let mut units: HashMap<String, (Level, Day, Option<Day>)> = HashMap::new();
    let known = |units: &HashMap<String, (Level, Day, Option<Day>)>, code: &str, e: &Event| {
        assert!(units.contains_key(code), "`{code}` named before it was established: {}", e.to_json());
    };
    for e in events {
        match &e.data {
            EventData::AdminUnitEstablished(d) => {
                if let Some(parent) = &d.parent {
                    known(&units, parent, e);
                }
                assert!(units.insert(d.code.clone(), (d.level, e.day(), None)).is_none(), "{}", d.code);
            }
            EventData::AdminUnitReparented(d) => {
                known(&units, &d.code, e);
                known(&units, &d.parent, e);
            }
            EventData::AdminUnitRenamed(d) => known(&units, &d.code, e),
            EventData::AdminUnitDissolved(d) => {
                known(&units, &d.code, e);
                for successor in &d.successors {
                    known(&units, &successor.code, e);
                }
                units.get_mut(&d.code).expect("known").2 = Some(e.day());
            }
            EventData::BaselineRecorded(d) => known(&units, &d.unit, e),
            EventData::TargetSet(d) => known(&units, &d.scope, e),
            _ => {
                // Subject events: the commune named (or the administrative subject itself) is in force
                // on the event's day — after 1 July 2025 new events name the new communes.
                let named = match &e.data {
                    EventData::RegistrationSubmitted(d) => Some(&d.commune),
                    EventData::SkillCertified(d) => Some(&d.commune),
                    EventData::SubjectRelocated(d) => Some(&d.commune),
                    _ => None,
                };
                for code in
                    named.into_iter().map(String::as_str).chain(units.contains_key(&e.subject).then_some(&*e.subject))
                {
                    known(&units, code, e);
                    let (level, from, until) = units[code];
                    if named.is_some() && !matches!(e.data, EventData::EventRetracted(_)) {
                        assert!(
                            from <= e.day() && until.is_none_or(|u| e.day() < u),
                            "`{code}` ({level}) is not in force on {}: {}",
                            e.day(),
                            e.to_json()
                        );
                    }
                }
            }
        }
    }
}

#[test]
fn the_reform_leaves_126_communes_and_no_districts() {
    let (events, _, _) = city();
    let in_force = |d: Day, level: Level| {
        let mut established: HashSet<&str> = HashSet::new();
        for e in events.iter().filter(|e| e.day() <= d) {
            match &e.data {
                EventData::AdminUnitEstablished(u) if u.level == level => {
                    established.insert(&u.code);
                }
                EventData::AdminUnitDissolved(u) => {
                    established.remove(u.code.as_str());
                }
                _ => {}
            }
        }
        established.len()
    };
    assert_eq!(in_force(day("2025-06-30"), Level::Commune), 526);
    assert_eq!(in_force(day("2025-06-30"), Level::District), 30);
    assert_eq!(in_force(day("2025-07-01"), Level::Commune), 126);
    assert_eq!(in_force(day("2025-07-01"), Level::District), 0);
    assert_eq!(in_force(day("2030-12-31"), Level::Province), 1);
    // The communes that kept their code take their new names on the day of the reform.
    let renamed: HashMap<&str, &str> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::AdminUnitRenamed(r) => Some((r.code.as_str(), r.name.as_str())),
            _ => None,
        })
        .collect();
    assert_eq!(renamed.get("00004"), Some(&"Phường Ba Đình"), "Trúc Bạch became the ward of Ba Đình");
}

#[test]
fn the_map_is_the_official_geography_as_hoctap_geography_writes_it() {
    let (events, _, _) = city();
    let official = hoctap_geography::Official::load()
        .unwrap()
        .events(&hoctap_geography::Scope::Province("01".into()), day("2021-01-01"))
        .unwrap();
    let generated: Vec<&Event> =
        events.iter().filter(|e| matches!(e.event_type().stem().split('.').next(), Some("admin_unit"))).collect();
    assert_eq!(generated, official.iter().collect::<Vec<_>>(), "the same events, ids and all");
    assert!(events.starts_with(&official), "the stream starts with the map");
}

/// Which of Hà Nội's communes the reform divided, and their default successor.
fn divided_hanoi() -> HashMap<String, (String, Vec<String>)> {
    let (events, _, _) = city();
    events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::AdminUnitDissolved(d) if d.is_divided() => Some((
                d.code.clone(),
                (
                    d.default_successor().unwrap().to_owned(),
                    d.successors.iter().filter(|s| !s.default).map(|s| s.code.clone()).collect(),
                ),
            )),
            _ => None,
        })
        .collect()
}

#[test]
fn subjects_of_divided_communes_are_placed_by_default_until_a_source_names_their_ward() {
    let (events, _, _) = city();
    let divided = divided_hanoi();
    assert!(divided.len() > 100, "{} divided communes", divided.len());
    // Each subject's last commune named before the reform, from the events alone.
    let reform = day("2025-07-01");
    let mut last: HashMap<&str, (Day, &str)> = HashMap::new();
    let mut named_ward = 0;
    for e in events {
        let commune = match &e.data {
            EventData::RegistrationSubmitted(d) => &d.commune,
            EventData::SkillCertified(d) => &d.commune,
            EventData::SubjectRelocated(d) => &d.commune,
            _ => continue,
        };
        if e.day() < reform {
            if last.get(e.subject.as_str()).is_none_or(|(d, _)| *d <= e.day()) {
                last.insert(&e.subject, (e.day(), commune));
            }
        } else if let EventData::SubjectRelocated(_) = &e.data
            && e.day() < day("2026-01-01")
            && let Some((_, old)) = last.get(e.subject.as_str())
            && let Some((_, others)) = divided.get(*old)
        {
            // A relocation into a part of the divided commune that is not the default: the source
            // names the ward the subject lives in (or the subject moved there).
            named_ward += usize::from(others.contains(commune));
        }
    }
    let in_divided = last.values().filter(|(_, c)| divided.contains_key(*c)).count();
    assert!(in_divided > 100, "{in_divided} subjects last named a divided commune before the reform");
    assert!(named_ward > 10, "{named_ward} relocations name a ward that took part of a divided commune");

    // Folded by the domain: the phase review rests partly on the default, the final one no longer.
    let mut engine = hoctap_domain::Engine::new();
    for e in events {
        engine.apply(e);
    }
    let review = |as_of: &str| {
        let query = hoctap_domain::Query { scope: "01".into(), as_of: day(as_of), known_at: None, milestone: None };
        engine.review(&query).unwrap()
    };
    let lc = hoctap_domain::codes::Title::LearningCitizen;
    let phase = review("2025-12-31");
    let by_default = phase.units[0].placed_by_default[&lc];
    let counted = phase.units[0].titles[&lc];
    assert!(by_default.registered > 0 && by_default.recognised > 0, "{by_default:?}");
    assert!(by_default.recognised < counted.recognised / 2, "{by_default:?} of {counted:?}");
    let defaults: HashSet<&str> = divided.values().map(|(d, _)| d.as_str()).collect();
    for unit in phase.units.iter().skip(1).filter(|u| !u.placed_by_default.is_empty()) {
        assert!(defaults.contains(unit.code.as_str()), "{} is no default successor", unit.code);
    }
    let final_review = review("2030-12-31");
    let left = final_review.units[0].placed_by_default.get(&lc).map_or(0, |c| c.recognised);
    assert!(left * 20 < by_default.recognised, "{left} still placed by default in 2030");
}

#[test]
fn a_province_merged_into_another_is_generated_with_it() {
    // Hải Dương (30) joined Hải Phòng (31) on 1 July 2025.
    let config =
        Config { messy: false, ..Config::new(600, 2) }.in_province(hoctap_geography::Scope::Province("31".into()));
    config.check().unwrap();
    let mut events = Vec::new();
    generate(&config, |e| events.push(e.clone()));
    let mut province_of_district: HashMap<&str, &str> = HashMap::new();
    let mut district_of: HashMap<&str, &str> = HashMap::new();
    // The communes in force from the reform on, with their province.
    let mut after: HashMap<&str, &str> = HashMap::new();
    for e in &events {
        match &e.data {
            EventData::AdminUnitEstablished(u) if u.level == Level::District => {
                province_of_district.insert(&u.code, u.parent.as_deref().unwrap());
            }
            EventData::AdminUnitEstablished(u) if e.day() < day("2025-07-01") => {
                district_of.insert(&u.code, u.parent.as_deref().unwrap_or_default());
            }
            EventData::AdminUnitEstablished(u) => {
                after.insert(&u.code, u.parent.as_deref().unwrap());
            }
            EventData::AdminUnitReparented(u) => {
                after.insert(&u.code, &u.parent);
            }
            _ => {}
        }
    }
    let province = |commune: &str| district_of.get(commune).map(|d| province_of_district[d]);
    // Before the reform both provinces have people; after it every event names a commune of 31.
    let mut before = HashMap::new();
    for e in &events {
        let commune = match &e.data {
            EventData::RegistrationSubmitted(d) if d.subject_kind == hoctap_domain::codes::SubjectKind::Citizen => {
                &d.commune
            }
            _ => continue,
        };
        if e.day() < day("2025-07-01") {
            *before.entry(province(commune).unwrap()).or_insert(0) += 1;
        } else {
            assert_eq!(after.get(commune.as_str()), Some(&"31"), "{commune} named on {}", e.day());
        }
    }
    assert!(before["30"] > 100 && before["31"] > 100, "{before:?}");
    let scopes: HashSet<&str> = events
        .iter()
        .filter_map(|e| match &e.data {
            EventData::TargetSet(t) => Some(t.scope.as_str()),
            _ => None,
        })
        .collect();
    assert_eq!(scopes, HashSet::from(["31"]), "the national targets, adopted by the province in force");
    assert!(events.iter().any(|e| matches!(&e.data, EventData::AdminUnitDissolved(d) if d.code == "30")));

    let err = Config::new(10, 1).in_province(hoctap_geography::Scope::Province("30".into())).check().unwrap_err();
    assert!(err.to_string().contains("--province 31"), "{err}");
}

#[test]
fn the_whole_country_at_a_chosen_size() {
    let config = Config { messy: false, ..Config::new(3_000, 4) }.in_province(hoctap_geography::Scope::All);
    let mut provinces_named = HashSet::new();
    let mut scopes = HashSet::new();
    let stats = generate(&config, |e| match &e.data {
        EventData::RegistrationSubmitted(d) if e.subject.starts_with("cit-") => {
            provinces_named.insert(d.commune.clone());
        }
        EventData::TargetSet(t) => {
            scopes.insert(t.scope.clone());
        }
        _ => {}
    });
    assert_eq!(scopes.len(), 34, "every province in force adopts the national targets");
    assert!(provinces_named.len() > 1_000, "{} communes named", provinces_named.len());
    assert!(stats.by_type[&EventType::AdminUnitEstablished] > 10_000);
}

#[test]
fn the_head_comes_first_and_subject_events_follow_roughly_in_time() {
    let (events, _, _) = city();
    let is_head = |e: &Event| e.event_type().is_reference();
    let head = events.iter().take_while(|e| is_head(e)).count();
    assert!(events[head..].iter().all(|e| !is_head(e)), "nothing of the head comes later");
    // Out of order by at most two days, apart from the late ones (backfills, delayed duplicates).
    let mut latest = i64::MIN;
    let mut behind = 0;
    for e in &events[head..] {
        if e.instant < latest.saturating_sub(3 * 86_400_000_000) {
            behind += 1;
        }
        latest = latest.max(e.instant);
    }
    let subject_events = events.len() - head;
    assert!(behind > 0 && behind < subject_events / 50, "{behind} of {subject_events} arrive late");
    // Decisions of February Y+1 for cycle Y.
    let late_decisions = events
        .iter()
        .filter(|e| matches!(&e.data, EventData::RecognitionGranted(g) if e.day().year() > g.cycle_year))
        .count();
    let grants = events.iter().filter(|e| e.event_type() == EventType::RecognitionGranted).count();
    assert!((grants / 20..grants / 5).contains(&late_decisions), "{late_decisions} of {grants}");
}

#[test]
fn feeds_are_messy_duplicates_retractions_and_revocations() {
    let (events, stats, _) = city();
    let mut first: HashMap<uuid::Uuid, (usize, String)> = HashMap::new();
    let mut duplicates = 0;
    for (i, e) in events.iter().enumerate() {
        let json = e.to_json();
        match first.get(&e.id) {
            Some((at, earlier)) => {
                assert_eq!(*earlier, json, "a duplicate is an exact copy");
                assert!(i > *at);
                duplicates += 1;
            }
            None => {
                first.insert(e.id, (i, json));
            }
        }
    }
    assert_eq!(duplicates, stats.duplicates);
    assert!(duplicates > 0);

    let mut retractions = 0;
    let mut before_their_event = 0;
    let mut of_retractions = 0;
    for (i, e) in events.iter().enumerate() {
        if let EventData::EventRetracted(r) = &e.data {
            retractions += 1;
            let (at, _) = &first[&r.event_id];
            let target = &events[*at];
            assert_eq!(target.subject, e.subject, "a retraction names its event's subject");
            before_their_event += usize::from(*at > i);
            of_retractions += usize::from(target.event_type() == EventType::EventRetracted);
        }
    }
    assert_eq!(retractions, stats.retractions);
    assert!(retractions > 0 && before_their_event > 0, "{retractions} retractions, {before_their_event} early");
    // At this size the odds of a retraction of a retraction are ~ 1 − e⁻⁴; the larger cities have dozens.
    let mut large = Vec::new();
    generate(&Config::new(20_000, 7), |e| {
        if let EventData::EventRetracted(r) = &e.data {
            large.push((e.id, r.event_id));
        }
    });
    let ids: HashSet<uuid::Uuid> = large.iter().map(|(id, _)| *id).collect();
    assert!(of_retractions > 0 || large.iter().any(|(_, target)| ids.contains(target)));

    for e in events {
        if let EventData::RecognitionRevoked(r) = &e.data {
            assert!(r.effective < e.day(), "a revocation reaches back");
        }
    }
    assert!(stats.by_type[&EventType::RecognitionRevoked] > 0);
    assert!(stats.by_type[&EventType::RegistrationWithdrawn] > 0);
}

#[test]
fn subjects_are_pseudonymous_and_data_follows_the_model() {
    let (events, _, _) = city();
    let mut citizens = HashSet::new();
    let mut skilled = HashSet::new();
    for e in events {
        let prefix = e.subject.split('-').next().unwrap_or_default();
        if ["cit", "fam", "cln", "com", "unt"].contains(&prefix) {
            assert_eq!(e.subject.len(), 12, "{}", e.subject);
            assert!(e.subject[4..].bytes().all(|b| b.is_ascii_hexdigit()));
        } else {
            assert!(e.subject.bytes().all(|b| b.is_ascii_digit()), "{}", e.subject);
        }
        assert_eq!(parse_instant(&e.time), Some(e.instant));
        match &e.data {
            EventData::RegistrationSubmitted(r) if prefix == "cit" => {
                assert!(r.subject_group.is_some());
                citizens.insert(&e.subject);
            }
            EventData::SkillCertified(_) => {
                skilled.insert(&e.subject);
            }
            EventData::DeclarationSubmitted(d) => {
                assert!((3..=5).contains(&d.scores.len()));
            }
            EventData::EvidenceUploaded(d) => {
                assert_eq!(d.sha256.len(), 64);
                assert_eq!(d.uri, format!("https://minhchung.hanoi.gov.vn/{}.pdf", d.sha256));
            }
            EventData::RecognitionGranted(g) => {
                assert_eq!(g.valid_from, Day::from_ymd(g.cycle_year, 1, 1).unwrap());
                assert!(g.valid_until >= Day::from_ymd(g.cycle_year + 1, 12, 31).unwrap());
                assert!(g.decision.date <= e.day());
            }
            _ => {}
        }
    }
    let share = skilled.len() as f64 / CITIZENS as f64;
    assert!((0.55..0.8).contains(&share), "{share} of citizens hold a digital skill by 2030");
    assert!(citizens.len() as u64 > CITIZENS * 8 / 10);
}

#[test]
fn a_clean_feed_has_no_mess() {
    let stats = generate(&Config { messy: false, ..Config::new(500, 3) }, |_| {});
    assert_eq!((stats.duplicates, stats.retractions), (0, 0));
    assert!(stats.events > 15_000);
}

#[test]
fn write_errors_are_reported() {
    struct Broken;
    impl std::io::Write for Broken {
        fn write(&mut self, _: &[u8]) -> std::io::Result<usize> {
            Err(std::io::Error::other("disk full"))
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }
    let err = write_ndjson(&Config::new(10, 1), Broken).unwrap_err();
    assert_eq!(err.to_string(), "disk full");
}

#[test]
fn baselines_are_recorded_per_commune_only_and_one_lacks_unit_staff() {
    let (events, _, _) = city();
    let mut levels: HashMap<&str, Level> = HashMap::new();
    let mut metrics: HashMap<&str, HashSet<&str>> = HashMap::new();
    for e in events {
        match &e.data {
            EventData::AdminUnitEstablished(u) => {
                levels.insert(&u.code, u.level);
            }
            EventData::BaselineRecorded(b) => {
                assert_eq!(levels[b.unit.as_str()], Level::Commune, "districts and the city are summed from communes");
                metrics.entry(&b.unit).or_default().insert(b.metric.as_str());
            }
            _ => {}
        }
    }
    let communes = levels.values().filter(|&&l| l == Level::Commune).count();
    assert_eq!(metrics.len(), communes, "every commune has baselines");
    let lacking: Vec<_> = metrics.iter().filter(|(_, m)| m.len() < 7).collect();
    assert_eq!(lacking.len(), 1, "{lacking:?}");
    assert!(!lacking[0].1.contains("unit_staff") && lacking[0].1.len() == 6);
}

#[test]
fn arrival_stamps_follow_the_stream_and_come_after_each_event() {
    let (events, ..) = city();
    let arrived = hoctap_gen::generate_arrived(&Config::new(CITIZENS, 7));
    assert_eq!(arrived.len(), events.len());
    let stamps: Vec<i64> = arrived.iter().map(|e| e.recordedtime.expect("stamped")).collect();
    assert!(stamps.windows(2).all(|w| w[0] < w[1]), "strictly increasing");
    let mut late = 0;
    for (event, stamped) in events.iter().zip(&arrived) {
        assert_eq!((&event.id, &event.time), (&stamped.id, &stamped.time), "the same stream");
        // A retraction sent before the event it names may carry a later `time` than its arrival.
        if event.event_type().is_reference() || event.event_type() == EventType::EventRetracted {
            continue;
        }
        let time = parse_instant(&event.time).expect("a time");
        let at = stamped.recordedtime.expect("stamped");
        assert!(at >= time, "{} arrives at {at}, before its time {}", event.id, event.time);
        late += usize::from(Day::of_instant(at).0 - Day::of_instant(time).0 > 7);
    }
    // Sources send within two days; late sends and February decisions of past cycles are the rest.
    assert!(late > 0 && late * 50 < events.len(), "{late} of {} arrive more than a week late", events.len());
}
