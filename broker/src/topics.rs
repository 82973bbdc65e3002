//! Topics: their metadata, shared by every shard (the catalog), and their partitions' logs,
//! each opened by the one shard that owns it.
//!
//! Topics are recorded in the metadata log (`metadata_log`) and replayed from it at start-up.
//! Each partition's log lives in `<data>/<topic>-<partition>/`.
//! Which shard owns a partition is decided when the partition is created or the broker
//! starts (the least-loaded shard first) and is not stored: any shard can open any
//! partition's directory, so the broker may restart with a different number of shards.

use crate::topic_config::{ConfigError, TopicConfig};
use spate_model::TopicName;
use spate_storage::disk::glommio::GlommioDisk;
use spate_storage::{Log, LogConfig, LogError};
use std::cell::RefCell;
use std::collections::{BTreeMap, HashMap};
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use std::sync::{Arc, PoisonError, RwLock};
use uuid::Uuid;

/// The topic list of data directories from before the metadata log (imported once).
pub const TOPICS_FILE: &str = "topics.json";
/// The most partitions one topic may have.
pub const MAX_PARTITIONS: i32 = 10_000;

/// A partition's log, on the shard that owns it.
pub type PartitionLog = Rc<Log<GlommioDisk>>;

/// Whether `name` is one of the broker's internal topics (clients may not write to them,
/// and they are never deleted).
pub fn is_internal(name: &str) -> bool {
    name == crate::groups::OFFSETS_TOPIC || name == crate::transactions::STATE_TOPIC
}

/// One topic's metadata.
#[derive(Debug, Clone)]
pub struct Topic {
    /// Its id (Metadata v10+, Fetch v13+).
    pub id: Uuid,
    /// The shard owning each partition, by partition index.
    pub owners: Vec<usize>,
    /// Its configs (overrides of Kafka's defaults).
    pub config: TopicConfig,
}

impl Topic {
    /// How many partitions it has.
    pub fn partition_count(&self) -> i32 {
        i32::try_from(self.owners.len()).unwrap_or(i32::MAX)
    }

    /// The shard owning partition `index`, if the topic has it.
    pub fn owner(&self, index: i32) -> Option<usize> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.owners.get(i).copied())
    }
}

