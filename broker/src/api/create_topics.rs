//! CreateTopics (key 19), versions 2–7: partitions (-1 = `num.partitions`), replication
//! factor 1 (or -1) on this single node, validate-only. Topic configs are not applied yet:
//! a request carrying any is refused for that topic with INVALID_REQUEST, so nothing is
//! silently ignored.

use super::{error_code, Broker};
use crate::topics::TopicError;
use spate_protocol::kafka_protocol::messages::create_topics_request::CreateTopicsRequest;
use spate_protocol::kafka_protocol::messages::create_topics_response::{
    CreatableTopicResult, CreateTopicsResponse,
};
use spate_protocol::kafka_protocol::protocol::StrBytes;

pub(super) async fn handle(
    broker: &Broker,
    request: CreateTopicsRequest,
    _version: i16,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        let name = topic.name.0.as_str();
        let partitions = if topic.num_partitions == -1 {
            broker.num_partitions
        } else {
            topic.num_partitions
        };
        let result = CreatableTopicResult::default()
            .with_name(topic.name.clone())
            .with_num_partitions(partitions)
            .with_replication_factor(1);
        let fail = |code, message: String| {
            result
                .clone()
                .with_error_code(code)
                .with_error_message(Some(StrBytes::from_string(message)))
                .with_num_partitions(-1)
                .with_replication_factor(-1)
        };
        if !matches!(topic.replication_factor, -1 | 1) {
            results.push(fail(
                error_code::INVALID_REPLICATION_FACTOR,
                format!(
                    "replication factor {} but this cluster has 1 broker",
                    topic.replication_factor
                ),
            ));
            continue;
        }
        if !topic.assignments.is_empty() {
            results.push(fail(
                error_code::INVALID_REQUEST,
                "manual replica assignment is not supported".to_string(),
            ));
            continue;
        }
        if !topic.configs.is_empty() {
            results.push(fail(
                error_code::INVALID_REQUEST,
                "topic configs are not supported yet".to_string(),
            ));
            continue;
        }
        let outcome = if request.validate_only {
            broker.topics.check_new(name, partitions).map(|()| None)
        } else {
            broker
                .topics
                .create(name, partitions)
                .await
                .map(|topic| Some(topic.id))
        };
        results.push(match outcome {
            Ok(id) => result.with_topic_id(id.unwrap_or_default()),
            Err(e @ TopicError::Exists(_)) => fail(error_code::TOPIC_ALREADY_EXISTS, e.to_string()),
            Err(e @ TopicError::InvalidName(_)) => fail(error_code::INVALID_TOPIC, e.to_string()),
            Err(e @ TopicError::BadPartitionCount(_)) => {
                fail(error_code::INVALID_PARTITIONS, e.to_string())
            }
            Err(e) => {
                tracing::error!(topic = name, error = %e, "creating a topic failed");
                fail(error_code::KAFKA_STORAGE_ERROR, e.to_string())
            }
        });
    }
    CreateTopicsResponse::default().with_topics(results)
}
