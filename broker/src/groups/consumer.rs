//! Consumer groups on the KIP-848 protocol (`group.protocol=consumer`): members heartbeat
//! their subscriptions and owned partitions; the coordinator computes a target assignment
//! with the uniform assignor whenever the group epoch moves (a member joins, leaves, times
//! out or changes its subscription, or a subscribed topic's partition count changes) and
//! hands each member its share incrementally: partitions a member must give up are revoked
//! first, and a partition is granted only once no other member holds it. A member's epoch
//! reaches the group epoch once it has nothing left to revoke.
//!
//! Such a group shares its name space and committed offsets with classic groups; a name in
//! use by a classic group with members is refused (and the other way round).

use super::code;
use std::collections::{BTreeMap, BTreeSet};
use std::time::{Duration, Instant};
use uuid::Uuid;

/// UNSUPPORTED_ASSIGNOR.
pub const UNSUPPORTED_ASSIGNOR: i16 = 112;
/// FENCED_MEMBER_EPOCH.
pub const FENCED_MEMBER_EPOCH: i16 = 110;
/// STALE_MEMBER_EPOCH.
pub const STALE_MEMBER_EPOCH: i16 = 113;
/// The assignors served (the first is the default).
pub const ASSIGNORS: &[&str] = &["uniform", "range"];

/// A partition: topic id and index.
pub type Partition = (Uuid, i32);

/// What the coordinator knows of one subscribed topic: its id and partition count.
pub type TopicShape = BTreeMap<String, (Uuid, i32)>;

/// One member of a consumer-protocol group.
#[derive(Debug, Clone)]
pub struct Member {
    /// Its epoch (the group epoch of its last completed reconciliation).
    pub epoch: i32,
    previous_epoch: i32,
    /// The static member's instance id.
    pub instance_id: Option<String>,
    /// Its client id and address (ConsumerGroupDescribe shows them).
    pub client: (String, String),
    /// The topics it subscribes to.
    pub subscribed: BTreeSet<String>,
    /// What it has been given (and not yet told to give up).
    pub assigned: BTreeSet<Partition>,
    /// What it last said it owns.
    owned: BTreeSet<Partition>,
    /// Its target in the current group epoch.
    target: BTreeSet<Partition>,
    last_seen: Instant,
}

/// A consumer-protocol group's membership.
#[derive(Debug, Clone, Default)]
pub struct ConsumerGroup {
    /// The group epoch: bumped by every change that may change the target assignment.
    pub epoch: i32,
    /// Members by id.
    pub members: BTreeMap<String, Member>,
    /// The assignor chosen by the last member that named one.
    assignor: Option<String>,
    /// The subscribed topics' shapes the target was computed from.
    shape: TopicShape,
}

/// A heartbeat, as the coordinator needs it.
#[derive(Debug, Clone)]
pub struct Heartbeat {
    /// The member id (empty: the coordinator makes one, v0).
    pub member_id: String,
    /// 0 to join, -1 to leave, -2 for a static member leaving for now, else its epoch.
    pub member_epoch: i32,
    /// The static member's instance id.
    pub instance_id: Option<String>,
    /// Its subscription, if it changed (required when joining).
    pub subscribed: Option<Vec<String>>,
    /// The assignor it asks for, if any.
    pub assignor: Option<String>,
    /// What it owns, if it changed.
    pub owned: Option<Vec<Partition>>,
    /// The client's id and address.
    pub client: (String, String),
}

/// Partitions by topic: (name, id, partitions).
pub type NamedPartitions = Vec<(String, Uuid, Vec<i32>)>;

/// One member, as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone)]
pub struct DescribedMember {
    /// Its id.
    pub id: String,
    /// The static member's instance id.
    pub instance_id: Option<String>,
    /// Its epoch.
    pub epoch: i32,
    /// Its client id and address.
    pub client: (String, String),
    /// Its subscription.
    pub subscribed: Vec<String>,
    /// What it has been given.
    pub assigned: NamedPartitions,
    /// What it is heading for.
    pub target: NamedPartitions,
}

