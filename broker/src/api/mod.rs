//! Kafka API dispatch: one file per API, each with the version range it serves.
//!
//! A request whose header cannot be read, whose API this broker does not serve, or whose
//! version is outside the advertised range closes its connection (as Kafka does) — except
//! ApiVersions, which always answers with the ranges (KIP-511).

/// The (topic, partition, offset, leader epoch, metadata) entries of an OffsetCommit or
/// TxnOffsetCommit request's topics (their partition types differ, their fields do not).
macro_rules! offsets_to_commit {
    ($topics:expr) => {
        $topics
            .iter()
            .flat_map(|topic| {
                topic.partitions.iter().map(|p| {
                    (
                        topic.name.0.to_string(),
                        p.partition_index,
                        p.committed_offset,
                        p.committed_leader_epoch,
                        p.committed_metadata.as_ref().map(|m| m.to_string()),
                    )
                })
            })
            .collect()
    };
}

mod add_offsets_to_txn;
mod add_partitions_to_txn;
mod api_versions;
mod configs;
mod consumer_group_describe;
mod consumer_group_heartbeat;
mod create_partitions;
mod create_topics;
mod delete_groups;
mod delete_records;
mod delete_topics;
mod describe_cluster;
mod describe_groups;
mod describe_log_dirs;
mod describe_producers;
mod describe_topic_partitions;
mod describe_transactions;
mod end_txn;
mod fetch;
mod find_coordinator;
mod heartbeat;
mod init_producer_id;
mod join_group;
mod leave_group;
mod list_groups;
mod list_offsets;
mod list_transactions;
mod metadata;
mod offset_commit;
mod offset_delete;
mod offset_fetch;
mod offset_for_leader_epoch;
mod produce;
mod sync_group;
mod txn_offset_commit;

pub(crate) use metadata::CLUSTER_ID;
pub(crate) use produce::append_batch;

use crate::controller::Controller;
use crate::runtime::mesh::{Mesh, MeshError};
use crate::topics::{Catalog, PartitionLog, ShardLogs, Topic};
use bytes::{Bytes, BytesMut};
use spate_protocol::header::RequestHeader;
use spate_protocol::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind};
use spate_protocol::{decode_request_body, encode_response, Rope};
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;

/// One shard's view of the broker: what every shard shares (the catalog, the mesh) and
/// what is this shard's own (its logs, its request budget).
#[derive(Debug)]
pub struct Broker {
    /// This node's id.
    pub node_id: i32,
    /// The host and port clients are told to use.
    pub advertised: (String, u16),
    /// This shard's index.
    pub shard: usize,
    /// Calls to the other shards.
    pub mesh: Mesh<Broker>,
    /// Every topic (shared by the shards).
    pub topics: Arc<Catalog>,
    /// The partition logs this shard owns.
    pub logs: ShardLogs,
    /// The topic-change controller (shard 0 only).
    pub controller: Option<Controller>,
    /// The consumer groups this shard coordinates.
    pub groups: crate::groups::Groups,
    /// The transactional ids this shard coordinates.
    pub transactions: crate::transactions::Transactions,
    /// Idempotent producers' state of this shard's partitions.
    pub producers: std::cell::RefCell<
        std::collections::HashMap<(uuid::Uuid, i32), crate::producers::PartitionProducers>,
    >,
    /// This shard's unused block of producer ids: (next, end).
    pub producer_ids: std::cell::Cell<(i64, i64)>,
    /// The data directory (DescribeLogDirs names it).
    pub data_dir: std::path::PathBuf,
    /// The shard's budget for request bytes being received or handled.
    pub request_budget: std::rc::Rc<spate_storage::budget::Budget>,
    /// Metadata creates unknown topics.
    pub auto_create_topics: bool,
    /// Partitions of auto-created topics.
    pub num_partitions: i32,
    /// This shard's counters.
    pub metrics: crate::metrics::ShardMetrics,
    /// Requests that take longer are logged; `None`: none are.
    pub slow_request: Option<std::time::Duration>,
}

impl Broker {
    /// Runs `op` with `shard`'s broker: inline when that is this shard, else as a call
    /// through the mesh.
    pub async fn on_shard<R, F, Fut>(self: &Rc<Self>, shard: usize, op: F) -> Result<R, MeshError>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Broker>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
    {
        if shard == self.shard {
            Ok(op(self.clone()).await)
        } else {
            self.mesh.call(shard, op).await
        }
    }

