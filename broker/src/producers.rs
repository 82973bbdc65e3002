//! Idempotent producers' state, per partition on its owner shard: for each producer id its
//! epoch and its last five batches' sequence ranges with their offsets. A batch that repeats
//! one of them is a retry: it gets the original offset and nothing is written. A sequence
//! gap is OUT_OF_ORDER_SEQUENCE_NUMBER, an older epoch INVALID_PRODUCER_EPOCH.
//!
//! The state survives restarts: every few seconds (and at shutdown) each partition's owner
//! writes a snapshot of it as of the durable offset (`producer.snapshot` in the partition's
//! directory), and at start-up the state is the snapshot plus the batches written after it.

use crate::topics::PartitionLog;
use serde::{Deserialize, Serialize};
use spate_model::batch::BatchSplitter;
use spate_model::{Offset, RecordBatch};
use spate_storage::disk::glommio::GlommioDisk;
use spate_storage::disk::Disk;
use std::collections::{HashMap, VecDeque};

/// The snapshot's file name in a partition's directory.
pub const SNAPSHOT_FILE: &str = "producer.snapshot";
/// Bytes read at a time while replaying the batches after a snapshot.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// Batches remembered per producer (Kafka's `max.in.flight.requests.per.connection` limit
/// for idempotence).
pub const KEPT_BATCHES: usize = 5;
/// Producers remembered per partition; beyond it the least recently used is forgotten.
pub const MAX_PRODUCERS_PER_PARTITION: usize = 10_000;
/// OUT_OF_ORDER_SEQUENCE_NUMBER.
pub const OUT_OF_ORDER_SEQUENCE_NUMBER: i16 = 45;
/// INVALID_PRODUCER_EPOCH.
pub const INVALID_PRODUCER_EPOCH: i16 = 47;

/// What to do with an idempotent batch.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Verdict {
    /// Append it.
    Append,
    /// A retry of a batch written at this base offset: answer with it, write nothing.
    Duplicate(i64),
    /// Refuse it with this error code and message.
    Reject(i16, String),
}

#[derive(Debug)]
struct Producer {
    epoch: i16,
    /// (first sequence, last sequence, base offset), oldest first.
    batches: VecDeque<(i32, i32, i64)>,
    last_used: u64,
}

/// One partition's producers.
#[derive(Debug, Default)]
pub struct PartitionProducers {
    producers: HashMap<i64, Producer>,
    clock: u64,
    /// Changed since the last snapshot.
    dirty: bool,
}

/// One producer in a snapshot: (id, epoch, [(first sequence, last sequence, base offset)]).
type SnapshotEntry = (i64, i16, Vec<(i32, i32, i64)>);

/// A snapshot: the state of every producer as of `offset` (batches below it).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Snapshot {
    offset: i64,
    producers: Vec<SnapshotEntry>,
}

fn after(sequence: i32) -> i32 {
    if sequence == i32::MAX {
        0
    } else {
        sequence + 1
    }
}

impl PartitionProducers {
    /// Judges a batch from producer `id` at `epoch` holding sequences `first..=last`.
    pub fn check(&self, id: i64, epoch: i16, first: i32, last: i32) -> Verdict {
        let Some(producer) = self.producers.get(&id) else {
            return Verdict::Append;
        };
        if epoch < producer.epoch {
            return Verdict::Reject(
                INVALID_PRODUCER_EPOCH,
                format!(
                    "epoch {epoch} is older than the producer's {}",
                    producer.epoch
                ),
            );
        }
        if epoch > producer.epoch {
            return if first == 0 {
                Verdict::Append
            } else {
                Verdict::Reject(
                    OUT_OF_ORDER_SEQUENCE_NUMBER,
                    format!("a new epoch starts at sequence 0, not {first}"),
                )
            };
        }
        if let Some(&(_, _, offset)) = producer
            .batches
            .iter()
            .find(|(f, l, _)| *f == first && *l == last)
        {
            return Verdict::Duplicate(offset);
        }
        let expected = producer.batches.back().map_or(0, |(_, l, _)| after(*l));
        if first == expected {
            Verdict::Append
        } else {
            Verdict::Reject(
                OUT_OF_ORDER_SEQUENCE_NUMBER,
                format!("expected sequence {expected}, got {first}"),
            )
        }
    }

