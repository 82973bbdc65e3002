//! The scrape: every shard's [`ShardSnapshot`] merged into one OpenMetrics/Prometheus text
//! page (prometheus-client's encoder), with consumer lag computed from the groups'
//! committed offsets and the partitions' high watermarks.
//!
//! Label values come from a fixed set, except topic and group names: at most
//! [`MAX_LABELLED_TOPICS`] topics and [`MAX_LABELLED_GROUPS`] groups get series of their own
//! (the first by name); the rest are counted in `spate_metrics_omitted`.

use super::{merged_traffic, CloseReason, GroupState, PartitionState, ShardSnapshot, Traffic};
use crate::topics::TopicMap;
use prometheus_client::collector::Collector;
use prometheus_client::encoding::{DescriptorEncoder, NoLabelSet};
use prometheus_client::metrics::MetricType;
use prometheus_client::registry::Registry;
use spate_protocol::kafka_protocol::messages::ApiKey;
use spate_storage::stats::{HistogramSnapshot, IoSnapshot};
use std::collections::{BTreeMap, BTreeSet};
use std::fmt::Error;
use uuid::Uuid;

/// Topics whose partitions get series of their own.
pub const MAX_LABELLED_TOPICS: usize = 1_000;
/// Consumer groups that get series of their own.
pub const MAX_LABELLED_GROUPS: usize = 1_000;

/// What the process itself reports (from /proc).
#[derive(Debug, Clone, Copy, Default)]
pub struct Process {
    /// Resident set size.
    pub resident_bytes: u64,
    /// Open file descriptors.
    pub open_fds: u64,
    /// User + system CPU time.
    pub cpu_seconds: f64,
}

impl Process {
    /// Reads this process's figures; missing ones are 0.
    pub fn read() -> Process {
        let status = std::fs::read_to_string("/proc/self/status").unwrap_or_default();
        let resident_kib = status
            .lines()
            .find_map(|line| line.strip_prefix("VmRSS:"))
            .and_then(|rest| rest.split_whitespace().next())
            .and_then(|kib| kib.parse::<u64>().ok())
            .unwrap_or(0);
        let open_fds = std::fs::read_dir("/proc/self/fd").map_or(0, |dir| dir.count() as u64);
        // Fields 14 and 15 of /proc/self/stat (utime, stime) in clock ticks, counted after
        // the command name's closing parenthesis; the kernel's USER_HZ is 100 on Linux.
        let stat = std::fs::read_to_string("/proc/self/stat").unwrap_or_default();
        let ticks: u64 = stat
            .rsplit_once(')')
            .map(|(_, rest)| {
                rest.split_whitespace()
                    .skip(11)
                    .take(2)
                    .filter_map(|field| field.parse::<u64>().ok())
                    .sum()
            })
            .unwrap_or(0);
        Process {
            resident_bytes: resident_kib * 1024,
            open_fds,
            cpu_seconds: ticks as f64 / 100.0,
        }
    }
}

/// One consumer group's lag on one partition.
#[derive(Debug, Clone, PartialEq, Eq)]
struct Lag {
    group: String,
    topic: String,
    partition: i32,
    committed: i64,
    lag: i64,
}

impl Lag {
    fn labels(&self) -> Labels {
        vec![
            ("group", self.group.clone()),
            ("topic", self.topic.clone()),
            ("partition", self.partition.to_string()),
        ]
    }
}

/// The merged page, owned so the encoder can hold it.
#[derive(Debug)]
struct Page {
    node: i32,
    version: &'static str,
    shards: Vec<ShardSnapshot>,
    /// (topic name, partition) → (state, traffic).
    partitions: BTreeMap<(String, i32), (Option<PartitionState>, Traffic)>,
    groups: Vec<GroupState>,
    lags: Vec<Lag>,
    omitted_topics: usize,
    omitted_groups: usize,
    process: Process,
}

