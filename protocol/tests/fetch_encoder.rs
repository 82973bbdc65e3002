//! The zero-copy FetchResponse encoder must write exactly what the generated encoder writes,
//! for every version, and must reference record bytes rather than copy them.

use bytes::{Bytes, BytesMut};
use kafka_protocol::messages::fetch_response::{
    AbortedTransaction, EpochEndOffset, FetchResponse, FetchableTopicResponse, LeaderIdAndEpoch,
    NodeEndpoint, PartitionData, SnapshotId,
};
use kafka_protocol::messages::{ApiKey, BrokerId, ProducerId, ResponseKind, TopicName};
use kafka_protocol::protocol::StrBytes;
use proptest::prelude::*;
use spate_protocol::fetch::{MAX_VERSION, MIN_VERSION};
use spate_protocol::{encode_fetch_response, encode_response};

#[derive(Debug, Clone)]
struct PartitionSpec {
    index: i32,
    high_watermark: i64,
    records: Option<Vec<u8>>,
    aborted: Option<Vec<(i64, i64)>>,
    diverging: bool,
    leader: bool,
    snapshot: bool,
    read_replica: bool,
}

fn partition_spec() -> impl Strategy<Value = PartitionSpec> {
    (
        0_i32..1000,
        -1_i64..1 << 40,
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..300)),
        proptest::option::of(proptest::collection::vec(
            (any::<i64>(), any::<i64>()),
            0..3,
        )),
        (any::<bool>(), any::<bool>(), any::<bool>(), any::<bool>()),
    )
        .prop_map(
            |(
                index,
                high_watermark,
                records,
                aborted,
                (diverging, leader, snapshot, read_replica),
            )| {
                PartitionSpec {
                    index,
                    high_watermark,
                    records,
                    aborted,
                    diverging,
                    leader,
                    snapshot,
                    read_replica,
                }
            },
        )
}

fn build(version: i16, topics: &[(String, Vec<PartitionSpec>)], endpoints: bool) -> FetchResponse {
    let responses = topics
        .iter()
        .enumerate()
        .map(|(i, (name, partitions))| {
            let mut topic = FetchableTopicResponse::default();
            if version < 13 {
                topic.topic = TopicName(StrBytes::from_string(name.clone()));
            } else {
                topic.topic_id = uuid_for(i);
            }
            topic.partitions = partitions
                .iter()
                .map(|spec| partition(version, spec))
                .collect();
            topic
        })
        .collect();
    let mut response = FetchResponse::default()
        .with_throttle_time_ms(7)
        .with_responses(responses);
    if version >= 7 {
        response.error_code = 0;
        response.session_id = 12345;
    }
    if endpoints && version >= 16 {
        response.node_endpoints = vec![
            NodeEndpoint::default()
                .with_node_id(BrokerId(3))
                .with_host(StrBytes::from_static_str("10.0.0.3"))
                .with_port(9092),
            NodeEndpoint::default()
                .with_node_id(BrokerId(4))
                .with_host(StrBytes::from_static_str("b4"))
                .with_port(19092)
                .with_rack(Some(StrBytes::from_static_str("rack-a"))),
        ];
    }
    response
}

fn uuid_for(i: usize) -> uuid::Uuid {
    uuid::Uuid::from_u128(0x1234_5678_9abc_def0_u128 + i as u128)
}

fn partition(version: i16, spec: &PartitionSpec) -> PartitionData {
    let mut data = PartitionData::default()
        .with_partition_index(spec.index)
        .with_high_watermark(spec.high_watermark)
        .with_last_stable_offset(spec.high_watermark)
        .with_log_start_offset(0)
        .with_records(spec.records.clone().map(Bytes::from))
        .with_aborted_transactions(spec.aborted.as_ref().map(|list| {
            list.iter()
                .map(|&(producer, first)| {
                    AbortedTransaction::default()
                        .with_producer_id(ProducerId(producer))
                        .with_first_offset(first)
                })
                .collect()
        }));
    if spec.diverging {
        data.diverging_epoch = EpochEndOffset::default().with_epoch(4).with_end_offset(99);
    }
    if spec.leader {
        data.current_leader = LeaderIdAndEpoch::default()
            .with_leader_id(BrokerId(2))
            .with_leader_epoch(8);
    }
    if spec.snapshot {
        data.snapshot_id = SnapshotId::default().with_end_offset(1000).with_epoch(3);
    }
    if spec.read_replica && version >= 11 {
        data.preferred_read_replica = BrokerId(1);
    }
    data
}

fn generated(version: i16, response: &FetchResponse) -> Vec<u8> {
    let mut out = BytesMut::new();
    encode_response(
        &mut out,
        77,
        ApiKey::Fetch,
        version,
        &ResponseKind::Fetch(response.clone()),
    )
    .expect("generated encoder");
    out.to_vec()
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(48))]

    #[test]
    fn byte_identical_to_the_generated_encoder(
        version in MIN_VERSION..=MAX_VERSION,
        topics in proptest::collection::vec(("[a-z]{1,12}", proptest::collection::vec(partition_spec(), 0..4)), 0..4),
        endpoints in any::<bool>(),
    ) {
        let response = build(version, &topics, endpoints);
        let rope = encode_fetch_response(77, version, &response).expect("zero-copy encoder");
        prop_assert_eq!(rope.len(), rope.to_vec().len());
        prop_assert_eq!(rope.to_vec(), generated(version, &response));
    }
}

#[test]
fn record_chunks_share_the_callers_memory() {
    let records = Bytes::from(vec![0xab_u8; 4096]);
    let topics = vec![("t".to_string(), vec![])];
    for version in MIN_VERSION..=MAX_VERSION {
        let mut response = build(version, &topics, false);
        response.responses[0]
            .partitions
            .push(PartitionData::default().with_records(Some(records.clone())));
        let rope = encode_fetch_response(77, version, &response).expect("encode");
        let shared = rope
            .chunks()
            .iter()
            .any(|chunk| chunk.as_ptr() == records.as_ptr() && chunk.len() == records.len());
        assert!(
            shared,
            "v{version}: the records chunk must be the caller's buffer, not a copy"
        );
        assert_eq!(rope.to_vec(), generated(version, &response), "v{version}");
    }
}

#[test]
fn versions_outside_the_range_and_unknown_tags_are_refused() {
    let response = FetchResponse::default();
    assert!(encode_fetch_response(1, MIN_VERSION - 1, &response).is_err());
    assert!(encode_fetch_response(1, MAX_VERSION + 1, &response).is_err());
    let mut tagged = FetchResponse::default();
    tagged
        .unknown_tagged_fields
        .insert(9, Bytes::from_static(b"x"));
    assert!(encode_fetch_response(1, 12, &tagged).is_err());
    let mut session = FetchResponse::default();
    session.session_id = 5;
    assert!(
        encode_fetch_response(1, 6, &session).is_err(),
        "session ids need v7"
    );
}
