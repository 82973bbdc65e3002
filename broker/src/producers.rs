//! Idempotent producers' state, per partition on its owner shard: for each producer id its
//! epoch and its last five batches' sequence ranges with their offsets. A batch that repeats
//! one of them is a retry: it gets the original offset and nothing is written. A sequence
//! gap is OUT_OF_ORDER_SEQUENCE_NUMBER, an older epoch INVALID_PRODUCER_EPOCH.
//!
//! Transactions: a transactional producer's first batch in a partition opens its
//! transaction there; the coordinator's marker (a control batch) closes it. The last stable
//! offset (LSO) is the first offset of the oldest open transaction (or the high watermark);
//! aborted transactions are remembered (producer, first offset, marker offset) so that
//! `read_committed` fetches can name them, until the log start passes their marker.
//!
//! The state survives restarts: every few seconds (and at shutdown) each partition's owner
//! writes a snapshot of it as of the durable offset (`producer.snapshot` in the partition's
//! directory), and at start-up the state is the snapshot plus the batches written after it.

use crate::topics::PartitionLog;
use serde::{Deserialize, Serialize};
use spate_model::batch::{BatchSplitter, ControlType};
use spate_model::{Offset, RecordBatch};
use spate_storage::disk::glommio::GlommioDisk;
use spate_storage::disk::Disk;
use std::collections::{BTreeMap, HashMap, VecDeque};

/// The snapshot's file name in a partition's directory.
pub const SNAPSHOT_FILE: &str = "producer.snapshot";
/// Bytes read at a time while replaying the batches after a snapshot.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// Batches remembered per producer (Kafka's `max.in.flight.requests.per.connection` limit
/// for idempotence).
pub const KEPT_BATCHES: usize = 5;
/// Producers remembered per partition; beyond it the least recently used is forgotten.
pub const MAX_PRODUCERS_PER_PARTITION: usize = 10_000;
/// `producer.id.expiration.ms`: a producer that has written nothing for this long (and has
/// no open transaction) is forgotten by the partition.
pub const PRODUCER_ID_EXPIRATION_MS: i64 = 24 * 3600 * 1000;
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
    /// When it last wrote here (ms since the epoch; the restart time for replayed state).
    last_ms: i64,
}

/// One partition's producers.
#[derive(Debug, Default)]
pub struct PartitionProducers {
    producers: HashMap<i64, Producer>,
    clock: u64,
    /// Changed since the last snapshot.
    dirty: bool,
    /// Open transactions: producer id → first offset.
    ongoing: BTreeMap<i64, i64>,
    /// Aborted transactions (producer id, first offset, marker offset), in marker order.
    aborted: Vec<(i64, i64, i64)>,
    /// Committed transactions whose marker a saved snapshot may not cover yet (a snapshot
    /// as of an offset inside one records it as open).
    committed: Vec<(i64, i64, i64)>,
}

/// One producer in a snapshot: (id, epoch, [(first sequence, last sequence, base offset)]).
type SnapshotEntry = (i64, i16, Vec<(i32, i32, i64)>);

/// A snapshot: the state of every producer as of `offset` (batches below it).
#[derive(Debug, Default, Serialize, Deserialize)]
struct Snapshot {
    offset: i64,
    producers: Vec<SnapshotEntry>,
    /// Open transactions: (producer id, first offset).
    #[serde(default)]
    ongoing: Vec<(i64, i64)>,
    /// Aborted transactions: (producer id, first offset, marker offset).
    #[serde(default)]
    aborted: Vec<(i64, i64, i64)>,
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
    /// durable yet; replay finds them again), and a transaction whose marker is at or past
    /// it is still open.
    fn snapshot(&self, offset: i64) -> Snapshot {
        let producers = self
            .producers
            .iter()
            .map(|(id, p)| {
                let kept = p.batches.iter().filter(|b| b.2 < offset).copied().collect();
                (*id, p.epoch, kept)
            })
            .collect();
        let ended_later = self
            .aborted
            .iter()
            .chain(&self.committed)
            .filter(|&&(_, first, marker)| first < offset && marker >= offset)
            .map(|&(id, first, _)| (id, first));
        let ongoing = self
            .ongoing
            .iter()
            .filter(|&(_, first)| *first < offset)
            .map(|(id, first)| (*id, *first))
            .chain(ended_later)
            .collect();
        let aborted = self
            .aborted
            .iter()
            .filter(|a| a.2 < offset)
            .copied()
            .collect();
        Snapshot {
            offset,
            producers,
            ongoing,
            aborted,
        }
    }

