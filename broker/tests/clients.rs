//! Black-box tests: the `spate` binary on a real socket and a real data directory, driven by
//! real Kafka clients (librdkafka through confluent-kafka, kafka-python, KafkaJS) installed
//! by `scripts/install-clients`, and by raw protocol bytes.

mod common;

use bytes::{Buf, Bytes, BytesMut};
use common::{kafkajs, python, repo, run_client, Broker, Raw};
use spate_protocol::encode_request;
use spate_protocol::header::RequestHeader;
use spate_protocol::kafka_protocol::messages::create_topics_request::{
    CreatableTopic, CreateTopicsRequest,
};
use spate_protocol::kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchRequest, FetchTopic,
};
use spate_protocol::kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use spate_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use spate_protocol::kafka_protocol::messages::produce_request::{
    PartitionProduceData, ProduceRequest, TopicProduceData,
};
use spate_protocol::kafka_protocol::messages::{
    ApiKey, ApiVersionsRequest, MetadataRequest, RequestKind, ResponseKind, TopicName,
};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::io::Write;
use std::path::PathBuf;
use std::process::{Command, Stdio};
use std::time::Duration;

#[test]
fn librdkafka_round_trips_with_every_codec_and_acks_mode() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    for (topic, codec, acks) in [
        ("plain", "none", "all"),
        ("gz", "gzip", "all"),
        ("snap", "snappy", "1"),
        ("lz", "lz4", "all"),
        ("zs", "zstd", "all"),
    ] {
        python(
            "roundtrip_librdkafka.py",
            &[&broker.address, topic, "500", codec, acks],
        );
    }
    // acks=0 gets no response; the records still arrive.
    python(
        "roundtrip_librdkafka.py",
        &[&broker.address, "fire-and-forget", "200", "none", "0"],
    );
}

#[test]
fn kafka_python_round_trips() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    python(
        "roundtrip_kafka_python.py",
        &[&broker.address, "kp-plain", "300", "none"],
    );
    python(
        "roundtrip_kafka_python.py",
        &[&broker.address, "kp-gzip", "300", "gzip"],
    );
}

#[test]
fn the_kafkajs_producer_as_users_write_it() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    kafkajs("kafkajs_orders.js", &[&broker.address, "50"]);
    // Read the orders back with librdkafka: 50 of them, in order, keyed by order id.
    let check = repo().join("broker/tests/clients/check_orders.py");
    run_client(
        &repo().join(".venv/bin/python"),
        &[check.to_str().expect("path"), &broker.address, "50"],
    );
}

#[test]
fn acknowledged_records_survive_sigterm_and_sigkill() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    python(
        "roundtrip_librdkafka.py",
        &[
            &broker.address,
            "durable",
            "400",
            "lz4",
            "all",
            "--produce-only",
        ],
    );
    // A clean stop, then a restart: everything is there with the same offsets.
    let status = broker.stop("-TERM");
    assert!(status.success(), "SIGTERM exits cleanly: {status}");
    assert!(data.path().join("durable-0/.clean-shutdown").exists());
    let broker = Broker::start(data.path());
    python(
        "roundtrip_librdkafka.py",
        &[
            &broker.address,
            "durable",
            "400",
            "lz4",
            "all",
            "--consume-only",
        ],
    );
    // Acknowledged (acks=all) records survive SIGKILL too: recovery finds them.
    python(
        "roundtrip_librdkafka.py",
        &[
            &broker.address,
            "killed",
            "400",
            "zstd",
            "all",
            "--produce-only",
        ],
    );
    let broker = broker.restart("-KILL");
    python(
        "roundtrip_librdkafka.py",
        &[
            &broker.address,
            "killed",
            "400",
            "zstd",
            "all",
            "--consume-only",
        ],
    );
    python(
        "roundtrip_librdkafka.py",
        &[
            &broker.address,
            "durable",
            "400",
            "lz4",
            "all",
            "--consume-only",
        ],
    );
}

