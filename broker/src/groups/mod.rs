//! Consumer groups, classic protocol: the coordinator of every group whose
//! `__consumer_offsets` partition this shard owns (Kafka's `abs(hash(group)) % partitions`),
//! with the group state machine (Empty, PreparingRebalance, CompletingRebalance, Stable;
//! a deleted group is gone, which DescribeGroups reports as Dead), member ids (KIP-394),
//! static membership (KIP-345), session and rebalance timeouts, and committed offsets,
//! which are written to the group's offsets partition before they are acknowledged and
//! replayed from it at start-up.

pub mod consumer;
pub mod store;

use crate::api::Broker;
use crate::now_ms;
use crate::runtime;
use bytes::Bytes;
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::rc::Rc;
use std::time::{Duration, Instant};
use store::{Committed, Entry};

/// The internal topic holding committed offsets.
pub const OFFSETS_TOPIC: &str = "__consumer_offsets";
/// Its partition count when the broker creates it (`offsets.topic.num.partitions`; Kafka's
/// default is 50, fewer keeps a small broker light). An existing topic keeps its count.
pub const OFFSETS_PARTITIONS: i32 = 16;
/// `group.min.session.timeout.ms` and `group.max.session.timeout.ms`.
pub const SESSION_TIMEOUT_MS: std::ops::RangeInclusive<i32> = 6_000..=1_800_000;
/// `offset.metadata.max.bytes`.
pub const MAX_OFFSET_METADATA_BYTES: usize = 4096;
/// `group.max.size`: members (and member ids handed out but not yet joined) per group.
pub const MAX_MEMBERS: usize = 1000;
/// Protocol metadata and assignment bytes one member may hold.
pub const MAX_MEMBER_BYTES: usize = 1 << 20;
/// How often members' sessions are checked.
const EXPIRY_CHECK: Duration = Duration::from_millis(200);
/// How long a member id handed out with MEMBER_ID_REQUIRED waits for its join.
const PENDING_MEMBER_TIMEOUT: Duration = Duration::from_secs(300);
/// How often committed offsets are checked against `offsets.retention.minutes`.
const RETENTION_CHECK: Duration = Duration::from_secs(60);

/// Kafka error codes the coordinator answers with.
pub mod code {
    /// No error.
    pub const NONE: i16 = 0;
    /// OFFSET_METADATA_TOO_LARGE.
    pub const OFFSET_METADATA_TOO_LARGE: i16 = 12;
    /// COORDINATOR_NOT_AVAILABLE.
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    /// ILLEGAL_GENERATION.
    pub const ILLEGAL_GENERATION: i16 = 22;
    /// INCONSISTENT_GROUP_PROTOCOL.
    pub const INCONSISTENT_GROUP_PROTOCOL: i16 = 23;
    /// INVALID_GROUP_ID.
    pub const INVALID_GROUP_ID: i16 = 24;
    /// UNKNOWN_MEMBER_ID.
    pub const UNKNOWN_MEMBER_ID: i16 = 25;
    /// INVALID_SESSION_TIMEOUT.
    pub const INVALID_SESSION_TIMEOUT: i16 = 26;
    /// REBALANCE_IN_PROGRESS.
    pub const REBALANCE_IN_PROGRESS: i16 = 27;
    /// NON_EMPTY_GROUP.
    pub const NON_EMPTY_GROUP: i16 = 68;
    /// GROUP_ID_NOT_FOUND.
    pub const GROUP_ID_NOT_FOUND: i16 = 69;
    /// MEMBER_ID_REQUIRED.
    pub const MEMBER_ID_REQUIRED: i16 = 79;
    /// GROUP_SUBSCRIBED_TO_TOPIC.
    pub const GROUP_SUBSCRIBED_TO_TOPIC: i16 = 86;
    /// GROUP_MAX_SIZE_REACHED.
    pub const GROUP_MAX_SIZE_REACHED: i16 = 81;
    /// FENCED_INSTANCE_ID.
    pub const FENCED_INSTANCE_ID: i16 = 82;
}

/// Kafka's offsets partition for a group: `abs(groupId.hashCode()) % count`, with Java's
/// string hash over UTF-16 code units (and `abs(MIN_VALUE)` taken as 0).
pub fn partition_for(group: &str, count: i32) -> i32 {
    let hash = group.encode_utf16().fold(0_i32, |h, unit| {
        h.wrapping_mul(31).wrapping_add(i32::from(unit))
    });
    let positive = if hash == i32::MIN { 0 } else { hash.abs() };
    positive % count.max(1)
}

/// A group's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum State {
    /// No members (offsets may remain).
    Empty,
    /// Waiting for members to (re)join.
    PreparingRebalance,
    /// Waiting for the leader's assignment.
    CompletingRebalance,
    /// Every member has its assignment.
    Stable,
}

impl State {
    /// The name Kafka reports.
    pub fn name(self) -> &'static str {
        match self {
            State::Empty => "Empty",
            State::PreparingRebalance => "PreparingRebalance",
            State::CompletingRebalance => "CompletingRebalance",
            State::Stable => "Stable",
        }
    }
}

/// What a JoinGroup gets back.
#[derive(Debug, Clone, Default)]
pub struct Joined {
    /// The error code.
    pub error: i16,
    /// The generation joined.
    pub generation: i32,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol: Option<String>,
    /// The leader's member id.
    pub leader: String,
    /// The member id (new ones come back with MEMBER_ID_REQUIRED).
    pub member_id: String,
    /// For the leader: every member with its metadata for the chosen protocol.
    pub members: Vec<(String, Option<String>, Bytes)>,
    /// A static leader that rejoined a stable group: the assignment stands (KIP-814).
    pub skip_assignment: bool,
}

impl Joined {
    fn failed(error: i16, member_id: &str) -> Joined {
        Joined {
            error,
            generation: -1,
            member_id: member_id.to_string(),
            ..Joined::default()
        }
    }
}

/// What a SyncGroup gets back.
#[derive(Debug, Clone, Default)]
pub struct Synced {
    /// The error code.
    pub error: i16,
    /// The group's protocol type.
    pub protocol_type: Option<String>,
    /// The chosen protocol.
    pub protocol: Option<String>,
    /// The member's assignment.
    pub assignment: Bytes,
}

/// A JoinGroup, as the coordinator needs it.
#[derive(Debug, Clone)]
pub struct JoinRequest {
    /// The group.
    pub group: String,
    /// The member id ("" for a new member).
    pub member_id: String,
    /// The static member's instance id.
    pub instance_id: Option<String>,
    /// The client's id and host (DescribeGroups shows them).
    pub client_id: String,
    /// The client's address.
    pub client_host: String,
    /// `session.timeout.ms`.
    pub session_timeout_ms: i32,
    /// `max.poll.interval.ms` (v1+), else the session timeout.
    pub rebalance_timeout_ms: i32,
    /// "consumer" for consumers.
    pub protocol_type: String,
    /// Assignment strategies with their metadata, most preferred first.
    pub protocols: Vec<(String, Bytes)>,
    /// v4+: a new member first gets its id with MEMBER_ID_REQUIRED (KIP-394).
    pub require_known_member: bool,
}

