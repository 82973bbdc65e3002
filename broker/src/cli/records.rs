//! `spate produce` (lines from stdin) and `spate consume` (records to stdout).

use super::client::{check, Client};
use super::offsets::{self, Partition, EARLIEST, LATEST};
use super::{print_json, CliError, Connect};
use bytes::Bytes;
use clap::Args;
use serde_json::json;
use spate_model::batch::BatchSplitter;
use spate_model::partitioner::partition_for;
use spate_model::{BatchBuilder, BuilderRecord, Compression, RecordBatch};
use spate_protocol::kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchRequest, FetchTopic,
};
use spate_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use spate_protocol::kafka_protocol::messages::{
    ApiKey, BrokerId, RequestKind, ResponseKind, TopicName,
};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::collections::{BTreeMap, HashSet};
use std::io::{BufRead, Write};

/// The longest line `spate produce` accepts as one record.
const MAX_LINE_BYTES: usize = 1024 * 1024;
/// Bytes of records sent in one Produce request at most.
const MAX_REQUEST_BYTES: usize = 4 * 1024 * 1024;
/// The most a compressed batch may decompress to when consumed.
const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;
/// Fetch sizes.
const FETCH_MAX_BYTES: i32 = 16 * 1024 * 1024;
const FETCH_PARTITION_MAX_BYTES: i32 = 1024 * 1024;
const FETCH_MAX_WAIT_MS: i32 = 500;

/// `spate produce` options.
#[derive(Debug, Clone, Args)]
pub(crate) struct ProduceOptions {
    /// The topic (it must exist).
    topic: String,
    /// Send every record to this partition [default: by key (Kafka's murmur2 partitioner),
    /// round-robin for records without a key].
    #[arg(short, long)]
    partition: Option<i32>,
    /// Split each line at the first occurrence of this separator into key and value
    /// [default: the whole line is the value, no key].
    #[arg(short = 'k', long)]
    key_separator: Option<String>,
    /// A header added to every record, key=value (repeatable).
    #[arg(short = 'H', long = "header", value_name = "KEY=VALUE")]
    headers: Vec<String>,
    /// Acknowledgements: all, 1 or 0.
    #[arg(long, default_value = "all")]
    acks: String,
    /// Codec: none, gzip, snappy, lz4 or zstd.
    #[arg(long, default_value = "none")]
    compression: String,
}

/// `spate consume` options.
#[derive(Debug, Clone, Args)]
pub(crate) struct ConsumeOptions {
    /// The topic.
    topic: String,
    /// Only this partition [default: all].
    #[arg(short, long)]
    partition: Option<i32>,
    /// Where to start: earliest, latest or an offset.
    #[arg(short, long, default_value = "earliest")]
    offset: String,
    /// Start at the first record at or after this time (ms since the epoch).
    #[arg(long, conflicts_with = "offset")]
    from_timestamp: Option<i64>,
    /// Start at this group's committed offsets (--offset where it has none) and commit
    /// what was printed. The group must have no active members; this does not join it.
    #[arg(short, long)]
    group: Option<String>,
    /// Stop after this many records.
    #[arg(short = 'n', long)]
    count: Option<u64>,
    /// Stop when every partition is read to its end (else wait for more).
    #[arg(short = 'e', long)]
    exit_at_end: bool,
    /// Only committed transactional records (isolation.level=read_committed).
    #[arg(long)]
    read_committed: bool,
    /// How each record is printed (see below; --json prints JSON lines instead)
    /// [default: "%v\n"].
    #[arg(short, long)]
    format: Option<String>,
}

fn compression(name: &str) -> Result<Compression, CliError> {
    Ok(match name {
        "none" => Compression::None,
        "gzip" => Compression::Gzip,
        "snappy" => Compression::Snappy,
        "lz4" => Compression::Lz4,
        "zstd" => Compression::Zstd,
        _ => {
            return Err(CliError::Usage(format!(
                "--compression {name:?}: one of none, gzip, snappy, lz4, zstd"
            )))
        }
    })
}

fn acks(value: &str) -> Result<i16, CliError> {
    match value {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        _ => Err(CliError::Usage(format!("--acks {value:?}: all, 1 or 0"))),
    }
}

/// One record read from stdin.
struct Line {
    key: Option<Vec<u8>>,
    value: Vec<u8>,
}

/// Records waiting to be sent, per partition.
struct Pending {
    lines: BTreeMap<i32, Vec<Line>>,
    bytes: usize,
}

