//! TxnOffsetCommit (key 28), versions 0–3: a transactional producer commits a group's
//! offsets inside its transaction (`send_offsets_to_transaction`). They are written to the
//! group's offsets partition as the producer's transactional batch and apply when the
//! transaction commits (nothing changes if it aborts). From v3 a member's generation is
//! checked as OffsetCommit checks it; generation -1 names only the group.

use super::Broker;
use crate::groups::{self, OffsetToCommit};
use spate_protocol::kafka_protocol::messages::txn_offset_commit_request::TxnOffsetCommitRequest;
use spate_protocol::kafka_protocol::messages::txn_offset_commit_response::{
    TxnOffsetCommitResponse, TxnOffsetCommitResponsePartition, TxnOffsetCommitResponseTopic,
};
use std::rc::Rc;

/// The first version that knows PRODUCER_FENCED.
const FIRST_FENCED_VERSION: i16 = 3;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: TxnOffsetCommitRequest,
    version: i16,
) -> TxnOffsetCommitResponse {
    let group = request.group_id.0.to_string();
    let offsets: Vec<OffsetToCommit> = offsets_to_commit!(request.topics);
    let count = offsets.len();
    let generation = request.generation_id;
    let member_id = request.member_id.to_string();
    let instance_id = request.group_instance_id.as_ref().map(|i| i.to_string());
    let producer = (request.producer_id.0, request.producer_epoch);
    let name = group.clone();
    let codes = if group.is_empty() {
        vec![groups::code::INVALID_GROUP_ID; count]
    } else if producer.0 < 0 {
        vec![crate::transactions::code::INVALID_PRODUCER_ID_MAPPING; count]
    } else {
        broker
            .on_group(&group, move |owner, log| async move {
                let member = (generation, member_id.as_str(), instance_id.as_deref());
                let partition = owner
                    .topics
                    .get(groups::OFFSETS_TOPIC)
                    .map_or(0, |t| groups::partition_for(&name, t.partition_count()));
                let transaction = Some((partition, producer.0, producer.1));
                groups::commit(&owner, &log, &name, member, offsets, transaction).await
            })
            .await
            .unwrap_or_else(|error| vec![error; count])
    };
    let fenced = crate::transactions::fenced(version >= FIRST_FENCED_VERSION);
    let mut codes = codes.into_iter().map(|code| {
        if code == crate::transactions::code::PRODUCER_FENCED {
            fenced
        } else {
            code
        }
    });
    let topics = request
        .topics
        .iter()
        .map(|topic| {
            let partitions = topic
                .partitions
                .iter()
                .map(|p| {
                    TxnOffsetCommitResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or_default())
                })
                .collect();
            TxnOffsetCommitResponseTopic::default()
                .with_name(topic.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    TxnOffsetCommitResponse::default().with_topics(topics)
}
