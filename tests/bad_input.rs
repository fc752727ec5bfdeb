//! Every class of bad input the contract names, through the real `hoctap ingest`: the bad event is refused
//! with a line naming its id, field and rule, dead-lettered with that reason (a raw citizen-ID redacted),
//! and the valid events on either side of it are stored and counted exactly once. Also: which batch a
//! unit must be established in to be known.

use hoctap_tests::{envelope, id, ingest, ndjson, review_json, source_line};
use serde_json::{Value, json};
use std::path::{Path, PathBuf};

const CCCD: &str = "001203004567";
const TIME: &str = "2025-03-01T09:00:00+07:00";

/// Hà Nội with two communes directly under it (as after the reform), so a review lists the communes.
fn geography() -> Vec<String> {
    [
        envelope(
            1,
            "admin_unit.established",
            "2021-01-01T00:00:00+07:00",
            "01",
            json!({"code": "01", "level": "province", "name": "Hà Nội"}),
        ),
        commune(2, "00001", "Phường Ba Đình"),
        commune(3, "00002", "Phường Hoàn Kiếm"),
    ]
    .iter()
    .map(Value::to_string)
    .collect()
}

fn commune(n: u128, code: &str, name: &str) -> Value {
    let data = json!({"code": code, "level": "commune", "name": name, "parent": "01"});
    envelope(n, "admin_unit.established", "2021-01-01T00:00:00+07:00", code, data)
}

/// A citizen's registration for cycle 2025, as raw JSON so that a test can break it.
fn registration(n: u128, subject: &str, commune: &str) -> Value {
    let data = json!({"subject_kind": "citizen", "commune": commune, "title": "learning_citizen", "cycle_year": 2025, "subject_group": "resident"});
    envelope(n, "registration.submitted", TIME, subject, data)
}

fn grant(n: u128, subject: &str, valid_from: &str, valid_until: &str) -> Value {
    let decision = json!({"number": "12/QD-UBND", "issuer": "UBND-01", "date": "2025-11-20"});
    let data = json!({"title": "learning_citizen", "cycle_year": 2025, "decision": decision, "valid_from": valid_from, "valid_until": valid_until});
    envelope(n, "recognition.granted", "2025-11-20T09:00:00+07:00", subject, data)
}

fn declaration(n: u128, subject: &str, score: u32, total: u32) -> Value {
    let data = json!({"title": "learning_citizen", "cycle_year": 2025, "criteria_set": "CDHT-324/QD-KHVN-2023", "scores": [{"criterion": "C1", "score": score}], "total": total});
    envelope(n, "declaration.submitted", "2025-04-01T09:00:00+07:00", subject, data)
}

fn evidence(n: u128, subject: &str, uri: &str) -> Value {
    let data = json!({"title": "learning_citizen", "cycle_year": 2025, "criterion": "C1", "sha256": "ab".repeat(32), "uri": uri, "media_type": "application/pdf", "bytes": 2048});
    envelope(n, "evidence.uploaded", "2025-05-01T09:00:00+07:00", subject, data)
}

/// The id every bad event carries (unless the case is about ids).
const BAD: u128 = 666;
/// cit-a: registered in 00001 and recognised; sent before the bad event.
const A_REG: u128 = 200;

/// Valid events before the bad one: cit-a registers in 00001 and is recognised.
fn before() -> Vec<String> {
    vec![registration(A_REG, "cit-a", "00001").to_string(), grant(201, "cit-a", "2025-01-01", "2026-12-31").to_string()]
}

/// Valid events after the bad one: cit-b registers in 00002 and declares.
fn after() -> Vec<String> {
    vec![registration(210, "cit-b", "00002").to_string(), declaration(211, "cit-b", 85, 85).to_string()]
}

/// What the refusal of the bad event must say.
struct Expect<'a> {
    /// The id the refusal names; `None` for a line whose id cannot be read.
    id: Option<String>,
    field: &'a str,
    rule: &'a str,
}

