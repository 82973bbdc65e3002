//! The open-loop producer run.
//!
//! Message `i` is *intended* to be sent at `start + i / rate`, whatever happened to earlier
//! ones. Every message due is sent in the next request (so a slow broker makes batches grow,
//! not the schedule slip), and its publish latency is measured from its intended time to its
//! acknowledgement: a stalled broker shows up as the stall it is, not as one slow sample
//! (no coordinated omission). The service time — from the moment the request actually went
//! out — is recorded beside it, and is what a closed-loop tool would report.

use crate::client::{ClientError, Connection};
use crate::consume::{consume, end_offsets, now_us, Progress, INTENDED_HEADER};
use bytes::Bytes;
use hdrhistogram::Histogram;
use spate_model::{BatchBuilder, BuilderRecord, Compression};
use spate_protocol::kafka_protocol::messages::metadata_request::{
    MetadataRequest, MetadataRequestTopic,
};
use spate_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use spate_protocol::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind, TopicName};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::collections::BTreeMap;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// The most messages one produce request carries; more that are due go in the next one.
pub const MAX_BATCH_MESSAGES: u64 = 10_000;
/// The largest latency a histogram records (1 hour, in microseconds).
const MAX_LATENCY_US: u64 = 3_600_000_000;

/// What to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// A broker to bootstrap from (host:port).
    pub bootstrap: String,
    /// The topic to produce to (auto-created by brokers that do).
    pub topic: String,
    /// Target messages per second.
    pub rate: f64,
    /// Bytes per message value.
    pub message_bytes: usize,
    /// How long to produce, warm-up included.
    pub duration: Duration,
    /// The first part of the run, excluded from the histograms.
    pub warmup: Duration,
    /// `acks`: -1 (all), 0 or 1.
    pub acks: i16,
    /// Consumers reading the run back (0 or 1 so far).
    pub consumers: u32,
    /// Create the topic with this many partitions (an existing topic must have as many);
    /// `None` takes the topic as the broker has (or auto-creates) it.
    pub partitions: Option<i32>,
    /// The codec of the produced batches.
    pub compression: Compression,
}

/// What a run measured.
#[derive(Debug)]
pub struct RunResult {
    /// Messages acknowledged without error.
    pub produced: u64,
    /// Messages that failed, by Kafka error code.
    pub errors: BTreeMap<i16, u64>,
    /// Intended send time to acknowledgement (µs), after the warm-up.
    pub publish_latency: Histogram<u64>,
    /// Actual send time to acknowledgement (µs), after the warm-up.
    pub service_time: Histogram<u64>,
    /// Wall time of the whole run.
    pub elapsed: Duration,
    /// Bytes per message value.
    pub message_bytes: usize,
    /// Records the consumer read.
    pub consumed: u64,
    /// Intended send time to consumption (µs), after the warm-up; `None` without consumers.
    pub e2e_latency: Option<Histogram<u64>>,
}

