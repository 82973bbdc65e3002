//! Idempotent producers' state, per partition on its owner shard: for each producer id its
//! epoch and its last five batches' sequence ranges with their offsets. A batch that repeats
//! one of them is a retry: it gets the original offset and nothing is written. A sequence
//! gap is OUT_OF_ORDER_SEQUENCE_NUMBER, an older epoch INVALID_PRODUCER_EPOCH.
//!
//! The state lives in memory only so far: after a restart a producer's first batch is
//! accepted whatever its sequence (as for a producer id the partition has not seen), so a
//! retry that crosses a broker restart can be written twice.

use std::collections::{HashMap, VecDeque};

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

    /// Records a batch appended at `base_offset`.
    pub fn record(&mut self, id: i64, epoch: i16, first: i32, last: i32, base_offset: i64) {
        self.clock += 1;
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

#[cfg(test)]
mod tests {
    use super::*;

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
