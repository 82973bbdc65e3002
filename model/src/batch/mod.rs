//! The Kafka record-batch v2 format (magic 2), the only one Kafka 4 accepts.
//!
//! ```text
//! offset  size  field                   covered by CRC
//!      0     8  base_offset             no   (stamped by the leader)
//!      8     4  batch_length            no   (bytes after this field)
//!     12     4  partition_leader_epoch  no   (stamped by the leader)
//!     16     1  magic = 2               no
//!     17     4  crc (CRC32C of 21..end) no
//!     21     2  attributes              yes  (codec 0-2, timestamp type 3, txn 4, control 5)
//!     23     4  last_offset_delta       yes
//!     27     8  base_timestamp          yes
//!     35     8  max_timestamp           yes
//!     43     8  producer_id             yes
//!     51     2  producer_epoch          yes
//!     53     4  base_sequence           yes
//!     57     4  records_count           yes
//!     61     …  records (compressed as a whole when the codec is not none)
//! ```
//!
//! Because the leader's stamps (base offset, leader epoch) sit outside the CRC, a broker can
//! accept a producer's bytes, stamp them while copying them into its write buffer and store
//! them without recomputing anything.

mod builder;
mod records;

pub use builder::{BatchBuilder, BuilderRecord};
pub use records::{ControlType, Record, RecordError, RecordHeader, Records};

use crate::compression::{Compression, CompressionError};
use crate::ids::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, Sequence};
use zerocopy::byteorder::big_endian::{I16, I32, I64, U32};
use zerocopy::{FromBytes, Immutable, IntoBytes, KnownLayout, Unaligned};

/// The size of the fixed batch header.
pub const BATCH_HEADER_BYTES: usize = 61;
/// Bytes before `batch_length` ends: the part of the header `batch_length` does not count.
pub const LOG_OVERHEAD_BYTES: usize = 12;
/// Where the CRC-covered region starts (the attributes field).
pub const CRC_START: usize = 21;
/// The magic byte of the v2 format.
pub const MAGIC_V2: i8 = 2;
/// The smallest possible encoded record: length, attributes, timestamp delta, offset delta,
/// key length, value length and header count, one byte each.
pub const MIN_RECORD_BYTES: usize = 7;

const ATTR_TIMESTAMP_TYPE: i16 = 1 << 3;
const ATTR_TRANSACTIONAL: i16 = 1 << 4;
const ATTR_CONTROL: i16 = 1 << 5;
const ATTR_DELETE_HORIZON: i16 = 1 << 6;

/// The 61-byte batch header, read in place from the wire bytes.
#[derive(Debug, FromBytes, IntoBytes, KnownLayout, Immutable, Unaligned)]
#[repr(C)]
pub struct BatchHeader {
    base_offset: I64,
    batch_length: I32,
    partition_leader_epoch: I32,
    magic: i8,
    crc: U32,
    attributes: I16,
    last_offset_delta: I32,
    base_timestamp: I64,
    max_timestamp: I64,
    producer_id: I64,
    producer_epoch: I16,
    base_sequence: I32,
    records_count: I32,
}

const _: () = assert!(std::mem::size_of::<BatchHeader>() == BATCH_HEADER_BYTES);
const _: () = assert!(BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES == 49);

/// Whether record timestamps were set by the producer or by the broker on append.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum TimestampType {
    /// The producer's timestamps (attributes bit 3 clear).
    CreateTime,
    /// The broker's append time (attributes bit 3 set); `max_timestamp` holds it.
    LogAppendTime,
}

impl BatchHeader {
    /// Views the first 61 bytes of `bytes` as a header, or `None` if there are fewer.
    pub fn view(bytes: &[u8]) -> Option<&BatchHeader> {
        BatchHeader::ref_from_prefix(bytes)
            .ok()
            .map(|(header, _)| header)
    }

