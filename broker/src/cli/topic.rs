//! `spate topic create|list|describe|delete|alter-config|add-partitions`.

use super::client::{check, Client};
use super::offsets::{self, EARLIEST, LATEST};
use super::{print_json, table, CliError, Connect};
use clap::Subcommand;
use serde_json::json;
use spate_protocol::kafka_protocol::messages::create_partitions_request::{
    CreatePartitionsRequest, CreatePartitionsTopic,
};
use spate_protocol::kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreatableTopicConfig, CreateTopicsRequest,
};
use spate_protocol::kafka_protocol::messages::delete_topics_request::{
    DeleteTopicState, DeleteTopicsRequest,
};
use spate_protocol::kafka_protocol::messages::describe_configs_request::{
    DescribeConfigsRequest, DescribeConfigsResource,
};
use spate_protocol::kafka_protocol::messages::incremental_alter_configs_request::{
    AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
};
use spate_protocol::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind, TopicName};
use spate_protocol::kafka_protocol::protocol::StrBytes;

/// The resource type of topics in the config APIs.
const TOPIC_RESOURCE: i8 = 2;
/// DescribeConfigs' source of a value nobody set.
const DEFAULT_CONFIG: i8 = 5;

/// Topic subcommands.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum TopicCommand {
    /// Create a topic.
    Create {
        /// The topic's name.
        name: String,
        /// Partitions (-1: the broker's default).
        #[arg(short, long, default_value_t = -1, allow_hyphen_values = true)]
        partitions: i32,
        /// Replicas of each partition (-1: the broker's default).
        #[arg(short, long, default_value_t = -1, allow_hyphen_values = true)]
        replication_factor: i16,
        /// A topic config, key=value (repeatable).
        #[arg(short, long = "config", value_name = "KEY=VALUE")]
        configs: Vec<String>,
    },
    /// List topics.
    List {
        /// Include internal topics (__consumer_offsets, ...).
        #[arg(long)]
        internal: bool,
    },
    /// Partitions (leader, replicas, offsets) and configs of topics.
    Describe {
        /// Topic names.
        #[arg(required = true)]
        names: Vec<String>,
        /// Show every config, defaults included (else only those set on the topic).
        #[arg(long)]
        all_configs: bool,
    },
    /// Delete topics.
    Delete {
        /// Topic names.
        #[arg(required = true)]
        names: Vec<String>,
    },
    /// Set or remove topic configs.
    AlterConfig {
        /// The topic.
        name: String,
        /// Set a config, key=value (repeatable).
        #[arg(long = "set", value_name = "KEY=VALUE")]
        set: Vec<String>,
        /// Remove a config, back to its default (repeatable).
        #[arg(long = "delete", value_name = "KEY")]
        delete: Vec<String>,
    },
    /// Raise a topic's partition count.
    AddPartitions {
        /// The topic.
        name: String,
        /// The partition count wanted (more than it has).
        #[arg(long)]
        total: i32,
    },
}

fn topic_name(name: &str) -> TopicName {
    TopicName(StrBytes::from_string(name.to_string()))
}

fn key_value(pair: &str) -> Result<(String, String), CliError> {
    pair.split_once('=')
        .filter(|(k, _)| !k.is_empty())
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .ok_or_else(|| CliError::Usage(format!("{pair:?} is not KEY=VALUE")))
}

