//! Metrics: each shard counts into its own [`ShardMetrics`] (plain `Cell`s, no atomics on
//! the request path); a scrape asks every shard for a [`ShardSnapshot`] through the mesh and
//! [`export`] merges them into one Prometheus text page.

pub mod export;

use crate::api::Broker;
use crate::runtime;
use spate_model::batch::BatchHeader;
use spate_model::batch::BatchSplitter;
use spate_storage::stats::{Histogram, HistogramSnapshot, IoSnapshot};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// API keys counted one by one (Kafka's keys are below this; others count as one slot).
const API_SLOTS: usize = 128;
/// How often a shard probes its task-queue latency.
const PROBE_INTERVAL: Duration = Duration::from_millis(100);
/// How often a shard recomputes its busy ratio.
const BUSY_INTERVAL: Duration = Duration::from_secs(1);

/// Why a connection ended.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CloseReason {
    /// The client closed it.
    Client,
    /// Reading or writing failed (reset, broken pipe).
    Error,
    /// The client sent something the broker cannot answer (bad frame, unknown API).
    BadRequest,
    /// The shard already had its maximum of connections.
    Limit,
}

impl CloseReason {
    /// Every reason, in label order.
    pub const ALL: [CloseReason; 4] = [
        CloseReason::Client,
        CloseReason::Error,
        CloseReason::BadRequest,
        CloseReason::Limit,
    ];

    /// The label value.
    pub fn name(self) -> &'static str {
        match self {
            CloseReason::Client => "client",
            CloseReason::Error => "error",
            CloseReason::BadRequest => "bad_request",
            CloseReason::Limit => "limit",
        }
    }
}

/// Bytes and records that went in and out of one partition through this shard.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Traffic {
    /// Record-batch bytes appended by producers.
    pub bytes_in: u64,
    /// Records appended by producers.
    pub messages_in: u64,
    /// Record-batch bytes returned to consumers.
    pub bytes_out: u64,
    /// Records returned to consumers (batch record counts).
    pub messages_out: u64,
}

impl Traffic {
    fn add(&mut self, other: &Traffic) {
        self.bytes_in += other.bytes_in;
        self.messages_in += other.messages_in;
        self.bytes_out += other.bytes_out;
        self.messages_out += other.messages_out;
    }
}

#[derive(Debug, Default)]
struct ApiStats {
    count: Cell<u64>,
    latency: Histogram,
}

/// One shard's counters.
#[derive(Debug)]
pub struct ShardMetrics {
    apis: Vec<ApiStats>,
    /// (API key, error code) → responses or partitions answered with that code.
    errors: RefCell<BTreeMap<(i16, i16), u64>>,
    traffic: RefCell<HashMap<(Uuid, i32), Traffic>>,
    connections_open: Cell<u64>,
    accepted: Cell<u64>,
    closed: [Cell<u64>; CloseReason::ALL.len()],
    slow_requests: Cell<u64>,
    busy_seconds: Cell<f64>,
    busy_ratio: Cell<f64>,
    queue_latency: Histogram,
}

impl Default for ShardMetrics {
    fn default() -> Self {
        ShardMetrics {
            apis: (0..API_SLOTS).map(|_| ApiStats::default()).collect(),
            errors: RefCell::default(),
            traffic: RefCell::default(),
            connections_open: Cell::new(0),
            accepted: Cell::new(0),
            closed: Default::default(),
            slow_requests: Cell::new(0),
            busy_seconds: Cell::new(0.0),
            busy_ratio: Cell::new(0.0),
            queue_latency: Histogram::default(),
        }
    }
}

fn bump(cell: &Cell<u64>, by: u64) {
    cell.set(cell.get().saturating_add(by));
}

/// Records in `records` (back-to-back batches), by their headers' record counts.
pub fn record_count(records: &[u8]) -> u64 {
    BatchSplitter::new(records)
        .filter_map(Result::ok)
        .filter_map(BatchHeader::view)
        .map(|header| u64::try_from(header.records_count()).unwrap_or(0))
        .sum()
}

impl ShardMetrics {
    fn api(&self, key: i16) -> &ApiStats {
        let slot = usize::try_from(key).unwrap_or(API_SLOTS - 1);
        &self.apis[slot.min(API_SLOTS - 1)]
    }

    /// A request of API `key` was answered after `took`.
    pub fn request(&self, key: i16, took: Duration) {
        let api = self.api(key);
        bump(&api.count, 1);
        api.latency.observe(took);
    }

    /// A response (or one of its partitions) of API `key` carried error `code`.
    pub fn error(&self, key: i16, code: i16) {
        if code != 0 {
            *self.errors.borrow_mut().entry((key, code)).or_default() += 1;
        }
    }

