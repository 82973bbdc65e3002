//! `spate-bench`: named benchmark scenarios, the physical-limit probes (raw O_DIRECT
//! bandwidth, fdatasync latency, CRC32C speed) and reports that state every figure as a ratio
//! to its limit measured on the same machine in the same run.
//!
//! Scenarios against brokers talk only the Kafka protocol (through the loadgen library); the
//! `storage` scenario drives `spate-storage`'s public API directly, on the
//! same disk seam the broker uses. It must not depend on `broker` internals.

pub mod limits;
pub mod report;
pub mod scenarios;
pub mod storage;