pub(crate) fn produce(options: &ProduceOptions, connect: &Connect) -> Result<(), CliError> {
    let codec = compression(&options.compression)?;
    let acks = acks(&options.acks)?;
    let headers: Vec<(Vec<u8>, Vec<u8>)> = options
        .headers
        .iter()
        .map(|pair| {
            pair.split_once('=')
                .map(|(k, v)| (k.as_bytes().to_vec(), v.as_bytes().to_vec()))
                .ok_or_else(|| CliError::Usage(format!("--header {pair:?} is not KEY=VALUE")))
        })
        .collect::<Result<_, _>>()?;
    if options.key_separator.as_deref() == Some("") {
        return Err(CliError::Usage(
            "--key-separator may not be empty".to_string(),
        ));
    }
    let mut client = connect.client()?;
    let partitions = offsets::partitions(&mut client, &options.topic)?;
    let count = i32::try_from(partitions.len()).unwrap_or(i32::MAX);
    if let Some(p) = options.partition {
        if !(0..count).contains(&p) {
            return Err(CliError::Usage(format!(
                "--partition {p}: topic {} has partitions 0 to {}",
                options.topic,
                count - 1
            )));
        }
    }
    let mut sender = Sender {
        client: &mut client,
        topic: &options.topic,
        partitions: &partitions,
        codec,
        acks,
        headers: &headers,
        produced: BTreeMap::new(),
    };
    let mut pending = Pending {
        lines: BTreeMap::new(),
        bytes: 0,
    };
    let mut next = 0_i32;
    let stdin = std::io::stdin();
    let mut input = stdin.lock();
    let mut buffer = Vec::new();
    loop {
        buffer.clear();
        let read = std::io::Read::take(&mut input, MAX_LINE_BYTES as u64 + 2)
            .read_until(b'\n', &mut buffer)
            .map_err(|e| CliError::Usage(format!("reading stdin: {e}")))?;
        if read == 0 {
            break;
        }
        if buffer.last() == Some(&b'\n') {
            buffer.pop();
            if buffer.last() == Some(&b'\r') {
                buffer.pop();
            }
        } else if buffer.len() > MAX_LINE_BYTES {
            return Err(CliError::Usage(format!(
                "a line is longer than {MAX_LINE_BYTES} bytes"
            )));
        }
        let line = split(&buffer, options.key_separator.as_deref());
        let partition = match (options.partition, &line.key) {
            (Some(p), _) => p,
            (None, Some(key)) => partition_for(key, count),
            (None, None) => {
                next = (next + 1) % count.max(1);
                next
            }
        };
        pending.bytes += line.value.len() + line.key.as_ref().map_or(0, Vec::len);
        pending.lines.entry(partition).or_default().push(line);
        if pending.bytes >= MAX_REQUEST_BYTES {
            sender.send(std::mem::take(&mut pending.lines))?;
            pending.bytes = 0;
        }
    }
    sender.send(pending.lines)?;
    let total: u64 = sender.produced.values().map(|(n, _)| n).sum();
    if connect.json {
        let per: serde_json::Map<String, serde_json::Value> = sender
            .produced
            .iter()
            .map(|(p, (n, base))| (p.to_string(), json!({"records": n, "first_offset": base})))
            .collect();
        print_json(&json!({"topic": options.topic, "records": total, "partitions": per}));
    } else {
        let plural = if total == 1 { "" } else { "s" };
        eprintln!("produced {total} record{plural} to {}", options.topic);
    }
    Ok(())
}

fn split(line: &[u8], separator: Option<&str>) -> Line {
    let Some(separator) = separator.map(str::as_bytes) else {
        return Line {
            key: None,
            value: line.to_vec(),
        };
    };
    match line.windows(separator.len()).position(|w| w == separator) {
        Some(at) => Line {
            key: Some(line[..at].to_vec()),
            value: line[at + separator.len()..].to_vec(),
        },
        None => Line {
            key: None,
            value: line.to_vec(),
        },
    }
}

struct Sender<'a> {
    client: &'a mut Client,
    topic: &'a str,
    partitions: &'a [Partition],
    codec: Compression,
    acks: i16,
    headers: &'a [(Vec<u8>, Vec<u8>)],
    /// Partition → (records, first offset).
    produced: BTreeMap<i32, (u64, Option<i64>)>,
}

