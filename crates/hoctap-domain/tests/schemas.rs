//! Proves that the Rust event types, the JSON Schemas in `events/schemas/` and the golden fixtures in
//! `events/fixtures/` describe the same events, so a source system can trust the schemas it is given.
//!
//! Valid fixtures must pass the schema and the Rust decoder and checks, and round-trip; the schema's
//! `data` fields must be exactly what serde writes; every invalid fixture must be refused with the
//! field and rule its manifest names, and the manifest must say truthfully whether the schema alone
//! already rejects it.

use hoctap_domain::event::{Event, EventType};
use hoctap_domain::validate::{check_content, find_citizen_id};
use jsonschema::{Draft, Validator};
use serde::Deserialize;
use serde_json::{Map, Value};
use std::collections::BTreeSet;
use std::fs;
use std::path::{Path, PathBuf};

fn events_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("../../events")
}

fn read_json(path: &Path) -> Value {
    let text = fs::read_to_string(path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()))
}

fn file_names(dir: &Path) -> BTreeSet<String> {
    fs::read_dir(dir)
        .unwrap_or_else(|e| panic!("{}: {e}", dir.display()))
        .map(|entry| entry.expect("directory entry").file_name().into_string().expect("UTF-8 file name"))
        .collect()
}

fn schema_path(stem: &str, version: u32) -> PathBuf {
    events_dir().join("schemas").join(format!("{stem}.v{version}.schema.json"))
}

fn schema(ty: EventType) -> Value {
    read_json(&schema_path(ty.stem(), ty.current_version()))
}

fn validator(schema: &Value) -> Validator {
    jsonschema::options()
        .with_draft(Draft::Draft202012)
        .should_validate_formats(true)
        .build(schema)
        .unwrap_or_else(|e| panic!("schema {} does not compile: {e}", schema["$id"]))
}

/// Every schema file in the folder, whatever its version: an event is "rejected by the schemas" when
/// none of them accepts it (the `type` const makes each schema accept only its own type).
fn all_validators() -> Vec<(String, Validator)> {
    let dir = events_dir().join("schemas");
    file_names(&dir).into_iter().map(|name| (name.clone(), validator(&read_json(&dir.join(&name))))).collect()
}

fn schema_errors(validator: &Validator, instance: &Value) -> Vec<String> {
    validator.iter_errors(instance).map(|e| format!("{}: {e}", e.instance_path())).collect()
}

fn valid_fixture(ty: EventType) -> (String, Value) {
    let path = events_dir().join("fixtures/valid").join(format!("{}.json", ty.stem()));
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    let value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{}: not JSON: {e}", path.display()));
    (text, value)
}

/// Resolves a local `$ref` (`#/$defs/...`); the schemas are self-contained, so no other kind exists.
fn resolve<'a>(root: &'a Value, node: &'a Value) -> &'a Value {
    match node.get("$ref").and_then(Value::as_str) {
        Some(reference) => {
            let pointer = reference.strip_prefix('#').unwrap_or_else(|| panic!("non-local $ref {reference}"));
            resolve(root, root.pointer(pointer).unwrap_or_else(|| panic!("dangling $ref {reference}")))
        }
        None => node,
    }
}

/// JSON equality where numbers compare by value: `Num` writes `25` back as `25.0`, the same JSON number.
fn same_json(a: &Value, b: &Value) -> bool {
    match (a, b) {
        (Value::Number(x), Value::Number(y)) => x == y || (x.as_f64().is_some() && x.as_f64() == y.as_f64()),
        (Value::Array(x), Value::Array(y)) => x.len() == y.len() && x.iter().zip(y).all(|(a, b)| same_json(a, b)),
        (Value::Object(x), Value::Object(y)) => {
            x.len() == y.len() && x.iter().all(|(k, v)| y.get(k).is_some_and(|w| same_json(v, w)))
        }
        _ => a == b,
    }
}

fn refs_are_local(node: &Value, where_: &str) {
    match node {
        Value::Object(map) => {
            if let Some(r) = map.get("$ref") {
                assert!(r.as_str().is_some_and(|r| r.starts_with("#/")), "{where_}: external $ref {r}");
            }
            map.values().for_each(|v| refs_are_local(v, where_));
        }
        Value::Array(items) => items.iter().for_each(|v| refs_are_local(v, where_)),
        _ => {}
    }
}

