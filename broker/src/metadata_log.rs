//! The metadata log: every topic change as a record, appended and made durable by the
//! controller (shard 0) before the change is applied, and replayed at start-up. It lives in
//! `<data>/metadata/` (no partition directory can have that name: theirs end in
//! `-<partition>`) and uses the partition log format, so it can become the replicated
//! controller log (DESIGN §5) without a new storage path.
//!
//! Each record's value is JSON: a topic's whole state after a change
//! (`{"type":"topic","name":…,"id":…,"partitions":…,"configs":{…}}`), or its deletion
//! (`{"type":"topic_deleted","name":…,"id":…}`). Replay keeps the last state per topic.
//! A data directory from before the log (with `topics.json`) is imported once.

use crate::topic_config::TopicConfig;
use crate::topics::{Topic, TopicError, MAX_PARTITIONS, TOPICS_FILE};
use serde::{Deserialize, Serialize};
use spate_model::batch::{BatchBuilder, BatchSplitter, BuilderRecord};
use spate_model::{Compression, LeaderEpoch, RecordBatch};
use spate_storage::disk::glommio::GlommioDisk;
use spate_storage::{Log, LogConfig};
use std::collections::BTreeMap;
use std::path::{Path, PathBuf};
use uuid::Uuid;

/// The metadata log's directory in the data directory.
pub const METADATA_DIR: &str = "metadata";
/// Bytes read at a time while replaying.
const REPLAY_READ_BYTES: usize = 1 << 20;

/// One topic change.
#[derive(Debug, Clone, PartialEq, Eq, Serialize, Deserialize)]
#[serde(tag = "type", rename_all = "snake_case")]
pub enum Record {
    /// A topic's state after it was created or changed.
    Topic {
        /// Its name.
        name: String,
        /// Its id, hyphenated.
        id: String,
        /// Its partition count.
        partitions: i32,
        /// Its config overrides.
        #[serde(default)]
        configs: BTreeMap<String, String>,
    },
    /// A topic was deleted.
    TopicDeleted {
        /// Its name.
        name: String,
        /// Its id, hyphenated.
        id: String,
    },
    /// Producer ids below `next` have been handed out (InitProducerId); they are never
    /// handed out again.
    ProducerIds {
        /// The first producer id not handed out.
        next: i64,
    },
}

impl Record {
    /// The record of `topic`'s current state.
    pub fn of(name: &str, topic: &Topic) -> Record {
        Record::Topic {
            name: name.to_string(),
            id: topic.id.hyphenated().to_string(),
            partitions: topic.partition_count(),
            configs: topic.config.overrides().clone(),
        }
    }
}

/// A topic as the log describes it: (id, partitions, config).
pub type Stored = (Uuid, i32, TopicConfig);

/// What replaying the metadata log found.
#[derive(Debug)]
pub struct Replayed {
    /// The open log.
    pub log: MetadataLog,
    /// The topics it describes.
    pub topics: BTreeMap<String, Stored>,
    /// The first producer id never handed out.
    pub next_producer_id: i64,
}

/// The open metadata log (shard 0).
#[derive(Debug)]
pub struct MetadataLog {
    log: Log<GlommioDisk>,
    dir: PathBuf,
}

impl MetadataLog {
    /// Opens (recovering if needed) the log in `data_dir` and replays it into the topics it
    /// describes; imports `topics.json` when the log is empty and that file exists.
    pub async fn open(disk: GlommioDisk, data_dir: &Path) -> Result<Replayed, TopicError> {
        let dir = data_dir.join(METADATA_DIR);
        let log = Log::open(disk, &dir, LogConfig::default()).await?;
        let metadata = MetadataLog { log, dir };
        let mut records = metadata.replay().await?;
        if records.is_empty() {
            records = import(data_dir)?;
            if !records.is_empty() {
                metadata.append(&records).await?;
                let old = data_dir.join(TOPICS_FILE);
                let kept = data_dir.join(format!("{TOPICS_FILE}.imported"));
                if let Err(e) = std::fs::rename(&old, &kept) {
                    tracing::warn!(error = %e, "could not set the imported topics.json aside");
                }
                tracing::info!(
                    topics = records.len(),
                    "imported topics.json into the metadata log"
                );
            }
        }
        let mut topics = BTreeMap::new();
        let mut next_producer_id = 0;
        for record in records {
            if let Record::ProducerIds { next } = record {
                next_producer_id = next_producer_id.max(next);
                continue;
            }
            metadata.apply(&mut topics, record)?;
        }
        Ok(Replayed {
            log: metadata,
            topics,
            next_producer_id,
        })
    }

