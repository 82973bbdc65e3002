//! OffsetCommit (key 8), versions 2–9: a group's consumed positions, written to its
//! `__consumer_offsets` partition and durable before the answer. A group member commits
//! with its generation; anyone may commit for a group without members (generation -1).

use super::Broker;
use crate::groups::{self, OffsetToCommit};
use spate_protocol::kafka_protocol::messages::offset_commit_request::OffsetCommitRequest;
use spate_protocol::kafka_protocol::messages::offset_commit_response::{
    OffsetCommitResponse, OffsetCommitResponsePartition, OffsetCommitResponseTopic,
};
use std::rc::Rc;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: OffsetCommitRequest,
) -> OffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let offsets: Vec<OffsetToCommit> = offsets_to_commit!(request.topics);
    let count = offsets.len();
    let generation = request.generation_id_or_member_epoch;
    let member_id = request.member_id.to_string();
    let instance_id = request.group_instance_id.as_ref().map(|i| i.to_string());
    let name = group.clone();
    let codes = if group.is_empty() {
        vec![groups::code::INVALID_GROUP_ID; count]
    } else {
        broker
            .on_group(&group, move |owner, log| async move {
                let member = (generation, member_id.as_str(), instance_id.as_deref());
                groups::commit(&owner, &log, &name, member, offsets, None).await
            })
            .await
            .unwrap_or_else(|error| vec![error; count])
    };
    let mut codes = codes.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    OffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or_default())
                })
                .collect();
            OffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetCommitResponse::default().with_topics(topics)
}
