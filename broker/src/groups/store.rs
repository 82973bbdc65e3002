//! The records consumer groups keep in `__consumer_offsets`, in Kafka's own formats (so
//! tools that read the topic understand them), and the replay that rebuilds the committed
//! offsets at start-up.
//!
//! - An offset commit: key version 1 (group, topic, partition), value version 3 (offset,
//!   leader epoch, metadata, commit timestamp). A null value deletes the offset.
//! - A group: key version 2 (group). Only its tombstone (null value) is written so far, by
//!   DeleteGroups; group membership is not persisted (members rejoin after a restart).

use crate::topics::PartitionLog;
use bytes::{Buf, BufMut};
use spate_model::batch::{BatchBuilder, BuilderRecord};
use spate_model::{Compression, Offset, RecordBatch};

const OFFSET_KEY_VERSION: i16 = 1;
const GROUP_KEY_VERSION: i16 = 2;
const OFFSET_VALUE_VERSION: i16 = 3;
/// Bytes read from the log at a time while replaying.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// A committed offset.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Committed {
    /// The next offset to consume.
    pub offset: i64,
    /// The leader epoch of the last consumed record, or -1.
    pub leader_epoch: i32,
    /// The client's metadata string.
    pub metadata: String,
    /// When it was committed (ms since the epoch).
    pub commit_timestamp: i64,
}

/// One decoded record of the offsets topic.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Entry {
    /// An offset committed (or deleted: `None`).
    Offset {
        /// The group.
        group: String,
        /// The topic.
        topic: String,
        /// The partition.
        partition: i32,
        /// The commit, or `None` for a deletion.
        committed: Option<Committed>,
    },
    /// A group's record; `deleted` for its tombstone.
    Group {
        /// The group.
        group: String,
        /// Whether the group was deleted.
        deleted: bool,
    },
}

/// Writes a Kafka `string` (int16 length, then the bytes).
pub(crate) fn put_string(out: &mut Vec<u8>, text: &str) {
    // Callers bound every string well below i16::MAX bytes.
    out.put_i16(i16::try_from(text.len()).unwrap_or(i16::MAX));
    out.put_slice(text.as_bytes());
}

/// Reads a Kafka `string`; `None` if it is truncated or not UTF-8.
pub(crate) fn get_string(input: &mut &[u8]) -> Option<String> {
    if input.remaining() < 2 {
        return None;
    }
    let len = usize::try_from(input.get_i16()).ok()?;
    if input.remaining() < len {
        return None;
    }
    let text = std::str::from_utf8(&input[..len]).ok()?.to_string();
    input.advance(len);
    Some(text)
}

impl Entry {
    /// The record's key and value.
    pub fn encode(&self) -> (Vec<u8>, Option<Vec<u8>>) {
        match self {
            Entry::Offset {
                group,
                topic,
                partition,
                committed,
            } => {
                let mut key = Vec::with_capacity(8 + group.len() + topic.len());
                key.put_i16(OFFSET_KEY_VERSION);
                put_string(&mut key, group);
                put_string(&mut key, topic);
                key.put_i32(*partition);
                let value = committed.as_ref().map(|c| {
                    let mut value = Vec::with_capacity(24 + c.metadata.len());
                    value.put_i16(OFFSET_VALUE_VERSION);
                    value.put_i64(c.offset);
                    value.put_i32(c.leader_epoch);
                    put_string(&mut value, &c.metadata);
                    value.put_i64(c.commit_timestamp);
                    value
                });
                (key, value)
            }
            Entry::Group { group, .. } => {
                let mut key = Vec::with_capacity(4 + group.len());
                key.put_i16(GROUP_KEY_VERSION);
                put_string(&mut key, group);
                (key, None)
            }
        }
    }

    /// Decodes a record; `None` for a record this broker does not read (another format
    /// version, a group's membership, or bytes it cannot parse).
    pub fn decode(mut key: &[u8], value: Option<&[u8]>) -> Option<Entry> {
        if key.remaining() < 2 {
            return None;
        }
        match key.get_i16() {
            0 | OFFSET_KEY_VERSION => {
                let group = get_string(&mut key)?;
                let topic = get_string(&mut key)?;
                if key.remaining() < 4 {
                    return None;
                }
                let partition = key.get_i32();
                let committed = match value {
                    None => None,
                    Some(value) => Some(decode_offset_value(value)?),
                };
                Some(Entry::Offset {
                    group,
                    topic,
                    partition,
                    committed,
                })
            }
            GROUP_KEY_VERSION => Some(Entry::Group {
                group: get_string(&mut key)?,
                deleted: value.is_none(),
            }),
            _ => None,
        }
    }
}

fn decode_offset_value(mut value: &[u8]) -> Option<Committed> {
    if value.remaining() < 2 {
        return None;
    }
    let version = value.get_i16();
    if value.remaining() < 8 {
        return None;
    }
    let offset = value.get_i64();
    let leader_epoch = if version >= 3 {
        if value.remaining() < 4 {
            return None;
        }
        value.get_i32()
    } else {
        -1
    };
    let metadata = get_string(&mut value)?;
    if value.remaining() < 8 {
        return None;
    }
    let commit_timestamp = value.get_i64();
    Some(Committed {
        offset,
        leader_epoch,
        metadata,
        commit_timestamp,
    })
}

