//! DescribeTopicPartitions (key 75), version 0: topics (all when none are named) with their
//! partitions, at most `response_partition_limit` partitions per answer, resumable with the
//! cursor the previous answer returned.

use super::{error_code, Broker};
use spate_protocol::kafka_protocol::messages::describe_topic_partitions_request::DescribeTopicPartitionsRequest;
use spate_protocol::kafka_protocol::messages::describe_topic_partitions_response::{
    Cursor, DescribeTopicPartitionsResponse, DescribeTopicPartitionsResponsePartition,
    DescribeTopicPartitionsResponseTopic,
};
use spate_protocol::kafka_protocol::messages::{BrokerId, TopicName};
use spate_protocol::kafka_protocol::protocol::StrBytes;

/// The most partitions one answer carries, whatever the client asks.
const MAX_PARTITIONS_PER_RESPONSE: usize = 2000;

pub(super) fn handle(
    broker: &Broker,
    request: DescribeTopicPartitionsRequest,
) -> DescribeTopicPartitionsResponse {
    let mut names: Vec<String> = if request.topics.is_empty() {
        broker.topics.names()
    } else {
        request
            .topics
            .iter()
            .map(|t| t.name.0.to_string())
            .collect()
    };
    names.sort();
    names.dedup();
    let (start_topic, start_partition) = request.cursor.as_ref().map_or((String::new(), 0), |c| {
        (
            c.topic_name.0.to_string(),
            usize::try_from(c.partition_index).unwrap_or(0),
        )
    });
    let limit = usize::try_from(request.response_partition_limit)
        .unwrap_or(0)
        .clamp(1, MAX_PARTITIONS_PER_RESPONSE);
    let node = BrokerId(broker.node_id);
    let mut budget = limit;
    let mut topics = Vec::new();
    let mut next_cursor = None;
    for name in names.into_iter().filter(|name| *name >= start_topic) {
        let topic_name = TopicName(StrBytes::from_string(name.clone()));
        let Some(topic) = broker.topics.get(&name) else {
            topics.push(
                DescribeTopicPartitionsResponseTopic::default()
                    .with_name(Some(topic_name))
                    .with_error_code(error_code::UNKNOWN_TOPIC_OR_PARTITION),
            );
            continue;
        };
        let first = if name == start_topic {
            start_partition
        } else {
            0
        };
        let mut partitions = Vec::new();
        for index in first..topic.owners.len() {
            if budget == 0 {
                let partition_index = i32::try_from(index).unwrap_or(i32::MAX);
                next_cursor = Some(
                    Cursor::default()
                        .with_topic_name(topic_name.clone())
                        .with_partition_index(partition_index),
                );
                break;
            }
            budget -= 1;
            partitions.push(
                DescribeTopicPartitionsResponsePartition::default()
                    .with_partition_index(i32::try_from(index).unwrap_or(i32::MAX))
                    .with_leader_id(node)
                    .with_leader_epoch(0)
                    .with_replica_nodes(vec![node])
                    .with_isr_nodes(vec![node]),
            );
        }
        topics.push(
            DescribeTopicPartitionsResponseTopic::default()
                .with_name(Some(topic_name))
                .with_topic_id(topic.id)
                .with_partitions(partitions),
        );
        if next_cursor.is_some() {
            break;
        }
    }
    DescribeTopicPartitionsResponse::default()
        .with_topics(topics)
        .with_next_cursor(next_cursor)
}
