//! What several subcommands need: a topic's partitions and leaders (Metadata), and offsets
//! by time (ListOffsets, sent to each partition's leader).

use super::client::{check, error_name, Client};
use super::CliError;
use spate_protocol::kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use spate_protocol::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use spate_protocol::kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestTopic,
};
use spate_protocol::kafka_protocol::messages::{
    ApiKey, BrokerId, GroupId, RequestKind, ResponseKind, TopicName,
};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

/// ListOffsets' "the log start offset".
pub(crate) const EARLIEST: i64 = -2;
/// ListOffsets' "the log end offset" (the high watermark for consumers).
pub(crate) const LATEST: i64 = -1;

/// One partition of a topic, from Metadata.
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Partition {
    pub(crate) index: i32,
    pub(crate) leader: i32,
    pub(crate) replicas: Vec<i32>,
    pub(crate) isr: Vec<i32>,
}

/// `topic`'s partitions, by index; an unknown topic is an error.
pub(crate) fn partitions(client: &mut Client, topic: &str) -> Result<Vec<Partition>, CliError> {
    let metadata = client.metadata(Some(&[topic.to_string()]))?;
    let found = metadata
        .topics
        .iter()
        .find(|t| t.name.as_ref().is_some_and(|n| n.0.as_str() == topic))
        .ok_or_else(|| CliError::Kafka(format!("topic {topic}: not in the metadata")))?;
    check(found.error_code, &format!("topic {topic}"), None)?;
    let ids = |nodes: &[BrokerId]| nodes.iter().map(|n| n.0).collect::<Vec<_>>();
    let mut partitions: Vec<Partition> = found
        .partitions
        .iter()
        .map(|p| Partition {
            index: p.partition_index,
            leader: p.leader_id.0,
            replicas: ids(&p.replica_nodes),
            isr: ids(&p.isr_nodes),
        })
        .collect();
    partitions.sort_by_key(|p| p.index);
    Ok(partitions)
}

/// The offset of each of `partitions` (index, leader) for `timestamp` ([`EARLIEST`],
/// [`LATEST`] or ms since the epoch: the first offset at or after it, -1 when none is).
pub(crate) fn list_offsets(
    client: &mut Client,
    topic: &str,
    partitions: &[Partition],
    timestamp: i64,
) -> Result<BTreeMap<i32, i64>, CliError> {
    let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
    for partition in partitions {
        by_leader
            .entry(partition.leader)
            .or_default()
            .push(partition.index);
    }
    let mut offsets = BTreeMap::new();
    for (leader, indexes) in by_leader {
        if leader < 0 {
            return Err(CliError::Kafka(format!(
                "topic {topic} partitions {indexes:?} have no leader"
            )));
        }
        let request = ListOffsetsRequest::default()
            .with_replica_id(BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(
                    indexes
                        .iter()
                        .map(|&index| {
                            ListOffsetsPartition::default()
                                .with_partition_index(index)
                                .with_current_leader_epoch(-1)
                                .with_timestamp(timestamp)
                        })
                        .collect(),
                )]);
        let (_, response) = client.node(leader)?.call(
            ApiKey::ListOffsets,
            (1, 7),
            RequestKind::ListOffsets(request),
        )?;
        let ResponseKind::ListOffsets(listed) = response else {
            return Err(CliError::Kafka(
                "unexpected ListOffsets response".to_string(),
            ));
        };
        for partition in listed.topics.iter().flat_map(|t| &t.partitions) {
            let what = format!("offsets of {topic}-{}", partition.partition_index);
            check(partition.error_code, &what, None)?;
            offsets.insert(partition.partition_index, partition.offset);
        }
    }
    Ok(offsets)
}

/// `group`'s committed offsets, topic → partition → offset (partitions without one left
/// out): every topic's, or only `(topic, partitions)`.
pub(crate) fn committed(
    client: &mut Client,
    group: &str,
    only: Option<(&str, &[i32])>,
) -> Result<BTreeMap<String, BTreeMap<i32, i64>>, CliError> {
    let request = OffsetFetchRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_topics(only.map(|(topic, partitions)| {
            vec![OffsetFetchRequestTopic::default()
                .with_name(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partition_indexes(partitions.to_vec())]
        }));
    let (_, response) = client.coordinator(group)?.call(
        ApiKey::OffsetFetch,
        (2, 7),
        RequestKind::OffsetFetch(request),
    )?;
    let ResponseKind::OffsetFetch(fetched) = response else {
        return Err(CliError::Kafka(
            "unexpected OffsetFetch response".to_string(),
        ));
    };
    check(
        fetched.error_code,
        &format!("offsets of group {group}"),
        None,
    )?;
    let mut offsets: BTreeMap<String, BTreeMap<i32, i64>> = BTreeMap::new();
    for topic in &fetched.topics {
        let name = topic.name.0.as_str();
        for partition in &topic.partitions {
            let what = format!(
                "offset of group {group} on {name}-{}",
                partition.partition_index
            );
            check(partition.error_code, &what, None)?;
            if partition.committed_offset >= 0 {
                offsets
                    .entry(name.to_string())
                    .or_default()
                    .insert(partition.partition_index, partition.committed_offset);
            }
        }
    }
    Ok(offsets)
}

/// Commits `offsets` (partition, offset) of `topic` for `group`, as a client outside the
/// group (generation -1): the group must have no active members.
pub(crate) fn commit(
    client: &mut Client,
    group: &str,
    topic: &str,
    offsets: &[(i32, i64)],
) -> Result<(), CliError> {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(StrBytes::from_string(group.to_string())))
        .with_generation_id_or_member_epoch(-1)
        .with_member_id(StrBytes::from_static_str(""))
        .with_retention_time_ms(-1)
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(
                offsets
                    .iter()
                    .map(|(p, offset)| {
                        OffsetCommitRequestPartition::default()
                            .with_partition_index(*p)
                            .with_committed_offset(*offset)
                            .with_committed_leader_epoch(-1)
                    })
                    .collect(),
            )]);
    let (_, response) = client.coordinator(group)?.call(
        ApiKey::OffsetCommit,
        (2, 8),
        RequestKind::OffsetCommit(request),
    )?;
    let ResponseKind::OffsetCommit(committed) = response else {
        return Err(CliError::Kafka(
            "unexpected OffsetCommit response".to_string(),
        ));
    };
    let failures: Vec<String> = committed
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .filter(|p| p.error_code != 0)
        .map(|p| {
            format!(
                "partition {}: {}",
                p.partition_index,
                error_name(p.error_code)
            )
        })
        .collect();
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CliError::Kafka(format!(
            "committing the offsets of group {group} on {topic} failed: {}",
            failures.join(", ")
        )))
    }
}

/// Parses "0,2,5" into partition indexes.
pub(crate) fn parse_partitions(list: &str) -> Result<Vec<i32>, CliError> {
    list.split(',')
        .map(|p| {
            p.trim()
                .parse::<i32>()
                .ok()
                .filter(|p| *p >= 0)
                .ok_or_else(|| CliError::Usage(format!("{p:?} is not a partition number")))
        })
        .collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn partition_lists_parse_or_are_refused() {
        assert_eq!(parse_partitions("0, 2,5"), Ok(vec![0, 2, 5]));
        assert!(matches!(parse_partitions("1,x"), Err(CliError::Usage(_))));
        assert!(matches!(parse_partitions("-1"), Err(CliError::Usage(_))));
    }
}
