//! Parallel replay: one thread reads and checks records, a pool decodes them, the caller folds them in order.
//!
//! Decoding JSON is what costs, so it is spread over `available_parallelism()` workers. Order is kept
//! without any reordering buffer: batch `n` always goes to worker `n % W`, each worker answers its
//! batches in the order it got them, and the caller takes answers round-robin from the workers.
//! Bounded channels keep at most a few batches per worker in flight, so memory stays flat however
//! long the log is.
//!
//! The fold is the one serial step, so work moves off its thread where it can: each worker applies the
//! caller's `digest` to the events it decoded, and gets its batches back to drop them, freeing their
//! memory on the thread that allocated it (a cross-thread free costs the fold several times more).

use crate::LogError;
use crate::frame::{Chunk, Framer};
use hoctap_domain::event::Event;
use std::collections::VecDeque;
use std::path::Path;
use std::sync::Arc;
use std::sync::mpsc::{Receiver, SyncSender, channel, sync_channel};
use std::thread;

/// Records per batch: enough to make a channel hop negligible, few enough to keep every worker busy.
const BATCH: usize = 2048;
/// Batches queued per worker, in each direction.
const DEPTH: usize = 4;

/// Work for a decoder: a batch of records, or a failure to pass on in its place in the order.
enum Job {
    Batch { chunk: Arc<Chunk>, first: usize, last: usize },
    Fail(LogError),
}

/// A decoded batch. `error`, when set, ends the replay after `items` are delivered.
struct Decoded<T> {
    items: Vec<T>,
    error: Option<LogError>,
}

/// Replays every record of `framer` in log order: `digest` runs on the workers, `f` on this thread
/// with each batch of digests, which it may empty. Returns how many were delivered.
pub(crate) fn run<T: Send>(
    framer: Framer,
    path: &Path,
    digest: &(dyn Fn(Event) -> T + Sync),
    mut f: impl FnMut(&mut Vec<T>),
) -> Result<u64, LogError> {
    let workers = thread::available_parallelism().map_or(1, |n| n.get());
    thread::scope(|s| {
        let mut jobs = Vec::with_capacity(workers);
        let mut answers = Vec::with_capacity(workers);
        let mut spent = Vec::with_capacity(workers);
        for _ in 0..workers {
            let (job_tx, job_rx) = sync_channel(DEPTH);
            let (answer_tx, answer_rx) = sync_channel(DEPTH);
            // Unbounded: a batch handed back must never block the fold. At most DEPTH + 1 per worker
            // are in flight, since a worker takes one back for every batch it sends.
            let (spent_tx, spent_rx) = channel();
            spawn(s, "hoctap-replay-decode", path, move || decode(job_rx, answer_tx, spent_rx, digest, path))?;
            jobs.push(job_tx);
            answers.push(answer_rx);
            spent.push(spent_tx);
        }
        spawn(s, "hoctap-replay-read", path, move || read(framer, jobs, path))?;

        // When the caller's closure panics or an error returns early, `answers` is dropped, every
        // worker's next send fails, they stop, the reader's next send fails, and the scope joins.
        let mut delivered = 0;
        for (answer, spent) in answers.iter().zip(&spent).cycle() {
            // A closed channel before an error means the reader finished: every batch was delivered.
            let Ok(Decoded { mut items, error }) = answer.recv() else { break };
            delivered += items.len() as u64;
            f(&mut items);
            // The worker may have finished already; then the batch is dropped here.
            let _ = spent.send(items);
            if let Some(e) = error {
                return Err(e);
            }
        }
        Ok(delivered)
    })
}

/// Spawns a named thread (names show in profilers and panics).
fn spawn<'scope>(
    s: &'scope thread::Scope<'scope, '_>,
    name: &str,
    path: &Path,
    f: impl FnOnce() + Send + 'scope,
) -> Result<(), LogError> {
    thread::Builder::new().name(name.to_owned()).spawn_scoped(s, f).map(drop).map_err(|source| LogError::Io {
        op: "starting a replay thread for",
        path: path.to_owned(),
        source,
    })
}

/// The reader: frames and checks records, deals batches to the workers round-robin.
fn read(mut framer: Framer, jobs: Vec<SyncSender<Job>>, path: &Path) {
    let mut next = 0;
    let mut send = |job: Job| {
        let sent = jobs[next % jobs.len()].send(job).is_ok();
        next += 1;
        sent
    };
    // Chunks the workers may still be reading. Once only this list holds one, its buffer goes back to
    // the framer: fresh 16 MiB buffers would cost a page fault per 4 KiB on every chunk.
    let mut in_flight: VecDeque<Arc<Chunk>> = VecDeque::new();
    loop {
        while in_flight.front().is_some_and(|c| Arc::strong_count(c) == 1) {
            if let Some(done) = in_flight.pop_front().and_then(Arc::into_inner) {
                framer.recycle(done.bytes);
            }
        }
        match framer.next_chunk() {
            Ok(Some(chunk)) => {
                let records = chunk.payloads.len();
                let chunk = Arc::new(chunk);
                in_flight.push_back(Arc::clone(&chunk));
                for first in (0..records).step_by(BATCH) {
                    let job = Job::Batch { chunk: Arc::clone(&chunk), first, last: (first + BATCH).min(records) };
                    if !send(job) {
                        return;
                    }
                }
            }
            Ok(None) => break,
            Err(source) => {
                send(Job::Fail(LogError::Io { op: "reading", path: path.to_owned(), source }));
                return;
            }
        }
    }
    if let Some(stop) = framer.stop() {
        // The range was checked at open, so damage here means the file changed underneath.
        send(Job::Fail(LogError::Corrupt {
            path: path.to_owned(),
            offset: stop.offset,
            detail: stop.damage.describe(),
        }));
    }
}

/// A worker: decodes and digests its batches in the order it receives them, and drops the batches the
/// fold hands back.
fn decode<T>(
    jobs: Receiver<Job>,
    answers: SyncSender<Decoded<T>>,
    spent: Receiver<Vec<T>>,
    digest: &(dyn Fn(Event) -> T + Sync),
    path: &Path,
) {
    for job in jobs {
        let mut items = spent.try_recv().unwrap_or_default();
        items.clear();
        let answer = match job {
            Job::Fail(error) => Decoded { items, error: Some(error) },
            Job::Batch { chunk, first, last } => {
                items.reserve(last - first);
                let mut error = None;
                for payload in &chunk.payloads[first..last] {
                    match Event::from_json_recorded(&chunk.bytes[payload.clone()]) {
                        Ok(event) => items.push(digest(event)),
                        Err(source) => {
                            let offset = chunk.record_offset(payload);
                            error = Some(LogError::Undecodable { path: path.to_owned(), offset, source });
                            break;
                        }
                    }
                }
                Decoded { items, error }
            }
        };
        let last = answer.error.is_some();
        if answers.send(answer).is_err() || last {
            return;
        }
    }
}
