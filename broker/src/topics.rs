//! Topics and their partitions' logs on this (single) shard, and the topic metadata file.
//!
//! `<data>/topics.json` lists every topic with its id, partition count and config overrides;
//! it is rewritten atomically (temporary file, fsync, rename, directory fsync) on every
//! change, and read at start-up. Each partition's log lives in `<data>/<topic>-<partition>/`.

use crate::topic_config::{ConfigError, TopicConfig};
use serde::{Deserialize, Serialize};
use spate_model::TopicName;
use spate_storage::disk::glommio::GlommioDisk;
use spate_storage::disk::Disk;
use spate_storage::{Log, LogConfig, LogError};
use std::cell::RefCell;
use std::collections::BTreeMap;
use std::hash::{BuildHasher, Hasher};
use std::path::{Path, PathBuf};
use std::rc::Rc;
use uuid::Uuid;

/// The metadata file's name in the data directory.
pub const TOPICS_FILE: &str = "topics.json";
/// The most partitions one topic may have.
pub const MAX_PARTITIONS: i32 = 10_000;

/// A partition's log on this shard.
pub type PartitionLog = Rc<Log<GlommioDisk>>;

/// One topic.
#[derive(Debug, Clone)]
pub struct Topic {
    /// Its id (Metadata v10+, Fetch v13+).
    pub id: Uuid,
    /// Its partitions' logs, by index.
    pub partitions: Vec<PartitionLog>,
    /// Its configs (overrides of Kafka's defaults).
    pub config: TopicConfig,
}

impl Topic {
    /// The log of partition `index`, if the topic has it.
    pub fn partition(&self, index: i32) -> Option<&PartitionLog> {
        usize::try_from(index)
            .ok()
            .and_then(|i| self.partitions.get(i))
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
    /// The metadata file could not be read or written.
    #[error("topic metadata {path}: {reason}")]
    Metadata {
        /// The file.
        path: PathBuf,
        /// What went wrong.
        reason: String,
    },
}

#[derive(Debug, Default, Serialize, Deserialize)]
struct TopicsFile {
    topics: Vec<TopicEntry>,
}

#[derive(Debug, Clone, Serialize, Deserialize)]
struct TopicEntry {
    name: String,
    /// The topic id, hyphenated.
    id: String,
    partitions: i32,
    /// Config overrides.
    #[serde(default)]
    configs: BTreeMap<String, String>,
}

/// Every topic this broker holds.
#[derive(Debug)]
pub struct Topics {
    disk: GlommioDisk,
    data_dir: PathBuf,
    log_config: LogConfig,
    topics: RefCell<BTreeMap<String, Topic>>,
}

impl Topics {
    /// Loads `topics.json` and opens (recovering if needed) every partition's log.
    pub async fn open(
        disk: GlommioDisk,
        data_dir: &Path,
        log_config: LogConfig,
    ) -> Result<Topics, TopicError> {
        let path = data_dir.join(TOPICS_FILE);
        let metadata_error = |reason: String| TopicError::Metadata {
            path: path.clone(),
            reason,
        };
        let stored = disk
            .read_small(&path)
            .await
            .map_err(|e| metadata_error(e.to_string()))?;
        let file: TopicsFile = match stored {
            Some(bytes) => {
                serde_json::from_slice(&bytes).map_err(|e| metadata_error(e.to_string()))?
            }
            None => TopicsFile::default(),
        };
        let topics = Topics {
            disk,
            data_dir: data_dir.to_path_buf(),
            log_config,
            topics: RefCell::new(BTreeMap::new()),
        };
        for entry in file.topics {
            let id = Uuid::parse_str(&entry.id)
                .map_err(|e| metadata_error(format!("topic {}: bad id: {e}", entry.name)))?;
            let config = TopicConfig::from_overrides(entry.configs)?;
            let topic = topics
                .open_partitions(&entry.name, id, entry.partitions, config)
                .await?;
            topics.topics.borrow_mut().insert(entry.name, topic);
        }
        Ok(topics)
    }

