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
use std::cell::{Cell, RefCell};
use std::rc::Rc;
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

/// Shared between the producers, the consumer and the progress reporter of one run.
#[derive(Debug)]
pub struct Progress {
    /// Records the producers had acknowledged (or written, with acks=0).
    pub produced: Cell<u64>,
    /// Records that failed.
    pub errors: Cell<u64>,
    /// Records the consumer has read.
    pub consumed: Cell<u64>,
    /// Publish latency (µs) since the last progress report.
    pub interval: RefCell<Histogram<u64>>,
    /// The producers have finished.
    pub done: Cell<bool>,
    /// The whole run (consumer included) has finished.
    pub finished: Cell<bool>,
}

impl Default for Progress {
    fn default() -> Progress {
        Progress {
            produced: Cell::new(0),
            errors: Cell::new(0),
            consumed: Cell::new(0),
            interval: RefCell::new(latency_histogram()),
            done: Cell::new(false),
            finished: Cell::new(false),
        }
    }
}

/// An empty latency histogram: 1 µs to 1 hour, 3 significant digits.
pub fn latency_histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, 3_600_000_000, 3).expect("constant bounds are valid")
}

/// The partitions' current end offsets: where this run's records will start.
pub async fn end_offsets(
    connection: &mut Connection,
    topic: &str,
    partitions: i32,
) -> Result<Vec<i64>, ClientError> {
    let version = connection.version(ApiKey::ListOffsets, (1, 7))?;
    let asked = (0..partitions)
        .map(|p| {
            ListOffsetsPartition::default()
                .with_partition_index(p)
                .with_timestamp(-1)
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
    let mut ends = vec![0; usize::try_from(partitions).unwrap_or(0)];
    for partition in response.topics.iter().flat_map(|t| t.partitions.iter()) {
        if let Some(end) = usize::try_from(partition.partition_index)
            .ok()
            .and_then(|i| ends.get_mut(i))
        {
            *end = partition.offset.max(0);
        }
    }
    Ok(ends)
}

/// Reads its `assigned` partitions from their offsets (partition, offset) until the producers
/// are done and everything they produced was read (by all the run's consumers), or
/// [`DRAIN_TIMEOUT`] after they finished.
pub async fn consume(
    bootstrap: &str,
    topic: &str,
    assigned: Vec<(i32, i64)>,
    warmup_until_us: i64,
    progress: Rc<Progress>,
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
        if progress.done.get() {
            let since = *finished_at.get_or_insert_with(Instant::now);
            if progress.consumed.get() >= progress.produced.get() || since.elapsed() > DRAIN_TIMEOUT
            {
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
                    progress.consumed.set(progress.consumed.get() + 1);
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
