//! The on-disk framing of `events.log` and the chunked reader that checks it.
//!
//! ```text
//! file   := MAGIC record*
//! MAGIC  := "HOCTAPL1"                       (8 bytes: name and format version)
//! record := len:u32 LE  crc:u32 LE  payload  (payload = `len` bytes)
//! crc    := CRC-32 (IEEE, as computed by crc32fast) of the payload
//! ```
//!
//! The payload is the canonical JSON of one recorded event. A length of 0 or above [`MAX_RECORD`] is
//! corrupt: no event is empty, and a zero-filled block (what some file systems leave after a crash)
//! must not pass as a run of valid empty records.

use std::fs::File;
use std::io::{self, Read, Take};
use std::ops::Range;

/// The first 8 bytes of every log file. The last byte is the format version.
pub const MAGIC: &[u8; 8] = b"HOCTAPL1";
/// Bytes before a record's payload.
pub const RECORD_HEADER: usize = 8;
/// The largest payload a record may carry. Events are a few hundred bytes; anything near this is damage.
pub const MAX_RECORD: usize = 16 << 20;
/// How much one `read` asks for: large enough that system calls cost nothing next to decoding.
pub(crate) const CHUNK: usize = 16 << 20;

/// Appends one framed record to `out`; returns its CRC.
pub fn encode(out: &mut Vec<u8>, payload: &[u8]) -> u32 {
    let crc = crc32fast::hash(payload);
    out.extend_from_slice(&(payload.len() as u32).to_le_bytes());
    out.extend_from_slice(&crc.to_le_bytes());
    out.extend_from_slice(payload);
    crc
}

/// Why reading stopped before the end of the range.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Damage {
    /// The range ends inside a record.
    Incomplete,
    /// The length field is 0 or too large.
    BadLength,
    /// The payload does not match its checksum.
    Checksum,
}

impl Damage {
    pub fn describe(self) -> &'static str {
        match self {
            Damage::Incomplete => "the log ends inside this record",
            Damage::BadLength => "the record's length field is 0 or implausibly large",
            Damage::Checksum => "the record's payload does not match its checksum",
        }
    }
}

/// Where and why a scan stopped early.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Stop {
    /// File offset of the first record not read.
    pub offset: u64,
    pub damage: Damage,
}

/// A run of whole, checked records as read from the file.
pub(crate) struct Chunk {
    pub bytes: Vec<u8>,
    /// File offset of `bytes[0]`.
    pub base: u64,
    /// The payloads, as ranges of `bytes`, in log order. Never empty.
    pub payloads: Vec<Range<usize>>,
}

impl Chunk {
    /// File offset of the record whose payload is `payload`.
    pub fn record_offset(&self, payload: &Range<usize>) -> u64 {
        self.base + (payload.start - RECORD_HEADER) as u64
    }
}

/// Reads records from a byte range of a log file in large chunks and checks each one.
///
/// It stops at the first incomplete or damaged record and remembers where in [`Framer::stop`];
/// what to make of that (cut it, ignore it, or report corruption) is the caller's business.
pub(crate) struct Framer {
    src: Take<File>,
    /// Bytes per read (a parameter so that tests can make records straddle chunk boundaries).
    chunk: usize,
    /// Where the range ends; reaching the end of the file before it is damage, not a clean end.
    end: u64,
    /// File offset of `carry[0]`.
    pos: u64,
    /// The unread start of a record that straddled the previous chunk's end.
    carry: Vec<u8>,
    /// A buffer handed back by the caller, reused to avoid a fresh allocation per chunk.
    spare: Vec<u8>,
    done: bool,
    stop: Option<Stop>,
}

impl Framer {
    /// `file` must be positioned at `start`; reading ends at `end`.
    pub fn new(file: File, start: u64, end: u64) -> Framer {
        Framer::with_chunk(file, start, end, CHUNK)
    }

    fn with_chunk(file: File, start: u64, end: u64, chunk: usize) -> Framer {
        Framer {
            src: file.take(end.saturating_sub(start)),
            chunk,
            end,
            pos: start,
            carry: Vec::new(),
            spare: Vec::new(),
            done: false,
            stop: None,
        }
    }

