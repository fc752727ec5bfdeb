//! The Kafka edge of hoctap: the only crate that speaks Kafka (through rdkafka).
//!
//! - [`topics`]: the topic names, in one place, and which topic an event goes to ([`Route`]).
//! - [`ensure_topics`]: creates the topics when they are missing.
//! - [`Producer`]: the idempotent producer (`enable.idempotence=true`, `acks=all`) that publishes events
//!   in the CloudEvents Kafka binding (structured mode) and dead letters, and awaits every acknowledgement.
//! - [`consumer_config`], [`reader_config`], [`read_to_end`]: how the projector and the gateway read.
//! - [`test_broker`]: a throwaway tansu broker for the tests of every crate that speaks Kafka.
//!
//! The message format is the contract with every other Kafka tool: the value of an event record is the
//! event's canonical JSON ([`hoctap_domain::Event::to_json`], with `recordedtime`), its key is the
//! event's `subject`, and it carries the header `content-type: application/cloudevents+json`.

mod admin;
mod dead_letter;
mod producer;
mod reader;
pub mod test_broker;
pub mod topics;

pub use admin::{ensure_topics, ensure_topics_with};
pub use dead_letter::{DeadLetter, Reason};
pub use producer::{Producer, PublishError, Written, producer_config};
pub use reader::{Record, consumer_config, read_all, read_from, read_to_end, reader_config};
pub use topics::{CLOUDEVENTS_JSON, CONTENT_TYPE, DEFAULT_EVENT_PARTITIONS, Route, Topics};

/// Setting up a Kafka client or reading a topic failed.
#[derive(Debug, thiserror::Error)]
pub enum Error {
    /// rdkafka refused the settings or could not create the client: fix the configuration (do not retry).
    #[error("creating the Kafka client: {0}")]
    Client(#[source] rdkafka::error::KafkaError),
    /// A setting would weaken a guarantee this crate gives (idempotence, `acks=all`): fix the configuration.
    #[error("the Kafka setting `{key}` cannot be overridden: {reason}")]
    Setting { key: String, reason: &'static str },
    /// The broker did not create a topic: usually the cluster is unreachable or refuses the
    /// partitions/replication asked for. Retry once the cluster is healthy, or fix the settings.
    #[error("creating topic {topic}: {code}")]
    CreateTopic { topic: String, code: String },
    /// Talking to the cluster failed (metadata, offsets, fetch): retry later.
    #[error("reading topic {topic}: {source}")]
    Read {
        topic: String,
        #[source]
        source: rdkafka::error::KafkaError,
    },
    /// The topic does not exist (run [`ensure_topics`] first).
    #[error("topic {0} does not exist")]
    NoTopic(String),
    /// No record arrived for too long before the end of the topic was reached: retry later.
    #[error("reading topic {topic}: nothing arrived for {seconds} s before its end was reached")]
    ReadTimeout { topic: String, seconds: u64 },
}