#[derive(Debug)]
struct Member {
    instance_id: Option<String>,
    client_id: String,
    client_host: String,
    session_timeout: Duration,
    rebalance_timeout: Duration,
    protocols: Vec<(String, Bytes)>,
    assignment: Bytes,
    joining: Option<flume::Sender<Joined>>,
    syncing: Option<flume::Sender<Synced>>,
    last_seen: Instant,
}

impl Member {
    fn new(instance_id: Option<String>, client_id: &str, client_host: &str) -> Member {
        Member {
            instance_id,
            client_id: client_id.to_string(),
            client_host: client_host.to_string(),
            session_timeout: Duration::ZERO,
            rebalance_timeout: Duration::ZERO,
            protocols: Vec::new(),
            assignment: Bytes::new(),
            joining: None,
            syncing: None,
            last_seen: Instant::now(),
        }
    }
}

/// One group's state, on its coordinator shard.
#[derive(Debug)]
pub struct Group {
    state: State,
    generation: i32,
    protocol_type: Option<String>,
    protocol: Option<String>,
    leader: Option<String>,
    /// Members by id, with the order they joined in.
    members: BTreeMap<String, Member>,
    joined_order: Vec<String>,
    /// Member ids handed out with MEMBER_ID_REQUIRED, not yet joined.
    pending: HashMap<String, Instant>,
    /// Counts rebalances, so a timer acts only on the rebalance that set it.
    rebalance: u64,
    /// A new group's first rebalance does not complete before this.
    not_before: Option<Instant>,
    /// When the group last lost its last member (ms since the epoch; 0: not since start-up).
    empty_since_ms: i64,
    offsets: BTreeMap<(String, i32), Committed>,
}

impl Group {
    fn new() -> Group {
        Group {
            state: State::Empty,
            generation: 0,
            protocol_type: None,
            protocol: None,
            leader: None,
            members: BTreeMap::new(),
            joined_order: Vec::new(),
            pending: HashMap::new(),
            rebalance: 0,
            not_before: None,
            empty_since_ms: 0,
            offsets: BTreeMap::new(),
        }
    }

    /// The group's state.
    pub fn state(&self) -> State {
        self.state
    }

    /// The group's protocol type ("" when it has none).
    pub fn protocol_type(&self) -> &str {
        self.protocol_type.as_deref().unwrap_or("")
    }

    /// The chosen protocol ("" outside a generation).
    pub fn protocol(&self) -> &str {
        self.protocol.as_deref().unwrap_or("")
    }

    /// The committed offsets.
    pub fn offsets(&self) -> &BTreeMap<(String, i32), Committed> {
        &self.offsets
    }

    /// Each member: id, instance id, client id, client host, metadata for the chosen
    /// protocol, assignment.
    pub fn describe_members(&self) -> Vec<(String, Option<String>, String, String, Bytes, Bytes)> {
        self.members
            .iter()
            .map(|(id, m)| {
                (
                    id.clone(),
                    m.instance_id.clone(),
                    m.client_id.clone(),
                    m.client_host.clone(),
                    self.metadata_for(m),
                    m.assignment.clone(),
                )
            })
            .collect()
    }

    fn metadata_for(&self, member: &Member) -> Bytes {
        let chosen = self.protocol.as_deref().unwrap_or("");
        member
            .protocols
            .iter()
            .find(|(name, _)| name == chosen)
            .map(|(_, metadata)| metadata.clone())
            .unwrap_or_default()
    }

    fn become_empty(&mut self) {
        self.state = State::Empty;
        self.protocol = None;
        self.leader = None;
        self.empty_since_ms = now_ms();
    }

    /// The offsets past `offsets.retention.minutes` (`retention_ms`) at `now_ms`: a group
    /// with members keeps all of them; an empty one loses each offset once the retention
    /// has passed since it was committed and since the group became empty (as Kafka).
    pub fn expired_offsets(&self, now_ms: i64, retention_ms: i64) -> Vec<(String, i32)> {
        if !self.members.is_empty() {
            return Vec::new();
        }
        self.offsets
            .iter()
            .filter(|(_, c)| {
                let since = c.commit_timestamp.max(self.empty_since_ms);
                now_ms.saturating_sub(since) > retention_ms
            })
            .map(|(key, _)| key.clone())
            .collect()
    }

    /// The topics members subscribe to, when the group speaks the consumer protocol (its
    /// subscription starts with a version and the topic names).
    fn subscribed_topics(&self) -> Vec<String> {
        self.members
            .values()
            .flat_map(|m| parse_subscription(&self.metadata_for(m)))
            .collect()
    }

    /// Every member, in join order, with its metadata for the chosen protocol (what the
    /// leader assigns from).
    fn members_for_leader(&self) -> Vec<(String, Option<String>, Bytes)> {
        self.joined_order
            .iter()
            .filter_map(|id| {
                let member = self.members.get(id)?;
                Some((
                    id.clone(),
                    member.instance_id.clone(),
                    self.metadata_for(member),
                ))
            })
            .collect()
    }

    /// Whether a member with these protocols can join: same protocol type, and a protocol
    /// every member supports.
    fn accepts(&self, protocol_type: &str, protocols: &[(String, Bytes)]) -> bool {
        if self.members.is_empty() {
            return true;
        }
        if self.protocol_type.as_deref() != Some(protocol_type) {
            return false;
        }
        protocols.iter().any(|(name, _)| {
            self.members
                .values()
                .all(|m| m.protocols.iter().any(|(other, _)| other == name))
        })
    }

    fn rebalance_timeout(&self) -> Duration {
        self.members
            .values()
            .map(|m| m.rebalance_timeout)
            .max()
            .unwrap_or(Duration::ZERO)
    }

    fn member_by_instance(&self, instance: &str) -> Option<String> {
        self.members
            .iter()
            .find(|(_, m)| m.instance_id.as_deref() == Some(instance))
            .map(|(id, _)| id.clone())
    }

    /// Removes a member, answering its waiting join or sync with `error`.
    fn remove(&mut self, id: &str, error: i16) -> bool {
        self.pending.remove(id);
        let Some(member) = self.members.remove(id) else {
            return false;
        };
        self.joined_order.retain(|m| m != id);
        if let Some(joining) = member.joining {
            let _ = joining.try_send(Joined::failed(error, id));
        }
        if let Some(syncing) = member.syncing {
            let _ = syncing.try_send(Synced {
                error,
                ..Synced::default()
            });
        }
        if self.leader.as_deref() == Some(id) {
            self.leader = None;
        }
        true
    }

    /// The protocol most members prefer among those all support.
    fn choose_protocol(&self) -> Option<String> {
        let first = self.members.values().next()?;
        let candidates: Vec<&str> = first
            .protocols
            .iter()
            .map(|(name, _)| name.as_str())
            .filter(|name| {
                self.members
                    .values()
                    .all(|m| m.protocols.iter().any(|(other, _)| other == name))
            })
            .collect();
        let mut votes: Vec<(usize, &str)> = candidates.iter().map(|c| (0, *c)).collect();
        for member in self.members.values() {
            if let Some(pick) = member
                .protocols
                .iter()
                .find(|(name, _)| candidates.contains(&name.as_str()))
            {
                if let Some(slot) = votes.iter_mut().find(|(_, c)| *c == pick.0) {
                    slot.0 += 1;
                }
            }
        }
        // Most votes; ties go to the earlier candidate.
        let best = votes
            .iter()
            .enumerate()
            .max_by_key(|(index, (count, _))| (*count, std::cmp::Reverse(*index)))?;
        Some(best.1 .1.to_string())
    }
}

