//! Transactions, black box: the coordinator's answers over raw requests (fencing, unknown
//! partitions, state errors, timeouts), what `read_committed` fetches see, and real
//! clients (confluent-kafka, KafkaJS) committing and aborting, processing exactly once
//! across a SIGKILL of the processor, and across a SIGKILL of the broker.

mod common;

use bytes::Bytes;
use common::{kafkajs, produce_request, python, repo, Broker, Raw};
use spate_protocol::kafka_protocol::messages::add_partitions_to_txn_request::{
    AddPartitionsToTxnRequest, AddPartitionsToTxnTopic,
};
use spate_protocol::kafka_protocol::messages::end_txn_request::EndTxnRequest;
use spate_protocol::kafka_protocol::messages::fetch_request::{
    FetchPartition, FetchRequest, FetchTopic,
};
use spate_protocol::kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use spate_protocol::kafka_protocol::messages::list_offsets_request::{
    ListOffsetsPartition, ListOffsetsRequest, ListOffsetsTopic,
};
use spate_protocol::kafka_protocol::messages::{
    ApiKey, ProducerId, RequestKind, ResponseKind, TopicName, TransactionalId,
};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use std::io::{BufRead, BufReader};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const TOPIC: &str = "txn-raw";

fn name(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn init(raw: &mut Raw, id: &str, timeout_ms: i32) -> (i16, i64, i16) {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(name(id))))
        .with_transaction_timeout_ms(timeout_ms)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let ResponseKind::InitProducerId(response) = raw.call(
        ApiKey::InitProducerId,
        4,
        RequestKind::InitProducerId(request),
    ) else {
        panic!("not an InitProducerId response")
    };
    (
        response.error_code,
        response.producer_id.0,
        response.producer_epoch,
    )
}

/// AddPartitionsToTxn v3: the error code of each asked partition, in order.
fn add(raw: &mut Raw, id: &str, producer: (i64, i16), partitions: &[(&str, i32)]) -> Vec<i16> {
    let topics = partitions
        .iter()
        .map(|(topic, partition)| {
            AddPartitionsToTxnTopic::default()
                .with_name(TopicName(name(topic)))
                .with_partitions(vec![*partition])
        })
        .collect();
    let request = AddPartitionsToTxnRequest::default()
        .with_v3_and_below_transactional_id(TransactionalId(name(id)))
        .with_v3_and_below_producer_id(ProducerId(producer.0))
        .with_v3_and_below_producer_epoch(producer.1)
        .with_v3_and_below_topics(topics);
    let ResponseKind::AddPartitionsToTxn(response) = raw.call(
        ApiKey::AddPartitionsToTxn,
        3,
        RequestKind::AddPartitionsToTxn(request),
    ) else {
        panic!("not an AddPartitionsToTxn response")
    };
    response
        .results_by_topic_v3_and_below
        .iter()
        .flat_map(|t| {
            t.results_by_partition
                .iter()
                .map(|p| p.partition_error_code)
        })
        .collect()
}

fn end(raw: &mut Raw, id: &str, producer: (i64, i16), commit: bool) -> i16 {
    let request = EndTxnRequest::default()
        .with_transactional_id(TransactionalId(name(id)))
        .with_producer_id(ProducerId(producer.0))
        .with_producer_epoch(producer.1)
        .with_committed(commit);
    let ResponseKind::EndTxn(response) = raw.call(ApiKey::EndTxn, 3, RequestKind::EndTxn(request))
    else {
        panic!("not an EndTxn response")
    };
    response.error_code
}

