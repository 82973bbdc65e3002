//! `spate-loadgen`: an open-loop Kafka load generator with HDR latency histograms, live
//! progress and a capacity-planning mode.
//!
//! A black box to the broker: it depends only on `spate-model` and `spate-protocol` (plus
//! glommio for its workers), never on `broker` or `storage`, so it measures Kafka, Redpanda and
//! Spate alike.
//!
//! The generator lands with the loadgen issue; this crate is its reserved place.