/// Timing settings of the group coordinator.
#[derive(Debug, Clone, Copy)]
pub struct GroupTimes {
    /// `group.initial.rebalance.delay.ms`: a new classic group waits this long for more
    /// members before its first assignment.
    pub initial_delay: Duration,
    /// `offsets.retention.minutes`: how long an empty group's offsets are kept.
    pub offsets_retention: Duration,
    /// `group.consumer.session.timeout.ms`: a consumer-protocol member silent this long is
    /// removed.
    pub consumer_session: Duration,
    /// `group.consumer.heartbeat.interval.ms`: how often consumer-protocol members beat.
    pub consumer_heartbeat: Duration,
}

/// The groups this shard coordinates.
#[derive(Debug)]
pub struct Groups {
    /// Classic groups' state, and every group's committed offsets.
    groups: RefCell<HashMap<String, Group>>,
    /// Consumer-protocol (KIP-848) groups' membership.
    consumer: RefCell<HashMap<String, consumer::ConsumerGroup>>,
    /// Offsets committed in open transactions (TxnOffsetCommit), by (offsets partition,
    /// producer id): applied when the commit marker is written, dropped on abort.
    transactional: RefCell<HashMap<(i32, i64), Vec<Entry>>>,
    times: GroupTimes,
}

impl Groups {
    /// No groups yet.
    pub fn new(times: GroupTimes) -> Groups {
        Groups {
            groups: RefCell::new(HashMap::new()),
            consumer: RefCell::new(HashMap::new()),
            transactional: RefCell::new(HashMap::new()),
            times,
        }
    }

    /// The coordinator's timing settings.
    pub fn times(&self) -> GroupTimes {
        self.times
    }

    /// Applies replayed entries (start-up).
    pub fn restore(&self, entries: Vec<Entry>) {
        let mut groups = self.groups.borrow_mut();
        for entry in entries {
            apply(&mut groups, entry);
        }
    }

    /// Ends producer `producer`'s transaction on offsets partition `partition`: its
    /// offsets apply (`commit`) or are dropped.
    pub fn end_transaction(&self, partition: i32, producer: i64, commit: bool) {
        let Some(entries) = self
            .transactional
            .borrow_mut()
            .remove(&(partition, producer))
        else {
            return;
        };
        if commit {
            self.restore(entries);
        }
    }

    /// Whether an open transaction holds an offset of `group` for (`topic`, `partition`)
    /// (OffsetFetch's `require_stable`).
    pub fn unstable(&self, group: &str, topic: &str, partition: i32) -> bool {
        self.transactional.borrow().values().flatten().any(|entry| {
            matches!(entry, Entry::Offset { group: g, topic: t, partition: p, .. }
                if g == group && t == topic && *p == partition)
        })
    }

    /// Runs `read` on the group, if this shard has it.
    pub fn with<R>(&self, group: &str, read: impl FnOnce(&Group) -> R) -> Option<R> {
        self.groups.borrow().get(group).map(read)
    }

    /// Every group's (name, protocol type, state, group type: "classic" or "consumer").
    pub fn list(&self) -> Vec<(String, String, &'static str, &'static str)> {
        let consumer = self.consumer.borrow();
        let mut listed: Vec<_> = consumer
            .iter()
            .filter(|(_, g)| !g.is_empty())
            .map(|(name, g)| {
                let settled = g.members.values().all(|m| m.epoch == g.epoch);
                let state = if settled { "Stable" } else { "Reconciling" };
                (name.clone(), "consumer".to_string(), state, "consumer")
            })
            .collect();
        listed.extend(
            self.groups
                .borrow()
                .iter()
                .filter(|(name, _)| consumer.get(*name).is_none_or(|g| g.is_empty()))
                .map(|(name, g)| {
                    let kind = g.protocol_type().to_string();
                    (name.clone(), kind, g.state.name(), "classic")
                }),
        );
        listed
    }

    /// Every group's state, member count and committed offsets, for the metrics.
    pub fn metrics(&self) -> Vec<crate::metrics::GroupState> {
        let consumer = self.consumer.borrow();
        self.list()
            .into_iter()
            .map(|(name, _, state, kind)| {
                let members = if kind == "consumer" {
                    consumer.get(&name).map_or(0, |g| g.members.len())
                } else {
                    self.with(&name, |g| g.members.len()).unwrap_or(0)
                };
                let offsets = self
                    .with(&name, |g| {
                        g.offsets
                            .iter()
                            .map(|((topic, partition), c)| (topic.clone(), *partition, c.offset))
                            .collect()
                    })
                    .unwrap_or_default();
                crate::metrics::GroupState {
                    name,
                    state,
                    members,
                    offsets,
                }
            })
            .collect()
    }
}

fn apply(groups: &mut HashMap<String, Group>, entry: Entry) {
    match entry {
        Entry::Offset {
            group,
            topic,
            partition,
            committed,
        } => {
            let slot = groups.entry(group.clone()).or_insert_with(Group::new);
            match committed {
                Some(committed) => {
                    slot.offsets.insert((topic, partition), committed);
                }
                None => {
                    slot.offsets.remove(&(topic, partition));
                    if slot.offsets.is_empty() && slot.members.is_empty() {
                        groups.remove(&group);
                    }
                }
            }
        }
        Entry::Group { group, deleted } => {
            if deleted {
                groups.remove(&group);
            }
        }
    }
}

/// The topic names of a consumer-protocol subscription (ConsumerProtocolSubscription:
/// int16 version, then an array of strings); nothing if it does not parse.
fn parse_subscription(mut metadata: &[u8]) -> Vec<String> {
    use bytes::Buf;
    let mut topics = Vec::new();
    if metadata.remaining() < 6 {
        return topics;
    }
    metadata.advance(2);
    let count = metadata.get_i32();
    for _ in 0..count.max(0) {
        if metadata.remaining() < 2 {
            return Vec::new();
        }
        let Ok(len) = usize::try_from(metadata.get_i16()) else {
            return Vec::new();
        };
        if metadata.remaining() < len {
            return Vec::new();
        }
        topics.push(String::from_utf8_lossy(&metadata[..len]).into_owned());
        metadata.advance(len);
    }
    topics
}

fn new_member_id(client_id: &str) -> String {
    format!(
        "{client_id}-{}",
        crate::topics::random_uuid(client_id).hyphenated()
    )
}

