//! DescribeGroups (key 15), versions 0–5: each group's state, protocol and members with
//! their subscriptions and assignments. A group that does not exist is reported as Dead
//! with no error, as Kafka does before v6.

use super::{Broker, OPERATIONS_UNKNOWN};
use spate_protocol::kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use spate_protocol::kafka_protocol::messages::describe_groups_response::{
    DescribeGroupsResponse, DescribedGroup, DescribedGroupMember,
};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::rc::Rc;

/// v4 added static members' instance ids.
const FIRST_INSTANCE_ID_VERSION: i16 = 4;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: DescribeGroupsRequest,
    version: i16,
) -> DescribeGroupsResponse {
    let mut described = Vec::with_capacity(request.groups.len());
    for group in &request.groups {
        let name = group.0.to_string();
        let asked = name.clone();
        let found = broker
            .on_group(&name, move |owner, _| async move {
                owner.groups.with(&asked, |g| {
                    (
                        g.state().name(),
                        g.protocol_type().to_string(),
                        g.protocol().to_string(),
                        g.describe_members(),
                    )
                })
            })
            .await;
        let base = DescribedGroup::default()
            .with_group_id(group.clone())
            .with_authorized_operations(OPERATIONS_UNKNOWN);
        described.push(match found {
            Err(error) => base.with_error_code(error),
            Ok(None) => base.with_group_state(StrBytes::from_static_str("Dead")),
            Ok(Some((state, protocol_type, protocol, members))) => {
                let members = members
                    .into_iter()
                    .map(|(id, instance, client_id, host, metadata, assignment)| {
                        let mut member = DescribedGroupMember::default()
                            .with_member_id(StrBytes::from_string(id))
                            .with_client_id(StrBytes::from_string(client_id))
                            .with_client_host(StrBytes::from_string(host))
                            .with_member_metadata(metadata)
                            .with_member_assignment(assignment);
                        if version >= FIRST_INSTANCE_ID_VERSION {
                            member.group_instance_id = instance.map(StrBytes::from_string);
                        }
                        member
                    })
                    .collect();
                base.with_group_state(StrBytes::from_static_str(state))
                    .with_protocol_type(StrBytes::from_string(protocol_type))
                    .with_protocol_data(StrBytes::from_string(protocol))
                    .with_members(members)
            }
        });
    }
    DescribeGroupsResponse::default().with_groups(described)
}