/// Produces one batch of `values` built by `builder` to partition 0, in transactional id
/// `id`'s name if given: (error, base offset).
fn send(
    raw: &mut Raw,
    mut builder: spate_model::BatchBuilder,
    values: &[&[u8]],
    id: Option<&str>,
) -> (i16, i64) {
    for value in values {
        builder
            .push(&spate_model::BuilderRecord {
                value: Some(value),
                ..Default::default()
            })
            .expect("push");
    }
    let records = Bytes::from(builder.build().expect("build"));
    let RequestKind::Produce(request) = produce_request(TOPIC, 0, records) else {
        unreachable!()
    };
    let request = request.with_transactional_id(id.map(|id| TransactionalId(name(id))));
    let ResponseKind::Produce(response) =
        raw.call(ApiKey::Produce, 7, RequestKind::Produce(request))
    else {
        panic!("not a produce response")
    };
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

/// Produces one transactional batch of `values` as `id`'s producer: (error, base offset).
fn produce(
    raw: &mut Raw,
    id: &str,
    producer: (i64, i16),
    sequence: i32,
    values: &[&[u8]],
) -> (i16, i64) {
    let builder = spate_model::BatchBuilder::new(spate_model::Compression::None)
        .producer(
            spate_model::ProducerId(producer.0),
            spate_model::ProducerEpoch(producer.1),
            spate_model::Sequence(sequence),
        )
        .transactional(true);
    send(raw, builder, values, Some(id))
}

/// A plain (non-transactional) record: its offset.
fn produce_plain(raw: &mut Raw, value: &[u8]) -> i64 {
    let builder = spate_model::BatchBuilder::new(spate_model::Compression::None);
    let (code, offset) = send(raw, builder, &[value], None);
    assert_eq!(code, 0);
    offset
}

/// What a fetch from offset 0 at `isolation` sees: (high watermark, last stable offset,
/// record bytes, aborted transactions as (producer id, first offset)).
fn fetch(raw: &mut Raw, isolation: i8) -> (i64, i64, usize, Vec<(i64, i64)>) {
    let request = FetchRequest::default()
        .with_replica_id(spate_protocol::kafka_protocol::messages::BrokerId(-1))
        .with_max_wait_ms(0)
        .with_min_bytes(0)
        .with_max_bytes(1 << 20)
        .with_isolation_level(isolation)
        .with_topics(vec![FetchTopic::default()
            .with_topic(TopicName(name(TOPIC)))
            .with_partitions(vec![FetchPartition::default()
                .with_partition(0)
                .with_fetch_offset(0)
                .with_partition_max_bytes(1 << 20)])]);
    let ResponseKind::Fetch(response) = raw.call(ApiKey::Fetch, 11, RequestKind::Fetch(request))
    else {
        panic!("not a fetch response")
    };
    let partition = &response.responses[0].partitions[0];
    assert_eq!(partition.error_code, 0);
    let aborted = partition
        .aborted_transactions
        .iter()
        .flatten()
        .map(|a| (a.producer_id.0, a.first_offset))
        .collect();
    (
        partition.high_watermark,
        partition.last_stable_offset,
        partition.records.as_ref().map_or(0, Bytes::len),
        aborted,
    )
}

/// ListOffsets latest at `isolation`.
fn latest(raw: &mut Raw, isolation: i8) -> i64 {
    let request = ListOffsetsRequest::default()
        .with_replica_id(spate_protocol::kafka_protocol::messages::BrokerId(-1))
        .with_isolation_level(isolation)
        .with_topics(vec![ListOffsetsTopic::default()
            .with_name(TopicName(name(TOPIC)))
            .with_partitions(vec![ListOffsetsPartition::default()
                .with_partition_index(0)
                .with_timestamp(-1)])]);
    let ResponseKind::ListOffsets(response) =
        raw.call(ApiKey::ListOffsets, 4, RequestKind::ListOffsets(request))
    else {
        panic!("not a ListOffsets response")
    };
    response.topics[0].partitions[0].offset
}

/// DescribeTransactions, ListTransactions and DescribeProducers while `raw-txn`
/// (producer `id`) has a transaction open on partition 0 from offset 1.
fn operators_see_the_open_transaction(raw: &mut Raw, id: i64) {
    use spate_protocol::kafka_protocol::messages::describe_producers_request::{
        DescribeProducersRequest, TopicRequest,
    };
    use spate_protocol::kafka_protocol::messages::describe_transactions_request::DescribeTransactionsRequest;
    use spate_protocol::kafka_protocol::messages::list_transactions_request::ListTransactionsRequest;

    let request = DescribeTransactionsRequest::default().with_transactional_ids(vec![
        TransactionalId(name("raw-txn")),
        TransactionalId(name("nobody")),
    ]);
    let ResponseKind::DescribeTransactions(response) = raw.call(
        ApiKey::DescribeTransactions,
        0,
        RequestKind::DescribeTransactions(request),
    ) else {
        panic!("not a DescribeTransactions response")
    };
    let open = &response.transaction_states[0];
    assert_eq!(
        (
            open.error_code,
            open.transaction_state.as_str(),
            open.producer_id.0
        ),
        (0, "Ongoing", id)
    );
    assert_eq!(open.topics.len(), 1);
    assert_eq!(
        (
            open.topics[0].topic.0.as_str(),
            open.topics[0].partitions.as_slice()
        ),
        (TOPIC, &[0][..])
    );
    assert!(open.transaction_start_time_ms > 0);
    assert_eq!(
        response.transaction_states[1].error_code, 105,
        "TRANSACTIONAL_ID_NOT_FOUND"
    );

    let request = ListTransactionsRequest::default()
        .with_state_filters(vec![name("Ongoing"), name("Bogus")])
        .with_duration_filter(-1);
    let ResponseKind::ListTransactions(response) = raw.call(
        ApiKey::ListTransactions,
        1,
        RequestKind::ListTransactions(request),
    ) else {
        panic!("not a ListTransactions response")
    };
    let listed: Vec<(&str, i64, &str)> = response
        .transaction_states
        .iter()
        .map(|t| {
            (
                t.transactional_id.0.as_str(),
                t.producer_id.0,
                t.transaction_state.as_str(),
            )
        })
        .collect();
    assert_eq!(listed, [("raw-txn", id, "Ongoing")]);
    assert_eq!(response.unknown_state_filters, [name("Bogus")]);

    let request = DescribeProducersRequest::default().with_topics(vec![TopicRequest::default()
        .with_name(TopicName(name(TOPIC)))
        .with_partition_indexes(vec![0, 9])]);
    let ResponseKind::DescribeProducers(response) = raw.call(
        ApiKey::DescribeProducers,
        0,
        RequestKind::DescribeProducers(request),
    ) else {
        panic!("not a DescribeProducers response")
    };
    let partitions = &response.topics[0].partitions;
    let producers: Vec<(i64, i32, i32, i64)> = partitions[0]
        .active_producers
        .iter()
        .map(|p| {
            (
                p.producer_id.0,
                p.producer_epoch,
                p.last_sequence,
                p.current_txn_start_offset,
            )
        })
        .collect();
    assert_eq!(producers, [(id, 0, 1, 1)]);
    assert_eq!(partitions[1].error_code, 3, "no partition 9");
}

/// OffsetFetch of group `txn-group`'s offset for partition 0: (error, offset).
fn committed_offset(raw: &mut Raw, require_stable: bool) -> (i16, i64) {
    use spate_protocol::kafka_protocol::messages::offset_fetch_request::{
        OffsetFetchRequest, OffsetFetchRequestTopic,
    };
    let request = OffsetFetchRequest::default()
        .with_group_id(spate_protocol::kafka_protocol::messages::GroupId(name(
            "txn-group",
        )))
        .with_topics(Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(name(TOPIC)))
            .with_partition_indexes(vec![0])]))
        .with_require_stable(require_stable);
    let ResponseKind::OffsetFetch(response) =
        raw.call(ApiKey::OffsetFetch, 7, RequestKind::OffsetFetch(request))
    else {
        panic!("not an OffsetFetch response")
    };
    let partition = &response.topics[0].partitions[0];
    (partition.error_code, partition.committed_offset)
}