/// JoinGroup, on the coordinator shard: waits until the rebalance completes.
pub async fn join(broker: &Rc<Broker>, request: JoinRequest) -> Joined {
    if request.group.is_empty() {
        return Joined::failed(code::INVALID_GROUP_ID, &request.member_id);
    }
    if !SESSION_TIMEOUT_MS.contains(&request.session_timeout_ms) {
        return Joined::failed(code::INVALID_SESSION_TIMEOUT, &request.member_id);
    }
    let member_bytes: usize = request
        .protocols
        .iter()
        .map(|(n, m)| n.len() + m.len())
        .sum();
    if request.protocol_type.is_empty()
        || request.protocols.is_empty()
        || member_bytes > MAX_MEMBER_BYTES
    {
        return Joined::failed(code::INCONSISTENT_GROUP_PROTOCOL, &request.member_id);
    }
    if broker
        .groups
        .consumer
        .borrow()
        .get(&request.group)
        .is_some_and(|g| !g.is_empty())
    {
        // The name belongs to a consumer-protocol group.
        return Joined::failed(code::INCONSISTENT_GROUP_PROTOCOL, &request.member_id);
    }
    let (reply, answer) = flume::bounded(1);
    {
        let mut groups = broker.groups.groups.borrow_mut();
        let group = groups
            .entry(request.group.clone())
            .or_insert_with(Group::new);
        if !group.accepts(&request.protocol_type, &request.protocols) {
            return Joined::failed(code::INCONSISTENT_GROUP_PROTOCOL, &request.member_id);
        }
        let mut member_id = request.member_id.clone();
        if member_id.is_empty() {
            member_id = new_member_id(&request.client_id);
            match &request.instance_id {
                Some(instance) => {
                    if let Some(old) = group.member_by_instance(instance) {
                        // A static member restarted: it takes over its old identity.
                        if let Some(outcome) = replace_static(group, &old, &member_id, &request) {
                            return outcome;
                        }
                    }
                }
                None if request.require_known_member => {
                    if group.members.len() + group.pending.len() >= MAX_MEMBERS {
                        return Joined::failed(code::GROUP_MAX_SIZE_REACHED, "");
                    }
                    group.pending.insert(member_id.clone(), Instant::now());
                    return Joined::failed(code::MEMBER_ID_REQUIRED, &member_id);
                }
                None => {}
            }
            if !group.members.contains_key(&member_id) && group.members.len() >= MAX_MEMBERS {
                return Joined::failed(code::GROUP_MAX_SIZE_REACHED, "");
            }
        } else if !group.members.contains_key(&member_id)
            && group.pending.remove(&member_id).is_none()
        {
            return Joined::failed(code::UNKNOWN_MEMBER_ID, &member_id);
        } else if let (Some(member), Some(instance)) =
            (group.members.get(&member_id), &request.instance_id)
        {
            if member.instance_id.as_deref() != Some(instance.as_str()) {
                return Joined::failed(code::FENCED_INSTANCE_ID, &member_id);
            }
        }

        // A known member rejoining a settled group with unchanged metadata, not its leader,
        // gets the current generation back without a rebalance.
        if let Some(member) = group.members.get(&member_id) {
            let unchanged = member.protocols == request.protocols;
            let settled = matches!(group.state, State::Stable | State::CompletingRebalance);
            if unchanged && settled && group.leader.as_deref() != Some(member_id.as_str()) {
                return Joined {
                    error: code::NONE,
                    generation: group.generation,
                    protocol_type: group.protocol_type.clone(),
                    protocol: group.protocol.clone(),
                    leader: group.leader.clone().unwrap_or_default(),
                    member_id,
                    members: Vec::new(),
                    skip_assignment: false,
                };
            }
        }
        let member = group.members.entry(member_id.clone()).or_insert_with(|| {
            Member::new(
                request.instance_id.clone(),
                &request.client_id,
                &request.client_host,
            )
        });
        member.session_timeout = millis(request.session_timeout_ms);
        member.rebalance_timeout =
            millis(request.rebalance_timeout_ms.max(0)).max(member.session_timeout);
        member.protocols = request.protocols.clone();
        member.last_seen = Instant::now();
        if let Some(previous) = member.joining.replace(reply) {
            // The same member joined twice: the older request loses.
            let _ = previous.try_send(Joined::failed(code::UNKNOWN_MEMBER_ID, &member_id));
        }
        if !group.joined_order.contains(&member_id) {
            group.joined_order.push(member_id.clone());
        }
        if group.protocol_type.is_none() || group.members.len() == 1 {
            group.protocol_type = Some(request.protocol_type.clone());
        }
        if group.state != State::PreparingRebalance {
            prepare_rebalance(broker, &request.group, group);
        }
        try_complete_join(group, false);
    }
    answer
        .recv_async()
        .await
        .unwrap_or_else(|_| Joined::failed(code::REBALANCE_IN_PROGRESS, &request.member_id))
}

/// A static member that restarted (new member id, same instance id) replaces its old self.
/// In a stable group whose chosen protocol stays the same this needs no rebalance (as in
/// Kafka): the answer comes at once, and a leader is told to keep the assignment.
fn replace_static(
    group: &mut Group,
    old: &str,
    new: &str,
    request: &JoinRequest,
) -> Option<Joined> {
    let mut member = group.members.remove(old)?;
    if let Some(joining) = member.joining.take() {
        let _ = joining.try_send(Joined::failed(code::FENCED_INSTANCE_ID, old));
    }
    if let Some(syncing) = member.syncing.take() {
        let _ = syncing.try_send(Synced {
            error: code::FENCED_INSTANCE_ID,
            ..Synced::default()
        });
    }
    member.last_seen = Instant::now();
    member.client_id = request.client_id.clone();
    member.client_host = request.client_host.clone();
    member.protocols = request.protocols.clone();
    group.members.insert(new.to_string(), member);
    for id in &mut group.joined_order {
        if id == old {
            *id = new.to_string();
        }
    }
    let leads = group.leader.as_deref() == Some(old);
    if leads {
        group.leader = Some(new.to_string());
    }
    if group.state != State::Stable || group.choose_protocol() != group.protocol {
        return None;
    }
    Some(Joined {
        error: code::NONE,
        generation: group.generation,
        protocol_type: group.protocol_type.clone(),
        protocol: group.protocol.clone(),
        leader: group.leader.clone().unwrap_or_default(),
        member_id: new.to_string(),
        members: if leads {
            group.members_for_leader()
        } else {
            Vec::new()
        },
        skip_assignment: leads,
    })
}

fn millis(ms: i32) -> Duration {
    Duration::from_millis(u64::try_from(ms).unwrap_or(0))
}

/// Starts a rebalance: members must rejoin within the rebalance timeout (a new group waits
/// the initial delay for more members first).
fn prepare_rebalance(broker: &Rc<Broker>, name: &str, group: &mut Group) {
    if group.state == State::CompletingRebalance {
        for member in group.members.values_mut() {
            if let Some(syncing) = member.syncing.take() {
                let _ = syncing.try_send(Synced {
                    error: code::REBALANCE_IN_PROGRESS,
                    ..Synced::default()
                });
            }
        }
    }
    let initial = group.state == State::Empty;
    group.state = State::PreparingRebalance;
    group.rebalance += 1;
    let delay = if initial {
        broker
            .groups
            .times
            .initial_delay
            .min(group.rebalance_timeout())
    } else {
        group.rebalance_timeout()
    };
    group.not_before = initial.then(|| Instant::now() + delay);
    let (broker, name, rebalance) = (broker.clone(), name.to_string(), group.rebalance);
    runtime::spawn_detached(async move {
        runtime::sleep(delay).await;
        let mut groups = broker.groups.groups.borrow_mut();
        if let Some(group) = groups.get_mut(&name) {
            if group.state == State::PreparingRebalance && group.rebalance == rebalance {
                group.not_before = None;
                try_complete_join(group, true);
            }
        }
    });
}