#[test]
fn raw_bytes_get_kafka_errors_or_a_closed_connection() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let mut raw = Raw::connect(&broker.address);

    // KIP-511: an ApiVersions version beyond ours gets error 35 and our ranges in a v0 body.
    raw.correlation += 1;
    let mut out = BytesMut::new();
    let header = RequestHeader::new(ApiKey::ApiVersions, 4, raw.correlation, Some("raw-test"));
    encode_request(
        &mut out,
        &header,
        &RequestKind::ApiVersions(ApiVersionsRequest::default()),
    )
    .expect("encode");
    raw.send_frame(&out);
    let mut frame = raw.receive().expect("a response");
    assert_eq!(frame.get_i32(), raw.correlation, "v0 response header");
    assert_eq!(frame.get_i16(), 35, "UNSUPPORTED_VERSION");
    let ranges = frame.get_i32();
    assert!(ranges >= 5, "the ranges come along: {ranges}");

    // Metadata auto-creates a topic; an invalid name gets INVALID_TOPIC_EXCEPTION.
    let request = MetadataRequest::default().with_topics(Some(vec![
        spate_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("raw-topic")))),
        spate_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
            .with_name(Some(TopicName(StrBytes::from_static_str("bad/name")))),
    ]));
    let ResponseKind::Metadata(metadata) = raw.call(
        ApiKey::Metadata,
        9,
        RequestKind::Metadata(request.with_allow_auto_topic_creation(true)),
    ) else {
        panic!("not metadata")
    };
    assert_eq!(metadata.topics[0].error_code, 0);
    assert_eq!(metadata.topics[0].partitions.len(), 1);
    assert_eq!(metadata.topics[1].error_code, 17, "INVALID_TOPIC_EXCEPTION");

    // A batch with a broken CRC is CORRUPT_MESSAGE; an unknown topic UNKNOWN_TOPIC_OR_PARTITION.
    let mut builder = spate_model::BatchBuilder::new(spate_model::Compression::None);
    builder
        .push(&spate_model::BuilderRecord {
            value: Some(b"x"),
            ..Default::default()
        })
        .expect("push");
    let mut corrupt = builder.build().expect("build");
    let last = corrupt.len() - 1;
    corrupt[last] ^= 1;
    let produce = |topic: &'static str, records: Vec<u8>| {
        RequestKind::Produce(
            ProduceRequest::default()
                .with_acks(-1)
                .with_timeout_ms(5000)
                .with_topic_data(vec![TopicProduceData::default()
                    .with_name(TopicName(StrBytes::from_static_str(topic)))
                    .with_partition_data(vec![PartitionProduceData::default()
                        .with_index(0)
                        .with_records(Some(Bytes::from(records)))])]),
        )
    };
    let ResponseKind::Produce(response) =
        raw.call(ApiKey::Produce, 7, produce("raw-topic", corrupt))
    else {
        panic!()
    };
    assert_eq!(
        response.responses[0].partition_responses[0].error_code, 2,
        "CORRUPT_MESSAGE"
    );
    let good = builder.build().expect("build");
    let ResponseKind::Produce(response) =
        raw.call(ApiKey::Produce, 7, produce("no-such-topic", good.clone()))
    else {
        panic!()
    };
    assert_eq!(
        response.responses[0].partition_responses[0].error_code, 3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    let good_again = || good.clone();
    let ResponseKind::Produce(response) =
        raw.call(ApiKey::Produce, 9, produce("raw-topic", good.clone()))
    else {
        panic!()
    };
    let partition = &response.responses[0].partition_responses[0];
    assert_eq!(
        (partition.error_code, partition.base_offset),
        (0, 0),
        "a good batch lands at offset 0"
    );

    // acks outside -1..=1 is INVALID_REQUIRED_ACKS; a transactional batch outside any open
    // transaction is INVALID_TXN_STATE, and neither appends anything.
    let mut builder = spate_model::BatchBuilder::new(spate_model::Compression::None);
    builder
        .push(&spate_model::BuilderRecord {
            value: Some(b"y"),
            ..Default::default()
        })
        .expect("push");
    let RequestKind::Produce(bad_acks) = produce("raw-topic", builder.build().expect("build"))
    else {
        panic!()
    };
    let ResponseKind::Produce(response) = raw.call(
        ApiKey::Produce,
        9,
        RequestKind::Produce(bad_acks.with_acks(2)),
    ) else {
        panic!()
    };
    assert_eq!(
        response.responses[0].partition_responses[0].error_code, 21,
        "INVALID_REQUIRED_ACKS"
    );
    let mut transactional = spate_model::BatchBuilder::new(spate_model::Compression::None)
        .producer(
            spate_model::ProducerId(5),
            spate_model::ProducerEpoch(0),
            spate_model::Sequence(0),
        )
        .transactional(true);
    transactional
        .push(&spate_model::BuilderRecord {
            value: Some(b"t"),
            ..Default::default()
        })
        .expect("push");
    let ResponseKind::Produce(response) = raw.call(
        ApiKey::Produce,
        9,
        produce("raw-topic", transactional.build().expect("build")),
    ) else {
        panic!()
    };
    assert_eq!(
        response.responses[0].partition_responses[0].error_code, 48,
        "INVALID_TXN_STATE"
    );
    let ResponseKind::Produce(response) =
        raw.call(ApiKey::Produce, 9, produce("raw-topic", good_again()))
    else {
        panic!()
    };
    assert_eq!(
        response.responses[0].partition_responses[0].base_offset, 1,
        "nothing was appended in between"
    );

    // A frame claiming more than socket.request.max.bytes closes the connection.
    raw.send_frame(&(200 * 1024 * 1024_i32).to_be_bytes());
    assert!(raw.receive().is_none(), "the broker hung up");
    // Garbage in a well-sized frame closes that connection only; the broker still serves.
    let mut raw = Raw::connect(&broker.address);
    raw.send_frame(&[0, 0, 0, 6, 0x7f, 0x7f, 0, 1, 0, 0]);
    assert!(raw.receive().is_none());
    let mut raw = Raw::connect(&broker.address);
    let ResponseKind::ApiVersions(versions) = raw.call(
        ApiKey::ApiVersions,
        3,
        RequestKind::ApiVersions(ApiVersionsRequest::default()),
    ) else {
        panic!()
    };
    assert_eq!(versions.error_code, 0);
    assert!(
        versions
            .api_keys
            .iter()
            .any(|range| range.api_key == 0 && range.min_version == 0),
        "Produce v0 advertised (KAFKA-18659)"
    );
}

