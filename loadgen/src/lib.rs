//! `spate-loadgen`: an open-loop Kafka load generator with HDR latency histograms.
//!
//! A black box to the broker: it depends only on `spate-model` and `spate-protocol` (plus
//! glommio for its I/O), never on `broker` or `storage`, so it measures Kafka, Redpanda and
//! Spate alike.
//!
//! What runs today: one producer on one connection, at a fixed rate, to one topic's
//! partitions (round-robin), with acks 0/1/all; publish latency measured from each message's
//! intended send time (no coordinated omission) beside the service time; a JSON result file
//! and a summary table. Consumers and end-to-end latency, several workers and connections,
//! compression, keys, workload files, interval series, `.hgrm`/SVG/HTML output and the
//! capacity mode come next (the loadgen issue lists them).

pub mod client;
pub mod consume;
pub mod report;
pub mod run;

pub use run::{run, RunConfig, RunError, RunResult};
