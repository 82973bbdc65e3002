//! The leader-epoch cache: for each leader epoch, the first offset written in it — Kafka's
//! `leader-epoch-checkpoint`, in its text format:
//!
//! ```text
//! 0            version
//! 2            number of entries
//! 3 0          epoch start-offset
//! 5 1200
//! ```
//!
//! OffsetForLeaderEpoch answers from it (where did epoch E end?), and replication truncates a
//! diverged follower with it.

use spate_model::{LeaderEpoch, Offset};

/// Name of the checkpoint file in a log directory.
pub const LEADER_EPOCH_FILE: &str = "leader-epoch-checkpoint";

/// Epoch → start offset, ascending in both.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct EpochCache {
    entries: Vec<(LeaderEpoch, Offset)>,
    dirty: bool,
}

/// Why a checkpoint file could not be read.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("malformed leader-epoch checkpoint: {0}")]
pub struct EpochFileError(String);

impl EpochCache {
    /// Parses a checkpoint file; entries must ascend in epoch and offset.
    pub fn decode(text: &str) -> Result<EpochCache, EpochFileError> {
        let bad = |what: &str| EpochFileError(what.to_string());
        let mut lines = text.lines();
        if lines.next().map(str::trim) != Some("0") {
            return Err(bad("unknown version"));
        }
        let count: usize = lines
            .next()
            .and_then(|l| l.trim().parse().ok())
            .ok_or_else(|| bad("bad count"))?;
        let mut cache = EpochCache::default();
        for line in lines.by_ref().take(count) {
            let mut fields = line.split_whitespace();
            let epoch = fields
                .next()
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| bad("bad epoch"))?;
            let offset = fields
                .next()
                .and_then(|f| f.parse().ok())
                .ok_or_else(|| bad("bad offset"))?;
            let (epoch, offset) = (LeaderEpoch(epoch), Offset(offset));
            if cache
                .entries
                .last()
                .is_some_and(|&(e, o)| e >= epoch || o > offset)
            {
                return Err(bad("entries do not ascend"));
            }
            cache.entries.push((epoch, offset));
        }
        if cache.entries.len() != count {
            return Err(bad("fewer entries than the count"));
        }
        Ok(cache)
    }

    /// The checkpoint file's text.
    pub fn encode(&self) -> String {
        let mut out = format!("0\n{}\n", self.entries.len());
        for (epoch, offset) in &self.entries {
            out.push_str(&format!("{} {}\n", epoch.get(), offset.get()));
        }
        out
    }

    /// Records that `epoch` starts at `start` if it is newer than the latest epoch; returns
    /// false (and records nothing) for an epoch older than the latest.
    /// Unknown epochs (-1, from batches no leader stamped) are accepted and not recorded.
    pub fn assign(&mut self, epoch: LeaderEpoch, start: Offset) -> bool {
        if epoch.get() < 0 {
            return true;
        }
        match self.entries.last() {
            Some(&(latest, _)) if latest == epoch => true,
            Some(&(latest, _)) if latest > epoch => false,
            _ => {
                self.entries.push((epoch, start));
                self.dirty = true;
                true
            }
        }
    }

    /// The latest epoch, if any.
    pub fn latest(&self) -> Option<LeaderEpoch> {
        self.entries.last().map(|&(epoch, _)| epoch)
    }

    /// OffsetForLeaderEpoch: the largest epoch at or below `epoch`, and the offset where it
    /// ended — the next epoch's start, or `log_end` for the latest. `None` when `epoch` is
    /// older than every entry.
    pub fn end_offset_for(
        &self,
        epoch: LeaderEpoch,
        log_end: Offset,
    ) -> Option<(LeaderEpoch, Offset)> {
        let after = self.entries.partition_point(|&(e, _)| e <= epoch);
        let (found, _) = *self.entries.get(after.checked_sub(1)?)?;
        let end = self.entries.get(after).map_or(log_end, |&(_, start)| start);
        Some((found, end))
    }

    /// Forgets epochs that start at or after `offset` (the log was truncated there).
    pub fn truncate_from_end(&mut self, offset: Offset) {
        let keep = self.entries.partition_point(|&(_, start)| start < offset);
        if keep < self.entries.len() {
            self.entries.truncate(keep);
            self.dirty = true;
        }
    }

    /// Moves the log start to `offset`: epochs wholly before it go, and the one spanning it
    /// now starts there.
    pub fn truncate_from_start(&mut self, offset: Offset) {
        let spanning = self.entries.partition_point(|&(_, start)| start <= offset);
        if spanning > 1
            || self
                .entries
                .first()
                .is_some_and(|&(_, start)| start < offset)
        {
            let drop = spanning.saturating_sub(1);
            self.entries.drain(..drop);
            if let Some(first) = self.entries.first_mut() {
                if first.1 < offset {
                    first.1 = offset;
                }
            }
            self.dirty = true;
        }
    }

    /// Whether the cache changed since [`EpochCache::take_dirty`] last returned true.
    pub fn take_dirty(&mut self) -> bool {
        std::mem::take(&mut self.dirty)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cache(entries: &[(i32, i64)]) -> EpochCache {
        let mut cache = EpochCache::default();
        for &(epoch, offset) in entries {
            assert!(cache.assign(LeaderEpoch(epoch), Offset(offset)));
        }
        cache
    }

    #[test]
    fn file_format_round_trips_and_rejects_garbage() {
        let original = cache(&[(3, 0), (5, 1200), (9, 4000)]);
        assert_eq!(original.encode(), "0\n3\n3 0\n5 1200\n9 4000\n");
        let decoded = EpochCache::decode(&original.encode()).expect("decode");
        assert_eq!(decoded.entries, original.entries);
        for bad in [
            "",
            "1\n0\n",
            "0\nx\n",
            "0\n2\n3 0\n",
            "0\n2\n5 10\n3 20\n",
            "0\n1\n3\n",
        ] {
            assert!(EpochCache::decode(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn end_offsets_follow_kafka() {
        let epochs = cache(&[(3, 0), (5, 1200), (9, 4000)]);
        let end = Offset(5000);
        assert_eq!(epochs.end_offset_for(LeaderEpoch(2), end), None);
        assert_eq!(
            epochs.end_offset_for(LeaderEpoch(3), end),
            Some((LeaderEpoch(3), Offset(1200)))
        );
        assert_eq!(
            epochs.end_offset_for(LeaderEpoch(4), end),
            Some((LeaderEpoch(3), Offset(1200)))
        );
        assert_eq!(
            epochs.end_offset_for(LeaderEpoch(9), end),
            Some((LeaderEpoch(9), end))
        );
        assert_eq!(
            epochs.end_offset_for(LeaderEpoch(12), end),
            Some((LeaderEpoch(9), end))
        );
    }

    #[test]
    fn assign_ignores_repeats_and_refuses_older_epochs() {
        let mut epochs = cache(&[(3, 0)]);
        assert!(epochs.take_dirty());
        assert!(epochs.assign(LeaderEpoch(3), Offset(50)));
        assert!(!epochs.take_dirty(), "same epoch again changes nothing");
        assert!(!epochs.assign(LeaderEpoch(2), Offset(60)));
        assert!(
            epochs.assign(LeaderEpoch(-1), Offset(60)),
            "unknown epochs are not recorded"
        );
        assert_eq!(epochs.latest(), Some(LeaderEpoch(3)));
    }

    #[test]
    fn truncation_from_either_end() {
        let mut epochs = cache(&[(3, 0), (5, 1200), (9, 4000)]);
        epochs.truncate_from_end(Offset(4000));
        assert_eq!(
            epochs.entries,
            vec![(LeaderEpoch(3), Offset(0)), (LeaderEpoch(5), Offset(1200))]
        );
        epochs.truncate_from_start(Offset(1500));
        assert_eq!(epochs.entries, vec![(LeaderEpoch(5), Offset(1500))]);
        let mut epochs = cache(&[(3, 0), (5, 1200)]);
        epochs.truncate_from_start(Offset(1200));
        assert_eq!(epochs.entries, vec![(LeaderEpoch(5), Offset(1200))]);
    }
}