    /// A request took longer than the slow-request threshold.
    pub fn slow_request(&self) {
        bump(&self.slow_requests, 1);
    }

    /// Producers appended `records` to the partition.
    pub fn produced(&self, partition: (Uuid, i32), records: &[u8]) {
        let mut traffic = self.traffic.borrow_mut();
        let entry = traffic.entry(partition).or_default();
        entry.bytes_in += records.len() as u64;
        entry.messages_in += record_count(records);
    }

    /// A fetch returned `records` of the partition.
    pub fn fetched(&self, partition: (Uuid, i32), records: &[u8]) {
        let mut traffic = self.traffic.borrow_mut();
        let entry = traffic.entry(partition).or_default();
        entry.bytes_out += records.len() as u64;
        entry.messages_out += record_count(records);
    }

    /// A connection was accepted.
    pub fn connection_opened(&self) {
        bump(&self.accepted, 1);
        bump(&self.connections_open, 1);
    }

    /// A connection ended (or, for [`CloseReason::Limit`], was refused after accepting).
    pub fn connection_closed(&self, reason: CloseReason) {
        let index = CloseReason::ALL
            .iter()
            .position(|r| *r == reason)
            .unwrap_or(0);
        bump(&self.closed[index], 1);
        if reason == CloseReason::Limit {
            bump(&self.accepted, 1);
        } else {
            self.connections_open
                .set(self.connections_open.get().saturating_sub(1));
        }
    }

    /// Forgets the traffic of a deleted topic's partitions.
    pub fn forget_topic(&self, id: Uuid) {
        self.traffic
            .borrow_mut()
            .retain(|(topic, _), _| *topic != id);
    }
}

/// The end offsets and size of one partition, from its owner shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionState {
    /// The topic's id.
    pub topic: Uuid,
    /// The partition.
    pub partition: i32,
    /// The log start offset.
    pub log_start: i64,
    /// The log end offset.
    pub log_end: i64,
    /// The high watermark.
    pub high_watermark: i64,
    /// The last stable offset.
    pub last_stable: i64,
    /// Bytes its segments hold (preallocation excluded).
    pub size_bytes: u64,
    /// Bytes of removed segment files kept for reuse (`--recycle-segments`).
    pub recycled_bytes: u64,
}

/// One consumer group, from its coordinator shard.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct GroupState {
    /// The group id.
    pub name: String,
    /// Its state, as ListGroups names it.
    pub state: &'static str,
    /// Members.
    pub members: usize,
    /// Committed offsets: (topic, partition, offset).
    pub offsets: Vec<(String, i32, i64)>,
}

/// Everything one shard reports to a scrape.
#[derive(Debug, Clone, Default)]
pub struct ShardSnapshot {
    /// The shard.
    pub shard: usize,
    /// (API key, requests, latency) for each API that was called.
    pub apis: Vec<(i16, u64, HistogramSnapshot)>,
    /// ((API key, error code), count).
    pub errors: Vec<((i16, i16), u64)>,
    /// Traffic counted on this shard.
    pub traffic: Vec<((Uuid, i32), Traffic)>,
    /// The partitions this shard owns.
    pub partitions: Vec<PartitionState>,
    /// The groups this shard coordinates.
    pub groups: Vec<GroupState>,
    /// Open connections.
    pub connections_open: u64,
    /// Connections accepted.
    pub connections_accepted: u64,
    /// Connections closed, per [`CloseReason::ALL`].
    pub connections_closed: [u64; CloseReason::ALL.len()],
    /// Requests over the slow-request threshold.
    pub slow_requests: u64,
    /// Seconds the executor spent running tasks and polling I/O.
    pub busy_seconds: f64,
    /// Of the last second, the fraction the executor was busy.
    pub busy_ratio: f64,
    /// How long a woken task waited for its turn (probed).
    pub queue_latency: HistogramSnapshot,
    /// The logs' I/O counters.
    pub io: IoSnapshot,
    /// Bytes the tail cache holds, and its capacity.
    pub tail_cache: (u64, u64),
    /// The write-buffer pool: free bytes it holds, buffers taken from it, and buffers
    /// allocated because it had none.
    pub write_buffers: (u64, u64, u64),
}