    /// Offset of the batch's first record (stamped by the leader).
    pub fn base_offset(&self) -> Offset {
        Offset(self.base_offset.get())
    }
    /// Bytes after the `batch_length` field: the whole batch is this plus 12.
    pub fn batch_length(&self) -> i32 {
        self.batch_length.get()
    }
    /// The leader epoch the batch was appended in (stamped by the leader).
    pub fn partition_leader_epoch(&self) -> LeaderEpoch {
        LeaderEpoch(self.partition_leader_epoch.get())
    }
    /// The format version; 2 for every batch this crate accepts.
    pub fn magic(&self) -> i8 {
        self.magic
    }
    /// The stored CRC32C of bytes 21 to the end.
    pub fn crc(&self) -> u32 {
        self.crc.get()
    }
    /// The raw attributes field.
    pub fn attributes(&self) -> i16 {
        self.attributes.get()
    }
    /// The codec named by the attributes.
    pub fn compression(&self) -> Result<Compression, CompressionError> {
        Compression::from_attributes(self.attributes())
    }
    /// Who set the timestamps.
    pub fn timestamp_type(&self) -> TimestampType {
        if self.attributes() & ATTR_TIMESTAMP_TYPE == 0 {
            TimestampType::CreateTime
        } else {
            TimestampType::LogAppendTime
        }
    }
    /// Whether the batch belongs to a transaction.
    pub fn is_transactional(&self) -> bool {
        self.attributes() & ATTR_TRANSACTIONAL != 0
    }
    /// Whether the batch holds control records (transaction markers) rather than data.
    pub fn is_control(&self) -> bool {
        self.attributes() & ATTR_CONTROL != 0
    }
    /// Whether compaction set the delete horizon (then `base_timestamp` holds it).
    pub fn has_delete_horizon(&self) -> bool {
        self.attributes() & ATTR_DELETE_HORIZON != 0
    }
    /// The last record's offset minus the base offset.
    pub fn last_offset_delta(&self) -> i32 {
        self.last_offset_delta.get()
    }
    /// The first record's timestamp (record timestamps are deltas from it).
    pub fn base_timestamp(&self) -> i64 {
        self.base_timestamp.get()
    }
    /// The largest record timestamp (or the append time under `LogAppendTime`).
    pub fn max_timestamp(&self) -> i64 {
        self.max_timestamp.get()
    }
    /// The producer id, or -1.
    pub fn producer_id(&self) -> ProducerId {
        ProducerId(self.producer_id.get())
    }
    /// The producer epoch, or -1.
    pub fn producer_epoch(&self) -> ProducerEpoch {
        ProducerEpoch(self.producer_epoch.get())
    }
    /// The first record's sequence number, or -1.
    pub fn base_sequence(&self) -> Sequence {
        Sequence(self.base_sequence.get())
    }
    /// The record count the producer claims (checked against the length, never trusted).
    pub fn records_count(&self) -> i32 {
        self.records_count.get()
    }
    /// The offset of the batch's last record.
    pub fn last_offset(&self) -> Offset {
        Offset(
            self.base_offset()
                .get()
                .saturating_add(i64::from(self.last_offset_delta())),
        )
    }
}

