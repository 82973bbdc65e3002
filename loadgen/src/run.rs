//! The open-loop producer run.
//!
//! Message `g` of the run is *intended* to be sent at `start + g / rate`, whatever happened
//! to earlier ones; with several producers, producer `k` of `n` sends the messages with
//! `g mod n = k`, each on its own connection. Every message due is sent in the next request
//! (so a slow broker makes batches grow, not the schedule slip), and its publish latency is
//! measured from its intended time to its acknowledgement: a stalled broker shows up as the
//! stall it is, not as one slow sample (no coordinated omission). The service time — from
//! the moment the request actually went out — is recorded beside it, and is what a
//! closed-loop tool would report.
//!
//! Every second a progress line goes to stderr and into the result's per-second series.
//! The run has a hard deadline (its duration plus [`DEADLINE_GRACE`]): a broker that stops
//! answering, or disappears, ends it with the reason and the results so far.

use crate::client::{ClientError, Connection};
use crate::consume::{
    consume, end_offsets, latency_histogram, list_offsets, now_us, Progress, DRAIN_TIMEOUT,
    EARLIEST, INTENDED_HEADER,
};
use crate::keys::{key_bytes, partition_for, KeyChooser, Keys};
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
use std::sync::atomic::Ordering;
use std::sync::Arc;
use std::time::{Duration, Instant};

/// The most messages one produce request carries; more that are due go in the next one.
pub const MAX_BATCH_MESSAGES: u64 = 10_000;
/// A leader that cannot be reached this many requests running ends the producer.
const MAX_UNREACHABLE_IN_A_ROW: u32 = 3;
/// UNKNOWN_TOPIC_OR_PARTITION.
const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
/// LEADER_NOT_AVAILABLE.
const LEADER_NOT_AVAILABLE: i16 = 5;
/// NOT_LEADER_OR_FOLLOWER.
const NOT_LEADER_OR_FOLLOWER: i16 = 6;
/// The most producers (connections) one run may use.
pub const MAX_PRODUCERS: u32 = 1000;
/// How long past its duration a run may take before it is ended (the consumer's drain
/// included).
pub const DEADLINE_GRACE: Duration = Duration::from_secs(60);

/// What to run.
#[derive(Debug, Clone)]
pub struct RunConfig {
    /// A broker to bootstrap from (host:port).
    pub bootstrap: String,
    /// The topic to produce to (auto-created by brokers that do); with several topics, the
    /// prefix of their names (`<topic>-0`, `<topic>-1`, …).
    pub topic: String,
    /// Topics, each with `partitions` partitions, `producers` producers and `consumers`
    /// consumers.
    pub topics: u32,
    /// Target messages per second, over all producers; 0 for as fast as possible (then
    /// publish latency is the service time: there is no intended schedule).
    pub rate: f64,
    /// How long a due message may wait for more to join its request (a producer's
    /// `linger.ms`); 0 sends whatever is due at once.
    pub linger: Duration,
    /// Bytes per message value (the smallest, when sizes vary).
    pub message_bytes: usize,
    /// The largest message value: sizes are drawn uniformly from `message_bytes..=` this
    /// (equal to `message_bytes` for a fixed size).
    pub message_bytes_max: usize,
    /// Message values are slices of this file's bytes; `None`: random bytes (from `seed`).
    pub payload_file: Option<std::path::PathBuf>,
    /// Idempotent producers (InitProducerId, sequence numbers).
    pub idempotent: bool,
    /// How long to produce, warm-up included.
    pub duration: Duration,
    /// The first part of the run, excluded from the histograms.
    pub warmup: Duration,
    /// `acks`: -1 (all), 0 or 1.
    pub acks: i16,
    /// Producers per topic, each with its own connections and an equal share of the rate.
    pub producers: u32,
    /// Consumers per topic reading the run back, each with its own connections and a share
    /// of the topic's partitions (at most one per partition).
    pub consumers: u32,
    /// Create the topic with this many partitions (an existing topic must have as many);
    /// `None` takes the topic as the broker has (or auto-creates) it.
    pub partitions: Option<i32>,
    /// The codec of the produced batches.
    pub compression: Compression,
    /// Record bytes per batch at most (a producer's `batch.size`); a request carries as many
    /// batches per partition as the messages due need.
    pub batch_bytes: usize,
    /// How records are keyed (keyed records go where Kafka's default partitioner puts them).
    pub keys: Keys,
    /// Distinct keys.
    pub key_count: u64,
    /// Seed of the key draws (the same seed draws the same keys).
    pub seed: u64,
    /// Print a progress line every second (stderr).
    pub live: bool,
}

/// One second of a run.
#[derive(Debug, Clone, PartialEq)]
pub struct Second {
    /// Seconds since the start, at the end of this one.
    pub at_s: f64,
    /// Messages acknowledged during it.
    pub produced: u64,
    /// Messages consumed during it.
    pub consumed: u64,
    /// Messages that failed during it.
    pub errors: u64,
    /// Publish latency percentiles of the messages acknowledged during it (µs; 0 if none).
    pub publish_p50_us: u64,
    /// See `publish_p50_us`.
    pub publish_p99_us: u64,
    /// Messages acknowledged but not yet consumed, at its end (0 without consumers).
    pub backlog: u64,
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
    /// Every second of the run.
    pub series: Vec<Second>,
    /// Why the run ended early, if it did (the figures are what it measured until then).
    pub aborted: Option<String>,
}

/// Why a run could not start.
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

