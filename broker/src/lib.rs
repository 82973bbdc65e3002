//! The Spate broker: the `spate` binary, its shards (one glommio executor per core), the
//! network and TLS front end, one handler file per Kafka API, the partition manager, the
//! metadata controller, the group and transaction coordinators, metrics and the admin HTTP
//! listener, and the operator CLI subcommands.
//!
//! It may depend on every library crate (`model`, `protocol`, `storage`, `replication`) but on
//! no tool crate (`loadgen`, `bench`, `tests`). glommio may be named only in `src/runtime/`.
//!
//! The broker lands with the single-node broker issue; this crate is its reserved place.