    fn apply(
        &self,
        topics: &mut BTreeMap<String, Stored>,
        record: Record,
    ) -> Result<(), TopicError> {
        match record {
            Record::Topic {
                name,
                id,
                partitions,
                configs,
            } => {
                if !(1..=MAX_PARTITIONS).contains(&partitions) {
                    return Err(self.corrupt(format!("topic {name}: {partitions} partitions")));
                }
                let id = Uuid::parse_str(&id)
                    .map_err(|e| self.corrupt(format!("topic {name}: bad id: {e}")))?;
                let config = TopicConfig::from_overrides(configs)?;
                topics.insert(name, (id, partitions, config));
            }
            Record::TopicDeleted { name, .. } => {
                topics.remove(&name);
            }
            Record::ProducerIds { .. } => {}
        }
        Ok(())
    }

    fn corrupt(&self, reason: String) -> TopicError {
        TopicError::Metadata {
            path: self.dir.clone(),
            reason,
        }
    }

    /// Appends `records` as one batch and waits until it is durable.
    pub async fn append(&self, records: &[Record]) -> Result<(), TopicError> {
        let values = records
            .iter()
            .map(serde_json::to_vec)
            .collect::<Result<Vec<_>, _>>()
            .map_err(|e| self.corrupt(e.to_string()))?;
        let mut builder = BatchBuilder::new(Compression::None);
        for value in &values {
            builder
                .push(&BuilderRecord {
                    timestamp_ms: crate::now_ms(),
                    key: None,
                    value: Some(value),
                    headers: &[],
                })
                .map_err(|e| self.corrupt(e.to_string()))?;
        }
        let bytes = builder.build().map_err(|e| self.corrupt(e.to_string()))?;
        let batch = RecordBatch::validate(&bytes).map_err(|e| self.corrupt(e.to_string()))?;
        self.log.append(&batch, LeaderEpoch(0))?;
        self.log.flush().await?;
        Ok(())
    }

    /// Every record, oldest first.
    async fn replay(&self) -> Result<Vec<Record>, TopicError> {
        let mut records = Vec::new();
        let mut next = self.log.log_start_offset();
        let end = self.log.durable_offset();
        while next < end {
            let read = self.log.read(next, REPLAY_READ_BYTES, end).await?;
            let before = next;
            for bytes in BatchSplitter::new(&read.bytes) {
                let bytes = bytes.map_err(|e| self.corrupt(e.to_string()))?;
                let batch =
                    RecordBatch::validate(bytes).map_err(|e| self.corrupt(e.to_string()))?;
                next = spate_model::Offset(batch.header().last_offset().get() + 1);
                let entries = batch.records().map_err(|e| self.corrupt(e.to_string()))?;
                for record in entries {
                    let record = record.map_err(|e| self.corrupt(e.to_string()))?;
                    let value = record.value.unwrap_or_default();
                    records.push(
                        serde_json::from_slice(value).map_err(|e| self.corrupt(e.to_string()))?,
                    );
                }
            }
            if next <= before {
                return Err(self.corrupt(format!("no progress reading at offset {}", before.get())));
            }
        }
        Ok(records)
    }
}

/// The records of a `topics.json` written before the metadata log existed.
fn import(data_dir: &Path) -> Result<Vec<Record>, TopicError> {
    #[derive(Deserialize)]
    struct File {
        topics: Vec<Entry>,
    }
    #[derive(Deserialize)]
    struct Entry {
        name: String,
        id: String,
        partitions: i32,
        #[serde(default)]
        configs: BTreeMap<String, String>,
    }
    let path = data_dir.join(TOPICS_FILE);
    let bytes = match std::fs::read(&path) {
        Ok(bytes) => bytes,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(Vec::new()),
        Err(e) => {
            return Err(TopicError::Metadata {
                path,
                reason: e.to_string(),
            })
        }
    };
    let file: File = serde_json::from_slice(&bytes).map_err(|e| TopicError::Metadata {
        path: path.clone(),
        reason: e.to_string(),
    })?;
    Ok(file
        .topics
        .into_iter()
        .map(|e| Record::Topic {
            name: e.name,
            id: e.id,
            partitions: e.partitions,
            configs: e.configs,
        })
        .collect())
}