    /// Whether there is nothing to remember.
    fn is_empty(&self) -> bool {
        self.producers.is_empty() && self.ongoing.is_empty() && self.aborted.is_empty()
    }

    /// Notes a transactional batch of producer `id` appended at `offset`: it opens the
    /// producer's transaction here unless one is open.
    pub fn transactional(&mut self, id: i64, offset: i64) {
        self.dirty = true;
        self.ongoing.entry(id).or_insert(offset);
    }

    /// Notes the marker of producer `id` at `epoch` written at `offset`: its open
    /// transaction ends (committed or aborted), and a newer epoch fences the older one.
    pub fn marker(&mut self, id: i64, epoch: i16, commit: bool, offset: i64) {
        self.fence(id, epoch);
        if let Some(first) = self.ongoing.remove(&id) {
            if commit {
                self.committed.push((id, first, offset));
            } else {
                self.aborted.push((id, first, offset));
            }
        }
    }

    /// Raises producer `id`'s epoch to `epoch` (its batches at older epochs are refused
    /// from now on).
    fn fence(&mut self, id: i64, epoch: i16) {
        self.dirty = true;
        let clock = self.clock;
        let producer = self.producers.entry(id).or_insert(Producer {
            epoch,
            batches: VecDeque::new(),
            last_used: clock,
            last_ms: crate::now_ms(),
        });
        if epoch > producer.epoch {
            producer.epoch = epoch;
            producer.batches.clear();
        }
    }

    /// Every producer remembered: (id, epoch, last sequence or -1, first offset of its open
    /// transaction or -1), by id (DescribeProducers).
    pub fn describe(&self) -> Vec<(i64, i16, i32, i64)> {
        let mut described: Vec<_> = self
            .producers
            .iter()
            .map(|(id, p)| {
                let last = p.batches.back().map_or(-1, |b| b.1);
                let open = self.ongoing.get(id).copied().unwrap_or(-1);
                (*id, p.epoch, last, open)
            })
            .collect();
        described.sort_unstable();
        described
    }

    /// Forgets producers idle for more than `idle_ms` at `now_ms` (`producer.id.expiration.ms`)
    /// that have no open transaction; returns how many.
    pub fn expire(&mut self, now_ms: i64, idle_ms: i64) -> usize {
        let before = self.producers.len();
        let ongoing = &self.ongoing;
        self.producers.retain(|id, p| {
            ongoing.contains_key(id) || now_ms.saturating_sub(p.last_ms) <= idle_ms
        });
        let expired = before - self.producers.len();
        self.dirty |= expired > 0;
        expired
    }

    /// Whether producer `id` has an open transaction here.
    pub fn in_transaction(&self, id: i64) -> bool {
        self.ongoing.contains_key(&id)
    }

    /// The first offset of the oldest open transaction.
    pub fn first_unstable(&self) -> Option<i64> {
        self.ongoing.values().min().copied()
    }

    /// The aborted transactions a read of `from..to` must be told about: (producer id,
    /// first offset) of those whose records overlap it.
    pub fn aborted_within(&self, from: i64, to: i64) -> Vec<(i64, i64)> {
        self.aborted
            .iter()
            .filter(|&&(_, first, marker)| first < to && marker >= from)
            .map(|&(id, first, _)| (id, first))
            .collect()
    }

