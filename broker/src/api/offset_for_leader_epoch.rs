//! OffsetForLeaderEpoch (key 23), versions 2–4: where a leader epoch ended in this log
//! (KIP-320 consumers validate their position with it; followers truncate with it). The
//! single node's partitions are in leader epoch 0.

use super::{error_code, Broker};
use crate::topics::PartitionLog;
use spate_model::LeaderEpoch;
use spate_protocol::kafka_protocol::messages::offset_for_leader_epoch_request::{
    OffsetForLeaderEpochRequest, OffsetForLeaderPartition,
};
use spate_protocol::kafka_protocol::messages::offset_for_leader_epoch_response::{
    EpochEndOffset, OffsetForLeaderEpochResponse, OffsetForLeaderTopicResult,
};
use std::rc::Rc;

/// The leader epoch of every partition of this single node.
const CURRENT_EPOCH: i32 = 0;
const FENCED_LEADER_EPOCH: i16 = 74;
const UNKNOWN_LEADER_EPOCH: i16 = 75;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: OffsetForLeaderEpochRequest,
) -> OffsetForLeaderEpochResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for wanted in &request.topics {
        let topic = broker.topics.get(wanted.topic.0.as_str());
        let asked = wanted
            .partitions
            .iter()
            .map(|asked| (asked.partition, asked.clone()))
            .collect();
        let answers = broker
            .each_partition(
                topic.as_ref(),
                asked,
                |_, log, _, asked| async move { end_offset(&log, &asked) },
                |index| {
                    EpochEndOffset::default()
                        .with_partition(index)
                        .with_leader_epoch(-1)
                        .with_end_offset(-1)
                        .with_error_code(error_code::UNKNOWN_TOPIC_OR_PARTITION)
                },
            )
            .await;
        topics.push(
            OffsetForLeaderTopicResult::default()
                .with_topic(wanted.topic.clone())
                .with_partitions(answers),
        );
    }
    OffsetForLeaderEpochResponse::default().with_topics(topics)
}

/// On the partition's owner: where the asked epoch ended.
fn end_offset(log: &PartitionLog, asked: &OffsetForLeaderPartition) -> EpochEndOffset {
    let answer = EpochEndOffset::default()
        .with_partition(asked.partition)
        .with_leader_epoch(-1)
        .with_end_offset(-1);
    // -1 means the caller does not know the current epoch: no fencing check.
    let known = asked.current_leader_epoch >= 0;
    match asked.current_leader_epoch.cmp(&CURRENT_EPOCH) {
        std::cmp::Ordering::Greater => return answer.with_error_code(UNKNOWN_LEADER_EPOCH),
        std::cmp::Ordering::Less if known => return answer.with_error_code(FENCED_LEADER_EPOCH),
        _ => {}
    }
    match log.end_offset_for_epoch(LeaderEpoch(asked.leader_epoch)) {
        Some((epoch, end)) => answer
            .with_leader_epoch(epoch.get())
            .with_end_offset(end.get()),
        // An empty log, or an epoch older than any in it.
        None if log.latest_epoch().is_none() && asked.leader_epoch >= CURRENT_EPOCH => answer
            .with_leader_epoch(CURRENT_EPOCH)
            .with_end_offset(log.next_offset().get()),
        None => answer,
    }
}