pub(crate) fn run(command: TopicCommand, connect: &Connect) -> Result<(), CliError> {
    // Arguments are checked before connecting.
    match &command {
        TopicCommand::Create { configs, .. } => {
            for pair in configs {
                key_value(pair)?;
            }
        }
        TopicCommand::AlterConfig { set, delete, .. } => {
            for pair in set {
                key_value(pair)?;
            }
            if set.is_empty() && delete.is_empty() {
                return Err(CliError::Usage(
                    "alter-config needs --set KEY=VALUE or --delete KEY".to_string(),
                ));
            }
        }
        _ => {}
    }
    let mut client = connect.client()?;
    match command {
        TopicCommand::Create {
            name,
            partitions,
            replication_factor,
            configs,
        } => create(
            &mut client,
            connect,
            &name,
            partitions,
            replication_factor,
            &configs,
        ),
        TopicCommand::List { internal } => list(&mut client, connect, internal),
        TopicCommand::Describe { names, all_configs } => {
            describe(&mut client, connect, &names, all_configs)
        }
        TopicCommand::Delete { names } => delete(&mut client, connect, &names),
        TopicCommand::AlterConfig { name, set, delete } => {
            alter(&mut client, connect, &name, &set, &delete)
        }
        TopicCommand::AddPartitions { name, total } => {
            add_partitions(&mut client, connect, &name, total)
        }
    }
}

fn create(
    client: &mut Client,
    connect: &Connect,
    name: &str,
    partitions: i32,
    replication_factor: i16,
    configs: &[String],
) -> Result<(), CliError> {
    let configs = configs
        .iter()
        .map(|pair| {
            let (key, value) = key_value(pair)?;
            Ok(CreatableTopicConfig::default()
                .with_name(StrBytes::from_string(key))
                .with_value(Some(StrBytes::from_string(value))))
        })
        .collect::<Result<Vec<_>, CliError>>()?;
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(i32::try_from(connect.timeout_ms).unwrap_or(i32::MAX))
        .with_topics(vec![CreatableTopic::default()
            .with_name(topic_name(name))
            .with_num_partitions(partitions)
            .with_replication_factor(replication_factor)
            .with_configs(configs)]);
    // v4+ accepts -1 (the broker's default) for the counts.
    let (_, response) = client.any().call(
        ApiKey::CreateTopics,
        (4, 7),
        RequestKind::CreateTopics(request),
    )?;
    let ResponseKind::CreateTopics(created) = response else {
        return Err(CliError::Kafka(
            "unexpected CreateTopics response".to_string(),
        ));
    };
    let result = created
        .topics
        .first()
        .ok_or_else(|| CliError::Kafka("CreateTopics answered nothing".to_string()))?;
    check(
        result.error_code,
        &format!("creating topic {name}"),
        result.error_message.as_ref(),
    )?;
    if connect.json {
        print_json(&json!({
            "topic": name,
            "id": result.topic_id.to_string(),
            "partitions": result.num_partitions,
            "replication_factor": result.replication_factor,
        }));
    } else {
        println!(
            "created topic {name} ({} partitions, replication factor {})",
            result.num_partitions, result.replication_factor
        );
    }
    Ok(())
}

fn list(client: &mut Client, connect: &Connect, internal: bool) -> Result<(), CliError> {
    let metadata = client.metadata(None)?;
    let mut topics: Vec<(String, usize, usize, bool)> = metadata
        .topics
        .iter()
        .filter(|t| internal || !t.is_internal)
        .filter_map(|t| {
            let name = t.name.as_ref()?.0.to_string();
            let replicas = t.partitions.first().map_or(0, |p| p.replica_nodes.len());
            Some((name, t.partitions.len(), replicas, t.is_internal))
        })
        .collect();
    topics.sort();
    if connect.json {
        let list: Vec<_> = topics
            .iter()
            .map(|(name, partitions, replicas, internal)| {
                json!({"name": name, "partitions": partitions,
                       "replication_factor": replicas, "internal": internal})
            })
            .collect();
        print_json(&json!(list));
    } else {
        let rows: Vec<Vec<String>> = topics
            .iter()
            .map(|(name, partitions, replicas, internal)| {
                let mut row = vec![name.clone(), partitions.to_string(), replicas.to_string()];
                if *internal {
                    row.push("internal".to_string());
                }
                row
            })
            .collect();
        print!("{}", table(&["NAME", "PARTITIONS", "REPLICAS"], &rows));
    }
    Ok(())
}

