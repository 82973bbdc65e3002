//! ListTransactions (key 66), versions 0–1: every transactional id of every shard's
//! coordinator, filtered by state and producer id, and (v1+) by how long the open
//! transaction has run (`duration_filter` ms; -1 for no filter).

use super::Broker;
use crate::transactions::Status;
use spate_protocol::kafka_protocol::messages::list_transactions_request::ListTransactionsRequest;
use spate_protocol::kafka_protocol::messages::list_transactions_response::{
    ListTransactionsResponse, TransactionState,
};
use spate_protocol::kafka_protocol::messages::{ProducerId, TransactionalId};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use spate_storage::join::join_all;
use std::rc::Rc;

/// Every state name a filter may ask for.
const STATES: [Status; 8] = [
    Status::Empty,
    Status::Ongoing,
    Status::PrepareCommit,
    Status::PrepareAbort,
    Status::CompleteCommit,
    Status::CompleteAbort,
    Status::Dead,
    Status::PrepareEpochFence,
];

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: ListTransactionsRequest,
) -> ListTransactionsResponse {
    let calls = (0..broker.topics.shards())
        .map(|shard| broker.on_shard(shard, |owner| async move { owner.transactions.all() }))
        .collect();
    let unknown: Vec<StrBytes> = request
        .state_filters
        .iter()
        .filter(|f| !STATES.iter().any(|s| s.name() == f.as_str()))
        .cloned()
        .collect();
    let now = crate::now_ms();
    let wanted = |status: Status, producer: i64, started: i64| {
        let state_ok = request.state_filters.is_empty()
            || request
                .state_filters
                .iter()
                .any(|f| f.as_str() == status.name());
        let producer_ok = request.producer_id_filters.is_empty()
            || request.producer_id_filters.iter().any(|p| p.0 == producer);
        let duration_ok = request.duration_filter < 0
            || (started >= 0 && now.saturating_sub(started) >= request.duration_filter);
        state_ok && producer_ok && duration_ok
    };
    let mut states: Vec<TransactionState> = join_all(calls)
        .await
        .into_iter()
        .flatten()
        .flatten()
        .filter(|(_, txn)| wanted(txn.status, txn.producer_id, txn.started_ms))
        .map(|(id, txn)| {
            TransactionState::default()
                .with_transactional_id(TransactionalId(StrBytes::from_string(id)))
                .with_producer_id(ProducerId(txn.producer_id))
                .with_transaction_state(StrBytes::from_static_str(txn.status.name()))
        })
        .collect();
    states.sort_by(|a, b| a.transactional_id.0.cmp(&b.transactional_id.0));
    ListTransactionsResponse::default()
        .with_unknown_state_filters(unknown)
        .with_transaction_states(states)
}