/// Merges the shards' snapshots and encodes them.
pub fn encode(
    node: i32,
    shards: Vec<ShardSnapshot>,
    topics: &TopicMap,
    process: Process,
) -> String {
    let names: BTreeMap<Uuid, &str> = topics
        .iter()
        .map(|(name, topic)| (topic.id, name.as_str()))
        .collect();
    let labelled: BTreeSet<&str> = topics
        .keys()
        .map(String::as_str)
        .take(MAX_LABELLED_TOPICS)
        .collect();
    let omitted_topics = topics.len() - labelled.len();
    let mut partitions: BTreeMap<(String, i32), (Option<PartitionState>, Traffic)> =
        BTreeMap::new();
    for ((id, partition), traffic) in merged_traffic(&shards) {
        if let Some(name) = names.get(&id).filter(|n| labelled.contains(**n)) {
            partitions
                .entry((name.to_string(), partition))
                .or_default()
                .1 = traffic;
        }
    }
    for state in shards.iter().flat_map(|s| &s.partitions) {
        if let Some(name) = names.get(&state.topic).filter(|n| labelled.contains(**n)) {
            partitions
                .entry((name.to_string(), state.partition))
                .or_default()
                .0 = Some(state.clone());
        }
    }
    let mut groups: Vec<GroupState> = shards.iter().flat_map(|s| s.groups.clone()).collect();
    groups.sort_by(|a, b| a.name.cmp(&b.name));
    let omitted_groups = groups.len().saturating_sub(MAX_LABELLED_GROUPS);
    groups.truncate(MAX_LABELLED_GROUPS);
    let lags = groups
        .iter()
        .flat_map(|group| {
            let partitions = &partitions;
            group
                .offsets
                .iter()
                .filter_map(move |(topic, partition, committed)| {
                    let (state, _) = partitions.get(&(topic.clone(), *partition))?;
                    let end = state.as_ref()?.high_watermark;
                    Some(Lag {
                        group: group.name.clone(),
                        topic: topic.clone(),
                        partition: *partition,
                        committed: *committed,
                        lag: end.saturating_sub(*committed).max(0),
                    })
                })
        })
        .collect();
    let page = Page {
        node,
        version: env!("CARGO_PKG_VERSION"),
        shards,
        partitions,
        groups,
        lags,
        omitted_topics,
        omitted_groups,
        process,
    };
    let mut registry = Registry::default();
    registry.register_collector(Box::new(page));
    let mut out = String::new();
    // Writing into a String cannot fail.
    let _ = prometheus_client::encoding::text::encode(&mut out, &registry);
    out
}

/// A metric family: its descriptor, then one sample per label set.
fn family<'a>(
    encoder: &'a mut DescriptorEncoder<'_>,
    name: &'a str,
    help: &str,
    kind: MetricType,
) -> Result<prometheus_client::encoding::MetricEncoder<'a>, Error> {
    encoder.encode_descriptor(name, help, None, kind)
}

fn gauge<L: prometheus_client::encoding::EncodeLabelSet, V>(
    encoder: &mut DescriptorEncoder<'_>,
    (name, help): (&str, &str),
    samples: impl IntoIterator<Item = (L, V)>,
) -> Result<(), Error>
where
    V: prometheus_client::encoding::EncodeGaugeValue,
{
    let mut metric = family(encoder, name, help, MetricType::Gauge)?;
    for (labels, value) in samples {
        metric.encode_family(&labels)?.encode_gauge(&value)?;
    }
    Ok(())
}

fn counter<L: prometheus_client::encoding::EncodeLabelSet, V>(
    encoder: &mut DescriptorEncoder<'_>,
    (name, help): (&str, &str),
    samples: impl IntoIterator<Item = (L, V)>,
) -> Result<(), Error>
where
    V: prometheus_client::encoding::EncodeCounterValue,
{
    let mut metric = family(encoder, name, help, MetricType::Counter)?;
    for (labels, value) in samples {
        metric
            .encode_family(&labels)?
            .encode_counter::<NoLabelSet, _, u64>(&value, None)?;
    }
    Ok(())
}

