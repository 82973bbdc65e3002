//! Fetch (key 1), versions 4–13: whole batches up to the high watermark (on this single
//! node, the durable offset), per-partition and per-response byte limits (at least one
//! batch, as Kafka), topic ids from v13, long polling bounded by `max_wait_ms`. No fetch
//! sessions: every answer carries session id 0, so clients send full fetches.

use super::{error_code, Broker};
use crate::runtime;
use crate::topics::PartitionLog;
use bytes::Bytes;
use spate_model::Offset;
use spate_protocol::kafka_protocol::messages::fetch_request::FetchRequest;
use spate_protocol::kafka_protocol::messages::fetch_response::{
    FetchResponse, FetchableTopicResponse, PartitionData,
};
use spate_storage::join;
use std::time::{Duration, Instant};

/// The longest a fetch waits for data, whatever the client asks.
const MAX_WAIT: Duration = Duration::from_secs(30);
const FIRST_TOPIC_ID_VERSION: i16 = 13;

pub(super) async fn handle(broker: &Broker, request: FetchRequest, version: i16) -> FetchResponse {
    let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT);
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    loop {
        let pass = read(broker, &request, version).await;
        let now = Instant::now();
        if pass.bytes >= min_bytes.max(1) || pass.errors || now >= deadline {
            return pass.response;
        }
        // Sleep until one of the partitions' high watermarks moves, or the deadline.
        let moved = pass
            .watched
            .iter()
            .map(|(log, seen)| log.wait_for_durable_beyond(*seen))
            .collect();
        futures_lite::future::or(
            async {
                join::first_of(moved).await;
            },
            runtime::sleep(deadline - now),
        )
        .await;
    }
}

/// What one pass over the partitions found.
struct Pass {
    response: FetchResponse,
    /// Record bytes in the response.
    bytes: usize,
    /// Whether any partition failed (which answers at once).
    errors: bool,
    /// Each partition read, with the high watermark it had.
    watched: Vec<(PartitionLog, Offset)>,
}

/// One pass over the requested partitions.
async fn read(broker: &Broker, request: &FetchRequest, version: i16) -> Pass {
    let mut budget = usize::try_from(request.max_bytes).unwrap_or(0);
    let mut total = 0;
    let mut errors = false;
    let mut watched = Vec::new();
    let mut topics = Vec::with_capacity(request.topics.len());
    for wanted in &request.topics {
        let found = if version >= FIRST_TOPIC_ID_VERSION {
            broker.topics.by_id(wanted.topic_id).map(|(_, topic)| topic)
        } else {
            broker.topics.get(wanted.topic.0.as_str())
        };
        let mut partitions = Vec::with_capacity(wanted.partitions.len());
        for fetch in &wanted.partitions {
            let log = found.as_ref().and_then(|t| t.partition(fetch.partition));
            let Some(log) = log else {
                errors = true;
                let code = if version >= FIRST_TOPIC_ID_VERSION && found.is_none() {
                    error_code::UNKNOWN_TOPIC_ID
                } else {
                    error_code::UNKNOWN_TOPIC_OR_PARTITION
                };
                partitions.push(empty(fetch.partition, code, -1, -1));
                continue;
            };
            let high_watermark = log.durable_offset();
            watched.push((log.clone(), high_watermark));
            let log_start = log.log_start_offset();
            let offset = Offset(fetch.fetch_offset);
            if offset < log_start || offset > log.next_offset() {
                errors = true;
                partitions.push(empty(
                    fetch.partition,
                    error_code::OFFSET_OUT_OF_RANGE,
                    high_watermark.get(),
                    log_start.get(),
                ));
                continue;
            }
            // The first partition with data gets at least one batch even past the limits.
            let limit = usize::try_from(fetch.partition_max_bytes)
                .unwrap_or(0)
                .min(budget)
                .max(usize::from(total == 0));
            let mut data = empty(
                fetch.partition,
                error_code::NONE,
                high_watermark.get(),
                log_start.get(),
            );
            if limit > 0 || total == 0 {
                match log.read(offset, limit, high_watermark).await {
                    Ok(read) => {
                        total += read.bytes.len();
                        budget = budget.saturating_sub(read.bytes.len());
                        data.records = Some(Bytes::from(read.bytes));
                    }
                    Err(error) => {
                        errors = true;
                        tracing::error!(%error, "fetch read failed");
                        data.error_code = error_code::KAFKA_STORAGE_ERROR;
                    }
                }
            }
            partitions.push(data);
        }
        let mut topic = FetchableTopicResponse::default().with_partitions(partitions);
        if version >= FIRST_TOPIC_ID_VERSION {
            topic.topic_id = wanted.topic_id;
        } else {
            topic.topic = wanted.topic.clone();
        }
        topics.push(topic);
    }
    Pass {
        response: FetchResponse::default().with_responses(topics),
        bytes: total,
        errors,
        watched,
    }
}

fn empty(partition: i32, code: i16, high_watermark: i64, log_start: i64) -> PartitionData {
    PartitionData::default()
        .with_partition_index(partition)
        .with_error_code(code)
        .with_high_watermark(high_watermark)
        .with_last_stable_offset(high_watermark)
        .with_log_start_offset(log_start)
        .with_aborted_transactions(Some(Vec::new()))
        .with_records(Some(Bytes::new()))
}
