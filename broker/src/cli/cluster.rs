//! `spate cluster status`.

use super::client::check;
use super::{print_json, table, CliError, Connect};
use clap::Subcommand;
use serde_json::json;
use spate_protocol::kafka_protocol::messages::describe_cluster_request::DescribeClusterRequest;
use spate_protocol::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};

/// Cluster subcommands.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum ClusterCommand {
    /// The cluster id, controller, brokers (and whether each answers), topic and partition
    /// counts.
    Status,
}

pub(crate) fn run(command: ClusterCommand, connect: &Connect) -> Result<(), CliError> {
    let ClusterCommand::Status = command;
    let mut client = connect.client()?;
    let metadata = client.metadata(None)?;
    let (cluster_id, controller) = match client.any().call(
        ApiKey::DescribeCluster,
        (0, 1),
        RequestKind::DescribeCluster(DescribeClusterRequest::default()),
    ) {
        Ok((_, ResponseKind::DescribeCluster(described))) => {
            check(
                described.error_code,
                "DescribeCluster",
                described.error_message.as_ref(),
            )?;
            (described.cluster_id.to_string(), described.controller_id.0)
        }
        // Older brokers: Metadata says as much.
        _ => (
            metadata
                .cluster_id
                .as_ref()
                .map(|c| c.to_string())
                .unwrap_or_default(),
            metadata.controller_id.0,
        ),
    };
    let mut brokers: Vec<_> = metadata
        .brokers
        .iter()
        .map(|b| {
            (
                b.node_id.0,
                b.host.to_string(),
                b.port,
                b.rack.as_ref().map(|r| r.to_string()),
            )
        })
        .collect();
    brokers.sort();
    let reachable: Vec<bool> = brokers
        .iter()
        .map(|(id, ..)| client.node(*id).is_ok())
        .collect();
    let topics = metadata.topics.iter().filter(|t| !t.is_internal).count();
    let partitions: usize = metadata
        .topics
        .iter()
        .filter(|t| !t.is_internal)
        .map(|t| t.partitions.len())
        .sum();
    let offline: usize = metadata
        .topics
        .iter()
        .flat_map(|t| &t.partitions)
        .filter(|p| p.leader_id.0 < 0)
        .count();
    if connect.json {
        let list: Vec<_> = brokers
            .iter()
            .zip(&reachable)
            .map(|((id, host, port, rack), up)| {
                json!({"id": id, "host": host, "port": port, "rack": rack, "reachable": up})
            })
            .collect();
        print_json(&json!({
            "cluster_id": cluster_id,
            "controller": controller,
            "brokers": list,
            "topics": topics,
            "partitions": partitions,
            "offline_partitions": offline,
        }));
    } else {
        println!("CLUSTER {cluster_id}  controller {controller}");
        let rows: Vec<Vec<String>> = brokers
            .iter()
            .zip(&reachable)
            .map(|((id, host, port, rack), up)| {
                vec![
                    id.to_string(),
                    format!("{host}:{port}"),
                    rack.clone().unwrap_or_else(|| "-".to_string()),
                    if *up { "up" } else { "unreachable" }.to_string(),
                ]
            })
            .collect();
        print!("{}", table(&["BROKER", "ADDRESS", "RACK", "STATUS"], &rows));
        println!("{topics} topics, {partitions} partitions, {offline} offline partitions");
    }
    if reachable.iter().all(|up| *up) && offline == 0 {
        Ok(())
    } else {
        Err(CliError::Kafka(
            "the cluster is degraded: a broker is unreachable or a partition has no leader"
                .to_string(),
        ))
    }
}
