//! Heartbeat (key 12), versions 0–4: a member says it is alive and learns whether its
//! group is rebalancing.

use super::Broker;
use crate::groups;
use spate_protocol::kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use spate_protocol::kafka_protocol::messages::heartbeat_response::HeartbeatResponse;
use std::rc::Rc;

pub(super) async fn handle(broker: &Rc<Broker>, request: HeartbeatRequest) -> HeartbeatResponse {
    let group = request.group_id.0.to_string();
    let generation = request.generation_id;
    let member_id = request.member_id.to_string();
    let instance_id = request.group_instance_id.as_ref().map(|i| i.to_string());
    let name = group.clone();
    let error = broker
        .on_group(&group, move |owner, _| async move {
            groups::heartbeat(
                &owner,
                &name,
                generation,
                &member_id,
                instance_id.as_deref(),
            )
        })
        .await
        .unwrap_or_else(|error| error);
    HeartbeatResponse::default().with_error_code(error)
}