    /// The state as of `offset`: batches at or past it are left out (they may not be
    /// durable yet; replay finds them again).
    fn snapshot(&self, offset: i64) -> Snapshot {
        let producers = self
            .producers
            .iter()
            .map(|(id, p)| {
                let kept = p.batches.iter().filter(|b| b.2 < offset).copied().collect();
                (*id, p.epoch, kept)
            })
            .collect();
        Snapshot { offset, producers }
    }

    /// Records a batch appended at `base_offset`.
    pub fn record(&mut self, id: i64, epoch: i16, first: i32, last: i32, base_offset: i64) {
        self.clock += 1;
        self.dirty = true;
        if !self.producers.contains_key(&id) && self.producers.len() >= MAX_PRODUCERS_PER_PARTITION
        {
            let oldest = self
                .producers
                .iter()
                .min_by_key(|(_, p)| p.last_used)
                .map(|(id, _)| *id);
            if let Some(oldest) = oldest {
                self.producers.remove(&oldest);
            }
        }
        let producer = self.producers.entry(id).or_insert(Producer {
            epoch,
            batches: VecDeque::new(),
            last_used: 0,
        });
        if epoch != producer.epoch {
            producer.epoch = epoch;
            producer.batches.clear();
        }
        producer.last_used = self.clock;
        producer.batches.push_back((first, last, base_offset));
        while producer.batches.len() > KEPT_BATCHES {
            producer.batches.pop_front();
        }
    }
}

/// An idempotent batch's producer id, epoch and first and last sequences (sequences wrap
/// after `i32::MAX`, as Kafka's do).
pub fn idempotence(batch: &RecordBatch<'_>) -> Option<(i64, i16, i32, i32)> {
    let header = batch.header();
    let id = header.producer_id().get();
    if id < 0 {
        return None;
    }
    let first = header.base_sequence().get();
    let delta = header.last_offset_delta();
    let last = if first > i32::MAX - delta {
        delta - (i32::MAX - first) - 1
    } else {
        first + delta
    };
    Some((id, header.producer_epoch().get(), first, last))
}

/// Snapshots every producer state of `broker`'s partitions that changed since its last
/// snapshot, as of each log's durable offset (maintenance, and shutdown).
pub async fn save_changed(broker: &crate::api::Broker) {
    let changed: Vec<(uuid::Uuid, i32)> = broker
        .producers
        .borrow()
        .iter()
        .filter(|(_, state)| state.dirty)
        .map(|(key, _)| *key)
        .collect();
    for key in changed {
        let Some(log) = broker.logs.get(key.0, key.1) else {
            // The partition went away.
            broker.producers.borrow_mut().remove(&key);
            continue;
        };
        let bytes = {
            let mut producers = broker.producers.borrow_mut();
            let Some(state) = producers.get_mut(&key) else {
                continue;
            };
            state.dirty = false;
            serde_json::to_vec(&state.snapshot(log.durable_offset().get()))
        };
        let written = match bytes {
            Ok(bytes) => broker
                .logs
                .disk()
                .write_atomically(&log.dir().join(SNAPSHOT_FILE), &bytes)
                .await
                .map_err(|e| e.to_string()),
            Err(e) => Err(e.to_string()),
        };
        if let Err(error) = written {
            tracing::error!(dir = %log.dir().display(), %error, "producer snapshot failed");
            if let Some(state) = broker.producers.borrow_mut().get_mut(&key) {
                state.dirty = true;
            }
        }
    }
}

/// Loads the producer state of every partition this shard owns (start-up).
pub async fn restore(broker: &crate::api::Broker) -> Result<(), spate_storage::LogError> {
    let topics = broker.topics.snapshot();
    for topic in topics.values() {
        for partition in 0..topic.partition_count() {
            if topic.owner(partition) != Some(broker.shard) {
                continue;
            }
            let Some(log) = broker.logs.get(topic.id, partition) else {
                continue;
            };
            let state = load(broker.logs.disk(), &log).await?;
            if !state.producers.is_empty() {
                broker
                    .producers
                    .borrow_mut()
                    .insert((topic.id, partition), state);
            }
        }
    }
    Ok(())
}

