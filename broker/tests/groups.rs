//! Consumer groups, black box: the `spate` binary driven by real clients' group consumers
//! (librdkafka through confluent-kafka, kafka-python, KafkaJS) and by raw protocol bytes.

mod common;

use bytes::Bytes;
use common::{kafkajs, produce_request, python, Broker, Raw};
use spate_protocol::kafka_protocol::messages::delete_groups_request::DeleteGroupsRequest;
use spate_protocol::kafka_protocol::messages::delete_topics_request::DeleteTopicsRequest;
use spate_protocol::kafka_protocol::messages::describe_groups_request::DescribeGroupsRequest;
use spate_protocol::kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use spate_protocol::kafka_protocol::messages::heartbeat_request::HeartbeatRequest;
use spate_protocol::kafka_protocol::messages::join_group_request::{
    JoinGroupRequest, JoinGroupRequestProtocol,
};
use spate_protocol::kafka_protocol::messages::join_group_response::JoinGroupResponse;
use spate_protocol::kafka_protocol::messages::leave_group_request::{
    LeaveGroupRequest, MemberIdentity,
};
use spate_protocol::kafka_protocol::messages::list_groups_request::ListGroupsRequest;
use spate_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic;
use spate_protocol::kafka_protocol::messages::offset_commit_request::{
    OffsetCommitRequest, OffsetCommitRequestPartition, OffsetCommitRequestTopic,
};
use spate_protocol::kafka_protocol::messages::offset_delete_request::{
    OffsetDeleteRequest, OffsetDeleteRequestPartition, OffsetDeleteRequestTopic,
};
use spate_protocol::kafka_protocol::messages::offset_fetch_request::{
    OffsetFetchRequest, OffsetFetchRequestGroup, OffsetFetchRequestTopic, OffsetFetchRequestTopics,
};
use spate_protocol::kafka_protocol::messages::sync_group_request::{
    SyncGroupRequest, SyncGroupRequestAssignment,
};
use spate_protocol::kafka_protocol::messages::{
    ApiKey, GroupId, MetadataRequest, RequestKind, ResponseKind, TopicName,
};
use spate_protocol::kafka_protocol::protocol::StrBytes;

/// Three members share six partitions; a fourth joins, one leaves, one is SIGKILLed; every
/// record produced meanwhile is consumed at least once.
#[test]
fn librdkafka_group_rebalances_on_join_leave_and_crash() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    python("group_librdkafka.py", &[&broker.address]);
}

/// The same scenario with the client-side cooperative-sticky assignor over the classic
/// protocol: members keep their partitions through incremental rebalances.
#[test]
fn librdkafka_cooperative_sticky_group_rebalances_incrementally() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    python("group_librdkafka.py", &[&broker.address, "cooperative"]);
}

/// The same scenario on the KIP-848 protocol (`group.protocol=consumer`): the coordinator
/// assigns, revoking before it grants.
#[test]
fn librdkafka_consumer_protocol_group_rebalances_on_join_leave_and_crash() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start_with(
        data.path(),
        &[
            "--group-consumer-session-timeout-ms",
            "6000",
            "--group-consumer-heartbeat-interval-ms",
            "500",
        ],
    );
    python("group_librdkafka.py", &[&broker.address, "consumer"]);
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

/// A consumer-protocol subscription (version 0) to topic "gt", with null user data.
const SUBSCRIPTION: &[u8] = &[0, 0, 0, 0, 0, 1, 0, 2, b'g', b't', 0xff, 0xff, 0xff, 0xff];

fn name(text: &str) -> StrBytes {
    StrBytes::from_string(text.to_string())
}

fn join(
    raw: &mut Raw,
    version: i16,
    group: &str,
    member_id: &str,
    protocol_type: &str,
    session_timeout_ms: i32,
) -> JoinGroupResponse {
    let request = JoinGroupRequest::default()
        .with_group_id(GroupId(name(group)))
        .with_session_timeout_ms(session_timeout_ms)
        .with_rebalance_timeout_ms(if version >= 1 { 10_000 } else { -1 })
        .with_member_id(name(member_id))
        .with_protocol_type(name(protocol_type))
        .with_protocols(vec![JoinGroupRequestProtocol::default()
            .with_name(name("range"))
            .with_metadata(Bytes::from_static(SUBSCRIPTION))]);
    let ResponseKind::JoinGroup(response) =
        raw.call(ApiKey::JoinGroup, version, RequestKind::JoinGroup(request))
    else {
        panic!("not a JoinGroup response")
    };
    response
}

