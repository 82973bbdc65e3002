//! A FetchResponse encoder that never copies record data.
//!
//! The generated encoder writes everything into one buffer, records included: for a 1 MiB
//! fetch that is a 1 MiB memcpy per response. This one writes the framing (size prefix,
//! response header, topic and partition fields) into a small buffer and splices each
//! partition's records in as a reference-counted [`Bytes`] chunk — which can own a tail-cache
//! buffer or a DMA read buffer via `Bytes::from_owner`, so the bytes go from the page or cache
//! to the socket with no copy in user space. The result is byte-identical to the generated
//! encoder's output (tested for every version), with the size prefix in front.
//!
//! Supported versions: 4–18 (Kafka 4's minimum up to the newest `kafka-protocol` knows).
//! Unknown tagged fields are refused rather than dropped: the broker never produces them.

use crate::codec::CodecError;
use crate::header::write_uvarint;
use bytes::{BufMut, Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    EpochEndOffset, FetchResponse, FetchableTopicResponse, LeaderIdAndEpoch, NodeEndpoint,
    PartitionData, SnapshotId,
};
use kafka_protocol::messages::ApiKey;

/// Lowest FetchResponse version the encoder writes.
pub const MIN_VERSION: i16 = 4;
/// Highest FetchResponse version the encoder writes.
pub const MAX_VERSION: i16 = 18;
const FIRST_FLEXIBLE: i16 = 12;
const FIRST_TOPIC_ID: i16 = 13;

/// An encoded message as a sequence of chunks to write in order (e.g. with `writev`).
#[derive(Debug, Clone, Default)]
pub struct Rope {
    chunks: Vec<Bytes>,
    len: usize,
}

impl Rope {
    /// The chunks, in order.
    pub fn chunks(&self) -> &[Bytes] {
        &self.chunks
    }

    /// Total bytes over all chunks.
    pub fn len(&self) -> usize {
        self.len
    }

    /// Whether the rope holds no bytes.
    pub fn is_empty(&self) -> bool {
        self.len == 0
    }

    /// Concatenates the chunks (a copy: for tests and for transports without vectored I/O).
    pub fn to_vec(&self) -> Vec<u8> {
        let mut out = Vec::with_capacity(self.len);
        for chunk in &self.chunks {
            out.extend_from_slice(chunk);
        }
        out
    }
}

/// Encodes a whole FetchResponse frame — size prefix, response header, body — referencing
/// each partition's records instead of copying them.
pub fn encode_fetch_response(
    correlation_id: i32,
    version: i16,
    response: &FetchResponse,
) -> Result<Rope, CodecError> {
    if !(MIN_VERSION..=MAX_VERSION).contains(&version) {
        return Err(CodecError::UnsupportedVersion {
            api: ApiKey::Fetch,
            version,
            min: MIN_VERSION,
            max: MAX_VERSION,
        });
    }
    let mut writer = RopeWriter::new(version);
    writer.buf.put_i32(0); // size, patched in `finish`
    writer.buf.put_i32(correlation_id);
    if writer.flexible() {
        writer.buf.put_u8(0); // response header v1: no tagged fields
    }
    writer.response(response)?;
    writer.finish()
}

struct RopeWriter {
    version: i16,
    buf: BytesMut,
    head: Option<BytesMut>,
    chunks: Vec<Bytes>,
    len: usize,
}

impl RopeWriter {
    fn new(version: i16) -> RopeWriter {
        RopeWriter {
            version,
            buf: BytesMut::with_capacity(1024),
            head: None,
            chunks: vec![Bytes::new()], // slot 0 is the head, filled in `finish`
            len: 0,
        }
    }

    fn flexible(&self) -> bool {
        self.version >= FIRST_FLEXIBLE
    }

    fn encode_error(&self, reason: &str) -> CodecError {
        CodecError::Encode {
            api: ApiKey::Fetch,
            version: self.version,
            reason: reason.to_string(),
        }
    }

    /// Moves the buffered framing into the chunk list; the first piece stays mutable so the
    /// size can be patched at the end.
    fn flush(&mut self) {
        if self.buf.is_empty() {
            return;
        }
        let piece = self.buf.split();
        self.len += piece.len();
        if self.head.is_none() {
            self.head = Some(piece);
        } else {
            self.chunks.push(piece.freeze());
        }
    }

