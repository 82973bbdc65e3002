//! InitProducerId (key 22), versions 0–5. Without a transactional id (idempotent
//! producers): a producer id never handed out before (ids are taken in blocks recorded in
//! the metadata log), epoch 0; with the id and epoch it has (v3+, KIP-360) a producer gets
//! its epoch bumped. With a transactional id, the id's coordinator answers: its producer id
//! with a new epoch, fencing older instances and aborting a transaction they left open.

use super::{error_code, Broker};
use crate::transactions;
use spate_protocol::kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use spate_protocol::kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use spate_protocol::kafka_protocol::messages::ProducerId;
use std::rc::Rc;

/// The highest producer epoch; past it a producer gets a new id.
const MAX_EPOCH: i16 = i16::MAX - 1;
/// The first version that knows PRODUCER_FENCED.
const FIRST_FENCED_VERSION: i16 = 4;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: InitProducerIdRequest,
    version: i16,
) -> InitProducerIdResponse {
    let failed = |code| {
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    let (id, epoch) = (request.producer_id.0, request.producer_epoch);
    if let Some(transactional_id) = request.transactional_id.filter(|t| !t.is_empty()) {
        let transactional_id = transactional_id.0.to_string();
        let timeout = request.transaction_timeout_ms;
        if transactional_id.len() > transactions::MAX_ID_BYTES {
            return failed(error_code::INVALID_REQUEST);
        }
        if !(1..=transactions::MAX_TIMEOUT_MS).contains(&timeout) {
            return failed(transactions::code::INVALID_TRANSACTION_TIMEOUT);
        }
        let knows_fenced = version >= FIRST_FENCED_VERSION;
        let key = transactional_id.clone();
        let result = broker
            .on_transaction(&key, move |owner, log| async move {
                transactions::init(
                    &owner,
                    &log,
                    &transactional_id,
                    timeout,
                    (id, epoch),
                    knows_fenced,
                )
                .await
            })
            .await
            .and_then(|r| r);
        return match result {
            Ok((id, epoch)) => InitProducerIdResponse::default()
                .with_producer_id(ProducerId(id))
                .with_producer_epoch(epoch),
            Err(code) => failed(code),
        };
    }
    if id >= 0 && (0..MAX_EPOCH).contains(&epoch) {
        // KIP-360: the same producer, a new epoch (its sequences start again at 0).
        return InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(epoch + 1);
    }
    match broker.new_producer_id().await {
        Ok(id) => InitProducerIdResponse::default()
            .with_producer_id(ProducerId(id))
            .with_producer_epoch(0),
        Err(error) => {
            tracing::error!(%error, "handing out a producer id failed");
            failed(crate::groups::code::COORDINATOR_NOT_AVAILABLE)
        }
    }
}
