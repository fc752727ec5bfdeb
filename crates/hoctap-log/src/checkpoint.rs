//! The checkpoint file beside the log: a caller's state (the engine's, as bytes) as of a [`Position`],
//! so that a later process folds only the records after it.
//!
//! ```text
//! file     := MAGIC version:u32 position payload_len:u64 crc:u32 payload
//! MAGIC    := "HOCTAPC1"                          (8 bytes: name and version of this layout)
//! version  := the version of the payload's encoding, the caller's (e.g. the engine's)
//! position := records:u64 offset:u64 last_len:u32 last_crc:u32
//! crc      := CRC-32 of every byte before it and of the payload
//! ```
//!
//! All integers little-endian. A checkpoint is disposable: the log stays the only source of truth, so
//! a checkpoint that is missing, of another layout or version, damaged, or of another log is reported
//! as [`Unusable`] and the caller replays the log instead. It is written to a temporary file, synced,
//! then renamed over the old one, so a reader sees the old checkpoint or the new one, whole.

use crate::{LogError, Position, io_err, sync_dir};
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::Path;

/// The checkpoint inside a log directory.
pub const CHECKPOINT_FILE: &str = "checkpoint.bin";
/// Where a checkpoint is written before it is renamed into place.
pub const CHECKPOINT_TEMP_FILE: &str = "checkpoint.bin.tmp";
/// Held while a checkpoint is written, so that two processes never write the temporary file at once.
pub const CHECKPOINT_LOCK_FILE: &str = "checkpoint.lock";

const MAGIC: &[u8; 8] = b"HOCTAPC1";
/// Bytes before the payload.
const HEADER: usize = 8 + 4 + 24 + 8 + 4;

/// A checkpoint as read: the position of the log it stands for and the caller's bytes.
#[derive(Debug)]
pub struct Checkpoint {
    pub position: Position,
    /// The whole file: the payload is kept where it was read rather than moved (it may be a gigabyte).
    file: Vec<u8>,
}

impl Checkpoint {
    /// The caller's bytes.
    pub fn payload(&self) -> &[u8] {
        &self.file[HEADER..]
    }
}

/// Why the checkpoint cannot be used. None of these is an error: the caller replays the log instead.
#[derive(Debug, thiserror::Error)]
pub enum Unusable {
    #[error("there is none")]
    Missing,
    #[error("it is not a checkpoint of this layout")]
    Layout,
    #[error("it holds state of version {found}; this build reads version {expected}")]
    Version { found: u32, expected: u32 },
    #[error("it is damaged: {0}")]
    Damaged(&'static str),
    #[error("it cannot be read: {0}")]
    Io(#[source] io::Error),
}

/// Reads the checkpoint in `dir`, which must hold state of encoding `version`.
pub fn read(dir: &Path, version: u32) -> Result<Checkpoint, Unusable> {
    let bytes = match fs::read(dir.join(CHECKPOINT_FILE)) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == io::ErrorKind::NotFound => return Err(Unusable::Missing),
        Err(e) => return Err(Unusable::Io(e)),
    };
    if bytes.len() < MAGIC.len() || &bytes[..MAGIC.len()] != MAGIC {
        return Err(Unusable::Layout);
    }
    if bytes.len() < HEADER {
        return Err(Unusable::Damaged("shorter than its header"));
    }
    let mut fields = Fields(&bytes[MAGIC.len()..HEADER]);
    let found = fields.u32();
    let position =
        Position { records: fields.u64(), offset: fields.u64(), last_len: fields.u32(), last_crc: fields.u32() };
    let payload_len = fields.u64();
    let crc = fields.u32();
    if payload_len != (bytes.len() - HEADER) as u64 {
        return Err(Unusable::Damaged("its length is not the one it states"));
    }
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&bytes[..HEADER - 4]);
    hasher.update(&bytes[HEADER..]);
    if hasher.finalize() != crc {
        return Err(Unusable::Damaged("its checksum does not match"));
    }
    if found != version {
        return Err(Unusable::Version { found, expected: version });
    }
    Ok(Checkpoint { position, file: bytes })
}

/// Writes `payload` (state of encoding `version` as of `position`) as the checkpoint in `dir`,
/// atomically and durably. Returns the bytes written, or `None` when another process is writing one
/// at this moment (its checkpoint will do).
pub fn write(dir: &Path, position: &Position, version: u32, payload: &[u8]) -> Result<Option<u64>, LogError> {
    let Some(_lock) = crate::try_lock(&dir.join(CHECKPOINT_LOCK_FILE))? else { return Ok(None) };
    let mut header = Vec::with_capacity(HEADER);
    header.extend_from_slice(MAGIC);
    header.extend_from_slice(&version.to_le_bytes());
    header.extend_from_slice(&position.records.to_le_bytes());
    header.extend_from_slice(&position.offset.to_le_bytes());
    header.extend_from_slice(&position.last_len.to_le_bytes());
    header.extend_from_slice(&position.last_crc.to_le_bytes());
    header.extend_from_slice(&(payload.len() as u64).to_le_bytes());
    let mut hasher = crc32fast::Hasher::new();
    hasher.update(&header);
    hasher.update(payload);
    header.extend_from_slice(&hasher.finalize().to_le_bytes());
    debug_assert_eq!(header.len(), HEADER);

    let temp = dir.join(CHECKPOINT_TEMP_FILE);
    // A temporary file left by a crash is simply overwritten: only the lock holder writes it.
    let mut file = File::create(&temp).map_err(io_err("creating", &temp))?;
    file.write_all(&header).and_then(|()| file.write_all(payload)).map_err(io_err("writing", &temp))?;
    // Synced before the rename: otherwise a crash could leave the new name on a file without its data.
    file.sync_all().map_err(io_err("syncing", &temp))?;
    let path = dir.join(CHECKPOINT_FILE);
    fs::rename(&temp, &path).map_err(io_err("renaming into place", &path))?;
    sync_dir(dir)?;
    Ok(Some((HEADER + payload.len()) as u64))
}

/// Little-endian fields read in order from a slice known to be long enough.
struct Fields<'a>(&'a [u8]);

impl Fields<'_> {
    fn take<const N: usize>(&mut self) -> [u8; N] {
        let (head, rest) = self.0.split_at(N);
        self.0 = rest;
        head.try_into().expect("N bytes")
    }

    fn u32(&mut self) -> u32 {
        u32::from_le_bytes(self.take())
    }

    fn u64(&mut self) -> u64 {
        u64::from_le_bytes(self.take())
    }
}