#[test]
fn bad_configuration_is_refused_with_a_clear_message() {
    let output = Command::new(env!("CARGO_BIN_EXE_spate"))
        .args(["--listen", "not-an-address"])
        .output()
        .expect("run");
    assert_eq!(output.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&output.stderr).contains("--listen"),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    // A port in use, by another program or by another broker (its shards' listeners share
    // their port with SO_REUSEPORT, but a second broker must not).
    let data = tempfile::tempdir().expect("temp dir");
    let refused = |address: &str, admin: &str, dir: &str| {
        let output = Command::new(env!("CARGO_BIN_EXE_spate"))
            .args(["--listen", address, "--admin-listen", admin, "--data-dir"])
            .arg(data.path().join(dir))
            .output()
            .expect("run");
        let stderr = String::from_utf8_lossy(&output.stderr).into_owned();
        assert!(!output.status.success(), "{address} was accepted");
        assert!(stderr.contains("cannot listen"), "{stderr}");
        stderr
    };
    let holder = std::net::TcpListener::bind("127.0.0.1:0").expect("bind");
    let held = holder.local_addr().expect("addr").to_string();
    refused(&held, "off", "held");
    let first = Broker::start(&data.path().join("first"));
    refused(&first.address, "off", "second");
    // The admin listener's port is the broker's alone too.
    let admin = first.admin.clone().expect("admin listener");
    let stderr = refused("127.0.0.1:0", &admin, "third");
    assert!(stderr.contains("(admin)"), "{stderr}");
    drop(first);
    // A data directory that cannot be created (its parent is a file).
    let blocker = data.path().join("a-file");
    std::fs::write(&blocker, b"not a directory").expect("write");
    let output = Command::new(env!("CARGO_BIN_EXE_spate"))
        .args([
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "off",
            "--data-dir",
        ])
        .arg(blocker.join("data"))
        .output()
        .expect("run");
    assert!(!output.status.success());
    let stderr = String::from_utf8_lossy(&output.stderr);
    assert!(
        stderr.contains("data directory") && stderr.contains("not usable"),
        "{stderr}"
    );
}

