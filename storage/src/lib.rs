//! One partition's durable log: segments of record batches exactly as received, sparse offset
//! and time indexes, the leader-epoch checkpoint, crash recovery, retention and compaction, and
//! the disk seam (a direct-I/O implementation on glommio and an in-memory one for tests).
//!
//! Depends on `spate-model` only. It knows nothing of the network, the Kafka wire protocol,
//! replication or shards: the broker hands it validated batches and asks for byte ranges back.
//! glommio may be named only in `src/disk/glommio.rs`.
//!
//! The log itself lands with the storage issue; this crate is its reserved place.