/// What is wrong with a record batch. Each kind of corruption has its own variant.
#[derive(Debug, thiserror::Error)]
pub enum BatchError {
    /// Fewer bytes than the 61-byte header.
    #[error("record batch is {len} bytes, shorter than the {BATCH_HEADER_BYTES}-byte header")]
    TooShort {
        /// Bytes available.
        len: usize,
    },
    /// The magic byte is not 2.
    #[error("record batch magic is {magic}; only magic 2 is supported")]
    BadMagic {
        /// The magic found.
        magic: i8,
    },
    /// `batch_length` is smaller than the rest of the header.
    #[error("batch_length {declared} is smaller than the 49 header bytes it must cover")]
    BatchLengthTooSmall {
        /// The declared `batch_length`.
        declared: i32,
    },
    /// `batch_length + 12` is not the number of bytes given.
    #[error("batch declares {declared_bytes} bytes but {available_bytes} are present")]
    LengthMismatch {
        /// `batch_length + 12`.
        declared_bytes: usize,
        /// Bytes actually present.
        available_bytes: usize,
    },
    /// The CRC32C of bytes 21.. does not match the stored one.
    #[error("record batch CRC mismatch: stored {stored:#010x}, computed {computed:#010x}")]
    CrcMismatch {
        /// The CRC in the header.
        stored: u32,
        /// The CRC of the bytes.
        computed: u32,
    },
    /// The attributes name a codec Kafka does not define.
    #[error("record batch uses unknown compression codec {codec}")]
    UnknownCompression {
        /// Attributes bits 0–2.
        codec: u8,
    },
    /// The record count is negative or impossible for the batch's size or offset span.
    #[error("record count {count} is implausible: {reason}")]
    BadRecordCount {
        /// The claimed count.
        count: i32,
        /// Why it cannot be right.
        reason: &'static str,
    },
    /// `last_offset_delta` is negative.
    #[error("last_offset_delta {0} is negative")]
    BadLastOffsetDelta(i32),
    /// A header timestamp is below -1 (Kafka's "no timestamp").
    #[error("{field} {value} is invalid (timestamps are milliseconds ≥ 0, or -1 for none)")]
    BadTimestamp {
        /// `base_timestamp` or `max_timestamp`.
        field: &'static str,
        /// The value found.
        value: i64,
    },
    /// A producer field is below -1, or a transactional batch has no producer id.
    #[error("{field} {value} is invalid: {reason}")]
    BadProducerState {
        /// The field at fault.
        field: &'static str,
        /// The value found.
        value: i64,
        /// What the rule is.
        reason: &'static str,
    },
    /// Records were asked for without decompression on a compressed batch.
    #[error("batch is {0:?}-compressed; decompress it to read its records")]
    Compressed(Compression),
    /// The compressed records could not be decompressed.
    #[error(transparent)]
    Decompress(#[from] CompressionError),
    /// The builder was asked to build a batch with no records.
    #[error("a record batch needs at least one record")]
    EmptyBuilder,
    /// The builder ran out of offset deltas or bytes (2^31 of either).
    #[error("record batch too large: {0}")]
    BuilderOverflow(&'static str),
}

/// A record batch whose framing, CRC and header fields have been validated.
#[derive(Debug, Clone, Copy)]
pub struct RecordBatch<'a> {
    bytes: &'a [u8],
    header: &'a BatchHeader,
    compression: Compression,
}

impl<'a> RecordBatch<'a> {
    /// Validates `bytes` as exactly one record batch: magic, declared length against the
    /// buffer, CRC32C, record count plausible for the length and offset span, a known codec,
    /// timestamps and producer fields in range. Constant work per batch beyond the CRC: no
    /// record is looked at.
    pub fn validate(bytes: &'a [u8]) -> Result<RecordBatch<'a>, BatchError> {
        let header = BatchHeader::view(bytes).ok_or(BatchError::TooShort { len: bytes.len() })?;
        if header.magic() != MAGIC_V2 {
            return Err(BatchError::BadMagic {
                magic: header.magic(),
            });
        }
        let declared = header.batch_length();
        let declared_bytes = usize::try_from(declared)
            .ok()
            .filter(|&len| len >= BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES)
            .ok_or(BatchError::BatchLengthTooSmall { declared })?
            + LOG_OVERHEAD_BYTES;
        if declared_bytes != bytes.len() {
            return Err(BatchError::LengthMismatch {
                declared_bytes,
                available_bytes: bytes.len(),
            });
        }
        let computed = crc32c::crc32c(&bytes[CRC_START..]);
        if computed != header.crc() {
            return Err(BatchError::CrcMismatch {
                stored: header.crc(),
                computed,
            });
        }
        let compression = header
            .compression()
            .map_err(|_| BatchError::UnknownCompression {
                codec: (header.attributes() & 0x07) as u8,
            })?;
        check_counts(header, compression, bytes.len() - BATCH_HEADER_BYTES)?;
        check_timestamps(header)?;
        check_producer(header)?;
        Ok(RecordBatch {
            bytes,
            header,
            compression,
        })
    }

    /// The batch's header.
    pub fn header(&self) -> &'a BatchHeader {
        self.header
    }

