//! Reading: the projector's consumer settings, and reading a topic whole from the beginning with
//! `assign` (the reference topic on every start, the events topic when the gateway rebuilds its state).

use crate::Error;
use rdkafka::consumer::{BaseConsumer, Consumer};
use rdkafka::message::{Headers, Message};
use rdkafka::{ClientConfig, Offset, TopicPartitionList};
use std::collections::HashMap;
use std::time::{Duration, Instant};

/// Settings of a consumer-group member (the projector): offsets are committed by the caller only, in
/// the same transaction as the read-model change (`enable.auto.commit=false`), and a new group starts
/// from the beginning of the log (`auto.offset.reset=earliest`).
pub fn consumer_config(brokers: &str, group: &str) -> ClientConfig {
    let mut config = ClientConfig::new();
    config
        .set("bootstrap.servers", brokers)
        .set("group.id", group)
        .set("client.id", "hoctap")
        .set("enable.auto.commit", "false")
        .set("auto.offset.reset", "earliest")
        .set("enable.partition.eof", "false");
    config
}

/// Settings of a reader that `assign`s partitions itself and commits nothing (it joins no group:
/// `group.id` is set only because librdkafka wants one for a consumer).
pub fn reader_config(brokers: &str) -> ClientConfig {
    consumer_config(brokers, "hoctap-reader")
}

/// One record as read, owned.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub key: Option<Vec<u8>>,
    pub payload: Vec<u8>,
    pub headers: Vec<(String, Option<Vec<u8>>)>,
}

impl Record {
    /// The value of the first header named `name`.
    pub fn header(&self, name: &str) -> Option<&[u8]> {
        self.headers.iter().find(|(k, _)| k == name).and_then(|(_, v)| v.as_deref())
    }

    fn of(m: &impl Message) -> Record {
        Record {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
            key: m.key().map(<[u8]>::to_vec),
            payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
            headers: m
                .headers()
                .map(|h| h.iter().map(|h| (h.key.to_owned(), h.value.map(<[u8]>::to_vec))).collect())
                .unwrap_or_default(),
        }
    }
}

/// Reads every partition of `topic` from its beginning up to the end it had when the call began,
/// handing each record to `each` (in offset order within a partition). Blocking: call it from a
/// blocking thread. `idle` bounds the wait for the next record. Returns the number of records read.
///
/// The end is the high watermark of each partition at the start; the topic is not expected to hold
/// transaction control records (nothing in hoctap writes transactionally), which would sit at the end
/// and never be delivered.
pub fn read_to_end(brokers: &str, topic: &str, idle: Duration, each: impl FnMut(Record)) -> Result<u64, Error> {
    read_from(brokers, topic, &HashMap::new(), idle, each)
}

/// [`read_to_end`] from the offsets in `from` (per partition; a partition not listed, or an offset
/// below the partition's first, is read from its beginning): the tail of a topic whose head a reader
/// already took in. Returns the number of records read.
pub fn read_from(
    brokers: &str,
    topic: &str,
    from: &HashMap<i32, i64>,
    idle: Duration,
    mut each: impl FnMut(Record),
) -> Result<u64, Error> {
    let err = |source| Error::Read { topic: topic.to_owned(), source };
    let consumer: BaseConsumer = reader_config(brokers).create().map_err(Error::Client)?;
    // A topic created a moment ago may not be in every broker's metadata yet: ask again for a while.
    let asked = Instant::now();
    let partitions: Vec<i32> = loop {
        let metadata = consumer.fetch_metadata(Some(topic), idle).map_err(err)?;
        let partitions: Vec<i32> = metadata
            .topics()
            .iter()
            .filter(|t| t.name() == topic && t.error().is_none())
            .flat_map(|t| t.partitions().iter().map(|p| p.id()))
            .collect();
        if !partitions.is_empty() {
            break partitions;
        }
        if asked.elapsed() > idle {
            return Err(Error::NoTopic(topic.to_owned()));
        }
        std::thread::sleep(Duration::from_millis(200));
    };
    let mut ends: HashMap<i32, i64> = HashMap::new();
    let mut assignment = TopicPartitionList::new();
    for p in partitions {
        let (low, high) = consumer.fetch_watermarks(topic, p, idle).map_err(err)?;
        let start = from.get(&p).map_or(low, |&f| f.max(low));
        if high > start {
            ends.insert(p, high);
            assignment.add_partition_offset(topic, p, Offset::Offset(start)).map_err(err)?;
        }
    }
    if ends.is_empty() {
        return Ok(0);
    }
    consumer.assign(&assignment).map_err(err)?;
    let mut read = 0u64;
    let mut last = Instant::now();
    while !ends.is_empty() {
        match consumer.poll(Duration::from_millis(100)) {
            None => {
                if last.elapsed() > idle {
                    return Err(Error::ReadTimeout { topic: topic.to_owned(), seconds: idle.as_secs() });
                }
            }
            Some(Err(e)) => return Err(err(e)),
            Some(Ok(m)) => {
                last = Instant::now();
                let Some(&end) = ends.get(&m.partition()) else { continue };
                if m.offset() < end {
                    read += 1;
                    each(Record::of(&m));
                }
                if m.offset() + 1 >= end {
                    ends.remove(&m.partition());
                }
            }
        }
    }
    Ok(read)
}

/// [`read_to_end`], collecting the records.
pub fn read_all(brokers: &str, topic: &str, idle: Duration) -> Result<Vec<Record>, Error> {
    let mut records = Vec::new();
    read_to_end(brokers, topic, idle, |r| records.push(r))?;
    Ok(records)
}