/// A group's offsets committed in a transaction: hidden (and unstable for
/// `require_stable`) until it commits, dropped when it aborts.
fn offsets_commit_with_the_transaction(raw: &mut Raw, producer: (i64, i16)) {
    use spate_protocol::kafka_protocol::messages::add_offsets_to_txn_request::AddOffsetsToTxnRequest;
    use spate_protocol::kafka_protocol::messages::txn_offset_commit_request::{
        TxnOffsetCommitRequest, TxnOffsetCommitRequestPartition, TxnOffsetCommitRequestTopic,
    };
    use spate_protocol::kafka_protocol::messages::GroupId;
    let send_offsets = |raw: &mut Raw, offset: i64| {
        let request = AddOffsetsToTxnRequest::default()
            .with_transactional_id(TransactionalId(name("raw-txn")))
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_group_id(GroupId(name("txn-group")));
        let ResponseKind::AddOffsetsToTxn(response) = raw.call(
            ApiKey::AddOffsetsToTxn,
            3,
            RequestKind::AddOffsetsToTxn(request),
        ) else {
            panic!("not an AddOffsetsToTxn response")
        };
        assert_eq!(response.error_code, 0);
        let request = TxnOffsetCommitRequest::default()
            .with_transactional_id(TransactionalId(name("raw-txn")))
            .with_group_id(GroupId(name("txn-group")))
            .with_producer_id(ProducerId(producer.0))
            .with_producer_epoch(producer.1)
            .with_generation_id(-1)
            .with_topics(vec![TxnOffsetCommitRequestTopic::default()
                .with_name(TopicName(name(TOPIC)))
                .with_partitions(vec![TxnOffsetCommitRequestPartition::default()
                    .with_partition_index(0)
                    .with_committed_offset(offset)
                    .with_committed_leader_epoch(-1)])]);
        let ResponseKind::TxnOffsetCommit(response) = raw.call(
            ApiKey::TxnOffsetCommit,
            3,
            RequestKind::TxnOffsetCommit(request),
        ) else {
            panic!("not a TxnOffsetCommit response")
        };
        assert_eq!(response.topics[0].partitions[0].error_code, 0);
    };
    send_offsets(raw, 3);
    assert_eq!(
        committed_offset(raw, false),
        (0, -1),
        "not before the commit"
    );
    assert_eq!(committed_offset(raw, true).0, 88, "UNSTABLE_OFFSET_COMMIT");
    assert_eq!(end(raw, "raw-txn", producer, true), 0);
    assert_eq!(committed_offset(raw, true), (0, 3));
    send_offsets(raw, 4);
    assert_eq!(end(raw, "raw-txn", producer, false), 0);
    assert_eq!(committed_offset(raw, true), (0, 3), "an abort drops them");
}