/// What one producer measured.
struct Produced {
    produced: u64,
    errors: BTreeMap<i16, u64>,
    publish_latency: Histogram<u64>,
    service_time: Histogram<u64>,
    /// Why it stopped early.
    failure: Option<String>,
}

impl RunConfig {
    /// The topics' names.
    pub fn topic_names(&self) -> Vec<String> {
        if self.topics <= 1 {
            vec![self.topic.clone()]
        } else {
            (0..self.topics)
                .map(|t| format!("{}-{t}", self.topic))
                .collect()
        }
    }

    /// Producers over all topics.
    pub fn total_producers(&self) -> u32 {
        self.producers.max(1).saturating_mul(self.topics.max(1))
    }

    /// The mean message value size.
    pub fn mean_message_bytes(&self) -> f64 {
        (self.message_bytes + self.message_bytes_max.max(self.message_bytes)) as f64 / 2.0
    }
}

/// The most payload bytes read from a payload file.
pub const MAX_PAYLOAD_FILE_BYTES: u64 = 64 << 20;

/// The bytes message values are cut from: the payload file, or random bytes from the seed
/// (twice the largest message, at least 1 MiB).
pub fn payload_source(config: &RunConfig) -> Result<Vec<u8>, String> {
    let largest = config.message_bytes_max.max(config.message_bytes);
    let bytes = match &config.payload_file {
        Some(path) => {
            let size = std::fs::metadata(path)
                .map_err(|e| format!("payload file {}: {e}", path.display()))?
                .len();
            if size > MAX_PAYLOAD_FILE_BYTES {
                return Err(format!(
                    "payload file {} is over {} MiB",
                    path.display(),
                    MAX_PAYLOAD_FILE_BYTES >> 20
                ));
            }
            let bytes =
                std::fs::read(path).map_err(|e| format!("payload file {}: {e}", path.display()))?;
            if bytes.is_empty() {
                return Err(format!("payload file {} is empty", path.display()));
            }
            bytes
        }
        None => {
            let mut rng = crate::keys::Rng::new(config.seed ^ 0x005e_ed0f_da7a);
            let length = (2 * largest).max(1 << 20);
            let mut bytes = Vec::with_capacity(length + 8);
            while bytes.len() < length {
                bytes.extend_from_slice(&rng.next_u64().to_le_bytes());
            }
            bytes.truncate(length);
            bytes
        }
    };
    // Short files repeat, so that the largest message fits.
    let mut source = bytes.clone();
    while source.len() < largest {
        source.extend_from_slice(&bytes);
    }
    Ok(source)
}

/// The run's shared schedule.
#[derive(Debug, Clone, Copy)]
struct Schedule {
    start: Instant,
    wall_start_us: i64,
    /// Seconds between two messages of the run.
    interval_s: f64,
    /// Messages in the run.
    total: u64,
    /// Messages before this index are in the warm-up.
    warmup_messages: u64,
    deadline: Instant,
}

impl Schedule {
    /// As fast as possible: no schedule.
    fn unbounded(&self) -> bool {
        self.interval_s == 0.0
    }

    fn intended(&self, g: u64) -> Instant {
        self.start + Duration::from_secs_f64(g as f64 * self.interval_s)
    }

    fn intended_us(&self, g: u64) -> i64 {
        self.wall_start_us + (g as f64 * self.interval_s * 1e6) as i64
    }
}

/// What a run learns from the broker before it starts.
#[derive(Debug, Clone)]
struct Setup {
    topics: Vec<TopicSetup>,
}

/// One topic of the run.
#[derive(Debug, Clone)]
struct TopicSetup {
    name: String,
    layout: Layout,
    /// Each partition's end offset when the run starts (where the consumers begin).
    offsets: Vec<i64>,
}

/// Creates or checks the topics and learns what the run needs.
async fn prepare(config: &RunConfig) -> Result<Setup, RunError> {
    assert!(config.rate >= 0.0 && config.duration > Duration::ZERO);
    let mut connection = Connection::connect(&config.bootstrap).await?;
    let mut topics = Vec::new();
    for name in config.topic_names() {
        topics.push(prepare_topic(config, &mut connection, name).await?);
    }
    Ok(Setup { topics })
}

async fn prepare_topic(
    config: &RunConfig,
    connection: &mut Connection,
    name: String,
) -> Result<TopicSetup, RunError> {
    if let Some(wanted) = config.partitions {
        create_topic(connection, &name, wanted).await?;
    }
    let layout = describe_topic(connection, &name).await?;
    let partitions = i32::try_from(layout.leaders.len()).unwrap_or(i32::MAX);
    if let Some(wanted) = config.partitions.filter(|w| *w != partitions) {
        return Err(RunError::Topic {
            topic: name,
            reason: format!("it exists with {partitions} partitions, not the {wanted} asked for"),
        });
    }
    connection.version(ApiKey::Produce, (3, 9))?;
    let mut offsets = Vec::new();
    if config.consumers > 0 {
        // Each partition's end, from its leader.
        let mut by_leader: BTreeMap<i32, Vec<i32>> = BTreeMap::new();
        for partition in 0..partitions {
            by_leader
                .entry(layout.leader(partition))
                .or_default()
                .push(partition);
        }
        offsets = vec![0; layout.leaders.len()];
        for (leader, asked) in by_leader {
            let address = layout.brokers.get(&leader).cloned().unwrap_or_default();
            let mut leader_connection = Connection::connect(&address).await?;
            let ends = end_offsets(&mut leader_connection, &name, &asked).await?;
            for (partition, end) in asked.into_iter().zip(ends) {
                if let Some(slot) = usize::try_from(partition)
                    .ok()
                    .and_then(|p| offsets.get_mut(p))
                {
                    *slot = end;
                }
            }
        }
    }
    Ok(TopicSetup {
        name,
        layout,
        offsets,
    })
}

