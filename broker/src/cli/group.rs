//! `spate group list|describe|reset-offsets`.

use super::client::{check, Client};
use super::offsets::{self, EARLIEST, LATEST};
use super::{print_json, table, CliError, Connect};
use clap::{ArgGroup, Subcommand};
use serde_json::json;
use spate_protocol::kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use spate_protocol::kafka_protocol::messages::describe_groups_response::DescribedGroup;
use spate_protocol::kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use spate_protocol::kafka_protocol::messages::{ApiKey, GroupId, RequestKind, ResponseKind};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;

/// Group subcommands.
#[derive(Debug, Clone, Subcommand)]
pub(crate) enum GroupCommand {
    /// List consumer groups.
    List,
    /// Members, assignments, committed offsets and lag of a group.
    Describe {
        /// The group id.
        group: String,
    },
    /// Move a group's committed offsets (the group must have no active members). Prints
    /// the plan; commits only with --execute.
    #[command(group(ArgGroup::new("to").required(true).args(
        ["to_earliest", "to_latest", "to_offset", "to_timestamp", "shift_by"])))]
    ResetOffsets {
        /// The group id.
        group: String,
        /// The topic whose offsets move.
        #[arg(long)]
        topic: String,
        /// Only these partitions, e.g. 0,2 [default: all].
        #[arg(long)]
        partitions: Option<String>,
        /// To each partition's first offset.
        #[arg(long)]
        to_earliest: bool,
        /// To each partition's end.
        #[arg(long)]
        to_latest: bool,
        /// To this offset (kept within each partition's range).
        #[arg(long)]
        to_offset: Option<i64>,
        /// To the first offset at or after this time (ms since the epoch); the end when
        /// nothing is that recent.
        #[arg(long)]
        to_timestamp: Option<i64>,
        /// By this many records from the committed offset (negative: back).
        #[arg(long, allow_hyphen_values = true)]
        shift_by: Option<i64>,
        /// Commit the new offsets (without it, only print them).
        #[arg(long)]
        execute: bool,
    },
}

pub(crate) fn run(command: GroupCommand, connect: &Connect) -> Result<(), CliError> {
    let mut client = connect.client()?;
    match command {
        GroupCommand::List => list(&mut client, connect),
        GroupCommand::Describe { group } => describe(&mut client, connect, &group),
        GroupCommand::ResetOffsets {
            group,
            topic,
            partitions,
            to_earliest,
            to_latest,
            to_offset,
            to_timestamp,
            shift_by,
            execute,
        } => {
            let target = if to_earliest {
                Target::Earliest
            } else if to_latest {
                Target::Latest
            } else if let Some(offset) = to_offset {
                Target::Offset(offset)
            } else if let Some(ms) = to_timestamp {
                Target::Timestamp(ms)
            } else {
                Target::Shift(shift_by.unwrap_or(0))
            };
            let only = partitions
                .as_deref()
                .map(offsets::parse_partitions)
                .transpose()?;
            let plan = Plan {
                group: &group,
                topic: &topic,
                only,
                target,
                execute,
            };
            reset(&mut client, connect, &plan)
        }
    }
}

fn list(client: &mut Client, connect: &Connect) -> Result<(), CliError> {
    client.metadata(Some(&[]))?;
    let mut groups = Vec::new();
    for node in client.broker_ids() {
        let (_, response) = client.node(node)?.call(
            ApiKey::ListGroups,
            (0, 5),
            RequestKind::ListGroups(ListGroupsRequest::default()),
        )?;
        let ResponseKind::ListGroups(listed) = response else {
            return Err(CliError::Kafka(
                "unexpected ListGroups response".to_string(),
            ));
        };
        check(
            listed.error_code,
            &format!("listing groups on broker {node}"),
            None,
        )?;
        for group in listed.groups {
            groups.push((
                group.group_id.0.to_string(),
                group.group_state.to_string(),
                group.group_type.to_string(),
                group.protocol_type.to_string(),
                node,
            ));
        }
    }
    groups.sort();
    if connect.json {
        let list: Vec<_> = groups
            .iter()
            .map(|(group, state, kind, protocol, node)| {
                json!({"group": group, "state": state, "type": kind,
                       "protocol_type": protocol, "coordinator": node})
            })
            .collect();
        print_json(&json!(list));
    } else {
        let rows: Vec<Vec<String>> = groups
            .iter()
            .map(|(group, state, kind, _, node)| {
                vec![group.clone(), state.clone(), kind.clone(), node.to_string()]
            })
            .collect();
        print!(
            "{}",
            table(&["GROUP", "STATE", "TYPE", "COORDINATOR"], &rows)
        );
    }
    Ok(())
}

