//! Creating the topics when they are missing.

use crate::Error;
use crate::topics::{DEAD_LETTER_PARTITIONS, REFERENCE_PARTITIONS, Topics};
use rdkafka::ClientConfig;
use rdkafka::admin::{AdminClient, AdminOptions, NewTopic, TopicReplication};
use rdkafka::client::DefaultClientContext;
use rdkafka::types::RDKafkaErrorCode;
use std::time::Duration;

/// Creates the default topics ([`Topics::default`]) when missing, the events topic with `partitions`
/// partitions, all with the broker's default replication factor.
pub async fn ensure_topics(brokers: &str, partitions: i32) -> Result<(), Error> {
    ensure_topics_with(brokers, &Topics::default(), partitions, None).await
}

/// Creates `topics` when missing. `replication` `None` leaves the replication factor to the broker
/// (`default.replication.factor`). A topic that exists already is left as it is, even with another
/// partition count: repartitioning the events topic moves subjects between partitions and is an
/// operation of its own, never a side effect of starting a tool.
pub async fn ensure_topics_with(
    brokers: &str,
    topics: &Topics,
    partitions: i32,
    replication: Option<i32>,
) -> Result<(), Error> {
    let admin: AdminClient<DefaultClientContext> =
        ClientConfig::new().set("bootstrap.servers", brokers).create().map_err(Error::Client)?;
    // -1: the broker's default (KIP-464).
    let replication = || TopicReplication::Fixed(replication.unwrap_or(-1));
    // The log is the source of truth: a rebuild reads it from offset 0, so nothing may expire.
    let new = [
        NewTopic::new(&topics.events, partitions, replication()).set("retention.ms", "-1"),
        NewTopic::new(&topics.reference, REFERENCE_PARTITIONS, replication()).set("retention.ms", "-1"),
        NewTopic::new(&topics.dead_letter, DEAD_LETTER_PARTITIONS, replication()).set("retention.ms", "-1"),
    ];
    let opts = AdminOptions::new().operation_timeout(Some(Duration::from_secs(30)));
    let results = admin
        .create_topics(&new, &opts)
        .await
        .map_err(|e| Error::CreateTopic { topic: topics.events.clone(), code: e.to_string() })?;
    for result in results {
        match result {
            Ok(topic) => tracing::info!(topic = %topic, "created topic"),
            Err((_, RDKafkaErrorCode::TopicAlreadyExists)) => {}
            Err((topic, code)) => return Err(Error::CreateTopic { topic, code: code.to_string() }),
        }
    }
    Ok(())
}