/// A group, as ConsumerGroupDescribe shows it.
#[derive(Debug, Clone)]
pub struct Described {
    /// Empty, Reconciling or Stable.
    pub state: &'static str,
    /// The group epoch (the target assignment's too).
    pub epoch: i32,
    /// The assignor in use.
    pub assignor: String,
    /// Its members.
    pub members: Vec<DescribedMember>,
}

/// The answer to a heartbeat.
#[derive(Debug, Clone, Default)]
pub struct Beat {
    /// The error code.
    pub error: i16,
    /// A message for errors.
    pub message: Option<String>,
    /// The member id.
    pub member_id: String,
    /// The member's epoch.
    pub member_epoch: i32,
    /// Its assignment, when it changed (or on joining).
    pub assignment: Option<Vec<Partition>>,
}

fn failed(error: i16, message: &str) -> Beat {
    Beat {
        error,
        message: Some(message.to_string()),
        member_epoch: -1,
        ..Beat::default()
    }
}

impl ConsumerGroup {
    /// Whether it has members.
    pub fn is_empty(&self) -> bool {
        self.members.is_empty()
    }

    /// The topics some member subscribes to.
    pub fn subscribed_topics(&self) -> BTreeSet<String> {
        self.members
            .values()
            .flat_map(|m| m.subscribed.iter().cloned())
            .collect()
    }

    /// Handles one heartbeat. `shape` gives the subscribed topics' ids and partition
    /// counts (the caller looks them up in the catalog); `now` is the time.
    pub fn heartbeat(
        &mut self,
        beat: Heartbeat,
        shape: &dyn Fn(&BTreeSet<String>) -> TopicShape,
    ) -> Beat {
        let now = Instant::now();
        let mut member_id = beat.member_id.clone();
        match beat.member_epoch {
            0 => {
                let Some(subscribed) = beat.subscribed.clone() else {
                    return failed(
                        code_invalid_request(),
                        "a joining member names its subscription",
                    );
                };
                if let Some(assignor) = &beat.assignor {
                    if !ASSIGNORS.contains(&assignor.as_str()) {
                        return failed(UNSUPPORTED_ASSIGNOR, "the assignors are uniform and range");
                    }
                    self.assignor = Some(assignor.clone());
                }
                if member_id.is_empty() {
                    member_id = crate::topics::random_uuid("member")
                        .hyphenated()
                        .to_string();
                }
                if self.members.len() >= super::MAX_MEMBERS
                    && !self.members.contains_key(&member_id)
                {
                    return failed(code::GROUP_MAX_SIZE_REACHED, "the group is full");
                }
                if let Some(instance) = &beat.instance_id {
                    // A static member coming back replaces its previous incarnation.
                    let previous: Vec<String> = self
                        .members
                        .iter()
                        .filter(|(id, m)| {
                            m.instance_id.as_ref() == Some(instance) && **id != member_id
                        })
                        .map(|(id, _)| id.clone())
                        .collect();
                    for id in previous {
                        self.members.remove(&id);
                    }
                }
                self.members.insert(
                    member_id.clone(),
                    Member {
                        epoch: 0,
                        previous_epoch: 0,
                        instance_id: beat.instance_id.clone(),
                        client: beat.client.clone(),
                        subscribed: subscribed.into_iter().collect(),
                        assigned: BTreeSet::new(),
                        owned: beat.owned.clone().unwrap_or_default().into_iter().collect(),
                        target: BTreeSet::new(),
                        last_seen: now,
                    },
                );
                self.bump();
            }
            -1 | -2 => {
                if self.members.remove(&member_id).is_some() {
                    self.bump();
                }
                return Beat {
                    member_id,
                    member_epoch: beat.member_epoch,
                    ..Beat::default()
                };
            }
            epoch => {
                let Some(member) = self.members.get_mut(&member_id) else {
                    return failed(code::UNKNOWN_MEMBER_ID, "not a member of the group");
                };
                if epoch != member.epoch && epoch != member.previous_epoch {
                    return failed(FENCED_MEMBER_EPOCH, "the member epoch is fenced");
                }
                member.last_seen = now;
                if let Some(owned) = beat.owned.clone() {
                    member.owned = owned.into_iter().collect();
                }
                let mut changed = false;
                if let Some(subscribed) = beat.subscribed.clone() {
                    let subscribed: BTreeSet<String> = subscribed.into_iter().collect();
                    if subscribed != member.subscribed {
                        member.subscribed = subscribed;
                        changed = true;
                    }
                }
                if changed {
                    self.bump();
                }
            }
        }
        // A subscribed topic appeared, or gained partitions: a new target.
        let current = shape(&self.subscribed_topics());
        if current != self.shape {
            self.shape = current;
            self.bump();
        }
        self.reconcile(&member_id, beat.member_epoch == 0)
    }