/// Everything the executors of a run share.
#[derive(Clone)]
struct Shared {
    config: Arc<RunConfig>,
    setup: Arc<Setup>,
    schedule: Schedule,
    progress: Arc<Progress>,
    payload: Arc<[u8]>,
    warmup_until_us: i64,
}

impl Shared {
    fn new(config: &RunConfig, setup: Setup) -> Result<Shared, RunError> {
        let payload = payload_source(config).map_err(|reason| RunError::Topic {
            topic: config.topic.clone(),
            reason,
        })?;
        let wall_start_us = now_us();
        let start = Instant::now();
        Ok(Shared {
            config: Arc::new(config.clone()),
            setup: Arc::new(setup),
            schedule: Schedule {
                start,
                wall_start_us,
                interval_s: if config.rate > 0.0 {
                    1.0 / config.rate
                } else {
                    0.0
                },
                total: (config.rate * config.duration.as_secs_f64()).ceil() as u64,
                warmup_messages: (config.rate * config.warmup.as_secs_f64()).floor() as u64,
                deadline: start + config.duration + DEADLINE_GRACE,
            },
            progress: Arc::new(Progress::new(u64::from(config.total_producers()))),
            payload: payload.into(),
            warmup_until_us: wall_start_us
                + i64::try_from(config.warmup.as_micros()).unwrap_or(i64::MAX),
        })
    }
}

/// How one consumer ended.
enum ConsumerEnd {
    Read(crate::consume::Consumed),
    Failed(String),
    Late,
}

/// What one executor measured.
struct Partial {
    produced: Vec<Produced>,
    consumers: Vec<ConsumerEnd>,
    /// When its last producer finished.
    producers_done: Instant,
}

/// Executor `core` of `cores`: runs the producers `k` (numbered over all topics) with
/// `k mod cores = core`, and likewise the consumers. Producer `k` belongs to topic
/// `k / producers`; consumer `c` of a topic's `n` reads its partitions `p` with
/// `p mod n = c`.
async fn work(shared: Shared, core: u32, cores: u32) -> Partial {
    let config = &shared.config;
    let n = usize::try_from(config.consumers).unwrap_or(1).max(1);
    let mut consumers = Vec::new();
    let mut consumer_index = 0_usize;
    for topic in &shared.setup.topics {
        let layout = &topic.layout;
        for c in 0..n.min(topic.offsets.len()) {
            consumer_index += 1;
            if (consumer_index - 1) % cores as usize != core as usize {
                continue;
            }
            // Its partitions, fetched from each one's leader on a connection per leader.
            let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
            for (partition, offset) in (0..).zip(topic.offsets.iter().copied()).skip(c).step_by(n) {
                by_leader
                    .entry(layout.leader(partition))
                    .or_default()
                    .push((partition, offset));
            }
            for (leader, assigned) in by_leader {
                let address = layout.brokers.get(&leader).cloned().unwrap_or_default();
                let (name, progress) = (topic.name.clone(), shared.progress.clone());
                let warmup_until_us = shared.warmup_until_us;
                consumers.push(glommio::spawn_local(async move {
                    consume(
                        &address,
                        &name,
                        assigned,
                        warmup_until_us,
                        progress,
                        DRAIN_TIMEOUT,
                    )
                    .await
                }));
            }
        }
    }
    let per_topic = config.producers.max(1);
    let producers: Vec<_> = (0..config.total_producers())
        .filter(|k| k % cores == core)
        .map(|k| {
            let shared = shared.clone();
            glommio::spawn_local(async move {
                let topic = &shared.setup.topics[(k / per_topic) as usize];
                let produced = produce(
                    &shared.config,
                    (k, k % per_topic),
                    topic,
                    shared.schedule,
                    &shared.progress,
                    &shared.payload,
                )
                .await;
                shared
                    .progress
                    .producers_left
                    .fetch_sub(1, Ordering::AcqRel);
                produced
            })
        })
        .collect();
    let mut produced = Vec::with_capacity(producers.len());
    for producer in producers {
        produced.push(producer.await);
    }
    let producers_done = Instant::now();
    let mut ends = Vec::with_capacity(consumers.len());
    for consumer in consumers {
        let remaining = shared
            .schedule
            .deadline
            .saturating_duration_since(Instant::now());
        let consumed = futures_lite::future::or(async { Some(consumer.await) }, async {
            glommio::timer::sleep(remaining).await;
            None
        })
        .await;
        ends.push(match consumed {
            Some(Ok(consumed)) => ConsumerEnd::Read(consumed),
            Some(Err(error)) => ConsumerEnd::Failed(error.to_string()),
            None => ConsumerEnd::Late,
        });
    }
    Partial {
        produced,
        consumers: ends,
        producers_done,
    }
}