impl Sender<'_> {
    /// Sends the records, one batch per partition, one request per leader.
    fn send(&mut self, lines: BTreeMap<i32, Vec<Line>>) -> Result<(), CliError> {
        let headers: Vec<(&[u8], Option<&[u8]>)> = self
            .headers
            .iter()
            .map(|(k, v)| (k.as_slice(), Some(v.as_slice())))
            .collect();
        let now = crate::now_ms();
        let mut by_leader: BTreeMap<i32, Vec<PartitionProduceData>> = BTreeMap::new();
        let mut counts = BTreeMap::new();
        for (partition, lines) in lines {
            let mut builder = BatchBuilder::new(self.codec);
            for line in &lines {
                builder
                    .push(&BuilderRecord {
                        timestamp_ms: now,
                        key: line.key.as_deref(),
                        value: Some(&line.value),
                        headers: &headers,
                    })
                    .map_err(|e| CliError::Usage(format!("cannot build a batch: {e}")))?;
            }
            let batch = builder
                .build()
                .map_err(|e| CliError::Usage(format!("cannot build a batch: {e}")))?;
            let leader = self
                .partitions
                .iter()
                .find(|p| p.index == partition)
                .map_or(-1, |p| p.leader);
            counts.insert(partition, lines.len() as u64);
            by_leader.entry(leader).or_default().push(
                PartitionProduceData::default()
                    .with_index(partition)
                    .with_records(Some(Bytes::from(batch))),
            );
        }
        for (leader, data) in by_leader {
            if leader < 0 {
                return Err(CliError::Kafka(format!(
                    "topic {}: a partition has no leader",
                    self.topic
                )));
            }
            let request = ProduceRequest::default()
                .with_acks(self.acks)
                .with_timeout_ms(30_000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_string(self.topic.to_string())))
                    .with_partition_data(data.clone())]);
            let connection = self.client.node(leader)?;
            if self.acks == 0 {
                let version = connection.version(ApiKey::Produce, 3, 9)?;
                connection.send_only(ApiKey::Produce, version, RequestKind::Produce(request))?;
                for d in &data {
                    let entry = self.produced.entry(d.index).or_default();
                    entry.0 += counts[&d.index];
                }
                continue;
            }
            let (_, response) =
                connection.call(ApiKey::Produce, (3, 9), RequestKind::Produce(request))?;
            let ResponseKind::Produce(produced) = response else {
                return Err(CliError::Kafka("unexpected Produce response".to_string()));
            };
            for answer in produced
                .responses
                .iter()
                .flat_map(|t| &t.partition_responses)
            {
                check(
                    answer.error_code,
                    &format!("producing to {}-{}", self.topic, answer.index),
                    answer.error_message.as_ref(),
                )?;
                let entry = self.produced.entry(answer.index).or_default();
                entry.0 += counts.get(&answer.index).copied().unwrap_or(0);
                entry.1.get_or_insert(answer.base_offset);
            }
        }
        Ok(())
    }
}

/// Where each partition is, and how far it goes.
struct Position {
    next: i64,
    /// The end last reported by a fetch (high watermark, or last stable offset).
    end: Option<i64>,
    leader: i32,
    /// Producers with an aborted transaction in progress at `next` (read_committed).
    aborted: HashSet<i64>,
}

