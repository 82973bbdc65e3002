//! spate-loadgen against a Spate broker started here: a fixed-rate run reaches its rate and
//! lands every record (with several producers and keys too); a broker paused mid-run shows up
//! in the publish latency (measured from intended send times) but not in the service time a
//! closed-loop tool would report; a broker killed mid-run ends the run with partial results.

mod common;

use common::Broker;
use spate_loadgen::{RunConfig, RunResult};
use std::time::Duration;

fn run(config: RunConfig) -> RunResult {
    run_result(config).expect("the run completes")
}

fn run_result(config: RunConfig) -> Result<RunResult, spate_loadgen::RunError> {
    spate_broker::runtime::run_shard("loadgen-test", None, move || async move {
        spate_loadgen::run(&config).await
    })
    .expect("executor")
}

fn config(address: &str, topic: &str, rate: f64, seconds: f64) -> RunConfig {
    RunConfig {
        bootstrap: address.to_string(),
        topic: topic.to_string(),
        topics: 1,
        rate,
        linger: Duration::ZERO,
        message_bytes: 256,
        message_bytes_max: 256,
        payload_file: None,
        idempotent: false,
        duration: Duration::from_secs_f64(seconds),
        warmup: Duration::from_millis(200),
        acks: -1,
        producers: 1,
        consumers: 1,
        partitions: None,
        compression: spate_model::Compression::None,
        batch_bytes: spate_loadgen::workload::DEFAULT_BATCH_BYTES,
        keys: spate_loadgen::keys::Keys::None,
        key_count: 1000,
        seed: 1,
        live: false,
    }
}

/// Three producers with zipf-keyed records over four partitions, in small batches (several
/// per partition in a request), on two executors: every record lands and is read back once,
/// and the per-second series adds up to the run.
#[test]
fn keyed_records_from_several_producers_all_land() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let mut wanted = config(&broker.address, "keyed", 3000.0, 2.0);
    wanted.partitions = Some(4);
    wanted.producers = 3;
    wanted.keys = spate_loadgen::keys::Keys::Zipf;
    wanted.key_count = 50;
    wanted.batch_bytes = 4096;
    wanted.consumers = 2;
    let result = spate_loadgen::run::run_on_cores(&wanted, 2).expect("the run completes");
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    assert_eq!(result.aborted, None);
    assert_eq!((result.produced, result.consumed), (6000, 6000));
    assert!(result.series.len() >= 2, "{} seconds", result.series.len());
    let in_series: u64 = result.series.iter().map(|s| s.produced).sum();
    assert!(
        (4000..=6000).contains(&in_series),
        "{in_series} in the series"
    );
    assert!(result.series.iter().any(|s| s.publish_p99_us > 0));
}

/// Idempotent producers sending values of varied sizes cut from a payload file, in batches
/// small enough that a request carries several per partition: every record lands once, and
/// the broker accepted every sequence number.
#[test]
fn idempotent_producers_with_varied_sizes_from_a_file_land_every_record() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let payload = data.path().join("payload.txt");
    std::fs::write(
        &payload,
        "the quick brown fox jumps over the lazy dog\n".repeat(10),
    )
    .expect("payload");
    let mut wanted = config(&broker.address, "sized", 2000.0, 1.5);
    wanted.partitions = Some(2);
    wanted.producers = 2;
    wanted.consumers = 2;
    wanted.idempotent = true;
    wanted.message_bytes = 10;
    wanted.message_bytes_max = 2000;
    wanted.payload_file = Some(payload);
    wanted.batch_bytes = 8192;
    let result = run(wanted);
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    assert_eq!(result.aborted, None);
    assert_eq!((result.produced, result.consumed), (3000, 3000));
    assert_eq!(result.message_bytes, 1005, "the mean size");
}

