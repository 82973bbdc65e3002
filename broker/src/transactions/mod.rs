//! The transaction coordinator: for every transactional id whose `__transaction_state`
//! partition this shard owns (Kafka's `abs(hash(id)) % partitions`), its producer id and
//! epoch, status and the partitions of its open transaction. Every change is written to the
//! state partition (durably) before it is acknowledged, and replayed at start-up.
//!
//! A transaction's life: InitProducerId gives the id its producer id and a new epoch
//! (fencing older instances, and aborting a transaction they left open);
//! AddPartitionsToTxn and AddOffsetsToTxn make it Ongoing; EndTxn writes PrepareCommit or
//! PrepareAbort, then a marker (control batch) to every partition of the transaction, then
//! CompleteCommit or CompleteAbort. A transaction open longer than its timeout is aborted
//! with a bumped epoch (so the producer that left it is fenced); one left in a Prepare state
//! (a crash between the two records) has its markers written again.

pub mod store;

use crate::api::Broker;
use crate::now_ms;
use crate::runtime;
use crate::topics::PartitionLog;
use std::cell::RefCell;
use std::collections::{BTreeMap, BTreeSet, HashSet};
use std::rc::Rc;
use std::time::Duration;

/// The internal topic holding the coordinator's state.
pub const STATE_TOPIC: &str = "__transaction_state";
/// Its partition count when the broker creates it (`transaction.state.log.num.partitions`;
/// Kafka's default is 50, fewer keeps a small broker light).
pub const STATE_PARTITIONS: i32 = 16;
/// `transaction.max.timeout.ms`: the longest timeout a producer may ask for.
pub const MAX_TIMEOUT_MS: i32 = 900_000;
/// `transactional.id.expiration.ms`: an id idle this long (with no open transaction) is
/// forgotten.
pub const ID_EXPIRATION_MS: i64 = 7 * 24 * 3600 * 1000;
/// The longest transactional id accepted, in bytes.
pub const MAX_ID_BYTES: usize = 8192;
/// Partitions one transaction may span.
pub const MAX_PARTITIONS: usize = 100_000;
/// How often timeouts, unfinished markers and expirations are checked.
const CHECK_INTERVAL: Duration = Duration::from_secs(1);
/// The highest producer epoch; past it an id gets a new producer id.
const MAX_EPOCH: i16 = i16::MAX - 1;

/// Kafka error codes the coordinator answers with.
pub mod code {
    /// No error.
    pub const NONE: i16 = 0;
    /// COORDINATOR_NOT_AVAILABLE.
    pub const COORDINATOR_NOT_AVAILABLE: i16 = 15;
    /// INVALID_PRODUCER_EPOCH.
    pub const INVALID_PRODUCER_EPOCH: i16 = 47;
    /// INVALID_TXN_STATE.
    pub const INVALID_TXN_STATE: i16 = 48;
    /// INVALID_PRODUCER_ID_MAPPING.
    pub const INVALID_PRODUCER_ID_MAPPING: i16 = 49;
    /// INVALID_TRANSACTION_TIMEOUT.
    pub const INVALID_TRANSACTION_TIMEOUT: i16 = 50;
    /// CONCURRENT_TRANSACTIONS.
    pub const CONCURRENT_TRANSACTIONS: i16 = 51;
    /// OPERATION_NOT_ATTEMPTED.
    pub const OPERATION_NOT_ATTEMPTED: i16 = 55;
    /// PRODUCER_FENCED.
    pub const PRODUCER_FENCED: i16 = 90;
}

/// A transactional id's status (Kafka's codes, as stored).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Status {
    /// No open transaction.
    Empty = 0,
    /// A transaction is open.
    Ongoing = 1,
    /// Committing: markers being written.
    PrepareCommit = 2,
    /// Aborting: markers being written.
    PrepareAbort = 3,
    /// The last transaction committed.
    CompleteCommit = 4,
    /// The last transaction aborted.
    CompleteAbort = 5,
    /// Gone.
    Dead = 6,
    /// Being fenced (Kafka writes it while aborting for a new instance).
    PrepareEpochFence = 7,
}

