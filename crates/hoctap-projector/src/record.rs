//! A record as polled from Kafka, and its split into events and refused records — shared by the
//! projector and the rebuild, so both read the log the same way.

use hoctap_domain::{Event, Refusal};
use hoctap_store::{Consumed, Position};
use rdkafka::message::{BorrowedMessage, Message};

/// A record as polled (owned).
pub(crate) struct Record {
    pub topic: String,
    pub partition: i32,
    pub offset: i64,
    pub payload: Vec<u8>,
}

impl Record {
    pub fn of(m: &BorrowedMessage<'_>) -> Record {
        Record {
            topic: m.topic().to_owned(),
            partition: m.partition(),
            offset: m.offset(),
            payload: m.payload().map(<[u8]>::to_vec).unwrap_or_default(),
        }
    }
}

/// A record that is not an event (with `recordedtime`): where it sits, why, and what it held.
pub(crate) struct Refused {
    pub position: Position,
    pub refusal: Refusal,
    pub payload: Vec<u8>,
}

/// The events among `records`, and the records that are not events.
pub(crate) fn decode(records: Vec<Record>) -> (Vec<Consumed>, Vec<Refused>) {
    let mut batch = Vec::with_capacity(records.len());
    let mut refused = Vec::new();
    for r in records {
        match Event::from_json_recorded(&r.payload) {
            Ok(event) => batch.push(Consumed { topic: r.topic, partition: r.partition, offset: r.offset, event }),
            Err(refusal) => refused.push(Refused {
                position: Position { topic: r.topic, partition: r.partition, offset: r.offset },
                refusal,
                payload: r.payload,
            }),
        }
    }
    (batch, refused)
}