/// One uncompressed batch holding `entries`, stamped with `now_ms`.
pub fn batch_of(entries: &[Entry], now_ms: i64) -> Result<Vec<u8>, spate_model::BatchError> {
    build(BatchBuilder::new(Compression::None), entries, now_ms)
}

fn build(
    mut builder: BatchBuilder,
    entries: &[Entry],
    now_ms: i64,
) -> Result<Vec<u8>, spate_model::BatchError> {
    let encoded: Vec<(Vec<u8>, Option<Vec<u8>>)> = entries.iter().map(Entry::encode).collect();
    for (key, value) in &encoded {
        builder.push(&BuilderRecord {
            timestamp_ms: now_ms,
            key: Some(key),
            value: value.as_deref(),
            headers: &[],
        })?;
    }
    builder.build()
}

/// One uncompressed transactional batch of producer `producer` (id, epoch) holding
/// `entries` (TxnOffsetCommit): they apply when the transaction's commit marker is written.
pub fn transactional_batch_of(
    entries: &[Entry],
    producer: (i64, i16),
    now_ms: i64,
) -> Result<Vec<u8>, spate_model::BatchError> {
    let builder = BatchBuilder::new(Compression::None)
        .producer(
            spate_model::ProducerId(producer.0),
            spate_model::ProducerEpoch(producer.1),
            spate_model::Sequence(-1),
        )
        .transactional(true);
    build(builder, entries, now_ms)
}

/// Entries of open transactions, by producer id.
pub type Pending = std::collections::HashMap<i64, Vec<Entry>>;

/// Every entry in `log`, oldest first (a transaction's entries where its commit marker
/// is; an aborted transaction's not at all), and the entries of transactions still open.
/// A batch that cannot be read is skipped with a log line (the storage engine already
/// refuses to serve corrupt data).
pub async fn replay(log: &PartitionLog) -> Result<(Vec<Entry>, Pending), spate_storage::LogError> {
    let mut entries = Vec::new();
    let mut pending = Pending::new();
    let mut next = log.log_start_offset();
    let end = log.durable_offset();
    while next < end {
        let read = log.read(next, REPLAY_READ_BYTES, end).await?;
        if read.bytes.is_empty() {
            break;
        }
        let mut advanced = false;
        for bytes in spate_model::batch::BatchSplitter::new(&read.bytes) {
            let batch = match bytes
                .map_err(|e| e.to_string())
                .and_then(|b| RecordBatch::validate(b).map_err(|e| e.to_string()))
            {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::error!(%error, dir = %log.dir().display(), "an offsets batch cannot be read; skipped");
                    break;
                }
            };
            next = Offset(batch.header().last_offset().get() + 1).max(next);
            advanced = true;
            let header = batch.header();
            if header.is_control() {
                let open = pending.remove(&header.producer_id().get());
                if crate::producers::control_type(&batch) == Some(true) {
                    entries.extend(open.into_iter().flatten());
                }
                continue;
            }
            let records = match batch.records() {
                Ok(records) => records,
                Err(error) => {
                    tracing::error!(%error, "an offsets batch is compressed; skipped");
                    continue;
                }
            };
            let into = if header.is_transactional() {
                pending.entry(header.producer_id().get()).or_default()
            } else {
                &mut entries
            };
            for record in records.flatten() {
                if let Some(entry) = record.key.and_then(|key| Entry::decode(key, record.value)) {
                    into.push(entry);
                }
            }
        }
        if !advanced {
            break;
        }
    }
    Ok((entries, pending))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn entries_round_trip_through_kafka_formats() {
        let entries = [
            Entry::Offset {
                group: "g".into(),
                topic: "orders".into(),
                partition: 3,
                committed: Some(Committed {
                    offset: 42,
                    leader_epoch: 7,
                    metadata: "m".into(),
                    commit_timestamp: 1_700_000_000_000,
                }),
            },
            Entry::Offset {
                group: "g".into(),
                topic: "orders".into(),
                partition: 4,
                committed: None,
            },
            Entry::Group {
                group: "g".into(),
                deleted: true,
            },
        ];
        for entry in entries {
            let (key, value) = entry.encode();
            assert_eq!(Entry::decode(&key, value.as_deref()), Some(entry));
        }
        // Kafka's layout: version, then length-prefixed strings.
        let (key, _) = Entry::Group {
            group: "ab".into(),
            deleted: true,
        }
        .encode();
        assert_eq!(key, [0, 2, 0, 2, b'a', b'b']);
        assert_eq!(
            Entry::decode(&[0, 9, 1], None),
            None,
            "unknown versions are skipped"
        );
        assert_eq!(
            Entry::decode(&[0, 1, 0, 5, b'a'], None),
            None,
            "truncated keys too"
        );
    }
}
