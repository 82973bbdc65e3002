//! Consumer groups, black box: the `spate` binary driven by real clients' group consumers
//! (librdkafka through confluent-kafka, kafka-python, KafkaJS) and by raw protocol bytes.

mod common;

use common::{kafkajs, python, Broker};

/// Three members share six partitions; a fourth joins, one leaves, one is SIGKILLed; every
/// record produced meanwhile is consumed at least once.
#[test]
fn librdkafka_group_rebalances_on_join_leave_and_crash() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    python("group_librdkafka.py", &[&broker.address]);
}

/// Committed offsets outlive the consumer, a SIGKILLed broker and a SIGTERMed one.
#[test]
fn committed_offsets_survive_consumer_and_broker_restarts() {
    let data = tempfile::tempdir().expect("temp dir");
    let state = data.path().join("consumed.txt");
    let state = state.to_str().expect("utf-8 path");
    let broker = Broker::start(&data.path().join("broker"));
    python(
        "group_resume_librdkafka.py",
        &[&broker.address, "first", state],
    );
    let broker = broker.restart("-KILL");
    python(
        "group_resume_librdkafka.py",
        &[&broker.address, "rest", state],
    );
    let broker = broker.restart("-TERM");
    // All 30 are consumed and committed: a member that joins now finds every offset
    // committed and gets nothing more.
    python(
        "group_resume_librdkafka.py",
        &[&broker.address, "rest", state],
    );
}

#[test]
fn kafka_python_group_consumes_commits_and_resumes() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    python("group_kafka_python.py", &[&broker.address]);
}

#[test]
fn kafkajs_group_consumes_commits_and_resumes() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    kafkajs("kafkajs_group.js", &[&broker.address]);
}
