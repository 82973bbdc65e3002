//! SyncGroup (key 14), versions 0–5: the leader sends the assignments; every member gets
//! its own.

use super::Broker;
use crate::groups::{self, Synced};
use spate_protocol::kafka_protocol::messages::sync_group_request::SyncGroupRequest;
use spate_protocol::kafka_protocol::messages::sync_group_response::SyncGroupResponse;
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

/// v5 added the protocol type and name.
const FIRST_PROTOCOL_VERSION: i16 = 5;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: SyncGroupRequest,
    version: i16,
) -> SyncGroupResponse {
    let group = request.group_id.0.to_string();
    let generation = request.generation_id;
    let member_id = request.member_id.to_string();
    let instance_id = request.group_instance_id.as_ref().map(|i| i.to_string());
    let protocol = (
        request.protocol_type.as_ref().map(|p| p.to_string()),
        request.protocol_name.as_ref().map(|p| p.to_string()),
    );
    let assignments = request
        .assignments
        .iter()
        .map(|a| (a.member_id.to_string(), a.assignment.clone()))
        .collect();
    let name = group.clone();
    let synced = broker
        .on_group(&group, move |owner, _| async move {
            groups::sync(
                &owner,
                &name,
                generation,
                &member_id,
                instance_id.as_deref(),
                protocol,
                assignments,
            )
            .await
        })
        .await
        .unwrap_or_else(|error| Synced {
            error,
            ..Synced::default()
        });
    let mut response = SyncGroupResponse::default()
        .with_error_code(synced.error)
        .with_assignment(synced.assignment);
    if version >= FIRST_PROTOCOL_VERSION {
        response.protocol_type = synced.protocol_type.map(StrBytes::from_string);
        response.protocol_name = synced.protocol.map(StrBytes::from_string);
    }
    response
}
