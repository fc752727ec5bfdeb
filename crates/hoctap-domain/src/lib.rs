//! The pure core of hoctap: the events, their validation, the bitemporal fold and the counting rules.
//!
//! Nothing here does I/O. The embedded replay, the PostgreSQL projector and the tests all fold events
//! with [`Engine::apply`] and ask questions with [`Engine::review`].

pub mod codes;
pub mod event;
pub mod refusal;
pub mod time;
