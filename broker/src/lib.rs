//! The Spate broker: the `spate` binary, its shards (one glommio executor per core), the
//! network front end, one handler file per Kafka API, the partition manager, the metadata
//! controller, the group and transaction coordinators, metrics and the admin HTTP listener,
//! and the operator CLI subcommands.
//!
//! It may depend on every library crate (`model`, `protocol`, `storage`, `replication`) but on
//! no tool crate (`loadgen`, `bench`, `tests`). glommio may be named only in `src/runtime/`.
//!
//! What runs today: one shard serving ApiVersions, Metadata (auto-create), Produce (acks 0, 1,
//! all with group commit), Fetch (long poll), ListOffsets and CreateTopics over the durable
//! logs of `spate-storage`, with graceful shutdown. The rest of the single-node broker issue
//! (more shards, the admin APIs, topic configs, TOML config) lands next.

pub mod api;
pub mod config;
pub mod maintenance;
pub mod runtime;
pub mod server;
pub mod topic_config;
pub mod topics;
