//! OffsetDelete (key 47), version 0: deletes a group's committed offsets for partitions of
//! topics its members do not subscribe to.

use super::Broker;
use crate::groups;
use spate_protocol::kafka_protocol::messages::offset_delete_request::OffsetDeleteRequest;
use spate_protocol::kafka_protocol::messages::offset_delete_response::{
    OffsetDeleteResponse, OffsetDeleteResponsePartition, OffsetDeleteResponseTopic,
};
use std::rc::Rc;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: OffsetDeleteRequest,
) -> OffsetDeleteResponse {
    let asked: Vec<(String, i32)> = request
        .topics
        .iter()
        .flat_map(|t| {
            t.partitions
                .iter()
                .map(|p| (t.name.0.to_string(), p.partition_index))
        })
        .collect();
    let name = request.group_id.0.to_string();
    let group = name.clone();
    let outcome = broker
        .on_group(&name, move |owner, log| async move {
            groups::delete_offsets(&owner, &log, &group, asked).await
        })
        .await
        .and_then(|outcome| outcome);
    let codes = match outcome {
        Ok(codes) => codes,
        Err(error) => return OffsetDeleteResponse::default().with_error_code(error),
    };
    let mut codes = codes.into_iter();
    let topics = request
        .topics
        .iter()
        .map(|t| {
            let partitions = t
                .partitions
                .iter()
                .map(|p| {
                    OffsetDeleteResponsePartition::default()
                        .with_partition_index(p.partition_index)
                        .with_error_code(codes.next().unwrap_or_default())
                })
                .collect();
            OffsetDeleteResponseTopic::default()
                .with_name(t.name.clone())
                .with_partitions(partitions)
        })
        .collect();
    OffsetDeleteResponse::default().with_topics(topics)
}