    /// The whole batch's bytes.
    pub fn bytes(&self) -> &'a [u8] {
        self.bytes
    }

    /// The codec of the records area.
    pub fn compression(&self) -> Compression {
        self.compression
    }

    /// The records area as stored: compressed when the codec is not `None`.
    pub fn records_bytes(&self) -> &'a [u8] {
        &self.bytes[BATCH_HEADER_BYTES..]
    }

    /// A lazy iterator over the records of an uncompressed batch.
    pub fn records(&self) -> Result<Records<'a>, BatchError> {
        match self.compression {
            Compression::None => Ok(Records::new(self.records_bytes(), self.header)),
            codec => Err(BatchError::Compressed(codec)),
        }
    }

    /// Decompresses the records area (at most `cap_bytes` of output) into `out`, which is
    /// cleared first. Iterate the result with [`RecordBatch::records_in`].
    pub fn decompress_into(&self, cap_bytes: usize, out: &mut Vec<u8>) -> Result<(), BatchError> {
        out.clear();
        self.compression
            .decompress(self.records_bytes(), cap_bytes, out)?;
        Ok(())
    }

    /// A lazy iterator over records in `decompressed` (from [`RecordBatch::decompress_into`]),
    /// checked against this batch's header.
    pub fn records_in<'b>(&self, decompressed: &'b [u8]) -> Records<'b>
    where
        'a: 'b,
    {
        Records::new(decompressed, self.header)
    }
}

fn check_counts(
    header: &BatchHeader,
    compression: Compression,
    records_area_bytes: usize,
) -> Result<(), BatchError> {
    let count = header.records_count();
    let last_offset_delta = header.last_offset_delta();
    if last_offset_delta < 0 {
        return Err(BatchError::BadLastOffsetDelta(last_offset_delta));
    }
    if count < 0 {
        return Err(BatchError::BadRecordCount {
            count,
            reason: "negative",
        });
    }
    if i64::from(count) > i64::from(last_offset_delta) + 1 {
        return Err(BatchError::BadRecordCount {
            count,
            reason: "more records than offsets the batch spans",
        });
    }
    // `count` is non-negative here, so the cast is exact.
    let min_bytes = count as usize * MIN_RECORD_BYTES;
    if compression == Compression::None && min_bytes > records_area_bytes {
        return Err(BatchError::BadRecordCount {
            count,
            reason: "more records than the batch's bytes can hold",
        });
    }
    if compression != Compression::None && count > 0 && records_area_bytes == 0 {
        return Err(BatchError::BadRecordCount {
            count,
            reason: "compressed records area is empty",
        });
    }
    Ok(())
}

fn check_timestamps(header: &BatchHeader) -> Result<(), BatchError> {
    for (field, value) in [
        ("base_timestamp", header.base_timestamp()),
        ("max_timestamp", header.max_timestamp()),
    ] {
        if value < -1 {
            return Err(BatchError::BadTimestamp { field, value });
        }
    }
    Ok(())
}

fn check_producer(header: &BatchHeader) -> Result<(), BatchError> {
    let below = |field, value: i64| BatchError::BadProducerState {
        field,
        value,
        reason: "must be -1 (none) or non-negative",
    };
    let producer_id = header.producer_id().get();
    if producer_id < -1 {
        return Err(below("producer_id", producer_id));
    }
    let epoch = i64::from(header.producer_epoch().get());
    if epoch < -1 {
        return Err(below("producer_epoch", epoch));
    }
    let sequence = i64::from(header.base_sequence().get());
    if sequence < -1 {
        return Err(below("base_sequence", sequence));
    }
    if header.is_transactional() && producer_id < 0 {
        return Err(BatchError::BadProducerState {
            field: "producer_id",
            value: producer_id,
            reason: "a transactional batch needs a producer id",
        });
    }
    Ok(())
}

