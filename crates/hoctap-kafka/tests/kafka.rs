//! The Kafka edge against a real broker (tansu, started per test): topics, the message format
//! (key, content-type header, canonical JSON with recordedtime), routing, dead letters, consumer
//! settings, and what a failed delivery reports.

use hoctap_domain::{Event, Refusal, Rule};
use hoctap_kafka::test_broker::TestBroker;
use hoctap_kafka::{
    CLOUDEVENTS_JSON, CONTENT_TYPE, DeadLetter, Producer, PublishError, Record, Route, Topics, consumer_config,
    ensure_topics, read_all,
};
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::Message;
use std::collections::BTreeMap;
use std::time::{Duration, Instant};

const IDLE: Duration = Duration::from_secs(15);

/// Tests against tansu produce every record as its own batch (shared/broker.md, gap 1).
fn test_settings() -> BTreeMap<String, String> {
    BTreeMap::from([("batch.num.messages".to_owned(), "1".to_owned())])
}

fn event(n: u32, ty: &str, subject: &str, data: serde_json::Value, recorded: i64) -> Event {
    let json = serde_json::json!({
        "specversion": "1.0", "id": format!("00000000-0000-4000-8000-{n:012}"), "source": "test",
        "type": format!("vn.hoctap.{ty}.v1"), "time": "2025-03-01T09:00:00+07:00", "subject": subject, "data": data,
    });
    let mut e = Event::from_json(json.to_string().as_bytes()).expect("test events are valid");
    e.recordedtime = Some(recorded);
    e
}

fn registration(n: u32, subject: &str, recorded: i64) -> Event {
    event(
        n,
        "registration.submitted",
        subject,
        serde_json::json!({"subject_kind": "citizen", "commune": "00001", "title": "learning_citizen", "cycle_year": 2025}),
        recorded,
    )
}

fn province(n: u32, code: &str, recorded: i64) -> Event {
    event(
        n,
        "admin_unit.established",
        code,
        serde_json::json!({"code": code, "level": "province", "name": "Hà Nội"}),
        recorded,
    )
}

fn retraction(n: u32, subject: &str, of: u32, recorded: i64) -> Event {
    event(
        n,
        "event.retracted",
        subject,
        serde_json::json!({"event_id": format!("00000000-0000-4000-8000-{of:012}"), "reason": "entered in error"}),
        recorded,
    )
}