    /// A new group epoch and target assignment.
    fn bump(&mut self) {
        self.epoch += 1;
        let targets = if self.assignor.as_deref() == Some("range") {
            assign_range(&self.members, &self.shape)
        } else {
            assign(&self.members, &self.shape)
        };
        for (id, member) in &mut self.members {
            member.target = targets.get(id).cloned().unwrap_or_default();
        }
    }

    /// Moves one member toward its target: revoke what it must give up, then grant what no
    /// other member holds.
    fn reconcile(&mut self, member_id: &str, joining: bool) -> Beat {
        let held_elsewhere: BTreeSet<Partition> = self
            .members
            .iter()
            .filter(|(id, _)| id.as_str() != member_id)
            .flat_map(|(_, m)| m.assigned.iter().chain(m.owned.iter()).copied())
            .collect();
        let epoch = self.epoch;
        let Some(member) = self.members.get_mut(member_id) else {
            return failed(code::UNKNOWN_MEMBER_ID, "not a member of the group");
        };
        let before = member.assigned.clone();
        let epoch_before = member.epoch;
        if !member.assigned.is_subset(&member.target) {
            // Revoke first; the member keeps its epoch until it confirms.
            member.assigned = member
                .assigned
                .intersection(&member.target)
                .copied()
                .collect();
        } else if member.owned.is_subset(&member.assigned) {
            // Nothing left to revoke: the member moves to the group epoch, and gets what
            // no other member still holds (the rest follows as they release it).
            let grant: Vec<Partition> = member
                .target
                .difference(&member.assigned)
                .filter(|p| !held_elsewhere.contains(p))
                .copied()
                .collect();
            member.assigned.extend(grant);
            if member.epoch != epoch {
                member.previous_epoch = member.epoch;
                member.epoch = epoch;
            }
        }
        let changed = joining || before != member.assigned || epoch_before != member.epoch;
        Beat {
            error: code::NONE,
            message: None,
            member_id: member_id.to_string(),
            member_epoch: member.epoch,
            assignment: changed.then(|| member.assigned.iter().copied().collect()),
        }
    }

    /// Removes members silent for longer than `session`; whether any was removed.
    pub fn expire(&mut self, session: Duration) -> Vec<String> {
        let now = Instant::now();
        let expired: Vec<String> = self
            .members
            .iter()
            .filter(|(_, m)| now.duration_since(m.last_seen) > session)
            .map(|(id, _)| id.clone())
            .collect();
        for id in &expired {
            self.members.remove(id);
        }
        if !expired.is_empty() {
            self.bump();
        }
        expired
    }

