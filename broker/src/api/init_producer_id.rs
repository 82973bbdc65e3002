//! InitProducerId (key 22), versions 0–5, for idempotent producers: a producer id never
//! handed out before (ids are taken in blocks recorded in the metadata log), epoch 0; with
//! the id and epoch it has (v3+, KIP-360) a producer gets its epoch bumped. Transactional
//! ids are refused until transactions exist.

use super::{error_code, Broker};
use spate_protocol::kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use spate_protocol::kafka_protocol::messages::init_producer_id_response::InitProducerIdResponse;
use spate_protocol::kafka_protocol::messages::ProducerId;
use std::rc::Rc;

/// The highest producer epoch; past it a producer gets a new id.
const MAX_EPOCH: i16 = i16::MAX - 1;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: InitProducerIdRequest,
) -> InitProducerIdResponse {
    let failed = |code| {
        InitProducerIdResponse::default()
            .with_error_code(code)
            .with_producer_id(ProducerId(-1))
            .with_producer_epoch(-1)
    };
    if request
        .transactional_id
        .as_ref()
        .is_some_and(|t| !t.is_empty())
    {
        return failed(error_code::INVALID_REQUEST);
    }
    let (id, epoch) = (request.producer_id.0, request.producer_epoch);
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