#[test]
fn the_coordinator_fences_times_out_and_hides_open_transactions() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let mut raw = Raw::connect(&broker.address);
    let metadata = spate_protocol::kafka_protocol::messages::MetadataRequest::default()
        .with_topics(Some(vec![
            spate_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName(name(TOPIC)))),
        ]))
        .with_allow_auto_topic_creation(true);
    raw.call(ApiKey::Metadata, 9, RequestKind::Metadata(metadata));

    assert_eq!(
        init(&mut raw, "raw-txn", 0).0,
        50,
        "INVALID_TRANSACTION_TIMEOUT"
    );
    assert_eq!(init(&mut raw, "raw-txn", 900_001).0, 50);
    let (code, id, epoch) = init(&mut raw, "raw-txn", 60_000);
    assert_eq!((code, epoch), (0, 0));
    let producer = (id, epoch);
    assert_eq!(
        end(&mut raw, "raw-txn", producer, true),
        48,
        "no open transaction"
    );
    assert_eq!(
        produce(&mut raw, "raw-txn", producer, 0, &[b"early"]).0,
        48,
        "a partition not added to the transaction"
    );
    assert_eq!(
        add(
            &mut raw,
            "raw-txn",
            producer,
            &[(TOPIC, 0), ("no-such-topic", 0)]
        ),
        [55, 3],
        "OPERATION_NOT_ATTEMPTED, UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(
        add(&mut raw, "raw-txn", (id, 5), &[(TOPIC, 0)]),
        [90],
        "PRODUCER_FENCED"
    );
    assert_eq!(add(&mut raw, "raw-txn", (id + 1, 0), &[(TOPIC, 0)]), [49]);

    // Plain record, then an open transaction: read_committed stops at its first offset.
    assert_eq!(produce_plain(&mut raw, b"plain-0"), 0);
    assert_eq!(add(&mut raw, "raw-txn", producer, &[(TOPIC, 0)]), [0]);
    assert_eq!(
        produce(&mut raw, "raw-txn", producer, 0, &[b"a", b"b"]),
        (0, 1)
    );
    assert_eq!(produce_plain(&mut raw, b"plain-1"), 3);
    let (high, stable, uncommitted_bytes, _) = fetch(&mut raw, 0);
    assert_eq!((high, stable), (4, 1));
    let (_, _, committed_bytes, _) = fetch(&mut raw, 1);
    assert!(committed_bytes > 0 && committed_bytes < uncommitted_bytes);
    assert_eq!((latest(&mut raw, 0), latest(&mut raw, 1)), (4, 1));
    operators_see_the_open_transaction(&mut raw, id);

    // Abort: the marker lands at 4, the LSO moves past it, and read_committed fetches name
    // the aborted transaction.
    assert_eq!(end(&mut raw, "raw-txn", producer, false), 0);
    assert_eq!(
        end(&mut raw, "raw-txn", producer, false),
        0,
        "a retried abort"
    );
    assert_eq!(
        end(&mut raw, "raw-txn", producer, true),
        48,
        "not after an abort"
    );
    let (high, stable, _, aborted) = fetch(&mut raw, 1);
    assert_eq!((high, stable), (5, 5));
    assert_eq!(aborted, [(id, 1)]);
    assert_eq!(fetch(&mut raw, 0).3, [], "read_uncommitted is not told");

    // A new instance fences the old one.
    let (code, same_id, bumped) = init(&mut raw, "raw-txn", 60_000);
    assert_eq!((code, same_id, bumped), (0, id, 1));
    assert_eq!(add(&mut raw, "raw-txn", producer, &[(TOPIC, 0)]), [90]);
    offsets_commit_with_the_transaction(&mut raw, (id, 1));

    // A transaction open past its timeout is aborted under a bumped epoch, fencing it.
    let (code, short_id, short_epoch) = init(&mut raw, "raw-short", 1_000);
    assert_eq!(code, 0);
    let short = (short_id, short_epoch);
    assert_eq!(add(&mut raw, "raw-short", short, &[(TOPIC, 0)]), [0]);
    assert_eq!(
        produce(&mut raw, "raw-short", short, 0, &[b"abandoned"]),
        (0, 5)
    );
    assert_eq!(fetch(&mut raw, 1).1, 5, "held at the open transaction");
    let deadline = Instant::now() + Duration::from_secs(15);
    while fetch(&mut raw, 1).1 == 5 && Instant::now() < deadline {
        std::thread::sleep(Duration::from_millis(200));
    }
    let (high, stable, _, aborted) = fetch(&mut raw, 1);
    assert_eq!((high, stable), (7, 7), "the timeout abort's marker at 6");
    assert!(aborted.contains(&(short_id, 5)), "{aborted:?}");
    assert_eq!(
        end(&mut raw, "raw-short", short, true),
        90,
        "fenced by the abort"
    );
    assert_eq!(
        produce(&mut raw, "raw-short", short, 1, &[b"zombie"]).0,
        47,
        "INVALID_PRODUCER_EPOCH"
    );

    // The state survives a SIGKILL: ids keep their producer ids and epochs, and the
    // partitions keep their aborted transactions.
    let broker = broker.restart("-KILL");
    let mut raw = Raw::connect(&broker.address);
    let (code, again, epoch) = init(&mut raw, "raw-txn", 60_000);
    assert_eq!((code, again, epoch), (0, id, 2));
    let (high, stable, _, aborted) = fetch(&mut raw, 1);
    assert_eq!((high, stable), (7, 7));
    assert_eq!(aborted, [(id, 1), (short_id, 5)]);
}