/// Every advertised version of every served API answers a well-formed request with a
/// response that decodes (no field set that the version lacks, no closed connection).
#[test]
fn every_served_api_version_answers() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let mut raw = Raw::connect(&broker.address);
    let topic = || TopicName(StrBytes::from_static_str("versions"));
    let mut builder = spate_model::BatchBuilder::new(spate_model::Compression::None);
    builder
        .push(&spate_model::BuilderRecord {
            timestamp_ms: 1_700_000_000_000,
            value: Some(b"v"),
            ..Default::default()
        })
        .expect("push");
    let batch = Bytes::from(builder.build().expect("build"));

    for version in 0..=3 {
        let request = ApiVersionsRequest::default();
        let request = if version >= 3 {
            request
                .with_client_software_name(StrBytes::from_static_str("raw"))
                .with_client_software_version(StrBytes::from_static_str("1"))
        } else {
            request
        };
        let ResponseKind::ApiVersions(response) = raw.call(
            ApiKey::ApiVersions,
            version,
            RequestKind::ApiVersions(request),
        ) else {
            panic!()
        };
        assert_eq!(response.error_code, 0, "ApiVersions v{version}");
    }
    let mut topic_id = None;
    for version in 0..=12 {
        let wanted = MetadataRequestTopic::default().with_name(Some(topic()));
        let mut request = MetadataRequest::default().with_topics(Some(vec![wanted]));
        if version >= 4 {
            request.allow_auto_topic_creation = true;
        }
        let ResponseKind::Metadata(response) =
            raw.call(ApiKey::Metadata, version, RequestKind::Metadata(request))
        else {
            panic!()
        };
        assert_eq!(response.topics[0].error_code, 0, "Metadata v{version}");
        assert_eq!(response.brokers.len(), 1);
        if version >= 10 {
            topic_id = Some(response.topics[0].topic_id);
        }
    }
    let topic_id = topic_id.expect("a topic id from Metadata v10+");
    for version in 3..=9 {
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(topic())
                .with_partition_data(vec![PartitionProduceData::default()
                    .with_index(0)
                    .with_records(Some(batch.clone()))])]);
        let ResponseKind::Produce(response) =
            raw.call(ApiKey::Produce, version, RequestKind::Produce(request))
        else {
            panic!()
        };
        assert_eq!(
            response.responses[0].partition_responses[0].error_code, 0,
            "Produce v{version}"
        );
    }
    for version in 4..=13 {
        let mut wanted = FetchTopic::default().with_partitions(vec![FetchPartition::default()
            .with_partition(0)
            .with_fetch_offset(0)
            .with_partition_max_bytes(1 << 20)]);
        if version >= 13 {
            wanted.topic_id = topic_id;
        } else {
            wanted.topic = topic();
        }
        let request = FetchRequest::default()
            .with_max_wait_ms(100)
            .with_min_bytes(1)
            .with_max_bytes(1 << 20)
            .with_topics(vec![wanted]);
        let ResponseKind::Fetch(response) =
            raw.call(ApiKey::Fetch, version, RequestKind::Fetch(request))
        else {
            panic!()
        };
        let partition = &response.responses[0].partitions[0];
        assert_eq!(partition.error_code, 0, "Fetch v{version}");
        assert!(
            partition.records.as_ref().is_some_and(|r| !r.is_empty()),
            "Fetch v{version} returns the batches"
        );
        assert_eq!(partition.high_watermark, 7, "seven batches produced");
    }
    for version in 1..=7 {
        for timestamp in [-2, -1, 1_700_000_000_000] {
            let request = ListOffsetsRequest::default()
                .with_replica_id(spate_protocol::kafka_protocol::messages::BrokerId(-1))
                .with_topics(vec![ListOffsetsTopic::default()
                    .with_name(topic())
                    .with_partitions(vec![ListOffsetsPartition::default()
                        .with_partition_index(0)
                        .with_timestamp(timestamp)])]);
            let ResponseKind::ListOffsets(response) = raw.call(
                ApiKey::ListOffsets,
                version,
                RequestKind::ListOffsets(request),
            ) else {
                panic!()
            };
            let partition = &response.topics[0].partitions[0];
            assert_eq!(
                partition.error_code, 0,
                "ListOffsets v{version} ts {timestamp}"
            );
            let expected = match timestamp {
                -2 => 0,
                -1 => 7,
                _ => 0,
            };
            assert_eq!(
                partition.offset, expected,
                "ListOffsets v{version} ts {timestamp}"
            );
        }
    }
    for version in 2..=4 {
        use spate_protocol::kafka_protocol::messages::offset_for_leader_epoch_request::{
            OffsetForLeaderEpochRequest, OffsetForLeaderPartition, OffsetForLeaderTopic,
        };
        let request = OffsetForLeaderEpochRequest::default().with_topics(vec![
            OffsetForLeaderTopic::default()
                .with_topic(topic())
                .with_partitions(vec![OffsetForLeaderPartition::default()
                    .with_partition(0)
                    .with_current_leader_epoch(0)
                    .with_leader_epoch(0)]),
        ]);
        let ResponseKind::OffsetForLeaderEpoch(response) = raw.call(
            ApiKey::OffsetForLeaderEpoch,
            version,
            RequestKind::OffsetForLeaderEpoch(request),
        ) else {
            panic!()
        };
        let partition = &response.topics[0].partitions[0];
        assert_eq!(
            (
                partition.error_code,
                partition.leader_epoch,
                partition.end_offset
            ),
            (0, 0, 7),
            "OffsetForLeaderEpoch v{version}"
        );
    }
    for version in 0..=1 {
        use spate_protocol::kafka_protocol::messages::DescribeClusterRequest;
        let ResponseKind::DescribeCluster(response) = raw.call(
            ApiKey::DescribeCluster,
            version,
            RequestKind::DescribeCluster(DescribeClusterRequest::default()),
        ) else {
            panic!()
        };
        assert_eq!(
            (response.error_code, response.brokers.len()),
            (0, 1),
            "DescribeCluster v{version}"
        );
    }
    for version in 0..=2 {
        use spate_protocol::kafka_protocol::messages::delete_records_request::{
            DeleteRecordsPartition, DeleteRecordsRequest, DeleteRecordsTopic,
        };
        let request = DeleteRecordsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![DeleteRecordsTopic::default()
                .with_name(topic())
                .with_partitions(vec![DeleteRecordsPartition::default()
                    .with_partition_index(0)
                    .with_offset(i64::from(version) + 1)])]);
        let ResponseKind::DeleteRecords(response) = raw.call(
            ApiKey::DeleteRecords,
            version,
            RequestKind::DeleteRecords(request),
        ) else {
            panic!()
        };
        let partition = &response.topics[0].partitions[0];
        assert_eq!(
            (partition.error_code, partition.low_watermark),
            (0, i64::from(version) + 1),
            "DeleteRecords v{version}"
        );
    }
    for version in 0..=3 {
        use spate_protocol::kafka_protocol::messages::create_partitions_request::{
            CreatePartitionsRequest, CreatePartitionsTopic,
        };
        let request = CreatePartitionsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![CreatePartitionsTopic::default()
                .with_name(topic())
                .with_count(2 + i32::from(version))]);
        let ResponseKind::CreatePartitions(response) = raw.call(
            ApiKey::CreatePartitions,
            version,
            RequestKind::CreatePartitions(request),
        ) else {
            panic!()
        };
        assert_eq!(
            response.results[0].error_code, 0,
            "CreatePartitions v{version}"
        );
    }
    for version in 1..=4 {
        use spate_protocol::kafka_protocol::messages::describe_configs_request::{
            DescribeConfigsRequest, DescribeConfigsResource,
        };
        let request = DescribeConfigsRequest::default().with_resources(vec![
            DescribeConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("versions")),
        ]);
        let request = if version >= 3 {
            request.with_include_documentation(true)
        } else {
            request
        };
        let ResponseKind::DescribeConfigs(response) = raw.call(
            ApiKey::DescribeConfigs,
            version,
            RequestKind::DescribeConfigs(request),
        ) else {
            panic!()
        };
        assert_eq!(
            response.results[0].error_code, 0,
            "DescribeConfigs v{version}"
        );
        assert!(
            response.results[0]
                .configs
                .iter()
                .any(|c| c.name.as_str() == "retention.ms"),
            "DescribeConfigs v{version}"
        );
    }
    for version in 0..=2 {
        use spate_protocol::kafka_protocol::messages::alter_configs_request::{
            AlterConfigsRequest, AlterConfigsResource, AlterableConfig,
        };
        let request =
            AlterConfigsRequest::default().with_resources(vec![AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("versions"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("retention.ms"))
                    .with_value(Some(StrBytes::from_string(format!(
                        "{}",
                        100_000 + i64::from(version)
                    ))))])]);
        let ResponseKind::AlterConfigs(response) = raw.call(
            ApiKey::AlterConfigs,
            version,
            RequestKind::AlterConfigs(request),
        ) else {
            panic!()
        };
        assert_eq!(
            response.responses[0].error_code, 0,
            "AlterConfigs v{version}"
        );
    }
    for version in 0..=1 {
        use spate_protocol::kafka_protocol::messages::incremental_alter_configs_request::{
            AlterConfigsResource, AlterableConfig, IncrementalAlterConfigsRequest,
        };
        let request = IncrementalAlterConfigsRequest::default().with_resources(vec![
            AlterConfigsResource::default()
                .with_resource_type(2)
                .with_resource_name(StrBytes::from_static_str("versions"))
                .with_configs(vec![AlterableConfig::default()
                    .with_name(StrBytes::from_static_str("bogus.key"))
                    .with_config_operation(0)
                    .with_value(Some(StrBytes::from_static_str("1")))]),
        ]);
        let ResponseKind::IncrementalAlterConfigs(response) = raw.call(
            ApiKey::IncrementalAlterConfigs,
            version,
            RequestKind::IncrementalAlterConfigs(request),
        ) else {
            panic!()
        };
        assert_eq!(
            response.responses[0].error_code, 40,
            "IncrementalAlterConfigs v{version}: INVALID_CONFIG"
        );
    }
    // Max timestamp (-3) is a v7 feature. Every batch has the same timestamp and DeleteRecords
    // moved the log start to 3 above, so the answer is the first record from there.
    for version in [6, 7] {
        let request = ListOffsetsRequest::default()
            .with_replica_id(spate_protocol::kafka_protocol::messages::BrokerId(-1))
            .with_topics(vec![ListOffsetsTopic::default()
                .with_name(topic())
                .with_partitions(vec![ListOffsetsPartition::default()
                    .with_partition_index(0)
                    .with_timestamp(-3)])]);
        let ResponseKind::ListOffsets(response) = raw.call(
            ApiKey::ListOffsets,
            version,
            RequestKind::ListOffsets(request),
        ) else {
            panic!()
        };
        let partition = &response.topics[0].partitions[0];
        if version == 7 {
            assert_eq!(
                (partition.error_code, partition.offset, partition.timestamp),
                (0, 3, 1_700_000_000_000)
            );
        } else {
            assert_eq!(partition.error_code, 35, "UNSUPPORTED_VERSION before v7");
        }
    }
    for version in 1..=4 {
        use spate_protocol::kafka_protocol::messages::DescribeLogDirsRequest;
        let ResponseKind::DescribeLogDirs(response) = raw.call(
            ApiKey::DescribeLogDirs,
            version,
            RequestKind::DescribeLogDirs(DescribeLogDirsRequest::default().with_topics(None)),
        ) else {
            panic!()
        };
        let dir = &response.results[0];
        let topic = dir
            .topics
            .iter()
            .find(|t| t.name.0.as_str() == "versions")
            .expect("the topic's dir");
        assert!(
            topic.partitions[0].partition_size > 0,
            "DescribeLogDirs v{version}: sizes"
        );
    }
    {
        use spate_protocol::kafka_protocol::messages::describe_topic_partitions_request::{
            Cursor, DescribeTopicPartitionsRequest, TopicRequest,
        };
        // Page through the topic's partitions two at a time with the cursor.
        let mut seen = Vec::new();
        let mut cursor = None;
        for _ in 0..10 {
            let request = DescribeTopicPartitionsRequest::default()
                .with_topics(vec![TopicRequest::default().with_name(topic())])
                .with_response_partition_limit(2)
                .with_cursor(cursor.take());
            let ResponseKind::DescribeTopicPartitions(response) = raw.call(
                ApiKey::DescribeTopicPartitions,
                0,
                RequestKind::DescribeTopicPartitions(request),
            ) else {
                panic!()
            };
            seen.extend(
                response.topics[0]
                    .partitions
                    .iter()
                    .map(|p| p.partition_index),
            );
            match response.next_cursor {
                Some(next) => {
                    cursor = Some(
                        Cursor::default()
                            .with_topic_name(next.topic_name)
                            .with_partition_index(next.partition_index),
                    )
                }
                None => break,
            }
        }
        assert_eq!(
            seen,
            (0..seen.len() as i32).collect::<Vec<_>>(),
            "every partition once, in order"
        );
        assert!(
            seen.len() >= 4,
            "CreatePartitions raised the count: {seen:?}"
        );
    }
    for version in 2..=7 {
        let name = format!("created-v{version}");
        let request = CreateTopicsRequest::default()
            .with_timeout_ms(5000)
            .with_topics(vec![CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_string(name.clone())))
                .with_num_partitions(3)
                .with_replication_factor(1)]);
        let ResponseKind::CreateTopics(response) = raw.call(
            ApiKey::CreateTopics,
            version,
            RequestKind::CreateTopics(request),
        ) else {
            panic!()
        };
        assert_eq!(response.topics[0].error_code, 0, "CreateTopics v{version}");
    }
    for version in 1..=6 {
        use spate_protocol::kafka_protocol::messages::delete_topics_request::{
            DeleteTopicState, DeleteTopicsRequest,
        };
        let name = TopicName(StrBytes::from_string(format!("created-v{}", version + 1)));
        let request = if version >= 6 {
            DeleteTopicsRequest::default()
                .with_topics(vec![DeleteTopicState::default().with_name(Some(name))])
        } else {
            DeleteTopicsRequest::default().with_topic_names(vec![name])
        };
        let request = request.with_timeout_ms(5000);
        let ResponseKind::DeleteTopics(response) = raw.call(
            ApiKey::DeleteTopics,
            version,
            RequestKind::DeleteTopics(request),
        ) else {
            panic!()
        };
        assert_eq!(
            response.responses[0].error_code, 0,
            "DeleteTopics v{version}"
        );
    }
}

