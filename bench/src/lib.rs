//! `spate-bench`: named benchmark scenarios against any Kafka-compatible address, the
//! physical-limit probes (raw O_DIRECT bandwidth, fdatasync latency, loopback TCP, memory copy)
//! and reports that state every figure as a ratio to its limit and to any peer broker.
//!
//! It drives load through the loadgen library and talks to brokers only over the Kafka
//! protocol; it must not depend on `broker` or `storage` internals.
//!
//! The scenarios land with the bench issue; this crate is its reserved place.
