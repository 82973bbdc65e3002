//! A lazy, bounded iterator over the records of an (uncompressed or decompressed) batch.
//!
//! Record layout: `length: varint` then, within those bytes, `attributes: int8`,
//! `timestamp_delta: varlong`, `offset_delta: varint`, `key_length: varint` (-1 = null),
//! `key`, `value_length: varint` (-1 = null), `value`, `header_count: varint` and per header
//! `key_length: varint`, `key`, `value_length: varint` (-1 = null), `value`.
//!
//! The iterator borrows keys, values and headers from the input and allocates nothing. It
//! never trusts the wire: it stops at whichever comes first of the claimed count and the end
//! of the bytes, and reports either mismatch as an error, as well as every length that points
//! outside its record.

use super::BatchHeader;
use crate::varint::{read_varint, read_varlong, VarintError};

/// What is wrong with a record inside a batch.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum RecordError {
    /// A varint ran past its record or was over-long.
    #[error("record {index}: bad varint in {field}: {source}")]
    Varint {
        /// The record's position in the batch.
        index: i32,
        /// The field being read.
        field: &'static str,
        /// The varint problem.
        source: VarintError,
    },
    /// A length is negative (other than -1 where null is allowed) or runs past the record.
    #[error("record {index}: {field} length {length} does not fit in the {available} bytes left")]
    BadLength {
        /// The record's position in the batch.
        index: i32,
        /// The field being read.
        field: &'static str,
        /// The length found.
        length: i64,
        /// Bytes left where it was found.
        available: usize,
    },
    /// The record's fields did not use exactly its declared length.
    #[error("record {index}: fields end {unused} bytes before the record's declared end")]
    TrailingRecordBytes {
        /// The record's position in the batch.
        index: i32,
        /// Bytes left over.
        unused: usize,
    },
    /// The records ended before the batch's claimed count.
    #[error("batch claims {claimed} records but its bytes hold only {found}")]
    TooFewRecords {
        /// The header's count.
        claimed: i32,
        /// Records actually present.
        found: i32,
    },
    /// Bytes remain after the claimed count of records.
    #[error("{unused} bytes follow the batch's last claimed record")]
    TrailingBatchBytes {
        /// Bytes left over.
        unused: usize,
    },
    /// A record's offset delta is negative or beyond the batch's `last_offset_delta`.
    #[error("record {index}: offset delta {offset_delta} outside 0..={last_offset_delta}")]
    BadOffsetDelta {
        /// The record's position in the batch.
        index: i32,
        /// The delta found.
        offset_delta: i32,
        /// The batch's bound.
        last_offset_delta: i32,
    },
}

/// One header of a record.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct RecordHeader<'a> {
    /// The header key (a UTF-8 string in Kafka's clients; not checked here).
    pub key: &'a [u8],
    /// The header value, or `None` for null.
    pub value: Option<&'a [u8]>,
}

/// One record, borrowing from the batch's bytes.
#[derive(Debug, Clone, Copy)]
pub struct Record<'a> {
    /// The record's attributes byte (unused by Kafka so far).
    pub attributes: i8,
    /// Milliseconds after the batch's base timestamp.
    pub timestamp_delta: i64,
    /// Offsets after the batch's base offset.
    pub offset_delta: i32,
    /// The key, or `None` for null.
    pub key: Option<&'a [u8]>,
    /// The value, or `None` for null (a tombstone in compacted topics).
    pub value: Option<&'a [u8]>,
    header_count: i32,
    headers: &'a [u8],
}

impl<'a> Record<'a> {
    /// The number of headers.
    pub fn header_count(&self) -> usize {
        usize::try_from(self.header_count).unwrap_or(0)
    }

    /// The record's headers, lazily.
    pub fn headers(&self) -> impl Iterator<Item = RecordHeader<'a>> + 'a {
        let mut rest = self.headers;
        (0..self.header_count).map_while(move |_| {
            // The record was fully checked when it was read, so these reads succeed.
            let mut cursor = Cursor { rest, index: 0 };
            let key = cursor.bytes("header key", false).ok()??;
            let value = cursor.bytes("header value", true).ok()?;
            rest = cursor.rest;
            Some(RecordHeader { key, value })
        })
    }

    /// The record's timestamp given its batch's header.
    pub fn timestamp(&self, header: &BatchHeader) -> i64 {
        header.base_timestamp().saturating_add(self.timestamp_delta)
    }
}

/// The type of a control record (its key is `version: int16, type: int16`).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ControlType {
    /// Type 0: the transaction was aborted.
    Abort,
    /// Type 1: the transaction was committed.
    Commit,
    /// Any other type (e.g. KRaft's leader-change and voter records).
    Other(i16),
}

impl ControlType {
    /// Reads a control record's key; `None` if it is shorter than 4 bytes.
    pub fn from_key(key: &[u8]) -> Option<ControlType> {
        let type_bytes = key.get(2..4)?;
        Some(match i16::from_be_bytes([type_bytes[0], type_bytes[1]]) {
            0 => ControlType::Abort,
            1 => ControlType::Commit,
            other => ControlType::Other(other),
        })
    }
}