/// Debian's kcat links librdkafka 2.0.2: an old client on the non-flexible versions.
#[test]
fn kcat_with_old_librdkafka_produces_and_consumes() {
    let kcat = ["/usr/bin/kcat", "/usr/local/bin/kcat"]
        .into_iter()
        .map(PathBuf::from)
        .find(|p| p.exists());
    let kcat =
        kcat.expect("kcat is missing: run scripts/install-clients as root (scripts/test does)");
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let lines: Vec<String> = (0..100).map(|i| format!("line {i}")).collect();
    let mut producer = Command::new(&kcat)
        .args(["-b", &broker.address, "-P", "-t", "kcat-lines"])
        .stdin(Stdio::piped())
        .spawn()
        .expect("kcat -P");
    producer
        .stdin
        .take()
        .expect("stdin")
        .write_all(format!("{}\n", lines.join("\n")).as_bytes())
        .expect("write lines");
    assert!(producer.wait().expect("kcat -P").success());
    let output = Command::new(&kcat)
        .args([
            "-b",
            &broker.address,
            "-C",
            "-t",
            "kcat-lines",
            "-o",
            "beginning",
            "-e",
            "-q",
        ])
        .output()
        .expect("kcat -C");
    assert!(
        output.status.success(),
        "{}",
        String::from_utf8_lossy(&output.stderr)
    );
    let read: Vec<&str> = std::str::from_utf8(&output.stdout)
        .expect("utf-8")
        .lines()
        .collect();
    assert_eq!(read, lines);
}