    /// Forgets what a snapshot as of `offset` now holds, and aborted transactions wholly
    /// before the log start.
    fn saved(&mut self, offset: i64, log_start: i64) {
        self.committed.retain(|c| c.2 >= offset);
        self.aborted.retain(|a| a.2 >= log_start);
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
            last_ms: 0,
        });
        if epoch != producer.epoch {
            producer.epoch = epoch;
            producer.batches.clear();
        }
        producer.last_used = self.clock;
        producer.last_ms = crate::now_ms();
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
    let first = header.base_sequence().get();
    if id < 0 || first < 0 || header.is_control() {
        return None;
    }
    let delta = header.last_offset_delta();
    let last = if first > i32::MAX - delta {
        delta - (i32::MAX - first) - 1
    } else {
        first + delta
    };
    Some((id, header.producer_epoch().get(), first, last))
}

/// Applies one batch read back from the log to `state` (recovery).
fn replay_batch(state: &mut PartitionProducers, batch: &RecordBatch<'_>) {
    let header = batch.header();
    let base = header.base_offset().get();
    if header.is_control() {
        let id = header.producer_id().get();
        if let Some(commit) = control_type(batch) {
            state.marker(id, header.producer_epoch().get(), commit, base);
        }
        return;
    }
    if let Some((id, epoch, first, last)) = idempotence(batch) {
        state.record(id, epoch, first, last, base);
    }
    if header.is_transactional() && header.producer_id().get() >= 0 {
        state.transactional(header.producer_id().get(), base);
    }
}

/// A control batch's marker: `Some(true)` commit, `Some(false)` abort, `None` for another
/// kind or a batch that cannot be read.
pub fn control_type(batch: &RecordBatch<'_>) -> Option<bool> {
    let record = batch.records().ok()?.next()?.ok()?;
    match ControlType::from_key(record.key?)? {
        ControlType::Commit => Some(true),
        ControlType::Abort => Some(false),
        ControlType::Other(_) => None,
    }
}

/// Writes the marker ending producer `id`'s transaction (committed or aborted) to `log`,
/// the partition `key` of topic `topic`, on its owner shard, and waits until it is durable.
/// The marker's epoch fences older ones; on an offsets partition, the transaction's
/// pending offsets are applied or dropped.
pub async fn write_marker(
    broker: &crate::api::Broker,
    key: (uuid::Uuid, i32),
    topic: &str,
    log: &PartitionLog,
    id: i64,
    epoch: i16,
    commit: bool,
) -> Result<(), String> {
    let mut control_key = Vec::with_capacity(4);
    control_key.extend_from_slice(&0_i16.to_be_bytes());
    control_key.extend_from_slice(&i16::from(commit).to_be_bytes());
    // Value: int16 version, int32 coordinator epoch (this node's coordinators never move).
    let mut value = Vec::with_capacity(6);
    value.extend_from_slice(&0_i16.to_be_bytes());
    value.extend_from_slice(&0_i32.to_be_bytes());
    let mut builder = spate_model::batch::BatchBuilder::new(spate_model::Compression::None)
        .producer(
            spate_model::ProducerId(id),
            spate_model::ProducerEpoch(epoch),
            spate_model::Sequence(-1),
        )
        .transactional(true)
        .control(true);
    builder
        .push(&spate_model::batch::BuilderRecord {
            timestamp_ms: crate::now_ms(),
            key: Some(&control_key),
            value: Some(&value),
            headers: &[],
        })
        .map_err(|e| e.to_string())?;
    let bytes = builder.build().map_err(|e| e.to_string())?;
    let batch = RecordBatch::validate(&bytes).map_err(|e| e.to_string())?;
    let appended = crate::api::append_batch(broker, log, &batch)
        .await
        .map_err(|(_, message)| message)?;
    broker
        .producers
        .borrow_mut()
        .entry(key)
        .or_default()
        .marker(id, epoch, commit, appended.base_offset.get());
    if topic == crate::groups::OFFSETS_TOPIC {
        broker.groups.end_transaction(key.1, id, commit);
    }
    log.flush().await.map(|_| ()).map_err(|e| e.to_string())
}