/// Merges the executors' measurements into the run's result.
fn merge(shared: &Shared, partials: Vec<Partial>) -> RunResult {
    let config = &shared.config;
    let mut result = RunResult {
        produced: 0,
        errors: BTreeMap::new(),
        publish_latency: latency_histogram(),
        service_time: latency_histogram(),
        elapsed: Duration::ZERO,
        message_bytes: config.mean_message_bytes().round() as usize,
        consumed: Progress::get(&shared.progress.consumed),
        e2e_latency: None,
        series: Vec::new(),
        aborted: None,
    };
    let mut e2e = (config.consumers > 0).then(latency_histogram);
    for partial in partials {
        let elapsed = partial
            .producers_done
            .saturating_duration_since(shared.schedule.start);
        result.elapsed = result.elapsed.max(elapsed);
        for produced in partial.produced {
            result.produced += produced.produced;
            for (code, count) in produced.errors {
                *result.errors.entry(code).or_default() += count;
            }
            // Same bounds: adding cannot fail.
            let _ = result.publish_latency.add(&produced.publish_latency);
            let _ = result.service_time.add(&produced.service_time);
            if result.aborted.is_none() {
                result.aborted = produced.failure;
            }
        }
        for end in partial.consumers {
            match end {
                ConsumerEnd::Read(consumed) => {
                    if let Some(e2e) = &mut e2e {
                        let _ = e2e.add(&consumed.e2e_latency);
                    }
                }
                ConsumerEnd::Failed(error) => {
                    result
                        .aborted
                        .get_or_insert_with(|| format!("a consumer failed: {error}"));
                }
                ConsumerEnd::Late => {
                    result.aborted.get_or_insert_with(|| {
                        "a consumer had not finished by the run's deadline".into()
                    });
                }
            }
        }
    }
    result.e2e_latency = e2e;
    result
}

/// Starts the progress reporter (a thread of its own, so that it sees every executor).
fn start_reporter(shared: &Shared) -> std::thread::JoinHandle<Vec<Second>> {
    let (config, progress, start) = (
        shared.config.clone(),
        shared.progress.clone(),
        shared.schedule.start,
    );
    std::thread::spawn(move || report_seconds(&config, start, &progress))
}

/// Runs the open-loop producers and the consumers on the current executor; see the module
/// documentation.
pub async fn run(config: &RunConfig) -> Result<RunResult, RunError> {
    let setup = prepare(config).await?;
    let shared = Shared::new(config, setup)?;
    let reporter = start_reporter(&shared);
    let partial = work(shared.clone(), 0, 1).await;
    let mut result = merge(&shared, vec![partial]);
    shared.progress.finished.store(true, Ordering::Release);
    result.series = reporter.join().unwrap_or_default();
    Ok(result)
}

/// One catch-up reader: the leader's address, the topic, and its (partition, start offset)s.
type Reader = (String, String, Vec<(i32, i64)>);

/// What a catch-up read measured.
#[derive(Debug, Clone, Copy)]
pub struct CaughtUp {
    /// Records read.
    pub records: u64,
    /// Records the topics held when the read started.
    pub records_expected: u64,
    /// From the first fetch to the last record.
    pub elapsed: Duration,
}

/// Reads every record of the run's topics from the start as fast as the consumers can
/// (`consumers` per topic, a connection per leader), on `cores` executors, giving up after
/// `limit`.
pub fn catch_up(config: &RunConfig, cores: u32, limit: Duration) -> Result<CaughtUp, String> {
    let shared_config = config.clone();
    // Each partition's earliest and latest offsets.
    let layouts = on_executor("spate-loadgen", move || async move {
        let mut bootstrap = Connection::connect(&shared_config.bootstrap)
            .await
            .map_err(|e| e.to_string())?;
        let mut topics = Vec::new();
        for name in shared_config.topic_names() {
            let layout = describe_topic(&mut bootstrap, &name)
                .await
                .map_err(|e| e.to_string())?;
            let mut starts = Vec::new();
            let mut ends = Vec::new();
            for partition in 0..i32::try_from(layout.leaders.len()).unwrap_or(0) {
                let address = layout.brokers.get(&layout.leader(partition)).cloned();
                let mut connection = Connection::connect(&address.unwrap_or_default())
                    .await
                    .map_err(|e| e.to_string())?;
                let asked = [partition];
                starts.push(
                    list_offsets(&mut connection, &name, &asked, EARLIEST)
                        .await
                        .map_err(|e| e.to_string())?[0],
                );
                ends.push(
                    end_offsets(&mut connection, &name, &asked)
                        .await
                        .map_err(|e| e.to_string())?[0],
                );
            }
            topics.push((name, layout, starts, ends));
        }
        Ok::<_, String>(topics)
    })??;
    let expected: i64 = layouts
        .iter()
        .flat_map(|(_, _, starts, ends)| starts.iter().zip(ends).map(|(s, e)| e - s))
        .sum();
    let expected = u64::try_from(expected).unwrap_or(0);
    let progress = Arc::new(Progress::new(0));
    Progress::add(&progress.produced, expected);
    // Consumer c of a topic's n reads its partitions p with p mod n = c, from each leader.
    let n = usize::try_from(config.consumers).unwrap_or(1).max(1);
    let mut readers: Vec<Reader> = Vec::new();
    for (name, layout, starts, _) in &layouts {
        for c in 0..n.min(starts.len()) {
            let mut by_leader: BTreeMap<i32, Vec<(i32, i64)>> = BTreeMap::new();
            for (partition, start) in (0..).zip(starts.iter().copied()).skip(c).step_by(n) {
                by_leader
                    .entry(layout.leader(partition))
                    .or_default()
                    .push((partition, start));
            }
            for (leader, assigned) in by_leader {
                let address = layout.brokers.get(&leader).cloned().unwrap_or_default();
                readers.push((address, name.clone(), assigned));
            }
        }
    }
    let cores = cores.max(1) as usize;
    let start = Instant::now();
    let workers: Vec<_> = (0..cores)
        .map(|core| {
            let mine: Vec<_> = readers.iter().skip(core).step_by(cores).cloned().collect();
            let progress = progress.clone();
            std::thread::spawn(move || {
                on_executor(&format!("spate-loadgen-{core}"), move || async move {
                    let tasks: Vec<_> = mine
                        .into_iter()
                        .map(|(address, name, assigned)| {
                            let progress = progress.clone();
                            glommio::spawn_local(async move {
                                consume(&address, &name, assigned, 0, progress, limit).await
                            })
                        })
                        .collect();
                    for task in tasks {
                        task.await.map_err(|e| e.to_string())?;
                    }
                    Ok::<_, String>(())
                })
            })
        })
        .collect();
    for worker in workers {
        worker
            .join()
            .map_err(|_| "an executor thread panicked".to_string())???;
    }
    Ok(CaughtUp {
        records: Progress::get(&progress.consumed),
        records_expected: expected,
        elapsed: start.elapsed(),
    })
}