fn histogram<L: prometheus_client::encoding::EncodeLabelSet>(
    encoder: &mut DescriptorEncoder<'_>,
    (name, help): (&str, &str),
    samples: impl IntoIterator<Item = (L, HistogramSnapshot)>,
) -> Result<(), Error> {
    let mut metric = family(encoder, name, help, MetricType::Histogram)?;
    for (labels, h) in samples {
        metric
            .encode_family(&labels)?
            .encode_histogram::<NoLabelSet>(h.sum_seconds, h.count(), &h.buckets(), None)?;
    }
    Ok(())
}

fn api_name(key: i16) -> String {
    ApiKey::try_from(key).map_or_else(|()| format!("unknown_{key}"), |api| format!("{api:?}"))
}

type Labels = Vec<(&'static str, String)>;

/// No labels.
fn none() -> Labels {
    Vec::new()
}

fn shard_label(shard: usize) -> Labels {
    vec![("shard", shard.to_string())]
}

impl Page {
    fn partition_labels(topic: &str, partition: i32) -> Labels {
        vec![
            ("topic", topic.to_string()),
            ("partition", partition.to_string()),
        ]
    }

    fn encode_requests(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), Error> {
        let mut counts: BTreeMap<i16, (u64, HistogramSnapshot)> = BTreeMap::new();
        let mut errors: BTreeMap<(i16, i16), u64> = BTreeMap::new();
        for shard in &self.shards {
            for (key, count, latency) in &shard.apis {
                let entry = counts.entry(*key).or_default();
                entry.0 += count;
                entry.1.add(latency);
            }
            for (key, count) in &shard.errors {
                *errors.entry(*key).or_default() += count;
            }
        }
        counter(
            encoder,
            ("spate_requests", "Kafka requests answered, by API."),
            counts
                .iter()
                .map(|(key, (count, _))| (vec![("api", api_name(*key))], *count)),
        )?;
        histogram(
            encoder,
            (
                "spate_request_duration_seconds",
                "Time from a request's arrival to its response, by API.",
            ),
            counts
                .iter()
                .map(|(key, (_, latency))| (vec![("api", api_name(*key))], latency.clone())),
        )?;
        counter(
            encoder,
            (
                "spate_request_errors",
                "Error codes in Produce and Fetch responses (per partition) and in other \
                 responses' top-level error, by API and Kafka error code.",
            ),
            errors.iter().map(|((key, code), count)| {
                let labels = vec![("api", api_name(*key)), ("error_code", code.to_string())];
                (labels, *count)
            }),
        )?;
        let slow: u64 = self.shards.iter().map(|s| s.slow_requests).sum();
        counter(
            encoder,
            (
                "spate_slow_requests",
                "Requests slower than the slow-request threshold.",
            ),
            [(none(), slow)],
        )
    }

    fn encode_partitions(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), Error> {
        type Pick = fn(&Traffic) -> u64;
        let traffic: [(&str, &str, Pick); 4] = [
            (
                "spate_partition_bytes_in",
                "Record-batch bytes appended by producers.",
                |t| t.bytes_in,
            ),
            (
                "spate_partition_messages_in",
                "Records appended by producers.",
                |t| t.messages_in,
            ),
            (
                "spate_partition_bytes_out",
                "Record-batch bytes returned to consumers.",
                |t| t.bytes_out,
            ),
            (
                "spate_partition_messages_out",
                "Records returned to consumers.",
                |t| t.messages_out,
            ),
        ];
        for (name, help, pick) in traffic {
            counter(
                encoder,
                (name, help),
                self.partitions.iter().map(|((topic, partition), (_, t))| {
                    (Self::partition_labels(topic, *partition), pick(t))
                }),
            )?;
        }
        type Offsets = fn(&PartitionState) -> i64;
        let offsets: [(&str, &str, Offsets); 4] = [
            (
                "spate_partition_log_end_offset",
                "The offset the next record will get.",
                |s| s.log_end,
            ),
            (
                "spate_partition_log_start_offset",
                "The first offset still in the log.",
                |s| s.log_start,
            ),
            (
                "spate_partition_high_watermark",
                "The end of what consumers may read (durable).",
                |s| s.high_watermark,
            ),
            (
                "spate_partition_last_stable_offset",
                "The end of what read_committed consumers may read.",
                |s| s.last_stable,
            ),
        ];
        for (name, help, pick) in offsets {
            self.partition_gauge(encoder, (name, help), pick)?;
        }
        type Sizes = fn(&PartitionState) -> u64;
        let sizes: [(&str, &str, Sizes); 2] = [
            (
                "spate_partition_size_bytes",
                "Bytes of the partition's segments (preallocated space excluded).",
                |s| s.size_bytes,
            ),
            (
                "spate_partition_recycled_bytes",
                "Bytes of removed segment files the partition keeps for new segments \
                 (--recycle-segments): disk held beyond its segments.",
                |s| s.recycled_bytes,
            ),
        ];
        for (name, help, pick) in sizes {
            self.partition_gauge(encoder, (name, help), pick)?;
        }
        Ok(())
    }

    /// One gauge per partition whose state this shard reported.
    fn partition_gauge<V: prometheus_client::encoding::EncodeGaugeValue>(
        &self,
        encoder: &mut DescriptorEncoder<'_>,
        descriptor: (&str, &str),
        pick: fn(&PartitionState) -> V,
    ) -> Result<(), Error> {
        gauge(
            encoder,
            descriptor,
            self.partitions
                .iter()
                .filter_map(|((topic, partition), (state, _))| {
                    Some((
                        Self::partition_labels(topic, *partition),
                        pick(state.as_ref()?),
                    ))
                }),
        )
    }

    fn encode_groups(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), Error> {
        gauge(
            encoder,
            (
                "spate_consumer_group_lag",
                "Records between a group's committed offset and the partition's high watermark.",
            ),
            self.lags.iter().map(|lag| (lag.labels(), lag.lag)),
        )?;
        gauge(
            encoder,
            (
                "spate_consumer_group_committed_offset",
                "A group's committed offset (the next record it will read).",
            ),
            self.lags.iter().map(|lag| (lag.labels(), lag.committed)),
        )?;
        let mut totals: BTreeMap<&str, i64> =
            self.groups.iter().map(|g| (g.name.as_str(), 0)).collect();
        for lag in &self.lags {
            *totals.entry(lag.group.as_str()).or_default() += lag.lag;
        }
        gauge(
            encoder,
            (
                "spate_consumer_group_lag_sum",
                "A group's lag over all its partitions.",
            ),
            totals
                .iter()
                .map(|(group, total)| (vec![("group", group.to_string())], *total)),
        )?;
        gauge(
            encoder,
            ("spate_consumer_group_members", "Members of a group."),
            self.groups
                .iter()
                .map(|g| (vec![("group", g.name.clone())], g.members as u64)),
        )?;
        gauge(
            encoder,
            (
                "spate_consumer_group_state",
                "1 for a group's current state (as ListGroups names it).",
            ),
            self.groups.iter().map(|g| {
                let labels = vec![("group", g.name.clone()), ("state", g.state.to_string())];
                (labels, 1_u64)
            }),
        )
    }

    fn encode_shards(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), Error> {
        let open: u64 = self.shards.iter().map(|s| s.connections_open).sum();
        gauge(
            encoder,
            ("spate_connections_open", "Open client connections."),
            [(none(), open)],
        )?;
        let accepted: u64 = self.shards.iter().map(|s| s.connections_accepted).sum();
        counter(
            encoder,
            ("spate_connections_accepted", "Client connections accepted."),
            [(none(), accepted)],
        )?;
        counter(
            encoder,
            (
                "spate_connections_closed",
                "Client connections closed, by reason (client, error, bad_request, limit).",
            ),
            CloseReason::ALL.iter().enumerate().map(|(i, reason)| {
                let closed: u64 = self.shards.iter().map(|s| s.connections_closed[i]).sum();
                (vec![("reason", reason.name().to_string())], closed)
            }),
        )?;
        counter(
            encoder,
            (
                "spate_shard_busy_seconds",
                "Time the shard's executor spent running tasks and polling I/O.",
            ),
            self.shards
                .iter()
                .map(|s| (shard_label(s.shard), s.busy_seconds)),
        )?;
        gauge(
            encoder,
            (
                "spate_shard_busy_ratio",
                "Fraction of the last second the shard's executor was busy.",
            ),
            self.shards
                .iter()
                .map(|s| (shard_label(s.shard), s.busy_ratio)),
        )?;
        histogram(
            encoder,
            (
                "spate_shard_task_queue_latency_seconds",
                "How long a ready task waited for its turn on the shard (probed 10 times a \
                 second).",
            ),
            self.shards
                .iter()
                .map(|s| (shard_label(s.shard), s.queue_latency.clone())),
        )?;
        self.encode_io(encoder)
    }

    fn encode_io(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), Error> {
        let mut io = IoSnapshot::default();
        for shard in &self.shards {
            io.add(&shard.io);
        }
        counter(
            encoder,
            (
                "spate_log_read_bytes",
                "Bytes partition reads took from memory (tail cache and write-behind \
                 buffers) or from segment files.",
            ),
            [
                (vec![("source", "memory".to_string())], io.read_memory_bytes),
                (vec![("source", "disk".to_string())], io.read_disk_bytes),
            ],
        )?;
        counter(
            encoder,
            (
                "spate_log_read_ahead_bytes",
                "Of the bytes partition reads took from segment files, those the read-ahead \
                 had already read (sequential readers, such as consumers catching up).",
            ),
            [(none(), io.read_ahead_bytes)],
        )?;
        let read = io.read_memory_bytes + io.read_disk_bytes;
        let ratio = if read == 0 {
            1.0
        } else {
            io.read_memory_bytes as f64 / read as f64
        };
        gauge(
            encoder,
            (
                "spate_tail_cache_hit_ratio",
                "Of the bytes partition reads returned since start-up, the fraction served \
                 from memory.",
            ),
            [(none(), ratio)],
        )?;
        gauge(
            encoder,
            (
                "spate_tail_cache_bytes",
                "Bytes the shard's tail cache holds: written chunks kept for reads, and the \
                 read-ahead buffers of sequential readers.",
            ),
            self.shards
                .iter()
                .map(|s| (shard_label(s.shard), s.tail_cache.0)),
        )?;
        gauge(
            encoder,
            (
                "spate_tail_cache_capacity_bytes",
                "The most the shard's tail cache holds.",
            ),
            self.shards
                .iter()
                .map(|s| (shard_label(s.shard), s.tail_cache.1)),
        )?;
        gauge(
            encoder,
            (
                "spate_write_buffer_pool_bytes",
                "Free write-behind buffers the shard keeps for new chunks (at most 8 MiB).",
            ),
            self.shards
                .iter()
                .map(|s| (shard_label(s.shard), s.write_buffers.0)),
        )?;
        counter(
            encoder,
            (
                "spate_write_buffers",
                "Write-behind buffers taken: from the shard's pool, or newly allocated \
                 because it had none.",
            ),
            self.shards.iter().flat_map(|s| {
                [
                    (
                        vec![
                            ("shard", s.shard.to_string()),
                            ("source", "pool".to_string()),
                        ],
                        s.write_buffers.1,
                    ),
                    (
                        vec![
                            ("shard", s.shard.to_string()),
                            ("source", "allocated".to_string()),
                        ],
                        s.write_buffers.2,
                    ),
                ]
            }),
        )?;
        counter(
            encoder,
            (
                "spate_log_fsynced_bytes",
                "Bytes written to segment files and then fdatasynced (whole pages).",
            ),
            [(none(), io.written_bytes)],
        )?;
        counter(
            encoder,
            (
                "spate_log_flushes",
                "Log flushes that wrote and synced data.",
            ),
            [(none(), io.syncs)],
        )?;
        histogram(
            encoder,
            (
                "spate_log_flush_duration_seconds",
                "Duration of a flush's fdatasync phase.",
            ),
            [(none(), io.sync_latency.clone())],
        )
    }

    fn encode_process(&self, encoder: &mut DescriptorEncoder<'_>) -> Result<(), Error> {
        let info = vec![
            ("version", self.version.to_string()),
            ("node", self.node.to_string()),
            ("shards", self.shards.len().to_string()),
        ];
        gauge(
            encoder,
            ("spate_build_info", "1, labelled with the broker's version."),
            [(info, 1_u64)],
        )?;
        gauge(
            encoder,
            (
                "spate_metrics_omitted",
                "Topics and groups beyond the label caps, left out of the per-topic and \
                 per-group series.",
            ),
            [
                (
                    vec![("kind", "topic".to_string())],
                    self.omitted_topics as u64,
                ),
                (
                    vec![("kind", "group".to_string())],
                    self.omitted_groups as u64,
                ),
            ],
        )?;
        gauge(
            encoder,
            ("process_resident_memory_bytes", "Resident memory size."),
            [(none(), self.process.resident_bytes)],
        )?;
        gauge(
            encoder,
            ("process_open_fds", "Open file descriptors."),
            [(none(), self.process.open_fds)],
        )?;
        counter(
            encoder,
            ("process_cpu_seconds", "User and system CPU time."),
            [(none(), self.process.cpu_seconds)],
        )
    }
}

impl Collector for Page {
    fn encode(&self, mut encoder: DescriptorEncoder<'_>) -> Result<(), Error> {
        self.encode_requests(&mut encoder)?;
        self.encode_partitions(&mut encoder)?;
        self.encode_groups(&mut encoder)?;
        self.encode_shards(&mut encoder)?;
        self.encode_process(&mut encoder)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::topics::Topic;
    use std::sync::Arc;

    fn line<'a>(page: &'a str, start: &str) -> Option<&'a str> {
        page.lines().find(|l| l.starts_with(start))
    }

    #[test]
    fn topics_and_groups_beyond_the_caps_are_counted_not_labelled() {
        let topics: TopicMap = (0..MAX_LABELLED_TOPICS + 2)
            .map(|i| {
                let topic = Topic {
                    id: Uuid::from_u128(i as u128 + 1),
                    owners: vec![0],
                    config: Default::default(),
                };
                (format!("t{i:05}"), Arc::new(topic))
            })
            .collect();
        let shard = ShardSnapshot {
            partitions: topics
                .values()
                .map(|t| PartitionState {
                    topic: t.id,
                    partition: 0,
                    log_start: 0,
                    log_end: 10,
                    high_watermark: 10,
                    last_stable: 10,
                    size_bytes: 100,
                    recycled_bytes: 0,
                })
                .collect(),
            groups: (0..MAX_LABELLED_GROUPS + 3)
                .map(|i| GroupState {
                    name: format!("g{i:05}"),
                    state: "Empty",
                    members: 0,
                    offsets: vec![("t00000".to_string(), 0, 4)],
                })
                .collect(),
            ..ShardSnapshot::default()
        };
        let page = encode(0, vec![shard], &topics, Process::default());
        assert!(page.ends_with("# EOF\n"));
        let first = "spate_partition_log_end_offset{topic=\"t00000\",partition=\"0\"} 10";
        assert!(page.contains(first), "{page}");
        let beyond = format!("topic=\"t{:05}\"", MAX_LABELLED_TOPICS);
        assert!(!page.contains(&beyond));
        assert_eq!(
            line(&page, "spate_metrics_omitted{kind=\"topic\"}"),
            Some("spate_metrics_omitted{kind=\"topic\"} 2")
        );
        assert_eq!(
            line(&page, "spate_metrics_omitted{kind=\"group\"}"),
            Some("spate_metrics_omitted{kind=\"group\"} 3")
        );
        let lag = "spate_consumer_group_lag{group=\"g00000\",topic=\"t00000\",partition=\"0\"} 6";
        assert!(page.contains(lag));
        assert!(!page.contains(&format!("group=\"g{:05}\"", MAX_LABELLED_GROUPS)));
    }
}