    fn records(&mut self, records: &Bytes) {
        self.flush();
        if !records.is_empty() {
            self.len += records.len();
            self.chunks.push(records.clone());
        }
    }

    fn finish(mut self) -> Result<Rope, CodecError> {
        self.flush();
        let mut head = self
            .head
            .take()
            .ok_or_else(|| self.encode_error("empty response"))?;
        let size =
            i32::try_from(self.len - 4).map_err(|_| self.encode_error("response exceeds 2 GiB"))?;
        head[..4].copy_from_slice(&size.to_be_bytes());
        self.chunks[0] = head.freeze();
        Ok(Rope {
            chunks: self.chunks,
            len: self.len,
        })
    }

    fn array_len(&mut self, len: usize) -> Result<(), CodecError> {
        let len = i32::try_from(len).map_err(|_| self.encode_error("array too long"))?;
        if self.flexible() {
            write_uvarint(&mut self.buf, len as u32 + 1);
        } else {
            self.buf.put_i32(len);
        }
        Ok(())
    }

    fn string(&mut self, value: &str) -> Result<(), CodecError> {
        if self.flexible() {
            let len =
                u32::try_from(value.len()).map_err(|_| self.encode_error("string too long"))?;
            write_uvarint(&mut self.buf, len + 1);
        } else {
            let len =
                i16::try_from(value.len()).map_err(|_| self.encode_error("string too long"))?;
            self.buf.put_i16(len);
        }
        self.buf.extend_from_slice(value.as_bytes());
        Ok(())
    }

    fn no_unknown_tags(&self, count: usize) -> Result<(), CodecError> {
        if count == 0 {
            Ok(())
        } else {
            Err(self
                .encode_error("unknown tagged fields are not supported by the zero-copy encoder"))
        }
    }

    fn response(&mut self, response: &FetchResponse) -> Result<(), CodecError> {
        self.no_unknown_tags(response.unknown_tagged_fields.len())?;
        self.buf.put_i32(response.throttle_time_ms);
        if self.version >= 7 {
            self.buf.put_i16(response.error_code);
            self.buf.put_i32(response.session_id);
        } else if response.session_id != 0 {
            return Err(self.encode_error("session_id needs version 7 or later"));
        }
        self.array_len(response.responses.len())?;
        for topic in &response.responses {
            self.topic(topic)?;
        }
        if self.flexible() {
            let endpoints = self.version >= 16 && !response.node_endpoints.is_empty();
            self.buf.put_u8(u8::from(endpoints));
            if endpoints {
                self.node_endpoints(&response.node_endpoints)?;
            }
        }
        Ok(())
    }

    fn topic(&mut self, topic: &FetchableTopicResponse) -> Result<(), CodecError> {
        self.no_unknown_tags(topic.unknown_tagged_fields.len())?;
        if self.version < FIRST_TOPIC_ID {
            self.string(&topic.topic)?;
        } else {
            self.buf.extend_from_slice(topic.topic_id.as_bytes());
        }
        self.array_len(topic.partitions.len())?;
        for partition in &topic.partitions {
            self.partition(partition)?;
        }
        if self.flexible() {
            self.buf.put_u8(0);
        }
        Ok(())
    }

    fn partition(&mut self, partition: &PartitionData) -> Result<(), CodecError> {
        self.no_unknown_tags(partition.unknown_tagged_fields.len())?;
        self.buf.put_i32(partition.partition_index);
        self.buf.put_i16(partition.error_code);
        self.buf.put_i64(partition.high_watermark);
        self.buf.put_i64(partition.last_stable_offset);
        if self.version >= 5 {
            self.buf.put_i64(partition.log_start_offset);
        }
        self.aborted_transactions(partition)?;
        if self.version >= 11 {
            self.buf.put_i32(partition.preferred_read_replica.0);
        } else if partition.preferred_read_replica.0 != -1 {
            return Err(self.encode_error("preferred_read_replica needs version 11 or later"));
        }
        self.records_field(partition.records.as_ref())?;
        if self.flexible() {
            self.partition_tags(partition)?;
        }
        Ok(())
    }