/// Why a topic operation failed.
#[derive(Debug, thiserror::Error)]
pub enum TopicError {
    /// The name breaks Kafka's rules.
    #[error(transparent)]
    InvalidName(#[from] spate_model::TopicNameError),
    /// The name is taken.
    #[error("topic {0} already exists")]
    Exists(String),
    /// No such topic.
    #[error("topic {0} does not exist")]
    Unknown(String),
    /// A partition count outside 1..=MAX_PARTITIONS.
    #[error("{0} partitions: a topic has between 1 and {MAX_PARTITIONS}")]
    BadPartitionCount(i32),
    /// CreatePartitions must raise the count.
    #[error("the topic has {current} partitions; {requested} is not an increase (at most {MAX_PARTITIONS})")]
    BadNewPartitionCount {
        /// Partitions now.
        current: i32,
        /// Partitions asked for.
        requested: i32,
    },
    /// A topic config is unknown or invalid.
    #[error(transparent)]
    Config(#[from] ConfigError),
    /// The storage failed.
    #[error(transparent)]
    Log(#[from] LogError),
    /// An internal topic (`__consumer_offsets`) cannot be deleted or repartitioned.
    #[error("{0} is an internal topic")]
    Internal(String),
    /// The shard that makes topic changes could not be reached (the broker is stopping).
    #[error("topic changes are unavailable: {0}")]
    Unavailable(String),
    /// The metadata log (or an imported `topics.json`) could not be read or written.
    #[error("topic metadata {path}: {reason}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

/// Topics by name.
pub type TopicMap = BTreeMap<String, Arc<Topic>>;

/// Every topic, as an immutable snapshot that any shard reads without waiting for the
/// others; a change (made on shard 0 only, see `controller`) replaces the snapshot.
#[derive(Debug)]
pub struct Catalog {
    shards: usize,
    current: RwLock<Arc<TopicMap>>,
}

impl Catalog {
    /// An empty catalog for `shards` shards.
    pub fn new(shards: usize) -> Catalog {
        Catalog {
            shards: shards.max(1),
            current: RwLock::new(Arc::new(TopicMap::new())),
        }
    }

    /// Installs the topics the metadata log describes (start-up), placing every partition
    /// on a shard.
    pub fn install(&self, stored: BTreeMap<String, crate::metadata_log::Stored>) {
        let mut topics = TopicMap::new();
        for (name, (id, partitions, config)) in stored {
            let owners = self.place(&topics, &[], partitions);
            topics.insert(name, Arc::new(Topic { id, owners, config }));
        }
        *self.current.write().unwrap_or_else(PoisonError::into_inner) = Arc::new(topics);
    }

    /// The number of shards partitions are placed on.
    pub fn shards(&self) -> usize {
        self.shards
    }

    /// The current snapshot.
    pub fn snapshot(&self) -> Arc<TopicMap> {
        self.current
            .read()
            .unwrap_or_else(PoisonError::into_inner)
            .clone()
    }

    /// Replaces the snapshot with `change` applied to a copy of it.
    pub(crate) fn update(&self, change: impl FnOnce(&mut TopicMap)) {
        let mut current = self.current.write().unwrap_or_else(PoisonError::into_inner);
        let mut next = TopicMap::clone(&current);
        change(&mut next);
        *current = Arc::new(next);
    }

    /// The topic named `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<Arc<Topic>> {
        self.snapshot().get(name).cloned()
    }

    /// The topic with id `id`, and its name.
    pub fn by_id(&self, id: Uuid) -> Option<(String, Arc<Topic>)> {
        self.snapshot()
            .iter()
            .find(|(_, topic)| topic.id == id)
            .map(|(name, topic)| (name.clone(), topic.clone()))
    }

    /// Every topic's name, in order.
    pub fn names(&self) -> Vec<String> {
        self.snapshot().keys().cloned().collect()
    }

    /// Validates a creation without doing it.
    pub fn check_new(&self, name: &str, partitions: i32) -> Result<(), TopicError> {
        let valid = TopicName::new(name)?;
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err(TopicError::BadPartitionCount(partitions));
        }
        let collision = valid.collision_key();
        let taken = self
            .snapshot()
            .keys()
            .any(|existing| existing == name || existing.replace('.', "_") == collision);
        if taken {
            return Err(TopicError::Exists(name.to_string()));
        }
        Ok(())
    }

    /// Owners for `count` new partitions: each on the shard owning the fewest partitions
    /// so far (of `topics` and `existing`, the topic's current owners), lowest index first.
    pub(crate) fn place(&self, topics: &TopicMap, existing: &[usize], count: i32) -> Vec<usize> {
        let mut load = vec![0_usize; self.shards];
        for owner in topics
            .values()
            .flat_map(|topic| topic.owners.iter())
            .chain(existing)
        {
            if let Some(slot) = load.get_mut(*owner) {
                *slot += 1;
            }
        }
        (0..count.max(0))
            .map(|_| {
                let (shard, _) = load
                    .iter()
                    .enumerate()
                    .min_by_key(|&(shard, load)| (*load, shard))
                    .unwrap_or((0, &0));
                load[shard] += 1;
                shard
            })
            .collect()
    }
}

/// The partition logs one shard owns, by topic id and partition.
#[derive(Debug)]
pub struct ShardLogs {
    disk: GlommioDisk,
    data_dir: PathBuf,
    log_config: LogConfig,
    logs: RefCell<HashMap<(Uuid, i32), PartitionLog>>,
}

impl ShardLogs {
    /// No logs yet; `log_config` carries the shard's memory budgets.
    pub fn new(disk: GlommioDisk, data_dir: &Path, log_config: LogConfig) -> ShardLogs {
        ShardLogs {
            disk,
            data_dir: data_dir.to_path_buf(),
            log_config,
            logs: RefCell::new(HashMap::new()),
        }
    }

    /// The disk the shard's logs use.
    pub fn disk(&self) -> &GlommioDisk {
        &self.disk
    }

    /// Opens (recovering if needed) every partition `shard` owns in `topics`.
    pub async fn open_owned(&self, topics: &TopicMap, shard: usize) -> Result<usize, TopicError> {
        let mut opened = 0;
        for (name, topic) in topics {
            for (index, owner) in topic.owners.iter().enumerate() {
                if *owner == shard {
                    let index = i32::try_from(index).unwrap_or(i32::MAX);
                    self.open(name, topic.id, index, &topic.config).await?;
                    opened += 1;
                }
            }
        }
        Ok(opened)
    }

    /// Opens partition `partition` of topic `name` (id `id`) on this shard.
    pub async fn open(
        &self,
        name: &str,
        id: Uuid,
        partition: i32,
        config: &TopicConfig,
    ) -> Result<(), TopicError> {
        if self.get(id, partition).is_some() {
            return Ok(());
        }
        let dir = self.data_dir.join(format!("{name}-{partition}"));
        let log_config = LogConfig {
            segment_bytes: config.segment_bytes(),
            ..self.log_config.clone()
        };
        let log = Rc::new(Log::open(self.disk.clone(), &dir, log_config).await?);
        self.logs.borrow_mut().insert((id, partition), log);
        Ok(())
    }

    /// The log of a partition this shard owns.
    pub fn get(&self, id: Uuid, partition: i32) -> Option<PartitionLog> {
        self.logs.borrow().get(&(id, partition)).cloned()
    }

    /// Every log this shard owns.
    pub fn all(&self) -> Vec<PartitionLog> {
        self.logs.borrow().values().cloned().collect()
    }

    /// Every log on this shard with its (topic id, partition).
    pub fn keyed(&self) -> Vec<((Uuid, i32), PartitionLog)> {
        let logs = self.logs.borrow();
        logs.iter().map(|(key, log)| (*key, log.clone())).collect()
    }

    /// The I/O counters and tail-cache budget the shard's logs share.
    pub fn io(
        &self,
    ) -> (
        &spate_storage::stats::IoStats,
        Option<&spate_storage::budget::Budget>,
    ) {
        (
            &self.log_config.stats,
            self.log_config.tail_cache.as_deref(),
        )
    }

    /// The shard's pool of write buffers: free bytes it holds, takes it served, and takes
    /// that allocated.
    pub fn write_buffers(&self) -> (u64, u64, u64) {
        let pool = self.disk.pool();
        let (reused, allocated) = pool.counts();
        (pool.free_bytes() as u64, reused, allocated)
    }

    /// Every log of topic `id` on this shard.
    pub fn of_topic(&self, id: Uuid) -> Vec<PartitionLog> {
        self.logs
            .borrow()
            .iter()
            .filter(|((topic, _), _)| *topic == id)
            .map(|(_, log)| log.clone())
            .collect()
    }

    /// Closes this shard's partitions of a deleted topic and removes their directories.
    pub async fn delete_topic(&self, name: &str, id: Uuid) -> Result<(), TopicError> {
        let mine: Vec<(i32, PartitionLog)> = {
            let mut logs = self.logs.borrow_mut();
            let keys: Vec<(Uuid, i32)> = logs.keys().filter(|(t, _)| *t == id).copied().collect();
            keys.into_iter()
                .filter_map(|key| logs.remove(&key).map(|log| (key.1, log)))
                .collect()
        };
        for (index, log) in mine {
            if let Ok(log) = Rc::try_unwrap(log) {
                // Closing flushes what is buffered; the directory goes next anyway.
                log.close().await?;
            }
            let dir = self.data_dir.join(format!("{name}-{index}"));
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove a deleted partition's directory");
            }
        }
        Ok(())
    }

    /// Flushes and closes every log (clean shutdown): logs no task holds any more get their
    /// clean-shutdown marker; one still held by a task is flushed only (its next open runs
    /// recovery, which finds everything flushed).
    pub async fn close_all(&self) -> Result<(), LogError> {
        let logs = std::mem::take(&mut *self.logs.borrow_mut());
        for (_, log) in logs {
            match Rc::try_unwrap(log) {
                Ok(log) => log.close().await?,
                Err(shared) => {
                    shared.flush().await?;
                }
            }
        }
        Ok(())
    }
}

/// A fresh, random, non-nil UUID (topic ids, member ids): std's randomly seeded hasher stands
/// in for a UUID generator.
pub(crate) fn random_uuid(name: &str) -> Uuid {
    let mut high = std::collections::hash_map::RandomState::new().build_hasher();
    high.write(name.as_bytes());
    let mut low = std::collections::hash_map::RandomState::new().build_hasher();
    low.write_u64(high.finish());
    let value = (u128::from(high.finish()) << 64) | u128::from(low.finish());
    // Version 4, RFC 4122 variant, as random UUIDs are.
    let value = (value & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    Uuid::from_u128(value.max(1))
}