/// This shard's counters and state, for a scrape.
pub fn snapshot(broker: &Broker) -> ShardSnapshot {
    let metrics = &broker.metrics;
    let apis = metrics
        .apis
        .iter()
        .enumerate()
        .filter(|(_, api)| api.count.get() > 0)
        .map(|(key, api)| {
            let key = i16::try_from(key).unwrap_or(i16::MAX);
            (key, api.count.get(), api.latency.snapshot())
        })
        .collect();
    let partitions = broker
        .logs
        .keyed()
        .into_iter()
        .map(|(key, log)| PartitionState {
            topic: key.0,
            partition: key.1,
            log_start: log.log_start_offset().get(),
            log_end: log.next_offset().get(),
            high_watermark: log.durable_offset().get(),
            last_stable: crate::producers::last_stable_offset(broker, key, &log).get(),
            size_bytes: log.size_bytes(),
            recycled_bytes: log.recycled_bytes(),
        })
        .collect();
    let (io, tail_cache) = broker.logs.io();
    ShardSnapshot {
        shard: broker.shard,
        apis,
        errors: metrics
            .errors
            .borrow()
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect(),
        traffic: metrics
            .traffic
            .borrow()
            .iter()
            .map(|(k, v)| (*k, *v))
            .collect(),
        partitions,
        groups: broker.groups.metrics(),
        connections_open: metrics.connections_open.get(),
        connections_accepted: metrics.accepted.get(),
        connections_closed: std::array::from_fn(|i| metrics.closed[i].get()),
        slow_requests: metrics.slow_requests.get(),
        busy_seconds: metrics.busy_seconds.get(),
        busy_ratio: metrics.busy_ratio.get(),
        queue_latency: metrics.queue_latency.snapshot(),
        io: io.snapshot(),
        tail_cache: tail_cache.map_or((0, 0), |b| (b.used() as u64, b.capacity() as u64)),
        write_buffers: broker.logs.write_buffers(),
    }
}

/// Runs for the shard's life: probes how long a ready task waits for its turn (every
/// 100 ms) and how busy the executor is (every second).
pub async fn sample(broker: Rc<Broker>) {
    let metrics = &broker.metrics;
    let mut window_start = Instant::now();
    let mut busy = Duration::ZERO;
    // The first call counts from the executor's start: drop it.
    let _ = runtime::busy_since_last_call();
    loop {
        runtime::sleep(PROBE_INTERVAL).await;
        let woken = Instant::now();
        runtime::yield_to_others().await;
        metrics.queue_latency.observe(woken.elapsed());
        let elapsed = window_start.elapsed();
        if elapsed >= BUSY_INTERVAL {
            busy += runtime::busy_since_last_call();
            let seconds = busy.as_secs_f64();
            metrics
                .busy_seconds
                .set(metrics.busy_seconds.get() + seconds);
            metrics
                .busy_ratio
                .set((seconds / elapsed.as_secs_f64()).clamp(0.0, 1.0));
            busy = Duration::ZERO;
            window_start = Instant::now();
        }
    }
}

/// Sums the shards' traffic per partition.
pub(crate) fn merged_traffic(shards: &[ShardSnapshot]) -> BTreeMap<(Uuid, i32), Traffic> {
    let mut merged: BTreeMap<(Uuid, i32), Traffic> = BTreeMap::new();
    for shard in shards {
        for (key, traffic) in &shard.traffic {
            merged.entry(*key).or_default().add(traffic);
        }
    }
    merged
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn counters_add_up_and_connections_balance() {
        let metrics = ShardMetrics::default();
        metrics.request(0, Duration::from_millis(2));
        metrics.request(0, Duration::from_millis(3));
        metrics.request(i16::MAX, Duration::from_millis(1));
        metrics.request(-5, Duration::from_millis(1));
        assert_eq!(metrics.api(0).count.get(), 2);
        assert_eq!(
            metrics.api(i16::MAX).count.get(),
            2,
            "out-of-range keys share a slot"
        );
        metrics.error(0, 0);
        metrics.error(0, 3);
        metrics.error(0, 3);
        assert_eq!(metrics.errors.borrow().get(&(0, 3)), Some(&2));
        assert_eq!(metrics.errors.borrow().len(), 1, "no error is not counted");
        metrics.connection_opened();
        metrics.connection_opened();
        metrics.connection_closed(CloseReason::Client);
        metrics.connection_closed(CloseReason::Limit);
        assert_eq!(metrics.connections_open.get(), 1);
        assert_eq!(metrics.accepted.get(), 3);
        assert_eq!(metrics.closed[0].get(), 1);
        assert_eq!(metrics.closed[3].get(), 1);
        let topic = Uuid::from_u128(7);
        let batch = crate::test_support::batch_of(&[b"a", b"bb", b"ccc"]);
        metrics.produced((topic, 0), &batch);
        metrics.fetched((topic, 0), &batch);
        metrics.fetched((topic, 0), &batch);
        let traffic = metrics.traffic.borrow()[&(topic, 0)];
        assert_eq!(traffic.bytes_in, batch.len() as u64);
        assert_eq!(traffic.messages_in, 3);
        assert_eq!(traffic.bytes_out, 2 * batch.len() as u64);
        assert_eq!(traffic.messages_out, 6);
        metrics.forget_topic(topic);
        assert!(metrics.traffic.borrow().is_empty());
    }
}
