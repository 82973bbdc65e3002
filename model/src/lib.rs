//! Spate's vocabulary: identifiers and offsets as newtypes, validated topic names, and the
//! Kafka record-batch v2 format — a zero-copy header view, validation (magic, lengths, CRC32C,
//! record count, codec, timestamps), stamping of base offset and leader epoch, a builder, a
//! lazy bounded record iterator and the four compression codecs with a decompression cap.
//!
//! This crate is the bottom layer: it depends on no other Spate crate and never touches
//! glommio, sockets, files, the wall clock or a global RNG. Everything here is a pure function
//! of its inputs, so every other crate (and every fuzz target) can use it freely.

pub mod batch;
pub mod compression;
pub mod ids;
pub mod partitioner;
pub mod topic;
pub mod varint;

pub use batch::{
    BatchBuilder, BatchError, BatchHeader, BuilderRecord, ControlType, Record, RecordBatch,
    RecordError, RecordHeader, Records, TimestampType,
};
pub use compression::{Compression, CompressionError};
pub use ids::{
    LeaderEpoch, NodeId, Offset, PartitionId, ProducerEpoch, ProducerId, Sequence, ShardId,
};
pub use topic::{TopicName, TopicNameError};