    /// Set once the scan ended early; `None` when every byte of the range was a checked record.
    pub fn stop(&self) -> Option<Stop> {
        self.stop
    }

    /// Gives a chunk's buffer back for reuse.
    pub fn recycle(&mut self, mut bytes: Vec<u8>) {
        bytes.clear();
        self.spare = bytes;
    }

    /// The next run of checked records, or `None` at the end of the range or at the first damage.
    pub fn next_chunk(&mut self) -> io::Result<Option<Chunk>> {
        if self.done {
            return Ok(None);
        }
        let mut buf = std::mem::take(&mut self.spare);
        buf.clear();
        buf.extend_from_slice(&self.carry);
        self.carry.clear();
        let base = self.pos;
        let mut payloads = Vec::new();
        let mut at = 0;
        // Bytes the buffer must hold before the record at `at` can be judged.
        let mut want = self.chunk;
        let mut eof = false;
        loop {
            if !eof && buf.len() < want {
                let ask = want - buf.len();
                buf.reserve(ask);
                let got = (&mut self.src).take(ask as u64).read_to_end(&mut buf)?;
                eof = got < ask;
            }
            match check(&buf[at..]) {
                Ok(len) => {
                    payloads.push(at + RECORD_HEADER..at + RECORD_HEADER + len);
                    at += RECORD_HEADER + len;
                }
                Err(Damage::Incomplete) if at == buf.len() && eof => {
                    self.done = true;
                    let offset = base + at as u64;
                    if offset < self.end {
                        // The file is shorter than the range: it was cut after the range was checked.
                        self.stop = Some(Stop { offset, damage: Damage::Incomplete });
                    }
                    break;
                }
                Err(Damage::Incomplete) if !eof => {
                    if !payloads.is_empty() {
                        // Hand over what is whole; the partial record starts the next chunk.
                        break;
                    }
                    // A record larger than a chunk: read until it fits.
                    want = (at + RECORD_HEADER + needed(&buf[at..])).max(want);
                }
                Err(damage) => {
                    self.stop = Some(Stop { offset: base + at as u64, damage });
                    self.done = true;
                    break;
                }
            }
        }
        self.carry.extend_from_slice(&buf[at..]);
        buf.truncate(at);
        self.pos = base + at as u64;
        if payloads.is_empty() {
            self.spare = buf;
            return Ok(None);
        }
        Ok(Some(Chunk { bytes: buf, base, payloads }))
    }
}

/// The payload length of the record at the start of `buf`, once it is whole and its checksum holds.
fn check(buf: &[u8]) -> Result<usize, Damage> {
    let Some(header) = buf.get(..RECORD_HEADER) else {
        return Err(Damage::Incomplete);
    };
    let len = u32::from_le_bytes(header[..4].try_into().expect("4 bytes")) as usize;
    if len == 0 || len > MAX_RECORD {
        return Err(Damage::BadLength);
    }
    let crc = u32::from_le_bytes(header[4..].try_into().expect("4 bytes"));
    let Some(payload) = buf.get(RECORD_HEADER..RECORD_HEADER + len) else {
        return Err(Damage::Incomplete);
    };
    if crc32fast::hash(payload) != crc {
        return Err(Damage::Checksum);
    }
    Ok(len)
}

/// Payload bytes the (incomplete) record at the start of `buf` announces; 0 while its header is partial.
fn needed(buf: &[u8]) -> usize {
    buf.get(..4).map_or(0, |b| u32::from_le_bytes(b.try_into().expect("4 bytes")) as usize)
}

