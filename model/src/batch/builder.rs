//! Builds record batches: the format's write side, used by the load generator, the broker's
//! own writers (control batches, internal topics) and the tests.

use super::{
    BatchError, TimestampType, ATTR_CONTROL, ATTR_TIMESTAMP_TYPE, ATTR_TRANSACTIONAL,
    BATCH_HEADER_BYTES, CRC_START, LOG_OVERHEAD_BYTES, MAGIC_V2,
};
use crate::compression::Compression;
use crate::ids::{LeaderEpoch, Offset, ProducerEpoch, ProducerId, Sequence};
use crate::varint::{varint_len, varlong_len, write_varint, write_varlong};

/// One record to add to a batch.
#[derive(Debug, Clone, Copy, Default)]
pub struct BuilderRecord<'a> {
    /// Milliseconds since the epoch (or -1 for none).
    pub timestamp_ms: i64,
    /// The key, or `None` for null.
    pub key: Option<&'a [u8]>,
    /// The value, or `None` for null.
    pub value: Option<&'a [u8]>,
    /// Headers as (key, value) pairs; a `None` value is null.
    pub headers: &'a [(&'a [u8], Option<&'a [u8]>)],
}

/// Accumulates records and writes a v2 batch with a correct CRC.
#[derive(Debug, Clone)]
pub struct BatchBuilder {
    compression: Compression,
    base_offset: Offset,
    leader_epoch: LeaderEpoch,
    producer_id: ProducerId,
    producer_epoch: ProducerEpoch,
    base_sequence: Sequence,
    attributes: i16,
    records: Vec<u8>,
    count: i32,
    base_timestamp: Option<i64>,
    max_timestamp: i64,
}

impl BatchBuilder {
    /// A builder for a non-transactional, non-idempotent batch with create-time timestamps.
    pub fn new(compression: Compression) -> BatchBuilder {
        BatchBuilder {
            compression,
            base_offset: Offset(0),
            leader_epoch: LeaderEpoch::UNKNOWN,
            producer_id: ProducerId::NONE,
            producer_epoch: ProducerEpoch::NONE,
            base_sequence: Sequence::NONE,
            attributes: compression.id(),
            records: Vec::new(),
            count: 0,
            base_timestamp: None,
            max_timestamp: -1,
        }
    }

    /// Sets the base offset (producers send 0; the leader stamps the real one).
    pub fn base_offset(mut self, base_offset: Offset) -> BatchBuilder {
        self.base_offset = base_offset;
        self
    }

    /// Sets the partition leader epoch (producers send -1).
    pub fn leader_epoch(mut self, leader_epoch: LeaderEpoch) -> BatchBuilder {
        self.leader_epoch = leader_epoch;
        self
    }

    /// Marks the batch as an idempotent producer's, with its first sequence number.
    pub fn producer(
        mut self,
        producer_id: ProducerId,
        producer_epoch: ProducerEpoch,
        base_sequence: Sequence,
    ) -> BatchBuilder {
        self.producer_id = producer_id;
        self.producer_epoch = producer_epoch;
        self.base_sequence = base_sequence;
        self
    }

    /// Sets or clears the transactional flag.
    pub fn transactional(self, on: bool) -> BatchBuilder {
        self.flag(ATTR_TRANSACTIONAL, on)
    }

    /// Sets or clears the control flag (for transaction markers).
    pub fn control(self, on: bool) -> BatchBuilder {
        self.flag(ATTR_CONTROL, on)
    }

    /// Sets the timestamp type.
    pub fn timestamp_type(self, timestamp_type: TimestampType) -> BatchBuilder {
        self.flag(
            ATTR_TIMESTAMP_TYPE,
            timestamp_type == TimestampType::LogAppendTime,
        )
    }

    fn flag(mut self, bit: i16, on: bool) -> BatchBuilder {
        if on {
            self.attributes |= bit;
        } else {
            self.attributes &= !bit;
        }
        self
    }

    /// The number of records added so far.
    pub fn len(&self) -> usize {
        usize::try_from(self.count).unwrap_or(0)
    }

    /// Whether no record has been added.
    pub fn is_empty(&self) -> bool {
        self.count == 0
    }

    /// Uncompressed bytes of the records added so far (for size-based batching).
    pub fn records_bytes(&self) -> usize {
        self.records.len()
    }

