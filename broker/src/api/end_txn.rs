//! EndTxn (key 26), versions 0–3: commits or aborts the producer's transaction. The answer
//! comes once the coordinator has written its decision and every partition's marker
//! (durably), so the next transaction can start at once.

use super::Broker;
use crate::transactions;
use spate_protocol::kafka_protocol::messages::end_txn_request::EndTxnRequest;
use spate_protocol::kafka_protocol::messages::end_txn_response::EndTxnResponse;
use std::rc::Rc;

/// The first version that knows PRODUCER_FENCED.
const FIRST_FENCED_VERSION: i16 = 2;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: EndTxnRequest,
    version: i16,
) -> EndTxnResponse {
    let id = request.transactional_id.0.to_string();
    let producer = (request.producer_id.0, request.producer_epoch);
    let commit = request.committed;
    let knows_fenced = version >= FIRST_FENCED_VERSION;
    let result = if id.is_empty() {
        Err(transactions::code::INVALID_PRODUCER_ID_MAPPING)
    } else {
        let key = id.clone();
        broker
            .on_transaction(&key, move |owner, log| async move {
                transactions::end(&owner, &log, &id, producer, commit, knows_fenced).await
            })
            .await
            .and_then(|r| r)
    };
    EndTxnResponse::default()
        .with_error_code(result.err().unwrap_or(transactions::code::NONE))
        .with_producer_id(request.producer_id)
        .with_producer_epoch(request.producer_epoch)
}
