//! ListOffsets (key 2), versions 1–7: earliest (-2), latest (-1: the high watermark), by
//! timestamp (the first record at or after it) and, from v7, max timestamp (-3: the first
//! record carrying the log's largest timestamp, KIP-734).

use super::{error_code, Broker};
use spate_protocol::kafka_protocol::messages::list_offsets_request::ListOffsetsRequest;
use spate_protocol::kafka_protocol::messages::list_offsets_response::{
    ListOffsetsPartitionResponse, ListOffsetsResponse, ListOffsetsTopicResponse,
};

const EARLIEST: i64 = -2;
const LATEST: i64 = -1;
const MAX_TIMESTAMP: i64 = -3;
const FIRST_MAX_TIMESTAMP_VERSION: i16 = 7;

/// The first version whose response carries the leader epoch.
const FIRST_LEADER_EPOCH_VERSION: i16 = 4;

pub(super) async fn handle(
    broker: &Broker,
    request: ListOffsetsRequest,
    version: i16,
) -> ListOffsetsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for wanted in &request.topics {
        let topic = broker.topics.get(wanted.name.0.as_str());
        let mut partitions = Vec::with_capacity(wanted.partitions.len());
        for asked in &wanted.partitions {
            let answer =
                ListOffsetsPartitionResponse::default().with_partition_index(asked.partition_index);
            let log = topic
                .as_ref()
                .and_then(|t| t.partition(asked.partition_index));
            let Some(log) = log else {
                partitions.push(
                    answer
                        .with_error_code(error_code::UNKNOWN_TOPIC_OR_PARTITION)
                        .with_offset(-1)
                        .with_timestamp(-1),
                );
                continue;
            };
            let answer = match asked.timestamp {
                EARLIEST => answer
                    .with_offset(log.log_start_offset().get())
                    .with_timestamp(-1),
                LATEST => answer
                    .with_offset(log.durable_offset().get())
                    .with_timestamp(-1),
                MAX_TIMESTAMP if version >= FIRST_MAX_TIMESTAMP_VERSION => {
                    let target = log.max_timestamp();
                    match log.offset_for_timestamp(target).await {
                        Ok(Some((offset, found)))
                            if target >= 0 && offset < log.durable_offset() =>
                        {
                            answer.with_offset(offset.get()).with_timestamp(found)
                        }
                        Ok(_) => answer.with_offset(-1).with_timestamp(-1),
                        Err(error) => {
                            tracing::error!(%error, "max-timestamp lookup failed");
                            answer
                                .with_error_code(error_code::KAFKA_STORAGE_ERROR)
                                .with_offset(-1)
                                .with_timestamp(-1)
                        }
                    }
                }
                timestamp if timestamp >= 0 => match log.offset_for_timestamp(timestamp).await {
                    Ok(Some((offset, found))) if offset < log.durable_offset() => {
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
                _ => answer
                    .with_error_code(error_code::UNSUPPORTED_VERSION)
                    .with_offset(-1)
                    .with_timestamp(-1),
            };
            // The field exists from v4; setting it earlier makes the response unencodable.
            let epoch = if version >= FIRST_LEADER_EPOCH_VERSION {
                0
            } else {
                -1
            };
            partitions.push(answer.with_leader_epoch(epoch));
        }
        topics.push(
            ListOffsetsTopicResponse::default()
                .with_name(wanted.name.clone())
                .with_partitions(partitions),
        );
    }
    ListOffsetsResponse::default().with_topics(topics)
}