    /// Appends a record; its offset delta is its position in the batch.
    pub fn push(&mut self, record: &BuilderRecord<'_>) -> Result<(), BatchError> {
        let offset_delta = self.count;
        let next_count = self
            .count
            .checked_add(1)
            .ok_or(BatchError::BuilderOverflow("record count"))?;
        let base_timestamp = *self.base_timestamp.get_or_insert(record.timestamp_ms);
        let timestamp_delta = record
            .timestamp_ms
            .checked_sub(base_timestamp)
            .ok_or(BatchError::BuilderOverflow("timestamp delta"))?;
        let body_len = record_body_len(record, timestamp_delta, offset_delta)?;
        let body_len_i32 =
            i32::try_from(body_len).map_err(|_| BatchError::BuilderOverflow("record size"))?;
        self.records.reserve(varint_len(body_len_i32) + body_len);
        let start = self.records.len();
        write_varint(&mut self.records, body_len_i32);
        self.records.push(0); // record attributes: unused
        write_varlong(&mut self.records, timestamp_delta);
        write_varint(&mut self.records, offset_delta);
        write_nullable(&mut self.records, record.key)?;
        write_nullable(&mut self.records, record.value)?;
        write_varint(&mut self.records, len_i32(record.headers.len())?);
        for (key, value) in record.headers {
            write_nullable(&mut self.records, Some(key))?;
            write_nullable(&mut self.records, *value)?;
        }
        debug_assert_eq!(
            self.records.len() - start,
            varint_len(body_len_i32) + body_len
        );
        self.max_timestamp = self.max_timestamp.max(record.timestamp_ms);
        self.count = next_count;
        Ok(())
    }

    /// Writes the batch: header, (compressed) records, CRC.
    pub fn build(&self) -> Result<Vec<u8>, BatchError> {
        if self.count == 0 {
            return Err(BatchError::EmptyBuilder);
        }
        let mut out = Vec::with_capacity(BATCH_HEADER_BYTES + self.records.len());
        out.resize(BATCH_HEADER_BYTES, 0);
        self.compression.compress(&self.records, &mut out)?;
        let batch_length = i32::try_from(out.len() - LOG_OVERHEAD_BYTES)
            .map_err(|_| BatchError::BuilderOverflow("batch size"))?;
        let header = &mut out[..BATCH_HEADER_BYTES];
        header[0..8].copy_from_slice(&self.base_offset.get().to_be_bytes());
        header[8..12].copy_from_slice(&batch_length.to_be_bytes());
        header[12..16].copy_from_slice(&self.leader_epoch.get().to_be_bytes());
        header[16] = MAGIC_V2 as u8;
        header[21..23].copy_from_slice(&self.attributes.to_be_bytes());
        header[23..27].copy_from_slice(&(self.count - 1).to_be_bytes());
        header[27..35].copy_from_slice(&self.base_timestamp.unwrap_or(-1).to_be_bytes());
        header[35..43].copy_from_slice(&self.max_timestamp.to_be_bytes());
        header[43..51].copy_from_slice(&self.producer_id.get().to_be_bytes());
        header[51..53].copy_from_slice(&self.producer_epoch.get().to_be_bytes());
        header[53..57].copy_from_slice(&self.base_sequence.get().to_be_bytes());
        header[57..61].copy_from_slice(&self.count.to_be_bytes());
        let crc = crc32c::crc32c(&out[CRC_START..]);
        out[17..21].copy_from_slice(&crc.to_be_bytes());
        Ok(out)
    }
}

fn len_i32(len: usize) -> Result<i32, BatchError> {
    i32::try_from(len).map_err(|_| BatchError::BuilderOverflow("field length"))
}

fn nullable_len(bytes: Option<&[u8]>) -> Result<usize, BatchError> {
    Ok(match bytes {
        None => varint_len(-1),
        Some(bytes) => varint_len(len_i32(bytes.len())?) + bytes.len(),
    })
}

fn write_nullable(out: &mut Vec<u8>, bytes: Option<&[u8]>) -> Result<(), BatchError> {
    match bytes {
        None => write_varint(out, -1),
        Some(bytes) => {
            write_varint(out, len_i32(bytes.len())?);
            out.extend_from_slice(bytes);
        }
    }
    Ok(())
}

fn record_body_len(
    record: &BuilderRecord<'_>,
    timestamp_delta: i64,
    offset_delta: i32,
) -> Result<usize, BatchError> {
    let mut len = 1 + varlong_len(timestamp_delta) + varint_len(offset_delta);
    len += nullable_len(record.key)? + nullable_len(record.value)?;
    len += varint_len(len_i32(record.headers.len())?);
    for (key, value) in record.headers {
        len += nullable_len(Some(key))? + nullable_len(*value)?;
    }
    Ok(len)
}