/// Registered I/O memory per loadgen executor (it reads no files; locked memory is scarce).
const EXECUTOR_IO_MEMORY: usize = 1 << 20;

/// Runs `work` on a new glommio executor thread named `name`, and waits for it.
pub fn on_executor<T, F, Fut>(name: &str, work: F) -> Result<T, String>
where
    T: Send + 'static,
    F: FnOnce() -> Fut + Send + 'static,
    Fut: std::future::Future<Output = T> + 'static,
{
    glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name(name)
        .io_memory(EXECUTOR_IO_MEMORY)
        .spawn(work)
        .and_then(|handle| handle.join())
        .map_err(|e| format!("executor {name}: {e}"))
}

/// Runs the run on `cores` executors (threads), producers and consumers spread over them
/// round-robin.
pub fn run_on_cores(config: &RunConfig, cores: u32) -> Result<RunResult, String> {
    let shared_config = config.clone();
    let setup = on_executor("spate-loadgen", move || async move {
        prepare(&shared_config).await
    })?
    .map_err(|e| e.to_string())?;
    let shared = Shared::new(config, setup).map_err(|e| e.to_string())?;
    let reporter = start_reporter(&shared);
    let cores = cores.max(1);
    let workers: Vec<_> = (0..cores)
        .map(|core| {
            let shared = shared.clone();
            std::thread::spawn(move || {
                on_executor(&format!("spate-loadgen-{core}"), move || {
                    work(shared, core, cores)
                })
            })
        })
        .collect();
    let mut partials = Vec::with_capacity(workers.len());
    let mut failure = None;
    for worker in workers {
        match worker.join() {
            Ok(Ok(partial)) => partials.push(partial),
            Ok(Err(error)) => failure = Some(error),
            Err(_) => failure = Some("an executor thread panicked".to_string()),
        }
    }
    let mut result = merge(&shared, partials);
    shared.progress.finished.store(true, Ordering::Release);
    result.series = reporter.join().unwrap_or_default();
    if let Some(error) = failure {
        result.aborted.get_or_insert(error);
    }
    Ok(result)
}

