//! Produce (key 0), versions 3–9 (0–2 advertised, refused). Each partition's records are
//! validated (framing, CRC32C, counts, codec, timestamps) and appended; `acks=all` is
//! answered once the fdatasync covering the batches returns, `acks=1` at once (the data
//! becomes visible to consumers when its background flush completes), `acks=0` never.

use super::{error_code, Broker};
use crate::now_ms;
use crate::producers::Verdict;
use crate::runtime;
use crate::topic_config::TopicConfig;
use crate::topics::{PartitionLog, ShardLogs, Topic};
use bytes::Bytes;
use spate_model::batch::{set_log_append_time, BatchSplitter};
use spate_model::{LeaderEpoch, Offset, RecordBatch};
use spate_protocol::kafka_protocol::messages::produce_request::ProduceRequest;
use spate_protocol::kafka_protocol::messages::produce_response::{
    PartitionProduceResponse, ProduceResponse, TopicProduceResponse,
};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use spate_storage::join::join_all;
use spate_storage::LogError;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::sync::Arc;

/// One partition's records, for the shard that owns it.
struct Append {
    /// Where its answer goes: (topic, partition) positions in the request.
    slot: (usize, usize),
    topic: Arc<Topic>,
    topic_name: String,
    partition: i32,
    records: Bytes,
}

/// Returns `None` for `acks=0`, which gets no response.
pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: ProduceRequest,
) -> Option<ProduceResponse> {
    if !matches!(request.acks, -1..=1) {
        // Kafka answers every partition with INVALID_REQUIRED_ACKS and appends nothing.
        return Some(reject_all(
            &request,
            error_code::INVALID_REQUIRED_ACKS,
            "acks must be -1, 0 or 1",
        ));
    }
    // Answers in request order; the partitions' owner shards fill them in.
    let mut responses = Vec::with_capacity(request.topic_data.len());
    let mut by_shard: BTreeMap<usize, Vec<Append>> = BTreeMap::new();
    for (t, topic_data) in request.topic_data.iter().enumerate() {
        let topic = broker.topics.get(topic_data.name.0.as_str());
        let mut partitions = Vec::with_capacity(topic_data.partition_data.len());
        for (p, partition) in topic_data.partition_data.iter().enumerate() {
            let owner = topic.as_ref().and_then(|t| t.owner(partition.index));
            if owner.is_some() && crate::topics::is_internal(topic_data.name.0.as_str()) {
                partitions.push(failure(
                    partition.index,
                    error_code::INVALID_TOPIC,
                    "clients may not write to an internal topic",
                ));
                continue;
            }
            partitions.push(match (owner, topic.as_ref(), &partition.records) {
                (Some(owner), Some(topic), Some(records)) => {
                    by_shard.entry(owner).or_default().push(Append {
                        slot: (t, p),
                        topic: topic.clone(),
                        topic_name: topic_data.name.0.to_string(),
                        partition: partition.index,
                        records: records.clone(),
                    });
                    // Replaced by the owner's answer.
                    failure(partition.index, error_code::NONE, "")
                }
                (Some(_), Some(_), None) => {
                    failure(partition.index, error_code::CORRUPT_MESSAGE, "no records")
                }
                _ => failure(
                    partition.index,
                    error_code::UNKNOWN_TOPIC_OR_PARTITION,
                    "unknown topic or partition",
                ),
            });
        }
        responses.push(
            TopicProduceResponse::default()
                .with_name(topic_data.name.clone())
                .with_partition_responses(partitions),
        );
    }
    let acks = request.acks;
    let transactional_id: Option<Rc<str>> = request
        .transactional_id
        .as_ref()
        .filter(|t| !t.is_empty())
        .map(|t| Rc::from(t.0.as_str()));
    let calls = by_shard
        .into_values()
        .map(|appends| {
            let slots: Vec<(usize, usize, i32)> = appends
                .iter()
                .map(|a| (a.slot.0, a.slot.1, a.partition))
                .collect();
            let transactional_id = transactional_id.as_deref().map(str::to_string);
            let call = broker.on_shard(shard_of(&appends), move |owner| async move {
                append_on_owner(&owner, appends, acks, transactional_id.as_deref()).await
            });
            async move { (slots, call.await) }
        })
        .collect();
    for (slots, answers) in join_all(calls).await {
        let answers = answers.unwrap_or_else(|error| {
            tracing::warn!(%error, "a produce could not reach a partition's shard");
            slots
                .iter()
                .map(|&(_, _, index)| {
                    failure(index, error_code::KAFKA_STORAGE_ERROR, &error.to_string())
                })
                .collect()
        });
        for ((t, p, _), answer) in slots.into_iter().zip(answers) {
            responses[t].partition_responses[p] = answer;
        }
    }
    (acks != 0).then(|| ProduceResponse::default().with_responses(responses))
}