/// Three topics of two partitions, two producers and a consumer each: every partition of
/// every topic gets records, and every record is read back.
#[test]
fn several_topics_each_get_their_producers_and_consumers() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let mut wanted = config(&broker.address, "multi", 3000.0, 1.0);
    wanted.topics = 3;
    wanted.partitions = Some(2);
    wanted.producers = 2;
    let result = run(wanted);
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    assert_eq!((result.produced, result.consumed), (3000, 3000));
    // Each partition of each topic holds its share: 3000 / 6 records.
    use spate_protocol::kafka_protocol::messages::list_offsets_request::{
        ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
    };
    use spate_protocol::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind, TopicName};
    let mut raw = common::Raw::connect(&broker.address);
    let topics = (0..3)
        .map(|t| {
            ListOffsetsTopic::default()
                .with_name(TopicName(format!("multi-{t}").into()))
                .with_partitions(
                    (0..2)
                        .map(|p| {
                            ListOffsetsPartition::default()
                                .with_partition_index(p)
                                .with_timestamp(-1)
                        })
                        .collect(),
                )
        })
        .collect();
    let request = ListOffsetsRequest::default().with_topics(topics);
    let ResponseKind::ListOffsets(response) =
        raw.call(ApiKey::ListOffsets, 4, RequestKind::ListOffsets(request))
    else {
        panic!("not a ListOffsets response")
    };
    let ends: Vec<i64> = response
        .topics
        .iter()
        .flat_map(|t| t.partitions.iter().map(|p| p.offset))
        .collect();
    assert_eq!(ends, [500; 6]);
}

/// Rate 0 runs as fast as possible for the duration, and every record is still read back; a
/// linger makes a fixed-rate run's requests carry more messages each, with no loss.
#[test]
fn as_fast_as_possible_and_lingering_runs_land_every_record() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let mut fastest = config(&broker.address, "fastest", 0.0, 1.0);
    fastest.warmup = Duration::ZERO;
    let result = run(fastest);
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    assert_eq!(result.aborted, None);
    assert!(result.produced > 2000, "{} in a second", result.produced);
    assert_eq!(result.consumed, result.produced);
    assert_eq!(
        result.publish_latency.len(),
        result.service_time.len(),
        "without a schedule, publish latency is the service time"
    );
    let mut lingering = config(&broker.address, "lingering", 2000.0, 1.0);
    lingering.linger = Duration::from_millis(20);
    let result = run(lingering);
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    assert_eq!((result.produced, result.consumed), (2000, 2000));
    assert!(
        result.publish_latency.value_at_quantile(0.5) >= 5_000,
        "messages waited for the linger: p50 {} µs",
        result.publish_latency.value_at_quantile(0.5)
    );
}

/// Capacity mode: an objective every step meets lets the rate climb through every step; one
/// no step can meet stops at the first.
#[test]
fn capacity_steps_the_rate_until_an_objective_breaks() {
    use spate_loadgen::capacity::{capacity, highest_passing, Plan};
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let mut base = config(&broker.address, "capacity", 1.0, 1.0);
    base.consumers = 0;
    let plan = |objective: &str| Plan {
        start_rate: 500.0,
        step_factor: 2.0,
        step_duration: Duration::from_millis(1000),
        slos: vec![objective.parse().expect("objective")],
        max_steps: 3,
    };
    let passing = capacity(&base, &plan("p99=5s"), 1).expect("capacity");
    let failing = capacity(&base, &plan("p50=1us"), 1).expect("capacity");
    let targets: Vec<f64> = passing.iter().map(|s| s.target).collect();
    assert_eq!(targets, [500.0, 1000.0, 2000.0]);
    assert!(
        passing.iter().all(|s| s.failed.is_none()),
        "{:?}",
        passing.iter().map(|s| &s.failed).collect::<Vec<_>>()
    );
    assert_eq!(highest_passing(&passing), Some(2000.0));
    assert_eq!(failing.len(), 1, "the first step fails");
    assert!(failing[0]
        .failed
        .as_deref()
        .is_some_and(|f| f.contains("p50")));
    assert_eq!(highest_passing(&failing), None);
    let chart = spate_loadgen::plot::capacity_chart(&passing);
    assert_eq!(chart.matches("<polyline").count(), 3, "p50, p99, p99.9");
}