/// Joins as the only member (with the KIP-394 round trip from v4) and syncs; returns
/// (member id, generation).
fn join_alone(raw: &mut Raw, version: i16, group: &str) -> (String, i32) {
    let mut joined = join(raw, version, group, "", "consumer", 10_000);
    if version >= 4 {
        assert_eq!(
            joined.error_code, 79,
            "MEMBER_ID_REQUIRED (JoinGroup v{version})"
        );
        assert!(!joined.member_id.is_empty());
        let member = joined.member_id.to_string();
        joined = join(raw, version, group, &member, "consumer", 10_000);
    }
    assert_eq!(joined.error_code, 0, "JoinGroup v{version}");
    assert_eq!(joined.leader, joined.member_id, "the only member leads");
    assert_eq!(joined.members.len(), 1);
    let member = joined.member_id.to_string();
    let sync_version = version.min(5);
    let mut request = SyncGroupRequest::default()
        .with_group_id(GroupId(name(group)))
        .with_generation_id(joined.generation_id)
        .with_member_id(name(&member))
        .with_assignments(vec![SyncGroupRequestAssignment::default()
            .with_member_id(name(&member))
            .with_assignment(Bytes::from_static(b"all of it"))]);
    if sync_version >= 5 {
        request.protocol_type = Some(name("consumer"));
        request.protocol_name = Some(name("range"));
    }
    let ResponseKind::SyncGroup(synced) = raw.call(
        ApiKey::SyncGroup,
        sync_version,
        RequestKind::SyncGroup(request),
    ) else {
        panic!()
    };
    assert_eq!(synced.error_code, 0, "SyncGroup v{sync_version}");
    assert_eq!(&synced.assignment[..], b"all of it");
    (member, joined.generation_id)
}

/// The group ids a ListGroups answers with.
fn listed_groups(raw: &mut Raw, version: i16, request: ListGroupsRequest) -> Vec<String> {
    let ResponseKind::ListGroups(listed) = raw.call(
        ApiKey::ListGroups,
        version,
        RequestKind::ListGroups(request),
    ) else {
        panic!("not a ListGroups response")
    };
    listed
        .groups
        .iter()
        .map(|g| g.group_id.0.to_string())
        .collect()
}

fn heartbeat(raw: &mut Raw, version: i16, group: &str, member: &str, generation: i32) -> i16 {
    let request = HeartbeatRequest::default()
        .with_group_id(GroupId(name(group)))
        .with_generation_id(generation)
        .with_member_id(name(member));
    let ResponseKind::Heartbeat(response) =
        raw.call(ApiKey::Heartbeat, version, RequestKind::Heartbeat(request))
    else {
        panic!()
    };
    response.error_code
}

fn commit(
    raw: &mut Raw,
    version: i16,
    group: &str,
    member: (&str, i32),
    topic: &str,
    offset: i64,
    metadata: &str,
) -> i16 {
    let request = OffsetCommitRequest::default()
        .with_group_id(GroupId(name(group)))
        .with_generation_id_or_member_epoch(member.1)
        .with_member_id(name(member.0))
        .with_topics(vec![OffsetCommitRequestTopic::default()
            .with_name(TopicName(name(topic)))
            .with_partitions(vec![OffsetCommitRequestPartition::default()
                .with_partition_index(0)
                .with_committed_offset(offset)
                .with_committed_metadata(Some(name(metadata)))])]);
    let ResponseKind::OffsetCommit(response) = raw.call(
        ApiKey::OffsetCommit,
        version,
        RequestKind::OffsetCommit(request),
    ) else {
        panic!()
    };
    response.topics[0].partitions[0].error_code
}

