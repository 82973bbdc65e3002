//! ListGroups (key 16), versions 0–5: every group of every shard, filtered by state (v4+)
//! and type (v5+: "classic" or "consumer").

use super::Broker;
use spate_protocol::kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use spate_protocol::kafka_protocol::messages::list_groups_response::{
    ListGroupsResponse, ListedGroup,
};
use spate_protocol::kafka_protocol::messages::GroupId;
use spate_protocol::kafka_protocol::protocol::StrBytes;
use spate_storage::join::join_all;
use std::rc::Rc;

const FIRST_STATE_VERSION: i16 = 4;
const FIRST_TYPE_VERSION: i16 = 5;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: ListGroupsRequest,
    version: i16,
) -> ListGroupsResponse {
    let calls = (0..broker.topics.shards())
        .map(|shard| broker.on_shard(shard, |owner| async move { owner.groups.list() }))
        .collect();
    let wanted_state = |state: &str| {
        request.states_filter.is_empty()
            || request
                .states_filter
                .iter()
                .any(|s| s.eq_ignore_ascii_case(state))
    };
    let wanted_type = |kind: &str| {
        request.types_filter.is_empty()
            || request
                .types_filter
                .iter()
                .any(|t| t.eq_ignore_ascii_case(kind))
    };
    let mut groups: Vec<ListedGroup> = join_all(calls)
        .await
        .into_iter()
        .flatten()
        .flatten()
        .filter(|(_, _, state, kind)| wanted_state(state) && wanted_type(kind))
        .map(|(name, protocol_type, state, kind)| {
            let mut listed = ListedGroup::default()
                .with_group_id(GroupId(StrBytes::from_string(name)))
                .with_protocol_type(StrBytes::from_string(protocol_type));
            if version >= FIRST_STATE_VERSION {
                listed.group_state = StrBytes::from_static_str(state);
            }
            if version >= FIRST_TYPE_VERSION {
                listed.group_type = StrBytes::from_static_str(kind);
            }
            listed
        })
        .collect();
    groups.sort_by(|a, b| a.group_id.0.cmp(&b.group_id.0));
    ListGroupsResponse::default().with_groups(groups)
}