/// Why a run stopped early.
#[derive(Debug, thiserror::Error)]
pub enum RunError {
    /// The broker could not be reached or misbehaved.
    #[error(transparent)]
    Client(#[from] ClientError),
    /// The topic's metadata never became usable.
    #[error("topic {topic}: {reason}")]
    Topic {
        /// The topic.
        topic: String,
        /// What is wrong.
        reason: String,
    },
}

fn histogram() -> Histogram<u64> {
    Histogram::new_with_bounds(1, MAX_LATENCY_US, 3).expect("constant bounds are valid")
}

/// Runs the open-loop producer; see the module documentation.
pub async fn run(config: &RunConfig) -> Result<RunResult, RunError> {
    assert!(config.rate > 0.0 && config.duration > Duration::ZERO);
    let mut connection = Connection::connect(&config.bootstrap).await?;
    if let Some(wanted) = config.partitions {
        create_topic(&mut connection, &config.topic, wanted).await?;
    }
    let partitions = partition_count(&mut connection, &config.topic).await?;
    if let Some(wanted) = config.partitions.filter(|w| *w != partitions) {
        return Err(RunError::Topic {
            topic: config.topic.clone(),
            reason: format!("it exists with {partitions} partitions, not the {wanted} asked for"),
        });
    }
    let produce_version = connection.version(ApiKey::Produce, (3, 9))?;
    let progress = Rc::new(Progress::default());
    let wall_start_us = now_us();
    let warmup_until_us =
        wall_start_us + i64::try_from(config.warmup.as_micros()).unwrap_or(i64::MAX);
    let consumer = if config.consumers > 0 {
        let offsets = end_offsets(&mut connection, &config.topic, partitions).await?;
        let (bootstrap, topic, progress) = (
            config.bootstrap.clone(),
            config.topic.clone(),
            progress.clone(),
        );
        Some(glommio::spawn_local(async move {
            consume(&bootstrap, &topic, offsets, warmup_until_us, progress).await
        }))
    } else {
        None
    };
    let payload = vec![0x5a_u8; config.message_bytes];
    let interval_s = 1.0 / config.rate;
    let total = (config.rate * config.duration.as_secs_f64()).ceil() as u64;
    let warmup_messages = (config.rate * config.warmup.as_secs_f64()).floor() as u64;
    let mut result = RunResult {
        produced: 0,
        errors: BTreeMap::new(),
        publish_latency: histogram(),
        service_time: histogram(),
        elapsed: Duration::ZERO,
        message_bytes: config.message_bytes,
        consumed: 0,
        e2e_latency: None,
    };
    let start = Instant::now();
    let intended = |i: u64| start + Duration::from_secs_f64(i as f64 * interval_s);
    let mut next = 0_u64;
    while next < total {
        let now = Instant::now();
        let due = (((now - start).as_secs_f64() / interval_s).floor() as u64 + 1).min(total);
        if due <= next {
            glommio::timer::sleep(intended(next).saturating_duration_since(now)).await;
            continue;
        }
        let end = due.min(next + MAX_BATCH_MESSAGES);
        let intended_us = |i: u64| wall_start_us + (i as f64 * interval_s * 1e6) as i64;
        let request = produce_request(config, partitions, next, end, &payload, intended_us)?;
        let sent = Instant::now();
        let outcome = if config.acks == 0 {
            // No response comes: "acknowledged" when written.
            connection
                .send_only(
                    ApiKey::Produce,
                    produce_version,
                    RequestKind::Produce(request),
                )
                .await
                .map(|()| ResponseKind::Produce(Default::default()))
        } else {
            connection
                .call(
                    ApiKey::Produce,
                    produce_version,
                    RequestKind::Produce(request),
                )
                .await
        };
        let acked = Instant::now();
        let codes = match outcome {
            Ok(ResponseKind::Produce(response)) => response
                .responses
                .iter()
                .flat_map(|topic| {
                    topic
                        .partition_responses
                        .iter()
                        .map(|p| (p.index, p.error_code))
                })
                .collect::<BTreeMap<_, _>>(),
            Ok(_) => {
                return Err(
                    ClientError::Protocol("Produce answered with another API".into()).into(),
                )
            }
            Err(e) => return Err(e.into()),
        };
        for i in next..end {
            let partition = (i % partitions.max(1) as u64) as i32;
            match codes
                .get(&partition)
                .copied()
                .unwrap_or(if config.acks == 0 { 0 } else { -1 })
            {
                0 => {
                    result.produced += 1;
                    progress.produced.set(result.produced);
                }
                code => *result.errors.entry(code).or_default() += 1,
            }
            if i >= warmup_messages {
                let publish = acked
                    .saturating_duration_since(intended(i))
                    .as_micros()
                    .max(1) as u64;
                let service = acked.saturating_duration_since(sent).as_micros().max(1) as u64;
                result.publish_latency.saturating_record(publish);
                result.service_time.saturating_record(service);
            }
        }
        next = end;
    }
    result.elapsed = start.elapsed();
    progress.done.set(true);
    if let Some(consumer) = consumer {
        let consumed = consumer.await?;
        result.consumed = consumed.records;
        result.e2e_latency = Some(consumed.e2e_latency);
    }
    Ok(result)
}

/// Creates the topic with `partitions` partitions (replication factor 1); one that exists
/// already is fine (its partition count is checked by the caller).
async fn create_topic(
    connection: &mut Connection,
    topic: &str,
    partitions: i32,
) -> Result<(), RunError> {
    use spate_protocol::kafka_protocol::messages::create_topics_request::{
        CreatableTopic, CreateTopicsRequest,
    };
    const TOPIC_ALREADY_EXISTS: i16 = 36;
    let version = connection.version(ApiKey::CreateTopics, (2, 7))?;
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(30_000)
        .with_topics(vec![CreatableTopic::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_num_partitions(partitions)
            .with_replication_factor(1)]);
    let failed = |reason: String| RunError::Topic {
        topic: topic.to_string(),
        reason,
    };
    let ResponseKind::CreateTopics(response) = connection
        .call(
            ApiKey::CreateTopics,
            version,
            RequestKind::CreateTopics(request),
        )
        .await?
    else {
        return Err(failed("CreateTopics answered with another API".into()));
    };
    match response.topics.first().map(|t| t.error_code) {
        Some(0 | TOPIC_ALREADY_EXISTS) => Ok(()),
        Some(code) => Err(failed(format!("CreateTopics error code {code}"))),
        None => Err(failed("not in the CreateTopics answer".into())),
    }
}

/// Asks for the topic (creating it where the broker auto-creates) until it has leaders.
async fn partition_count(connection: &mut Connection, topic: &str) -> Result<i32, RunError> {
    let version = connection.version(ApiKey::Metadata, (4, 12))?;
    let failed = |reason: String| RunError::Topic {
        topic: topic.to_string(),
        reason,
    };
    for _ in 0..50 {
        let request = MetadataRequest::default()
            .with_topics(Some(vec![MetadataRequestTopic::default().with_name(Some(
                TopicName(StrBytes::from_string(topic.to_string())),
            ))]))
            .with_allow_auto_topic_creation(true);
        let ResponseKind::Metadata(response) = connection
            .call(ApiKey::Metadata, version, RequestKind::Metadata(request))
            .await?
        else {
            return Err(failed("Metadata answered with another API".into()));
        };
        let described = response
            .topics
            .first()
            .ok_or_else(|| failed("not in the Metadata answer".into()))?;
        match described.error_code {
            0 if !described.partitions.is_empty() => {
                return i32::try_from(described.partitions.len()).map_err(|e| failed(e.to_string()))
            }
            // LEADER_NOT_AVAILABLE while a new topic settles: ask again.
            0 | 5 => glommio::timer::sleep(Duration::from_millis(100)).await,
            code => return Err(failed(format!("Metadata error code {code}"))),
        }
    }
    Err(failed("no leaders after 5 s".into()))
}

/// One request carrying messages `first..end`, spread round-robin over the partitions.
fn produce_request(
    config: &RunConfig,
    partitions: i32,
    first: u64,
    end: u64,
    payload: &[u8],
    intended_us: impl Fn(u64) -> i64,
) -> Result<ProduceRequest, RunError> {
    let mut builders: BTreeMap<i32, BatchBuilder> = BTreeMap::new();
    for i in first..end {
        let partition = (i % partitions.max(1) as u64) as i32;
        builders
            .entry(partition)
            .or_insert_with(|| BatchBuilder::new(config.compression))
            .push(&BuilderRecord {
                timestamp_ms: now_ms(),
                key: None,
                value: Some(payload),
                headers: &[(INTENDED_HEADER, Some(&intended_us(i).to_be_bytes()))],
            })
            .map_err(|e| RunError::Topic {
                topic: config.topic.clone(),
                reason: e.to_string(),
            })?;
    }
    let mut partition_data = Vec::with_capacity(builders.len());
    for (partition, builder) in builders {
        let batch = builder.build().map_err(|e| RunError::Topic {
            topic: config.topic.clone(),
            reason: e.to_string(),
        })?;
        partition_data.push(
            PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(Bytes::from(batch))),
        );
    }
    let topic = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(config.topic.clone())))
        .with_partition_data(partition_data);
    Ok(ProduceRequest::default()
        .with_acks(config.acks)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![topic]))
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