/// The last stable offset of partition `key` (its `log`, on its owner shard): the first
/// offset of its oldest open transaction, or the high watermark.
pub fn last_stable_offset(
    broker: &crate::api::Broker,
    key: (uuid::Uuid, i32),
    log: &PartitionLog,
) -> Offset {
    let high_watermark = log.durable_offset();
    broker
        .producers
        .borrow()
        .get(&key)
        .and_then(PartitionProducers::first_unstable)
        .map_or(high_watermark, |first| Offset(first).min(high_watermark))
}

/// Producer `id`'s epoch in `state`, if it is known there.
pub fn epoch_of(state: Option<&PartitionProducers>, id: i64) -> Option<i16> {
    state?.producers.get(&id).map(|p| p.epoch)
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
            let offset = log.durable_offset().get();
            let bytes = serde_json::to_vec(&state.snapshot(offset));
            if bytes.is_ok() {
                // Kept in memory until the file is written; an error marks it dirty again.
                state.saved(offset, log.log_start_offset().get());
            }
            bytes
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
            if !state.is_empty() {
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
        state.fence(id, epoch);
        for (first, last, base) in batches {
            state.record(id, epoch, first, last, base);
        }
    }
    state.ongoing.extend(snapshot.ongoing);
    state.aborted = snapshot.aborted;
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
            replay_batch(&mut state, &batch);
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
    fn open_transactions_hold_the_stable_offset_and_aborts_are_remembered() {
        let mut state = PartitionProducers::default();
        assert_eq!(state.first_unstable(), None);
        state.transactional(7, 10);
        state.transactional(7, 12); // a later batch of the same transaction
        state.transactional(8, 11);
        assert_eq!(state.first_unstable(), Some(10));
        assert!(state.in_transaction(7));
        state.marker(7, 0, false, 13);
        assert_eq!(state.first_unstable(), Some(11));
        assert!(!state.in_transaction(7));
        state.marker(8, 0, true, 14);
        assert_eq!(state.first_unstable(), None);
        assert_eq!(state.aborted_within(0, 20), [(7, 10)]);
        assert_eq!(
            state.aborted_within(13, 20),
            [(7, 10)],
            "the marker is in range"
        );
        assert_eq!(state.aborted_within(14, 20), [], "wholly before the read");
        assert_eq!(state.aborted_within(0, 10), [], "wholly after the read");

        // A snapshot inside a transaction records it as open; one past its marker does not.
        let inside = state.snapshot(12);
        assert_eq!(inside.ongoing, [(7, 10), (8, 11)]);
        assert!(inside.aborted.is_empty());
        let after = state.snapshot(15);
        assert!(after.ongoing.is_empty());
        assert_eq!(after.aborted, [(7, 10, 13)]);

        // A marker at a newer epoch fences the producer's older batches.
        state.record(9, 0, 0, 0, 20);
        state.marker(9, 1, false, 21);
        assert!(matches!(
            state.check(9, 0, 1, 1),
            Verdict::Reject(INVALID_PRODUCER_EPOCH, _)
        ));
        assert_eq!(state.check(9, 1, 0, 0), Verdict::Append);
        // Saving forgets committed transactions the snapshot covers, and aborted ones
        // wholly before the log start.
        state.saved(15, 13);
        assert!(state.committed.is_empty());
        assert_eq!(state.aborted.len(), 1);
        state.saved(22, 22);
        assert!(state.aborted.is_empty());
    }

    #[test]
    fn idle_producers_expire_unless_a_transaction_is_open() {
        let mut state = PartitionProducers::default();
        state.record(1, 0, 0, 0, 10);
        state.record(2, 0, 0, 0, 11);
        state.transactional(2, 11);
        let now = crate::now_ms();
        assert_eq!(state.expire(now, PRODUCER_ID_EXPIRATION_MS), 0);
        let later = now + PRODUCER_ID_EXPIRATION_MS + 1;
        assert_eq!(state.expire(later, PRODUCER_ID_EXPIRATION_MS), 1);
        assert_eq!(
            state.check(1, 0, 5, 5),
            Verdict::Append,
            "forgotten: a new producer"
        );
        assert_eq!(state.check(2, 0, 0, 0), Verdict::Duplicate(11), "kept");
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