pub(crate) fn consume(options: &ConsumeOptions, connect: &Connect) -> Result<(), CliError> {
    let format = options
        .format
        .clone()
        .unwrap_or_else(|| "%v\\n".to_string());
    let template = parse_template(&format)?;
    let start = match (options.from_timestamp, options.offset.as_str()) {
        (Some(ms), _) => ms,
        (None, "earliest") => EARLIEST,
        (None, "latest") => LATEST,
        (None, other) => match other.parse::<i64>() {
            Ok(offset) if offset >= 0 => offset,
            _ => {
                return Err(CliError::Usage(format!(
                    "--offset {other:?}: earliest, latest or a non-negative offset"
                )))
            }
        },
    };
    let explicit = options.from_timestamp.is_none() && start >= 0;
    let mut client = connect.client()?;
    let mut partitions = offsets::partitions(&mut client, &options.topic)?;
    if let Some(p) = options.partition {
        partitions.retain(|q| q.index == p);
        if partitions.is_empty() {
            return Err(CliError::Kafka(format!(
                "topic {} has no partition {p}",
                options.topic
            )));
        }
    }
    let committed = match &options.group {
        Some(group) => {
            let indexes: Vec<i32> = partitions.iter().map(|p| p.index).collect();
            offsets::committed(&mut client, group, Some((&options.topic, &indexes)))?
                .remove(&options.topic)
                .unwrap_or_default()
        }
        None => BTreeMap::new(),
    };
    let looked_up = if explicit {
        BTreeMap::new()
    } else {
        offsets::list_offsets(&mut client, &options.topic, &partitions, start)?
    };
    let latest = if options.from_timestamp.is_some() {
        offsets::list_offsets(&mut client, &options.topic, &partitions, LATEST)?
    } else {
        BTreeMap::new()
    };
    let mut positions: BTreeMap<i32, Position> = partitions
        .iter()
        .map(|p| {
            let next = committed
                .get(&p.index)
                .copied()
                .or_else(|| explicit.then_some(start))
                .or_else(|| looked_up.get(&p.index).copied().filter(|o| *o >= 0))
                .or_else(|| latest.get(&p.index).copied())
                .unwrap_or(0);
            let position = Position {
                next,
                end: None,
                leader: p.leader,
                aborted: HashSet::new(),
            };
            (p.index, position)
        })
        .collect();
    let mut printed = 0_u64;
    let stdout = std::io::stdout();
    let mut out = stdout.lock();
    let write_failed = |e: std::io::Error| CliError::Usage(format!("writing stdout: {e}"));
    loop {
        let mut progressed = false;
        let leaders: BTreeMap<i32, Vec<i32>> =
            positions.iter().fold(BTreeMap::new(), |mut acc, (p, pos)| {
                acc.entry(pos.leader).or_insert_with(Vec::new).push(*p);
                acc
            });
        for (leader, indexes) in leaders {
            let request =
                fetch_request(&options.topic, &indexes, &positions, options.read_committed);
            let (_, response) =
                client
                    .node(leader)?
                    .call(ApiKey::Fetch, (4, 12), RequestKind::Fetch(request))?;
            let ResponseKind::Fetch(fetched) = response else {
                return Err(CliError::Kafka("unexpected Fetch response".to_string()));
            };
            check(fetched.error_code, "fetch", None)?;
            for data in fetched.responses.iter().flat_map(|t| &t.partitions) {
                let what = format!("reading {}-{}", options.topic, data.partition_index);
                check(data.error_code, &what, None)?;
                let Some(position) = positions.get_mut(&data.partition_index) else {
                    continue;
                };
                position.end = Some(if options.read_committed {
                    data.last_stable_offset
                } else {
                    data.high_watermark
                });
                let mut aborted: Vec<(i64, i64)> = data
                    .aborted_transactions
                    .iter()
                    .flatten()
                    .map(|a| (a.first_offset, a.producer_id.0))
                    .collect();
                aborted.sort_unstable();
                let records = data.records.as_deref().unwrap_or_default();
                let ctx = Printing {
                    topic: &options.topic,
                    partition: data.partition_index,
                    template: &template,
                    json: connect.json,
                    limit: options.count,
                    read_committed: options.read_committed,
                };
                let before = position.next;
                walk(records, &ctx, position, &aborted, &mut printed, &mut out).map_err(
                    |e| match e {
                        Walk::Write(e) => write_failed(e),
                        Walk::Corrupt(m) => CliError::Kafka(format!("{what}: {m}")),
                    },
                )?;
                progressed |= position.next > before;
                if options.count.is_some_and(|limit| printed >= limit) {
                    out.flush().map_err(write_failed)?;
                    return finish(&mut client, options, &positions);
                }
            }
        }
        out.flush().map_err(write_failed)?;
        if progressed && options.group.is_some() && !options.exit_at_end {
            finish(&mut client, options, &positions)?;
        }
        let at_end = positions
            .values()
            .all(|p| p.end.is_some_and(|end| p.next >= end));
        if options.exit_at_end && at_end {
            return finish(&mut client, options, &positions);
        }
    }
}

fn fetch_request(
    topic: &str,
    indexes: &[i32],
    positions: &BTreeMap<i32, Position>,
    read_committed: bool,
) -> FetchRequest {
    FetchRequest::default()
        .with_replica_id(BrokerId(-1))
        .with_max_wait_ms(FETCH_MAX_WAIT_MS)
        .with_min_bytes(1)
        .with_max_bytes(FETCH_MAX_BYTES)
        .with_isolation_level(i8::from(read_committed))
        .with_session_epoch(-1)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partitions(
                indexes
                    .iter()
                    .map(|p| {
                        FetchPartition::default()
                            .with_partition(*p)
                            .with_current_leader_epoch(-1)
                            .with_last_fetched_epoch(-1)
                            .with_log_start_offset(-1)
                            .with_fetch_offset(positions.get(p).map_or(0, |pos| pos.next))
                            .with_partition_max_bytes(FETCH_PARTITION_MAX_BYTES)
                    })
                    .collect(),
            )])
}