/// Producer `k` of the run: its share of the schedule, each request sent to the leader of
/// its partitions (one connection per leader, requests to different leaders in parallel).
/// Leader errors and lost connections refresh the topic's layout; a leader that cannot be
/// reached three times running ends the producer.
async fn produce(
    config: &RunConfig,
    (k, k_in_topic): (u32, u32),
    topic: &TopicSetup,
    schedule: Schedule,
    progress: &Progress,
    payload: &[u8],
) -> Produced {
    let mut out = Produced {
        produced: 0,
        errors: BTreeMap::new(),
        publish_latency: latency_histogram(),
        service_time: latency_histogram(),
        failure: None,
    };
    let mut layout = topic.layout.clone();
    let partitions = i32::try_from(layout.leaders.len()).unwrap_or(i32::MAX);
    let mut connections: BTreeMap<i32, Connection> = BTreeMap::new();
    let mut idempotence = None;
    if config.idempotent {
        let started = match Connection::connect(&config.bootstrap).await {
            Ok(mut connection) => init_producer_id(&mut connection).await,
            Err(error) => Err(error.to_string()),
        };
        match started {
            Ok(producer) => idempotence = Some((producer, BTreeMap::new())),
            Err(error) => {
                out.failure = Some(format!("producer {k}: {error}"));
                return out;
            }
        }
    }
    let n = u64::from(config.total_producers());
    let k64 = u64::from(k);
    // This producer's messages: g = j * n + k (n producers over all topics).
    let count = schedule.total.saturating_sub(k64).div_ceil(n);
    let mut keys = KeyChooser::new(config.keys, config.key_count, config.seed.wrapping_add(k64));
    let mut sizes = crate::keys::Rng::new(config.seed.wrapping_mul(31).wrapping_add(k64));
    let mut unreachable_in_a_row = 0;
    // As fast as possible (rate 0): each request carries about a full batch per partition,
    // and a message's "intended" time is when it was taken (publish latency = service time).
    let unbounded = schedule.unbounded();
    let count = if unbounded { u64::MAX } else { count };
    let full = ((config.batch_bytes as f64 / config.mean_message_bytes().max(1.0)).ceil() as u64)
        .max(1)
        .saturating_mul(u64::try_from(partitions).unwrap_or(1))
        .min(MAX_BATCH_MESSAGES);
    let mut j = 0_u64;
    while j < count {
        let now = Instant::now();
        if now >= schedule.deadline {
            out.failure = Some("the run's deadline passed before every message was sent".into());
            break;
        }
        let due = if unbounded {
            if now >= schedule.start + config.duration {
                break;
            }
            j + full
        } else {
            let elapsed = (now - schedule.start).as_secs_f64();
            let run_due = (elapsed / schedule.interval_s).floor() as u64 + 1;
            run_due.saturating_sub(k64).div_ceil(n).min(count)
        };
        if due <= j {
            let wait = schedule
                .intended(j * n + k64)
                .saturating_duration_since(now);
            glommio::timer::sleep(wait).await;
            continue;
        }
        // linger: wait for more messages while the oldest due one is younger than it.
        let lingered = schedule.intended(j * n + k64) + config.linger;
        if !unbounded && due - j < full && due < count && now < lingered {
            glommio::timer::sleep(lingered - now).await;
            continue;
        }
        let end = due.min(j + MAX_BATCH_MESSAGES);
        let (taken, taken_us) = (Instant::now(), now_us());
        let intended = |g: u64| {
            if unbounded {
                taken
            } else {
                schedule.intended(g)
            }
        };
        let in_warmup = |g: u64| {
            if unbounded {
                taken < schedule.start + config.warmup
            } else {
                g < schedule.warmup_messages
            }
        };
        let messages: Vec<Message<'_>> = (j..end)
            .map(|j| {
                let g = j * n + k64;
                let key = keys.choose(g).map(key_bytes);
                let partition = match &key {
                    Some(key) => partition_for(key, partitions),
                    // Each producer goes round every partition of its topic.
                    None => ((j + u64::from(k_in_topic)) % partitions.max(1) as u64) as i32,
                };
                let spread = config
                    .message_bytes_max
                    .saturating_sub(config.message_bytes);
                let size = config.message_bytes + sizes.below(spread as u64 + 1) as usize;
                let at = (g.wrapping_mul(7919) % (payload.len() - size + 1) as u64) as usize;
                Message {
                    index: g,
                    partition,
                    key,
                    value: &payload[at..at + size],
                }
            })
            .collect();
        // One request per leader, all in flight at once.
        let mut by_leader: BTreeMap<i32, Vec<&Message<'_>>> = BTreeMap::new();
        for message in &messages {
            let leader = layout.leader(message.partition);
            by_leader.entry(leader).or_default().push(message);
        }
        let sent = Instant::now();
        let mut calls = Vec::with_capacity(by_leader.len());
        // (partition → error code, when its answer came); a code of -1: no answer.
        let mut codes: BTreeMap<i32, (i16, Instant)> = BTreeMap::new();
        let mut refresh = false;
        let mut lost: Option<String> = None;
        for (leader, group) in &by_leader {
            let connection = match connections.remove(leader) {
                Some(connection) => Ok(connection),
                None => match layout.brokers.get(leader) {
                    Some(address) => Connection::connect(address)
                        .await
                        .map_err(|e| e.to_string()),
                    None => Err(format!("partition leader {leader} is unknown")),
                },
            };
            let mut connection = match connection {
                Ok(connection) => connection,
                Err(error) => {
                    for message in group {
                        codes.insert(message.partition, (LEADER_NOT_AVAILABLE, sent));
                    }
                    refresh = true;
                    lost = Some(error);
                    continue;
                }
            };
            let sequences = idempotence
                .as_ref()
                .map(|(producer, next)| (*producer, next));
            let request = match produce_request(config, &topic.name, group, sequences, |g| {
                if unbounded {
                    taken_us
                } else {
                    schedule.intended_us(g)
                }
            }) {
                Ok(request) => request,
                Err(error) => {
                    out.failure = Some(error);
                    break;
                }
            };
            let (leader, acks, deadline) = (*leader, config.acks, schedule.deadline);
            calls.push(glommio::spawn_local(async move {
                let outcome = send(&mut connection, request, acks, deadline).await;
                (leader, connection, outcome, Instant::now())
            }));
        }
        if out.failure.is_some() {
            break;
        }
        let mut timed_out = false;
        for call in calls {
            let (leader, connection, outcome, answered) = call.await;
            match outcome {
                Some(Ok(answers)) => {
                    connections.insert(leader, connection);
                    for (partition, code) in answers {
                        refresh |= matches!(
                            code,
                            NOT_LEADER_OR_FOLLOWER
                                | LEADER_NOT_AVAILABLE
                                | UNKNOWN_TOPIC_OR_PARTITION
                        );
                        codes.insert(partition, (code, answered));
                    }
                }
                Some(Err(error)) => {
                    // The connection is dropped; the next request reconnects.
                    refresh = true;
                    lost = Some(error);
                }
                None => timed_out = true,
            }
        }
        if timed_out {
            out.failure = Some(format!(
                "producer {k}: no answer to a produce request by the run's deadline"
            ));
            break;
        }
        if let Some((_, next)) = &mut idempotence {
            // A partition's sequence moves on by what it accepted; a refused batch's
            // sequence numbers are used again by the next one.
            for message in &messages {
                if codes.get(&message.partition).map(|c| c.0) == Some(0) {
                    let sequence = next.entry(message.partition).or_insert(0_i32);
                    // Sequences wrap to 0 after i32::MAX, as Kafka's do.
                    *sequence = if *sequence == i32::MAX {
                        0
                    } else {
                        *sequence + 1
                    };
                }
            }
        }
        {
            // One lock of the shared interval histogram per round of answers.
            let mut interval = progress
                .interval
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            for message in &messages {
                let (code, acked) = codes
                    .get(&message.partition)
                    .copied()
                    .unwrap_or((if config.acks == 0 { 0 } else { -1 }, Instant::now()));
                if code == 0 {
                    out.produced += 1;
                    Progress::add(&progress.produced, 1);
                } else {
                    *out.errors.entry(code).or_default() += 1;
                    Progress::add(&progress.errors, 1);
                }
                let publish = acked
                    .saturating_duration_since(intended(message.index))
                    .as_micros()
                    .max(1) as u64;
                interval.saturating_record(publish);
                if !in_warmup(message.index) {
                    let service = acked.saturating_duration_since(sent).as_micros().max(1) as u64;
                    out.publish_latency.saturating_record(publish);
                    out.service_time.saturating_record(service);
                }
            }
        }
        j = end;
        match lost {
            Some(error) => {
                unreachable_in_a_row += 1;
                if unreachable_in_a_row >= MAX_UNREACHABLE_IN_A_ROW {
                    out.failure = Some(format!("producer {k}: {error}"));
                    break;
                }
            }
            None => unreachable_in_a_row = 0,
        }
        if refresh {
            match Connection::connect(&config.bootstrap).await {
                Ok(mut connection) => {
                    if let Ok(fresh) = describe_topic(&mut connection, &topic.name).await {
                        if fresh.leaders.len() == layout.leaders.len() {
                            layout = fresh;
                        }
                    }
                }
                Err(error) => {
                    out.failure = Some(format!("producer {k}: {error}"));
                    break;
                }
            }
        }
    }
    out
}

