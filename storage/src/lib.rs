//! One partition's durable log: segments of record batches exactly as received (stamped with
//! base offset and leader epoch), a sparse offset index, group-commit durability, reads by
//! offset, and crash recovery — plus the disk seam it runs on: glommio's direct-I/O files in
//! production and an in-memory disk that simulates power loss for tests.
//!
//! Depends on `spate-model` only. It knows nothing of the network, the Kafka wire protocol,
//! replication or shards: the broker hands it validated batches and asks for byte ranges back.
//! glommio may be named only in `src/disk/glommio.rs`.

pub mod budget;
pub mod disk;
pub mod epochs;
pub mod join;
pub mod log;
mod notify;
pub mod segment;
pub mod stats;

pub use log::{Appended, FlushPolicy, Log, LogConfig, LogError, ReadBatches, Retention};