/// Completes the join phase when every member has rejoined (or, `forced`, when the
/// rebalance timeout passed: members that did not rejoin are removed).
fn try_complete_join(group: &mut Group, forced: bool) {
    if group.state != State::PreparingRebalance {
        return;
    }
    if group.not_before.is_some_and(|t| Instant::now() < t) {
        return;
    }
    let all_joined = group.members.values().all(|m| m.joining.is_some());
    if !all_joined && !forced {
        return;
    }
    let missing: Vec<String> = group
        .members
        .iter()
        .filter(|(_, m)| m.joining.is_none())
        .map(|(id, _)| id.clone())
        .collect();
    for id in missing {
        group.remove(&id, code::UNKNOWN_MEMBER_ID);
    }
    group.generation += 1;
    if group.members.is_empty() {
        group.become_empty();
        return;
    }
    group.protocol = group.choose_protocol();
    if group
        .leader
        .as_ref()
        .is_none_or(|leader| !group.members.contains_key(leader))
    {
        group.leader = group.joined_order.first().cloned();
    }
    group.state = State::CompletingRebalance;
    let leader = group.leader.clone().unwrap_or_default();
    let everyone = group.members_for_leader();
    let now = Instant::now();
    let (generation, protocol_type, protocol) = (
        group.generation,
        group.protocol_type.clone(),
        group.protocol.clone(),
    );
    for (id, member) in &mut group.members {
        member.assignment = Bytes::new();
        member.last_seen = now;
        if let Some(joining) = member.joining.take() {
            let _ = joining.try_send(Joined {
                error: code::NONE,
                generation,
                protocol_type: protocol_type.clone(),
                protocol: protocol.clone(),
                leader: leader.clone(),
                member_id: id.clone(),
                members: if *id == leader {
                    everyone.clone()
                } else {
                    Vec::new()
                },
                skip_assignment: false,
            });
        }
    }
}

/// Checks a member's identity and generation; `Err` carries the error code.
fn check_member(
    group: &Group,
    member_id: &str,
    instance_id: Option<&str>,
    generation: i32,
) -> Result<(), i16> {
    let member = group.members.get(member_id);
    if let Some(instance) = instance_id {
        match group.member_by_instance(instance) {
            Some(owner) if owner != member_id => return Err(code::FENCED_INSTANCE_ID),
            _ => {}
        }
    }
    if member.is_none() {
        return Err(code::UNKNOWN_MEMBER_ID);
    }
    if generation != group.generation {
        return Err(code::ILLEGAL_GENERATION);
    }
    Ok(())
}

/// SyncGroup, on the coordinator shard: the leader hands out assignments; the others wait
/// for them.
pub async fn sync(
    broker: &Rc<Broker>,
    name: &str,
    generation: i32,
    member_id: &str,
    instance_id: Option<&str>,
    protocol: (Option<String>, Option<String>),
    assignments: Vec<(String, Bytes)>,
) -> Synced {
    let failed = |error| Synced {
        error,
        ..Synced::default()
    };
    let (reply, answer) = flume::bounded(1);
    {
        let mut groups = broker.groups.groups.borrow_mut();
        let Some(group) = groups.get_mut(name) else {
            return failed(code::UNKNOWN_MEMBER_ID);
        };
        if let Err(error) = check_member(group, member_id, instance_id, generation) {
            return failed(error);
        }
        let (protocol_type, protocol_name) = protocol;
        if protocol_type.is_some_and(|t| Some(t) != group.protocol_type)
            || protocol_name.is_some_and(|p| Some(p) != group.protocol)
        {
            return failed(code::INCONSISTENT_GROUP_PROTOCOL);
        }
        let answer_of = |group: &Group, member: &Member| Synced {
            error: code::NONE,
            protocol_type: group.protocol_type.clone(),
            protocol: group.protocol.clone(),
            assignment: member.assignment.clone(),
        };
        match group.state {
            State::Empty => return failed(code::UNKNOWN_MEMBER_ID),
            State::PreparingRebalance => return failed(code::REBALANCE_IN_PROGRESS),
            State::Stable => {
                let Some(member) = group.members.get(member_id) else {
                    return failed(code::UNKNOWN_MEMBER_ID);
                };
                return answer_of(group, member);
            }
            State::CompletingRebalance => {
                if let Some(member) = group.members.get_mut(member_id) {
                    member.last_seen = Instant::now();
                    member.syncing = Some(reply);
                }
                if group.leader.as_deref() == Some(member_id) {
                    let total: usize = assignments.iter().map(|(_, a)| a.len()).sum();
                    if total > MAX_MEMBER_BYTES.saturating_mul(group.members.len()) {
                        return failed(code::INCONSISTENT_GROUP_PROTOCOL);
                    }
                    let mut given: HashMap<String, Bytes> = assignments.into_iter().collect();
                    for (id, member) in &mut group.members {
                        member.assignment = given.remove(id).unwrap_or_default();
                    }
                    group.state = State::Stable;
                    let snapshot: Vec<(Synced, Option<flume::Sender<Synced>>)> = group
                        .members
                        .values()
                        .map(|m| (answer_of(group, m), None))
                        .collect();
                    for ((answer, _), member) in
                        snapshot.into_iter().zip(group.members.values_mut())
                    {
                        if let Some(syncing) = member.syncing.take() {
                            let _ = syncing.try_send(answer);
                        }
                    }
                }
            }
        }
    }
    answer
        .recv_async()
        .await
        .unwrap_or_else(|_| failed(code::REBALANCE_IN_PROGRESS))
}

/// Heartbeat, on the coordinator shard.
pub fn heartbeat(
    broker: &Broker,
    name: &str,
    generation: i32,
    member_id: &str,
    instance_id: Option<&str>,
) -> i16 {
    let mut groups = broker.groups.groups.borrow_mut();
    let Some(group) = groups.get_mut(name) else {
        return code::UNKNOWN_MEMBER_ID;
    };
    if let Err(error) = check_member(group, member_id, instance_id, generation) {
        return error;
    }
    if let Some(member) = group.members.get_mut(member_id) {
        member.last_seen = Instant::now();
    }
    match group.state {
        State::PreparingRebalance => code::REBALANCE_IN_PROGRESS,
        State::Empty => code::UNKNOWN_MEMBER_ID,
        State::CompletingRebalance | State::Stable => code::NONE,
    }
}

/// LeaveGroup, on the coordinator shard: each (member id, instance id) leaves; the answer
/// per member is its error code.
pub fn leave(broker: &Rc<Broker>, name: &str, leaving: &[(String, Option<String>)]) -> Vec<i16> {
    let mut groups = broker.groups.groups.borrow_mut();
    let Some(group) = groups.get_mut(name) else {
        return vec![code::UNKNOWN_MEMBER_ID; leaving.len()];
    };
    let mut removed = false;
    let codes = leaving
        .iter()
        .map(|(member_id, instance_id)| {
            let id = match instance_id {
                Some(instance) => match group.member_by_instance(instance) {
                    Some(owner) if member_id.is_empty() || owner == *member_id => owner,
                    Some(_) => return code::FENCED_INSTANCE_ID,
                    None => return code::UNKNOWN_MEMBER_ID,
                },
                None => member_id.clone(),
            };
            if group.pending.remove(&id).is_some() {
                return code::NONE;
            }
            if group.remove(&id, code::UNKNOWN_MEMBER_ID) {
                removed = true;
                code::NONE
            } else {
                code::UNKNOWN_MEMBER_ID
            }
        })
        .collect();
    if removed {
        after_departure(broker, name, group);
    }
    codes
}