impl Status {
    fn from_code(code: i8) -> Option<Status> {
        Some(match code {
            0 => Status::Empty,
            1 => Status::Ongoing,
            2 => Status::PrepareCommit,
            3 => Status::PrepareAbort,
            4 => Status::CompleteCommit,
            5 => Status::CompleteAbort,
            6 => Status::Dead,
            7 => Status::PrepareEpochFence,
            _ => return None,
        })
    }

    /// The name Kafka reports (DescribeTransactions, ListTransactions).
    pub fn name(self) -> &'static str {
        match self {
            Status::Empty => "Empty",
            Status::Ongoing => "Ongoing",
            Status::PrepareCommit => "PrepareCommit",
            Status::PrepareAbort => "PrepareAbort",
            Status::CompleteCommit => "CompleteCommit",
            Status::CompleteAbort => "CompleteAbort",
            Status::Dead => "Dead",
            Status::PrepareEpochFence => "PrepareEpochFence",
        }
    }

    fn preparing(self) -> bool {
        matches!(
            self,
            Status::PrepareCommit | Status::PrepareAbort | Status::PrepareEpochFence
        )
    }
}

/// One transactional id's state.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Txn {
    /// Its producer id.
    pub producer_id: i64,
    /// Its current epoch.
    pub producer_epoch: i16,
    /// `transaction.timeout.ms`.
    pub timeout_ms: i32,
    /// Where its transaction stands.
    pub status: Status,
    /// The partitions of the open (or ending) transaction.
    pub partitions: BTreeSet<(String, i32)>,
    /// When the state last changed (ms since the epoch).
    pub updated_ms: i64,
    /// When the open transaction started, or -1.
    pub started_ms: i64,
}

impl Txn {
    /// An id's state with no transaction open, for `producer` (id, epoch).
    fn idle(producer: (i64, i16), timeout_ms: i32, now_ms: i64) -> Txn {
        Txn {
            producer_id: producer.0,
            producer_epoch: producer.1,
            timeout_ms,
            status: Status::Empty,
            partitions: BTreeSet::new(),
            updated_ms: now_ms,
            started_ms: -1,
        }
    }
}

/// The transactional ids this shard coordinates.
#[derive(Debug, Default)]
pub struct Transactions {
    txns: RefCell<BTreeMap<String, Txn>>,
    /// Ids with a change in progress (its state write or its markers).
    busy: RefCell<HashSet<String>>,
}

/// Holds an id busy until dropped.
struct Busy<'a> {
    transactions: &'a Transactions,
    id: String,
}

impl Drop for Busy<'_> {
    fn drop(&mut self) {
        self.transactions.busy.borrow_mut().remove(&self.id);
    }
}

impl Transactions {
    /// Claims `id` for a change; `None` while another change of it is in progress.
    fn claim(&self, id: &str) -> Option<Busy<'_>> {
        if !self.busy.borrow_mut().insert(id.to_string()) {
            return None;
        }
        Some(Busy {
            transactions: self,
            id: id.to_string(),
        })
    }

    fn get(&self, id: &str) -> Option<Txn> {
        self.txns.borrow().get(id).cloned()
    }

    /// Every id's state (ListTransactions, DescribeTransactions).
    pub fn all(&self) -> Vec<(String, Txn)> {
        self.txns
            .borrow()
            .iter()
            .map(|(id, txn)| (id.clone(), txn.clone()))
            .collect()
    }

    /// One id's state.
    pub fn describe(&self, id: &str) -> Option<Txn> {
        self.get(id)
    }
}

/// Writes `txn` as the state of `id`, then keeps it.
async fn save(broker: &Broker, log: &PartitionLog, id: &str, txn: Txn) -> Result<(), i16> {
    if let Err(error) = store::write(log, id, Some(&txn)).await {
        tracing::error!(transactional_id = id, %error, "writing transaction state failed");
        return Err(code::COORDINATOR_NOT_AVAILABLE);
    }
    broker
        .transactions
        .txns
        .borrow_mut()
        .insert(id.to_string(), txn);
    Ok(())
}

