//! LeaveGroup (key 13), versions 0–5: a member (v0–2) or several, by member or instance id
//! (v3+), leave their group, which rebalances.

use super::Broker;
use crate::groups::{self, code};
use spate_protocol::kafka_protocol::messages::leave_group_request::LeaveGroupRequest;
use spate_protocol::kafka_protocol::messages::leave_group_response::{
    LeaveGroupResponse, MemberResponse,
};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

const FIRST_BATCHED_VERSION: i16 = 3;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: LeaveGroupRequest,
    version: i16,
) -> LeaveGroupResponse {
    let group = request.group_id.0.to_string();
    let leaving: Vec<(String, Option<String>)> = if version >= FIRST_BATCHED_VERSION {
        request
            .members
            .iter()
            .map(|m| {
                (
                    m.member_id.to_string(),
                    m.group_instance_id.as_ref().map(|i| i.to_string()),
                )
            })
            .collect()
    } else {
        vec![(request.member_id.to_string(), None)]
    };
    let (name, asked) = (group.clone(), leaving.clone());
    let codes = broker
        .on_group(&group, move |owner, _| async move {
            groups::leave(&owner, &name, &asked)
        })
        .await;
    let codes = match codes {
        Ok(codes) => codes,
        Err(error) => return LeaveGroupResponse::default().with_error_code(error),
    };
    if version < FIRST_BATCHED_VERSION {
        return LeaveGroupResponse::default()
            .with_error_code(codes.first().copied().unwrap_or(code::UNKNOWN_MEMBER_ID));
    }
    let members = leaving
        .into_iter()
        .zip(codes)
        .map(|((member_id, instance_id), error)| {
            MemberResponse::default()
                .with_member_id(StrBytes::from_string(member_id))
                .with_group_instance_id(instance_id.map(StrBytes::from_string))
                .with_error_code(error)
        })
        .collect();
    LeaveGroupResponse::default().with_members(members)
}
