//! JoinGroup (key 11), versions 0–9: a member joins (or rejoins) its group and waits for
//! the rebalance to complete; the leader gets every member's subscription.

use super::Broker;
use crate::groups::{self, JoinRequest, Joined};
use spate_protocol::kafka_protocol::messages::join_group_request::JoinGroupRequest;
use spate_protocol::kafka_protocol::messages::join_group_response::{
    JoinGroupResponse, JoinGroupResponseMember,
};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

/// From v4 a new member first gets its id back with MEMBER_ID_REQUIRED (KIP-394).
const FIRST_MEMBER_ID_REQUIRED_VERSION: i16 = 4;
/// v1 added the rebalance timeout; before it the session timeout serves as both.
const FIRST_REBALANCE_TIMEOUT_VERSION: i16 = 1;
/// v9 tells a static leader that rejoined to keep the assignment (KIP-814).
const FIRST_SKIP_ASSIGNMENT_VERSION: i16 = 9;
/// v7 added the protocol type and name to the response.
const FIRST_PROTOCOL_IN_RESPONSE_VERSION: i16 = 7;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: JoinGroupRequest,
    version: i16,
    client: (&str, &str),
) -> JoinGroupResponse {
    let group = request.group_id.0.to_string();
    let join = JoinRequest {
        group: group.clone(),
        member_id: request.member_id.to_string(),
        instance_id: request.group_instance_id.as_ref().map(|i| i.to_string()),
        client_id: client.0.to_string(),
        client_host: client.1.to_string(),
        session_timeout_ms: request.session_timeout_ms,
        rebalance_timeout_ms: if version >= FIRST_REBALANCE_TIMEOUT_VERSION {
            request.rebalance_timeout_ms
        } else {
            request.session_timeout_ms
        },
        protocol_type: request.protocol_type.to_string(),
        protocols: request
            .protocols
            .iter()
            .map(|p| (p.name.to_string(), p.metadata.clone()))
            .collect(),
        require_known_member: version >= FIRST_MEMBER_ID_REQUIRED_VERSION,
    };
    let joined = broker
        .on_group(&group, move |owner, _| async move {
            groups::join(&owner, join).await
        })
        .await
        .unwrap_or_else(|error| Joined {
            error,
            generation: -1,
            ..Joined::default()
        });
    let members = joined
        .members
        .into_iter()
        .map(|(id, instance, metadata)| {
            JoinGroupResponseMember::default()
                .with_member_id(StrBytes::from_string(id))
                .with_group_instance_id(instance.map(StrBytes::from_string))
                .with_metadata(metadata)
        })
        .collect();
    let mut response = JoinGroupResponse::default()
        .with_error_code(joined.error)
        .with_generation_id(joined.generation)
        .with_leader(StrBytes::from_string(joined.leader))
        .with_member_id(StrBytes::from_string(joined.member_id))
        .with_members(members);
    if version >= FIRST_PROTOCOL_IN_RESPONSE_VERSION {
        response.protocol_type = joined.protocol_type.map(StrBytes::from_string);
        response.protocol_name = joined.protocol.map(StrBytes::from_string);
    } else {
        response.protocol_name = Some(StrBytes::from_string(joined.protocol.unwrap_or_default()));
    }
    if version >= FIRST_SKIP_ASSIGNMENT_VERSION {
        response.skip_assignment = joined.skip_assignment;
    }
    response
}