    /// The group as ConsumerGroupDescribe shows it.
    pub fn describe(&self) -> Described {
        let names: BTreeMap<Uuid, String> = self
            .shape
            .iter()
            .map(|(name, (id, _))| (*id, name.clone()))
            .collect();
        let named = |partitions: &BTreeSet<Partition>| {
            let mut by_topic: BTreeMap<(String, Uuid), Vec<i32>> = BTreeMap::new();
            for (id, partition) in partitions {
                let name = names.get(id).cloned().unwrap_or_default();
                by_topic.entry((name, *id)).or_default().push(*partition);
            }
            by_topic
                .into_iter()
                .map(|((name, id), partitions)| (name, id, partitions))
                .collect()
        };
        let settled = self.members.values().all(|m| m.epoch == self.epoch);
        Described {
            state: match (self.members.is_empty(), settled) {
                (true, _) => "Empty",
                (false, true) => "Stable",
                (false, false) => "Reconciling",
            },
            epoch: self.epoch,
            assignor: self
                .assignor
                .clone()
                .unwrap_or_else(|| ASSIGNORS[0].to_string()),
            members: self
                .members
                .iter()
                .map(|(id, m)| DescribedMember {
                    id: id.clone(),
                    instance_id: m.instance_id.clone(),
                    epoch: m.epoch,
                    client: m.client.clone(),
                    subscribed: m.subscribed.iter().cloned().collect(),
                    assigned: named(&m.assigned),
                    target: named(&m.target),
                })
                .collect(),
        }
    }

    /// Checks an offset commit's member and epoch (OffsetCommit v9 sends the member epoch).
    pub fn check_commit(&self, member_id: &str, epoch: i32) -> i16 {
        match self.members.get(member_id) {
            None => code::UNKNOWN_MEMBER_ID,
            Some(member) if epoch != member.epoch => STALE_MEMBER_EPOCH,
            Some(_) => code::NONE,
        }
    }
}

fn code_invalid_request() -> i16 {
    crate::api::error_code::INVALID_REQUEST
}

/// An empty target for every member.
fn nothing_for(members: &BTreeMap<String, Member>) -> BTreeMap<String, BTreeSet<Partition>> {
    members
        .keys()
        .map(|id| (id.clone(), BTreeSet::new()))
        .collect()
}

/// The range assignment: each topic's partitions in contiguous runs over the members
/// subscribing to it, in member-id order, the first ones taking one more when the count
/// does not divide evenly.
fn assign_range(
    members: &BTreeMap<String, Member>,
    shape: &TopicShape,
) -> BTreeMap<String, BTreeSet<Partition>> {
    let mut targets = nothing_for(members);
    for (topic, (id, count)) in shape {
        let subscribers: Vec<&String> = members
            .iter()
            .filter(|(_, m)| m.subscribed.contains(topic))
            .map(|(member, _)| member)
            .collect();
        let Ok(n) = i32::try_from(subscribers.len()) else {
            continue;
        };
        if n == 0 {
            continue;
        }
        let mut next = 0;
        for (index, member) in (0..).zip(subscribers) {
            let take = count / n + i32::from(index < count % n);
            let run = targets.entry(member.clone()).or_default();
            run.extend((next..next + take).map(|p| (*id, p)));
            next += take;
        }
    }
    targets
}

/// The uniform assignment: every partition of every subscribed topic goes to one of the
/// members subscribing to it, as evenly as possible, keeping partitions where they are
/// while their holder is below its fair share.
fn assign(
    members: &BTreeMap<String, Member>,
    shape: &TopicShape,
) -> BTreeMap<String, BTreeSet<Partition>> {
    let mut targets = nothing_for(members);
    let partitions: Vec<(String, Partition)> = shape
        .iter()
        .flat_map(|(topic, (id, count))| (0..*count).map(move |p| (topic.clone(), (*id, p))))
        .collect();
    let total = partitions.len();
    let subscribers = |topic: &str| -> Vec<&String> {
        members
            .iter()
            .filter(|(_, m)| m.subscribed.contains(topic))
            .map(|(id, _)| id)
            .collect()
    };
    // Each member's fair share is `base`, and `extra` of them hold one more.
    let base = total / members.len().max(1);
    let extra = total % members.len().max(1);
    let holder = |topic: &str, partition: &Partition| {
        subscribers(topic)
            .into_iter()
            .find(|id| members[id.as_str()].assigned.contains(partition))
            .cloned()
    };
    // Stickiness: partitions stay with their holders up to the fair share, then up to one
    // more for as many holders as the remainder allows; the rest go to the least loaded.
    let mut unplaced = Vec::new();
    for (topic, partition) in &partitions {
        match holder(topic, partition) {
            Some(id) if targets[&id].len() < base => {
                targets.entry(id).or_default().insert(*partition);
            }
            _ => unplaced.push((topic.clone(), *partition)),
        }
    }
    let mut bonus = 0;
    let mut rest = Vec::new();
    for (topic, partition) in unplaced {
        match holder(&topic, &partition) {
            Some(id) if targets[&id].len() == base && bonus < extra => {
                bonus += 1;
                targets.entry(id).or_default().insert(partition);
            }
            _ => rest.push((topic, partition)),
        }
    }
    let unplaced = rest;
    for (topic, partition) in unplaced {
        let least = subscribers(&topic)
            .into_iter()
            .min_by_key(|id| (targets[id.as_str()].len(), (*id).clone()));
        if let Some(id) = least {
            let id = id.clone();
            targets.entry(id).or_default().insert(partition);
        }
    }
    targets
}