/// After members left or expired: the others rebalance (or the group is empty).
fn after_departure(broker: &Rc<Broker>, name: &str, group: &mut Group) {
    match group.state {
        State::Stable | State::CompletingRebalance => {
            if group.members.is_empty() {
                group.generation += 1;
                group.become_empty();
            } else {
                prepare_rebalance(broker, name, group);
            }
        }
        State::PreparingRebalance => try_complete_join(group, false),
        State::Empty => {}
    }
}

/// ConsumerGroupHeartbeat, on the coordinator shard.
pub fn consumer_heartbeat(
    broker: &Broker,
    name: &str,
    beat: consumer::Heartbeat,
) -> consumer::Beat {
    let classic_members = broker
        .groups
        .groups
        .borrow()
        .get(name)
        .is_some_and(|g| !g.members.is_empty());
    if classic_members {
        return consumer::Beat {
            error: code::GROUP_ID_NOT_FOUND,
            message: Some(format!("{name} is a classic group with members")),
            member_epoch: -1,
            ..consumer::Beat::default()
        };
    }
    let catalog = broker.topics.clone();
    let shape = move |topics: &std::collections::BTreeSet<String>| {
        topics
            .iter()
            .filter_map(|topic| {
                let found = catalog.get(topic)?;
                Some((topic.clone(), (found.id, found.partition_count())))
            })
            .collect()
    };
    let mut groups = broker.groups.consumer.borrow_mut();
    let group = groups.entry(name.to_string()).or_default();
    let answer = group.heartbeat(beat, &shape);
    if group.is_empty() {
        groups.remove(name);
    }
    answer
}

/// One partition's consumer lag.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Lag {
    /// The topic.
    pub topic: String,
    /// The partition.
    pub partition: i32,
    /// The group's committed offset.
    pub committed: i64,
    /// The partition's log end offset as consumers see it (the high watermark).
    pub end: i64,
    /// `end - committed`, never below 0.
    pub lag: i64,
}

/// A group's consumer lag for every partition it has committed (deleted topics left out),
/// from any shard: the committed offsets come from the coordinator, the end offsets from
/// the partitions' owners. `Err` is COORDINATOR_NOT_AVAILABLE.
pub async fn lag(broker: &Rc<Broker>, group: &str) -> Result<Vec<Lag>, i16> {
    let name = group.to_string();
    let offsets = broker
        .on_group(group, move |owner, _| async move {
            owner
                .groups
                .with(&name, |g| g.offsets().clone())
                .unwrap_or_default()
        })
        .await?;
    let mut lags = Vec::with_capacity(offsets.len());
    for ((topic, partition), committed) in offsets {
        let Some(found) = broker.topics.get(&topic) else {
            continue;
        };
        let end = broker
            .on_partition(&found, partition, |log| async move {
                log.durable_offset().get()
            })
            .await;
        if let Some(end) = end {
            lags.push(Lag {
                topic,
                partition,
                committed: committed.offset,
                end,
                lag: end.saturating_sub(committed.offset).max(0),
            });
        }
    }
    Ok(lags)
}

/// ConsumerGroupDescribe, on the coordinator shard: `None` when no consumer-protocol
/// group of that name has members.
pub fn describe_consumer_group(broker: &Broker, name: &str) -> Option<consumer::Described> {
    broker
        .groups
        .consumer
        .borrow()
        .get(name)
        .map(|g| g.describe())
}

/// Rebuilds the committed offsets of the groups this shard coordinates from its
/// `__consumer_offsets` partitions (start-up). Returns the number of groups.
pub async fn restore(broker: &Broker) -> Result<usize, spate_storage::LogError> {
    let Some(topic) = broker.topics.get(OFFSETS_TOPIC) else {
        return Ok(0);
    };
    for (partition, log) in broker.owned_partitions(&topic) {
        let (entries, pending) = store::replay(&log).await?;
        broker.groups.restore(entries);
        let mut transactional = broker.groups.transactional.borrow_mut();
        for (producer, entries) in pending {
            transactional.insert((partition, producer), entries);
        }
    }
    Ok(broker.groups.groups.borrow().len())
}

/// Creates `__consumer_offsets` if it does not exist (shard 0, at start-up).
pub async fn create_offsets_topic(broker: &Rc<Broker>) -> Result<(), crate::topics::TopicError> {
    broker
        .create_internal_topic(OFFSETS_TOPIC, OFFSETS_PARTITIONS)
        .await
}

/// Expires members whose session timed out, and (every minute) empty groups' offsets past
/// their retention, on every group of this shard, forever.
pub async fn expire_sessions(broker: Rc<Broker>) {
    let mut retention_checked = Instant::now();
    loop {
        runtime::sleep(EXPIRY_CHECK).await;
        if retention_checked.elapsed() >= RETENTION_CHECK {
            retention_checked = Instant::now();
            expire_offsets(&broker).await;
        }
        for (name, group) in broker.groups.consumer.borrow_mut().iter_mut() {
            for id in group.expire(broker.groups.times.consumer_session) {
                tracing::info!(group = %name, member = %id, "session expired; member removed");
            }
        }
        let now = Instant::now();
        let mut groups = broker.groups.groups.borrow_mut();
        let names: Vec<String> = groups.keys().cloned().collect();
        for name in names {
            let Some(group) = groups.get_mut(&name) else {
                continue;
            };
            group
                .pending
                .retain(|_, since| now.duration_since(*since) < PENDING_MEMBER_TIMEOUT);
            let unused = group.members.is_empty() && group.pending.is_empty();
            if unused && group.state == State::Empty && group.offsets.is_empty() {
                // Nothing left to remember (a join that never completed, say).
                groups.remove(&name);
                continue;
            }
            let expired: Vec<String> = group
                .members
                .iter()
                .filter(|(_, m)| {
                    // Members waiting for a join or sync answer are alive.
                    m.joining.is_none()
                        && m.syncing.is_none()
                        && now.duration_since(m.last_seen) > m.session_timeout
                })
                .map(|(id, _)| id.clone())
                .collect();
            if expired.is_empty() {
                continue;
            }
            for id in &expired {
                tracing::info!(group = %name, member = %id, "session expired; member removed");
                group.remove(id, code::UNKNOWN_MEMBER_ID);
            }
            after_departure(&broker, &name, group);
        }
    }
}

