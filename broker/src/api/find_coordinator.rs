//! FindCoordinator (key 10), versions 0–4: this node coordinates every group (key type 0)
//! and transactional id (key type 1); v4+ asks for several keys at once.

use super::{error_code, Broker};
use spate_protocol::kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use spate_protocol::kafka_protocol::messages::find_coordinator_response::{
    Coordinator, FindCoordinatorResponse,
};
use spate_protocol::kafka_protocol::messages::BrokerId;
use spate_protocol::kafka_protocol::protocol::StrBytes;

const FIRST_BATCHED_VERSION: i16 = 4;
const FIRST_ERROR_MESSAGE_VERSION: i16 = 1;

pub(super) fn handle(
    broker: &Broker,
    request: FindCoordinatorRequest,
    version: i16,
) -> FindCoordinatorResponse {
    let answer = |key: &StrBytes| {
        let error = if request.key_type > 1 {
            Some(format!("key type {} is not served", request.key_type))
        } else if key.is_empty() {
            Some("the key is empty".to_string())
        } else if request.key_type == 0 && broker.topics.get(crate::groups::OFFSETS_TOPIC).is_none()
        {
            Some("the offsets topic is not ready".to_string())
        } else if request.key_type == 1
            && broker
                .topics
                .get(crate::transactions::STATE_TOPIC)
                .is_none()
        {
            Some("the transaction state topic is not ready".to_string())
        } else {
            None
        };
        let coordinator = Coordinator::default().with_key(key.clone());
        match error {
            None => coordinator
                .with_node_id(BrokerId(broker.node_id))
                .with_host(StrBytes::from_string(broker.advertised.0.clone()))
                .with_port(i32::from(broker.advertised.1)),
            Some(message) => coordinator
                .with_node_id(BrokerId(-1))
                .with_port(-1)
                .with_error_code(if request.key_type > 1 || key.is_empty() {
                    error_code::INVALID_REQUEST
                } else {
                    crate::groups::code::COORDINATOR_NOT_AVAILABLE
                })
                .with_error_message(Some(StrBytes::from_string(message))),
        }
    };
    if version >= FIRST_BATCHED_VERSION {
        let coordinators = request.coordinator_keys.iter().map(answer).collect();
        return FindCoordinatorResponse::default().with_coordinators(coordinators);
    }
    let one = answer(&request.key);
    let response = FindCoordinatorResponse::default()
        .with_error_code(one.error_code)
        .with_node_id(one.node_id)
        .with_host(one.host)
        .with_port(one.port);
    if version >= FIRST_ERROR_MESSAGE_VERSION {
        response.with_error_message(one.error_message)
    } else {
        response
    }
}
