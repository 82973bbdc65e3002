//! DeleteRecords (key 21), versions 0–2: move a partition's log start offset forward
//! (offset -1: to the high watermark); whole segments below it are deleted.

use super::{error_code, Broker};
use spate_model::Offset;
use spate_protocol::kafka_protocol::messages::delete_records_request::DeleteRecordsRequest;
use spate_protocol::kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};

pub(super) async fn handle(
    broker: &Broker,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for wanted in &request.topics {
        let topic = broker.topics.get(wanted.name.0.as_str());
        let mut partitions = Vec::with_capacity(wanted.partitions.len());
        for asked in &wanted.partitions {
            let result = DeleteRecordsPartitionResult::default()
                .with_partition_index(asked.partition_index)
                .with_low_watermark(-1);
            let log = topic
                .as_ref()
                .and_then(|t| t.partition(asked.partition_index));
            let Some(log) = log else {
                partitions.push(result.with_error_code(error_code::UNKNOWN_TOPIC_OR_PARTITION));
                continue;
            };
            let high_watermark = log.durable_offset();
            let target = if asked.offset == -1 {
                high_watermark
            } else {
                Offset(asked.offset)
            };
            if target.get() < 0 || target > high_watermark {
                partitions.push(result.with_error_code(error_code::OFFSET_OUT_OF_RANGE));
                continue;
            }
            partitions.push(match log.truncate_prefix(target).await {
                Ok(()) => result.with_low_watermark(log.log_start_offset().get()),
                Err(error) => {
                    tracing::error!(%error, "DeleteRecords failed");
                    result.with_error_code(error_code::KAFKA_STORAGE_ERROR)
                }
            });
        }
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(wanted.name.clone())
                .with_partitions(partitions),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}