#[cfg(test)]
mod tests {
    use super::*;

    fn shape_of(topics: &[(&str, i32)]) -> TopicShape {
        topics
            .iter()
            .map(|(name, count)| {
                (
                    name.to_string(),
                    (Uuid::from_u128(name.len() as u128 + 1), *count),
                )
            })
            .collect()
    }

    fn join(group: &mut ConsumerGroup, id: &str, shape: &TopicShape) -> Beat {
        let shape = shape.clone();
        group.heartbeat(
            Heartbeat {
                member_id: id.to_string(),
                member_epoch: 0,
                instance_id: None,
                subscribed: Some(vec!["orders".to_string()]),
                assignor: None,
                owned: Some(Vec::new()),
                client: (id.to_string(), "127.0.0.1".to_string()),
            },
            &move |_| shape.clone(),
        )
    }

    fn beat(
        group: &mut ConsumerGroup,
        id: &str,
        epoch: i32,
        owned: &[Partition],
        shape: &TopicShape,
    ) -> Beat {
        let shape = shape.clone();
        group.heartbeat(
            Heartbeat {
                member_id: id.to_string(),
                member_epoch: epoch,
                instance_id: None,
                subscribed: None,
                assignor: None,
                owned: Some(owned.to_vec()),
                client: (id.to_string(), "127.0.0.1".to_string()),
            },
            &move |_| shape.clone(),
        )
    }

    #[test]
    fn a_second_member_gets_partitions_only_after_the_first_revokes_them() {
        let shape = shape_of(&[("orders", 4)]);
        let mut group = ConsumerGroup::default();
        let a = join(&mut group, "a", &shape);
        let all = a.assignment.clone().expect("an assignment");
        assert_eq!(all.len(), 4, "alone, a gets every partition");
        let a_epoch = a.member_epoch;
        let b = join(&mut group, "b", &shape);
        assert_eq!(
            b.assignment.as_deref(),
            Some(&[][..]),
            "b waits while a holds them"
        );
        // a is told to give two up; until it says so, b gets nothing.
        let a = beat(&mut group, "a", a_epoch, &all, &shape);
        let kept = a.assignment.expect("a shrinks");
        assert_eq!(kept.len(), 2);
        let b = beat(&mut group, "b", b.member_epoch, &[], &shape);
        assert!(
            b.assignment.is_none_or(|p| p.is_empty()),
            "a has not released yet"
        );
        let a = beat(&mut group, "a", a.member_epoch, &kept, &shape);
        assert_eq!(a.member_epoch, group.epoch, "a reached its target");
        let b = beat(&mut group, "b", b.member_epoch, &[], &shape);
        let given = b.assignment.expect("b gets the released partitions");
        assert_eq!(given.len(), 2);
        assert!(
            given.iter().all(|p| !kept.contains(p)),
            "never one partition twice"
        );
        assert_eq!(b.member_epoch, group.epoch);
    }