/// A topic's configs: (name, value, is it set on the topic).
fn describe_configs(
    client: &mut Client,
    name: &str,
) -> Result<Vec<(String, Option<String>, bool)>, CliError> {
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(TOPIC_RESOURCE)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configuration_keys(None)]);
    let (_, response) = client.any().call(
        ApiKey::DescribeConfigs,
        (1, 4),
        RequestKind::DescribeConfigs(request),
    )?;
    let ResponseKind::DescribeConfigs(described) = response else {
        return Err(CliError::Kafka(
            "unexpected DescribeConfigs response".to_string(),
        ));
    };
    let result = described
        .results
        .first()
        .ok_or_else(|| CliError::Kafka("DescribeConfigs answered nothing".to_string()))?;
    check(
        result.error_code,
        &format!("configs of topic {name}"),
        result.error_message.as_ref(),
    )?;
    let mut configs: Vec<_> = result
        .configs
        .iter()
        .map(|c| {
            let value = if c.is_sensitive {
                Some("(sensitive)".to_string())
            } else {
                c.value.as_ref().map(|v| v.to_string())
            };
            (c.name.to_string(), value, c.config_source != DEFAULT_CONFIG)
        })
        .collect();
    configs.sort();
    Ok(configs)
}

fn describe(
    client: &mut Client,
    connect: &Connect,
    names: &[String],
    all_configs: bool,
) -> Result<(), CliError> {
    let mut described = Vec::new();
    for name in names {
        let partitions = offsets::partitions(client, name)?;
        let start = offsets::list_offsets(client, name, &partitions, EARLIEST)?;
        let end = offsets::list_offsets(client, name, &partitions, LATEST)?;
        let configs: Vec<_> = describe_configs(client, name)?
            .into_iter()
            .filter(|(_, _, set)| all_configs || *set)
            .collect();
        described.push((name, partitions, start, end, configs));
    }
    if connect.json {
        let topics: Vec<_> = described
            .iter()
            .map(|(name, partitions, start, end, configs)| {
                let partitions: Vec<_> = partitions
                    .iter()
                    .map(|p| {
                        json!({"partition": p.index, "leader": p.leader,
                               "replicas": p.replicas, "isr": p.isr,
                               "log_start_offset": start.get(&p.index),
                               "high_watermark": end.get(&p.index)})
                    })
                    .collect();
                let configs: serde_json::Map<String, serde_json::Value> = configs
                    .iter()
                    .map(|(k, v, _)| (k.clone(), json!(v)))
                    .collect();
                json!({"name": name, "partitions": partitions, "configs": configs})
            })
            .collect();
        print_json(&json!(topics));
        return Ok(());
    }
    for (i, (name, partitions, start, end, configs)) in described.iter().enumerate() {
        if i > 0 {
            println!();
        }
        println!("TOPIC {name} ({} partitions)", partitions.len());
        let show = |offsets: &std::collections::BTreeMap<i32, i64>, p: i32| {
            offsets.get(&p).map_or("-".to_string(), i64::to_string)
        };
        let rows: Vec<Vec<String>> = partitions
            .iter()
            .map(|p| {
                vec![
                    p.index.to_string(),
                    p.leader.to_string(),
                    format!("{:?}", p.replicas),
                    format!("{:?}", p.isr),
                    show(start, p.index),
                    show(end, p.index),
                ]
            })
            .collect();
        print!(
            "{}",
            table(
                &[
                    "PARTITION",
                    "LEADER",
                    "REPLICAS",
                    "ISR",
                    "LOG-START",
                    "HIGH-WATERMARK"
                ],
                &rows
            )
        );
        if !configs.is_empty() {
            println!("CONFIGS");
            let rows: Vec<Vec<String>> = configs
                .iter()
                .map(|(k, v, _)| vec![k.clone(), v.clone().unwrap_or_else(|| "null".to_string())])
                .collect();
            print!("{}", table(&["KEY", "VALUE"], &rows));
        }
    }
    Ok(())
}

