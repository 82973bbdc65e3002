//! The Spate broker: the `spate` binary, its shards (one glommio executor per core), the
//! network front end, one handler file per Kafka API, the partition manager, the metadata
//! controller, the group and transaction coordinators, metrics and the admin HTTP listener,
//! and the operator CLI subcommands.
//!
//! It may depend on every library crate (`model`, `protocol`, `storage`, `replication`) but on
//! no tool crate (`loadgen`, `bench`, `tests`). glommio may be named only in `src/runtime/`.
//!
//! What runs today: one shard per core, each owning some partitions' logs and serving the
//! data and admin APIs (see `api`) on the connections the kernel gives it; requests that
//! touch another shard's partitions go there through the mesh (`runtime::mesh`), and topic
//! changes go through shard 0 (`controller`).

pub mod admin;
pub mod api;
pub mod cli;
pub mod config;
pub mod controller;
pub mod groups;
pub mod maintenance;
pub mod metadata_log;
pub mod metrics;
pub mod producers;
pub mod runtime;
pub mod server;
#[cfg(test)]
mod test_support;
pub mod topic_config;
pub mod topics;
pub mod transactions;

/// Milliseconds since the Unix epoch, by the system clock (record timestamps, commit times).
pub(crate) fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
