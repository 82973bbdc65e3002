//! OffsetFetch (key 9), versions 1–9: a group's committed offsets (-1 where none), for the
//! partitions asked or (null topics, v2+) all of them; v8+ asks for several groups at once.
//! With `require_stable` (v7+), a partition whose offset an open transaction is committing
//! answers UNSTABLE_OFFSET_COMMIT, and the client asks again.

use super::Broker;
use crate::groups::store::Committed;
use spate_protocol::kafka_protocol::messages::offset_fetch_request::OffsetFetchRequest;
use spate_protocol::kafka_protocol::messages::offset_fetch_response::{
    OffsetFetchResponse, OffsetFetchResponseGroup, OffsetFetchResponsePartition,
    OffsetFetchResponsePartitions, OffsetFetchResponseTopic, OffsetFetchResponseTopics,
};
use spate_protocol::kafka_protocol::messages::{GroupId, TopicName};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::rc::Rc;

const FIRST_BATCHED_VERSION: i16 = 8;
/// v2 added the top-level error code.
const FIRST_ERROR_VERSION: i16 = 2;
/// v5 added the leader epoch.
const FIRST_LEADER_EPOCH_VERSION: i16 = 5;

/// Topics and partitions asked for; `None` for all.
type Asked = Option<Vec<(String, Vec<i32>)>>;
/// Per topic, (partition, committed, error code) in the order asked.
type Found = Vec<(String, Vec<(i32, Option<Committed>, i16)>)>;
/// UNSTABLE_OFFSET_COMMIT.
const UNSTABLE_OFFSET_COMMIT: i16 = 88;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: OffsetFetchRequest,
    version: i16,
) -> OffsetFetchResponse {
    if version >= FIRST_BATCHED_VERSION {
        let mut groups = Vec::with_capacity(request.groups.len());
        for group in &request.groups {
            let asked = group.topics.as_ref().map(|topics| {
                let names = topics.iter().map(|t| (&t.name, &t.partition_indexes));
                asked_of(names)
            });
            let group_id = group.group_id.0.as_ref();
            let (error, found) = fetch(broker, group_id, asked, request.require_stable).await;
            let topics = shape(found, |topic, partitions| {
                OffsetFetchResponseTopics::default()
                    .with_name(topic)
                    .with_partitions(
                        partitions
                            .map(|(index, (offset, epoch, metadata), code)| {
                                OffsetFetchResponsePartitions::default()
                                    .with_partition_index(index)
                                    .with_committed_offset(offset)
                                    .with_committed_leader_epoch(epoch)
                                    .with_metadata(Some(metadata))
                                    .with_error_code(code)
                            })
                            .collect(),
                    )
            });
            groups.push(
                OffsetFetchResponseGroup::default()
                    .with_group_id(GroupId(group.group_id.0.clone()))
                    .with_error_code(error)
                    .with_topics(topics),
            );
        }
        return OffsetFetchResponse::default().with_groups(groups);
    }
    let asked = request
        .topics
        .as_ref()
        .map(|topics| asked_of(topics.iter().map(|t| (&t.name, &t.partition_indexes))));
    let group_id = request.group_id.0.as_ref();
    let (error, found) = fetch(broker, group_id, asked, request.require_stable).await;
    let topics = shape(found, |topic, partitions| {
        OffsetFetchResponseTopic::default()
            .with_name(topic)
            .with_partitions(
                partitions
                    .map(|(index, (offset, epoch, metadata), code)| {
                        let mut partition = OffsetFetchResponsePartition::default()
                            .with_partition_index(index)
                            .with_committed_offset(offset)
                            .with_metadata(Some(metadata))
                            .with_error_code(code);
                        if version >= FIRST_LEADER_EPOCH_VERSION {
                            partition.committed_leader_epoch = epoch;
                        }
                        if version < FIRST_ERROR_VERSION {
                            partition.error_code = error;
                        }
                        partition
                    })
                    .collect(),
            )
    });
    let mut response = OffsetFetchResponse::default().with_topics(topics);
    if version >= FIRST_ERROR_VERSION {
        response.error_code = error;
    }
    response
}

/// The topics and partitions a request names.
fn asked_of<'a>(
    topics: impl Iterator<Item = (&'a TopicName, &'a Vec<i32>)>,
) -> Vec<(String, Vec<i32>)> {
    topics
        .map(|(name, partitions)| (name.0.to_string(), partitions.clone()))
        .collect()
}

/// One committed offset as the response fields: (offset, leader epoch, metadata).
type Fields = (i64, i32, StrBytes);

/// Builds each topic of the response (both layouts) from what was found.
fn shape<T>(
    found: Found,
    topic: impl Fn(TopicName, &mut dyn Iterator<Item = (i32, Fields, i16)>) -> T,
) -> Vec<T> {
    found
        .into_iter()
        .map(|(name, partitions)| {
            let mut rows = partitions.into_iter().map(|(index, committed, code)| {
                let (offset, epoch, metadata) = fields(committed);
                (
                    index,
                    (offset, epoch, StrBytes::from_string(metadata)),
                    code,
                )
            });
            topic(TopicName(StrBytes::from_string(name)), &mut rows)
        })
        .collect()
}

fn fields(committed: Option<Committed>) -> (i64, i32, String) {
    match committed {
        Some(c) => (c.offset, c.leader_epoch, c.metadata),
        None => (-1, -1, String::new()),
    }
}

/// One group's committed offsets for `asked`, on its coordinator shard; `require_stable`:
/// partitions with an offset in an open transaction answer UNSTABLE_OFFSET_COMMIT.
async fn fetch(
    broker: &Rc<Broker>,
    group: &str,
    asked: Asked,
    require_stable: bool,
) -> (i16, Found) {
    let name = group.to_string();
    let result = broker
        .on_group(group, move |owner, _| async move {
            let offsets = owner
                .groups
                .with(&name, |g| g.offsets().clone())
                .unwrap_or_default();
            let code = |topic: &str, partition: i32| {
                if require_stable && owner.groups.unstable(&name, topic, partition) {
                    UNSTABLE_OFFSET_COMMIT
                } else {
                    crate::groups::code::NONE
                }
            };
            match asked {
                Some(asked) => asked
                    .into_iter()
                    .map(|(topic, partitions)| {
                        let found = partitions
                            .into_iter()
                            .map(|p| {
                                (
                                    p,
                                    offsets.get(&(topic.clone(), p)).cloned(),
                                    code(&topic, p),
                                )
                            })
                            .collect();
                        (topic, found)
                    })
                    .collect(),
                None => {
                    let mut by_topic: BTreeMap<String, Vec<(i32, Option<Committed>, i16)>> =
                        BTreeMap::new();
                    for ((topic, partition), committed) in offsets {
                        let code = code(&topic, partition);
                        by_topic
                            .entry(topic)
                            .or_default()
                            .push((partition, Some(committed), code));
                    }
                    by_topic.into_iter().collect()
                }
            }
        })
        .await;
    match result {
        Ok(found) => (crate::groups::code::NONE, found),
        Err(error) => (error, Vec::new()),
    }
}