/// The error for a producer whose epoch is not the id's current one: PRODUCER_FENCED for
/// clients that know it, else INVALID_PRODUCER_EPOCH.
pub fn fenced(knows_fenced: bool) -> i16 {
    if knows_fenced {
        code::PRODUCER_FENCED
    } else {
        code::INVALID_PRODUCER_EPOCH
    }
}

/// Checks that `producer` (id, epoch) is `txn`'s current producer; `txn` if so.
fn check_producer(txn: Option<Txn>, producer: (i64, i16), knows_fenced: bool) -> Result<Txn, i16> {
    let Some(txn) = txn else {
        return Err(code::INVALID_PRODUCER_ID_MAPPING);
    };
    if txn.producer_id != producer.0 {
        return Err(code::INVALID_PRODUCER_ID_MAPPING);
    }
    if txn.producer_epoch != producer.1 {
        return Err(fenced(knows_fenced));
    }
    Ok(txn)
}

/// The next (producer id, epoch) of `txn`: the epoch bumped, or a new producer id when
/// the epoch is used up.
async fn bumped(broker: &Rc<Broker>, txn: &Txn) -> Result<(i64, i16), i16> {
    if txn.producer_epoch < MAX_EPOCH {
        return Ok((txn.producer_id, txn.producer_epoch + 1));
    }
    let id = broker.new_producer_id().await.map_err(|error| {
        tracing::error!(%error, "handing out a producer id failed");
        code::COORDINATOR_NOT_AVAILABLE
    })?;
    Ok((id, 0))
}

/// InitProducerId with a transactional id, on its coordinator shard (`log` is its state
/// partition): the producer id and epoch the new instance is to use. `expected` is the
/// (id, epoch) the producer had (KIP-360), or (-1, -1).
pub async fn init(
    broker: &Rc<Broker>,
    log: &PartitionLog,
    id: &str,
    timeout_ms: i32,
    expected: (i64, i16),
    knows_fenced: bool,
) -> Result<(i64, i16), i16> {
    let Some(_busy) = broker.transactions.claim(id) else {
        return Err(code::CONCURRENT_TRANSACTIONS);
    };
    let now = now_ms();
    let Some(mut current) = broker.transactions.get(id) else {
        let producer_id = broker.new_producer_id().await.map_err(|error| {
            tracing::error!(%error, "handing out a producer id failed");
            code::COORDINATOR_NOT_AVAILABLE
        })?;
        save(
            broker,
            log,
            id,
            Txn::idle((producer_id, 0), timeout_ms, now),
        )
        .await?;
        return Ok((producer_id, 0));
    };
    if expected.0 >= 0
        && (expected.0 != current.producer_id || expected.1 != current.producer_epoch)
    {
        return Err(fenced(knows_fenced));
    }
    if current.status.preparing() {
        // Its markers are being written; the client retries.
        return Err(code::CONCURRENT_TRANSACTIONS);
    }
    if current.status == Status::Ongoing {
        // The previous instance left a transaction open: abort it under a new epoch,
        // which fences that instance.
        current = abort_fenced(broker, log, id, current).await?;
    }
    let producer = bumped(broker, &current).await?;
    save(broker, log, id, Txn::idle(producer, timeout_ms, now)).await?;
    Ok(producer)
}

/// Aborts `txn`'s open transaction under a bumped epoch; returns the completed state.
async fn abort_fenced(
    broker: &Rc<Broker>,
    log: &PartitionLog,
    id: &str,
    txn: Txn,
) -> Result<Txn, i16> {
    let (producer_id, producer_epoch) = bumped(broker, &txn).await?;
    if producer_id != txn.producer_id {
        // The epoch is used up: the markers go out under the old id's last epoch, which
        // still fences every older one.
        let prepared = Txn {
            status: Status::PrepareAbort,
            updated_ms: now_ms(),
            ..txn
        };
        save(broker, log, id, prepared.clone()).await?;
        return complete(broker, log, id, prepared).await;
    }
    let prepared = Txn {
        producer_epoch,
        status: Status::PrepareAbort,
        updated_ms: now_ms(),
        ..txn
    };
    save(broker, log, id, prepared.clone()).await?;
    complete(broker, log, id, prepared).await
}