    /// Runs `op` on the shard owning `topic`'s partition `partition`, with its log. `None`
    /// when the topic has no such partition (or it went away meanwhile).
    pub async fn on_partition<R, F, Fut>(
        self: &Rc<Self>,
        topic: &Topic,
        partition: i32,
        op: F,
    ) -> Option<R>
    where
        R: Send + 'static,
        F: FnOnce(PartitionLog) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
    {
        let shard = topic.owner(partition)?;
        let id = topic.id;
        self.on_shard(shard, move |broker| async move {
            let log = broker.logs.get(id, partition)?;
            Some(op(log).await)
        })
        .await
        .ok()
        .flatten()
    }

    /// Runs `op(coordinator's broker, group's offsets partition log)` on the shard that
    /// coordinates `group`. `Err` carries COORDINATOR_NOT_AVAILABLE when the offsets topic
    /// is missing or its shard cannot be reached.
    pub async fn on_group<R, F, Fut>(self: &Rc<Self>, group: &str, op: F) -> Result<R, i16>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Broker>, PartitionLog) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
    {
        self.on_coordinator(crate::groups::OFFSETS_TOPIC, group, op)
            .await
    }

    /// Runs `op(coordinator's broker, id's state partition log)` on the shard that
    /// coordinates transactional id `id`; `Err` as for `on_group`.
    pub async fn on_transaction<R, F, Fut>(self: &Rc<Self>, id: &str, op: F) -> Result<R, i16>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Broker>, PartitionLog) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
    {
        self.on_coordinator(crate::transactions::STATE_TOPIC, id, op)
            .await
    }

    async fn on_coordinator<R, F, Fut>(
        self: &Rc<Self>,
        internal_topic: &str,
        key: &str,
        op: F,
    ) -> Result<R, i16>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Broker>, PartitionLog) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
    {
        let unavailable = crate::groups::code::COORDINATOR_NOT_AVAILABLE;
        let topic = self.topics.get(internal_topic).ok_or(unavailable)?;
        let partition = crate::groups::partition_for(key, topic.partition_count());
        let shard = topic.owner(partition).ok_or(unavailable)?;
        let id = topic.id;
        self.on_shard(shard, move |owner| async move {
            let log = owner.logs.get(id, partition)?;
            Some(op(owner, log).await)
        })
        .await
        .ok()
        .flatten()
        .ok_or(unavailable)
    }

    /// Runs `op(owner, log, index, argument)` for each asked `(index, argument)` of `topic` on the
    /// partition's owner, all in parallel; answers in the order asked. `missing(index)`
    /// answers a partition that does not exist (or a topic that does not: `None`).
    pub async fn each_partition<A, R, F, Fut>(
        self: &Rc<Self>,
        topic: Option<&Arc<Topic>>,
        asked: Vec<(i32, A)>,
        op: F,
        missing: impl Fn(i32) -> R,
    ) -> Vec<R>
    where
        A: Send + 'static,
        R: Send + 'static,
        F: FnOnce(Rc<Broker>, PartitionLog, i32, A) -> Fut + Clone + Send + 'static,
        Fut: Future<Output = R> + 'static,
    {
        let indexes: Vec<i32> = asked.iter().map(|(index, _)| *index).collect();
        let answers = match topic {
            Some(topic) => {
                let calls = asked
                    .into_iter()
                    .map(|(index, argument)| {
                        let op = op.clone();
                        let (id, shard) = (topic.id, topic.owner(index));
                        async move {
                            let shard = shard?;
                            self.on_shard(shard, move |owner| async move {
                                let log = owner.logs.get(id, index)?;
                                Some(op(owner, log, index, argument).await)
                            })
                            .await
                            .ok()
                            .flatten()
                        }
                    })
                    .collect();
                spate_storage::join::join_all(calls).await
            }
            None => Vec::new(),
        };
        indexes
            .into_iter()
            .zip(answers.into_iter().chain(std::iter::repeat_with(|| None)))
            .map(|(index, answer)| answer.unwrap_or_else(|| missing(index)))
            .collect()
    }
}

