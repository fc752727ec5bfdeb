//! One writer at a time: the writer lease, and making the writer ready to judge.
//!
//! The lease is a row in PostgreSQL (`hoctap_store::GatewayState::acquire`) with a fencing epoch. A
//! gateway judges and publishes only while its lease, counted on its own monotonic clock from before
//! the renewal was sent, has more than two publish timeouts (dead letters, then events) plus a margin
//! left; it renews every tenth of the lease. So when another gateway takes an expired lease, every
//! record of the old holder was acknowledged or failed already, and the new holder, after reading the
//! events topic's tail into PostgreSQL, stamps after the last `recordedtime` in the log: within each
//! partition, `recordedtime` stays ordered across the hand-over. Every write to PostgreSQL names the
//! epoch, so a holder that lost the lease (paused, cut off) writes nothing more and stands by.
//! Design: docs/design/2026-11-30-bounded-gateway.md.

use crate::Inner;
use crate::places::placement;
use crate::state::State;
use hoctap_domain::{ContentDigest, Event};
use hoctap_kafka::Route;
use hoctap_store::{Folded, GatewayState, StoreError};
use std::collections::HashMap;
use std::sync::Weak;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// Renewals per lease length: a renewal late by up to this many lease-tenths still keeps the writer writing.
pub(crate) const RENEWALS: u32 = 10;

/// Room kept on top of two publish timeouts before the lease runs out.
pub(crate) const MARGIN: Duration = Duration::from_secs(2);

/// Records of the events topic's tail written to PostgreSQL per transaction.
const CHUNK: usize = 5_000;

/// The lease as this gateway holds it.
#[derive(Clone, Copy, Debug)]
struct Held {
    epoch: i64,
    /// The last `recordedtime` stamped by any holder before this one took the lease.
    last_recorded: i64,
    /// When the lease runs out, on this gateway's monotonic clock (counted from before the renewal).
    until: Instant,
}

#[derive(Debug)]
pub(crate) struct LeaseView {
    holder: String,
    len: Duration,
    publish_bound: Duration,
    held: std::sync::Mutex<Option<Held>>,
    stopped: std::sync::atomic::AtomicBool,
}

impl LeaseView {
    pub fn new(len: Duration, publish_bound: Duration) -> LeaseView {
        let started =
            std::time::SystemTime::now().duration_since(std::time::UNIX_EPOCH).map(|d| d.as_micros()).unwrap_or(0);
        LeaseView {
            holder: format!("gateway-{}-{started:x}", std::process::id()),
            len,
            publish_bound,
            held: std::sync::Mutex::new(None),
            stopped: std::sync::atomic::AtomicBool::new(false),
        }
    }

    fn held(&self) -> Option<Held> {
        *self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner)
    }

    fn set(&self, held: Option<Held>) {
        *self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner) = held;
    }

    /// The epoch under which a request may be judged and published now: the lease is held with more
    /// than two publishes and the margin left.
    pub fn epoch_to_publish(&self) -> Option<i64> {
        let needed = self.publish_bound * 2 + MARGIN;
        self.held().filter(|h| h.until.saturating_duration_since(Instant::now()) > needed).map(|h| h.epoch)
    }

    pub fn may_publish(&self) -> bool {
        self.epoch_to_publish().is_some()
    }

    /// Forgets the lease of `epoch`: another gateway took it.
    pub fn lost(&self, epoch: i64) {
        let mut held = self.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
        if held.is_some_and(|h| h.epoch == epoch) {
            *held = None;
            tracing::warn!(epoch, "the writer lease was taken by another gateway; standing by");
        }
    }

    /// Seconds a client should wait before trying again when this gateway does not write.
    pub fn retry_after(&self) -> u64 {
        (self.len / RENEWALS).as_secs().max(1)
    }

    fn stopped(&self) -> bool {
        self.stopped.load(std::sync::atomic::Ordering::SeqCst)
    }
}

/// The writer: its PostgreSQL connection and, once ready under the current lease, the reference state.
#[derive(Debug)]
pub(crate) struct Writer {
    pub db: GatewayState,
    pub ready: Option<Ready>,
}

/// The state of a writer that read the reference topic and the events topic's tail under `epoch`.
#[derive(Debug)]
pub(crate) struct Ready {
    pub state: State,
    pub epoch: i64,
    /// A write to PostgreSQL failed after Kafka took records: read the tail again before judging.
    pub stale: bool,
}

impl Writer {
    pub fn new(db: GatewayState) -> Writer {
        Writer { db, ready: None }
    }
}