fn expect(field: &'static str, rule: &'static str) -> Expect<'static> {
    Expect { id: Some(id(BAD)), field, rule }
}

fn temp() -> tempfile::TempDir {
    tempfile::tempdir().expect("a temporary folder")
}

fn write(dir: &Path, name: &str, text: &str) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, text).expect("writing an input file");
    path
}

fn refusal_lines(stderr: &str) -> Vec<&str> {
    stderr.lines().filter(|l| l.starts_with("refused")).collect()
}

fn dead_letters(dir: &Path) -> Vec<String> {
    let text = std::fs::read_to_string(dir.join("dead-letter.ndjson")).unwrap_or_default();
    text.lines().filter(|l| !l.trim().is_empty()).map(str::to_owned).collect()
}

/// `(registered, declared, recognised)` of learning citizens in `code`, from the review's JSON.
fn learning_citizens(review: &Value, code: &str) -> (u64, u64, u64) {
    let units = review["units"].as_array().expect("units");
    let unit = units.iter().find(|u| u["code"] == code).unwrap_or_else(|| panic!("unit {code} in {review:#}"));
    let lc = &unit["titles"]["learning_citizen"];
    let n = |k: &str| lc[k].as_u64().unwrap_or(0);
    (n("registered"), n("declared"), n("recognised"))
}

/// The valid neighbours are stored and counted once: cit-a registered and recognised in 00001, cit-b
/// registered and declared in 00002, nobody else.
fn assert_neighbours_counted(dir: &Path) {
    let review = review_json(dir, "2025-12-31");
    assert_eq!(learning_citizens(&review, "01"), (2, 1, 1), "the city: cit-a and cit-b only");
    assert_eq!(learning_citizens(&review, "00001"), (1, 0, 1), "cit-a in 00001");
    assert_eq!(learning_citizens(&review, "00002"), (1, 1, 0), "cit-b in 00002");
}

/// Ingests the geography, the valid events before, `bad`, the valid events after, and checks everything
/// the contract says about a refusal.
fn refuses(bad: &str, want: Expect<'_>) -> Vec<String> {
    let dir = temp();
    let mut lines = geography();
    lines.extend(before());
    lines.push(bad.to_owned());
    lines.extend(after());
    let bad_line = lines.len() - after().len();
    let file = write(dir.path(), "batch.ndjson", &ndjson(&lines));
    let data = dir.path().join("data");
    let ran = ingest(&data, &[&file]);
    assert_eq!(ran.code, Some(1), "some refused, the others stored: {ran:?}");
    let valid = lines.len() - 1;
    assert!(ran.stdout.contains(&format!("{valid} accepted, 0 already known, 1 refused")), "summary: {}", ran.stdout);

    let refused = refusal_lines(&ran.stderr);
    assert_eq!(refused.len(), 1, "one refusal line: {}", ran.stderr);
    let line = refused[0];
    assert!(line.contains(&format!("line {bad_line}")), "names the line: {line}");
    if let Some(id) = &want.id {
        assert!(line.contains(id.as_str()), "names the event id {id}: {line}");
    }
    assert!(line.contains(&format!("`{}`", want.field)), "names the field {}: {line}", want.field);
    assert!(line.contains(&format!("rule {}", want.rule)), "names the rule {}: {line}", want.rule);

    let dead = dead_letters(&data);
    assert_eq!(dead.len(), 1, "one dead letter: {dead:?}");
    let letter: Value = serde_json::from_str(&dead[0]).expect("a dead letter is JSON");
    assert_eq!(letter["reason"]["rule"], want.rule, "dead-letter rule: {letter:#}");
    assert_eq!(letter["reason"]["field"], want.field, "dead-letter field: {letter:#}");
    assert_eq!(letter["reason"]["event_id"], json!(want.id), "dead-letter event id: {letter:#}");
    assert!(letter["event"].is_string(), "the refused line is kept for the source to correct: {letter:#}");

    assert_neighbours_counted(&data);
    dead
}

