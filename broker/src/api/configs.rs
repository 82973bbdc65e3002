//! The config APIs for topics: DescribeConfigs (key 32, versions 1–4), AlterConfigs (key 33,
//! versions 0–2: replaces the whole set) and IncrementalAlterConfigs (key 44, versions 0–1:
//! set, delete, append, subtract). Broker resources are described with no configs and cannot
//! be altered yet.

use super::{error_code, Broker};
use crate::topic_config::{ConfigError, Kind, TopicConfig, DEFS};
use crate::topics::TopicError;
use spate_protocol::kafka_protocol::messages::alter_configs_request::AlterConfigsRequest;
use spate_protocol::kafka_protocol::messages::alter_configs_response::{
    AlterConfigsResourceResponse, AlterConfigsResponse,
};
use spate_protocol::kafka_protocol::messages::describe_configs_request::DescribeConfigsRequest;
use spate_protocol::kafka_protocol::messages::describe_configs_response::{
    DescribeConfigsResourceResult, DescribeConfigsResponse, DescribeConfigsResult,
};
use spate_protocol::kafka_protocol::messages::incremental_alter_configs_request::IncrementalAlterConfigsRequest;
use spate_protocol::kafka_protocol::messages::incremental_alter_configs_response::{
    AlterConfigsResourceResponse as IncrementalResult, IncrementalAlterConfigsResponse,
};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

const RESOURCE_TOPIC: i8 = 2;
const RESOURCE_BROKER: i8 = 4;
const SOURCE_TOPIC: i8 = 1;
const SOURCE_DEFAULT: i8 = 5;
const FIRST_TYPED_VERSION: i16 = 3;

const SET: i8 = 0;
const DELETE: i8 = 1;
const APPEND: i8 = 2;
const SUBTRACT: i8 = 3;

pub(super) fn describe(
    broker: &Broker,
    request: DescribeConfigsRequest,
    version: i16,
) -> DescribeConfigsResponse {
    let results = request
        .resources
        .iter()
        .map(|resource| {
            let result = DescribeConfigsResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone());
            match resource.resource_type {
                RESOURCE_BROKER => result,
                RESOURCE_TOPIC => match broker.topics.get(resource.resource_name.as_str()) {
                    None => result
                        .with_error_code(error_code::UNKNOWN_TOPIC_OR_PARTITION)
                        .with_error_message(Some(StrBytes::from_static_str("unknown topic"))),
                    Some(topic) => {
                        // Null or empty: every key (as Kafka answers both).
                        let wanted = resource
                            .configuration_keys
                            .as_ref()
                            .filter(|keys| !keys.is_empty());
                        let entries = DEFS
                            .iter()
                            .filter(|def| {
                                wanted
                                    .is_none_or(|keys| keys.iter().any(|k| k.as_str() == def.name))
                            })
                            .filter_map(|def| {
                                entry(
                                    &topic.config,
                                    def.name,
                                    def.kind,
                                    def.doc,
                                    version,
                                    request.include_documentation,
                                )
                            })
                            .collect();
                        result.with_configs(entries)
                    }
                },
                other => result
                    .with_error_code(error_code::INVALID_REQUEST)
                    .with_error_message(Some(StrBytes::from_string(format!(
                        "resource type {other} is not supported"
                    )))),
            }
        })
        .collect();
    DescribeConfigsResponse::default().with_results(results)
}

fn entry(
    config: &TopicConfig,
    name: &'static str,
    kind: Kind,
    doc: &'static str,
    version: i16,
    with_doc: bool,
) -> Option<DescribeConfigsResourceResult> {
    let (value, overridden) = config.get(name)?;
    let mut result = DescribeConfigsResourceResult::default()
        .with_name(StrBytes::from_static_str(name))
        .with_value(Some(StrBytes::from_string(value.to_string())))
        .with_config_source(if overridden {
            SOURCE_TOPIC
        } else {
            SOURCE_DEFAULT
        });
    if version >= FIRST_TYPED_VERSION {
        result.config_type = kind.code();
        if with_doc {
            result.documentation = Some(StrBytes::from_static_str(doc));
        }
    }
    Some(result)
}

/// Validates a topic resource and returns its current config.
fn topic_config(
    broker: &Broker,
    resource_type: i8,
    name: &str,
) -> Result<TopicConfig, (i16, String)> {
    match resource_type {
        RESOURCE_TOPIC => broker
            .topics
            .get(name)
            .map(|topic| topic.config.clone())
            .ok_or((
                error_code::UNKNOWN_TOPIC_OR_PARTITION,
                format!("unknown topic {name}"),
            )),
        RESOURCE_BROKER => Err((
            error_code::INVALID_REQUEST,
            "broker configs cannot be altered yet".to_string(),
        )),
        other => Err((
            error_code::INVALID_REQUEST,
            format!("resource type {other} is not supported"),
        )),
    }
}

