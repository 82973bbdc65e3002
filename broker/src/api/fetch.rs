//! Fetch (key 1), versions 4–13: whole batches up to the high watermark (on this single
//! node, the durable offset), per-partition and per-response byte limits (at least one
//! batch, as Kafka), topic ids from v13, long polling bounded by `max_wait_ms`. No fetch
//! sessions: every answer carries session id 0, so clients send full fetches.
//!
//! `read_committed` (isolation level 1) reads only up to the last stable offset, and names
//! the aborted transactions whose records the answer holds, so that the client drops them.
//!
//! The partitions' owner shards read in parallel, each within the response limit; the
//! connection's shard then keeps whole batches in request order up to that limit.

use super::{error_code, Broker};
use crate::runtime;
use bytes::Bytes;
use spate_model::batch::BatchSplitter;
use spate_model::Offset;
use spate_protocol::kafka_protocol::messages::fetch_request::FetchRequest;
use spate_protocol::kafka_protocol::messages::fetch_response::{
    AbortedTransaction, FetchResponse, FetchableTopicResponse, PartitionData,
};
use spate_protocol::kafka_protocol::messages::ProducerId;
use spate_storage::join;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};
use uuid::Uuid;

/// The longest a fetch waits for data, whatever the client asks.
const MAX_WAIT: Duration = Duration::from_secs(30);
const FIRST_TOPIC_ID_VERSION: i16 = 13;
/// The isolation level that hides open and aborted transactions.
const READ_COMMITTED: i8 = 1;

/// One partition to read, on its owner shard.
#[derive(Debug, Clone)]
struct Read {
    topic: Uuid,
    partition: i32,
    offset: Offset,
    max_bytes: usize,
}

/// What an owner found for one partition.
struct Found {
    data: PartitionData,
    /// The high watermark it read up to (None when the partition failed).
    high_watermark: Option<Offset>,
}

/// Where a partition's answer comes from.
enum Slot {
    /// Already decided on this shard: this error (an unknown topic or partition).
    Failed { partition: i32, code: i16 },
    /// The `index`-th read of shard `shard`.
    Read { shard: usize, index: usize },
}

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: FetchRequest,
    version: i16,
) -> FetchResponse {
    let wait = Duration::from_millis(u64::try_from(request.max_wait_ms).unwrap_or(0)).min(MAX_WAIT);
    let deadline = Instant::now() + wait;
    let min_bytes = usize::try_from(request.min_bytes).unwrap_or(0);
    let max_bytes = usize::try_from(request.max_bytes).unwrap_or(0);
    let committed = request.isolation_level == READ_COMMITTED;
    let (slots, reads) = plan(broker, &request, version);
    loop {
        let calls = reads
            .iter()
            .map(|(&shard, reads)| {
                let reads = reads.clone();
                broker.on_shard(shard, move |owner| async move {
                    read_on_owner(&owner, &reads, max_bytes, committed).await
                })
            })
            .collect();
        let mut found: BTreeMap<usize, Vec<Found>> = BTreeMap::new();
        for ((&shard, shard_reads), result) in reads.iter().zip(join::join_all(calls).await) {
            let answers = result.unwrap_or_else(|error| {
                tracing::warn!(%error, "a fetch could not reach a partition's shard");
                shard_reads
                    .iter()
                    .map(|read| Found {
                        data: empty(read.partition, error_code::KAFKA_STORAGE_ERROR, -1, -1),
                        high_watermark: None,
                    })
                    .collect()
            });
            found.insert(shard, answers);
        }
        let pass = assemble(&request, version, &slots, &mut found, max_bytes);
        let now = Instant::now();
        if pass.bytes >= min_bytes.max(1) || pass.errors || now >= deadline {
            count_traffic(broker, &pass.response, &slots, &reads);
            return pass.response;
        }
        // Sleep until one of the partitions' high watermarks moves, or the deadline.
        let waits = reads
            .iter()
            .map(|(&shard, shard_reads)| {
                let seen: Vec<(Uuid, i32, Offset)> = shard_reads
                    .iter()
                    .zip(&found[&shard])
                    .filter_map(|(read, f)| Some((read.topic, read.partition, f.high_watermark?)))
                    .collect();
                broker.on_shard(shard, move |owner| async move {
                    wait_on_owner(&owner, seen, deadline).await;
                })
            })
            .collect();
        futures_lite::future::or(
            async {
                // A shard that cannot be reached answers at once; the next pass reports it.
                let _ = join::first_of(waits).await;
            },
            runtime::sleep(deadline - now),
        )
        .await;
    }
}