#[test]
fn librdkafka_admin_client_manages_topics_and_records() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    python("admin_librdkafka.py", &[&broker.address]);
    // Deleted topics are gone from disk, and stay gone after a restart.
    assert!(!data.path().join("admin-a-0").exists());
    let broker = broker.restart("-KILL");
    let names: Vec<String> = topics(&mut Raw::connect(&broker.address))
        .into_iter()
        .map(|(name, _)| name)
        .collect();
    assert!(!names.contains(&"admin-a".to_string()), "{names:?}");
}

/// Every topic's name and partition count, from Metadata (internal topics left out).
fn topics(raw: &mut Raw) -> Vec<(String, usize)> {
    let ResponseKind::Metadata(metadata) = raw.call(
        ApiKey::Metadata,
        9,
        RequestKind::Metadata(MetadataRequest::default().with_topics(None)),
    ) else {
        panic!()
    };
    metadata
        .topics
        .iter()
        .filter(|t| !t.is_internal)
        .map(|t| {
            let name = t.name.as_ref().map(|n| n.0.to_string()).unwrap_or_default();
            (name, t.partitions.len())
        })
        .collect()
}

/// A topic's config value, from DescribeConfigs.
fn topic_config(raw: &mut Raw, topic: &str, key: &str) -> Option<String> {
    use spate_protocol::kafka_protocol::messages::describe_configs_request::{
        DescribeConfigsRequest, DescribeConfigsResource,
    };
    let request =
        DescribeConfigsRequest::default().with_resources(vec![DescribeConfigsResource::default()
            .with_resource_type(2)
            .with_resource_name(StrBytes::from_string(topic.to_string()))
            .with_configuration_keys(Some(vec![StrBytes::from_string(key.to_string())]))]);
    let ResponseKind::DescribeConfigs(described) = raw.call(
        ApiKey::DescribeConfigs,
        4,
        RequestKind::DescribeConfigs(request),
    ) else {
        panic!()
    };
    let config = described.results.first()?.configs.first()?;
    config.value.as_ref().map(|v| v.to_string())
}

#[test]
fn topic_configs_are_stored_described_altered_and_honoured() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    python("configs_librdkafka.py", &[&broker.address]);
    // The overrides survive a restart.
    let broker = broker.restart("-TERM");
    let mut raw = Raw::connect(&broker.address);
    let kept = |raw: &mut Raw, key| topic_config(raw, "cfg", key);
    assert_eq!(kept(&mut raw, "max.message.bytes").as_deref(), Some("2000"));
    assert_eq!(
        kept(&mut raw, "message.timestamp.type").as_deref(),
        Some("LogAppendTime")
    );
}

#[test]
fn sixty_four_partitions_one_mebibyte_records_and_replay_by_timestamp() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    python("scale_librdkafka.py", &[&broker.address]);
}