fn fetch_committed(raw: &mut Raw, version: i16, group: &str, topic: &str) -> (i64, String) {
    let mut request = OffsetFetchRequest::default();
    if version >= 8 {
        request.groups = vec![OffsetFetchRequestGroup::default()
            .with_group_id(GroupId(name(group)))
            .with_topics(Some(vec![OffsetFetchRequestTopics::default()
                .with_name(TopicName(name(topic)))
                .with_partition_indexes(vec![0])]))];
    } else {
        request.group_id = GroupId(name(group));
        request.topics = Some(vec![OffsetFetchRequestTopic::default()
            .with_name(TopicName(name(topic)))
            .with_partition_indexes(vec![0])]);
    }
    let ResponseKind::OffsetFetch(response) = raw.call(
        ApiKey::OffsetFetch,
        version,
        RequestKind::OffsetFetch(request),
    ) else {
        panic!()
    };
    if version >= 8 {
        let partition = &response.groups[0].topics[0].partitions[0];
        assert_eq!(partition.error_code, 0);
        let metadata = partition.metadata.clone().unwrap_or_default();
        (partition.committed_offset, metadata.to_string())
    } else {
        let partition = &response.topics[0].partitions[0];
        assert_eq!(partition.error_code, 0);
        let metadata = partition.metadata.clone().unwrap_or_default();
        (partition.committed_offset, metadata.to_string())
    }
}