/// Adds partitions to `id`'s transaction (AddPartitionsToTxn, AddOffsetsToTxn), opening it
/// if needed.
pub async fn add_partitions(
    broker: &Rc<Broker>,
    log: &PartitionLog,
    id: &str,
    producer: (i64, i16),
    partitions: Vec<(String, i32)>,
    knows_fenced: bool,
) -> Result<(), i16> {
    let Some(_busy) = broker.transactions.claim(id) else {
        return Err(code::CONCURRENT_TRANSACTIONS);
    };
    let mut txn = check_producer(broker.transactions.get(id), producer, knows_fenced)?;
    if txn.status.preparing() {
        return Err(code::CONCURRENT_TRANSACTIONS);
    }
    if txn.status == Status::Ongoing && partitions.iter().all(|p| txn.partitions.contains(p)) {
        return Ok(());
    }
    let now = now_ms();
    if txn.status != Status::Ongoing {
        txn.status = Status::Ongoing;
        txn.started_ms = now;
        txn.partitions.clear();
    }
    txn.partitions.extend(partitions);
    if txn.partitions.len() > MAX_PARTITIONS {
        return Err(code::INVALID_TXN_STATE);
    }
    txn.updated_ms = now;
    save(broker, log, id, txn).await
}

/// Checks, for a partition about to take producer `producer`'s first transactional batch,
/// that the partition is in `id`'s open transaction: `Err` (code, message) if not.
pub async fn verify(
    broker: &Rc<Broker>,
    id: &str,
    producer: (i64, i16),
    partition: (String, i32),
) -> Result<(), (i16, String)> {
    let key = id.to_string();
    let checked = broker
        .on_transaction(id, move |owner, _| async move {
            let txn = check_producer(owner.transactions.get(&key), producer, true)?;
            if txn.status == Status::Ongoing && txn.partitions.contains(&partition) {
                Ok(())
            } else {
                Err(code::INVALID_TXN_STATE)
            }
        })
        .await
        .and_then(|r| r);
    checked.map_err(|code| {
        let message = match code {
            code::INVALID_TXN_STATE => "the partition is not in the producer's open transaction",
            code::INVALID_PRODUCER_ID_MAPPING | code::PRODUCER_FENCED => {
                "the producer is not the transactional id's current one"
            }
            _ => "the transaction coordinator is not available",
        };
        // Produce answers a stale epoch with INVALID_PRODUCER_EPOCH, as Kafka does.
        let code = if code == code::PRODUCER_FENCED {
            code::INVALID_PRODUCER_EPOCH
        } else {
            code
        };
        (code, message.to_string())
    })
}

/// EndTxn: commits or aborts `id`'s transaction; answers once every marker is durable.
pub async fn end(
    broker: &Rc<Broker>,
    log: &PartitionLog,
    id: &str,
    producer: (i64, i16),
    commit: bool,
    knows_fenced: bool,
) -> Result<(), i16> {
    let Some(_busy) = broker.transactions.claim(id) else {
        return Err(code::CONCURRENT_TRANSACTIONS);
    };
    let txn = check_producer(broker.transactions.get(id), producer, knows_fenced)?;
    match (txn.status, commit) {
        (Status::Ongoing, _) => {
            let prepared = Txn {
                status: if commit {
                    Status::PrepareCommit
                } else {
                    Status::PrepareAbort
                },
                updated_ms: now_ms(),
                ..txn
            };
            save(broker, log, id, prepared.clone()).await?;
            complete(broker, log, id, prepared).await.map(|_| ())
        }
        // A retry of an EndTxn that already completed.
        (Status::CompleteCommit, true) | (Status::CompleteAbort, false) => Ok(()),
        (Status::PrepareCommit, true) | (Status::PrepareAbort, false) => {
            Err(code::CONCURRENT_TRANSACTIONS)
        }
        _ => Err(code::INVALID_TXN_STATE),
    }
}

