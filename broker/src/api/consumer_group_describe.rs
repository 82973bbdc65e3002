//! ConsumerGroupDescribe (key 69), versions 0–1: consumer-protocol groups with their
//! epochs, assignor and members (subscriptions, current and target assignments).

use super::{Broker, OPERATIONS_UNKNOWN};
use crate::groups::{self, code, consumer::NamedPartitions};
use spate_protocol::kafka_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
use spate_protocol::kafka_protocol::messages::consumer_group_describe_response::{
    Assignment, ConsumerGroupDescribeResponse, DescribedGroup, Member, TopicPartitions,
};
use spate_protocol::kafka_protocol::messages::TopicName;
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

/// v1 added the member type (1: a consumer-protocol member).
const FIRST_MEMBER_TYPE_VERSION: i16 = 1;

fn assignment(partitions: NamedPartitions) -> Assignment {
    Assignment::default().with_topic_partitions(
        partitions
            .into_iter()
            .map(|(name, id, partitions)| {
                TopicPartitions::default()
                    .with_topic_id(id)
                    .with_topic_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(partitions)
            })
            .collect(),
    )
}

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: ConsumerGroupDescribeRequest,
    version: i16,
) -> ConsumerGroupDescribeResponse {
    let mut described = Vec::with_capacity(request.group_ids.len());
    for group in &request.group_ids {
        let name = group.0.to_string();
        let asked = name.clone();
        let found = broker
            .on_group(&name, move |owner, _| async move {
                groups::describe_consumer_group(&owner, &asked)
            })
            .await;
        let base = DescribedGroup::default()
            .with_group_id(group.clone())
            .with_authorized_operations(OPERATIONS_UNKNOWN);
        described.push(match found {
            Err(error) => base.with_error_code(error),
            Ok(None) => base
                .with_error_code(code::GROUP_ID_NOT_FOUND)
                .with_error_message(Some(StrBytes::from_string(format!(
                    "{name} is not a consumer-protocol group with members"
                )))),
            Ok(Some(group)) => {
                let members = group
                    .members
                    .into_iter()
                    .map(|m| {
                        let mut member = Member::default()
                            .with_member_id(StrBytes::from_string(m.id))
                            .with_instance_id(m.instance_id.map(StrBytes::from_string))
                            .with_member_epoch(m.epoch)
                            .with_client_id(StrBytes::from_string(m.client.0))
                            .with_client_host(StrBytes::from_string(m.client.1))
                            .with_subscribed_topic_names(
                                m.subscribed
                                    .into_iter()
                                    .map(|t| TopicName(StrBytes::from_string(t)))
                                    .collect(),
                            )
                            .with_assignment(assignment(m.assigned))
                            .with_target_assignment(assignment(m.target));
                        if version >= FIRST_MEMBER_TYPE_VERSION {
                            member.member_type = 1;
                        }
                        member
                    })
                    .collect();
                base.with_group_state(StrBytes::from_static_str(group.state))
                    .with_group_epoch(group.epoch)
                    .with_assignment_epoch(group.epoch)
                    .with_assignor_name(StrBytes::from_string(group.assignor))
                    .with_members(members)
            }
        });
    }
    ConsumerGroupDescribeResponse::default().with_groups(described)
}
