//! Produce (key 0), versions 3–9 (0–2 advertised, refused). Each partition's records are
//! validated (framing, CRC32C, counts, codec, timestamps) and appended; `acks=all` is
//! answered once the fdatasync covering the batches returns, `acks=1` at once (the data
//! becomes visible to consumers when its background flush completes), `acks=0` never.

use super::{error_code, Broker};
use crate::runtime;
use crate::topic_config::TopicConfig;
use crate::topics::{PartitionLog, Topics};
use spate_model::batch::{set_log_append_time, BatchSplitter};
use spate_model::{LeaderEpoch, Offset, RecordBatch};
use spate_protocol::kafka_protocol::messages::produce_request::ProduceRequest;
use spate_protocol::kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use spate_storage::join::join_all;
use spate_storage::LogError;
use std::rc::Rc;

/// Returns `None` for `acks=0`, which gets no response.
pub(super) async fn handle(broker: &Broker, request: ProduceRequest) -> Option<ProduceResponse> {
    if !matches!(request.acks, -1..=1) {
        // Kafka answers every partition with INVALID_REQUIRED_ACKS and appends nothing.
        return Some(reject_all(
            &request,
            error_code::INVALID_REQUIRED_ACKS,
            "acks must be -1, 0 or 1",
        ));
    }
    let mut touched: Vec<PartitionLog> = Vec::new();
    let mut responses = Vec::with_capacity(request.topic_data.len());
    for topic_data in &request.topic_data {
        let topic = broker.topics.get(topic_data.name.0.as_str());
        let mut partitions = Vec::with_capacity(topic_data.partition_data.len());
        for partition in &topic_data.partition_data {
            let log = topic.as_ref().and_then(|t| t.partition(partition.index));
            let response = match (log, &partition.records) {
                (None, _) => failure(
                    partition.index,
                    error_code::UNKNOWN_TOPIC_OR_PARTITION,
                    "unknown topic or partition",
                ),
                (Some(_), None) => {
                    failure(partition.index, error_code::CORRUPT_MESSAGE, "no records")
                }
                (Some(log), Some(records)) => {
                    let config = topic.as_ref().map(|t| t.config.clone()).unwrap_or_default();
                    let result = append_all(&broker.topics, log, records, &config).await;
                    if result.is_ok() && !touched.iter().any(|t| Rc::ptr_eq(t, log)) {
                        touched.push(log.clone());
                    }
                    appended(partition.index, log, result)
                }
            };
            partitions.push(response);
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic_data.name.clone())
                .with_partition_responses(partitions),
        );
    }
    if request.acks == -1 {
        // Durable before answering: one shared flush per partition touched.
        let results = join_all(touched.iter().map(|log| log.flush()).collect()).await;
        if let Some(error) = results.into_iter().find_map(Result::err) {
            tracing::error!(%error, "flush failed; the partition is offline");
            for topic in &mut responses {
                for partition in &mut topic.partition_responses {
                    if partition.error_code == error_code::NONE {
                        partition.error_code = error_code::KAFKA_STORAGE_ERROR;
                        partition.error_message = Some(StrBytes::from_string(error.to_string()));
                    }
                }
            }
        }
    } else {
        for log in touched {
            runtime::spawn_detached(async move {
                if let Err(error) = log.flush().await {
                    tracing::error!(%error, "background flush failed; the partition is offline");
                }
            });
        }
    }
    (request.acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

/// What an append assigned: the first base offset, and the append time when the topic
/// stamps batches with it (`message.timestamp.type=LogAppendTime`), else -1.
type Assigned = (Offset, i64);

/// Validates and appends every batch of one partition's records. A batch that fails
/// validation or exceeds `max.message.bytes` rejects the whole partition's records,
/// appending nothing.
async fn append_all(
    topics: &Topics,
    log: &PartitionLog,
    records: &[u8],
    config: &TopicConfig,
) -> Result<Assigned, (i16, String)> {
    let max_bytes = config.max_message_bytes();
    let mut batches = Vec::new();
    for candidate in BatchSplitter::new(records) {
        let bytes = candidate.map_err(|e| (error_code::CORRUPT_MESSAGE, e.to_string()))?;
        let batch = RecordBatch::validate(bytes)
            .map_err(|e| (error_code::CORRUPT_MESSAGE, e.to_string()))?;
        if batch.header().is_control() {
            return Err((
                error_code::INVALID_REQUEST,
                "clients may not write control batches".to_string(),
            ));
        }
        if batch.header().is_transactional() {
            // Without a transaction coordinator, read_committed consumers would see these
            // records as committed: refuse rather than mislabel them.
            return Err((
                error_code::INVALID_TXN_STATE,
                "transactions are not supported yet".to_string(),
            ));
        }
        if bytes.len() > max_bytes {
            let message = format!(
                "batch of {} bytes exceeds max.message.bytes {max_bytes}",
                bytes.len()
            );
            return Err((error_code::MESSAGE_TOO_LARGE, message));
        }
        batches.push(bytes);
    }
    if batches.is_empty() {
        return Err((error_code::CORRUPT_MESSAGE, "no record batch".to_string()));
    }
    let append_time = config.log_append_time().then(now_ms);
    let mut first = None;
    for bytes in batches {
        // LogAppendTime rewrites CRC-covered fields: stamp a copy (the CRC is recomputed).
        let stamped;
        let bytes = match append_time {
            Some(now) => {
                let mut copy = bytes.to_vec();
                set_log_append_time(&mut copy, now);
                stamped = copy;
                &stamped[..]
            }
            None => bytes,
        };
        let batch = RecordBatch::validate(bytes)
            .map_err(|e| (error_code::CORRUPT_MESSAGE, e.to_string()))?;
        let appended = loop {
            match log.append(&batch, LeaderEpoch(0)) {
                Err(LogError::BufferFull { .. }) => {
                    // The shard's write-behind budget is full: flush whatever holds it (this
                    // request's earlier partitions included), which returns it, then retry.
                    flush_backlogged(topics)
                        .await
                        .map_err(|e| (error_code::KAFKA_STORAGE_ERROR, e.to_string()))?;
                }
                Err(LogError::BatchTooLarge {
                    bytes,
                    segment_bytes,
                }) => {
                    return Err((
                        error_code::MESSAGE_TOO_LARGE,
                        format!("batch of {bytes} bytes exceeds segment.bytes {segment_bytes}"),
                    ));
                }
                other => break other,
            }
        };
        let appended = appended.map_err(|e| (error_code::KAFKA_STORAGE_ERROR, e.to_string()))?;
        first.get_or_insert(appended.base_offset);
    }
    Ok((first.unwrap_or(Offset(-1)), append_time.unwrap_or(-1)))
}

/// Flushes every partition of the shard with unflushed appends.
async fn flush_backlogged(topics: &Topics) -> Result<(), LogError> {
    for (log, _) in topics.all_logs() {
        if log.unflushed_bytes() > 0 {
            log.flush().await?;
        }
    }
    Ok(())
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}

fn appended(
    index: i32,
    log: &PartitionLog,
    result: Result<Assigned, (i16, String)>,
) -> PartitionProduceResponse {
    match result {
        Ok((base_offset, append_time)) => PartitionProduceResponse::default()
            .with_index(index)
            .with_base_offset(base_offset.get())
            .with_log_append_time_ms(append_time)
            .with_log_start_offset(log.log_start_offset().get()),
        Err((code, message)) => failure(index, code, &message),
    }
}

fn reject_all(request: &ProduceRequest, code: i16, message: &str) -> ProduceResponse {
    let responses = request
        .topic_data
        .iter()
        .map(|topic| {
            let partitions = topic
                .partition_data
                .iter()
                .map(|p| failure(p.index, code, message))
                .collect();
            TopicProduceResponse::default()
                .with_name(topic.name.clone())
                .with_partition_responses(partitions)
        })
        .collect();
    ProduceResponse::default().with_responses(responses)
}

fn failure(index: i32, code: i16, message: &str) -> PartitionProduceResponse {
    PartitionProduceResponse::default()
        .with_index(index)
        .with_error_code(code)
        .with_base_offset(-1)
        .with_log_append_time_ms(-1)
        .with_log_start_offset(-1)
        .with_error_message(Some(StrBytes::from_string(message.to_string())))
}