    fn aborted_transactions(&mut self, partition: &PartitionData) -> Result<(), CodecError> {
        match &partition.aborted_transactions {
            None if self.flexible() => self.buf.put_u8(0),
            None => self.buf.put_i32(-1),
            Some(aborted) => {
                self.array_len(aborted.len())?;
                for transaction in aborted {
                    self.no_unknown_tags(transaction.unknown_tagged_fields.len())?;
                    self.buf.put_i64(transaction.producer_id.0);
                    self.buf.put_i64(transaction.first_offset);
                    if self.flexible() {
                        self.buf.put_u8(0);
                    }
                }
            }
        }
        Ok(())
    }

    fn records_field(&mut self, records: Option<&Bytes>) -> Result<(), CodecError> {
        match records {
            None if self.flexible() => self.buf.put_u8(0),
            None => self.buf.put_i32(-1),
            Some(records) => {
                let len = u32::try_from(records.len())
                    .ok()
                    .filter(|&len| len < i32::MAX as u32)
                    .ok_or_else(|| self.encode_error("records exceed 2 GiB"))?;
                if self.flexible() {
                    write_uvarint(&mut self.buf, len + 1);
                } else {
                    self.buf.put_i32(len as i32);
                }
                self.records(records);
            }
        }
        Ok(())
    }

    /// Tagged fields 0 (diverging epoch), 1 (current leader), 2 (snapshot id), each written
    /// only when it differs from its default, in tag order.
    fn partition_tags(&mut self, partition: &PartitionData) -> Result<(), CodecError> {
        let diverging = partition.diverging_epoch != EpochEndOffset::default();
        let leader = partition.current_leader != LeaderIdAndEpoch::default();
        let snapshot = partition.snapshot_id != SnapshotId::default();
        self.buf
            .put_u8(u8::from(diverging) + u8::from(leader) + u8::from(snapshot));
        if diverging {
            let value = &partition.diverging_epoch;
            self.no_unknown_tags(value.unknown_tagged_fields.len())?;
            self.buf.extend_from_slice(&[0, 13]); // tag 0, 4 + 8 + 1 bytes
            self.buf.put_i32(value.epoch);
            self.buf.put_i64(value.end_offset);
            self.buf.put_u8(0);
        }
        if leader {
            let value = &partition.current_leader;
            self.no_unknown_tags(value.unknown_tagged_fields.len())?;
            self.buf.extend_from_slice(&[1, 9]); // tag 1, 4 + 4 + 1 bytes
            self.buf.put_i32(value.leader_id.0);
            self.buf.put_i32(value.leader_epoch);
            self.buf.put_u8(0);
        }
        if snapshot {
            let value = &partition.snapshot_id;
            self.no_unknown_tags(value.unknown_tagged_fields.len())?;
            self.buf.extend_from_slice(&[2, 13]); // tag 2, 8 + 4 + 1 bytes
            self.buf.put_i64(value.end_offset);
            self.buf.put_i32(value.epoch);
            self.buf.put_u8(0);
        }
        Ok(())
    }

    /// Top-level tagged field 0: the endpoints of nodes named as current leaders (v16+).
    fn node_endpoints(&mut self, endpoints: &[NodeEndpoint]) -> Result<(), CodecError> {
        // The field is length-prefixed, so encode it aside first.
        let outer = std::mem::take(&mut self.buf);
        self.array_len(endpoints.len())?;
        for endpoint in endpoints {
            self.no_unknown_tags(endpoint.unknown_tagged_fields.len())?;
            self.buf.put_i32(endpoint.node_id.0);
            self.string(&endpoint.host)?;
            self.buf.put_i32(endpoint.port);
            match &endpoint.rack {
                None => self.buf.put_u8(0),
                Some(rack) => self.string(rack)?,
            }
            self.buf.put_u8(0);
        }
        let field = std::mem::replace(&mut self.buf, outer);
        write_uvarint(&mut self.buf, 0);
        let len = u32::try_from(field.len())
            .map_err(|_| self.encode_error("node endpoints too large"))?;
        write_uvarint(&mut self.buf, len);
        self.buf.extend_from_slice(&field);
        Ok(())
    }
}