/// Sends one produce request (waiting for its answer unless `acks` is 0), until
/// `deadline`: each partition's error code, or why the connection failed; `None` when no
/// answer came in time.
async fn send(
    connection: &mut Connection,
    request: ProduceRequest,
    acks: i16,
    deadline: Instant,
) -> Option<Result<Vec<(i32, i16)>, String>> {
    let call = async {
        let version = connection.version(ApiKey::Produce, (3, 9))?;
        if acks == 0 {
            // No response comes: "acknowledged" when written.
            connection
                .send_only(ApiKey::Produce, version, RequestKind::Produce(request))
                .await
                .map(|()| ResponseKind::Produce(Default::default()))
        } else {
            connection
                .call(ApiKey::Produce, version, RequestKind::Produce(request))
                .await
        }
    };
    let remaining = deadline.saturating_duration_since(Instant::now());
    let outcome = futures_lite::future::or(async { Some(call.await) }, async {
        glommio::timer::sleep(remaining).await;
        None
    })
    .await?;
    Some(match outcome {
        Ok(ResponseKind::Produce(response)) => Ok(response
            .responses
            .iter()
            .flat_map(|topic| {
                topic
                    .partition_responses
                    .iter()
                    .map(|p| (p.index, p.error_code))
            })
            .collect()),
        Ok(_) => Err("Produce answered with another API".into()),
        Err(error) => Err(error.to_string()),
    })
}

/// Every second until the run finishes: a [`Second`] of the series, and (when `live`) a
/// progress line on stderr.
fn report_seconds(config: &RunConfig, start: Instant, progress: &Progress) -> Vec<Second> {
    let mut series = Vec::new();
    let (mut produced, mut consumed, mut errors) = (0, 0, 0);
    let total_s = config.duration.as_secs_f64();
    for tick in 1_u32.. {
        let at = start + Duration::from_secs(u64::from(tick));
        let finished = || progress.finished.load(Ordering::Acquire);
        while Instant::now() < at && !finished() {
            std::thread::sleep(
                at.saturating_duration_since(Instant::now())
                    .min(Duration::from_millis(100)),
            );
        }
        if finished() {
            break;
        }
        let (interval_p50, interval_p99) = {
            let mut interval = progress
                .interval
                .lock()
                .unwrap_or_else(std::sync::PoisonError::into_inner);
            let figures = if interval.is_empty() {
                (0, 0)
            } else {
                (
                    interval.value_at_quantile(0.5),
                    interval.value_at_quantile(0.99),
                )
            };
            interval.reset();
            figures
        };
        let now = (
            Progress::get(&progress.produced),
            Progress::get(&progress.consumed),
            Progress::get(&progress.errors),
        );
        let second = Second {
            at_s: f64::from(tick),
            produced: now.0.saturating_sub(produced),
            consumed: now.1.saturating_sub(consumed),
            errors: now.2.saturating_sub(errors),
            publish_p50_us: interval_p50,
            publish_p99_us: interval_p99,
            backlog: if config.consumers > 0 {
                now.0.saturating_sub(now.1)
            } else {
                0
            },
        };
        (produced, consumed, errors) = now;
        if config.live {
            let mb = |messages: u64| messages as f64 * config.mean_message_bytes() / 1e6;
            eprintln!(
                "[{:>6.1}s/{total_s:.1}s] produced {:>8} msg/s {:>8.2} MB/s | consumed {:>8} msg/s {:>8.2} MB/s | publish p50 {:>9.3} ms p99 {:>9.3} ms | backlog {:>8} | errors {}",
                second.at_s,
                second.produced,
                mb(second.produced),
                second.consumed,
                mb(second.consumed),
                second.publish_p50_us as f64 / 1000.0,
                second.publish_p99_us as f64 / 1000.0,
                second.backlog,
                second.errors,
            );
        }
        series.push(second);
    }
    series
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

/// Where a topic's partitions live: each partition's leader, and the brokers' addresses.
#[derive(Debug, Clone)]
pub struct Layout {
    /// Each partition's leader (node id; -1 while it has none).
    pub leaders: Vec<i32>,
    /// Every broker's `host:port`, by node id.
    pub brokers: BTreeMap<i32, String>,
}

impl Layout {
    /// The leader of `partition` (-1 if it has none or is unknown).
    pub fn leader(&self, partition: i32) -> i32 {
        usize::try_from(partition)
            .ok()
            .and_then(|p| self.leaders.get(p))
            .copied()
            .unwrap_or(-1)
    }
}

/// Asks for the topic (creating it where the broker auto-creates) until every partition
/// has a leader.
async fn describe_topic(connection: &mut Connection, topic: &str) -> Result<Layout, RunError> {
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
        let mut leaders = vec![-1; described.partitions.len()];
        for partition in &described.partitions {
            if let Some(slot) = usize::try_from(partition.partition_index)
                .ok()
                .and_then(|i| leaders.get_mut(i))
            {
                *slot = partition.leader_id.0;
            }
        }
        let led = !leaders.is_empty() && leaders.iter().all(|l| *l >= 0);
        match described.error_code {
            0 if led => {
                let brokers = response
                    .brokers
                    .iter()
                    .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
                    .collect();
                return Ok(Layout { leaders, brokers });
            }
            // LEADER_NOT_AVAILABLE while a new topic settles: ask again.
            0 | LEADER_NOT_AVAILABLE => glommio::timer::sleep(Duration::from_millis(100)).await,
            code => return Err(failed(format!("Metadata error code {code}"))),
        }
    }
    Err(failed("no leaders after 5 s".into()))
}

