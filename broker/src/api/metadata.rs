//! Metadata (key 3), versions 0–12: this node as the only broker, leader of every partition;
//! topics by name or (v10+) id; unknown topics auto-created when allowed.

use super::{error_code, Broker};
use crate::topics::{Topic, TopicError};
use spate_protocol::kafka_protocol::messages::metadata_request::MetadataRequest;
use spate_protocol::kafka_protocol::messages::metadata_response::{
    MetadataResponse, MetadataResponseBroker, MetadataResponsePartition, MetadataResponseTopic,
};
use spate_protocol::kafka_protocol::messages::{BrokerId, TopicName};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

/// v1 added the internal-topic flag.
const FIRST_INTERNAL_FLAG_VERSION: i16 = 1;

/// The cluster id every Metadata answer carries.
pub(crate) const CLUSTER_ID: &str = "spate-single-node";

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: MetadataRequest,
    version: i16,
) -> MetadataResponse {
    // Before v4 the request cannot say no to auto-creation.
    let allow_create =
        broker.auto_create_topics && (version < 4 || request.allow_auto_topic_creation);
    let mut topics: Vec<MetadataResponseTopic> = match request.topics {
        None => {
            let names = broker.topics.names();
            names
                .iter()
                .filter_map(|name| {
                    broker
                        .topics
                        .get(name)
                        .map(|topic| describe(broker, name, &topic))
                })
                .collect()
        }
        Some(requested) => {
            let mut out = Vec::with_capacity(requested.len());
            for wanted in requested {
                out.push(match wanted.name {
                    Some(name) => by_name(broker, name.0.as_str(), allow_create).await,
                    None => match broker.topics.by_id(wanted.topic_id) {
                        Some((name, topic)) => describe(broker, &name, &topic),
                        None => MetadataResponseTopic::default()
                            .with_error_code(error_code::UNKNOWN_TOPIC_ID)
                            .with_topic_id(wanted.topic_id),
                    },
                });
            }
            out
        }
    };
    if version >= FIRST_INTERNAL_FLAG_VERSION {
        for topic in &mut topics {
            topic.is_internal = topic
                .name
                .as_ref()
                .is_some_and(|n| crate::topics::is_internal(n.0.as_str()));
        }
    }
    let node = MetadataResponseBroker::default()
        .with_node_id(BrokerId(broker.node_id))
        .with_host(StrBytes::from_string(broker.advertised.0.clone()))
        .with_port(i32::from(broker.advertised.1));
    MetadataResponse::default()
        .with_brokers(vec![node])
        .with_cluster_id(Some(StrBytes::from_static_str(CLUSTER_ID)))
        .with_controller_id(BrokerId(broker.node_id))
        .with_topics(topics)
}

async fn by_name(broker: &Rc<Broker>, name: &str, allow_create: bool) -> MetadataResponseTopic {
    let topic_name = Some(TopicName(StrBytes::from_string(name.to_string())));
    if let Some(topic) = broker.topics.get(name) {
        return describe(broker, name, &topic);
    }
    let error = |code| {
        MetadataResponseTopic::default()
            .with_name(topic_name.clone())
            .with_error_code(code)
    };
    if spate_model::TopicName::new(name).is_err() {
        return error(error_code::INVALID_TOPIC);
    }
    if !allow_create {
        return error(error_code::UNKNOWN_TOPIC_OR_PARTITION);
    }
    match broker
        .create_topic(name, broker.num_partitions, Default::default())
        .await
    {
        Ok(topic) => describe(broker, name, &topic),
        // Created meanwhile by another request: describe what is there.
        Err(TopicError::Exists(_)) => match broker.topics.get(name) {
            Some(topic) => describe(broker, name, &topic),
            None => error(error_code::TOPIC_ALREADY_EXISTS),
        },
        Err(TopicError::InvalidName(_)) => error(error_code::INVALID_TOPIC),
        Err(e) => {
            tracing::error!(topic = name, error = %e, "auto-creating a topic failed");
            error(error_code::KAFKA_STORAGE_ERROR)
        }
    }
}

fn describe(broker: &Broker, name: &str, topic: &Topic) -> MetadataResponseTopic {
    let node = BrokerId(broker.node_id);
    let partitions = (0..topic.partition_count())
        .map(|index| {
            MetadataResponsePartition::default()
                .with_partition_index(index)
                .with_leader_id(node)
                .with_leader_epoch(0)
                .with_replica_nodes(vec![node])
                .with_isr_nodes(vec![node])
        })
        .collect();
    MetadataResponseTopic::default()
        .with_name(Some(TopicName(StrBytes::from_string(name.to_string()))))
        .with_topic_id(topic.id)
        .with_partitions(partitions)
}