/// Every advertised version of every group API answers, and bad input gets Kafka's error
/// codes: unknown member, stale generation, wrong protocol type, a session timeout out of
/// range, oversized offset metadata, an unknown topic, a group with members deleted, and
/// writes to the internal offsets topic.
#[test]
fn group_apis_answer_every_version_and_refuse_bad_input() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let mut raw = Raw::connect(&broker.address);
    let port: i32 = broker
        .address
        .rsplit(':')
        .next()
        .and_then(|p| p.parse().ok())
        .expect("port");
    let metadata = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(TopicName(name("gt"))))
        ]))
        .with_allow_auto_topic_creation(true);
    raw.call(ApiKey::Metadata, 9, RequestKind::Metadata(metadata));

    for version in 0..=4 {
        let mut request = FindCoordinatorRequest::default();
        if version >= 4 {
            request.coordinator_keys = vec![name("g1"), name("g2")];
        } else {
            request.key = name("g1");
        }
        let ResponseKind::FindCoordinator(found) = raw.call(
            ApiKey::FindCoordinator,
            version,
            RequestKind::FindCoordinator(request),
        ) else {
            panic!()
        };
        if version >= 4 {
            assert_eq!(found.coordinators.len(), 2);
            assert!(found
                .coordinators
                .iter()
                .all(|c| c.error_code == 0 && c.port == port));
        } else {
            assert_eq!(
                (found.error_code, found.port),
                (0, port),
                "FindCoordinator v{version}"
            );
        }
    }

    for version in 0..=9 {
        let group = format!("v{version}");
        let (member, generation) = join_alone(&mut raw, version, &group);
        assert_eq!(
            heartbeat(&mut raw, version.min(4), &group, &member, generation),
            0
        );
        let commit_version = version.clamp(2, 9);
        let code = commit(
            &mut raw,
            commit_version,
            &group,
            (&member, generation),
            "gt",
            7,
            "meta",
        );
        assert_eq!(code, 0, "OffsetCommit v{commit_version}");
        let fetch_version = version.clamp(1, 9);
        let (offset, metadata) = fetch_committed(&mut raw, fetch_version, &group, "gt");
        assert_eq!(
            (offset, metadata.as_str()),
            (7, "meta"),
            "OffsetFetch v{fetch_version}"
        );
        let leave_version = version.min(5);
        let mut leave = LeaveGroupRequest::default().with_group_id(GroupId(name(&group)));
        if leave_version >= 3 {
            leave.members = vec![MemberIdentity::default().with_member_id(name(&member))];
        } else {
            leave.member_id = name(&member);
        }
        let ResponseKind::LeaveGroup(left) = raw.call(
            ApiKey::LeaveGroup,
            leave_version,
            RequestKind::LeaveGroup(leave),
        ) else {
            panic!()
        };
        assert_eq!(left.error_code, 0, "LeaveGroup v{leave_version}");
        assert!(left.members.iter().all(|m| m.error_code == 0));
    }

    // A stable group with one member, then bad requests against it.
    let (member, generation) = join_alone(&mut raw, 5, "busy");
    assert_eq!(
        join(&mut raw, 5, "busy", "", "consumer", 1_000).error_code,
        26,
        "INVALID_SESSION_TIMEOUT"
    );
    assert_eq!(
        join(&mut raw, 5, "busy", "nobody", "consumer", 10_000).error_code,
        25,
        "UNKNOWN_MEMBER_ID"
    );
    assert_eq!(
        join(&mut raw, 3, "busy", "", "connect", 10_000).error_code,
        23,
        "INCONSISTENT_GROUP_PROTOCOL"
    );
    assert_eq!(
        heartbeat(&mut raw, 4, "busy", &member, generation + 1),
        22,
        "ILLEGAL_GENERATION"
    );
    assert_eq!(
        heartbeat(&mut raw, 4, "busy", "nobody", generation),
        25,
        "UNKNOWN_MEMBER_ID"
    );
    let long = "m".repeat(5000);
    assert_eq!(
        commit(&mut raw, 8, "busy", (&member, generation), "gt", 1, &long),
        12,
        "OFFSET_METADATA_TOO_LARGE"
    );
    assert_eq!(
        commit(
            &mut raw,
            8,
            "busy",
            (&member, generation),
            "no-such-topic",
            1,
            ""
        ),
        3,
        "UNKNOWN_TOPIC_OR_PARTITION"
    );
    assert_eq!(
        commit(&mut raw, 8, "busy", ("stranger", generation), "gt", 1, ""),
        25,
        "UNKNOWN_MEMBER_ID"
    );
    // A group without members accepts commits from outside it (generation -1).
    assert_eq!(commit(&mut raw, 8, "v9", ("", -1), "gt", 11, ""), 0);
    assert_eq!(fetch_committed(&mut raw, 8, "v9", "gt").0, 11);

    // OffsetDelete: not while a member subscribes to the topic; an empty group's go.
    let offset_delete = |raw: &mut Raw, group: &str| {
        let request = OffsetDeleteRequest::default()
            .with_group_id(GroupId(name(group)))
            .with_topics(vec![OffsetDeleteRequestTopic::default()
                .with_name(TopicName(name("gt")))
                .with_partitions(vec![OffsetDeleteRequestPartition::default()])]);
        let ResponseKind::OffsetDelete(response) =
            raw.call(ApiKey::OffsetDelete, 0, RequestKind::OffsetDelete(request))
        else {
            panic!()
        };
        let partition = response.topics.first().map(|t| t.partitions[0].error_code);
        (response.error_code, partition)
    };
    assert_eq!(
        offset_delete(&mut raw, "busy"),
        (0, Some(86)),
        "GROUP_SUBSCRIBED_TO_TOPIC"
    );
    assert_eq!(offset_delete(&mut raw, "v9"), (0, Some(0)));
    assert_eq!(
        fetch_committed(&mut raw, 8, "v9", "gt").0,
        -1,
        "the offset is gone"
    );
    assert_eq!(
        offset_delete(&mut raw, "nothing"),
        (69, None),
        "GROUP_ID_NOT_FOUND"
    );

    for version in 0..=5 {
        let mut request = ListGroupsRequest::default();
        if version >= 4 {
            request.states_filter = vec![name("Stable")];
        }
        let names = listed_groups(&mut raw, version, request);
        assert!(
            names.contains(&"busy".to_string()),
            "ListGroups v{version}: {names:?}"
        );
        if version >= 4 {
            assert_eq!(names, ["busy"], "only the stable group (v{version})");
        } else {
            assert!(
                names.contains(&"v0".to_string()),
                "empty groups with offsets are listed"
            );
        }
    }
    for version in 0..=5 {
        let request = DescribeGroupsRequest::default()
            .with_groups(vec![GroupId(name("busy")), GroupId(name("nothing"))]);
        let ResponseKind::DescribeGroups(described) = raw.call(
            ApiKey::DescribeGroups,
            version,
            RequestKind::DescribeGroups(request),
        ) else {
            panic!()
        };
        let busy = &described.groups[0];
        assert_eq!(
            (busy.error_code, busy.group_state.as_str()),
            (0, "Stable"),
            "v{version}"
        );
        assert_eq!(busy.protocol_data.as_str(), "range");
        assert_eq!(busy.members.len(), 1);
        assert_eq!(&busy.members[0].member_assignment[..], b"all of it");
        assert_eq!(described.groups[1].group_state.as_str(), "Dead");
    }
    for version in 0..=2 {
        let request = DeleteGroupsRequest::default().with_groups_names(vec![
            GroupId(name("busy")),
            GroupId(name("nothing")),
            GroupId(name(&format!("v{version}"))),
        ]);
        let ResponseKind::DeleteGroups(deleted) = raw.call(
            ApiKey::DeleteGroups,
            version,
            RequestKind::DeleteGroups(request),
        ) else {
            panic!()
        };
        let codes: Vec<i16> = deleted.results.iter().map(|r| r.error_code).collect();
        assert_eq!(
            codes,
            [68, 69, 0],
            "NON_EMPTY_GROUP, GROUP_ID_NOT_FOUND, deleted (v{version})"
        );
        assert_eq!(
            fetch_committed(&mut raw, 8, &format!("v{version}"), "gt").0,
            -1
        );
    }

    // The offsets topic is the coordinator's own.
    let mut builder = spate_model::BatchBuilder::new(spate_model::Compression::None);
    builder
        .push(&spate_model::BuilderRecord {
            value: Some(b"forged"),
            ..Default::default()
        })
        .expect("push");
    let forged = Bytes::from(builder.build().expect("build"));
    let ResponseKind::Produce(produced) = raw.call(
        ApiKey::Produce,
        7,
        produce_request("__consumer_offsets", 0, forged),
    ) else {
        panic!()
    };
    assert_eq!(
        produced.responses[0].partition_responses[0].error_code, 17,
        "INVALID_TOPIC"
    );
    let request = DeleteTopicsRequest::default()
        .with_topic_names(vec![TopicName(name("__consumer_offsets"))]);
    let ResponseKind::DeleteTopics(deleted) =
        raw.call(ApiKey::DeleteTopics, 4, RequestKind::DeleteTopics(request))
    else {
        panic!()
    };
    assert_eq!(deleted.responses[0].error_code, 42, "INVALID_REQUEST");
}