/// Deletes the offsets of empty groups past `offsets.retention.minutes` (tombstones in the
/// offsets topic); a group left with neither members nor offsets is gone.
async fn expire_offsets(broker: &Rc<Broker>) {
    let retention_ms =
        i64::try_from(broker.groups.times.offsets_retention.as_millis()).unwrap_or(i64::MAX);
    let now = now_ms();
    let expired: Vec<(String, Vec<(String, i32)>)> = broker
        .groups
        .groups
        .borrow()
        .iter()
        .map(|(name, g)| (name.clone(), g.expired_offsets(now, retention_ms)))
        .filter(|(_, keys)| !keys.is_empty())
        .collect();
    let Some(topic) = broker.topics.get(OFFSETS_TOPIC) else {
        return;
    };
    for (name, keys) in expired {
        let partition = partition_for(&name, topic.partition_count());
        let Some(log) = broker.logs.get(topic.id, partition) else {
            continue;
        };
        let entries: Vec<Entry> = keys
            .into_iter()
            .map(|(topic, partition)| Entry::Offset {
                group: name.clone(),
                topic,
                partition,
                committed: None,
            })
            .collect();
        let count = entries.len();
        if let Err(error) = write(&log, &entries).await {
            tracing::error!(group = %name, %error, "expiring committed offsets failed");
            continue;
        }
        tracing::info!(group = %name, offsets = count, "committed offsets expired");
        let mut groups = broker.groups.groups.borrow_mut();
        for entry in entries {
            apply(&mut groups, entry);
        }
    }
}

/// OffsetDelete, on the coordinator shard: deletes a group's offsets for partitions of
/// topics no member subscribes to (GROUP_SUBSCRIBED_TO_TOPIC otherwise). `Err` is the
/// group-level error.
pub async fn delete_offsets(
    broker: &Rc<Broker>,
    log: &crate::topics::PartitionLog,
    name: &str,
    asked: Vec<(String, i32)>,
) -> Result<Vec<i16>, i16> {
    let (codes, entries) = {
        let groups = broker.groups.groups.borrow();
        let group = groups.get(name).ok_or(code::GROUP_ID_NOT_FOUND)?;
        if !group.members.is_empty() && group.protocol_type() != "consumer" {
            return Err(code::NON_EMPTY_GROUP);
        }
        let mut subscribed = group.subscribed_topics();
        if let Some(members) = broker.groups.consumer.borrow().get(name) {
            subscribed.extend(members.subscribed_topics());
        }
        let mut entries = Vec::new();
        let codes = asked
            .into_iter()
            .map(|(topic, partition)| {
                if subscribed.contains(&topic) {
                    return code::GROUP_SUBSCRIBED_TO_TOPIC;
                }
                if group.offsets.contains_key(&(topic.clone(), partition)) {
                    entries.push(Entry::Offset {
                        group: name.to_string(),
                        topic,
                        partition,
                        committed: None,
                    });
                }
                code::NONE
            })
            .collect::<Vec<i16>>();
        (codes, entries)
    };
    if entries.is_empty() {
        return Ok(codes);
    }
    if let Err(error) = write(log, &entries).await {
        tracing::error!(group = name, %error, "deleting committed offsets failed");
        return Err(code::COORDINATOR_NOT_AVAILABLE);
    }
    let mut groups = broker.groups.groups.borrow_mut();
    for entry in entries {
        apply(&mut groups, entry);
    }
    Ok(codes)
}

/// An offset to commit: topic, partition, offset, leader epoch, metadata.
pub type OffsetToCommit = (String, i32, i64, i32, Option<String>);

/// A transactional commit's producer (TxnOffsetCommit): the group's offsets partition
/// index, the producer id and epoch.
pub type InTransaction = (i32, i64, i16);

/// OffsetCommit (and TxnOffsetCommit, `transaction` given), on the coordinator shard, for
/// the group's offsets partition `log`: one error code per offset, in order. A
/// transaction's offsets apply when its commit marker is written.
pub async fn commit(
    broker: &Rc<Broker>,
    log: &crate::topics::PartitionLog,
    name: &str,
    member: (i32, &str, Option<&str>),
    offsets: Vec<OffsetToCommit>,
    transaction: Option<InTransaction>,
) -> Vec<i16> {
    if transaction.is_some() && member.0 < 0 {
        // A transactional producer naming only the group: no member to check.
    } else if let Some(error) = check_committer(broker, name, member) {
        return vec![error; offsets.len()];
    }
    if let Some((partition, producer, epoch)) = transaction {
        let key = (log_topic_id(broker), partition);
        let known = crate::producers::epoch_of(broker.producers.borrow().get(&key), producer);
        if known.is_some_and(|known| epoch < known) {
            return vec![crate::transactions::code::PRODUCER_FENCED; offsets.len()];
        }
    }
    let now = now_ms();
    let mut codes = Vec::with_capacity(offsets.len());
    let mut entries = Vec::new();
    for (topic, partition, offset, leader_epoch, metadata) in offsets {
        let metadata = metadata.unwrap_or_default();
        let known = broker
            .topics
            .get(&topic)
            .is_some_and(|t| t.owner(partition).is_some());
        let error = if !known {
            crate::api::error_code::UNKNOWN_TOPIC_OR_PARTITION
        } else if metadata.len() > MAX_OFFSET_METADATA_BYTES {
            code::OFFSET_METADATA_TOO_LARGE
        } else {
            entries.push(Entry::Offset {
                group: name.to_string(),
                topic,
                partition,
                committed: Some(Committed {
                    offset,
                    leader_epoch,
                    metadata,
                    commit_timestamp: now,
                }),
            });
            code::NONE
        };
        codes.push(error);
    }
    if entries.is_empty() {
        return codes;
    }
    let written = match transaction {
        None => write(log, &entries).await.map(|()| None),
        Some((partition, producer, epoch)) => {
            write_transactional(broker, log, partition, &entries, (producer, epoch))
                .await
                .map(Some)
        }
    };
    match written {
        Err(error) => {
            tracing::error!(group = name, %error, "writing committed offsets failed");
            codes
                .into_iter()
                .map(|c| {
                    if c == code::NONE {
                        code::COORDINATOR_NOT_AVAILABLE
                    } else {
                        c
                    }
                })
                .collect()
        }
        Ok(None) => {
            let mut groups = broker.groups.groups.borrow_mut();
            for entry in entries {
                apply(&mut groups, entry);
            }
            codes
        }
        Ok(Some(())) => {
            if let Some((partition, producer, _)) = transaction {
                broker
                    .groups
                    .transactional
                    .borrow_mut()
                    .entry((partition, producer))
                    .or_default()
                    .extend(entries);
            }
            codes
        }
    }
}

/// The offsets topic's id (nil if it is missing).
fn log_topic_id(broker: &Broker) -> uuid::Uuid {
    broker
        .topics
        .get(OFFSETS_TOPIC)
        .map_or(uuid::Uuid::nil(), |t| t.id)
}

/// Appends a transaction's `entries` to the offsets partition as producer `producer`'s
/// transactional batch (which opens its transaction there) and waits until durable.
async fn write_transactional(
    broker: &Broker,
    log: &crate::topics::PartitionLog,
    partition: i32,
    entries: &[Entry],
    producer: (i64, i16),
) -> Result<(), String> {
    let bytes =
        store::transactional_batch_of(entries, producer, now_ms()).map_err(|e| e.to_string())?;
    let batch = spate_model::RecordBatch::validate(&bytes).map_err(|e| e.to_string())?;
    let appended = log
        .append(&batch, spate_model::LeaderEpoch(0))
        .map_err(|e| e.to_string())?;
    broker
        .producers
        .borrow_mut()
        .entry((log_topic_id(broker), partition))
        .or_default()
        .transactional(producer.0, appended.base_offset.get());
    log.flush().await.map(|_| ()).map_err(|e| e.to_string())
}

