//! DescribeTransactions (key 65), version 0: each transactional id's state from its
//! coordinator: producer id and epoch, timeout, start time and the partitions of its open
//! transaction (TRANSACTIONAL_ID_NOT_FOUND for an id the coordinator does not know).

use super::Broker;
use spate_protocol::kafka_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
use spate_protocol::kafka_protocol::messages::describe_transactions_response::{
    DescribeTransactionsResponse, TopicData, TransactionState,
};
use spate_protocol::kafka_protocol::messages::{ProducerId, TopicName};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use spate_storage::join::join_all;
use std::collections::BTreeMap;
use std::rc::Rc;

/// TRANSACTIONAL_ID_NOT_FOUND.
const TRANSACTIONAL_ID_NOT_FOUND: i16 = 105;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: DescribeTransactionsRequest,
) -> DescribeTransactionsResponse {
    let calls = request
        .transactional_ids
        .iter()
        .map(|id| {
            let key = id.0.to_string();
            let wanted = key.clone();
            async move {
                broker
                    .on_transaction(&key, move |owner, _| async move {
                        owner.transactions.describe(&wanted)
                    })
                    .await
            }
        })
        .collect();
    let states = request
        .transactional_ids
        .iter()
        .zip(join_all(calls).await)
        .map(|(id, found)| {
            let state = TransactionState::default().with_transactional_id(id.clone());
            let txn = match found {
                Err(code) => return state.with_error_code(code).with_producer_id(ProducerId(-1)),
                Ok(None) => {
                    return state
                        .with_error_code(TRANSACTIONAL_ID_NOT_FOUND)
                        .with_producer_id(ProducerId(-1))
                        .with_producer_epoch(-1)
                        .with_transaction_start_time_ms(-1)
                }
                Ok(Some(txn)) => txn,
            };
            let mut topics: BTreeMap<&str, Vec<i32>> = BTreeMap::new();
            for (topic, partition) in &txn.partitions {
                topics.entry(topic).or_default().push(*partition);
            }
            let topics = topics
                .into_iter()
                .map(|(topic, partitions)| {
                    TopicData::default()
                        .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                        .with_partitions(partitions)
                })
                .collect();
            state
                .with_transaction_state(StrBytes::from_static_str(txn.status.name()))
                .with_transaction_timeout_ms(txn.timeout_ms)
                .with_transaction_start_time_ms(txn.started_ms)
                .with_producer_id(ProducerId(txn.producer_id))
                .with_producer_epoch(txn.producer_epoch)
                .with_topics(topics)
        })
        .collect();
    DescribeTransactionsResponse::default().with_transaction_states(states)
}