/// A broker killed mid-run ends it with the reason and what was measured until then.
#[test]
fn a_broker_that_disappears_ends_the_run_with_partial_results() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let mut wanted = config(&broker.address, "vanishing", 2000.0, 4.0);
    wanted.consumers = 0;
    let runner = std::thread::spawn(move || run(wanted));
    std::thread::sleep(Duration::from_millis(1500));
    broker.stop("-KILL");
    let result = runner.join().expect("runner");
    let reason = result.aborted.expect("the run ended early");
    assert!(reason.contains("producer 0"), "{reason}");
    assert!(
        result.produced > 1000 && result.produced < 8000,
        "{} acknowledged before the broker went",
        result.produced
    );
    assert!(result.elapsed < Duration::from_secs(4), "it ended at once");
}

/// With `--partitions 4 --compression lz4`, the run creates the topic, spreads its records
/// over the partitions (on both shards) and reads every one back.
#[test]
fn a_run_over_four_compressed_partitions_lands_every_record() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let mut wanted = config(&broker.address, "spread", 2000.0, 1.0);
    wanted.partitions = Some(4);
    wanted.compression = spate_model::Compression::Lz4;
    let result = run(wanted.clone());
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    assert_eq!((result.produced, result.consumed), (2000, 2000));
    for partition in 0..4 {
        assert!(
            data.path().join(format!("spread-{partition}")).exists(),
            "partition {partition} was created"
        );
    }
    // A topic with another partition count is refused, not silently used.
    wanted.partitions = Some(3);
    let refused = run_result(wanted);
    assert!(
        refused.is_err_and(|e| e.to_string().contains("not the 3 asked for")),
        "a mismatched partition count is an error"
    );
}

#[test]
fn a_fixed_rate_run_reaches_its_rate_and_lands_every_record() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let result = run(config(&broker.address, "steady", 2000.0, 2.0));
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    assert_eq!(result.produced, 4000);
    assert_eq!(
        result.consumed, 4000,
        "every produced record is consumed, counts match"
    );
    let e2e = result
        .e2e_latency
        .as_ref()
        .expect("end-to-end latency with a consumer");
    assert!(
        e2e.len() > 3000,
        "end-to-end samples after the warm-up: {}",
        e2e.len()
    );
    let achieved = result.produced as f64 / result.elapsed.as_secs_f64();
    assert!(
        (achieved - 2000.0).abs() / 2000.0 < 0.05,
        "achieved {achieved:.0} msgs/s"
    );
    // The broker holds exactly what was acknowledged.
    let log_end: u64 = std::fs::read_dir(data.path().join("steady-0"))
        .expect("partition dir")
        .filter_map(Result::ok)
        .filter(|e| e.file_name().to_string_lossy().ends_with(".log"))
        .map(|e| e.metadata().map(|m| m.len()).unwrap_or(0))
        .sum();
    assert!(
        log_end > 4000 * 256,
        "the log holds the records ({log_end} bytes)"
    );
    let json =
        spate_loadgen::report::json(&config(&broker.address, "steady", 2000.0, 2.0), &result);
    for key in ["p50", "p75", "p90", "p95", "p99", "p99.9", "p99.99", "max"] {
        for histogram in ["publish_latency_us", "service_time_us", "e2e_latency_us"] {
            assert!(json[histogram][key].as_u64().is_some(), "{histogram} {key}");
        }
    }
    assert_eq!(json["throughput"]["produced"], 4000);
    assert_eq!(json["throughput"]["consumed"], 4000);
}

#[test]
fn a_paused_broker_shows_in_publish_latency_not_in_service_time() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let address = broker.address.clone();
    let runner = std::thread::spawn(move || run(config(&address, "paused", 2000.0, 4.0)));
    std::thread::sleep(Duration::from_millis(1500));
    broker.signal("-STOP");
    std::thread::sleep(Duration::from_millis(1000));
    broker.signal("-CONT");
    let result = runner.join().expect("runner");
    assert!(result.errors.is_empty(), "{:?}", result.errors);
    let publish_p999 = result.publish_latency.value_at_percentile(99.9);
    let service_p999 = result.service_time.value_at_percentile(99.9);
    assert!(
        publish_p999 >= 800_000,
        "the 1 s pause is in the publish p99.9: {publish_p999} µs"
    );
    assert!(
        service_p999 < 500_000,
        "a closed-loop view misses it: service p99.9 {service_p999} µs"
    );
}

