//! ListOffsets (key 2), versions 1–7: earliest (-2), latest (-1: the high watermark, or
//! the last stable offset for `read_committed`), by
//! timestamp (the first record at or after it) and, from v7, max timestamp (-3: the first
//! record carrying the log's largest timestamp, KIP-734).

use super::{error_code, Broker};
use crate::topics::PartitionLog;
use spate_model::Offset;
use spate_protocol::kafka_protocol::messages::list_offsets_request::ListOffsetsRequest;
use spate_protocol::kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};
use std::rc::Rc;

const EARLIEST: i64 = -2;
const LATEST: i64 = -1;
const MAX_TIMESTAMP: i64 = -3;
const FIRST_MAX_TIMESTAMP_VERSION: i16 = 7;
/// The isolation level that sees only up to the last stable offset.
const READ_COMMITTED: i8 = 1;

/// The first version whose response carries the leader epoch.
const FIRST_LEADER_EPOCH_VERSION: i16 = 4;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for wanted in &request.topics {
        let topic = broker.topics.get(wanted.name.0.as_str());
        let asked = wanted
            .partitions
            .iter()
            .map(|asked| (asked.partition_index, asked.timestamp))
            .collect();
        let committed = request.isolation_level == READ_COMMITTED;
        let topic_id = topic.as_ref().map(|t| t.id);
        let answers = broker
            .each_partition(
                topic.as_ref(),
                asked,
                move |owner, log, index, timestamp| async move {
                    let stable = topic_id
                        .filter(|_| committed)
                        .map(|id| crate::producers::last_stable_offset(&owner, (id, index), &log));
                    lookup(log, index, timestamp, version, stable).await
                },
                |index| {
                    ListOffsetsPartitionResponse::default()
                        .with_partition_index(index)
                        .with_error_code(error_code::UNKNOWN_TOPIC_OR_PARTITION)
                        .with_offset(-1)
                        .with_timestamp(-1)
                },
            )
            .await;
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(wanted.name.clone())
                .with_partitions(answers),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}

/// What a ListOffsets partition asks for.
enum Target {
    /// Earliest or latest: an offset known without a lookup (answered without a timestamp).
    Offset(Offset),
    /// The first record at or after this timestamp.
    Timestamp(i64),
}

/// On the partition's owner: the offset for `timestamp` (or one of the special values).
/// `stable`: the last stable offset, for `read_committed`, which sees nothing past it.
async fn lookup(
    log: PartitionLog,
    index: i32,
    timestamp: i64,
    version: i16,
    stable: Option<Offset>,
) -> ListOffsetsPartitionResponse {
    let answer = ListOffsetsPartitionResponse::default().with_partition_index(index);
    let visible_end = stable.unwrap_or_else(|| log.durable_offset());
    let target = match timestamp {
        EARLIEST => Target::Offset(log.log_start_offset()),
        LATEST => Target::Offset(visible_end),
        // No record has a timestamp yet: -1, which finds nothing.
        MAX_TIMESTAMP if version >= FIRST_MAX_TIMESTAMP_VERSION => {
            Target::Timestamp(log.max_timestamp())
        }
        timestamp if timestamp >= 0 => Target::Timestamp(timestamp),
        _ => {
            return answer
                .with_error_code(error_code::UNSUPPORTED_VERSION)
                .with_offset(-1)
                .with_timestamp(-1)
        }
    };
    let answer = match target {
        Target::Offset(offset) => answer.with_offset(offset.get()).with_timestamp(-1),
        Target::Timestamp(target) if target < 0 => answer.with_offset(-1).with_timestamp(-1),
        Target::Timestamp(target) => match log.offset_for_timestamp(target).await {
            Ok(Some((offset, found))) if offset < visible_end => {
                answer.with_offset(offset.get()).with_timestamp(found)
            }
            Ok(_) => answer.with_offset(-1).with_timestamp(-1),
            Err(error) => {
                tracing::error!(%error, "timestamp lookup failed");
                answer
                    .with_error_code(error_code::KAFKA_STORAGE_ERROR)
                    .with_offset(-1)
                    .with_timestamp(-1)
            }
        },
    };
    // The field exists from v4; setting it earlier makes the response unencodable.
    let epoch = if version >= FIRST_LEADER_EPOCH_VERSION {
        0
    } else {
        -1
    };
    answer.with_leader_epoch(epoch)
}
