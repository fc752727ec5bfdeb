//! `hoctap ingest`: validate NDJSON CloudEvents batch by batch, append the valid ones, dead-letter the rest.

use crate::progress;
use crate::tracker::Tracker;
use anyhow::{Context, Result};
use hoctap_domain::{Admission, Batch, Event, EventData, Refusal, Warning};
use std::io::{BufRead, BufReader, Read};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Events validated and appended together: one fsync per chunk keeps ingest fast and every
/// acknowledged chunk durable.
const CHUNK: usize = 16_384;

/// What one input brought.
#[derive(Debug, Default, Clone, Copy, PartialEq, Eq)]
pub struct Summary {
    pub lines: u64,
    pub accepted: u64,
    pub duplicates: u64,
    pub refused: u64,
    /// Accepted events that will not count as they stand (see `hoctap_domain::warning`).
    pub warned: u64,
}

impl Summary {
    pub fn add(&mut self, other: &Summary) {
        self.lines += other.lines;
        self.accepted += other.accepted;
        self.duplicates += other.duplicates;
        self.refused += other.refused;
        self.warned += other.warned;
    }
}

/// One input: a file (read twice: once for the units it establishes, once to ingest) or standard input
/// (held in memory so it can be read twice).
pub enum Input {
    File(PathBuf),
    Bytes(Vec<u8>),
}

impl Input {
    fn open(&self) -> Result<Box<dyn BufRead + '_>> {
        Ok(match self {
            Input::File(path) => Box::new(BufReader::with_capacity(
                1 << 20,
                std::fs::File::open(path).with_context(|| format!("opening {}", path.display()))?,
            )),
            Input::Bytes(bytes) => Box::new(&bytes[..]),
        })
    }

    fn len(&self) -> u64 {
        match self {
            Input::File(path) => std::fs::metadata(path).map(|m| m.len()).unwrap_or(0),
            Input::Bytes(bytes) => bytes.len() as u64,
        }
    }
}

pub fn run(data_dir: &Path, files: &[PathBuf]) -> Result<ExitCode> {
    let mut tracker = Tracker::open(data_dir)?;
    let mut total = Summary::default();
    for file in files {
        let (input, name) = if file.as_os_str() == "-" {
            let mut bytes = Vec::new();
            std::io::stdin().lock().read_to_end(&mut bytes).context("reading standard input")?;
            (Input::Bytes(bytes), "standard input".to_owned())
        } else {
            (Input::File(file.clone()), file.display().to_string())
        };
        let s = ingest_with(
            &mut tracker,
            &input,
            &mut |line, r| eprintln!("refused (line {line}): {r}"),
            &mut |line, w| eprintln!("warning (line {line}): {w}"),
        )
        .with_context(|| format!("ingesting {name}"))?;
        println!(
            "{name}: {} lines, {} accepted, {} already known, {} refused; {} accepted with warnings",
            s.lines, s.accepted, s.duplicates, s.refused, s.warned
        );
        total.add(&s);
    }
    if total.warned > 0 {
        println!("{} accepted events will not count as they stand: see the warnings above", total.warned);
    }
    tracker.save_checkpoint();
    if total.refused > 0 {
        println!(
            "{} refused events were kept with their reasons in {}",
            total.refused,
            data_dir.join("dead-letter.ndjson").display()
        );
        return Ok(ExitCode::from(1));
    }
    Ok(ExitCode::SUCCESS)
}

/// Ingests one input as one batch. `on_refusal` hears each refused line (1-based line number).
pub fn ingest(tracker: &mut Tracker, input: &Input, on_refusal: &mut dyn FnMut(u64, &Refusal)) -> Result<Summary> {
    ingest_with(tracker, input, on_refusal, &mut |_, _| {})
}

/// Which clock stamps `recordedtime`.
#[derive(Clone, Copy, Debug)]
enum Clock {
    /// The system's, read at each append; a progress bar shows the work.
    System,
    /// A simulated instant (UTC microseconds) standing for the system clock, as the demo records a
    /// history as it happened; no progress bar (the caller shows its own).
    Simulated(i64),
}

/// [`ingest`] recorded as if the system clock read `now` (UTC microseconds): the events are stamped
/// from `now` on (just after the log's last record when that is later), and admission judges an
/// approval's known-at against `now`.
pub fn ingest_recorded_at(
    tracker: &mut Tracker,
    input: &Input,
    now: i64,
    on_refusal: &mut dyn FnMut(u64, &Refusal),
) -> Result<Summary> {
    let mut hear = Hear { refusal: on_refusal, warning: &mut |_, _| {}, duplicate: &mut |_| {} };
    ingest_on(tracker, input, Clock::Simulated(now), true, &mut hear)
}

/// [`ingest`], where `on_warning` also hears, once the whole input is in, each warning about an
/// accepted line (so that a line placing a subject, or naming the event a retraction names, counts
/// wherever it stands in the input).
pub fn ingest_with(
    tracker: &mut Tracker,
    input: &Input,
    on_refusal: &mut dyn FnMut(u64, &Refusal),
    on_warning: &mut dyn FnMut(u64, &Warning),
) -> Result<Summary> {
    let mut hear = Hear { refusal: on_refusal, warning: on_warning, duplicate: &mut |_| {} };
    ingest_on(tracker, input, Clock::System, true, &mut hear)
}