/// The shard every append of one group goes to.
fn shard_of(appends: &[Append]) -> usize {
    appends
        .first()
        .and_then(|a| a.topic.owner(a.partition))
        .unwrap_or(0)
}

/// On the owner shard: appends each partition's records, then (acks=all) waits for the
/// flushes covering them, one shared flush per partition; otherwise flushes in the
/// background. Answers in the order of `appends`.
async fn append_on_owner(
    broker: &Rc<Broker>,
    appends: Vec<Append>,
    acks: i16,
    transactional_id: Option<&str>,
) -> Vec<PartitionProduceResponse> {
    let mut touched: Vec<PartitionLog> = Vec::new();
    let mut answers = Vec::with_capacity(appends.len());
    for append in &appends {
        let Some(log) = broker.logs.get(append.topic.id, append.partition) else {
            answers.push(failure(
                append.partition,
                error_code::UNKNOWN_TOPIC_OR_PARTITION,
                "unknown topic or partition",
            ));
            continue;
        };
        let partition = (append.topic.id, append.partition);
        let result = append_all(
            broker,
            (partition, &append.topic_name),
            &log,
            &append.records,
            &append.topic.config,
            transactional_id,
        )
        .await;
        if result.is_ok() {
            broker.metrics.produced(partition, &append.records);
            if !touched.iter().any(|t| Rc::ptr_eq(t, &log)) {
                touched.push(log.clone());
            }
        }
        answers.push(appended(append.partition, &log, result));
    }
    if acks == -1 {
        // Durable before answering.
        let results = join_all(touched.iter().map(|log| log.flush()).collect()).await;
        if let Some(error) = results.into_iter().find_map(Result::err) {
            if !matches!(error, LogError::Offline(_)) {
                tracing::error!(%error, "flush failed; the partition is offline");
            }
            for answer in &mut answers {
                if answer.error_code == error_code::NONE {
                    answer.error_code = error_code::KAFKA_STORAGE_ERROR;
                    answer.error_message = Some(StrBytes::from_string(error.to_string()));
                }
            }
        }
    } else {
        for log in touched {
            runtime::spawn_detached(async move {
                match log.flush().await {
                    Err(LogError::Offline(_)) | Ok(_) => {}
                    Err(error) => {
                        tracing::error!(%error, "background flush failed; the partition is offline");
                    }
                }
            });
        }
    }
    answers
}

/// What an append assigned: the first base offset, and the append time when the topic
/// stamps batches with it (`message.timestamp.type=LogAppendTime`), else -1.
type Assigned = (Offset, i64);

