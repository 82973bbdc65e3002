//! AddPartitionsToTxn (key 24), versions 0–3 (the client versions; v4+ carry brokers'
//! batched checks, which a single node does not send): adds partitions to the producer's
//! transaction before it writes to them. If any partition is unknown, none is added: the
//! unknown ones get UNKNOWN_TOPIC_OR_PARTITION and the rest OPERATION_NOT_ATTEMPTED.

use super::{error_code, Broker};
use crate::transactions::{self, code};
use spate_protocol::kafka_protocol::messages::add_partitions_to_txn_request::AddPartitionsToTxnRequest;
use spate_protocol::kafka_protocol::messages::add_partitions_to_txn_response::{
    AddPartitionsToTxnPartitionResult, AddPartitionsToTxnResponse, AddPartitionsToTxnTopicResult,
};
use std::rc::Rc;

/// The first version that knows PRODUCER_FENCED.
const FIRST_FENCED_VERSION: i16 = 2;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: AddPartitionsToTxnRequest,
    version: i16,
) -> AddPartitionsToTxnResponse {
    let id = request.v3_and_below_transactional_id.0.to_string();
    let producer = (
        request.v3_and_below_producer_id.0,
        request.v3_and_below_producer_epoch,
    );
    let knows_fenced = version >= FIRST_FENCED_VERSION;
    // Per topic, per partition: known or not.
    let known: Vec<Vec<bool>> = request
        .v3_and_below_topics
        .iter()
        .map(|topic| {
            let name = topic.name.0.as_str();
            let found = broker
                .topics
                .get(name)
                .filter(|_| !crate::topics::is_internal(name));
            topic
                .partitions
                .iter()
                .map(|p| found.as_ref().is_some_and(|t| t.owner(*p).is_some()))
                .collect()
        })
        .collect();
    let all_known = known.iter().flatten().all(|k| *k);
    let result: Result<(), i16> = if id.is_empty() {
        Err(code::INVALID_PRODUCER_ID_MAPPING)
    } else if !all_known {
        Err(code::OPERATION_NOT_ATTEMPTED)
    } else {
        let added: Vec<(String, i32)> = request
            .v3_and_below_topics
            .iter()
            .flat_map(|t| t.partitions.iter().map(|p| (t.name.0.to_string(), *p)))
            .collect();
        let key = id.clone();
        broker
            .on_transaction(&key, move |owner, log| async move {
                transactions::add_partitions(&owner, &log, &id, producer, added, knows_fenced).await
            })
            .await
            .and_then(|r| r)
    };
    let topics = request
        .v3_and_below_topics
        .iter()
        .zip(&known)
        .map(|(topic, known)| {
            let partitions = topic
                .partitions
                .iter()
                .zip(known)
                .map(|(p, known)| {
                    let error = match result {
                        Ok(()) => code::NONE,
                        Err(code::OPERATION_NOT_ATTEMPTED) if !known => {
                            error_code::UNKNOWN_TOPIC_OR_PARTITION
                        }
                        Err(error) => error,
                    };
                    AddPartitionsToTxnPartitionResult::default()
                        .with_partition_index(*p)
                        .with_partition_error_code(error)
                })
                .collect();
            AddPartitionsToTxnTopicResult::default()
                .with_name(topic.name.clone())
                .with_results_by_partition(partitions)
        })
        .collect();
    AddPartitionsToTxnResponse::default().with_results_by_topic_v3_and_below(topics)
}
