//! The admin HTTP listener against a real broker: /health, /ready, /v1/cluster, and
//! /metrics after a known workload (raw produces of known bytes, a confluent-kafka group
//! that commits known offsets), parsed by Prometheus's own Python parsers.

mod common;

use bytes::Bytes;
use common::{produce_request, python, repo, run_client, Broker, Raw};
use spate_protocol::kafka_protocol::messages::{ApiKey, ResponseKind};
use std::collections::BTreeMap;
use std::io::{Read, Write};
use std::net::TcpStream;
use std::time::Duration;

/// One HTTP/1.1 request; (status, body).
fn http(address: &str, request: &str) -> (u16, String) {
    let mut stream = TcpStream::connect(address).expect("connect to the admin listener");
    stream
        .set_read_timeout(Some(Duration::from_secs(30)))
        .expect("timeout");
    stream.write_all(request.as_bytes()).expect("send");
    let mut response = String::new();
    stream.read_to_string(&mut response).expect("read");
    let (head, body) = response.split_once("\r\n\r\n").expect("a response head");
    let status = head
        .split_whitespace()
        .nth(1)
        .and_then(|s| s.parse().ok())
        .expect("a status");
    let length: usize = head
        .lines()
        .find_map(|l| l.strip_prefix("Content-Length: "))
        .and_then(|n| n.parse().ok())
        .expect("a Content-Length");
    if !request.starts_with("HEAD") {
        assert_eq!(body.len(), length, "Content-Length matches the body");
    }
    (status, body.to_string())
}

fn get(address: &str, path: &str) -> (u16, String) {
    http(
        address,
        &format!("GET {path} HTTP/1.1\r\nHost: test\r\n\r\n"),
    )
}

fn batch(records: usize, value_bytes: usize) -> Bytes {
    let value = vec![b'v'; value_bytes];
    let mut builder = spate_model::BatchBuilder::new(spate_model::Compression::None);
    for _ in 0..records {
        builder
            .push(&spate_model::BuilderRecord {
                value: Some(&value),
                ..Default::default()
            })
            .expect("push");
    }
    Bytes::from(builder.build().expect("build"))
}

/// A sample: name and labels → value.
type Samples = BTreeMap<(String, BTreeMap<String, String>), f64>;

/// Scrapes /metrics and parses it with prometheus_client (both parsers must accept it).
fn scrape(admin: &str, dir: &std::path::Path) -> Samples {
    let (status, page) = get(admin, "/metrics");
    assert_eq!(status, 200, "{page}");
    let page_path = dir.join("metrics.txt");
    let parsed_path = dir.join("metrics.jsonl");
    std::fs::write(&page_path, &page).expect("write the page");
    python(
        "parse_metrics.py",
        &[
            page_path.to_str().expect("utf-8"),
            parsed_path.to_str().expect("utf-8"),
        ],
    );
    std::fs::read_to_string(&parsed_path)
        .expect("parsed samples")
        .lines()
        .map(|line| {
            let sample: serde_json::Value = serde_json::from_str(line).expect("json");
            let labels = sample["labels"]
                .as_object()
                .expect("labels")
                .iter()
                .map(|(k, v)| (k.clone(), v.as_str().expect("string").to_string()))
                .collect();
            let name = sample["name"].as_str().expect("name").to_string();
            ((name, labels), sample["value"].as_f64().expect("value"))
        })
        .collect()
}

fn value(samples: &Samples, name: &str, labels: &[(&str, &str)]) -> f64 {
    let labels: BTreeMap<String, String> = labels
        .iter()
        .map(|(k, v)| (k.to_string(), v.to_string()))
        .collect();
    *samples
        .get(&(name.to_string(), labels.clone()))
        .unwrap_or_else(|| panic!("no sample {name}{labels:?}"))
}