/// The versions served, as advertised in ApiVersions. Produce v0–v2 are advertised but
/// refused, as Kafka 4 does: librdkafka needs v0 in the list to produce compressed batches
/// (KAFKA-18659).
pub const SUPPORTED: &[(ApiKey, i16, i16)] = &[
    (ApiKey::Produce, 0, 9),
    (ApiKey::Fetch, 4, 13),
    (ApiKey::ListOffsets, 1, 7),
    (ApiKey::Metadata, 0, 12),
    (ApiKey::ApiVersions, 0, 3),
    (ApiKey::CreateTopics, 2, 7),
    (ApiKey::DeleteTopics, 1, 6),
    (ApiKey::DeleteRecords, 0, 2),
    (ApiKey::OffsetForLeaderEpoch, 2, 4),
    (ApiKey::CreatePartitions, 0, 3),
    (ApiKey::DescribeCluster, 0, 1),
    (ApiKey::DescribeConfigs, 1, 4),
    (ApiKey::AlterConfigs, 0, 2),
    (ApiKey::IncrementalAlterConfigs, 0, 1),
    (ApiKey::DescribeLogDirs, 1, 4),
    (ApiKey::DescribeTopicPartitions, 0, 0),
    (ApiKey::FindCoordinator, 0, 4),
    (ApiKey::JoinGroup, 0, 9),
    (ApiKey::SyncGroup, 0, 5),
    (ApiKey::Heartbeat, 0, 4),
    (ApiKey::LeaveGroup, 0, 5),
    (ApiKey::OffsetCommit, 2, 9),
    (ApiKey::OffsetFetch, 1, 9),
    (ApiKey::ListGroups, 0, 5),
    (ApiKey::DescribeGroups, 0, 5),
    (ApiKey::DeleteGroups, 0, 2),
    (ApiKey::OffsetDelete, 0, 0),
    (ApiKey::ConsumerGroupHeartbeat, 0, 1),
    (ApiKey::ConsumerGroupDescribe, 0, 1),
    (ApiKey::InitProducerId, 0, 5),
    (ApiKey::AddPartitionsToTxn, 0, 3),
    (ApiKey::AddOffsetsToTxn, 0, 3),
    (ApiKey::EndTxn, 0, 3),
    (ApiKey::TxnOffsetCommit, 0, 3),
    (ApiKey::DescribeProducers, 0, 0),
    (ApiKey::DescribeTransactions, 0, 0),
    (ApiKey::ListTransactions, 0, 1),
];

/// Kafka's "no operations known" for a response's authorized operations.
const OPERATIONS_UNKNOWN: i32 = i32::MIN;

/// What to send back for one request.
#[derive(Debug)]
pub enum Reply {
    /// A whole response frame.
    Frame(BytesMut),
    /// A response frame as chunks (Fetch: record data is not copied).
    Rope(Rope),
    /// Nothing (a Produce with acks=0).
    Nothing,
    /// Close the connection.
    Close(String),
}

fn serves(api: ApiKey, version: i16) -> bool {
    SUPPORTED
        .iter()
        .any(|&(key, min, max)| key == api && (min..=max).contains(&version))
}

/// Handles one request frame (without its size prefix) from the client at `peer` (its
/// address without the port).
pub async fn handle(broker: &Rc<Broker>, mut frame: Bytes, peer: &str) -> Reply {
    let header = match RequestHeader::decode(&mut frame) {
        Ok(header) => header,
        Err(e) => return Reply::Close(format!("bad request header: {e}")),
    };
    let started = std::time::Instant::now();
    let (key, version) = (header.api_key, header.api_version);
    let client_id = header.client_id.clone();
    let reply = dispatch(broker, header, frame, peer).await;
    let took = started.elapsed();
    broker.metrics.request(key, took);
    // Fetch, JoinGroup and SyncGroup wait for data or other members by design.
    let waits = [ApiKey::Fetch, ApiKey::JoinGroup, ApiKey::SyncGroup]
        .iter()
        .any(|api| *api as i16 == key);
    if !waits && broker.slow_request.is_some_and(|slow| took >= slow) {
        broker.metrics.slow_request();
        let api = ApiKey::try_from(key).map_or_else(|()| key.to_string(), |a| format!("{a:?}"));
        tracing::warn!(
            api,
            version,
            client_id = client_id.as_deref().unwrap_or(""),
            peer,
            took_ms = took.as_millis() as u64,
            "slow request"
        );
    }
    reply
}