/// The group's description from its coordinator (an error code is an error).
fn described(client: &mut Client, group: &str) -> Result<DescribedGroup, CliError> {
    let request = DescribeGroupsRequest::default()
        .with_groups(vec![GroupId(StrBytes::from_string(group.to_string()))]);
    let (_, response) = client.coordinator(group)?.call(
        ApiKey::DescribeGroups,
        (0, 5),
        RequestKind::DescribeGroups(request),
    )?;
    let ResponseKind::DescribeGroups(answer) = response else {
        return Err(CliError::Kafka(
            "unexpected DescribeGroups response".to_string(),
        ));
    };
    let description = answer
        .groups
        .into_iter()
        .next()
        .ok_or_else(|| CliError::Kafka("DescribeGroups answered nothing".to_string()))?;
    check(
        description.error_code,
        &format!("describing group {group}"),
        description.error_message.as_ref(),
    )?;
    Ok(description)
}

/// A consumer-protocol assignment's (topic, partitions), or nothing if it does not parse.
fn assignment(bytes: &[u8]) -> Vec<(String, Vec<i32>)> {
    fn take<'a>(bytes: &mut &'a [u8], n: usize) -> Option<&'a [u8]> {
        let (head, rest) = (bytes.get(..n)?, bytes.get(n..)?);
        *bytes = rest;
        Some(head)
    }
    fn int16(bytes: &mut &[u8]) -> Option<i16> {
        Some(i16::from_be_bytes(take(bytes, 2)?.try_into().ok()?))
    }
    fn int32(bytes: &mut &[u8]) -> Option<i32> {
        Some(i32::from_be_bytes(take(bytes, 4)?.try_into().ok()?))
    }
    let parse = |mut bytes: &[u8]| -> Option<Vec<(String, Vec<i32>)>> {
        let _version = int16(&mut bytes)?;
        let topics = usize::try_from(int32(&mut bytes)?).ok()?;
        let mut out = Vec::new();
        for _ in 0..topics.min(100_000) {
            let length = usize::try_from(int16(&mut bytes)?).ok()?;
            let name = String::from_utf8_lossy(take(&mut bytes, length)?).into_owned();
            let count = usize::try_from(int32(&mut bytes)?).ok()?;
            let partitions = (0..count.min(1_000_000))
                .map(|_| int32(&mut bytes))
                .collect::<Option<Vec<i32>>>()?;
            out.push((name, partitions));
        }
        Some(out)
    };
    parse(bytes).unwrap_or_default()
}

/// One row of a group's offsets: topic, partition, committed, end, lag, member.
type LagRow = (String, i32, i64, i64, i64, Option<String>);

fn describe(client: &mut Client, connect: &Connect, group: &str) -> Result<(), CliError> {
    let description = described(client, group)?;
    let mut owners: BTreeMap<(String, i32), String> = BTreeMap::new();
    let members: Vec<_> = description
        .members
        .iter()
        .map(|m| {
            let assigned = assignment(&m.member_assignment);
            for (topic, partitions) in &assigned {
                for p in partitions {
                    owners.insert((topic.clone(), *p), m.member_id.to_string());
                }
            }
            (m, assigned)
        })
        .collect();
    let offsets = offsets::committed(client, group, None)?;
    let mut rows: Vec<LagRow> = Vec::new();
    for (topic, partitions) in &offsets {
        let layout = offsets::partitions(client, topic)?;
        let wanted: Vec<_> = layout
            .into_iter()
            .filter(|p| partitions.contains_key(&p.index))
            .collect();
        let ends = offsets::list_offsets(client, topic, &wanted, LATEST)?;
        for (&partition, &offset) in partitions {
            let end = ends.get(&partition).copied().unwrap_or(-1);
            let owner = owners.get(&(topic.clone(), partition)).cloned();
            rows.push((
                topic.clone(),
                partition,
                offset,
                end,
                (end - offset).max(0),
                owner,
            ));
        }
    }
    let total: i64 = rows.iter().map(|r| r.4).sum();
    if connect.json {
        let members: Vec<_> = members
            .iter()
            .map(|(m, assigned)| {
                let assigned: Vec<_> = assigned
                    .iter()
                    .map(|(t, p)| json!({"topic": t, "partitions": p}))
                    .collect();
                json!({"member_id": m.member_id.as_str(), "client_id": m.client_id.as_str(),
                       "host": m.client_host.as_str(),
                       "instance_id": m.group_instance_id.as_ref().map(|i| i.as_str()),
                       "assignment": assigned})
            })
            .collect();
        let offsets: Vec<_> = rows
            .iter()
            .map(|(topic, partition, offset, end, lag, owner)| {
                json!({"topic": topic, "partition": partition, "committed_offset": offset,
                       "log_end_offset": end, "lag": lag, "member_id": owner})
            })
            .collect();
        print_json(&json!({
            "group": group,
            "state": description.group_state.as_str(),
            "protocol_type": description.protocol_type.as_str(),
            "protocol": description.protocol_data.as_str(),
            "members": members,
            "offsets": offsets,
            "total_lag": total,
        }));
        return Ok(());
    }
    println!(
        "GROUP {group}  state {}  protocol {}  members {}  total lag {total}",
        description.group_state.as_str(),
        if description.protocol_data.is_empty() {
            "-"
        } else {
            description.protocol_data.as_str()
        },
        members.len()
    );
    if !members.is_empty() {
        let member_rows: Vec<Vec<String>> = members
            .iter()
            .map(|(m, assigned)| {
                let assigned: Vec<String> =
                    assigned.iter().map(|(t, p)| format!("{t}{p:?}")).collect();
                vec![
                    m.member_id.to_string(),
                    m.client_id.to_string(),
                    m.client_host.to_string(),
                    assigned.join(" "),
                ]
            })
            .collect();
        print!(
            "{}",
            table(&["MEMBER", "CLIENT-ID", "HOST", "ASSIGNMENT"], &member_rows)
        );
    }
    let offset_rows: Vec<Vec<String>> = rows
        .iter()
        .map(|(topic, partition, offset, end, lag, owner)| {
            vec![
                topic.clone(),
                partition.to_string(),
                offset.to_string(),
                end.to_string(),
                lag.to_string(),
                owner.clone().unwrap_or_else(|| "-".to_string()),
            ]
        })
        .collect();
    print!(
        "{}",
        table(
            &[
                "TOPIC",
                "PARTITION",
                "COMMITTED",
                "LOG-END",
                "LAG",
                "MEMBER"
            ],
            &offset_rows
        )
    );
    Ok(())
}