/// Writes the markers of a prepared transaction to all its partitions, then its Complete
/// state. A marker that cannot be written leaves the Prepare state for the next check.
async fn complete(broker: &Rc<Broker>, log: &PartitionLog, id: &str, txn: Txn) -> Result<Txn, i16> {
    let commit = txn.status == Status::PrepareCommit;
    let calls = txn
        .partitions
        .iter()
        .filter_map(|(name, partition)| {
            let topic = broker.topics.get(name)?;
            let shard = topic.owner(*partition)?;
            let (topic_id, name, partition) = (topic.id, name.clone(), *partition);
            let (producer_id, epoch) = (txn.producer_id, txn.producer_epoch);
            let call = broker.on_shard(shard, move |owner| async move {
                let Some(log) = owner.logs.get(topic_id, partition) else {
                    // Deleted meanwhile: nothing to mark.
                    return Ok(());
                };
                let key = (topic_id, partition);
                crate::producers::write_marker(&owner, key, &name, &log, producer_id, epoch, commit)
                    .await
            });
            Some(async move { call.await.map_err(|e| e.to_string()).and_then(|r| r) })
        })
        .collect();
    let results = spate_storage::join::join_all(calls).await;
    if let Some(error) = results.into_iter().find_map(Result::err) {
        tracing::error!(transactional_id = id, %error, "writing transaction markers failed; will retry");
        return Err(code::COORDINATOR_NOT_AVAILABLE);
    }
    let completed = Txn {
        status: if commit {
            Status::CompleteCommit
        } else {
            Status::CompleteAbort
        },
        partitions: BTreeSet::new(),
        updated_ms: now_ms(),
        started_ms: -1,
        ..txn
    };
    save(broker, log, id, completed.clone()).await?;
    Ok(completed)
}

/// Rebuilds the state of the ids this shard coordinates (start-up).
pub async fn restore(broker: &Broker) -> Result<usize, spate_storage::LogError> {
    let Some(topic) = broker.topics.get(STATE_TOPIC) else {
        return Ok(0);
    };
    for (_, log) in broker.owned_partitions(&topic) {
        let replayed = store::replay(&log).await?;
        broker.transactions.txns.borrow_mut().extend(replayed);
    }
    Ok(broker.transactions.txns.borrow().len())
}

/// Creates `__transaction_state` if it does not exist (shard 0, at start-up).
pub async fn create_state_topic(broker: &Rc<Broker>) -> Result<(), crate::topics::TopicError> {
    broker
        .create_internal_topic(STATE_TOPIC, STATE_PARTITIONS)
        .await
}

/// Forever, every second: aborts transactions open past their timeout (bumping the epoch,
/// which fences their producer), finishes transactions left in a Prepare state, and
/// forgets ids idle past `transactional.id.expiration.ms`.
pub async fn check_timeouts(broker: Rc<Broker>) {
    loop {
        runtime::sleep(CHECK_INTERVAL).await;
        check_once(&broker).await;
    }
}

