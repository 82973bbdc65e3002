//! The consumer side of a run: fetches what the producer writes, counts it, and records the
//! end-to-end latency — now minus the intended send time the producer put in each record's
//! `spate-intended-us` header (wall-clock microseconds, so it works across processes).

use crate::client::{ClientError, Connection};
use hdrhistogram::Histogram;
use spate_model::batch::BatchSplitter;
use spate_model::RecordBatch;
use spate_protocol::kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchRequest, FetchTopic,
};
use spate_protocol::kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use spate_protocol::kafka_protocol::messages::{
    ApiKey, BrokerId, RequestKind, ResponseKind, TopicName,
};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::sync::atomic::{AtomicBool, AtomicU64, Ordering};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

/// The header carrying a record's intended send time.
pub const INTENDED_HEADER: &[u8] = b"spate-intended-us";
/// The most a record batch may decompress to.
const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;
/// How long the consumer keeps reading after the producer stops.
pub const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

/// What the consumer saw.
#[derive(Debug)]
pub struct Consumed {
    /// Records read.
    pub records: u64,
    /// Intended send time to consumption (µs), for records after the warm-up.
    pub e2e_latency: Histogram<u64>,
}

/// Shared between the producers, the consumers and the progress reporter of one run, on
/// every executor.
#[derive(Debug)]
pub struct Progress {
    /// Records the producers had acknowledged (or written, with acks=0).
    pub produced: AtomicU64,
    /// Records that failed.
    pub errors: AtomicU64,
    /// Records the consumers have read.
    pub consumed: AtomicU64,
    /// Publish latency (µs) since the last progress report.
    pub interval: Mutex<Histogram<u64>>,
    /// Producers still running.
    pub producers_left: AtomicU64,
    /// The whole run (consumers included) has finished.
    pub finished: AtomicBool,
}

impl Progress {
    /// The progress of a run with `producers` producers.
    pub fn new(producers: u64) -> Progress {
        Progress {
            produced: AtomicU64::new(0),
            errors: AtomicU64::new(0),
            consumed: AtomicU64::new(0),
            interval: Mutex::new(latency_histogram()),
            producers_left: AtomicU64::new(producers),
            finished: AtomicBool::new(false),
        }
    }

    /// Whether every producer has finished.
    pub fn producers_done(&self) -> bool {
        self.producers_left.load(Ordering::Acquire) == 0
    }

    /// Reads a counter.
    pub fn get(counter: &AtomicU64) -> u64 {
        counter.load(Ordering::Relaxed)
    }

    /// Adds to a counter.
    pub fn add(counter: &AtomicU64, count: u64) {
        counter.fetch_add(count, Ordering::Relaxed);
    }
}

/// An empty latency histogram: 1 µs to 1 hour, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant bounds are valid")
}

/// The current end offsets of `partitions` (in that order), from their leader `connection`:
/// where this run's records will start.
pub async fn end_offsets(
    connection: &mut Connection,
    topic: &str,
    partitions: &[i32],
) -> Result<Vec<i64>, ClientError> {
    list_offsets(connection, topic, partitions, LATEST).await
}

/// ListOffsets' "latest" and "earliest".
pub const LATEST: i64 = -1;
/// See [`LATEST`].
pub const EARLIEST: i64 = -2;

/// The offsets of `partitions` for `timestamp` ([`LATEST`], [`EARLIEST`]), from their leader.
pub async fn list_offsets(
    connection: &mut Connection,
    topic: &str,
    partitions: &[i32],
    timestamp: i64,
) -> Result<Vec<i64>, ClientError> {
    let version = connection.version(ApiKey::ListOffsets, (1, 7))?;
    let asked = partitions
        .iter()
        .map(|&p| {
            ListOffsetsPartition::default()
                .with_partition_index(p)
                .with_timestamp(timestamp)
        })
        .collect();
    let request = ListOffsetsRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(asked)]);
    let ResponseKind::ListOffsets(response) = connection
        .call(
            ApiKey::ListOffsets,
            version,
            RequestKind::ListOffsets(request),
        )
        .await?
    else {
        return Err(ClientError::Protocol(
            "ListOffsets answered with another API".into(),
        ));
    };
    let mut ends = vec![0; partitions.len()];
    for partition in response.topics.iter().flat_map(|t| t.partitions.iter()) {
        if let Some(at) = partitions
            .iter()
            .position(|p| *p == partition.partition_index)
        {
            ends[at] = partition.offset.max(0);
        }
    }
    Ok(ends)
}

