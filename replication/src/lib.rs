//! The replication core: a sans-IO state machine per partition in the KIP-595 style (Raft where
//! the index is the Kafka offset and the term is the batch's partition leader epoch), driven by
//! `step`, `tick`, `propose` and `on_persisted`, returning what to persist, send and commit.
//!
//! Depends on `spate-model` only. It never imports `storage` (it sees the log through its own
//! small trait), never touches glommio, the wall clock or a global RNG: time and randomness come
//! in as inputs, so a seeded simulation replays any failure exactly.
//!
//! The state machine lands with the replication issue; this crate is its reserved place.