/// One pass of `check_timeouts`.
pub async fn check_once(broker: &Rc<Broker>) {
    {
        let Some(topic) = broker.topics.get(STATE_TOPIC) else {
            return;
        };
        let now = now_ms();
        let due: Vec<(String, Txn)> = broker
            .transactions
            .all()
            .into_iter()
            .filter(|(id, txn)| {
                let timed_out = txn.status == Status::Ongoing
                    && now.saturating_sub(txn.started_ms) > i64::from(txn.timeout_ms);
                let idle = !txn.status.preparing()
                    && txn.status != Status::Ongoing
                    && now.saturating_sub(txn.updated_ms) > ID_EXPIRATION_MS;
                (timed_out || idle || txn.status.preparing())
                    && !broker.transactions.busy.borrow().contains(id)
            })
            .collect();
        for (id, txn) in due {
            let partition = crate::groups::partition_for(&id, topic.partition_count());
            let Some(log) = broker.logs.get(topic.id, partition) else {
                continue;
            };
            let Some(_busy) = broker.transactions.claim(&id) else {
                continue;
            };
            let result = match txn.status {
                Status::Ongoing => {
                    tracing::info!(transactional_id = %id, "transaction timed out; aborting");
                    abort_fenced(broker, &log, &id, txn).await.map(|_| ())
                }
                status if status.preparing() => {
                    let txn = if status == Status::PrepareEpochFence {
                        Txn {
                            status: Status::PrepareAbort,
                            ..txn
                        }
                    } else {
                        txn
                    };
                    complete(broker, &log, &id, txn).await.map(|_| ())
                }
                _ => match store::write(&log, &id, None).await {
                    Ok(()) => {
                        tracing::info!(transactional_id = %id, "transactional id expired");
                        broker.transactions.txns.borrow_mut().remove(&id);
                        Ok(())
                    }
                    Err(error) => {
                        tracing::error!(transactional_id = %id, %error, "expiring a transactional id failed");
                        Ok(())
                    }
                },
            };
            if let Err(code) = result {
                tracing::warn!(transactional_id = %id, code, "transaction check did not finish; will retry");
            }
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use spate_model::batch::BatchBuilder;

    /// Appends one transactional record of producer `id` to `log`.
    fn append_transactional(log: &PartitionLog, id: i64) {
        let builder = BatchBuilder::new(spate_model::Compression::None)
            .producer(
                spate_model::ProducerId(id),
                spate_model::ProducerEpoch(0),
                spate_model::Sequence(0),
            )
            .transactional(true);
        crate::test_support::append_record(log, builder, b"in a transaction");
    }

    /// What a crash leaves behind, found at start-up: a transaction whose PrepareCommit was
    /// written but not its markers is committed; one open past its timeout is aborted
    /// under a bumped epoch. The partition's last stable offset then moves on.
    #[test]
    fn unfinished_transactions_are_finished_after_a_restart() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().to_path_buf();
        let (states, stable, aborted) = runtime::run_shard("txn-test", None, move || async move {
            let broker = crate::test_support::one_shard_broker(&path).await;
            create_state_topic(&broker).await.expect("state topic");
            let topic = broker
                .create_topic("out", 1, Default::default())
                .await
                .expect("topic");
            let out = broker.logs.get(topic.id, 0).expect("log");
            append_transactional(&out, 7);
            append_transactional(&out, 8);
            out.flush().await.expect("flush");
            let now = now_ms();
            let partitions: BTreeSet<(String, i32)> = [("out".to_string(), 0)].into();
            let prepared = Txn {
                status: Status::PrepareCommit,
                partitions: partitions.clone(),
                started_ms: now,
                ..Txn::idle((7, 0), 60_000, now)
            };
            let stale = Txn {
                status: Status::Ongoing,
                partitions,
                started_ms: now - 120_000,
                ..Txn::idle((8, 0), 60_000, now)
            };
            let state = broker.topics.get(STATE_TOPIC).expect("state topic");
            for (id, txn) in [("crashed", &prepared), ("stale", &stale)] {
                let partition = crate::groups::partition_for(id, state.partition_count());
                let log = broker.logs.get(state.id, partition).expect("state log");
                store::write(&log, id, Some(txn)).await.expect("write");
            }
            // Start-up: producer state from the partition, then the coordinator's.
            crate::producers::restore(&broker).await.expect("producers");
            assert_eq!(restore(&broker).await.expect("restore"), 2);
            let before = crate::producers::last_stable_offset(&broker, (topic.id, 0), &out);
            assert_eq!(before, spate_model::Offset(0), "held by both");
            check_once(&broker).await;
            let states: Vec<(String, Status, i16)> = broker
                .transactions
                .all()
                .into_iter()
                .map(|(id, txn)| (id, txn.status, txn.producer_epoch))
                .collect();
            let stable = crate::producers::last_stable_offset(&broker, (topic.id, 0), &out);
            let aborted = broker
                .producers
                .borrow()
                .get(&(topic.id, 0))
                .map(|p| p.aborted_within(0, 100))
                .unwrap_or_default();
            (states, stable, aborted)
        })
        .expect("executor");
        assert_eq!(
            states,
            [
                ("crashed".to_string(), Status::CompleteCommit, 0),
                ("stale".to_string(), Status::CompleteAbort, 1),
            ]
        );
        assert_eq!(
            stable,
            spate_model::Offset(4),
            "two records and two markers"
        );
        assert_eq!(aborted, [(8, 1)]);
    }
}