    #[test]
    fn stale_or_unknown_members_are_refused_and_leavers_free_their_partitions() {
        let shape = shape_of(&[("orders", 2)]);
        let mut group = ConsumerGroup::default();
        let a = join(&mut group, "a", &shape);
        assert_eq!(
            beat(&mut group, "a", a.member_epoch + 5, &[], &shape).error,
            FENCED_MEMBER_EPOCH
        );
        assert_eq!(
            beat(&mut group, "x", 1, &[], &shape).error,
            code::UNKNOWN_MEMBER_ID
        );
        let b = join(&mut group, "b", &shape);
        assert_eq!(beat(&mut group, "a", -1, &[], &shape).member_epoch, -1);
        let b = beat(&mut group, "b", b.member_epoch, &[], &shape);
        assert_eq!(
            b.assignment.map(|p| p.len()),
            Some(2),
            "b takes over a's partitions"
        );
        assert_eq!(group.check_commit("b", b.member_epoch), code::NONE);
        assert_eq!(
            group.check_commit("b", b.member_epoch - 1),
            STALE_MEMBER_EPOCH
        );
        assert_eq!(group.check_commit("a", 1), code::UNKNOWN_MEMBER_ID);
    }

    /// A member subscribed to "orders" holding `assigned`.
    fn subscriber(assigned: &[Partition]) -> Member {
        Member {
            epoch: 1,
            previous_epoch: 0,
            instance_id: None,
            client: (String::new(), String::new()),
            subscribed: ["orders".to_string()].into(),
            assigned: assigned.iter().copied().collect(),
            owned: BTreeSet::new(),
            target: BTreeSet::new(),
            last_seen: Instant::now(),
        }
    }

    #[test]
    fn the_uniform_assignor_is_balanced_and_sticky() {
        let shape = shape_of(&[("orders", 6)]);
        let id = shape["orders"].0;
        let held = [
            ("a", vec![0, 1]),
            ("b", vec![2, 3]),
            ("c", vec![4, 5]),
            ("d", vec![]),
        ];
        let members: BTreeMap<String, Member> = held
            .iter()
            .map(|(name, partitions)| {
                let held: Vec<Partition> = partitions.iter().map(|p| (id, *p)).collect();
                (name.to_string(), subscriber(&held))
            })
            .collect();
        let targets = assign(&members, &shape);
        let sizes: Vec<usize> = targets.values().map(BTreeSet::len).collect();
        assert_eq!(sizes.iter().sum::<usize>(), 6);
        assert!(sizes.iter().all(|s| (1..=2).contains(s)), "{sizes:?}");
        for (name, partitions) in &held {
            let kept = &targets[*name];
            assert!(kept
                .iter()
                .all(|(_, p)| partitions.contains(p) || *name == "d"));
        }
    }

    #[test]
    fn the_range_assignor_hands_out_contiguous_runs() {
        let shape = shape_of(&[("orders", 5)]);
        let id = shape["orders"].0;
        let members: BTreeMap<String, Member> = ["a", "b"]
            .iter()
            .map(|name| (name.to_string(), subscriber(&[])))
            .collect();
        let targets = assign_range(&members, &shape);
        let runs: Vec<Vec<i32>> = targets
            .values()
            .map(|t| {
                t.iter()
                    .map(|(topic, p)| {
                        assert_eq!(*topic, id);
                        *p
                    })
                    .collect()
            })
            .collect();
        assert_eq!(runs, [vec![0, 1, 2], vec![3, 4]]);
    }

    #[test]
    fn new_partitions_move_the_group_epoch() {
        let mut group = ConsumerGroup::default();
        let a = join(&mut group, "a", &shape_of(&[("orders", 1)]));
        let grown = shape_of(&[("orders", 3)]);
        let a = beat(&mut group, "a", a.member_epoch, &[], &grown);
        assert_eq!(a.assignment.map(|p| p.len()), Some(3));
    }
}