/// What a caller hears about each line (1-based line number) of an input.
pub struct Hear<'a> {
    pub refusal: &'a mut dyn FnMut(u64, &Refusal),
    /// Once the whole input is in, each warning about an accepted line.
    pub warning: &'a mut dyn FnMut(u64, &Warning),
    /// A line that is an event already recorded (or earlier in the same input).
    pub duplicate: &'a mut dyn FnMut(u64),
}

/// [`ingest_with`] that also hears the duplicates; with `record` false it judges every line exactly
/// the same way but records nothing (no event, no dead letter): `hoctap import --dry-run`.
pub fn ingest_lines(tracker: &mut Tracker, input: &Input, record: bool, hear: &mut Hear) -> Result<Summary> {
    ingest_on(tracker, input, Clock::System, record, hear)
}

fn ingest_on(tracker: &mut Tracker, input: &Input, clock: Clock, record: bool, hear: &mut Hear) -> Result<Summary> {
    // First pass: the units this batch establishes, wherever they stand in it.
    let mut establishments = Vec::new();
    for line in input.open()?.split(b'\n') {
        let line = line.context("reading")?;
        if contains(&line, b"admin_unit.established")
            && let Ok(event) = Event::from_json(&line)
            && let EventData::AdminUnitEstablished(_) = event.data
        {
            establishments.push(event);
        }
    }
    // Every stamp of this batch is at or after this instant: an approval must have frozen an earlier one.
    let mut batch = Batch::recording_at(match clock {
        Clock::System => hoctap_api::now_micros(),
        Clock::Simulated(now) => now,
    });
    batch.add_units(&tracker.engine, &establishments);
    drop(establishments);

    let bar = match clock {
        Clock::System => progress::bytes(input.len(), "ingest"),
        Clock::Simulated(_) => indicatif::ProgressBar::hidden(),
    };
    let mut summary = Summary::default();
    let mut accepted: Vec<Event> = Vec::with_capacity(CHUNK);
    let mut refused: Vec<(Vec<u8>, Refusal)> = Vec::new();
    let mut warned: Vec<(u64, Event)> = Vec::new();
    let flush =
        |tracker: &mut Tracker, accepted: &mut Vec<Event>, refused: &mut Vec<(Vec<u8>, Refusal)>| -> Result<()> {
            if !record {
                // The batch remembers the ids and units admitted so far: later lines are judged alike.
                accepted.clear();
                refused.clear();
                return Ok(());
            }
            match clock {
                Clock::System => tracker.log.append(accepted)?,
                Clock::Simulated(now) => tracker.log.append_at(accepted, now)?,
            }
            for event in accepted.iter() {
                tracker.engine.apply(event);
            }
            accepted.clear();
            let pairs: Vec<(&[u8], &Refusal)> = refused.iter().map(|(raw, r)| (raw.as_slice(), r)).collect();
            tracker.log.dead_letters(&pairs)?;
            refused.clear();
            Ok(())
        };
    let mut read = 0u64;
    for line in input.open()?.split(b'\n') {
        let line = line.context("reading")?;
        read += line.len() as u64 + 1;
        summary.lines += 1;
        if line.iter().all(u8::is_ascii_whitespace) {
            continue;
        }
        let verdict =
            Event::from_json(&line).and_then(|event| tracker.engine.admit(&mut batch, &event).map(|a| (a, event)));
        match verdict {
            Ok((Admission::New, event)) => {
                summary.accepted += 1;
                // Judged again once the whole file is in: a later line may place the subject or be
                // the event a retraction names.
                if !tracker.engine.warnings(&batch, &event).is_empty() {
                    warned.push((summary.lines, event.clone()));
                }
                accepted.push(event);
            }
            Ok((Admission::Duplicate, _)) => {
                summary.duplicates += 1;
                (hear.duplicate)(summary.lines);
            }
            Err(refusal) => {
                summary.refused += 1;
                (hear.refusal)(summary.lines, &refusal);
                refused.push((redact(&line), refusal));
            }
        }
        if accepted.len() >= CHUNK {
            flush(tracker, &mut accepted, &mut refused)?;
            bar.set_position(read);
        }
    }
    flush(tracker, &mut accepted, &mut refused)?;
    bar.finish_and_clear();
    for (line, event) in &warned {
        let warnings = tracker.engine.warnings(&batch, event);
        summary.warned += u64::from(!warnings.is_empty());
        for w in &warnings {
            (hear.warning)(*line, w);
        }
    }
    Ok(summary)
}

/// A refused line is kept for the source to correct, but a raw citizen-ID never reaches the disk,
/// whatever the line was refused for (masked in every key and string, escaped or not; ids kept).
fn redact(line: &[u8]) -> Vec<u8> {
    hoctap_domain::validate::mask_citizen_ids_in_json(line).into_bytes()
}

fn contains(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}
