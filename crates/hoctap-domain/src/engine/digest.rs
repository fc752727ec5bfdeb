//! What folding an event needs that does not depend on the engine, computed ahead of the fold: a replay
//! computes it on its decoding threads, so that the fold, the one serial step, does less.

use crate::event::Event;

/// Values of one event computed ahead of [`super::Engine::apply_digested`].
#[derive(Clone, Copy, Debug)]
pub struct Digest {
    pub(super) fingerprint: u64,
}

impl Digest {
    pub fn of(event: &Event) -> Digest {
        Digest { fingerprint: event.fingerprint() }
    }
}
