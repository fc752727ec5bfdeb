//! The hand-checked world of `scenario.rs`: every event, and the builders it is written with.
//!
//! Hà Nội (01) has two districts until 30 June 2025: 001 (communes 00001, 00002) and 002 (00003,
//! 00004). On 1 July 2025 both districts are abolished, 00001 and 00002 move under the city, and
//! 00003 + 00004 merge into the new commune 00005. `scenario.rs` states what it counts to; other
//! tests reuse it as a world whose answers are known.

use crate::{event, id, recorded};
use hoctap_domain::Event;
use serde_json::json;

/// When the bulk of the world was recorded (the late events come after).
pub const EARLY: &str = "2026-01-05T00:00:00Z";
/// The two-tier reform: districts abolished, communes merged.
pub const REFORM: &str = "2025-07-01T00:00:00+07:00";
/// When the map, the baselines of the old communes and the campaign start.
pub const START: &str = "2021-01-01T00:00:00+07:00";

/// `admin_unit.established` at [`START`].
pub fn unit(n: u128, code: &str, level: &str, name: &str, parent: Option<&str>) -> Event {
    let mut data = json!({"code": code, "level": level, "name": name});
    if let Some(p) = parent {
        data["parent"] = json!(p);
    }
    event(n, "admin_unit.established", START, code, data)
}

/// A citizen's `registration.submitted` for `learning_citizen`.
pub fn reg(n: u128, time: &str, subject: &str, commune: &str, cycle: i32, group: &str) -> Event {
    let data = json!({"subject_kind": "citizen", "commune": commune, "title": "learning_citizen", "cycle_year": cycle, "subject_group": group});
    event(n, "registration.submitted", time, subject, data)
}

/// `recognition.granted`, decided by UBND-01 on the day of `time`.
pub fn grant(n: u128, time: &str, subject: &str, title: &str, cycle: i32, from: &str, until: &str) -> Event {
    let decision = json!({"number": format!("{n}/QD-UBND"), "issuer": "UBND-01", "date": &time[..10]});
    let data =
        json!({"title": title, "cycle_year": cycle, "decision": decision, "valid_from": from, "valid_until": until});
    event(n, "recognition.granted", time, subject, data)
}

/// `target.set` for scope 01.
pub fn target(n: u128, time: &str, plan: (&str, &str, i32), indicator: &str, milestone: i32, percent: f64) -> Event {
    let data = json!({"plan": {"issuer": plan.0, "number": plan.1, "year": plan.2}, "scope": "01", "indicator": indicator, "milestone": milestone, "percent": percent});
    event(n, "target.set", time, "01", data)
}

/// `baseline.recorded` of `adults`.
pub fn baseline(n: u128, time: &str, code: &str, value: u64) -> Event {
    event(n, "baseline.recorded", time, code, json!({"unit": code, "metric": "adults", "value": value}))
}

/// `event.retracted` naming event `of`.
pub fn retraction(n: u128, time: &str, subject: &str, of: u128) -> Event {
    event(n, "event.retracted", time, subject, json!({"event_id": id(of), "reason": "nhập nhầm"}))
}