/// The offset of the first whole record at or after `from` (before `end`): a plausible length, a
/// matching checksum, a payload that opens a JSON object. Read in windows of two records' worth, so a
/// record is never split between two. `None` when there is none: the damage reaches the end of the
/// file, as an interrupted write leaves it.
pub(crate) fn find_record(file: &mut File, from: u64, end: u64) -> io::Result<Option<u64>> {
    use std::io::{Seek, SeekFrom};
    const WINDOW: u64 = 2 * (MAX_RECORD + RECORD_HEADER) as u64;
    let mut base = from;
    let mut buf = Vec::new();
    while base + RECORD_HEADER as u64 <= end {
        let want = (end - base).min(WINDOW);
        buf.resize(usize::try_from(want).expect("a window fits in memory"), 0);
        file.seek(SeekFrom::Start(base))?;
        file.read_exact(&mut buf)?;
        let last_window = base + want == end;
        // A record that may run past this window is decided in the next one, which starts there.
        let mut next = (buf.len() - RECORD_HEADER + 1) as u64;
        for at in 0..=buf.len() - RECORD_HEADER {
            let len = u32::from_le_bytes(buf[at..at + 4].try_into().expect("4 bytes")) as usize;
            if !(1..=MAX_RECORD).contains(&len) {
                continue;
            }
            let payload = at + RECORD_HEADER..at + RECORD_HEADER + len;
            if payload.end > buf.len() {
                if last_window {
                    continue; // runs past the end of the file: not whole
                }
                next = at as u64; // > 0: a window holds any record that starts at its beginning
                break;
            }
            if buf[payload.start] == b'{' && crc32fast::hash(&buf[payload.clone()]).to_le_bytes() == buf[at + 4..at + 8]
            {
                return Ok(Some(base + at as u64));
            }
        }
        if last_window {
            return Ok(None);
        }
        base += next;
    }
    Ok(None)
}

/// Whole records from `from` (the start of one) up to `end` or the next damage.
pub(crate) fn count_records(path: &std::path::Path, from: u64, end: u64) -> io::Result<u64> {
    use std::io::{Seek, SeekFrom};
    let mut file = File::open(path)?;
    file.seek(SeekFrom::Start(from))?;
    let mut framer = Framer::new(file, from, end);
    let mut records = 0;
    while let Some(chunk) = framer.next_chunk()? {
        records += chunk.payloads.len() as u64;
        framer.recycle(chunk.bytes);
    }
    Ok(records)
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::{Seek, SeekFrom, Write};

    /// Every payload and the stop, read with a given chunk size.
    fn read_all(file: &File, end: u64, chunk: usize) -> (Vec<Vec<u8>>, Option<Stop>) {
        let mut file = file.try_clone().unwrap();
        file.seek(SeekFrom::Start(0)).unwrap();
        let mut framer = Framer::with_chunk(file, 0, end, chunk);
        let mut out = Vec::new();
        while let Some(c) = framer.next_chunk().unwrap() {
            out.extend(c.payloads.iter().map(|p| c.bytes[p.clone()].to_vec()));
            framer.recycle(c.bytes);
        }
        (out, framer.stop())
    }

    #[test]
    fn records_straddling_chunks_read_the_same_at_any_chunk_size() {
        let payloads: Vec<Vec<u8>> = (1..200).map(|n: usize| vec![(n % 251) as u8; (n * 37) % 300 + 1]).collect();
        let mut bytes = Vec::new();
        for p in &payloads {
            encode(&mut bytes, p);
        }
        let whole = bytes.len() as u64;
        let damaged_at = {
            let mut at = 0;
            for p in &payloads[..150] {
                at += RECORD_HEADER + p.len();
            }
            at
        };
        let mut file = tempfile::tempfile().unwrap();
        file.write_all(&bytes).unwrap();

        for chunk in [1, 7, 8, 9, 64, 299, 300, 4096, CHUNK] {
            assert_eq!(read_all(&file, whole, chunk), (payloads.clone(), None), "chunk {chunk}");
            // A range longer than the file: the missing bytes are an incomplete record.
            let stop = Stop { offset: whole, damage: Damage::Incomplete };
            assert_eq!(read_all(&file, whole + 10, chunk), (payloads.clone(), Some(stop)), "chunk {chunk}");
        }

        bytes[damaged_at + RECORD_HEADER] ^= 1;
        file.seek(SeekFrom::Start(0)).unwrap();
        file.write_all(&bytes).unwrap();
        for chunk in [1, 7, 64, 300, 4096, CHUNK] {
            let stop = Stop { offset: damaged_at as u64, damage: Damage::Checksum };
            assert_eq!(read_all(&file, whole, chunk), (payloads[..150].to_vec(), Some(stop)), "chunk {chunk}");
        }
    }
}
