//! `spate-loadgen`: an open-loop Kafka load generator with HDR latency histograms.
//!
//! A black box to the broker: it depends only on `spate-model` and `spate-protocol` (plus
//! glommio for its I/O), never on `broker` or `storage`, so it measures Kafka, Redpanda and
//! Spate alike.
//!
//! What runs today: producers sharing a fixed rate over one topic's partitions, each
//! sending to the partitions' leaders (a connection per leader; the layout refreshed on
//! leader errors), unkeyed (round-robin) or keyed (random, round-robin or zipf keys, placed
//! by Kafka's default partitioner), with acks 0/1/all and any codec, idempotent or not;
//! consumers (the partitions split among them) reading the run back for end-to-end latency;
//! publish latency measured from each message's intended send time (no coordinated
//! omission) beside the service time; a progress line and a series entry every second; a
//! hard deadline that ends a run against a broker that stops answering, with the partial
//! results; workloads from flags or a TOML file; a JSON result file, `.hgrm` files, SVG
//! charts, an HTML report and a summary table; the capacity mode, stepping the rate up
//! until a latency objective breaks; and several executors (`--cores`), the producers and
//! consumers spread over them.

pub mod capacity;
pub mod client;
pub mod consume;
pub mod keys;
pub mod plot;
pub mod probe;
pub mod report;
pub mod run;
pub mod workload;

pub use run::{run, RunConfig, RunError, RunResult};