/// Reads its `assigned` partitions from their offsets (partition, offset) until the producers
/// are done and everything they produced was read (by all the run's consumers), or
/// `drain` after they finished.
pub async fn consume(
    bootstrap: &str,
    topic: &str,
    assigned: Vec<(i32, i64)>,
    warmup_until_us: i64,
    progress: Arc<Progress>,
    drain: Duration,
) -> Result<Consumed, ClientError> {
    let (indexes, mut offsets): (Vec<i32>, Vec<i64>) = assigned.into_iter().unzip();
    let mut connection = Connection::connect(bootstrap).await?;
    let version = connection.version(ApiKey::Fetch, (4, 12))?;
    let mut consumed = Consumed {
        records: 0,
        e2e_latency: latency_histogram(),
    };
    let mut finished_at: Option<Instant> = None;
    let mut scratch = Vec::new();
    loop {
        if progress.producers_done() {
            let since = *finished_at.get_or_insert_with(Instant::now);
            let read_all = Progress::get(&progress.consumed) >= Progress::get(&progress.produced);
            if read_all || since.elapsed() > drain {
                return Ok(consumed);
            }
        }
        let partitions = indexes
            .iter()
            .zip(&offsets)
            .map(|(index, offset)| {
                FetchPartition::default()
                    .with_partition(*index)
                    .with_fetch_offset(*offset)
                    .with_partition_max_bytes(4 << 20)
            })
            .collect();
        let request = FetchRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_max_wait_ms(100)
            .with_min_bytes(1)
            .with_max_bytes(16 << 20)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(partitions)]);
        let ResponseKind::Fetch(response) = connection
            .call(ApiKey::Fetch, version, RequestKind::Fetch(request))
            .await?
        else {
            return Err(ClientError::Protocol(
                "Fetch answered with another API".into(),
            ));
        };
        let now_us = now_us();
        for partition in response.responses.iter().flat_map(|t| t.partitions.iter()) {
            let Some(offset) = indexes
                .iter()
                .position(|i| *i == partition.partition_index)
                .and_then(|at| offsets.get_mut(at))
            else {
                continue;
            };
            let Some(records) = &partition.records else {
                continue;
            };
            for bytes in BatchSplitter::new(records).flatten() {
                let Ok(batch) = RecordBatch::validate(bytes) else {
                    break;
                };
                if batch
                    .decompress_into(MAX_DECOMPRESSED_BYTES, &mut scratch)
                    .is_err()
                {
                    break;
                }
                let base = batch.header().base_offset().get();
                for record in batch.records_in(&scratch).flatten() {
                    let record_offset = base + i64::from(record.offset_delta);
                    if record_offset < *offset {
                        continue;
                    }
                    consumed.records += 1;
                    Progress::add(&progress.consumed, 1);
                    *offset = record_offset + 1;
                    let intended = record
                        .headers()
                        .find(|h| h.key == INTENDED_HEADER)
                        .and_then(|h| h.value)
                        .and_then(|v| v.try_into().ok())
                        .map(i64::from_be_bytes);
                    if let Some(intended) = intended.filter(|&t| t >= warmup_until_us) {
                        consumed
                            .e2e_latency
                            .saturating_record((now_us - intended).max(1) as u64);
                    }
                }
            }
        }
    }
}

/// Wall-clock microseconds since the epoch.
pub fn now_us() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_micros()).unwrap_or(i64::MAX)
}
