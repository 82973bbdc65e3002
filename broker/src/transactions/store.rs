//! The records the transaction coordinator keeps in `__transaction_state`, in Kafka's own
//! formats (TransactionLogKey version 0: the transactional id; TransactionLogValue version
//! 0: producer id and epoch, timeout, status, partitions, update and start times). A null
//! value removes an expired transactional id. The last record of an id is its state.

use super::{Status, Txn};
use crate::groups::store::{get_string, put_string};
use crate::topics::PartitionLog;
use bytes::{Buf, BufMut};
use spate_model::batch::{BatchBuilder, BatchSplitter, BuilderRecord};
use spate_model::{Compression, Offset, RecordBatch};
use std::collections::{BTreeMap, BTreeSet};

const KEY_VERSION: i16 = 0;
const VALUE_VERSION: i16 = 0;
/// Bytes read from the log at a time while replaying.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// The record key of transactional id `id`.
pub fn key(id: &str) -> Vec<u8> {
    let mut key = Vec::with_capacity(4 + id.len());
    key.put_i16(KEY_VERSION);
    put_string(&mut key, id);
    key
}

/// The record value of `txn`.
pub fn value(txn: &Txn) -> Vec<u8> {
    let mut value = Vec::with_capacity(64);
    value.put_i16(VALUE_VERSION);
    value.put_i64(txn.producer_id);
    value.put_i16(txn.producer_epoch);
    value.put_i32(txn.timeout_ms);
    value.put_i8(txn.status as i8);
    let mut by_topic: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
    for (topic, partition) in &txn.partitions {
        by_topic.entry(topic).or_default().push(*partition);
    }
    value.put_i32(i32::try_from(by_topic.len()).unwrap_or(i32::MAX));
    for (topic, partitions) in by_topic {
        put_string(&mut value, topic);
        value.put_i32(i32::try_from(partitions.len()).unwrap_or(i32::MAX));
        for partition in partitions {
            value.put_i32(partition);
        }
    }
    value.put_i64(txn.updated_ms);
    value.put_i64(txn.started_ms);
    value
}

/// Decodes a record: the transactional id and its state (`None` for a removal). `None`
/// for bytes this broker cannot read.
pub fn decode(mut key: &[u8], value: Option<&[u8]>) -> Option<(String, Option<Txn>)> {
    if key.remaining() < 2 || key.get_i16() != KEY_VERSION {
        return None;
    }
    let id = get_string(&mut key)?;
    let Some(mut value) = value else {
        return Some((id, None));
    };
    if value.remaining() < 2 + 8 + 2 + 4 + 1 + 4 {
        return None;
    }
    // Version 1 adds only tagged fields, after the version-0 ones.
    let _version = value.get_i16();
    let producer_id = value.get_i64();
    let producer_epoch = value.get_i16();
    let timeout_ms = value.get_i32();
    let status = Status::from_code(value.get_i8())?;
    let topics = value.get_i32();
    let mut partitions = BTreeSet::new();
    for _ in 0..topics.max(0) {
        let topic = get_string(&mut value)?;
        if value.remaining() < 4 {
            return None;
        }
        let count = value.get_i32();
        if value.remaining() < 4 * usize::try_from(count.max(0)).ok()? {
            return None;
        }
        for _ in 0..count.max(0) {
            partitions.insert((topic.clone(), value.get_i32()));
        }
    }
    if value.remaining() < 16 {
        return None;
    }
    let updated_ms = value.get_i64();
    let started_ms = value.get_i64();
    Some((
        id,
        Some(Txn {
            producer_id,
            producer_epoch,
            timeout_ms,
            status,
            partitions,
            updated_ms,
            started_ms,
        }),
    ))
}

/// Appends the state of `id` (`None`: its removal) to the state partition `log` and waits
/// until it is durable.
pub async fn write(log: &PartitionLog, id: &str, txn: Option<&Txn>) -> Result<(), String> {
    let key = key(id);
    let value = txn.map(value);
    let mut builder = BatchBuilder::new(Compression::None);
    builder
        .push(&BuilderRecord {
            timestamp_ms: crate::now_ms(),
            key: Some(&key),
            value: value.as_deref(),
            headers: &[],
        })
        .map_err(|e| e.to_string())?;
    let bytes = builder.build().map_err(|e| e.to_string())?;
    let batch = RecordBatch::validate(&bytes).map_err(|e| e.to_string())?;
    log.append(&batch, spate_model::LeaderEpoch(0))
        .map_err(|e| e.to_string())?;
    log.flush().await.map(|_| ()).map_err(|e| e.to_string())
}

/// The last state of every transactional id in `log` (start-up).
pub async fn replay(log: &PartitionLog) -> Result<BTreeMap<String, Txn>, spate_storage::LogError> {
    let mut txns = BTreeMap::new();
    let mut next = log.log_start_offset();
    let end = log.durable_offset();
    while next < end {
        let read = log.read(next, REPLAY_READ_BYTES, end).await?;
        let mut advanced = false;
        for bytes in BatchSplitter::new(&read.bytes) {
            let batch = match bytes
                .map_err(|e| e.to_string())
                .and_then(|b| RecordBatch::validate(b).map_err(|e| e.to_string()))
            {
                Ok(batch) => batch,
                Err(error) => {
                    tracing::error!(%error, dir = %log.dir().display(), "a transaction state batch cannot be read; skipped");
                    break;
                }
            };
            next = Offset(batch.header().last_offset().get() + 1).max(next);
            advanced = true;
            let Ok(records) = batch.records() else {
                tracing::error!(dir = %log.dir().display(), "a transaction state batch is compressed; skipped");
                continue;
            };
            for record in records.flatten() {
                match record.key.and_then(|key| decode(key, record.value)) {
                    Some((id, Some(txn))) => {
                        txns.insert(id, txn);
                    }
                    Some((id, None)) => {
                        txns.remove(&id);
                    }
                    None => {}
                }
            }
        }
        if !advanced {
            break;
        }
    }
    Ok(txns)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn states_round_trip_through_kafka_formats() {
        let txn = Txn {
            producer_id: 4001,
            producer_epoch: 7,
            timeout_ms: 60_000,
            status: Status::PrepareCommit,
            partitions: [
                ("b".to_string(), 2),
                ("a".to_string(), 1),
                ("b".to_string(), 0),
            ]
            .into_iter()
            .collect(),
            updated_ms: 1_700_000_000_123,
            started_ms: 1_700_000_000_000,
        };
        let bytes = value(&txn);
        let decoded = decode(&key("tx-1"), Some(&bytes));
        assert_eq!(decoded, Some(("tx-1".to_string(), Some(txn))));
        // Kafka's layout: version, producer id, epoch, timeout, status, then the topics.
        assert_eq!(&bytes[..2], &[0, 0]);
        assert_eq!(&bytes[2..10], &4001_i64.to_be_bytes());
        assert_eq!(bytes[16], Status::PrepareCommit as u8);
        assert_eq!(&bytes[17..21], &2_i32.to_be_bytes(), "two topics");
        assert_eq!(decode(&key("gone"), None), Some(("gone".to_string(), None)));
        assert_eq!(decode(&key("x"), Some(&bytes[..20])), None, "truncated");
        assert_eq!(
            decode(&[0, 1, 0, 1, b'x'], None),
            None,
            "another key version"
        );
    }
}