#[test]
fn librdkafka_transactions_commit_abort_and_fence() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    python(
        "transactions_librdkafka.py",
        &["commit-abort", &broker.address],
    );
}

#[test]
fn consume_transform_produce_is_exactly_once_across_a_processor_sigkill() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    python("transactions_librdkafka.py", &["process", &broker.address]);
}

#[test]
fn a_transaction_open_when_the_broker_is_killed_is_aborted_by_the_next_instance() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let script = repo().join("broker/tests/clients/transactions_librdkafka.py");
    let mut writer = Command::new(repo().join(".venv/bin/python"))
        .arg(&script)
        .args(["open", &broker.address])
        .stdout(Stdio::piped())
        .stderr(Stdio::null())
        .spawn()
        .expect("start the writer");
    let mut line = String::new();
    BufReader::new(writer.stdout.as_mut().expect("stdout"))
        .read_line(&mut line)
        .expect("the writer's line");
    assert_eq!(
        line.trim(),
        "open",
        "the writer did not open its transaction"
    );
    let broker = broker.restart("-KILL");
    let _ = writer.kill();
    let _ = writer.wait();
    python("transactions_librdkafka.py", &["resume", &broker.address]);
}

#[test]
fn kafkajs_transactions_and_idempotent_producer() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    kafkajs("kafkajs_transactions.js", &[&broker.address]);
}
