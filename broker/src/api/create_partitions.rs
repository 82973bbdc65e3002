//! CreatePartitions (key 37), versions 0–3: raise a topic's partition count.

use super::{error_code, Broker};
use crate::topics::TopicError;
use spate_protocol::kafka_protocol::messages::create_partitions_request::CreatePartitionsRequest;
use spate_protocol::kafka_protocol::messages::create_partitions_response::{
    CreatePartitionsResponse, CreatePartitionsTopicResult,
};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: CreatePartitionsRequest,
) -> CreatePartitionsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let result = CreatePartitionsTopicResult::default().with_name(topic.name.clone());
        let fail = |code, message: String| {
            result
                .clone()
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_string(message)))
        };
        if topic.assignments.as_ref().is_some_and(|a| !a.is_empty()) {
            results.push(fail(
                error_code::INVALID_REQUEST,
                "manual replica assignment is not supported".to_string(),
            ));
            continue;
        }
        results.push(
            match broker
                .add_partitions(topic.name.0.as_str(), topic.count, request.validate_only)
                .await
            {
                Ok(()) => result,
                Err(e @ TopicError::Unknown(_)) => {
                    fail(error_code::UNKNOWN_TOPIC_OR_PARTITION, e.to_string())
                }
                Err(e @ TopicError::Internal(_)) => {
                    fail(error_code::INVALID_REQUEST, e.to_string())
                }
                Err(e @ TopicError::BadNewPartitionCount { .. }) => {
                    fail(error_code::INVALID_PARTITIONS, e.to_string())
                }
                Err(e) => fail(error_code::KAFKA_STORAGE_ERROR, e.to_string()),
            },
        );
    }
    CreatePartitionsResponse::default().with_results(results)
}