fn delete(client: &mut Client, connect: &Connect, names: &[String]) -> Result<(), CliError> {
    let request = DeleteTopicsRequest::default()
        .with_timeout_ms(i32::try_from(connect.timeout_ms).unwrap_or(i32::MAX))
        .with_topic_names(names.iter().map(|n| topic_name(n)).collect())
        .with_topics(
            names
                .iter()
                .map(|n| DeleteTopicState::default().with_name(Some(topic_name(n))))
                .collect(),
        );
    let (_, response) = client.any().call(
        ApiKey::DeleteTopics,
        (1, 6),
        RequestKind::DeleteTopics(request),
    )?;
    let ResponseKind::DeleteTopics(deleted) = response else {
        return Err(CliError::Kafka(
            "unexpected DeleteTopics response".to_string(),
        ));
    };
    let mut failures = Vec::new();
    let mut done = Vec::new();
    for result in &deleted.responses {
        let name = result
            .name
            .as_ref()
            .map_or_else(|| result.topic_id.to_string(), |n| n.0.to_string());
        match check(
            result.error_code,
            &format!("deleting topic {name}"),
            result.error_message.as_ref(),
        ) {
            Ok(()) => done.push(name),
            Err(e) => failures.push(e.to_string()),
        }
    }
    if connect.json {
        print_json(&json!({"deleted": done, "errors": failures}));
    } else {
        for name in &done {
            println!("deleted topic {name}");
        }
    }
    if failures.is_empty() {
        Ok(())
    } else {
        Err(CliError::Kafka(failures.join("; ")))
    }
}

fn alter(
    client: &mut Client,
    connect: &Connect,
    name: &str,
    set: &[String],
    delete: &[String],
) -> Result<(), CliError> {
    let mut configs = Vec::new();
    for pair in set {
        let (key, value) = key_value(pair)?;
        configs.push(
            AlterableConfig::default()
                .with_name(StrBytes::from_string(key))
                .with_config_operation(0)
                .with_value(Some(StrBytes::from_string(value))),
        );
    }
    for key in delete {
        configs.push(
            AlterableConfig::default()
                .with_name(StrBytes::from_string(key.clone()))
                .with_config_operation(1),
        );
    }
    let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
        AlterConfigsResource::default()
            .with_resource_type(TOPIC_RESOURCE)
            .with_resource_name(StrBytes::from_string(name.to_string()))
            .with_configs(configs),
    ]);
    let (_, response) = client.any().call(
        ApiKey::IncrementalAlterConfigs,
        (0, 1),
        RequestKind::IncrementalAlterConfigs(request),
    )?;
    let ResponseKind::IncrementalAlterConfigs(altered) = response else {
        return Err(CliError::Kafka(
            "unexpected IncrementalAlterConfigs response".to_string(),
        ));
    };
    for result in &altered.responses {
        check(
            result.error_code,
            &format!("altering the configs of topic {name}"),
            result.error_message.as_ref(),
        )?;
    }
    if connect.json {
        print_json(&json!({"topic": name, "set": set, "deleted": delete}));
    } else {
        println!(
            "altered topic {name}: {} set, {} removed",
            set.len(),
            delete.len()
        );
    }
    Ok(())
}

fn add_partitions(
    client: &mut Client,
    connect: &Connect,
    name: &str,
    total: i32,
) -> Result<(), CliError> {
    let request = CreatePartitionsRequest::default()
        .with_timeout_ms(i32::try_from(connect.timeout_ms).unwrap_or(i32::MAX))
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(topic_name(name))
            .with_count(total)
            .with_assignments(None)]);
    let (_, response) = client.any().call(
        ApiKey::CreatePartitions,
        (0, 3),
        RequestKind::CreatePartitions(request),
    )?;
    let ResponseKind::CreatePartitions(created) = response else {
        return Err(CliError::Kafka(
            "unexpected CreatePartitions response".to_string(),
        ));
    };
    for result in &created.results {
        check(
            result.error_code,
            &format!("adding partitions to topic {name}"),
            result.error_message.as_ref(),
        )?;
    }
    if connect.json {
        print_json(&json!({"topic": name, "partitions": total}));
    } else {
        println!("topic {name} now has {total} partitions");
    }
    Ok(())
}