/// Where reset-offsets moves a group.
#[derive(Debug, Clone, Copy)]
enum Target {
    Earliest,
    Latest,
    Offset(i64),
    Timestamp(i64),
    Shift(i64),
}

struct Plan<'a> {
    group: &'a str,
    topic: &'a str,
    only: Option<Vec<i32>>,
    target: Target,
    execute: bool,
}

fn reset(client: &mut Client, connect: &Connect, plan: &Plan<'_>) -> Result<(), CliError> {
    let (group, topic) = (plan.group, plan.topic);
    let description = described(client, group)?;
    if !description.members.is_empty() {
        return Err(CliError::Kafka(format!(
            "group {group} has {} active member(s) (state {}): offsets can only be reset \
             while it has none; stop its consumers first",
            description.members.len(),
            description.group_state.as_str()
        )));
    }
    let mut partitions = offsets::partitions(client, topic)?;
    if let Some(only) = &plan.only {
        if let Some(missing) = only
            .iter()
            .find(|p| !partitions.iter().any(|q| q.index == **p))
        {
            return Err(CliError::Kafka(format!(
                "topic {topic} has no partition {missing}"
            )));
        }
        partitions.retain(|p| only.contains(&p.index));
    }
    let start = offsets::list_offsets(client, topic, &partitions, EARLIEST)?;
    let end = offsets::list_offsets(client, topic, &partitions, LATEST)?;
    let current = offsets::committed(client, group, None)?
        .remove(topic)
        .unwrap_or_default();
    let at_time = match plan.target {
        Target::Timestamp(ms) => Some(offsets::list_offsets(client, topic, &partitions, ms)?),
        _ => None,
    };
    let mut moves = Vec::new();
    for partition in &partitions {
        let p = partition.index;
        let (low, high) = (
            start.get(&p).copied().unwrap_or(0),
            end.get(&p).copied().unwrap_or(0),
        );
        let now = current.get(&p).copied();
        let wanted = match plan.target {
            Target::Earliest => low,
            Target::Latest => high,
            Target::Offset(offset) => offset,
            Target::Timestamp(_) => at_time
                .as_ref()
                .and_then(|found| found.get(&p).copied())
                .filter(|o| *o >= 0)
                .unwrap_or(high),
            Target::Shift(by) => now.unwrap_or(low).saturating_add(by),
        };
        moves.push((p, now, wanted.clamp(low, high.max(low))));
    }
    if plan.execute {
        let commits: Vec<(i32, i64)> = moves.iter().map(|(p, _, new)| (*p, *new)).collect();
        offsets::commit(client, group, topic, &commits)?;
    }
    if connect.json {
        let list: Vec<_> = moves
            .iter()
            .map(
                |(p, now, new)| json!({"topic": topic, "partition": p, "current": now, "new": new}),
            )
            .collect();
        print_json(&json!({"group": group, "executed": plan.execute, "offsets": list}));
    } else {
        let rows: Vec<Vec<String>> = moves
            .iter()
            .map(|(p, now, new)| {
                vec![
                    topic.to_string(),
                    p.to_string(),
                    now.map_or("-".to_string(), |o| o.to_string()),
                    new.to_string(),
                ]
            })
            .collect();
        print!(
            "{}",
            table(&["TOPIC", "PARTITION", "CURRENT", "NEW"], &rows)
        );
        if plan.execute {
            println!("committed the new offsets of group {group}");
        } else {
            eprintln!("dry run: nothing committed (add --execute to commit)");
        }
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn consumer_assignments_decode_and_garbage_gives_nothing() {
        let mut bytes = vec![0, 1, 0, 0, 0, 1, 0, 3];
        bytes.extend_from_slice(b"abc");
        bytes.extend_from_slice(&[0, 0, 0, 2, 0, 0, 0, 4, 0, 0, 0, 7]);
        bytes.extend_from_slice(&[0xff, 0xff, 0xff, 0xff]);
        assert_eq!(assignment(&bytes), vec![("abc".to_string(), vec![4, 7])]);
        assert!(assignment(&bytes[..9]).is_empty());
        assert!(assignment(&[]).is_empty());
    }
}