/// Commits the positions for `--group` (nothing without it).
fn finish(
    client: &mut Client,
    options: &ConsumeOptions,
    positions: &BTreeMap<i32, Position>,
) -> Result<(), CliError> {
    let Some(group) = &options.group else {
        return Ok(());
    };
    let commits: Vec<(i32, i64)> = positions.iter().map(|(p, pos)| (*p, pos.next)).collect();
    offsets::commit(client, group, &options.topic, &commits)
}

/// What printing a partition's records needs.
struct Printing<'a> {
    topic: &'a str,
    partition: i32,
    template: &'a [Piece],
    json: bool,
    limit: Option<u64>,
    read_committed: bool,
}

enum Walk {
    Write(std::io::Error),
    Corrupt(String),
}

/// Prints the records of `records` at or after the partition's position, skipping control
/// batches and (read_committed) aborted transactions; moves the position past each batch.
fn walk(
    records: &[u8],
    ctx: &Printing<'_>,
    position: &mut Position,
    aborted: &[(i64, i64)],
    printed: &mut u64,
    out: &mut impl Write,
) -> Result<(), Walk> {
    let mut aborted = aborted.iter().peekable();
    let mut decompressed = Vec::new();
    for bytes in BatchSplitter::new(records) {
        // A partial batch at the end of a fetch is normal: the next fetch reads it whole.
        let Ok(bytes) = bytes else { break };
        let batch = RecordBatch::validate(bytes).map_err(|e| Walk::Corrupt(e.to_string()))?;
        let header = batch.header();
        let last = header.last_offset().get();
        if last < position.next {
            continue;
        }
        let producer = header.producer_id().get();
        while let Some((first, id)) = aborted.peek() {
            if *first > last {
                break;
            }
            position.aborted.insert(*id);
            aborted.next();
        }
        if header.is_control() {
            if ctx.read_committed {
                position.aborted.remove(&producer);
            }
            position.next = last + 1;
            continue;
        }
        if ctx.read_committed && header.is_transactional() && position.aborted.contains(&producer) {
            position.next = last + 1;
            continue;
        }
        let records = if batch.compression() == Compression::None {
            batch.records()
        } else {
            batch
                .decompress_into(MAX_DECOMPRESSED_BYTES, &mut decompressed)
                .map_err(|e| Walk::Corrupt(e.to_string()))?;
            Ok(batch.records_in(&decompressed))
        }
        .map_err(|e| Walk::Corrupt(e.to_string()))?;
        for record in records {
            let record = record.map_err(|e| Walk::Corrupt(e.to_string()))?;
            let offset = header.base_offset().get() + i64::from(record.offset_delta);
            if offset < position.next {
                continue;
            }
            let shown = Shown {
                topic: ctx.topic,
                partition: ctx.partition,
                offset,
                timestamp: record.timestamp(header),
                key: record.key,
                value: record.value,
                headers: record.headers().map(|h| (h.key, h.value)).collect(),
            };
            if ctx.json {
                let line = shown.json();
                writeln!(out, "{line}").map_err(Walk::Write)?;
            } else {
                out.write_all(&render(ctx.template, &shown))
                    .map_err(Walk::Write)?;
            }
            *printed += 1;
            position.next = offset + 1;
            if ctx.limit.is_some_and(|limit| *printed >= limit) {
                return Ok(());
            }
        }
        position.next = position.next.max(last + 1);
    }
    Ok(())
}

/// One record as printed.
struct Shown<'a> {
    topic: &'a str,
    partition: i32,
    offset: i64,
    timestamp: i64,
    key: Option<&'a [u8]>,
    value: Option<&'a [u8]>,
    headers: Vec<(&'a [u8], Option<&'a [u8]>)>,
}

impl Shown<'_> {
    fn json(&self) -> serde_json::Value {
        let text = |b: Option<&[u8]>| b.map(|b| String::from_utf8_lossy(b).into_owned());
        let headers: serde_json::Map<String, serde_json::Value> = self
            .headers
            .iter()
            .map(|(k, v)| (String::from_utf8_lossy(k).into_owned(), json!(text(*v))))
            .collect();
        json!({"topic": self.topic, "partition": self.partition, "offset": self.offset,
               "timestamp": self.timestamp, "key": text(self.key), "value": text(self.value),
               "headers": headers})
    }
}

