//! AddOffsetsToTxn (key 25), versions 0–3: adds a group's offsets partition to the
//! producer's transaction, so that TxnOffsetCommit's offsets commit or abort with it.

use super::Broker;
use crate::{groups, transactions};
use spate_protocol::kafka_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
use spate_protocol::kafka_protocol::messages::add_offsets_to_txn_response::AddOffsetsToTxnResponse;
use std::rc::Rc;

/// The first version that knows PRODUCER_FENCED.
const FIRST_FENCED_VERSION: i16 = 2;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: AddOffsetsToTxnRequest,
    version: i16,
) -> AddOffsetsToTxnResponse {
    let id = request.transactional_id.0.to_string();
    let group = request.group_id.0.to_string();
    let producer = (request.producer_id.0, request.producer_epoch);
    let knows_fenced = version >= FIRST_FENCED_VERSION;
    let offsets = broker.topics.get(groups::OFFSETS_TOPIC);
    let result = match offsets {
        _ if group.is_empty() => Err(groups::code::INVALID_GROUP_ID),
        _ if id.is_empty() => Err(transactions::code::INVALID_PRODUCER_ID_MAPPING),
        None => Err(groups::code::COORDINATOR_NOT_AVAILABLE),
        Some(topic) => {
            let partition = groups::partition_for(&group, topic.partition_count());
            let added = vec![(groups::OFFSETS_TOPIC.to_string(), partition)];
            let key = id.clone();
            broker
                .on_transaction(&key, move |owner, log| async move {
                    transactions::add_partitions(&owner, &log, &id, producer, added, knows_fenced)
                        .await
                })
                .await
                .and_then(|r| r)
        }
    };
    AddOffsetsToTxnResponse::default().with_error_code(result.err().unwrap_or(0))
}