fn mutated(mut value: Value, change: impl FnOnce(&mut Value)) -> String {
    change(&mut value);
    value.to_string()
}

/// The usual bad event: a registration of cit-x in 00002, which would be counted if it were accepted.
fn bad_registration() -> Value {
    registration(BAD, "cit-x", "00002")
}

#[test]
fn the_neighbours_alone_are_counted_as_expected() {
    // The baseline every refusal test compares with: without a bad event, nothing is refused.
    let dir = temp();
    let mut lines = geography();
    lines.extend(before());
    lines.extend(after());
    let file = write(dir.path(), "batch.ndjson", &ndjson(&lines));
    let ran = ingest(&dir.path().join("data"), &[&file]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(refusal_lines(&ran.stderr).is_empty());
    assert_neighbours_counted(&dir.path().join("data"));
    // And the usual bad event, were it valid, would change the figures.
    let mut lines = geography();
    lines.extend(before());
    lines.push(bad_registration().to_string());
    lines.extend(after());
    let file = write(dir.path(), "with-x.ndjson", &ndjson(&lines));
    let data = dir.path().join("data-x");
    assert_eq!(ingest(&data, &[&file]).code, Some(0));
    assert_eq!(learning_citizens(&review_json(&data, "2025-12-31"), "01"), (3, 1, 1));
}

fn retraction(n: u128, subject: &str, of: u128) -> Value {
    envelope(
        n,
        "event.retracted",
        "2025-12-01T09:00:00+07:00",
        subject,
        json!({"event_id": id(of), "reason": "nhập nhầm"}),
    )
}

#[test]
fn a_retraction_of_another_subjects_event() {
    // cit-a's registration, accepted before, retracted under another subject: it would change nothing
    // (a retraction counts only for its own subject's events), so it is refused rather than kept.
    refuses(&retraction(BAD, "cit-x", A_REG).to_string(), expect("subject", "subject_mismatch"));
}

#[test]
fn a_retraction_of_its_own_subjects_event_or_of_an_unknown_id_is_accepted() {
    let dir = temp();
    let mut lines = geography();
    lines.extend(before());
    lines.push(retraction(BAD, "cit-a", 201).to_string());
    lines.push(retraction(BAD + 1, "cit-x", 9999).to_string());
    let file = write(dir.path(), "batch.ndjson", &ndjson(&lines));
    let data = dir.path().join("data");
    let ran = ingest(&data, &[&file]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert_eq!(learning_citizens(&review_json(&data, "2025-12-31"), "01"), (1, 0, 0), "cit-a's grant retracted");
}

#[test]
fn a_control_character_in_any_string() {
    // NUL in the subject: PostgreSQL refuses it in text, and no source means it.
    let bad = bad_registration().to_string().replace("cit-x", "cit-\\u0000x");
    assert!(bad.contains(r"cit-\u0000x"), "{bad}");
    refuses(&bad, expect("subject", "control_character"));
    // In an extension attribute the tracker otherwise ignores, and in the data.
    refuses(&mutated(bad_registration(), |v| v["note"] = json!("a\u{7}b")), expect("note", "control_character"));
    let escape = mutated(bad_registration(), |v| v["data"]["commune"] = json!("00002\u{1b}[31m"));
    refuses(&escape, expect("data.commune", "control_character"));
}

#[test]
fn unknown_type() {
    let bad = mutated(bad_registration(), |v| v["type"] = json!("vn.hoctap.registration.approved.v1"));
    refuses(&bad, expect("type", "unknown_type"));
}

#[test]
fn unknown_version() {
    let bad = mutated(bad_registration(), |v| v["type"] = json!("vn.hoctap.registration.submitted.v2"));
    refuses(&bad, expect("type", "unknown_type"));
}

#[test]
fn missing_data_field() {
    let bad = mutated(bad_registration(), |v| {
        v["data"].as_object_mut().unwrap().remove("title");
    });
    refuses(&bad, expect("data.title", "schema"));
}

#[test]
fn missing_envelope_attribute() {
    let bad = mutated(bad_registration(), |v| {
        v.as_object_mut().unwrap().remove("time");
    });
    refuses(&bad, expect("time", "schema"));
}

#[test]
fn wrong_field_type() {
    let bad = mutated(bad_registration(), |v| v["data"]["cycle_year"] = json!("2025"));
    refuses(&bad, expect("data.cycle_year", "schema"));
}

#[test]
fn score_out_of_range() {
    let bad = declaration(BAD, "cit-a", 120, 90).to_string();
    refuses(&bad, expect("data.scores[0].score", "range"));
}

#[test]
fn total_out_of_range() {
    let bad = declaration(BAD, "cit-a", 90, 101).to_string();
    refuses(&bad, expect("data.total", "range"));
}

#[test]
fn valid_until_before_valid_from() {
    // Had it been accepted, cit-b would be recognised on 2025-12-31 in one reading or another.
    let bad = grant(BAD, "cit-b", "2025-12-31", "2025-01-01").to_string();
    refuses(&bad, expect("data.valid_until", "validity_order"));
}

#[test]
fn cycle_year_2020() {
    let bad = mutated(bad_registration(), |v| v["data"]["cycle_year"] = json!(2020));
    refuses(&bad, expect("data.cycle_year", "cycle_year"));
}

#[test]
fn cycle_year_2031() {
    let bad = mutated(bad_registration(), |v| v["data"]["cycle_year"] = json!(2031));
    refuses(&bad, expect("data.cycle_year", "cycle_year"));
}

#[test]
fn unknown_administrative_unit() {
    let bad = registration(BAD, "cit-x", "00099").to_string();
    refuses(&bad, expect("data.commune", "unknown_unit"));
}

#[test]
fn raw_citizen_id_in_subject() {
    let bad = registration(BAD, CCCD, "00002").to_string();
    let dead = refuses(&bad, expect("subject", "citizen_id"));
    assert!(!dead[0].contains(CCCD), "the dead letter must not keep the raw citizen-ID: {}", dead[0]);
}

#[test]
fn raw_citizen_id_in_a_data_value() {
    let bad = evidence(BAD, "cit-b", &format!("https://minhchung.example/{CCCD}.pdf")).to_string();
    let dead = refuses(&bad, expect("data.uri", "citizen_id"));
    assert!(!dead[0].contains(CCCD), "the dead letter must not keep the raw citizen-ID: {}", dead[0]);
}

/// The dead letter holds no CCCD in any writing, and the event's id as it was.
fn assert_no_citizen_id(dead: &str) {
    assert!(hoctap_domain::validate::find_citizen_id_in_json(dead.as_bytes()).is_none(), "{dead}");
    let letter: Value = serde_json::from_str(dead).unwrap();
    let event = letter["event"].as_str().unwrap();
    assert!(hoctap_domain::validate::find_citizen_id_in_json(event.as_bytes()).is_none(), "{event}");
    assert!(!event.contains("[CCCD") || event.contains(&id(BAD)), "the id is never masked: {event}");
}

#[test]
fn raw_citizen_id_in_source_an_extension_a_key_or_escaped() {
    let in_source = mutated(bad_registration(), |v| v["source"] = json!(format!("https://congdanhoctap.vn/hs/{CCCD}")));
    assert_no_citizen_id(&refuses(&in_source, expect("source", "citizen_id"))[0]);
    let in_extension = mutated(bad_registration(), |v| v["cccd"] = json!(CCCD));
    assert_no_citizen_id(&refuses(&in_extension, expect("cccd", "citizen_id"))[0]);
    let in_key = mutated(bad_registration(), |v| v["data"][CCCD] = json!(1));
    assert_no_citizen_id(&refuses(&in_key, expect("data", "citizen_id"))[0]);
    // "/hs/\u0030\u0030\u0031203004567": JSON escapes of the same digits.
    let escaped = CCCD[..3].chars().map(|c| format!("\\u003{c}")).collect::<String>() + &CCCD[3..];
    let bad = mutated(bad_registration(), |v| v["source"] = json!("/hs/@")).replace("/hs/@", &format!("/hs/{escaped}"));
    let dead = refuses(&bad, expect("source", "citizen_id"));
    assert_no_citizen_id(&dead[0]);
    assert!(!dead[0].contains("203004567"), "{}", dead[0]);
}

#[test]
fn an_id_is_never_masked_in_a_dead_letter() {
    // An event refused for another rule, whose id's last group has the shape of a CCCD.
    let uuid = format!("b0000000-0000-4000-8000-{CCCD}");
    let bad = mutated(bad_registration(), |v| {
        v["id"] = json!(uuid);
        v["data"]["cycle_year"] = json!(2019);
    });
    let dead = refuses(&bad, Expect { id: Some(uuid.clone()), field: "data.cycle_year", rule: "cycle_year" });
    assert!(dead[0].contains(&uuid) && !dead[0].contains("[CCCD"), "{}", dead[0]);
}

#[test]
fn duplicate_id_with_other_content() {
    // cit-a's registration again, now naming 00002: the copy accepted first stays (cit-a in 00001).
    let bad = registration(A_REG, "cit-a", "00002").to_string();
    refuses(&bad, Expect { id: Some(id(A_REG)), field: "id", rule: "duplicate_id" });
}

#[test]
fn recordedtime_set_by_the_source() {
    let bad = mutated(bad_registration(), |v| v["recordedtime"] = json!("2025-03-01T02:00:00Z"));
    refuses(&bad, expect("recordedtime", "recordedtime"));
}

#[test]
fn bad_json_line() {
    // A line cut short: it is not JSON, so no id can be read from it; the refusal names its line.
    let whole = bad_registration().to_string();
    let bad = &whole[..whole.len() / 2];
    let dead = refuses(bad, Expect { id: None, field: "(line)", rule: "json" });
    let letter: Value = serde_json::from_str(&dead[0]).unwrap();
    assert_eq!(letter["event"], bad, "the raw line is kept as it came");
}

#[test]
fn an_exact_repeat_is_not_bad_input() {
    // The same id with the same content is one event (rule 3): accepted, counted once.
    let dir = temp();
    let mut lines = geography();
    lines.extend(before());
    lines.push(registration(A_REG, "cit-a", "00001").to_string());
    lines.extend(after());
    let file = write(dir.path(), "batch.ndjson", &ndjson(&lines));
    let data = dir.path().join("data");
    let ran = ingest(&data, &[&file]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains("1 already known, 0 refused"), "{}", ran.stdout);
    assert!(dead_letters(&data).is_empty());
    assert_neighbours_counted(&data);
}

#[test]
fn a_unit_established_later_in_the_same_file_is_known_earlier_in_it() {
    let dir = temp();
    let mut lines = vec![registration(300, "cit-c", "00003").to_string()];
    lines.extend(geography());
    lines.push(commune(4, "00003", "Xã Sóc Sơn").to_string());
    let file = write(dir.path(), "batch.ndjson", &ndjson(&lines));
    let data = dir.path().join("data");
    let ran = ingest(&data, &[&file]);
    assert_eq!(ran.code, Some(0), "the whole batch is accepted: {ran:?}");
    assert!(refusal_lines(&ran.stderr).is_empty(), "{}", ran.stderr);
    assert_eq!(learning_citizens(&review_json(&data, "2025-12-31"), "00003"), (1, 0, 0));
}

#[test]
fn a_unit_established_by_a_later_batch_is_unknown_to_an_earlier_one() {
    let dir = temp();
    let data = dir.path().join("data");
    let reg = registration(300, "cit-c", "00003").to_string();
    let mut first = geography();
    first.push(reg.clone());
    let first = write(dir.path(), "first.ndjson", &ndjson(&first));
    let second = write(dir.path(), "second.ndjson", &ndjson([commune(4, "00003", "Xã Sóc Sơn").to_string()]));

    // Two files in one run are two batches: the first one's registration does not see the second's unit.
    let ran = ingest(&data, &[&first, &second]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    let refused = refusal_lines(&ran.stderr);
    assert_eq!(refused.len(), 1, "{}", ran.stderr);
    assert!(
        refused[0].contains(&id(300))
            && refused[0].contains("`data.commune`")
            && refused[0].contains("rule unknown_unit")
    );
    let dead = dead_letters(&data);
    assert_eq!(dead.len(), 1);
    assert_eq!(serde_json::from_str::<Value>(&dead[0]).unwrap()["reason"]["rule"], "unknown_unit");
    // 00003 exists now, without cit-c.
    assert_eq!(learning_citizens(&review_json(&data, "2025-12-31"), "00003"), (0, 0, 0));

    // Sent again once the unit is known, the registration is accepted.
    let again = write(dir.path(), "again.ndjson", &ndjson([reg]));
    assert_eq!(ingest(&data, &[&again]).code, Some(0));
    assert_eq!(learning_citizens(&review_json(&data, "2025-12-31"), "00003"), (1, 0, 0));
}

#[test]
fn a_refused_establishment_does_not_make_its_unit_known_to_its_batch() {
    // A commune code of four digits is refused (code_format); a unit no accepted event establishes is
    // not known, so the registration naming it is refused too, and nothing is stored under that code.
    let dir = temp();
    let data = dir.path().join("data");
    let broken = envelope(
        5,
        "admin_unit.established",
        "2021-01-01T00:00:00+07:00",
        "0007",
        json!({"code": "0007", "level": "commune", "name": "Xã Bảy", "parent": "01"}),
    );
    let mut lines = geography();
    lines.push(broken.to_string());
    lines.push(registration(301, "cit-d", "0007").to_string());
    let file = write(dir.path(), "batch.ndjson", &ndjson(&lines));
    let ran = ingest(&data, &[&file]);
    assert_eq!(ran.code, Some(1), "{ran:?}");
    let refused = refusal_lines(&ran.stderr);
    assert!(refused.iter().any(|l| l.contains(&id(5)) && l.contains("rule code_format")), "{}", ran.stderr);
    assert!(
        refused.iter().any(|l| l.contains(&id(301)) && l.contains("`data.commune`") && l.contains("rule unknown_unit")),
        "the registration names a unit no accepted event establishes:\n{}",
        ran.stderr
    );
    assert_eq!(dead_letters(&data).len(), 2);
}

#[test]
fn a_refused_event_never_reaches_the_log_and_its_raw_line_is_kept() {
    // The dead letter keeps the line exactly as sent (so the source can correct it), and a refused event
    // never reaches the log: the corrected event, under the same id, is then accepted as a new one
    // (were the refused copy stored, it would be refused as the same id with other content).
    let dir = temp();
    let data = dir.path().join("data");
    let bad = mutated(bad_registration(), |v| v["data"]["cycle_year"] = json!(2031));
    let mut lines = geography();
    lines.push(bad.clone());
    let file = write(dir.path(), "batch.ndjson", &ndjson(&lines));
    assert_eq!(ingest(&data, &[&file]).code, Some(1));
    let letter: Value = serde_json::from_str(&dead_letters(&data)[0]).unwrap();
    assert_eq!(letter["event"], bad.as_str());
    let fixed = write(
        dir.path(),
        "fixed.ndjson",
        &ndjson([source_line(&hoctap_tests::reg(BAD, TIME, "cit-x", "00002", 2025, "resident"))]),
    );
    let ran = ingest(&data, &[&fixed]);
    assert_eq!(ran.code, Some(0), "{ran:?}");
    assert!(ran.stdout.contains("1 accepted, 0 already known, 0 refused"), "{}", ran.stdout);
    assert_eq!(learning_citizens(&review_json(&data, "2025-12-31"), "00002"), (1, 0, 0));
}

#[test]
fn events_that_will_not_count_as_they_stand_are_accepted_with_a_warning() {
    let dir = temp();
    let mut lines = geography();
    lines.extend(before());
    let far = mutated(registration(300, "cit-far", "00001"), |v| v["time"] = json!("2205-03-01T09:00:00+07:00"));
    let lines_before = lines.len();
    lines.push(far);
    lines.push(grant(301, "cit-nowhere", "2025-01-01", "2026-12-31").to_string());
    lines.push(retraction(302, "cit-a", 9_999).to_string());
    // Not warned: cit-a is placed, and the retraction names a known event of its subject.
    lines.push(declaration(303, "cit-a", 80, 80).to_string());
    lines.push(retraction(304, "cit-a", 201).to_string());
    // Nor are events placed, or named, by a line further down the file.
    lines.push(declaration(306, "cit-late", 80, 80).to_string());
    lines.push(retraction(307, "cit-late", 308).to_string());
    lines.push(registration(308, "cit-late", "00001").to_string());
    let file = write(dir.path(), "batch.ndjson", &ndjson(&lines));
    let data = dir.path().join("data");
    let ran = ingest(&data, &[&file]);
    assert_eq!(ran.code, Some(0), "warnings do not refuse: {ran:?}");
    assert!(ran.stdout.contains("3 accepted with warnings"), "{}", ran.stdout);
    let warnings: Vec<&str> = ran.stderr.lines().filter(|l| l.starts_with("warning")).collect();
    assert_eq!(warnings.len(), 3, "{}", ran.stderr);
    for (k, (n, field, kind)) in
        [(300, "time", "after_campaign"), (301, "subject", "not_placed"), (302, "data.event_id", "retracts_unknown")]
            .into_iter()
            .enumerate()
    {
        let line = warnings[k];
        assert!(line.contains(&format!("(line {})", lines_before + k + 1)), "{line}");
        assert!(line.contains(&id(n)) && line.contains(&format!("`{field}`")) && line.contains(kind), "{line}");
    }
    // They are stored: cit-nowhere's grant counts once an event places it.
    let more = write(dir.path(), "more.ndjson", &ndjson([registration(305, "cit-nowhere", "00002").to_string()]));
    assert_eq!(ingest(&data, &[&more]).code, Some(0));
    assert_eq!(learning_citizens(&review_json(&data, "2025-12-31"), "00002"), (1, 0, 1));
}

#[path = "../crates/hoctap-domain/tests/support/mutate.rs"]
mod mutate;

/// The fuzz test of the domain (`crates/hoctap-domain/tests/fuzz.rs`, 1 000 000 mutants) in small,
/// through the real `hoctap ingest`: 20 000 mutants of the golden events with 200 valid neighbours
/// among them, one file. Nothing panics (exit 1: some refused), each refusal line names the field and
/// the rule and, when the line holds a UUID `id`, that id; the dead-letter file holds every refused line
/// and no raw citizen-ID; the 200 neighbours are counted in province 96.
#[test]
fn twenty_thousand_mutants_through_ingest_are_refused_by_name_and_the_neighbours_counted() {
    const MUTANTS: usize = 20_000;
    const NEIGHBOURS: usize = 200;
    let seeds = mutate::seeds(&Path::new(env!("CARGO_MANIFEST_DIR")).join("../events"));
    let mut rng = fastrand::Rng::with_seed(0x6e64_6a73_6f6e);
    let unit = |n: u128, code: &str, level: &str, parent: Option<&str>| {
        let mut data = json!({"code": code, "level": level, "name": format!("Đơn vị {code}")});
        if let Some(p) = parent {
            data["parent"] = json!(p);
        }
        envelope(n, "admin_unit.established", "2021-01-01T00:00:00+07:00", code, data).to_string()
    };
    let world: Vec<_> =
        (1..).zip(mutate::WORLD).map(|(n, (code, level, parent))| unit(n, code, level, parent)).collect();
    let mut lines: Vec<Vec<u8>> = (0..MUTANTS)
        .map(|_| {
            // One line each: a newline a mutation wrote (pretty printing, inserted bytes) becomes a space.
            let mut text = mutate::mutant(&mut rng, &seeds);
            text.iter_mut().filter(|b| **b == b'\n').for_each(|b| *b = b' ');
            text
        })
        .collect();
    for n in 0..NEIGHBOURS {
        let at = rng.usize(..=lines.len());
        let neighbour = registration(100_000 + n as u128, &format!("nb-{n}"), "32001");
        lines.insert(at, neighbour.to_string().into_bytes());
    }
    let dir = temp();
    let data = dir.path().join("data");
    let first = write(dir.path(), "world.ndjson", &ndjson(&world));
    assert_eq!(ingest(&data, &[&first]).code, Some(0));
    let mut text = Vec::new();
    for line in &lines {
        text.extend_from_slice(line);
        text.push(b'\n');
    }
    let file = dir.path().join("mutants.ndjson");
    std::fs::write(&file, &text).unwrap();
    let ran = ingest(&data, &[&file]);
    assert_eq!(
        ran.code,
        Some(1),
        "some refused, nothing panicked: {}",
        &ran.stderr[ran.stderr.len().saturating_sub(2000)..]
    );

    let mut refused = 0;
    for line in refusal_lines(&ran.stderr) {
        refused += 1;
        let n: usize = line
            .strip_prefix("refused (line ")
            .and_then(|rest| rest.split(')').next())
            .and_then(|n| n.parse().ok())
            .unwrap_or_else(|| panic!("a refusal line without its line number: {line}"));
        let sent = &lines[n - 1];
        // The refusal's own field (the first one named; serde's message may name an empty key after it).
        let field = line.split_once("field `").and_then(|(_, rest)| rest.split_once("`:")).map(|(f, _)| f);
        assert!(field.is_some_and(|f| !f.is_empty()), "no field named: {line}");
        assert!(line.contains(": rule "), "no rule named: {line}");
        if let Some(id) = serde_json::from_slice::<Value>(sent)
            .ok()
            .and_then(|v| v.get("id").and_then(Value::as_str).map(str::to_owned))
            .filter(|id| uuid::Uuid::parse_str(id).is_ok())
        {
            let normal = uuid::Uuid::parse_str(&id).unwrap().to_string();
            assert!(line.contains(&id) || line.contains(&normal), "the id {id} is not named: {line}");
        }
    }
    let summary = ran.stdout.lines().find(|l| l.contains(" accepted, ")).unwrap_or_else(|| panic!("{}", ran.stdout));
    assert!(summary.contains(&format!("{refused} refused")), "{summary} / {refused} refusal lines");
    let dead = dead_letters(&data);
    assert_eq!(dead.len(), refused, "one dead letter per refusal");
    for letter in &dead {
        let letter: Value = serde_json::from_str(letter).expect("a dead letter is JSON");
        let kept = letter["event"].as_str().expect("the line is kept");
        assert!(
            hoctap_domain::validate::find_citizen_id_in_json(kept.as_bytes()).is_none(),
            "a raw citizen-ID in a dead letter: {kept}"
        );
        assert!(letter["reason"]["field"].as_str().is_some_and(|f| !f.is_empty()), "{letter}");
    }
    let ran = hoctap_tests::run(hoctap_tests::hoctap().arg("--data-dir").arg(&data).args([
        "review",
        "--scope",
        "96",
        "--as-of",
        "2025-12-31",
        "--format",
        "json",
    ]));
    assert_eq!(ran.code, Some(0), "{ran:?}");
    let review: Value = serde_json::from_str(&ran.stdout).unwrap();
    assert_eq!(learning_citizens(&review, "96").0, NEIGHBOURS as u64, "every neighbour counted once");
}