async fn dispatch(broker: &Rc<Broker>, header: RequestHeader, frame: Bytes, peer: &str) -> Reply {
    let Some(api) = header.api() else {
        return Reply::Close(format!("unknown API key {}", header.api_key));
    };
    if api == ApiKey::ApiVersions {
        return api_versions::handle(&header, frame);
    }
    if !serves(api, header.api_version) {
        return Reply::Close(format!("{api:?} v{} is not served", header.api_version));
    }
    let body = match decode_request_body(&header, frame) {
        Ok(body) => body,
        Err(e) => return Reply::Close(format!("malformed request: {e}")),
    };
    let version = header.api_version;
    let response = match body {
        RequestKind::Metadata(request) => {
            ResponseKind::Metadata(metadata::handle(broker, request, version).await)
        }
        RequestKind::Produce(request) => match produce::handle(broker, request).await {
            Some(response) => {
                let codes = response
                    .responses
                    .iter()
                    .flat_map(|t| &t.partition_responses);
                for partition in codes {
                    broker.metrics.error(api as i16, partition.error_code);
                }
                ResponseKind::Produce(response)
            }
            None => return Reply::Nothing,
        },
        RequestKind::Fetch(request) => {
            let response = fetch::handle(broker, request, version).await;
            broker.metrics.error(api as i16, response.error_code);
            for partition in response.responses.iter().flat_map(|t| &t.partitions) {
                broker.metrics.error(api as i16, partition.error_code);
            }
            return match spate_protocol::encode_fetch_response(
                header.correlation_id,
                version,
                &response,
            ) {
                Ok(rope) => Reply::Rope(rope),
                Err(e) => Reply::Close(format!("cannot encode a fetch response: {e}")),
            };
        }
        RequestKind::ListOffsets(request) => {
            ResponseKind::ListOffsets(list_offsets::handle(broker, request, version).await)
        }
        RequestKind::CreateTopics(request) => {
            ResponseKind::CreateTopics(create_topics::handle(broker, request, version).await)
        }
        RequestKind::DeleteTopics(request) => {
            ResponseKind::DeleteTopics(delete_topics::handle(broker, request, version).await)
        }
        RequestKind::DeleteRecords(request) => {
            ResponseKind::DeleteRecords(delete_records::handle(broker, request).await)
        }
        RequestKind::OffsetForLeaderEpoch(request) => ResponseKind::OffsetForLeaderEpoch(
            offset_for_leader_epoch::handle(broker, request).await,
        ),
        RequestKind::CreatePartitions(request) => {
            ResponseKind::CreatePartitions(create_partitions::handle(broker, request).await)
        }
        RequestKind::DescribeCluster(_) => {
            ResponseKind::DescribeCluster(describe_cluster::handle(broker))
        }
        RequestKind::DescribeConfigs(request) => {
            ResponseKind::DescribeConfigs(configs::describe(broker, request, version))
        }
        RequestKind::AlterConfigs(request) => {
            ResponseKind::AlterConfigs(configs::alter(broker, request).await)
        }
        RequestKind::IncrementalAlterConfigs(request) => {
            ResponseKind::IncrementalAlterConfigs(configs::incremental(broker, request).await)
        }
        RequestKind::DescribeLogDirs(request) => {
            ResponseKind::DescribeLogDirs(describe_log_dirs::handle(broker, request).await)
        }
        RequestKind::DescribeTopicPartitions(request) => ResponseKind::DescribeTopicPartitions(
            describe_topic_partitions::handle(broker, request),
        ),
        RequestKind::FindCoordinator(request) => {
            ResponseKind::FindCoordinator(find_coordinator::handle(broker, request, version))
        }
        RequestKind::JoinGroup(request) => {
            let client_id = header.client_id.as_deref().unwrap_or("");
            let client = (client_id, peer);
            ResponseKind::JoinGroup(join_group::handle(broker, request, version, client).await)
        }
        RequestKind::SyncGroup(request) => {
            ResponseKind::SyncGroup(sync_group::handle(broker, request, version).await)
        }
        RequestKind::Heartbeat(request) => {
            ResponseKind::Heartbeat(heartbeat::handle(broker, request).await)
        }
        RequestKind::LeaveGroup(request) => {
            ResponseKind::LeaveGroup(leave_group::handle(broker, request, version).await)
        }
        RequestKind::OffsetCommit(request) => {
            ResponseKind::OffsetCommit(offset_commit::handle(broker, request).await)
        }
        RequestKind::OffsetFetch(request) => {
            ResponseKind::OffsetFetch(offset_fetch::handle(broker, request, version).await)
        }
        RequestKind::ListGroups(request) => {
            ResponseKind::ListGroups(list_groups::handle(broker, request, version).await)
        }
        RequestKind::DescribeGroups(request) => {
            ResponseKind::DescribeGroups(describe_groups::handle(broker, request, version).await)
        }
        RequestKind::ConsumerGroupHeartbeat(request) => {
            let client = (header.client_id.as_deref().unwrap_or(""), peer);
            ResponseKind::ConsumerGroupHeartbeat(
                consumer_group_heartbeat::handle(broker, request, client).await,
            )
        }
        RequestKind::ConsumerGroupDescribe(request) => ResponseKind::ConsumerGroupDescribe(
            consumer_group_describe::handle(broker, request, version).await,
        ),
        RequestKind::InitProducerId(request) => {
            ResponseKind::InitProducerId(init_producer_id::handle(broker, request, version).await)
        }
        RequestKind::AddPartitionsToTxn(request) => ResponseKind::AddPartitionsToTxn(
            add_partitions_to_txn::handle(broker, request, version).await,
        ),
        RequestKind::AddOffsetsToTxn(request) => ResponseKind::AddOffsetsToTxn(
            add_offsets_to_txn::handle(broker, request, version).await,
        ),
        RequestKind::EndTxn(request) => {
            ResponseKind::EndTxn(end_txn::handle(broker, request, version).await)
        }
        RequestKind::TxnOffsetCommit(request) => {
            ResponseKind::TxnOffsetCommit(txn_offset_commit::handle(broker, request, version).await)
        }
        RequestKind::DescribeProducers(request) => {
            ResponseKind::DescribeProducers(describe_producers::handle(broker, request).await)
        }
        RequestKind::DescribeTransactions(request) => {
            ResponseKind::DescribeTransactions(describe_transactions::handle(broker, request).await)
        }
        RequestKind::ListTransactions(request) => {
            ResponseKind::ListTransactions(list_transactions::handle(broker, request).await)
        }
        RequestKind::OffsetDelete(request) => {
            ResponseKind::OffsetDelete(offset_delete::handle(broker, request).await)
        }
        RequestKind::DeleteGroups(request) => {
            ResponseKind::DeleteGroups(delete_groups::handle(broker, request).await)
        }
        other => return Reply::Close(format!("no handler for {other:?}")),
    };
    respond(header.correlation_id, api, version, &response)
}