/// One message of a request.
struct Message<'a> {
    /// Its index in the run.
    index: u64,
    partition: i32,
    key: Option<Vec<u8>>,
    value: &'a [u8],
}

/// An idempotent producer's id and epoch, and each partition's next sequence number.
type Sequences<'a> = ((i64, i16), &'a BTreeMap<i32, i32>);

/// One request carrying `messages`: each partition's in batches of at most `batch_bytes` of
/// records (one record alone may exceed it), with sequence numbers when idempotent.
fn produce_request(
    config: &RunConfig,
    topic: &str,
    messages: &[&Message<'_>],
    sequences: Option<Sequences<'_>>,
    intended_us: impl Fn(u64) -> i64,
) -> Result<ProduceRequest, String> {
    let failed = |e: spate_model::BatchError| format!("building a batch: {e}");
    // Per partition: its finished batches, the batch being filled, and the sequence number
    // of that batch's first record.
    let mut partitions: BTreeMap<i32, (Vec<u8>, BatchBuilder, i32)> = BTreeMap::new();
    let new_batch = |sequence: i32| {
        let builder = BatchBuilder::new(config.compression);
        match sequences {
            Some(((id, epoch), _)) => builder.producer(
                spate_model::ProducerId(id),
                spate_model::ProducerEpoch(epoch),
                spate_model::Sequence(sequence),
            ),
            None => builder,
        }
    };
    let timestamp_ms = now_ms();
    for message in messages {
        let (done, builder, sequence) = partitions.entry(message.partition).or_insert_with(|| {
            let first = sequences
                .and_then(|(_, next)| next.get(&message.partition).copied())
                .unwrap_or(0);
            (Vec::new(), new_batch(first), first)
        });
        let size = message.value.len()
            + message.key.as_ref().map_or(0, Vec::len)
            + INTENDED_HEADER.len()
            + 32;
        if !builder.is_empty() && builder.records_bytes() + size > config.batch_bytes {
            let count = i32::try_from(builder.len()).unwrap_or(0);
            *sequence = if *sequence > i32::MAX - count {
                count - (i32::MAX - *sequence) - 1
            } else {
                *sequence + count
            };
            let full = std::mem::replace(builder, new_batch(*sequence));
            done.extend_from_slice(&full.build().map_err(failed)?);
        }
        builder
            .push(&BuilderRecord {
                timestamp_ms,
                key: message.key.as_deref(),
                value: Some(message.value),
                headers: &[(
                    INTENDED_HEADER,
                    Some(&intended_us(message.index).to_be_bytes()),
                )],
            })
            .map_err(failed)?;
    }
    let mut partition_data = Vec::with_capacity(partitions.len());
    for (partition, (mut records, builder, _)) in partitions {
        records.extend_from_slice(&builder.build().map_err(failed)?);
        partition_data.push(
            PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(Bytes::from(records))),
        );
    }
    let topic = TopicProduceData::default()
        .with_name(TopicName(StrBytes::from_string(topic.to_string())))
        .with_partition_data(partition_data);
    Ok(ProduceRequest::default()
        .with_acks(config.acks)
        .with_timeout_ms(30_000)
        .with_topic_data(vec![topic]))
}

/// Asks the broker for an idempotent producer id and epoch.
async fn init_producer_id(connection: &mut Connection) -> Result<(i64, i16), String> {
    use spate_protocol::kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
    use spate_protocol::kafka_protocol::messages::ProducerId;
    let version = connection
        .version(ApiKey::InitProducerId, (0, 4))
        .map_err(|e| e.to_string())?;
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    match connection
        .call(
            ApiKey::InitProducerId,
            version,
            RequestKind::InitProducerId(request),
        )
        .await
        .map_err(|e| e.to_string())?
    {
        ResponseKind::InitProducerId(response) if response.error_code == 0 => {
            Ok((response.producer_id.0, response.producer_epoch))
        }
        ResponseKind::InitProducerId(response) => {
            Err(format!("InitProducerId error code {}", response.error_code))
        }
        _ => Err("InitProducerId answered with another API".into()),
    }
}

fn now_ms() -> i64 {
    let since_epoch = std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .unwrap_or_default();
    i64::try_from(since_epoch.as_millis()).unwrap_or(i64::MAX)
}
