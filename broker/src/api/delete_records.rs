//! DeleteRecords (key 21), versions 0–2: move a partition's log start offset forward
//! (offset -1: to the high watermark); whole segments below it are deleted.

use super::{error_code, Broker};
use crate::topics::PartitionLog;
use spate_model::Offset;
use spate_protocol::kafka_protocol::messages::delete_records_request::DeleteRecordsRequest;
use spate_protocol::kafka_protocol::messages::delete_records_response::{
    DeleteRecordsPartitionResult, DeleteRecordsResponse, DeleteRecordsTopicResult,
};
use std::rc::Rc;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: DeleteRecordsRequest,
) -> DeleteRecordsResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for wanted in &request.topics {
        let topic = broker.topics.get(wanted.name.0.as_str());
        let asked = wanted
            .partitions
            .iter()
            .map(|asked| (asked.partition_index, asked.offset))
            .collect();
        let answers = broker
            .each_partition(topic.as_ref(), asked, delete, |index| {
                DeleteRecordsPartitionResult::default()
                    .with_partition_index(index)
                    .with_low_watermark(-1)
                    .with_error_code(error_code::UNKNOWN_TOPIC_OR_PARTITION)
            })
            .await;
        topics.push(
            DeleteRecordsTopicResult::default()
                .with_name(wanted.name.clone())
                .with_partitions(answers),
        );
    }
    DeleteRecordsResponse::default().with_topics(topics)
}

/// On the partition's owner: moves the log start offset to `offset`.
async fn delete(
    _owner: Rc<Broker>,
    log: PartitionLog,
    index: i32,
    offset: i64,
) -> DeleteRecordsPartitionResult {
    let result = DeleteRecordsPartitionResult::default()
        .with_partition_index(index)
        .with_low_watermark(-1);
    let high_watermark = log.durable_offset();
    let target = if offset == -1 {
        high_watermark
    } else {
        Offset(offset)
    };
    if target.get() < 0 || target > high_watermark {
        return result.with_error_code(error_code::OFFSET_OUT_OF_RANGE);
    }
    match log.truncate_prefix(target).await {
        Ok(()) => result.with_low_watermark(log.log_start_offset().get()),
        Err(error) => {
            tracing::error!(%error, "DeleteRecords failed");
            result.with_error_code(error_code::KAFKA_STORAGE_ERROR)
        }
    }
}