fn invalid(e: ConfigError) -> (i16, String) {
    (error_code::INVALID_CONFIG, e.to_string())
}

async fn store(
    broker: &Rc<Broker>,
    name: &str,
    config: TopicConfig,
    validate_only: bool,
) -> Result<(), (i16, String)> {
    if validate_only {
        return Ok(());
    }
    broker
        .set_topic_config(name, config)
        .await
        .map_err(|e| match e {
            TopicError::Unknown(_) => (error_code::UNKNOWN_TOPIC_OR_PARTITION, e.to_string()),
            other => (error_code::KAFKA_STORAGE_ERROR, other.to_string()),
        })
}

pub(super) async fn alter(
    broker: &Rc<Broker>,
    request: AlterConfigsRequest,
) -> AlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let name = resource.resource_name.as_str();
        let outcome = async {
            topic_config(broker, resource.resource_type, name)?;
            // AlterConfigs replaces the whole set: what is not named returns to its default.
            let mut config = TopicConfig::default();
            for entry in &resource.configs {
                match &entry.value {
                    Some(value) => config
                        .set(entry.name.as_str(), value.as_str())
                        .map_err(invalid)?,
                    None => config.delete(entry.name.as_str()).map_err(invalid)?,
                }
            }
            store(broker, name, config, request.validate_only).await
        }
        .await;
        let (code, message) = outcome.err().map_or((error_code::NONE, None), |(c, m)| {
            (c, Some(StrBytes::from_string(m)))
        });
        responses.push(
            AlterConfigsResourceResponse::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone())
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    AlterConfigsResponse::default().with_responses(responses)
}

pub(super) async fn incremental(
    broker: &Rc<Broker>,
    request: IncrementalAlterConfigsRequest,
) -> IncrementalAlterConfigsResponse {
    let mut responses = Vec::with_capacity(request.resources.len());
    for resource in &request.resources {
        let name = resource.resource_name.as_str();
        let outcome = async {
            let mut config = topic_config(broker, resource.resource_type, name)?;
            for entry in &resource.configs {
                let key = entry.name.as_str();
                let value = entry.value.as_ref().map(|v| v.as_str());
                apply(&mut config, key, entry.config_operation, value).map_err(invalid)?;
            }
            store(broker, name, config, request.validate_only).await
        }
        .await;
        let (code, message) = outcome.err().map_or((error_code::NONE, None), |(c, m)| {
            (c, Some(StrBytes::from_string(m)))
        });
        responses.push(
            IncrementalResult::default()
                .with_resource_type(resource.resource_type)
                .with_resource_name(resource.resource_name.clone())
                .with_error_code(code)
                .with_error_message(message),
        );
    }
    IncrementalAlterConfigsResponse::default().with_responses(responses)
}

fn apply(
    config: &mut TopicConfig,
    key: &str,
    operation: i8,
    value: Option<&str>,
) -> Result<(), ConfigError> {
    let invalid = |reason: &str| ConfigError::Invalid {
        name: key.to_string(),
        value: value.unwrap_or("").to_string(),
        reason: reason.to_string(),
    };
    match operation {
        SET => config.set(key, value.ok_or_else(|| invalid("SET needs a value"))?),
        DELETE => config.delete(key),
        APPEND | SUBTRACT => {
            let is_list = DEFS
                .iter()
                .any(|d| d.name == key && matches!(d.kind, Kind::List(_)));
            if !is_list {
                return Err(invalid("APPEND and SUBTRACT apply to list configs only"));
            }
            let (current, _) = config
                .get(key)
                .ok_or_else(|| ConfigError::Unknown(key.to_string()))?;
            let mut items: Vec<String> = current
                .split(',')
                .map(|s| s.trim().to_string())
                .filter(|s| !s.is_empty())
                .collect();
            for item in value
                .unwrap_or("")
                .split(',')
                .map(str::trim)
                .filter(|s| !s.is_empty())
            {
                if operation == APPEND && !items.iter().any(|i| i == item) {
                    items.push(item.to_string());
                } else if operation == SUBTRACT {
                    items.retain(|i| i != item);
                }
            }
            config.set(key, &items.join(","))
        }
        other => Err(invalid(&format!("unknown operation {other}"))),
    }
}