/// spate-bench's scenarios against a broker started here: every scenario yields its
/// figures, the relative ones are compared with produce-max, and the broker's resource
/// figures are read from /proc.
#[test]
fn bench_scenarios_measure_a_broker() {
    use spate_bench::report::Report;
    use spate_bench::scenarios::{compare, run_once, ScenarioConfig, SCENARIOS};
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let config = ScenarioConfig {
        bootstrap: broker.address.clone(),
        pid: Some(broker.pid()),
        duration: Duration::from_millis(800),
        warmup: Duration::from_millis(200),
        cores: 1,
        partition_counts: vec![1, 10],
        connection_counts: vec![1, 20],
        prefix: String::new(),
    };
    let mut report = Report::default();
    let names: Vec<String> = SCENARIOS.iter().map(|s| s.to_string()).collect();
    run_once(&mut report, &config, &names, 0).expect("scenarios");
    // A second broker as a peer, with two of the scenarios: its figures carry its name,
    // its produce-max is compared with the first broker's.
    let peer_data = tempfile::tempdir().expect("temp dir");
    let peer_broker = Broker::start(peer_data.path());
    let peer = ScenarioConfig {
        bootstrap: peer_broker.address.clone(),
        pid: None,
        prefix: "peer.other.".to_string(),
        ..config.clone()
    };
    let some = ["produce-max".to_string(), "keyed".to_string()];
    run_once(&mut report, &peer, &some, 0).expect("peer scenarios");
    compare(&mut report, &config);
    compare(&mut report, &peer);
    report.finish();
    let figure = |name: &str| {
        report
            .figures
            .iter()
            .find(|f| f.name == name)
            .unwrap_or_else(|| panic!("no figure {name}"))
    };
    assert!(figure("produce_max.throughput").value > 1.0);
    for percent in [10, 50, 80] {
        assert!(figure(&format!("produce_latency.{percent}pct.publish.p99")).value > 0.0);
        assert!(figure(&format!("produce_latency.{percent}pct.e2e.p99")).value > 0.0);
    }
    for relative in [
        "keyed.throughput",
        "partitions_1.throughput",
        "partitions_10.throughput",
    ] {
        let ratio = figure(relative)
            .ratio_to_limit
            .expect("compared with produce-max");
        assert!(ratio > 0.0, "{relative}: {ratio}");
    }
    for count in [1, 20] {
        assert!(figure(&format!("connections_{count}.throughput")).value > 0.0);
    }
    let backlog = figure("catch_up.backlog").value;
    assert!(backlog > 1.0, "a backlog of {backlog} MiB");
    assert!(figure("catch_up.throughput").value > 0.0);
    assert!(figure("produce_max.broker.cpu").value > 0.0);
    let versus_spate = figure("peer.other.produce_max.throughput");
    assert_eq!(
        versus_spate.limit_name.as_deref(),
        Some("produce_max.throughput")
    );
    assert!(versus_spate.ratio_to_limit.is_some_and(|r| r > 0.0));
    let peer_keyed = figure("peer.other.keyed.throughput");
    assert_eq!(
        peer_keyed.limit_name.as_deref(),
        Some("peer.other.produce_max.throughput")
    );
    assert!(
        report
            .figures
            .iter()
            .all(|f| !f.name.starts_with("peer.other.produce_latency")),
        "only the asked scenarios ran against the peer"
    );
    assert!(figure("produce_max.broker.peak_rss").value > 1.0);
    let amplification = figure("produce_max.broker.write_amplification").value;
    assert!(
        amplification > 0.5,
        "the broker wrote what it acknowledged: {amplification}"
    );
    // The report's charts: latency against load (Spate), throughput against partitions
    // and connections; the peer ran neither, so each chart has one line.
    let charts = report.charts();
    let names: Vec<&str> = charts.iter().map(|(name, _, _)| *name).collect();
    assert_eq!(names, ["latency", "partitions", "connections"]);
    for (name, _, svg) in &charts {
        assert!(svg.starts_with("<svg") && svg.contains(">Spate"), "{name}");
        assert!(
            !svg.contains(">other<"),
            "{name}: the peer ran no such scenario"
        );
    }
}
