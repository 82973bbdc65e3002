//! DeleteGroups (key 42), versions 0–2: groups without members lose their committed
//! offsets and are gone; a group with members gets NON_EMPTY_GROUP.

use super::Broker;
use crate::groups;
use spate_protocol::kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use spate_protocol::kafka_protocol::messages::delete_groups_response::{
    DeletableGroupResult, DeleteGroupsResponse,
};
use std::rc::Rc;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: DeleteGroupsRequest,
) -> DeleteGroupsResponse {
    let mut results = Vec::with_capacity(request.groups_names.len());
    for group in &request.groups_names {
        let name = group.0.to_string();
        let asked = name.clone();
        let error = broker
            .on_group(&name, move |owner, log| async move {
                groups::delete(&owner, &log, &asked).await
            })
            .await
            .unwrap_or_else(|error| error);
        results.push(
            DeletableGroupResult::default()
                .with_group_id(group.clone())
                .with_error_code(error),
        );
    }
    DeleteGroupsResponse::default().with_results(results)
}