/// Checks that `member` may commit offsets for group `name`: the error, if not.
fn check_committer(broker: &Broker, name: &str, member: (i32, &str, Option<&str>)) -> Option<i16> {
    let (generation, member_id, instance_id) = member;
    let consumer_error = broker
        .groups
        .consumer
        .borrow()
        .get(name)
        .filter(|g| !g.is_empty())
        .map(|g| g.check_commit(member_id, generation));
    let group_error = if let Some(error) = consumer_error {
        error
    } else {
        let mut groups = broker.groups.groups.borrow_mut();
        match groups.get(name) {
            None if generation < 0 => {
                groups.insert(name.to_string(), Group::new());
                code::NONE
            }
            None => code::ILLEGAL_GENERATION,
            Some(group) if generation < 0 && group.members.is_empty() => code::NONE,
            Some(group) if group.state == State::CompletingRebalance => code::REBALANCE_IN_PROGRESS,
            Some(group) => check_member(group, member_id, instance_id, generation)
                .err()
                .unwrap_or(code::NONE),
        }
    };
    (group_error != code::NONE).then_some(group_error)
}

/// Appends `entries` to the offsets partition and waits until they are durable.
async fn write(log: &crate::topics::PartitionLog, entries: &[Entry]) -> Result<(), String> {
    let bytes = store::batch_of(entries, now_ms()).map_err(|e| e.to_string())?;
    let batch = spate_model::RecordBatch::validate(&bytes).map_err(|e| e.to_string())?;
    log.append(&batch, spate_model::LeaderEpoch(0))
        .map_err(|e| e.to_string())?;
    log.flush().await.map_err(|e| e.to_string())?;
    Ok(())
}

/// DeleteGroups, on the coordinator shard: an empty group's offsets are deleted (a
/// tombstone is written) and it is gone.
pub async fn delete(broker: &Rc<Broker>, log: &crate::topics::PartitionLog, name: &str) -> i16 {
    let entries = {
        let groups = broker.groups.groups.borrow();
        let Some(group) = groups.get(name) else {
            return code::GROUP_ID_NOT_FOUND;
        };
        if !group.members.is_empty() {
            return code::NON_EMPTY_GROUP;
        }
        let mut entries: Vec<Entry> = group
            .offsets
            .keys()
            .map(|(topic, partition)| Entry::Offset {
                group: name.to_string(),
                topic: topic.clone(),
                partition: *partition,
                committed: None,
            })
            .collect();
        entries.push(Entry::Group {
            group: name.to_string(),
            deleted: true,
        });
        entries
    };
    if let Err(error) = write(log, &entries).await {
        tracing::error!(group = name, %error, "deleting a group failed");
        return code::COORDINATOR_NOT_AVAILABLE;
    }
    let mut groups = broker.groups.groups.borrow_mut();
    if groups.get(name).is_some_and(|g| g.members.is_empty()) {
        groups.remove(name);
    }
    code::NONE
}

#[cfg(test)]
mod tests {
    use super::*;

    fn committed_at(ms: i64) -> Committed {
        Committed {
            offset: 1,
            leader_epoch: -1,
            metadata: String::new(),
            commit_timestamp: ms,
        }
    }

    #[test]
    fn empty_groups_lose_offsets_after_the_retention_and_members_keep_them() {
        let mut group = Group::new();
        group.offsets.insert(("t".into(), 0), committed_at(1_000));
        group.offsets.insert(("t".into(), 1), committed_at(5_000));
        // Retention 10 s: at 12 s only the offset committed at 1 s has expired.
        assert_eq!(
            group.expired_offsets(12_000, 10_000),
            [("t".to_string(), 0)]
        );
        // The clock restarts when the group becomes empty.
        group.empty_since_ms = 20_000;
        assert!(group.expired_offsets(25_000, 10_000).is_empty());
        assert_eq!(group.expired_offsets(30_001, 10_000).len(), 2);
        // A group with members keeps everything.
        group.members.insert("m".into(), Member::new(None, "", ""));
        assert!(group.expired_offsets(i64::MAX, 10_000).is_empty());
    }

    #[test]
    fn consumer_subscriptions_name_their_topics() {
        let mut metadata = vec![0, 1, 0, 0, 0, 2];
        for topic in ["orders", "refunds"] {
            metadata.extend_from_slice(&(topic.len() as i16).to_be_bytes());
            metadata.extend_from_slice(topic.as_bytes());
        }
        metadata.extend_from_slice(&[0, 0, 0, 0]);
        assert_eq!(parse_subscription(&metadata), ["orders", "refunds"]);
        assert!(parse_subscription(&metadata[..9]).is_empty(), "truncated");
        assert!(parse_subscription(b"x").is_empty());
    }

    /// A one-shard broker on real files: a topic with records, a group's commits, its lag.
    #[test]
    fn lag_is_the_end_offset_minus_the_committed_offset() {
        use spate_model::batch::BatchBuilder;
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_path_buf();
        let lags = runtime::run_shard("lag-test", None, move || async move {
            let broker = crate::test_support::one_shard_broker(&path).await;
            create_offsets_topic(&broker).await.expect("offsets topic");
            let topic = broker
                .create_topic("orders", 2, Default::default())
                .await
                .expect("topic");
            for (partition, records) in [(0, 5), (1, 3)] {
                let log = broker.logs.get(topic.id, partition).expect("log");
                for _ in 0..records {
                    let builder = BatchBuilder::new(spate_model::Compression::None);
                    crate::test_support::append_record(&log, builder, b"order");
                }
                log.flush().await.expect("flush");
            }
            let offsets = vec![
                ("orders".to_string(), 0, 2, -1, None),
                ("orders".to_string(), 1, 3, -1, None),
            ];
            let codes = broker
                .on_group("billing", move |owner, log| async move {
                    commit(&owner, &log, "billing", (-1, "", None), offsets, None).await
                })
                .await
                .expect("coordinator");
            assert_eq!(codes, [code::NONE, code::NONE]);
            lag(&broker, "billing").await.expect("lag")
        })
        .expect("executor");
        let lag_of = |partition, committed, end, lag| Lag {
            topic: "orders".to_string(),
            partition,
            committed,
            end,
            lag,
        };
        assert_eq!(lags, [lag_of(0, 2, 5, 3), lag_of(1, 3, 3, 0)]);
    }

    #[test]
    fn groups_hash_to_partitions_as_kafka_does() {
        // Java: "my-group".hashCode() == -1_906_497_762, made positive.
        assert_eq!(partition_for("my-group", 50), 1_906_497_762 % 50);
        assert_eq!(partition_for("", 50), 0);
        // A negative hash is made positive: "polygenelubricants".hashCode() == i32::MIN.
        assert_eq!(partition_for("polygenelubricants", 50), 0);
        for group in ["a", "orders-consumers", "ÿ€"] {
            assert!((0..16).contains(&partition_for(group, 16)));
        }
    }
}