/// Counts what the response returns per partition (on this, the connection's shard).
fn count_traffic(
    broker: &Broker,
    response: &FetchResponse,
    slots: &[Vec<Slot>],
    reads: &BTreeMap<usize, Vec<Read>>,
) {
    let partitions = response
        .responses
        .iter()
        .zip(slots)
        .flat_map(|(topic, slots)| topic.partitions.iter().zip(slots));
    for (data, slot) in partitions {
        let (Some(records), Slot::Read { shard, index }) = (&data.records, slot) else {
            continue;
        };
        if let Some(read) = reads.get(shard).and_then(|list| list.get(*index)) {
            if !records.is_empty() {
                broker
                    .metrics
                    .fetched((read.topic, read.partition), records);
            }
        }
    }
}

/// Resolves the request's topics on this shard: answers for unknown ones, and the reads
/// for each owner shard.
fn plan(
    broker: &Broker,
    request: &FetchRequest,
    version: i16,
) -> (Vec<Vec<Slot>>, BTreeMap<usize, Vec<Read>>) {
    let mut reads: BTreeMap<usize, Vec<Read>> = BTreeMap::new();
    let slots = request
        .topics
        .iter()
        .map(|wanted| {
            let found = if version >= FIRST_TOPIC_ID_VERSION {
                broker.topics.by_id(wanted.topic_id).map(|(_, topic)| topic)
            } else {
                broker.topics.get(wanted.topic.0.as_str())
            };
            wanted
                .partitions
                .iter()
                .map(|fetch| {
                    let owner = found.as_ref().and_then(|t| t.owner(fetch.partition));
                    match (owner, &found) {
                        (Some(shard), Some(topic)) => {
                            let list = reads.entry(shard).or_default();
                            list.push(Read {
                                topic: topic.id,
                                partition: fetch.partition,
                                offset: Offset(fetch.fetch_offset),
                                max_bytes: usize::try_from(fetch.partition_max_bytes).unwrap_or(0),
                            });
                            Slot::Read {
                                shard,
                                index: list.len() - 1,
                            }
                        }
                        _ => {
                            let code = if version >= FIRST_TOPIC_ID_VERSION && found.is_none() {
                                error_code::UNKNOWN_TOPIC_ID
                            } else {
                                error_code::UNKNOWN_TOPIC_OR_PARTITION
                            };
                            Slot::Failed {
                                partition: fetch.partition,
                                code,
                            }
                        }
                    }
                })
                .collect()
        })
        .collect();
    (slots, reads)
}

/// On the owner shard: reads each partition, within `max_bytes` in all (the first
/// partition with data gets at least one batch); `committed`: only up to the last stable
/// offset.
async fn read_on_owner(
    broker: &Broker,
    reads: &[Read],
    max_bytes: usize,
    committed: bool,
) -> Vec<Found> {
    let mut budget = max_bytes;
    let mut total = 0;
    let mut found = Vec::with_capacity(reads.len());
    for read in reads {
        let Some(log) = broker.logs.get(read.topic, read.partition) else {
            found.push(Found {
                data: empty(
                    read.partition,
                    error_code::UNKNOWN_TOPIC_OR_PARTITION,
                    -1,
                    -1,
                ),
                high_watermark: None,
            });
            continue;
        };
        let high_watermark = log.durable_offset();
        let log_start = log.log_start_offset();
        if read.offset < log_start || read.offset > log.next_offset() {
            found.push(Found {
                data: empty(
                    read.partition,
                    error_code::OFFSET_OUT_OF_RANGE,
                    high_watermark.get(),
                    log_start.get(),
                ),
                high_watermark: None,
            });
            continue;
        }
        let limit = read.max_bytes.min(budget).max(usize::from(total == 0));
        let key = (read.topic, read.partition);
        let stable = crate::producers::last_stable_offset(broker, key, &log);
        let mut data = empty(
            read.partition,
            error_code::NONE,
            high_watermark.get(),
            log_start.get(),
        )
        .with_last_stable_offset(stable.get());
        let upto = if committed { stable } else { high_watermark };
        if limit > 0 || total == 0 {
            match log.read(read.offset, limit, upto).await {
                Ok(batches) => {
                    total += batches.bytes.len();
                    budget = budget.saturating_sub(batches.bytes.len());
                    if committed {
                        let end = end_offset(&batches.bytes);
                        let aborted = broker
                            .producers
                            .borrow()
                            .get(&key)
                            .map(|p| p.aborted_within(read.offset.get(), end))
                            .unwrap_or_default();
                        data.aborted_transactions = Some(
                            aborted
                                .into_iter()
                                .map(|(id, first)| {
                                    AbortedTransaction::default()
                                        .with_producer_id(ProducerId(id))
                                        .with_first_offset(first)
                                })
                                .collect(),
                        );
                    }
                    data.records = Some(batches.bytes);
                }
                Err(error) => {
                    tracing::error!(%error, "fetch read failed");
                    data.error_code = error_code::KAFKA_STORAGE_ERROR;
                    found.push(Found {
                        data,
                        high_watermark: None,
                    });
                    continue;
                }
            }
        }
        found.push(Found {
            data,
            high_watermark: Some(high_watermark),
        });
    }
    found
}