/// Iterates the records of a batch; see the module documentation.
#[derive(Debug, Clone)]
pub struct Records<'a> {
    rest: &'a [u8],
    claimed: i32,
    index: i32,
    last_offset_delta: i32,
    done: bool,
}

impl<'a> Records<'a> {
    pub(crate) fn new(bytes: &'a [u8], header: &BatchHeader) -> Records<'a> {
        Records {
            rest: bytes,
            claimed: header.records_count(),
            index: 0,
            last_offset_delta: header.last_offset_delta(),
            done: false,
        }
    }

    /// Bytes not yet consumed by the iterator.
    pub fn remaining_bytes(&self) -> usize {
        self.rest.len()
    }

    fn read_record(&mut self) -> Result<Record<'a>, RecordError> {
        let index = self.index;
        let mut outer = Cursor {
            rest: self.rest,
            index,
        };
        let length = outer.varint("record length")?;
        let body = outer.take("record", i64::from(length))?;
        self.rest = outer.rest;

        let mut cursor = Cursor { rest: body, index };
        let attributes = cursor.byte("attributes")? as i8;
        let timestamp_delta = cursor.varlong("timestamp delta")?;
        let offset_delta = cursor.varint("offset delta")?;
        if offset_delta < 0 || offset_delta > self.last_offset_delta {
            return Err(RecordError::BadOffsetDelta {
                index,
                offset_delta,
                last_offset_delta: self.last_offset_delta,
            });
        }
        let key = cursor.bytes("key", true)?;
        let value = cursor.bytes("value", true)?;
        let header_count = cursor.varint("header count")?;
        // Each header takes at least two bytes (two lengths), so this bounds the count.
        let max_headers = cursor.rest.len() / 2;
        if header_count < 0 || header_count as usize > max_headers {
            return Err(RecordError::BadLength {
                index,
                field: "header count",
                length: i64::from(header_count),
                available: cursor.rest.len(),
            });
        }
        let headers = cursor.rest;
        for _ in 0..header_count {
            cursor.bytes("header key", false)?;
            cursor.bytes("header value", true)?;
        }
        if !cursor.rest.is_empty() {
            return Err(RecordError::TrailingRecordBytes {
                index,
                unused: cursor.rest.len(),
            });
        }
        Ok(Record {
            attributes,
            timestamp_delta,
            offset_delta,
            key,
            value,
            header_count,
            headers,
        })
    }
}

impl<'a> Iterator for Records<'a> {
    type Item = Result<Record<'a>, RecordError>;

    fn next(&mut self) -> Option<Self::Item> {
        if self.done {
            return None;
        }
        if self.index >= self.claimed {
            self.done = true;
            let unused = self.rest.len();
            return (unused > 0).then_some(Err(RecordError::TrailingBatchBytes { unused }));
        }
        if self.rest.is_empty() {
            self.done = true;
            return Some(Err(RecordError::TooFewRecords {
                claimed: self.claimed,
                found: self.index,
            }));
        }
        let result = self.read_record();
        self.index += 1;
        if result.is_err() {
            self.done = true;
        }
        Some(result)
    }

    fn size_hint(&self) -> (usize, Option<usize>) {
        let left = usize::try_from(self.claimed - self.index).unwrap_or(0);
        // Never more than the bytes can hold, whatever the wire claims.
        (
            0,
            Some(left.min(self.rest.len() / super::MIN_RECORD_BYTES + 1)),
        )
    }
}

/// A bounds-checked reader over one record's bytes.
struct Cursor<'a> {
    rest: &'a [u8],
    index: i32,
}

impl<'a> Cursor<'a> {
    fn byte(&mut self, field: &'static str) -> Result<u8, RecordError> {
        let (&first, rest) = self.rest.split_first().ok_or(RecordError::BadLength {
            index: self.index,
            field,
            length: 1,
            available: 0,
        })?;
        self.rest = rest;
        Ok(first)
    }

    fn varint(&mut self, field: &'static str) -> Result<i32, RecordError> {
        let (value, len) = read_varint(self.rest).map_err(|source| RecordError::Varint {
            index: self.index,
            field,
            source,
        })?;
        self.rest = &self.rest[len..];
        Ok(value)
    }

    fn varlong(&mut self, field: &'static str) -> Result<i64, RecordError> {
        let (value, len) = read_varlong(self.rest).map_err(|source| RecordError::Varint {
            index: self.index,
            field,
            source,
        })?;
        self.rest = &self.rest[len..];
        Ok(value)
    }

    fn take(&mut self, field: &'static str, length: i64) -> Result<&'a [u8], RecordError> {
        let available = self.rest.len();
        let len = usize::try_from(length)
            .ok()
            .filter(|&len| len <= available)
            .ok_or(RecordError::BadLength {
                index: self.index,
                field,
                length,
                available,
            })?;
        let (taken, rest) = self.rest.split_at(len);
        self.rest = rest;
        Ok(taken)
    }

    /// A varint length then that many bytes; -1 is null where `nullable`.
    fn bytes(
        &mut self,
        field: &'static str,
        nullable: bool,
    ) -> Result<Option<&'a [u8]>, RecordError> {
        let length = self.varint(field)?;
        if length == -1 && nullable {
            return Ok(None);
        }
        self.take(field, i64::from(length)).map(Some)
    }
}
