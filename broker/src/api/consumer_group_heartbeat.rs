//! ConsumerGroupHeartbeat (key 68), versions 0–1: the KIP-848 consumer group protocol
//! (`group.protocol=consumer`); see `groups::consumer`. Subscriptions by regular expression
//! (v1) are refused with INVALID_REGULAR_EXPRESSION.

use super::Broker;
use crate::groups::{self, consumer};
use spate_protocol::kafka_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
use spate_protocol::kafka_protocol::messages::consumer_group_heartbeat_response::{
    Assignment, ConsumerGroupHeartbeatResponse, TopicPartitions,
};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::rc::Rc;

/// INVALID_REGULAR_EXPRESSION: v1's regex subscriptions are refused, not ignored.
const INVALID_REGULAR_EXPRESSION: i16 = 128;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: ConsumerGroupHeartbeatRequest,
    client: (&str, &str),
) -> ConsumerGroupHeartbeatResponse {
    let group = request.group_id.0.to_string();
    let interval = broker.groups.times().consumer_heartbeat;
    let beat = consumer::Heartbeat {
        member_id: request.member_id.to_string(),
        member_epoch: request.member_epoch,
        instance_id: request.instance_id.as_ref().map(|i| i.to_string()),
        subscribed: request
            .subscribed_topic_names
            .as_ref()
            .map(|names| names.iter().map(|n| n.0.to_string()).collect()),
        assignor: request.server_assignor.as_ref().map(|a| a.to_string()),
        owned: request.topic_partitions.as_ref().map(|owned| {
            owned
                .iter()
                .flat_map(|t| t.partitions.iter().map(move |p| (t.topic_id, *p)))
                .collect()
        }),
        client: (client.0.to_string(), client.1.to_string()),
    };
    let regex = request
        .subscribed_topic_regex
        .as_ref()
        .is_some_and(|r| !r.is_empty());
    let answer = if group.is_empty() {
        consumer::Beat {
            error: groups::code::INVALID_GROUP_ID,
            member_epoch: -1,
            ..consumer::Beat::default()
        }
    } else if regex {
        consumer::Beat {
            error: INVALID_REGULAR_EXPRESSION,
            message: Some("regular-expression subscriptions are not supported yet".to_string()),
            member_epoch: -1,
            ..consumer::Beat::default()
        }
    } else {
        let name = group.clone();
        broker
            .on_group(&group, move |owner, _| async move {
                groups::consumer_heartbeat(&owner, &name, beat)
            })
            .await
            .unwrap_or_else(|error| consumer::Beat {
                error,
                member_epoch: -1,
                ..consumer::Beat::default()
            })
    };
    let assignment = answer.assignment.map(|partitions| {
        let mut by_topic: BTreeMap<uuid::Uuid, Vec<i32>> = BTreeMap::new();
        for (topic, partition) in partitions {
            by_topic.entry(topic).or_default().push(partition);
        }
        Assignment::default().with_topic_partitions(
            by_topic
                .into_iter()
                .map(|(topic_id, partitions)| {
                    TopicPartitions::default()
                        .with_topic_id(topic_id)
                        .with_partitions(partitions)
                })
                .collect(),
        )
    });
    ConsumerGroupHeartbeatResponse::default()
        .with_error_code(answer.error)
        .with_error_message(answer.message.map(StrBytes::from_string))
        .with_member_id(
            (!answer.member_id.is_empty()).then(|| StrBytes::from_string(answer.member_id)),
        )
        .with_member_epoch(answer.member_epoch)
        .with_heartbeat_interval_ms(i32::try_from(interval.as_millis()).unwrap_or(i32::MAX))
        .with_assignment(assignment)
}