/// A long-polling fetch on an empty partition answers when data arrives, not at its
/// deadline (and with the data).
#[test]
fn a_long_poll_wakes_when_records_arrive() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let topic = || TopicName(StrBytes::from_static_str("waiting"));
    let mut admin = Raw::connect(&broker.address);
    let metadata = MetadataRequest::default()
        .with_topics(Some(vec![spate_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic::default().with_name(Some(topic()))]))
        .with_allow_auto_topic_creation(true);
    admin.call(ApiKey::Metadata, 9, RequestKind::Metadata(metadata));

    let address = broker.address.clone();
    let producer = std::thread::spawn(move || {
        std::thread::sleep(Duration::from_millis(300));
        produce_one(&address, "waiting", 0, b"wake up");
    });
    let started = std::time::Instant::now();
    let request = FetchRequest::default()
        .with_max_wait_ms(10_000)
        .with_min_bytes(1)
        .with_max_bytes(1 << 20)
        .with_topics(vec![FetchTopic::default()
            .with_topic(topic())
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let ResponseKind::Fetch(response) = admin.call(ApiKey::Fetch, 11, RequestKind::Fetch(request))
    else {
        panic!()
    };
    let waited = started.elapsed();
    producer.join().expect("producer");
    let records = response.responses[0].partitions[0]
        .records
        .clone()
        .expect("records");
    assert!(!records.is_empty(), "the fetch returned the new batch");
    assert!(
        waited < Duration::from_secs(8),
        "woke on the append, not at the 10 s deadline ({waited:?})"
    );
}

fn batch_with(value: &[u8]) -> Bytes {
    let mut builder = spate_model::BatchBuilder::new(spate_model::Compression::None);
    builder
        .push(&spate_model::BuilderRecord {
            value: Some(value),
            ..Default::default()
        })
        .expect("push");
    Bytes::from(builder.build().expect("build"))
}

/// Produces one record with acks=1 on a connection of its own.
fn produce_one(address: &str, topic: &str, partition: i32, value: &[u8]) {
    let request = ProduceRequest::default()
        .with_acks(1)
        .with_timeout_ms(5000)
        .with_topic_data(vec![TopicProduceData::default()
            .with_name(TopicName(StrBytes::from_string(topic.to_string())))
            .with_partition_data(vec![PartitionProduceData::default()
                .with_index(partition)
                .with_records(Some(batch_with(value)))])]);
    let ResponseKind::Produce(response) =
        Raw::connect(address).call(ApiKey::Produce, 7, RequestKind::Produce(request))
    else {
        panic!("not a produce response")
    };
    assert_eq!(response.responses[0].partition_responses[0].error_code, 0);
}

fn holds(haystack: &[u8], needle: &[u8]) -> bool {
    haystack.windows(needle.len()).any(|w| w == needle)
}

fn fetch_of(topic: &str, offsets: &[(i32, i64)], max_wait_ms: i32, max_bytes: i32) -> RequestKind {
    let partitions = offsets
        .iter()
        .map(|&(partition, offset)| {
            FetchPartition::default()
                .with_partition(partition)
                .with_fetch_offset(offset)
                .with_partition_max_bytes(1 << 20)
        })
        .collect();
    RequestKind::Fetch(
        FetchRequest::default()
            .with_max_wait_ms(max_wait_ms)
            .with_min_bytes(1)
            .with_max_bytes(max_bytes)
            .with_topics(vec![FetchTopic::default()
                .with_topic(TopicName(StrBytes::from_string(topic.to_string())))
                .with_partitions(partitions)]),
    )
}

/// One acks=all Produce touching 512 partitions: each shard flushes hundreds of logs for
/// it at once. (Polling every pending flush on every wake-up once overflowed glommio's
/// waker count and panicked the shard.)
#[test]
fn a_produce_spanning_hundreds_of_partitions_is_answered() {
    const PARTITIONS: i32 = 512;
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let mut raw = Raw::connect(&broker.address);
    raw.create_topic("wide", PARTITIONS);
    for round in 0..3 {
        let partitions = (0..PARTITIONS)
            .map(|p| {
                PartitionProduceData::default()
                    .with_index(p)
                    .with_records(Some(batch_with(format!("r{round}p{p}").as_bytes())))
            })
            .collect();
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(30_000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("wide")))
                .with_partition_data(partitions)]);
        let ResponseKind::Produce(produced) =
            raw.call(ApiKey::Produce, 9, RequestKind::Produce(request))
        else {
            panic!("not a Produce response")
        };
        let answers = &produced.responses[0].partition_responses;
        assert_eq!(answers.len(), PARTITIONS as usize);
        for answer in answers {
            assert_eq!(answer.error_code, 0, "partition {}", answer.index);
            assert_eq!(answer.base_offset, round);
        }
    }
}

