//! DescribeLogDirs (key 35), versions 1–4: the one data directory, with each partition's
//! size on disk (appended bytes; preallocation excluded). Total and usable bytes of the
//! filesystem are reported as unknown (-1).

use super::Broker;
use spate_protocol::kafka_protocol::messages::describe_log_dirs_request::DescribeLogDirsRequest;
use spate_protocol::kafka_protocol::messages::describe_log_dirs_response::{
    DescribeLogDirsPartition, DescribeLogDirsResponse, DescribeLogDirsResult, DescribeLogDirsTopic,
};
use spate_protocol::kafka_protocol::messages::TopicName;
use spate_protocol::kafka_protocol::protocol::StrBytes;

pub(super) fn handle(broker: &Broker, request: DescribeLogDirsRequest) -> DescribeLogDirsResponse {
    // Null: every topic and partition.
    let wanted: Vec<(String, Option<Vec<i32>>)> = match &request.topics {
        None => broker
            .topics
            .names()
            .into_iter()
            .map(|name| (name, None))
            .collect(),
        Some(topics) => topics
            .iter()
            .map(|t| (t.topic.0.to_string(), Some(t.partitions.clone())))
            .collect(),
    };
    let topics = wanted
        .into_iter()
        .filter_map(|(name, partitions)| {
            let topic = broker.topics.get(&name)?;
            let indexes: Vec<i32> = partitions.unwrap_or_else(|| {
                (0..i32::try_from(topic.partitions.len()).unwrap_or(0)).collect()
            });
            let partitions = indexes
                .into_iter()
                .filter_map(|index| {
                    let log = topic.partitions.get(usize::try_from(index).ok()?)?;
                    let size = i64::try_from(log.size_bytes()).unwrap_or(i64::MAX);
                    Some(
                        DescribeLogDirsPartition::default()
                            .with_partition_index(index)
                            .with_partition_size(size),
                    )
                })
                .collect();
            Some(
                DescribeLogDirsTopic::default()
                    .with_name(TopicName(StrBytes::from_string(name)))
                    .with_partitions(partitions),
            )
        })
        .collect();
    let dir = broker
        .data_dir
        .canonicalize()
        .unwrap_or_else(|_| broker.data_dir.clone());
    let result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_topics(topics);
    DescribeLogDirsResponse::default().with_results(vec![result])
}
