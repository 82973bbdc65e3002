//! CreateTopics (key 19), versions 2–7: partitions (-1 = `num.partitions`), replication
//! factor 1 (or -1) on this single node, topic configs (see `topic_config`), validate-only.
//! From v5 the result lists the topic's configs, as Kafka does.

use super::{error_code, Broker};
use crate::topic_config::{TopicConfig, DEFS};
use crate::topics::TopicError;
use spate_protocol::kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreateTopicsRequest,
};
use spate_protocol::kafka_protocol::messages::create_topics_response::{
    CreatableTopicConfigs, CreatableTopicResult, CreateTopicsResponse,
};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

const FIRST_CONFIGS_IN_RESULT_VERSION: i16 = 5;
/// Kafka's `ConfigSource`: a topic override, or the default.
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: CreateTopicsRequest,
    version: i16,
) -> CreateTopicsResponse {
    let mut results = Vec::with_capacity(request.topics.len());
    for topic in &request.topics {
        results.push(create_one(broker, topic, request.validate_only, version).await);
    }
    CreateTopicsResponse::default().with_topics(results)
}

async fn create_one(
    broker: &Rc<Broker>,
    topic: &CreatableTopic,
    validate_only: bool,
    version: i16,
) -> CreatableTopicResult {
    let name = topic.name.0.as_str();
    let partitions = if topic.num_partitions == -1 {
        broker.num_partitions
    } else {
        topic.num_partitions
    };
    let base = CreatableTopicResult::default().with_name(topic.name.clone());
    let fail = |code, message: String| {
        let result = base
            .clone()
            .with_error_code(code)
            .with_error_message(Some(StrBytes::from_string(message)));
        if version >= FIRST_CONFIGS_IN_RESULT_VERSION {
            result.with_num_partitions(-1).with_replication_factor(-1)
        } else {
            result
        }
    };
    if !matches!(topic.replication_factor, -1 | 1) {
        let message = format!(
            "replication factor {} but this cluster has 1 broker",
            topic.replication_factor
        );
        return fail(error_code::INVALID_REPLICATION_FACTOR, message);
    }
    if !topic.assignments.is_empty() {
        return fail(
            error_code::INVALID_REQUEST,
            "manual replica assignment is not supported".to_string(),
        );
    }
    let mut config = TopicConfig::default();
    for entry in &topic.configs {
        let outcome = match &entry.value {
            Some(value) => config.set(entry.name.as_str(), value.as_str()),
            None => config.delete(entry.name.as_str()),
        };
        if let Err(e) = outcome {
            return fail(error_code::INVALID_CONFIG, e.to_string());
        }
    }
    let outcome = if validate_only {
        broker.topics.check_new(name, partitions).map(|()| None)
    } else {
        broker
            .create_topic(name, partitions, config.clone())
            .await
            .map(|topic| Some(topic.id))
    };
    match outcome {
        Ok(id) => {
            let mut result = base.with_topic_id(id.unwrap_or_default());
            if version >= FIRST_CONFIGS_IN_RESULT_VERSION {
                result = result
                    .with_num_partitions(partitions)
                    .with_replication_factor(1)
                    .with_configs(Some(describe(&config)));
            }
            result
        }
        Err(e @ TopicError::Exists(_)) => fail(error_code::TOPIC_ALREADY_EXISTS, e.to_string()),
        Err(e @ TopicError::InvalidName(_)) => fail(error_code::INVALID_TOPIC, e.to_string()),
        Err(e @ TopicError::BadPartitionCount(_)) => {
            fail(error_code::INVALID_PARTITIONS, e.to_string())
        }
        Err(e) => {
            tracing::error!(topic = name, error = %e, "creating a topic failed");
            fail(error_code::KAFKA_STORAGE_ERROR, e.to_string())
        }
    }
}

fn describe(config: &TopicConfig) -> Vec<CreatableTopicConfigs> {
    DEFS.iter()
        .filter_map(|def| {
            let (value, overridden) = config.get(def.name)?;
            Some(
                CreatableTopicConfigs::default()
                    .with_name(StrBytes::from_static_str(def.name))
                    .with_value(Some(StrBytes::from_string(value.to_string())))
                    .with_config_source(if overridden {
                        SOURCE_TOPIC
                    } else {
                        SOURCE_DEFAULT
                    }),
            )
        })
        .collect()
}