#[test]
fn every_event_type_has_its_schemas_and_one_valid_fixture_and_nothing_else() {
    let mut expected_schemas = BTreeSet::new();
    let mut expected_valid = BTreeSet::new();
    for ty in EventType::ALL {
        // Older versions keep their schema file when a new one is added, so every version up to the
        // current one has a file.
        for version in 1..=ty.current_version() {
            expected_schemas.insert(format!("{}.v{version}.schema.json", ty.stem()));
        }
        expected_valid.insert(format!("{}.json", ty.stem()));
    }
    assert_eq!(file_names(&events_dir().join("schemas")), expected_schemas, "events/schemas/");
    assert_eq!(file_names(&events_dir().join("fixtures/valid")), expected_valid, "events/fixtures/valid/");
    assert_eq!(file_names(&events_dir()), ["README.md", "fixtures", "schemas"].map(String::from).into(), "events/");
    assert_eq!(file_names(&events_dir().join("fixtures")), ["invalid", "valid"].map(String::from).into());
}

#[test]
fn schemas_are_self_contained_draft_2020_12_and_name_their_type() {
    for &ty in EventType::ALL {
        let schema = schema(ty);
        let name = ty.stem();
        jsonschema::meta::validate(&schema).unwrap_or_else(|e| panic!("{name}: not a valid JSON Schema: {e}"));
        assert_eq!(schema["$schema"], "https://json-schema.org/draft/2020-12/schema", "{name}");
        refs_are_local(&schema, name);
        for key in ["title", "description"] {
            assert!(
                schema[key].as_str().is_some_and(|s| s.len() > 20),
                "{name}: needs a {key} a developer can learn from"
            );
        }
        assert_eq!(schema["properties"]["type"]["const"], ty.type_name(), "{name}: type const");
        assert_eq!(schema["properties"]["specversion"]["const"], "1.0", "{name}");
        assert_eq!(schema["additionalProperties"], true, "{name}: the envelope admits CloudEvents extensions");
        let required: BTreeSet<&str> =
            schema["required"].as_array().unwrap().iter().filter_map(Value::as_str).collect();
        assert_eq!(
            required,
            ["specversion", "id", "source", "type", "time", "subject", "data"].into(),
            "{name}: required envelope attributes"
        );
        let data = resolve(&schema, &schema["properties"]["data"]);
        assert_eq!(data["additionalProperties"], false, "{name}: data admits no unknown fields");
    }
}

#[test]
fn readme_names_every_event_type() {
    let readme = fs::read_to_string(events_dir().join("README.md")).expect("events/README.md");
    for ty in EventType::ALL {
        assert!(readme.contains(&ty.type_name()), "README.md does not describe {}", ty.type_name());
    }
}

#[test]
fn valid_fixtures_pass_the_schema_decode_check_and_round_trip() {
    for &ty in EventType::ALL {
        let name = ty.stem();
        let (text, fixture) = valid_fixture(ty);
        let errors = schema_errors(&validator(&schema(ty)), &fixture);
        assert!(errors.is_empty(), "{name}: schema rejects the valid fixture: {errors:#?}");
        let event = Event::from_json(text.as_bytes()).unwrap_or_else(|r| panic!("{name}: refused: {r}"));
        assert_eq!(event.event_type(), ty, "{name}");
        check_content(&event).unwrap_or_else(|r| panic!("{name}: refused by check_content: {r}"));
        let back: Value = serde_json::from_str(&event.to_json()).unwrap();
        assert!(same_json(&back, &fixture), "{name}: canonical form differs:\n{back:#}\nfixture:\n{fixture:#}");
        assert_eq!(find_citizen_id(&text), None, "{name}: a golden fixture must not even look like it holds a CCCD");
    }
}

/// Removes the member at `path` (object keys, array indexes) from `value`; false when it is not there.
fn remove_at(value: &mut Value, path: &[PathStep]) -> bool {
    match path {
        [] => false,
        [PathStep::Key(k)] => value.as_object_mut().is_some_and(|m| m.remove(k).is_some()),
        [step, rest @ ..] => match (step, value) {
            (PathStep::Key(k), Value::Object(m)) => m.get_mut(k).is_some_and(|v| remove_at(v, rest)),
            (PathStep::Index(i), Value::Array(a)) => a.get_mut(*i).is_some_and(|v| remove_at(v, rest)),
            _ => false,
        },
    }
}

#[derive(Clone)]
enum PathStep {
    Key(String),
    Index(usize),
}