fn assert_cloudevent(record: &Record) {
    assert_eq!(record.header(CONTENT_TYPE), Some(CLOUDEVENTS_JSON.as_bytes()), "structured-mode content type");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn events_round_trip_keyed_by_subject_in_order() {
    let broker = TestBroker::start();
    let brokers = broker.brokers();
    ensure_topics(&brokers, 3).await.expect("creating topics");
    ensure_topics(&brokers, 3).await.expect("topics that exist are left alone");
    let producer = Producer::new(&brokers, Topics::default(), &test_settings()).unwrap();

    let mut events = vec![province(1, "01", 10)];
    for i in 0..30u32 {
        events.push(registration(100 + i, &format!("cit-{}", i % 4), 100 + i64::from(i)));
    }
    producer.publish(&events).await.expect("every record acknowledged");

    let topics = Topics::default();
    let reference = tokio::task::spawn_blocking({
        let brokers = brokers.clone();
        move || read_all(&brokers, hoctap_kafka::topics::REFERENCE, IDLE)
    })
    .await
    .unwrap()
    .unwrap();
    assert_eq!(reference.len(), 1);
    assert_eq!(reference[0].payload, events[0].to_json().as_bytes());
    assert_cloudevent(&reference[0]);

    let records = tokio::task::spawn_blocking(move || read_all(&brokers, &topics.events, IDLE)).await.unwrap().unwrap();
    assert_eq!(records.len(), 30);
    let mut by_subject: BTreeMap<Vec<u8>, Vec<(i32, i64, Event)>> = BTreeMap::new();
    for r in &records {
        assert_cloudevent(r);
        let e = Event::from_json_recorded(&r.payload).expect("the value is the canonical event with recordedtime");
        assert_eq!(r.key.as_deref(), Some(e.subject.as_bytes()), "key = subject");
        assert_eq!(r.payload, e.to_json().as_bytes());
        by_subject.entry(r.key.clone().unwrap()).or_default().push((r.partition, r.offset, e));
    }
    assert_eq!(by_subject.len(), 4);
    for (_, mut recs) in by_subject {
        assert!(recs.windows(2).all(|w| w[0].0 == w[1].0), "one subject, one partition");
        recs.sort_by_key(|r| r.1);
        let recorded: Vec<i64> = recs.iter().map(|r| r.2.recordedtime.unwrap()).collect();
        assert!(recorded.windows(2).all(|w| w[0] < w[1]), "a subject's events in the order published: {recorded:?}");
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn retractions_follow_the_event_they_name() {
    let broker = TestBroker::start();
    let brokers = broker.brokers();
    ensure_topics(&brokers, 2).await.unwrap();
    let producer = Producer::new(&brokers, Topics::default(), &test_settings()).unwrap();
    let unit = province(1, "01", 1);
    let of_unit = retraction(2, "01", 1, 2);
    let of_subject = retraction(3, "cit-1", 9, 3);
    let known_reference = |id: &uuid::Uuid| *id == unit.id;
    assert_eq!(Route::of(&of_unit, known_reference), Route::Reference);
    assert_eq!(Route::of(&of_subject, known_reference), Route::Events);
    assert_eq!(Route::of(&of_unit, |_| false), Route::Events, "unknown target: the events topic");
    let routed = [
        (Route::of(&unit, known_reference), &unit),
        (Route::of(&of_unit, known_reference), &of_unit),
        (Route::Events, &of_subject),
    ];
    producer.publish_routed(&routed).await.unwrap();
    let reference = tokio::task::spawn_blocking(move || read_all(&brokers, hoctap_kafka::topics::REFERENCE, IDLE))
        .await
        .unwrap()
        .unwrap();
    let ids: Vec<Event> = reference.iter().map(|r| Event::from_json_recorded(&r.payload).unwrap()).collect();
    assert_eq!(ids, [unit, of_unit]);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn dead_letters_carry_the_event_as_sent_and_the_reason() {
    let broker = TestBroker::start();
    let brokers = broker.brokers();
    ensure_topics(&brokers, 1).await.unwrap();
    let producer = Producer::new(&brokers, Topics::default(), &test_settings()).unwrap();
    let raw = br#"{"specversion":"1.0","id":"00000000-0000-4000-8000-000000000042","cycle_year":1999}"#;
    let refusal = Refusal::new(
        Some("00000000-0000-4000-8000-000000000042".into()),
        "source",
        Rule::Schema,
        "required attribute `source` is missing",
    );
    producer.publish_dead_letter(raw, &refusal).await.unwrap();
    producer
        .publish_dead_letter(b"not json at all", Refusal::new(None, "(line)", Rule::Json, "expected value"))
        .await
        .unwrap();

    let records = tokio::task::spawn_blocking(move || read_all(&brokers, hoctap_kafka::topics::DEAD_LETTER, IDLE))
        .await
        .unwrap()
        .unwrap();
    assert_eq!(records.len(), 2);
    records.iter().for_each(assert_cloudevent);
    let first = DeadLetter::from_json(&records[0].payload).unwrap();
    assert_eq!(first.event.as_bytes(), raw);
    assert_eq!(
        (first.reason.event_id.as_deref(), first.reason.field.as_str(), first.reason.rule.as_str()),
        (Some("00000000-0000-4000-8000-000000000042"), "source", "schema")
    );
    assert_eq!(records[0].key.as_deref(), Some(&b"00000000-0000-4000-8000-000000000042"[..]), "keyed by the event id");
    let json: serde_json::Value = serde_json::from_slice(&records[0].payload).unwrap();
    assert!(json["reason"]["detail"].as_str().unwrap().contains("source"), "{json}");
    let second = DeadLetter::from_json(&records[1].payload).unwrap();
    assert_eq!(
        (second.event.as_str(), second.reason.rule.as_str(), records[1].key.as_deref()),
        ("not json at all", "json", None)
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_consumer_group_member_reads_from_the_beginning_and_commits_nothing_by_itself() {
    let broker = TestBroker::start();
    let brokers = broker.brokers();
    ensure_topics(&brokers, 2).await.unwrap();
    let producer = Producer::new(&brokers, Topics::default(), &test_settings()).unwrap();
    let events: Vec<Event> = (0..10u32).map(|i| registration(i, &format!("cit-{i}"), i64::from(i) + 1)).collect();
    producer.publish(&events).await.unwrap();

    let got = tokio::task::spawn_blocking(move || {
        let consumer: BaseConsumer = consumer_config(&brokers, "projector-test").create().unwrap();
        consumer.subscribe(&[hoctap_kafka::topics::EVENTS]).unwrap();
        let mut got = Vec::new();
        let start = Instant::now();
        while got.len() < 10 && start.elapsed() < Duration::from_secs(60) {
            if let Some(m) = consumer.poll(Duration::from_millis(200)) {
                let m = m.unwrap();
                got.push(Event::from_json_recorded(m.payload().unwrap()).unwrap().id);
            }
        }
        let committed = consumer.committed(Duration::from_secs(10)).unwrap();
        (got, committed.elements().iter().map(|e| e.offset()).collect::<Vec<_>>())
    })
    .await
    .unwrap();
    let (mut got, committed) = got;
    got.sort();
    assert_eq!(got, events.iter().map(|e| e.id).collect::<Vec<_>>());
    assert!(committed.iter().all(|o| !matches!(o, rdkafka::Offset::Offset(_))), "auto-commit is off: {committed:?}");
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_failed_delivery_says_what_is_not_in_the_log() {
    // Nothing listens on port 1: every record times out.
    let settings = BTreeMap::from([("message.timeout.ms".to_owned(), "1500".to_owned())]);
    let producer = Producer::new("127.0.0.1:1", Topics::default(), &settings).unwrap();
    let events = [registration(1, "cit-1", 1), registration(2, "cit-2", 2)];
    match producer.publish(&events).await {
        Err(PublishError::Delivery { total: 2, delivered, .. }) => assert!(delivered.is_empty()),
        other => panic!("expected a delivery failure, got {other:?}"),
    }
    let mut unstamped = registration(3, "cit-3", 3);
    unstamped.recordedtime = None;
    assert!(matches!(producer.publish(&[unstamped]).await, Err(PublishError::Unstamped(_))));
}

#[test]
fn guarantees_cannot_be_overridden() {
    for (key, value) in [("enable.idempotence", "false"), ("acks", "1")] {
        let settings = BTreeMap::from([(key.to_owned(), value.to_owned())]);
        let err = Producer::new("127.0.0.1:9092", Topics::default(), &settings).unwrap_err();
        assert!(matches!(err, hoctap_kafka::Error::Setting { .. }), "{key}={value}: {err}");
    }
    let fine = BTreeMap::from([("acks".to_owned(), "all".to_owned()), ("linger.ms".to_owned(), "50".to_owned())]);
    assert!(Producer::new("127.0.0.1:9092", Topics::default(), &fine).is_ok());
}