/// With two shards a topic's partitions live on both: one Produce, Fetch or ListOffsets
/// naming partitions in a scrambled order gets every partition's answer, in request order,
/// and a long poll wakes for an append on either shard.
#[test]
fn requests_spanning_shards_are_answered_in_request_order() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let mut raw = Raw::connect(&broker.address);
    raw.create_topic("spread", 6);

    let order = [5, 0, 3, 2, 4, 1];
    for round in 0..2_i64 {
        let partitions = order
            .iter()
            .map(|&p| {
                PartitionProduceData::default()
                    .with_index(p)
                    .with_records(Some(batch_with(format!("p{p}-r{round}").as_bytes())))
            })
            .collect();
        let request = ProduceRequest::default()
            .with_acks(-1)
            .with_timeout_ms(5000)
            .with_topic_data(vec![TopicProduceData::default()
                .with_name(TopicName(StrBytes::from_static_str("spread")))
                .with_partition_data(partitions)]);
        let ResponseKind::Produce(response) =
            raw.call(ApiKey::Produce, 7, RequestKind::Produce(request))
        else {
            panic!()
        };
        let answers = &response.responses[0].partition_responses;
        let indexes: Vec<i32> = answers.iter().map(|a| a.index).collect();
        assert_eq!(indexes, order, "answers in request order");
        for answer in answers {
            assert_eq!(answer.error_code, 0, "partition {}", answer.index);
            assert_eq!(answer.base_offset, round, "partition {}", answer.index);
        }
    }

    let offsets: Vec<(i32, i64)> = [4, 1, 0, 5, 2, 3].iter().map(|&p| (p, 0)).collect();
    let ResponseKind::Fetch(response) =
        raw.call(ApiKey::Fetch, 11, fetch_of("spread", &offsets, 0, 1 << 20))
    else {
        panic!()
    };
    let partitions = &response.responses[0].partitions;
    let indexes: Vec<i32> = partitions.iter().map(|p| p.partition_index).collect();
    assert_eq!(
        indexes,
        [4, 1, 0, 5, 2, 3],
        "fetch answers in request order"
    );
    for partition in partitions {
        let p = partition.partition_index;
        let records = partition.records.clone().unwrap_or_default();
        assert_eq!(partition.error_code, 0, "partition {p}");
        assert_eq!(partition.high_watermark, 2, "partition {p}");
        for round in 0..2 {
            let value = format!("p{p}-r{round}");
            assert!(
                holds(&records, value.as_bytes()),
                "partition {p} holds {value}"
            );
        }
    }

    // A one-byte response limit: the first partition still gets a whole batch, the others
    // none (whole batches only), whichever shards they live on.
    let ResponseKind::Fetch(response) =
        raw.call(ApiKey::Fetch, 11, fetch_of("spread", &offsets, 0, 1))
    else {
        panic!()
    };
    let sizes: Vec<usize> = response.responses[0]
        .partitions
        .iter()
        .map(|p| p.records.as_ref().map_or(0, Bytes::len))
        .collect();
    assert!(sizes[0] > 0, "the first partition gets a batch: {sizes:?}");
    assert!(sizes[1..].iter().all(|&s| s == 0), "{sizes:?}");

    let request = ListOffsetsRequest::default()
        .with_replica_id(spate_protocol::kafka_protocol::messages::BrokerId(-1))
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("spread")))
            .with_partitions(
                [3, 0, 5, 1, 4, 2]
                    .iter()
                    .map(|&p| {
                        ListOffsetsPartition::default()
                            .with_partition_index(p)
                            .with_timestamp(-1)
                    })
                    .collect(),
            )]);
    let ResponseKind::ListOffsets(response) =
        raw.call(ApiKey::ListOffsets, 5, RequestKind::ListOffsets(request))
    else {
        panic!()
    };
    let latest: Vec<(i32, i64)> = response.topics[0]
        .partitions
        .iter()
        .map(|p| (p.partition_index, p.offset))
        .collect();
    assert_eq!(latest, [(3, 2), (0, 2), (5, 2), (1, 2), (4, 2), (2, 2)]);

    // Long polls at the end of every partition wake for an append to any one of them.
    for woken in [0, 1] {
        let address = broker.address.clone();
        let producer = std::thread::spawn(move || {
            std::thread::sleep(Duration::from_millis(300));
            produce_one(&address, "spread", woken, b"wake");
        });
        let ends: Vec<(i32, i64)> = (0..6)
            .map(|p| (p, if p == 0 && woken == 1 { 3 } else { 2 }))
            .collect();
        let started = std::time::Instant::now();
        let ResponseKind::Fetch(response) = raw.call(
            ApiKey::Fetch,
            11,
            fetch_of("spread", &ends, 10_000, 1 << 20),
        ) else {
            panic!()
        };
        let waited = started.elapsed();
        producer.join().expect("producer");
        let got = &response.responses[0].partitions;
        let with_data: Vec<i32> = got
            .iter()
            .filter(|p| p.records.as_ref().is_some_and(|r| !r.is_empty()))
            .map(|p| p.partition_index)
            .collect();
        assert_eq!(with_data, [woken], "only the appended partition has data");
        assert!(
            waited < Duration::from_secs(8),
            "woke on the append to partition {woken}, not at the deadline ({waited:?})"
        );
    }
}

/// Topic changes are recorded in the metadata log and replayed after a SIGKILL: creations,
/// configs, added partitions and deletions. A data directory from before the log (with a
/// `topics.json`) is imported once.
#[test]
fn topic_changes_survive_a_crash_through_the_metadata_log() {
    use spate_protocol::kafka_protocol::messages::create_partitions_request::{
        CreatePartitionsRequest, CreatePartitionsTopic,
    };
    use spate_protocol::kafka_protocol::messages::create_topics_request::CreatableTopicConfig;
    use spate_protocol::kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
    let data = tempfile::tempdir().expect("temp dir");
    std::fs::write(
        data.path().join("topics.json"),
        r#"{"topics":[{"name":"legacy","id":"6f1c2a9e-1b7d-4c3e-9a55-0d2f7e8b9c10","partitions":2,"configs":{}}]}"#,
    )
    .expect("write topics.json");
    let broker = Broker::start(data.path());
    let mut raw = Raw::connect(&broker.address);
    let request = CreateTopicsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![
            CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("kept")))
                .with_num_partitions(2)
                .with_replication_factor(1)
                .with_configs(vec![CreatableTopicConfig::default()
                    .with_name(StrBytes::from_static_str("retention.ms"))
                    .with_value(Some(StrBytes::from_static_str("1234567")))]),
            CreatableTopic::default()
                .with_name(TopicName(StrBytes::from_static_str("dropped")))
                .with_num_partitions(1)
                .with_replication_factor(1),
        ]);
    raw.call(ApiKey::CreateTopics, 5, RequestKind::CreateTopics(request));
    let request = CreatePartitionsRequest::default()
        .with_timeout_ms(5000)
        .with_topics(vec![CreatePartitionsTopic::default()
            .with_name(TopicName(StrBytes::from_static_str("kept")))
            .with_count(5)]);
    raw.call(
        ApiKey::CreatePartitions,
        3,
        RequestKind::CreatePartitions(request),
    );
    let request = DeleteTopicsRequest::default()
        .with_topic_names(vec![TopicName(StrBytes::from_static_str("dropped"))]);
    raw.call(ApiKey::DeleteTopics, 4, RequestKind::DeleteTopics(request));
    drop(raw);

    let broker = broker.restart("-KILL");
    assert!(
        data.path().join("topics.json.imported").exists(),
        "the old topic list was imported and set aside"
    );
    let mut raw = Raw::connect(&broker.address);
    assert_eq!(
        topics(&mut raw),
        [("kept".to_string(), 5), ("legacy".to_string(), 2)]
    );
    assert_eq!(
        topic_config(&mut raw, "kept", "retention.ms").as_deref(),
        Some("1234567")
    );
}