#[test]
fn admin_endpoints_and_metrics_after_a_known_workload() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let admin = broker.admin.clone().expect("admin listener");

    assert_eq!(get(&admin, "/health"), (200, "ok\n".to_string()));
    assert_eq!(get(&admin, "/ready").0, 200);
    let (status, body) = get(&admin, "/nowhere");
    assert_eq!(status, 404);
    assert!(body.contains("/metrics"), "{body}");
    assert_eq!(http(&admin, "POST /metrics HTTP/1.1\r\n\r\n").0, 405);
    assert_eq!(http(&admin, "nonsense\r\n\r\n").0, 400);
    let (status, body) = http(&admin, "HEAD /health HTTP/1.1\r\n\r\n");
    assert_eq!((status, body.as_str()), (200, ""));

    let topic = "metered";
    let mut raw = Raw::connect(&broker.address);
    raw.create_topic(topic, 2);

    let (status, body) = get(&admin, "/v1/cluster");
    assert_eq!(status, 200, "{body}");
    let cluster: serde_json::Value = serde_json::from_str(&body).expect("cluster JSON");
    assert_eq!(cluster["node_id"], 0);
    assert_eq!(cluster["listener"], broker.address.as_str());
    let produce = cluster["api_versions"]
        .as_array()
        .expect("api_versions")
        .iter()
        .find(|a| a["api"] == "Produce")
        .expect("Produce is served");
    assert_eq!(
        (produce["key"].as_i64(), produce["max"].as_i64()),
        (Some(0), Some(9))
    );
    let shards = cluster["shards"].as_u64().expect("shards") as usize;
    assert_eq!(shards.to_string(), common::test_shards());
    let metered = cluster["topics"]
        .as_array()
        .expect("topics")
        .iter()
        .find(|t| t["name"] == topic)
        .expect("the topic is listed");
    assert_eq!(metered["partitions"], 2);
    assert_eq!(metered["internal"], false);
    let per_shard: u64 = cluster["partitions_per_shard"]
        .as_array()
        .expect("per shard")
        .iter()
        .map(|n| n.as_u64().expect("count"))
        .sum();
    assert_eq!(per_shard, 16 + 16 + 2, "two internal topics and ours");

    // Known bytes in: 3 batches of 10 records to partition 0, 2 to partition 1.
    let mut sent = [0_usize; 2];
    for (partition, batches) in [(0, 3), (1, 2)] {
        for _ in 0..batches {
            let records = batch(10, 100);
            sent[partition as usize] += records.len();
            let ResponseKind::Produce(produced) = raw.call(
                ApiKey::Produce,
                9,
                produce_request(topic, partition, records),
            ) else {
                panic!("not a Produce response")
            };
            assert_eq!(produced.responses[0].partition_responses[0].error_code, 0);
        }
    }
    // A partition that does not exist: one UNKNOWN_TOPIC_OR_PARTITION (3).
    let ResponseKind::Produce(refused) =
        raw.call(ApiKey::Produce, 9, produce_request(topic, 7, batch(1, 1)))
    else {
        panic!("not a Produce response")
    };
    assert_eq!(refused.responses[0].partition_responses[0].error_code, 3);
    // An unknown API key closes its connection: a bad_request close.
    let mut bad = Raw::connect(&broker.address);
    bad.send_frame(&[0, 0, 0, 8, 0x7f, 0x00, 0, 0, 0, 0, 0, 1]);
    assert!(bad.receive().is_none(), "the broker closes the connection");

    // A group reads all 50 records and commits 12 and 5: lag 18 + 15.
    python(
        "metrics_group.py",
        &[&broker.address, topic, "metered-group", "50", "0=12", "1=5"],
    );

    let samples = scrape(&admin, data.path());
    let partition = |p: &'static str| [("topic", topic), ("partition", p)];
    for (p, index) in [("0", 0), ("1", 1)] {
        let bytes_in = value(&samples, "spate_partition_bytes_in_total", &partition(p));
        assert_eq!(
            bytes_in, sent[index] as f64,
            "bytes in equal bytes produced"
        );
        let bytes_out = value(&samples, "spate_partition_bytes_out_total", &partition(p));
        assert!(
            bytes_out >= bytes_in,
            "the consumer read everything once at least"
        );
        let size = value(&samples, "spate_partition_size_bytes", &partition(p));
        assert_eq!(size, bytes_in, "nothing else is in the partition's log");
    }
    let expected = [("0", 30.0, 12.0), ("1", 20.0, 5.0)];
    for (p, records, committed) in expected {
        let messages = value(&samples, "spate_partition_messages_in_total", &partition(p));
        assert_eq!(messages, records);
        let end = value(&samples, "spate_partition_log_end_offset", &partition(p));
        assert_eq!(end, records);
        let watermark = value(&samples, "spate_partition_high_watermark", &partition(p));
        assert_eq!(watermark, records);
        let stable = value(
            &samples,
            "spate_partition_last_stable_offset",
            &partition(p),
        );
        assert_eq!(stable, records);
        let start = value(&samples, "spate_partition_log_start_offset", &partition(p));
        assert_eq!(start, 0.0);
        let group = [
            ("group", "metered-group"),
            ("topic", topic),
            ("partition", p),
        ];
        let lag = value(&samples, "spate_consumer_group_lag", &group);
        assert_eq!(
            lag,
            records - committed,
            "lag equals what was left unconsumed"
        );
        let offset = value(&samples, "spate_consumer_group_committed_offset", &group);
        assert_eq!(offset, committed);
    }
    let group = [("group", "metered-group")];
    assert_eq!(
        value(&samples, "spate_consumer_group_lag_sum", &group),
        33.0
    );
    assert_eq!(value(&samples, "spate_consumer_group_members", &group), 0.0);
    let state = [("group", "metered-group"), ("state", "Empty")];
    assert_eq!(value(&samples, "spate_consumer_group_state", &state), 1.0);

    let produce = [("api", "Produce")];
    let produces = value(&samples, "spate_requests_total", &produce);
    assert!(produces >= 6.0, "{produces} produce requests");
    let timed = value(&samples, "spate_request_duration_seconds_count", &produce);
    assert_eq!(timed, produces, "every request is timed");
    let unknown = [("api", "Produce"), ("error_code", "3")];
    assert_eq!(value(&samples, "spate_request_errors_total", &unknown), 1.0);
    let closed = |reason| {
        value(
            &samples,
            "spate_connections_closed_total",
            &[("reason", reason)],
        )
    };
    assert!(closed("bad_request") >= 1.0);
    let accepted = value(&samples, "spate_connections_accepted_total", &[]);
    let open = value(&samples, "spate_connections_open", &[]);
    let all_closed: f64 = ["client", "error", "bad_request", "limit"]
        .into_iter()
        .map(closed)
        .sum();
    assert_eq!(open, accepted - all_closed, "open = accepted - closed");
    assert!(open >= 1.0, "our raw connection is open");

    let synced = value(&samples, "spate_log_fsynced_bytes_total", &[]);
    assert!(synced >= (sent[0] + sent[1]) as f64);
    assert!(value(&samples, "spate_log_flushes_total", &[]) >= 5.0);
    assert!(value(&samples, "spate_log_flush_duration_seconds_count", &[]) >= 5.0);
    let memory = value(
        &samples,
        "spate_log_read_bytes_total",
        &[("source", "memory")],
    );
    let disk = value(
        &samples,
        "spate_log_read_bytes_total",
        &[("source", "disk")],
    );
    assert!(memory + disk >= (sent[0] + sent[1]) as f64);
    let ratio = value(&samples, "spate_tail_cache_hit_ratio", &[]);
    assert!((ratio - memory / (memory + disk)).abs() < 1e-9);
    for shard in 0..shards {
        let shard = shard.to_string();
        let label = [("shard", shard.as_str())];
        let busy = value(&samples, "spate_shard_busy_ratio", &label);
        assert!((0.0..=1.0).contains(&busy));
        let probes = value(
            &samples,
            "spate_shard_task_queue_latency_seconds_count",
            &label,
        );
        assert!(probes >= 1.0, "the shard's queue latency is probed");
    }
    assert!(value(&samples, "process_resident_memory_bytes", &[]) > 1e6);
    assert!(value(&samples, "process_open_fds", &[]) >= 3.0);
    let version = [
        ("version", env!("CARGO_PKG_VERSION")),
        ("node", "0"),
        ("shards", common::test_shards().leak()),
    ];
    assert_eq!(value(&samples, "spate_build_info", &version), 1.0);
}

#[test]
fn the_admin_listener_can_be_turned_off() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start_with(data.path(), &["--admin-listen", "off"]);
    assert_eq!(broker.admin, None);
    // The broker serves Kafka clients all the same.
    let script = repo().join("broker/tests/clients/roundtrip_kafka_python.py");
    run_client(
        &repo().join(".venv/bin/python"),
        &[
            script.to_str().expect("utf-8"),
            &broker.address,
            "no-admin",
            "10",
            "none",
        ],
    );
}