/// A static member (group.instance.id) that restarts within its session timeout gets its
/// partitions back, and the other member sees no rebalance.
#[test]
fn a_static_member_restarts_without_a_rebalance() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    python("group_librdkafka.py", &[&broker.address, "static"]);
}

/// ConsumerGroupHeartbeat v0 and v1 over raw bytes: join, beat, a fenced epoch, leave; the
/// group is listed as a "consumer" group meanwhile.
#[test]
fn consumer_group_heartbeats_join_beat_and_leave() {
    use spate_protocol::kafka_protocol::messages::consumer_group_heartbeat_request::ConsumerGroupHeartbeatRequest;
    use spate_protocol::kafka_protocol::messages::consumer_group_heartbeat_response::ConsumerGroupHeartbeatResponse;
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let mut raw = Raw::connect(&broker.address);
    let metadata = MetadataRequest::default()
        .with_topics(Some(vec![
            MetadataRequestTopic::default().with_name(Some(TopicName(name("gt"))))
        ]))
        .with_allow_auto_topic_creation(true);
    raw.call(ApiKey::Metadata, 9, RequestKind::Metadata(metadata));
    let beat = |raw: &mut Raw, version: i16, group: &str, member: &str, epoch: i32, join: bool| {
        let mut request = ConsumerGroupHeartbeatRequest::default()
            .with_group_id(GroupId(name(group)))
            .with_member_id(name(member))
            .with_member_epoch(epoch)
            .with_rebalance_timeout_ms(if join { 30_000 } else { -1 });
        if join {
            request.subscribed_topic_names = Some(vec![TopicName(name("gt"))]);
            request.topic_partitions = Some(Vec::new());
        }
        let ResponseKind::ConsumerGroupHeartbeat(response) = raw.call(
            ApiKey::ConsumerGroupHeartbeat,
            version,
            RequestKind::ConsumerGroupHeartbeat(request),
        ) else {
            panic!()
        };
        response
    };
    let partitions = |r: &ConsumerGroupHeartbeatResponse| {
        r.assignment.as_ref().map(|a| {
            a.topic_partitions
                .iter()
                .map(|t| t.partitions.len())
                .sum::<usize>()
        })
    };
    // v0: the coordinator names the member.
    let joined = beat(&mut raw, 0, "kip848-v0", "", 0, true);
    assert_eq!(joined.error_code, 0);
    let member = joined.member_id.clone().expect("a member id").to_string();
    assert!(joined.member_epoch >= 1);
    assert_eq!(partitions(&joined), Some(1), "the one partition of gt");
    assert!(joined.heartbeat_interval_ms > 0);
    let again = beat(
        &mut raw,
        0,
        "kip848-v0",
        &member,
        joined.member_epoch,
        false,
    );
    assert_eq!(
        (again.error_code, again.member_epoch),
        (0, joined.member_epoch)
    );
    assert_eq!(
        beat(
            &mut raw,
            0,
            "kip848-v0",
            &member,
            joined.member_epoch + 7,
            false
        )
        .error_code,
        110
    );
    assert_eq!(
        beat(&mut raw, 0, "kip848-v0", "stranger", 3, false).error_code,
        25
    );
    // v1: the client names itself.
    let joined = beat(&mut raw, 1, "kip848-v1", "client-chosen-id", 0, true);
    assert_eq!(joined.error_code, 0);
    assert_eq!(joined.member_id.as_deref(), Some("client-chosen-id"));

    // Regular-expression subscriptions are refused, not silently ignored.
    let request = ConsumerGroupHeartbeatRequest::default()
        .with_group_id(GroupId(name("kip848-regex")))
        .with_member_id(name("regex-member"))
        .with_rebalance_timeout_ms(30_000)
        .with_subscribed_topic_regex(Some(name("g.*")));
    let ResponseKind::ConsumerGroupHeartbeat(refused) = raw.call(
        ApiKey::ConsumerGroupHeartbeat,
        1,
        RequestKind::ConsumerGroupHeartbeat(request),
    ) else {
        panic!()
    };
    assert_eq!(refused.error_code, 128, "INVALID_REGULAR_EXPRESSION");

    let request = ListGroupsRequest::default().with_types_filter(vec![name("consumer")]);
    let names = listed_groups(&mut raw, 5, request);
    assert_eq!(names, ["kip848-v0", "kip848-v1"]);
    // A classic member cannot join a consumer-protocol group.
    assert_eq!(
        join(&mut raw, 5, "kip848-v0", "", "consumer", 10_000).error_code,
        23
    );

    for version in 0..=1 {
        use spate_protocol::kafka_protocol::messages::consumer_group_describe_request::ConsumerGroupDescribeRequest;
        let request = ConsumerGroupDescribeRequest::default()
            .with_group_ids(vec![GroupId(name("kip848-v0")), GroupId(name("nothing"))]);
        let ResponseKind::ConsumerGroupDescribe(described) = raw.call(
            ApiKey::ConsumerGroupDescribe,
            version,
            RequestKind::ConsumerGroupDescribe(request),
        ) else {
            panic!()
        };
        let group = &described.groups[0];
        assert_eq!(
            (group.error_code, group.group_state.as_str()),
            (0, "Stable")
        );
        assert_eq!(group.assignor_name.as_str(), "uniform");
        assert_eq!(group.members[0].member_id.as_str(), member);
        let given = &group.members[0].assignment.topic_partitions[0];
        assert_eq!(
            (given.topic_name.0.as_str(), given.partitions.len()),
            ("gt", 1)
        );
        assert_eq!(described.groups[1].error_code, 69, "GROUP_ID_NOT_FOUND");
    }

    let left = beat(&mut raw, 0, "kip848-v0", &member, -1, false);
    assert_eq!((left.error_code, left.member_epoch), (0, -1));
    assert_eq!(
        beat(&mut raw, 1, "kip848-v1", "client-chosen-id", -1, false).member_epoch,
        -1
    );
}