    async fn open_partitions(
        &self,
        name: &str,
        id: Uuid,
        partitions: i32,
        config: TopicConfig,
    ) -> Result<Topic, TopicError> {
        let mut logs = Vec::with_capacity(usize::try_from(partitions).unwrap_or(0));
        for partition in 0..partitions {
            logs.push(self.open_log(name, partition, &config).await?);
        }
        Ok(Topic {
            id,
            partitions: logs,
            config,
        })
    }

    async fn open_log(
        &self,
        name: &str,
        partition: i32,
        config: &TopicConfig,
    ) -> Result<PartitionLog, TopicError> {
        let dir = self.data_dir.join(format!("{name}-{partition}"));
        let log_config = LogConfig {
            segment_bytes: config.segment_bytes(),
            ..self.log_config.clone()
        };
        Ok(Rc::new(
            Log::open(self.disk.clone(), &dir, log_config).await?,
        ))
    }

    /// The topic named `name`, if it exists.
    pub fn get(&self, name: &str) -> Option<Topic> {
        self.topics.borrow().get(name).cloned()
    }

    /// The topic with id `id`, and its name.
    pub fn by_id(&self, id: Uuid) -> Option<(String, Topic)> {
        let topics = self.topics.borrow();
        topics
            .iter()
            .find(|(_, topic)| topic.id == id)
            .map(|(name, topic)| (name.clone(), topic.clone()))
    }

    /// Every topic's name, in order.
    pub fn names(&self) -> Vec<String> {
        self.topics.borrow().keys().cloned().collect()
    }

    /// Validates a creation without doing it.
    pub fn check_new(&self, name: &str, partitions: i32) -> Result<(), TopicError> {
        let valid = TopicName::new(name)?;
        if !(1..=MAX_PARTITIONS).contains(&partitions) {
            return Err(TopicError::BadPartitionCount(partitions));
        }
        let collision = valid.collision_key();
        let taken = self
            .topics
            .borrow()
            .keys()
            .any(|existing| existing == name || existing.replace('.', "_") == collision);
        if taken {
            return Err(TopicError::Exists(name.to_string()));
        }
        Ok(())
    }

    /// Creates a topic: its logs, then its line in the metadata file.
    pub async fn create(
        &self,
        name: &str,
        partitions: i32,
        config: TopicConfig,
    ) -> Result<Topic, TopicError> {
        self.check_new(name, partitions)?;
        let id = new_topic_id(name);
        let topic = self.open_partitions(name, id, partitions, config).await?;
        // Another task may have created it while the logs opened.
        if self.topics.borrow().contains_key(name) {
            return Err(TopicError::Exists(name.to_string()));
        }
        self.topics
            .borrow_mut()
            .insert(name.to_string(), topic.clone());
        self.persist().await?;
        tracing::info!(topic = name, partitions, %id, "topic created");
        Ok(topic)
    }

    /// Deletes a topic: it leaves the metadata file first (so a crash never resurrects it),
    /// then its logs are closed and their directories removed.
    pub async fn delete(&self, name: &str) -> Result<Uuid, TopicError> {
        let topic = self
            .topics
            .borrow_mut()
            .remove(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        self.persist().await?;
        let count = topic.partitions.len();
        for (index, log) in topic.partitions.into_iter().enumerate() {
            if let Ok(log) = Rc::try_unwrap(log) {
                // Closing flushes what is buffered; the directory goes next anyway.
                log.close().await?;
            }
            let dir = self.data_dir.join(format!("{name}-{index}"));
            if let Err(e) = std::fs::remove_dir_all(&dir) {
                tracing::warn!(dir = %dir.display(), error = %e, "could not remove a deleted partition's directory");
            }
        }
        tracing::info!(topic = name, partitions = count, "topic deleted");
        Ok(topic.id)
    }

    /// Raises a topic's partition count to `count` (CreatePartitions).
    pub async fn add_partitions(
        &self,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let topic = self
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
        let current = i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX);
        if count <= current || count > MAX_PARTITIONS {
            return Err(TopicError::BadNewPartitionCount {
                current,
                requested: count,
            });
        }
        if validate_only {
            return Ok(());
        }
        let mut added = Vec::new();
        for partition in current..count {
            added.push(self.open_log(name, partition, &topic.config).await?);
        }
        if let Some(topic) = self.topics.borrow_mut().get_mut(name) {
            topic.partitions.extend(added);
        }
        self.persist().await?;
        tracing::info!(topic = name, from = current, to = count, "partitions added");
        Ok(())
    }