/// Every event of the world, as recorded by the tracker, in the order they arrived.
pub fn scenario_world() -> Vec<Event> {
    let lc = "learning_citizen";
    let early = vec![
        unit(1, "01", "province", "Hà Nội", None),
        unit(2, "001", "district", "Quận Ba Đình", Some("01")),
        unit(3, "002", "district", "Huyện Sóc Sơn", Some("01")),
        unit(4, "00001", "commune", "Phường Phúc Xá", Some("001")),
        unit(5, "00002", "commune", "Phường Trúc Bạch", Some("001")),
        unit(6, "00003", "commune", "Xã Bắc Sơn", Some("002")),
        unit(7, "00004", "commune", "Xã Nam Sơn", Some("002")),
        event(
            8,
            "admin_unit.renamed",
            "2023-05-01T00:00:00+07:00",
            "00001",
            json!({"code": "00001", "name": "Phường Ba Đình"}),
        ),
        event(
            9,
            "admin_unit.established",
            REFORM,
            "00005",
            json!({"code": "00005", "level": "commune", "name": "Xã Sóc Sơn", "parent": "01"}),
        ),
        event(10, "admin_unit.reparented", REFORM, "00001", json!({"code": "00001", "parent": "01"})),
        event(11, "admin_unit.reparented", REFORM, "00002", json!({"code": "00002", "parent": "01"})),
        event(12, "admin_unit.dissolved", REFORM, "00003", json!({"code": "00003", "successor": "00005"})),
        event(13, "admin_unit.dissolved", REFORM, "00004", json!({"code": "00004", "successor": "00005"})),
        event(14, "admin_unit.dissolved", REFORM, "001", json!({"code": "001", "successor": "01"})),
        event(15, "admin_unit.dissolved", REFORM, "002", json!({"code": "002", "successor": "01"})),
        baseline(20, START, "00001", 10),
        baseline(21, START, "00002", 10),
        baseline(22, START, "00003", 5),
        baseline(23, START, "00004", 5),
        baseline(24, REFORM, "00005", 12),
        target(30, "2021-12-15T00:00:00+07:00", ("UBND-01", "290", 2021), "learning_citizen/adults", 2025, 50.0),
        target(31, "2021-12-15T00:00:00+07:00", ("UBND-01", "290", 2021), "learning_district/districts", 2025, 40.0),
        target(32, "2022-06-01T00:00:00+07:00", ("TTg", "677", 2022), "learning_family/households", 2025, 70.0),
        target(33, "2022-06-01T00:00:00+07:00", ("TTg", "677", 2022), "digital_skill/learning_citizen", 2025, 70.0),
        target(34, "2021-12-15T00:00:00+07:00", ("UBND-01", "290", 2021), "learning_citizen/adults", 2030, 70.0),
        // The plan is revised: the latest target.set for the same key wins from its time on.
        target(35, "2024-01-01T00:00:00+07:00", ("UBND-01", "290", 2021), "learning_citizen/adults", 2025, 55.0),
        // c1: a learning citizen of 00001 whose recognition is decided late (February 2026).
        reg(40, "2025-01-10T09:00:00+07:00", "cit-c1", "00001", 2025, "staff"),
        event(
            41,
            "declaration.submitted",
            "2025-04-01T09:00:00+07:00",
            "cit-c1",
            json!({"title": lc, "cycle_year": 2025, "criteria_set": "CDHT-324/QD-KHVN-2023", "scores": [{"criterion": "C1", "score": 90}], "total": 90}),
        ),
        event(
            42,
            "evidence.uploaded",
            "2025-05-01T09:00:00+07:00",
            "cit-c1",
            json!({"title": lc, "cycle_year": 2025, "criterion": "C1", "sha256": "ab".repeat(32), "uri": "https://minhchung.example/c1.pdf", "media_type": "application/pdf", "bytes": 1024}),
        ),
        event(
            44,
            "skill.certified",
            "2025-08-01T09:00:00+07:00",
            "cit-c1",
            json!({"commune": "00001", "level": "basic"}),
        ),
        // c2: withdraws, then registers again.
        reg(50, "2025-01-10T09:00:00+07:00", "cit-c2", "00001", 2025, "resident"),
        event(
            51,
            "registration.withdrawn",
            "2025-03-01T09:00:00+07:00",
            "cit-c2",
            json!({"title": lc, "cycle_year": 2025}),
        ),
        reg(52, "2025-06-01T09:00:00+07:00", "cit-c2", "00001", 2025, "resident"),
        // c3: recognised in November, revoked in January with effect from 1 October.
        reg(60, "2025-01-10T09:00:00+07:00", "cit-c3", "00003", 2025, "worker"),
        grant(61, "2025-11-20T09:00:00+07:00", "cit-c3", lc, 2025, "2025-01-01", "2026-12-31"),
        // c4: recognised for cycle 2024 (valid through 2025), moves from 00002 to 00004 in March 2025.
        reg(70, "2024-02-01T09:00:00+07:00", "cit-c4", "00002", 2024, "resident"),
        grant(71, "2024-12-10T09:00:00+07:00", "cit-c4", lc, 2024, "2024-01-01", "2025-12-31"),
        event(72, "subject.relocated", "2025-03-01T09:00:00+07:00", "cit-c4", json!({"commune": "00004"})),
        // c5: registered (sent twice), its declaration entered in error.
        reg(80, "2025-01-10T09:00:00+07:00", "cit-c5", "00004", 2025, "student"),
        reg(80, "2025-01-10T09:00:00+07:00", "cit-c5", "00004", 2025, "student"),
        event(
            81,
            "declaration.submitted",
            "2025-04-01T09:00:00+07:00",
            "cit-c5",
            json!({"title": lc, "cycle_year": 2025, "criteria_set": "CDHT-324/QD-KHVN-2023", "scores": [], "total": 85}),
        ),
        // c6: registered; that registration is retracted, then the retraction is retracted.
        reg(90, "2025-02-01T09:00:00+07:00", "cit-c6", "00002", 2025, "resident"),
        // c7: registers and withdraws at the same instant: the withdrawal wins, whatever the ids.
        event(
            110,
            "registration.withdrawn",
            "2025-02-02T10:00:00+07:00",
            "cit-c7",
            json!({"title": lc, "cycle_year": 2025}),
        ),
        reg(111, "2025-02-02T10:00:00+07:00", "cit-c7", "00001", 2025, "resident"),
        // District 001 holds the learning-district title as itself until it is abolished.
        event(
            100,
            "registration.submitted",
            "2024-03-01T09:00:00+07:00",
            "001",
            json!({"subject_kind": "district", "commune": "001", "title": "learning_district", "cycle_year": 2024}),
        ),
        grant(101, "2024-12-01T09:00:00+07:00", "001", "learning_district", 2024, "2024-06-01", "2027-06-01"),
    ];
    let mut all: Vec<Event> = early.into_iter().map(|e| recorded(e, EARLY)).collect();
    all.push(recorded(retraction(82, "2025-04-05T09:00:00+07:00", "cit-c5", 81), "2026-01-10T00:00:00Z"));
    // Known only from 20 February 2026: c1's grant (a decision of February 2026 for cycle 2025) and
    // c3's revocation.
    all.push(recorded(
        grant(43, "2026-02-10T09:00:00+07:00", "cit-c1", lc, 2025, "2025-01-01", "2026-12-31"),
        "2026-02-20T00:00:00Z",
    ));
    let revoke = json!({"title": lc, "cycle_year": 2025, "decision": {"number": "7/QD-UBND", "issuer": "UBND-01", "date": "2026-01-15"}, "effective": "2025-10-01"});
    all.push(recorded(
        event(62, "recognition.revoked", "2026-01-15T09:00:00+07:00", "cit-c3", revoke),
        "2026-02-20T00:00:00Z",
    ));
    all.push(recorded(retraction(91, "2026-02-25T09:00:00+07:00", "cit-c6", 90), "2026-03-01T00:00:00Z"));
    all.push(recorded(retraction(92, "2026-03-25T09:00:00+07:00", "cit-c6", 91), "2026-04-01T00:00:00Z"));
    all
}

/// The hand-checked world with commune 00004 **divided** on 1 July 2025 (version 2 of
/// `admin_unit.dissolved`): between 00005, the default, and 00002. Its subjects c4 and c5 are then
/// placed by default in 00005, until c4's relocation of 1 October 2025 names 00002.
pub fn divided_world() -> Vec<Event> {
    use hoctap_domain::EventData;
    use hoctap_domain::event::{AdminUnitDissolved, Successor};
    let mut world = scenario_world();
    let dissolution = world.iter_mut().find(|e| e.id.to_string() == id(13)).expect("event 13 dissolves 00004");
    dissolution.data = EventData::AdminUnitDissolved(AdminUnitDissolved {
        code: "00004".into(),
        successors: vec![
            Successor { code: "00005".into(), default: true },
            Successor { code: "00002".into(), default: false },
        ],
    });
    world.push(recorded(
        event(500, "subject.relocated", "2025-10-01T09:00:00+07:00", "cit-c4", json!({"commune": "00002"})),
        EARLY,
    ));
    world
}