/// Writes the leader's base offset and leader epoch into a batch. Both fields sit outside the
/// CRC-covered region, so the CRC stays valid.
///
/// # Panics
/// If `batch` is shorter than the header: callers stamp only validated batches.
pub fn stamp(batch: &mut [u8], base_offset: Offset, leader_epoch: LeaderEpoch) {
    let len = batch.len();
    let (header, _) = BatchHeader::mut_from_prefix(batch)
        .unwrap_or_else(|_| panic!("stamping a {len}-byte buffer, not a batch"));
    header.base_offset.set(base_offset.get());
    header.partition_leader_epoch.set(leader_epoch.get());
}

/// Copies a validated batch into `dst` (exactly its length) and stamps the copy: the single
/// copy the append path makes, with the stamp folded into it.
///
/// # Panics
/// If `dst` and `src` differ in length or are shorter than the header.
pub fn copy_stamped(src: &[u8], dst: &mut [u8], base_offset: Offset, leader_epoch: LeaderEpoch) {
    dst.copy_from_slice(src);
    stamp(dst, base_offset, leader_epoch);
}

/// Switches a batch to `LogAppendTime` with `append_time_ms` as its max timestamp, as a broker
/// does for topics with `message.timestamp.type=LogAppendTime`. These fields are CRC-covered,
/// so the CRC is recomputed.
///
/// # Panics
/// If `batch` is shorter than the header.
pub fn set_log_append_time(batch: &mut [u8], append_time_ms: i64) {
    let len = batch.len();
    let (header, _) = BatchHeader::mut_from_prefix(batch)
        .unwrap_or_else(|_| panic!("stamping a {len}-byte buffer, not a batch"));
    header
        .attributes
        .set(header.attributes.get() | ATTR_TIMESTAMP_TYPE);
    header.max_timestamp.set(append_time_ms);
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

/// Splits a buffer holding several whole batches back to back (a produce request's or a
/// segment's records) by their declared lengths, without validating them.
#[derive(Debug, Clone)]
pub struct BatchSplitter<'a> {
    rest: &'a [u8],
}

impl<'a> BatchSplitter<'a> {
    /// Splits `bytes`.
    pub fn new(bytes: &'a [u8]) -> BatchSplitter<'a> {
        BatchSplitter { rest: bytes }
    }
}

impl<'a> Iterator for BatchSplitter<'a> {
    type Item = Result<&'a [u8], BatchError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.rest.is_empty() {
            return None;
        }
        let available_bytes = self.rest.len();
        let Some(length_bytes) = self.rest.get(8..12) else {
            self.rest = &[];
            return Some(Err(BatchError::TooShort {
                len: available_bytes,
            }));
        };
        let declared = i32::from_be_bytes([
            length_bytes[0],
            length_bytes[1],
            length_bytes[2],
            length_bytes[3],
        ]);
        let declared_bytes = match usize::try_from(declared) {
            Ok(len) if len >= BATCH_HEADER_BYTES - LOG_OVERHEAD_BYTES => len + LOG_OVERHEAD_BYTES,
            _ => {
                self.rest = &[];
                return Some(Err(BatchError::BatchLengthTooSmall { declared }));
            }
        };
        if declared_bytes > available_bytes {
            self.rest = &[];
            return Some(Err(BatchError::LengthMismatch {
                declared_bytes,
                available_bytes,
            }));
        }
        let (batch, rest) = self.rest.split_at(declared_bytes);
        self.rest = rest;
        Some(Ok(batch))
    }
}

#[cfg(test)]
mod tests;