    /// Replaces a topic's configs, persists them, and applies what applies to open logs.
    pub async fn set_config(&self, name: &str, config: TopicConfig) -> Result<(), TopicError> {
        let logs = {
            let mut topics = self.topics.borrow_mut();
            let topic = topics
                .get_mut(name)
                .ok_or_else(|| TopicError::Unknown(name.to_string()))?;
            topic.config = config.clone();
            topic.partitions.clone()
        };
        for log in logs {
            log.set_segment_bytes(config.segment_bytes());
        }
        self.persist().await
    }

    /// Every partition's log with its topic's config, for background maintenance.
    pub fn all_logs(&self) -> Vec<(PartitionLog, TopicConfig)> {
        let topics = self.topics.borrow();
        topics
            .values()
            .flat_map(|topic| {
                topic
                    .partitions
                    .iter()
                    .map(|log| (log.clone(), topic.config.clone()))
            })
            .collect()
    }

    async fn persist(&self) -> Result<(), TopicError> {
        let topics = self
            .topics
            .borrow()
            .iter()
            .map(|(name, topic)| TopicEntry {
                name: name.clone(),
                id: topic.id.hyphenated().to_string(),
                partitions: i32::try_from(topic.partitions.len()).unwrap_or(i32::MAX),
                configs: topic.config.overrides().clone(),
            })
            .collect();
        let path = self.data_dir.join(TOPICS_FILE);
        let bytes = serde_json::to_vec_pretty(&TopicsFile { topics }).map_err(|e| {
            TopicError::Metadata {
                path: path.clone(),
                reason: e.to_string(),
            }
        })?;
        self.disk
            .write_atomically(&path, &bytes)
            .await
            .map_err(|e| TopicError::Metadata {
                path,
                reason: e.to_string(),
            })
    }

    /// Flushes and closes every log (clean shutdown): logs no task holds any more get their
    /// clean-shutdown marker; one still held by a connection is flushed only (its next open
    /// runs recovery, which finds everything flushed).
    pub async fn close_all(&self) -> Result<(), LogError> {
        let topics = std::mem::take(&mut *self.topics.borrow_mut());
        for (_, topic) in topics {
            for log in topic.partitions {
                match Rc::try_unwrap(log) {
                    Ok(log) => log.close().await?,
                    Err(shared) => {
                        shared.flush().await?;
                    }
                }
            }
        }
        Ok(())
    }
}

/// A fresh, non-nil topic id: std's randomly seeded hasher stands in for a UUID generator.
fn new_topic_id(name: &str) -> Uuid {
    let mut high = std::collections::hash_map::RandomState::new().build_hasher();
    high.write(name.as_bytes());
    let mut low = std::collections::hash_map::RandomState::new().build_hasher();
    low.write_u64(high.finish());
    let value = (u128::from(high.finish()) << 64) | u128::from(low.finish());
    // Version 4, RFC 4122 variant, as random UUIDs are.
    let value = (value & !(0xf << 76) | (0x4 << 76)) & !(0x3 << 62) | (0x2 << 62);
    Uuid::from_u128(value.max(1))
}