/// The producers of `log`: its snapshot (if any) plus the batches after it. A snapshot that
/// cannot be read is ignored (the whole log is replayed instead).
pub async fn load(
    disk: &GlommioDisk,
    log: &PartitionLog,
) -> Result<PartitionProducers, spate_storage::LogError> {
    let path = log.dir().join(SNAPSHOT_FILE);
    let snapshot: Snapshot = match disk.read_small(&path).await {
        Ok(Some(bytes)) => serde_json::from_slice(&bytes).unwrap_or_else(|error| {
            tracing::warn!(path = %path.display(), %error, "unreadable producer snapshot ignored");
            Snapshot::default()
        }),
        Ok(None) => Snapshot::default(),
        Err(error) => {
            tracing::warn!(path = %path.display(), %error, "unreadable producer snapshot ignored");
            Snapshot::default()
        }
    };
    let mut state = PartitionProducers::default();
    for (id, epoch, batches) in snapshot.producers {
        for (first, last, base) in batches {
            state.record(id, epoch, first, last, base);
        }
    }
    // The batches after the snapshot (all of them without one).
    let end = log.durable_offset();
    let mut next = Offset(snapshot.offset).max(log.log_start_offset());
    while next < end {
        let read = log.read(next, REPLAY_READ_BYTES, end).await?;
        let before = next;
        for bytes in BatchSplitter::new(&read.bytes) {
            let Ok(batch) = bytes
                .map_err(|_| ())
                .and_then(|b| RecordBatch::validate(b).map_err(|_| ()))
            else {
                break;
            };
            let header = batch.header();
            next = Offset(header.last_offset().get() + 1);
            if header.base_offset() < Offset(snapshot.offset) {
                continue;
            }
            if let Some((id, epoch, first, last)) = idempotence(&batch) {
                state.record(id, epoch, first, last, header.base_offset().get());
            }
        }
        if next <= before {
            break;
        }
    }
    Ok(state)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn snapshots_leave_out_batches_not_yet_durable() {
        let mut state = PartitionProducers::default();
        state.record(7, 0, 0, 4, 100);
        state.record(7, 0, 5, 9, 105);
        let snapshot = state.snapshot(105);
        assert_eq!(snapshot.offset, 105);
        assert_eq!(snapshot.producers, [(7, 0, vec![(0, 4, 100)])]);
    }

    #[test]
    fn retries_are_recognised_gaps_and_old_epochs_refused() {
        let mut state = PartitionProducers::default();
        assert_eq!(state.check(7, 0, 0, 4), Verdict::Append, "a new producer");
        state.record(7, 0, 0, 4, 100);
        assert_eq!(state.check(7, 0, 5, 9), Verdict::Append);
        state.record(7, 0, 5, 9, 105);
        assert_eq!(state.check(7, 0, 0, 4), Verdict::Duplicate(100), "a retry");
        assert_eq!(state.check(7, 0, 5, 9), Verdict::Duplicate(105));
        assert!(matches!(
            state.check(7, 0, 11, 12),
            Verdict::Reject(OUT_OF_ORDER_SEQUENCE_NUMBER, _)
        ));
        assert_eq!(
            state.check(7, 1, 0, 0),
            Verdict::Append,
            "a bumped epoch restarts at 0"
        );
        assert!(matches!(
            state.check(7, 1, 3, 3),
            Verdict::Reject(OUT_OF_ORDER_SEQUENCE_NUMBER, _)
        ));
        state.record(7, 1, 0, 0, 110);
        assert!(matches!(
            state.check(7, 0, 10, 10),
            Verdict::Reject(INVALID_PRODUCER_EPOCH, _)
        ));
        // Only the last five batches are remembered.
        for i in 1..=6 {
            state.record(7, 1, i, i, 110 + i64::from(i));
        }
        assert_eq!(state.check(7, 1, 6, 6), Verdict::Duplicate(116));
        assert!(matches!(
            state.check(7, 1, 1, 1),
            Verdict::Reject(OUT_OF_ORDER_SEQUENCE_NUMBER, _)
        ));
        // Sequences wrap after i32::MAX.
        state.record(8, 0, i32::MAX - 1, i32::MAX, 200);
        assert_eq!(state.check(8, 0, 0, 3), Verdict::Append);
    }
}