/// A piece of a `--format` template.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Piece {
    Text(Vec<u8>),
    Topic,
    Partition,
    Offset,
    Key,
    Value,
    Timestamp,
    Headers,
}

fn parse_template(format: &str) -> Result<Vec<Piece>, CliError> {
    let mut pieces = Vec::new();
    let mut text = Vec::new();
    let mut chars = format.chars();
    while let Some(c) = chars.next() {
        let piece = match c {
            '%' => match chars.next() {
                Some('t') => Piece::Topic,
                Some('p') => Piece::Partition,
                Some('o') => Piece::Offset,
                Some('k') => Piece::Key,
                Some('v') => Piece::Value,
                Some('T') => Piece::Timestamp,
                Some('h') => Piece::Headers,
                Some('%') => {
                    text.push(b'%');
                    continue;
                }
                other => {
                    return Err(CliError::Usage(format!(
                        "--format: unknown directive %{}",
                        other.map(String::from).unwrap_or_default()
                    )))
                }
            },
            '\\' => {
                match chars.next() {
                    Some('n') => text.push(b'\n'),
                    Some('t') => text.push(b'\t'),
                    Some('\\') => text.push(b'\\'),
                    Some(other) => {
                        text.push(b'\\');
                        text.extend_from_slice(other.to_string().as_bytes());
                    }
                    None => text.push(b'\\'),
                }
                continue;
            }
            c => {
                text.extend_from_slice(c.to_string().as_bytes());
                continue;
            }
        };
        if !text.is_empty() {
            pieces.push(Piece::Text(std::mem::take(&mut text)));
        }
        pieces.push(piece);
    }
    if !text.is_empty() {
        pieces.push(Piece::Text(text));
    }
    Ok(pieces)
}

fn render(template: &[Piece], record: &Shown<'_>) -> Vec<u8> {
    let mut out = Vec::new();
    for piece in template {
        match piece {
            Piece::Text(text) => out.extend_from_slice(text),
            Piece::Topic => out.extend_from_slice(record.topic.as_bytes()),
            Piece::Partition => out.extend_from_slice(record.partition.to_string().as_bytes()),
            Piece::Offset => out.extend_from_slice(record.offset.to_string().as_bytes()),
            Piece::Timestamp => out.extend_from_slice(record.timestamp.to_string().as_bytes()),
            Piece::Key => out.extend_from_slice(record.key.unwrap_or_default()),
            Piece::Value => out.extend_from_slice(record.value.unwrap_or_default()),
            Piece::Headers => {
                for (i, (k, v)) in record.headers.iter().enumerate() {
                    if i > 0 {
                        out.push(b',');
                    }
                    out.extend_from_slice(k);
                    out.push(b'=');
                    out.extend_from_slice(v.unwrap_or_default());
                }
            }
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_render_every_directive_and_refuse_unknown_ones() {
        let template = parse_template("%t/%p@%o %T [%k=%v] {%h} 100%%\\n").expect("parse");
        let record = Shown {
            topic: "orders",
            partition: 3,
            offset: 42,
            timestamp: 1_700_000_000_000,
            key: Some(b"k1"),
            value: None,
            headers: vec![(b"a", Some(b"1")), (b"b", None)],
        };
        assert_eq!(
            String::from_utf8(render(&template, &record)).expect("utf-8"),
            "orders/3@42 1700000000000 [k1=] {a=1,b=} 100%\n"
        );
        assert!(matches!(parse_template("%x"), Err(CliError::Usage(_))));
        assert!(matches!(parse_template("50%"), Err(CliError::Usage(_))));
    }

    #[test]
    fn lines_split_at_the_first_separator() {
        let line = split(b"user-1:a:b", Some(":"));
        assert_eq!(line.key.as_deref(), Some(&b"user-1"[..]));
        assert_eq!(line.value, b"a:b");
        let line = split(b"no separator", Some("::"));
        assert_eq!(line.key, None);
        assert_eq!(line.value, b"no separator");
        assert_eq!(split(b"x", None).value, b"x");
    }

    #[test]
    fn bad_options_are_usage_errors() {
        assert!(matches!(acks("2"), Err(CliError::Usage(_))));
        assert_eq!(acks("all"), Ok(-1));
        assert!(matches!(compression("brotli"), Err(CliError::Usage(_))));
        assert_eq!(compression("zstd"), Ok(Compression::Zstd));
    }
}