fn respond(correlation_id: i32, api: ApiKey, version: i16, response: &ResponseKind) -> Reply {
    let mut out = BytesMut::with_capacity(256);
    match encode_response(&mut out, correlation_id, api, version, response) {
        Ok(()) => Reply::Frame(out),
        Err(e) => Reply::Close(format!("cannot encode the response: {e}")),
    }
}

/// Kafka error codes the handlers use.
pub mod error_code {
    /// No error.
    pub const NONE: i16 = 0;
    /// OFFSET_OUT_OF_RANGE.
    pub const OFFSET_OUT_OF_RANGE: i16 = 1;
    /// CORRUPT_MESSAGE.
    pub const CORRUPT_MESSAGE: i16 = 2;
    /// UNKNOWN_TOPIC_OR_PARTITION.
    pub const UNKNOWN_TOPIC_OR_PARTITION: i16 = 3;
    /// MESSAGE_TOO_LARGE.
    pub const MESSAGE_TOO_LARGE: i16 = 10;
    /// INVALID_REQUIRED_ACKS.
    pub const INVALID_REQUIRED_ACKS: i16 = 21;
    /// INVALID_TOPIC_EXCEPTION.
    pub const INVALID_TOPIC: i16 = 17;
    /// UNSUPPORTED_VERSION.
    pub const UNSUPPORTED_VERSION: i16 = 35;
    /// TOPIC_ALREADY_EXISTS.
    pub const TOPIC_ALREADY_EXISTS: i16 = 36;
    /// INVALID_PARTITIONS.
    pub const INVALID_PARTITIONS: i16 = 37;
    /// INVALID_REPLICATION_FACTOR.
    pub const INVALID_REPLICATION_FACTOR: i16 = 38;
    /// INVALID_CONFIG.
    pub const INVALID_CONFIG: i16 = 40;
    /// INVALID_REQUEST.
    pub const INVALID_REQUEST: i16 = 42;
    /// INVALID_TXN_STATE.
    pub const INVALID_TXN_STATE: i16 = 48;
    /// KAFKA_STORAGE_ERROR.
    pub const KAFKA_STORAGE_ERROR: i16 = 56;
    /// INVALID_RECORD.
    pub const INVALID_RECORD: i16 = 87;
    /// UNKNOWN_TOPIC_ID.
    pub const UNKNOWN_TOPIC_ID: i16 = 100;
}