/// Validates and appends every batch of one partition's records. A batch that fails
/// validation or exceeds `max.message.bytes` rejects the whole partition's records,
/// appending nothing. A transactional producer's first batch in the partition is checked
/// with its coordinator: the partition must be in its open transaction (Kafka's
/// `transaction.partition.verification.enable`), so that no stray batch opens a
/// transaction that nothing would ever end.
async fn append_all(
    broker: &Rc<Broker>,
    (partition, topic_name): ((uuid::Uuid, i32), &str),
    log: &PartitionLog,
    records: &[u8],
    config: &TopicConfig,
    transactional_id: Option<&str>,
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
        if batch.header().is_transactional() && crate::producers::idempotence(&batch).is_none() {
            return Err((
                error_code::INVALID_RECORD,
                "a transactional batch needs a producer id and sequence".to_string(),
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
        let producer = crate::producers::idempotence(&batch);
        if let (true, Some((id, epoch, ..))) = (batch.header().is_transactional(), producer) {
            let open = broker
                .producers
                .borrow()
                .get(&partition)
                .is_some_and(|p| p.in_transaction(id));
            if !open {
                let Some(transactional_id) = transactional_id else {
                    return Err((
                        error_code::INVALID_TXN_STATE,
                        "a transactional batch without a transactional id".to_string(),
                    ));
                };
                let wanted = (topic_name.to_string(), partition.1);
                crate::transactions::verify(broker, transactional_id, (id, epoch), wanted).await?;
            }
        }
        if let Some((id, epoch, first_sequence, last_sequence)) = producer {
            let verdict = broker
                .producers
                .borrow()
                .get(&partition)
                .map_or(Verdict::Append, |p| {
                    p.check(id, epoch, first_sequence, last_sequence)
                });
            match verdict {
                Verdict::Append => {}
                Verdict::Duplicate(offset) => {
                    // A retry: answer with where it was written the first time.
                    first.get_or_insert(Offset(offset));
                    continue;
                }
                Verdict::Reject(code, message) => return Err((code, message)),
            }
        }
        let appended = append_batch(broker, log, &batch).await?;
        if let Some((id, epoch, first_sequence, last_sequence)) = producer {
            broker
                .producers
                .borrow_mut()
                .entry(partition)
                .or_default()
                .record(
                    id,
                    epoch,
                    first_sequence,
                    last_sequence,
                    appended.base_offset.get(),
                );
        }
        if batch.header().is_transactional() {
            if let Some((id, ..)) = producer {
                broker
                    .producers
                    .borrow_mut()
                    .entry(partition)
                    .or_default()
                    .transactional(id, appended.base_offset.get());
            }
        }
        first.get_or_insert(appended.base_offset);
    }
    Ok((first.unwrap_or(Offset(-1)), append_time.unwrap_or(-1)))
}

/// Appends one validated batch to `log`, waiting for the shard's write-behind budget when
/// it is full (by flushing what holds it).
pub(crate) async fn append_batch(
    broker: &Broker,
    log: &PartitionLog,
    batch: &RecordBatch<'_>,
) -> Result<spate_storage::Appended, (i16, String)> {
    let appended = loop {
        match log.append(batch, LeaderEpoch(0)) {
            Err(LogError::BufferFull { .. }) => {
                // The shard's write-behind budget is full: flush whatever holds it (this
                // request's earlier partitions included), which returns it, then retry.
                flush_backlogged(&broker.logs).await.map_err(|e| {
                    tracing::error!(error = %e, "flushing the write-behind backlog failed");
                    (error_code::KAFKA_STORAGE_ERROR, e.to_string())
                })?;
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
    appended.map_err(|e| {
        // An offline partition was logged when its I/O failed; not again for every append.
        if !matches!(e, LogError::Offline(_)) {
            tracing::error!(dir = %log.dir().display(), error = %e, "append failed");
        }
        (error_code::KAFKA_STORAGE_ERROR, e.to_string())
    })
}

/// Flushes every partition of the shard with unflushed appends.
async fn flush_backlogged(logs: &ShardLogs) -> Result<(), LogError> {
    for log in logs.all() {
        if log.unflushed_bytes() > 0 {
            log.flush().await?;
        }
    }
    Ok(())
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
