//! DescribeProducers (key 61), version 0: the producers a partition remembers (idempotent
//! and transactional), each with its epoch, last sequence and the first offset of its open
//! transaction (-1 for none). Timestamps and coordinator epochs are not tracked (-1).

use super::{error_code, Broker};
use spate_protocol::kafka_protocol::messages::describe_producers_request::DescribeProducersRequest;
use spate_protocol::kafka_protocol::messages::describe_producers_response::{
    DescribeProducersResponse, PartitionResponse, ProducerState, TopicResponse,
};
use spate_protocol::kafka_protocol::messages::ProducerId;
use std::rc::Rc;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: DescribeProducersRequest,
) -> DescribeProducersResponse {
    let mut topics = Vec::with_capacity(request.topics.len());
    for wanted in &request.topics {
        let topic = broker.topics.get(wanted.name.0.as_str());
        let id = topic.as_ref().map(|t| t.id);
        let asked = wanted.partition_indexes.iter().map(|p| (*p, ())).collect();
        let partitions = broker
            .each_partition(
                topic.as_ref(),
                asked,
                move |owner, _, index, ()| async move {
                    let producers = id
                        .and_then(|id| {
                            owner
                                .producers
                                .borrow()
                                .get(&(id, index))
                                .map(crate::producers::PartitionProducers::describe)
                        })
                        .unwrap_or_default();
                    let active = producers
                        .into_iter()
                        .map(|(producer, epoch, last_sequence, txn_start)| {
                            ProducerState::default()
                                .with_producer_id(ProducerId(producer))
                                .with_producer_epoch(i32::from(epoch))
                                .with_last_sequence(last_sequence)
                                .with_last_timestamp(-1)
                                .with_coordinator_epoch(-1)
                                .with_current_txn_start_offset(txn_start)
                        })
                        .collect();
                    PartitionResponse::default()
                        .with_partition_index(index)
                        .with_active_producers(active)
                },
                |index| {
                    PartitionResponse::default()
                        .with_partition_index(index)
                        .with_error_code(error_code::UNKNOWN_TOPIC_OR_PARTITION)
                },
            )
            .await;
        topics.push(
            TopicResponse::default()
                .with_name(wanted.name.clone())
                .with_partitions(partitions),
        );
    }
    DescribeProducersResponse::default().with_topics(topics)
}
