//! Counters a shard's logs keep for its metrics: what reads found in memory and on disk,
//! what flushes wrote and synced, and how long syncs took. Single-threaded (`Cell`s): each
//! shard has its own, and the broker adds them up when it is scraped.

use std::cell::Cell;
use std::time::Duration;

/// Upper bounds (seconds) of the latency histograms' buckets: 50 µs to 10 s, roughly
/// ×2.5 apart, so a disk sync (tens of µs to ms) and a slow request (seconds) both resolve.
pub const LATENCY_BUCKETS: [f64; 18] = [
    0.000_05, 0.000_1, 0.000_25, 0.000_5, 0.001, 0.002_5, 0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5,
    1.0, 2.5, 5.0, 10.0, 30.0,
];

/// A latency histogram with the fixed [`LATENCY_BUCKETS`] (plus +Inf).
#[derive(Debug, Default)]
pub struct Histogram {
    /// Observations per bucket (not cumulative); the last one is +Inf.
    counts: [Cell<u64>; LATENCY_BUCKETS.len() + 1],
    sum_nanos: Cell<u64>,
}

/// A copy of a [`Histogram`] that can cross threads and be added to others.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct HistogramSnapshot {
    /// Observations per bucket (not cumulative); the last one is +Inf.
    pub counts: [u64; LATENCY_BUCKETS.len() + 1],
    /// Sum of the observations, in seconds.
    pub sum_seconds: f64,
}

impl Histogram {
    /// Records one observation.
    pub fn observe(&self, took: Duration) {
        let seconds = took.as_secs_f64();
        let bucket = LATENCY_BUCKETS
            .iter()
            .position(|&bound| seconds <= bound)
            .unwrap_or(LATENCY_BUCKETS.len());
        let count = &self.counts[bucket];
        count.set(count.get() + 1);
        let nanos = u64::try_from(took.as_nanos()).unwrap_or(u64::MAX);
        self.sum_nanos
            .set(self.sum_nanos.get().saturating_add(nanos));
    }

    /// The counts so far.
    pub fn snapshot(&self) -> HistogramSnapshot {
        HistogramSnapshot {
            counts: std::array::from_fn(|i| self.counts[i].get()),
            sum_seconds: self.sum_nanos.get() as f64 / 1e9,
        }
    }
}

impl HistogramSnapshot {
    /// Adds `other`'s observations to these.
    pub fn add(&mut self, other: &HistogramSnapshot) {
        for (mine, theirs) in self.counts.iter_mut().zip(other.counts) {
            *mine += theirs;
        }
        self.sum_seconds += other.sum_seconds;
    }

    /// Observations in all.
    pub fn count(&self) -> u64 {
        self.counts.iter().sum()
    }

    /// (upper bound, count) per bucket, not cumulative, `f64::MAX` standing for +Inf last:
    /// the layout Prometheus encoders take.
    pub fn buckets(&self) -> Vec<(f64, u64)> {
        LATENCY_BUCKETS
            .iter()
            .copied()
            .chain([f64::MAX])
            .zip(self.counts)
            .collect()
    }
}

/// I/O counters of one shard's logs.
#[derive(Debug, Default)]
pub struct IoStats {
    /// Bytes reads took from write-behind and tail-cache memory.
    pub read_memory_bytes: Cell<u64>,
    /// Bytes reads took from segment files.
    pub read_disk_bytes: Cell<u64>,
    /// Of those, bytes the read-ahead had already read.
    pub read_ahead_bytes: Cell<u64>,
    /// Bytes flushes wrote to segment files (whole aligned pages: a partly filled page is
    /// written again by the next flush).
    pub written_bytes: Cell<u64>,
    /// Flushes that wrote and synced something.
    pub syncs: Cell<u64>,
    /// How long each such flush's fdatasync phase took.
    pub sync_latency: Histogram,
}

/// A copy of [`IoStats`] that can cross threads.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct IoSnapshot {
    /// See [`IoStats::read_memory_bytes`].
    pub read_memory_bytes: u64,
    /// See [`IoStats::read_disk_bytes`].
    pub read_disk_bytes: u64,
    /// See [`IoStats::read_ahead_bytes`].
    pub read_ahead_bytes: u64,
    /// See [`IoStats::written_bytes`].
    pub written_bytes: u64,
    /// See [`IoStats::syncs`].
    pub syncs: u64,
    /// See [`IoStats::sync_latency`].
    pub sync_latency: HistogramSnapshot,
}

impl IoStats {
    pub(crate) fn add(counter: &Cell<u64>, amount: u64) {
        counter.set(counter.get().saturating_add(amount));
    }

    /// The counters so far.
    pub fn snapshot(&self) -> IoSnapshot {
        IoSnapshot {
            read_memory_bytes: self.read_memory_bytes.get(),
            read_disk_bytes: self.read_disk_bytes.get(),
            read_ahead_bytes: self.read_ahead_bytes.get(),
            written_bytes: self.written_bytes.get(),
            syncs: self.syncs.get(),
            sync_latency: self.sync_latency.snapshot(),
        }
    }
}

impl IoSnapshot {
    /// Adds `other`'s counts to these.
    pub fn add(&mut self, other: &IoSnapshot) {
        self.read_memory_bytes += other.read_memory_bytes;
        self.read_disk_bytes += other.read_disk_bytes;
        self.read_ahead_bytes += other.read_ahead_bytes;
        self.written_bytes += other.written_bytes;
        self.syncs += other.syncs;
        self.sync_latency.add(&other.sync_latency);
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn observations_land_in_the_first_bucket_that_holds_them() {
        let histogram = Histogram::default();
        histogram.observe(Duration::from_micros(50));
        histogram.observe(Duration::from_micros(51));
        histogram.observe(Duration::from_secs(60));
        let snapshot = histogram.snapshot();
        assert_eq!(snapshot.counts[0], 1);
        assert_eq!(snapshot.counts[1], 1);
        assert_eq!(snapshot.counts[LATENCY_BUCKETS.len()], 1);
        assert_eq!(snapshot.count(), 3);
        assert!((snapshot.sum_seconds - 60.000_101).abs() < 1e-9);
        let buckets = snapshot.buckets();
        assert_eq!(buckets.len(), LATENCY_BUCKETS.len() + 1);
        assert_eq!(buckets[0], (0.000_05, 1));
        assert_eq!(buckets[1], (0.000_1, 1));
        assert_eq!(buckets[2], (0.000_25, 0));
        assert_eq!(buckets[LATENCY_BUCKETS.len()], (f64::MAX, 1));
        let mut merged = snapshot.clone();
        merged.add(&snapshot);
        assert_eq!(merged.count(), 6);
    }
}
