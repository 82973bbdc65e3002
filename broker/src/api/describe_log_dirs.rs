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
use std::rc::Rc;

pub(super) async fn handle(
    broker: &Rc<Broker>,
    request: DescribeLogDirsRequest,
) -> DescribeLogDirsResponse {
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
    let mut topics = Vec::with_capacity(wanted.len());
    for (name, partitions) in wanted {
        let Some(topic) = broker.topics.get(&name) else {
            continue;
        };
        let indexes: Vec<i32> =
            partitions.unwrap_or_else(|| (0..topic.partition_count()).collect());
        let asked = indexes.into_iter().map(|index| (index, ())).collect();
        let partitions = broker
            .each_partition(
                Some(&topic),
                asked,
                |_, log, index, ()| async move {
                    let size = i64::try_from(log.size_bytes()).unwrap_or(i64::MAX);
                    Some(
                        DescribeLogDirsPartition::default()
                            .with_partition_index(index)
                            .with_partition_size(size),
                    )
                },
                |_| None,
            )
            .await
            .into_iter()
            .flatten()
            .collect();
        topics.push(
            DescribeLogDirsTopic::default()
                .with_name(TopicName(StrBytes::from_string(name)))
                .with_partitions(partitions),
        );
    }
    let dir = broker
        .data_dir
        .canonicalize()
        .unwrap_or_else(|_| broker.data_dir.clone());
    let result = DescribeLogDirsResult::default()
        .with_log_dir(StrBytes::from_string(dir.display().to_string()))
        .with_topics(topics);
    DescribeLogDirsResponse::default().with_results(vec![result])
}