/// Compares one object of the schema with the object serde wrote, and recurses into nested objects
/// (`decision`, `plan`, the items of `scores`). A field is optional in Rust when the fixture still
/// decodes without it.
fn compare_object(
    name: &str,
    root: &Value,
    schema: &Value,
    written: &Map<String, Value>,
    fixture: &Value,
    path: &[PathStep],
    label: &str,
) {
    let schema = resolve(root, schema);
    let properties: BTreeSet<&str> = schema["properties"]
        .as_object()
        .unwrap_or_else(|| panic!("{name}: {label} has no properties"))
        .keys()
        .map(String::as_str)
        .collect();
    let keys: BTreeSet<&str> = written.keys().map(String::as_str).collect();
    assert_eq!(
        properties, keys,
        "{name}: {label}: schema properties vs the fields serde writes (the fixture must set every optional field)"
    );
    assert_eq!(schema["additionalProperties"], false, "{name}: {label} must admit no unknown fields");

    let required: BTreeSet<&str> =
        schema["required"].as_array().map(|r| r.iter().filter_map(Value::as_str).collect()).unwrap_or_default();
    let mut rust_required = BTreeSet::new();
    for key in &keys {
        let mut without = fixture.clone();
        let mut field_path = path.to_vec();
        field_path.push(PathStep::Key((*key).to_owned()));
        assert!(remove_at(&mut without, &field_path), "{name}: {label}.{key} not found in the fixture");
        if Event::from_json(without.to_string().as_bytes()).is_err() {
            rust_required.insert(*key);
        }
    }
    assert_eq!(required, rust_required, "{name}: {label}: schema `required` vs the fields Rust cannot decode without");

    for (key, value) in written {
        let sub_schema = &resolve(root, schema)["properties"][key];
        let mut sub_path = path.to_vec();
        sub_path.push(PathStep::Key(key.clone()));
        match value {
            Value::Object(inner) => {
                compare_object(name, root, sub_schema, inner, fixture, &sub_path, &format!("{label}.{key}"))
            }
            Value::Array(items) => {
                if let Some(Value::Object(first)) = items.first() {
                    sub_path.push(PathStep::Index(0));
                    let items_schema = &resolve(root, sub_schema)["items"];
                    compare_object(name, root, items_schema, first, fixture, &sub_path, &format!("{label}.{key}[]"));
                }
            }
            _ => {}
        }
    }
}

#[test]
fn schema_data_fields_are_exactly_the_rust_fields() {
    for &ty in EventType::ALL {
        let name = ty.stem();
        let schema = schema(ty);
        let (text, fixture) = valid_fixture(ty);
        let event = Event::from_json(text.as_bytes()).unwrap_or_else(|r| panic!("{name}: refused: {r}"));
        let Value::Object(written) = serde_json::to_value(&event.data).unwrap() else {
            panic!("{name}: data does not serialise to an object")
        };
        let data_path = [PathStep::Key("data".to_owned())];
        compare_object(name, &schema, &schema["properties"]["data"], &written, &fixture, &data_path, "data");
    }
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct Expected {
    file: String,
    field: String,
    rule: String,
    schema_rejects: bool,
}

#[test]
fn invalid_fixtures_are_refused_as_the_manifest_says() {
    let dir = events_dir().join("fixtures/invalid");
    let manifest: Vec<Expected> = serde_json::from_value(read_json(&dir.join("manifest.json")))
        .expect("manifest.json: array of {file, field, rule, schema_rejects}");
    let listed: BTreeSet<String> = manifest.iter().map(|e| e.file.clone()).collect();
    assert_eq!(listed.len(), manifest.len(), "manifest.json lists a file twice");
    let mut on_disk = file_names(&dir);
    on_disk.remove("manifest.json");
    assert_eq!(on_disk, listed, "every invalid fixture is in manifest.json and every entry has a file");
    assert!(manifest.len() >= 20, "at least 20 invalid fixtures");

    let validators = all_validators();
    let mut failures = Vec::new();
    for expected in &manifest {
        let file = &expected.file;
        let text = fs::read_to_string(dir.join(file)).unwrap();
        let fixture: Value = serde_json::from_str(&text).unwrap_or_else(|e| panic!("{file}: not JSON: {e}"));

        match Event::from_json(text.as_bytes()).and_then(|event| check_content(&event)) {
            Ok(()) => failures.push(format!("{file}: accepted, expected {} at `{}`", expected.rule, expected.field)),
            Err(refusal) => {
                if refusal.field != expected.field || refusal.rule.as_str() != expected.rule {
                    failures.push(format!(
                        "{file}: refused at `{}` by rule {} ({}), expected `{}` by rule {}",
                        refusal.field, refusal.rule, refusal.detail, expected.field, expected.rule
                    ));
                }
                if let Some(id) = fixture["id"].as_str()
                    && refusal.event_id.as_deref() != Some(id)
                {
                    failures.push(format!("{file}: the refusal names event {:?}, not {id}", refusal.event_id));
                }
            }
        }

        let accepted_by: Vec<&str> =
            validators.iter().filter(|(_, v)| v.is_valid(&fixture)).map(|(name, _)| name.as_str()).collect();
        match (expected.schema_rejects, accepted_by.is_empty()) {
            (true, false) => {
                failures.push(format!("{file}: manifest says the schema rejects it, but {accepted_by:?} accepts it"))
            }
            (false, true) => {
                failures.push(format!("{file}: manifest says the schema accepts it, but every schema rejects it"))
            }
            _ => {}
        }
    }
    assert!(failures.is_empty(), "{} invalid fixture(s) disagree:\n{}", failures.len(), failures.join("\n"));
}
