//! DeleteTopics (key 20), versions 1–6 (names, or topic ids from v6).

use super::{error_code, Broker};
use crate::topics::TopicError;
use spate_protocol::kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use spate_protocol::kafka_protocol::messages::delete_topics_response::{
    DeletableTopicResult, DeleteTopicsResponse,
};
use spate_protocol::kafka_protocol::messages::TopicName;
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

const FIRST_TOPIC_STATE_VERSION: i16 = 6;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: DeleteTopicsRequest,
    version: i16,
) -> DeleteTopicsResponse {
    // Up to v5 topics come as names; from v6 as (name or id) states.
    let wanted: Vec<(Option<String>, uuid::Uuid)> = if version >= FIRST_TOPIC_STATE_VERSION {
        request
            .topics
            .iter()
            .map(|t| (t.name.as_ref().map(|n| n.0.to_string()), t.topic_id))
            .collect()
    } else {
        request
            .topic_names
            .iter()
            .map(|n| (Some(n.0.to_string()), uuid::Uuid::nil()))
            .collect()
    };
    let mut results = Vec::with_capacity(wanted.len());
    for (name, id) in wanted {
        let name = name.or_else(|| broker.topics.by_id(id).map(|(name, _)| name));
        let mut result = DeletableTopicResult::default();
        if version >= FIRST_TOPIC_STATE_VERSION {
            result.topic_id = id;
        }
        let Some(name) = name else {
            results.push(result.with_error_code(error_code::UNKNOWN_TOPIC_ID));
            continue;
        };
        result.name = Some(TopicName(StrBytes::from_string(name.clone())));
        results.push(match broker.delete_topic(&name).await {
            Ok(deleted_id) => {
                if version >= FIRST_TOPIC_STATE_VERSION {
                    result.topic_id = deleted_id;
                }
                result
            }
            Err(TopicError::Unknown(_)) => {
                result.with_error_code(error_code::UNKNOWN_TOPIC_OR_PARTITION)
            }
            Err(e @ TopicError::Internal(_)) => {
                let message = (version >= 5).then(|| StrBytes::from_string(e.to_string()));
                result
                    .with_error_code(error_code::INVALID_REQUEST)
                    .with_error_message(message)
            }
            Err(e) => {
                tracing::error!(topic = %name, error = %e, "deleting a topic failed");
                let message = (version >= 5).then(|| StrBytes::from_string(e.to_string()));
                result
                    .with_error_code(error_code::KAFKA_STORAGE_ERROR)
                    .with_error_message(message)
            }
        });
    }
    DeleteTopicsResponse::default().with_responses(results)
}