/// On the owner shard: waits until one of the partitions' high watermarks passes what the
/// last pass saw, or the deadline.
async fn wait_on_owner(broker: &Broker, seen: Vec<(Uuid, i32, Offset)>, deadline: Instant) {
    let logs: Vec<_> = seen
        .into_iter()
        .filter_map(|(topic, partition, offset)| Some((broker.logs.get(topic, partition)?, offset)))
        .collect();
    let moved = logs
        .iter()
        .map(|(log, offset)| log.wait_for_durable_beyond(*offset))
        .collect();
    futures_lite::future::or(
        async {
            join::first_of(moved).await;
        },
        runtime::sleep(deadline.saturating_duration_since(Instant::now())),
    )
    .await;
}

/// What one pass over the partitions found.
struct Pass {
    response: FetchResponse,
    /// Record bytes in the response.
    bytes: usize,
    /// Whether any partition failed (which answers at once).
    errors: bool,
}

/// Builds the response in request order, keeping whole batches within `max_bytes` (the
/// first partition with data keeps all it read, at least one batch, as Kafka does).
fn assemble(
    request: &FetchRequest,
    version: i16,
    slots: &[Vec<Slot>],
    found: &mut BTreeMap<usize, Vec<Found>>,
    max_bytes: usize,
) -> Pass {
    let mut total = 0;
    let mut errors = false;
    let topics = request
        .topics
        .iter()
        .zip(slots)
        .map(|(wanted, slots)| {
            let partitions = slots
                .iter()
                .map(|slot| {
                    let mut data = match slot {
                        Slot::Failed { partition, code } => empty(*partition, *code, -1, -1),
                        Slot::Read { shard, index } => found
                            .get_mut(shard)
                            .and_then(|list| list.get_mut(*index))
                            .map(|f| std::mem::take(&mut f.data))
                            .unwrap_or_default(),
                    };
                    errors |= data.error_code != error_code::NONE;
                    if let Some(records) = data.records.take() {
                        let kept = if total == 0 {
                            records
                        } else {
                            whole_batches(records, max_bytes.saturating_sub(total))
                        };
                        total += kept.len();
                        data.records = Some(kept);
                    }
                    data
                })
                .collect();
            let mut topic = FetchableTopicResponse::default().with_partitions(partitions);
            if version >= FIRST_TOPIC_ID_VERSION {
                topic.topic_id = wanted.topic_id;
            } else {
                topic.topic = wanted.topic.clone();
            }
            topic
        })
        .collect();
    Pass {
        response: FetchResponse::default().with_responses(topics),
        bytes: total,
        errors,
    }
}

/// The offset after the last batch of `records` (0 if there is none).
fn end_offset(records: &[u8]) -> i64 {
    BatchSplitter::new(records)
        .filter_map(Result::ok)
        .filter_map(spate_model::batch::BatchHeader::view)
        .map(|header| header.last_offset().get() + 1)
        .last()
        .unwrap_or(0)
}

/// The longest prefix of `records` made of whole batches within `limit` bytes.
fn whole_batches(records: Bytes, limit: usize) -> Bytes {
    if records.len() <= limit {
        return records;
    }
    let mut end = 0;
    for batch in BatchSplitter::new(&records) {
        match batch {
            Ok(batch) if end + batch.len() <= limit => end += batch.len(),
            _ => break,
        }
    }
    records.slice(..end)
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

#[cfg(test)]
mod tests {
    use super::*;
    use spate_model::batch::{BatchBuilder, BuilderRecord};
    use spate_model::Compression;

    #[test]
    fn trimming_keeps_whole_batches_only() {
        let mut bytes = Vec::new();
        let mut sizes = Vec::new();
        for i in 0..3_u8 {
            let mut builder = BatchBuilder::new(Compression::None);
            builder
                .push(&BuilderRecord {
                    timestamp_ms: 1,
                    key: None,
                    value: Some(&[i; 40]),
                    headers: &[],
                })
                .expect("push");
            let batch = builder.build().expect("build");
            sizes.push(batch.len());
            bytes.extend_from_slice(&batch);
        }
        let records = Bytes::from(bytes);
        assert_eq!(whole_batches(records.clone(), records.len()), records);
        assert_eq!(
            whole_batches(records.clone(), sizes[0] + sizes[1]).len(),
            sizes[0] + sizes[1]
        );
        assert_eq!(
            whole_batches(records.clone(), sizes[0] + sizes[1] - 1).len(),
            sizes[0]
        );
        assert!(whole_batches(records, sizes[0] - 1).is_empty());
    }
}