/// Why the writer cannot judge now.
#[derive(Debug, thiserror::Error)]
pub(crate) enum NotReady {
    #[error("another gateway holds the writer lease")]
    Standby,
    #[error(transparent)]
    Store(#[from] StoreError),
    #[error(transparent)]
    Kafka(#[from] hoctap_kafka::Error),
    #[error("reading the log: {0}")]
    Read(String),
}

impl From<NotReady> for crate::GatewayError {
    fn from(e: NotReady) -> crate::GatewayError {
        match e {
            NotReady::Standby => crate::GatewayError::Replay("the writer lease was lost while starting".to_owned()),
            NotReady::Store(e) => crate::GatewayError::Store(e),
            NotReady::Kafka(e) => crate::GatewayError::Kafka(e),
            NotReady::Read(e) => crate::GatewayError::Replay(e),
        }
    }
}

/// Takes the lease when it is free. `true`: this gateway is the writer now.
pub(crate) async fn try_take(inner: &Inner, db: &GatewayState) -> Result<bool, StoreError> {
    let sent = Instant::now();
    match db.acquire(&inner.lease.holder, inner.lease.len).await? {
        Some(lease) => {
            inner.lease.set(Some(Held {
                epoch: lease.epoch,
                last_recorded: lease.last_recorded,
                until: sent + inner.lease.len,
            }));
            tracing::info!(holder = %inner.lease.holder, epoch = lease.epoch, "took the writer lease");
            Ok(true)
        }
        None => Ok(false),
    }
}

/// Renews the lease every tenth of its length, or takes it when it is free (then makes the writer
/// ready), until the gateway stops or is dropped (then the lease expires on its own, as after a
/// crash). Runs on a connection of its own, so that a request holding the writer's connection never
/// delays a renewal.
pub(crate) async fn keep(weak: Weak<Inner>, mut db: GatewayState) {
    let Some(every) = weak.upgrade().map(|inner| inner.lease.len / RENEWALS) else { return };
    loop {
        tokio::time::sleep(every).await;
        let Some(inner) = weak.upgrade() else { return };
        if inner.lease.stopped() {
            return;
        }
        if db.is_closed() {
            match GatewayState::connect(&inner.postgres, inner.deployment.gateway_schema()).await {
                Ok(fresh) => db = fresh,
                Err(e) => {
                    tracing::warn!(error = %e, "PostgreSQL unreachable for the writer lease");
                    continue;
                }
            }
        }
        match inner.lease.held() {
            Some(held) => {
                let sent = Instant::now();
                match db.renew(&inner.lease.holder, held.epoch, inner.lease.len).await {
                    Ok(true) => {
                        let mut h = inner.lease.held.lock().unwrap_or_else(std::sync::PoisonError::into_inner);
                        if let Some(h) = h.as_mut().filter(|h| h.epoch == held.epoch) {
                            h.until = sent + inner.lease.len;
                        }
                    }
                    Ok(false) => inner.lease.lost(held.epoch),
                    // Not renewed: the lease runs out on this gateway's clock before anyone can take it.
                    Err(e) => tracing::warn!(error = %e, "renewing the writer lease"),
                }
            }
            None => match try_take(&inner, &db).await {
                Ok(true) => {
                    let inner = inner.clone();
                    tokio::spawn(async move {
                        let mut writer = inner.state.lock().await;
                        if let Err(e) = ready(&inner, &mut writer).await {
                            tracing::warn!(error = %e, "getting ready to write; the next request tries again");
                        }
                    });
                }
                Ok(false) => {}
                Err(e) => tracing::warn!(error = %e, "taking the writer lease"),
            },
        }
    }
}

/// Gives the lease up (a graceful stop) and stops renewing or taking it.
pub(crate) async fn release(inner: &Inner, db: &GatewayState) {
    inner.lease.stopped.store(true, std::sync::atomic::Ordering::SeqCst);
    if let Some(held) = inner.lease.held() {
        inner.lease.set(None);
        match db.release(&inner.lease.holder, held.epoch).await {
            Ok(()) => tracing::info!(epoch = held.epoch, "released the writer lease"),
            Err(e) => tracing::warn!(error = %e, "releasing the writer lease; it expires on its own"),
        }
    }
}

/// Makes the writer ready to judge under the lease it holds: on a new lease, reads the reference
/// topic whole and the events topic's tail (from the offsets PostgreSQL stored) into PostgreSQL; on a
/// stale state, the tail only. Reconnects to PostgreSQL when the connection is gone.
pub(crate) async fn ready(inner: &Inner, writer: &mut Writer) -> Result<(), NotReady> {
    let held = inner.lease.held().ok_or(NotReady::Standby)?;
    if writer.db.is_closed() {
        writer.db = GatewayState::connect(&inner.postgres, inner.deployment.gateway_schema()).await?;
    }
    match &mut writer.ready {
        Some(r) if r.epoch == held.epoch && !r.stale => return Ok(()),
        Some(r) if r.epoch == held.epoch => {
            catch_up(inner, &mut writer.db, held.epoch, &mut r.state).await?;
            r.stale = false;
            return Ok(());
        }
        _ => writer.ready = None,
    }
    let started = Instant::now();
    let (brokers, topic, idle) = (inner.brokers.clone(), inner.topics.reference.clone(), inner.read_idle);
    let mut state = tokio::task::spawn_blocking(move || -> Result<State, NotReady> {
        let mut state = State::default();
        hoctap_kafka::read_to_end(&brokers, &topic, idle, |record| match Event::from_json_recorded(&record.payload) {
            Ok(event) => state.fold(&event, Route::Reference),
            // Only the gateway writes these topics: an unreadable record is a broken invariant.
            Err(refusal) => tracing::error!(
                topic = %record.topic, partition = record.partition, offset = record.offset,
                error = %refusal, "unreadable record in the log; skipped"
            ),
        })?;
        Ok(state)
    })
    .await
    .map_err(|e| NotReady::Read(e.to_string()))??;
    state.saw_recorded(held.last_recorded);
    let tail = catch_up(inner, &mut writer.db, held.epoch, &mut state).await?;
    tracing::info!(
        reference = state.reference_events(),
        tail,
        seconds = started.elapsed().as_secs_f64(),
        "gateway ready: reference topic read, events topic's tail folded into PostgreSQL"
    );
    writer.ready = Some(Ready { state, epoch: held.epoch, stale: false });
    Ok(())
}

/// One record of the events topic's tail, as PostgreSQL remembers it.
struct Tail {
    partition: i32,
    offset: i64,
    /// `None` for a record that is not an event (skipped, its offset passed).
    event: Option<(Uuid, ContentDigest, String, Option<String>, i64)>,
}

/// Folds the events topic from the offsets PostgreSQL stored to its end into PostgreSQL, in chunks of
/// [`CHUNK`] (each one transaction, fenced by `epoch`). Returns the number of records read.
async fn catch_up(inner: &Inner, db: &mut GatewayState, epoch: i64, state: &mut State) -> Result<u64, NotReady> {
    let from = db.folded(&inner.topics.events).await?;
    let (brokers, topic, idle) = (inner.brokers.clone(), inner.topics.events.clone(), inner.read_idle);
    let (send, mut chunks) = tokio::sync::mpsc::channel::<Vec<Tail>>(4);
    let reader = tokio::task::spawn_blocking(move || -> Result<u64, hoctap_kafka::Error> {
        let mut chunk = Vec::with_capacity(CHUNK);
        let mut open = true;
        let read = hoctap_kafka::read_from(&brokers, &topic, &from, idle, |record| {
            let event = match Event::from_json_recorded(&record.payload) {
                Ok(e) => Some((
                    e.id,
                    e.content_digest(),
                    e.subject.clone(),
                    placement(&e).map(str::to_owned),
                    e.recordedtime.unwrap_or(0),
                )),
                Err(refusal) => {
                    tracing::error!(
                        topic = %record.topic, partition = record.partition, offset = record.offset,
                        error = %refusal, "unreadable record in the events topic; skipped"
                    );
                    None
                }
            };
            chunk.push(Tail { partition: record.partition, offset: record.offset, event });
            if chunk.len() == CHUNK && open {
                open = send.blocking_send(std::mem::replace(&mut chunk, Vec::with_capacity(CHUNK))).is_ok();
            }
        })?;
        if !chunk.is_empty() && open {
            let _ = send.blocking_send(chunk);
        }
        Ok(read)
    });
    let mut written = 0usize;
    while let Some(chunk) = chunks.recv().await {
        let mut folded = Folded::default();
        let mut next: HashMap<(&str, i32), i64> = HashMap::new();
        for t in &chunk {
            let n = next.entry((inner.topics.events.as_str(), t.partition)).or_insert(0);
            *n = (*n).max(t.offset + 1);
            if let Some((id, digest, subject, commune, recorded)) = &t.event {
                folded.events.push((*id, *digest, subject));
                if let Some(c) = commune {
                    folded.placements.push((subject, c));
                }
                folded.last_recorded = folded.last_recorded.max(*recorded);
            }
        }
        folded.next_offsets = next;
        db.record(epoch, &folded).await?;
        state.saw_recorded(folded.last_recorded);
        written += chunk.len();
        if written % (CHUNK * 200) < CHUNK {
            tracing::info!(records = written, "folding the events topic's tail into PostgreSQL");
        }
    }
    let read = reader.await.map_err(|e| NotReady::Read(e.to_string()))??;
    Ok(read)
}
