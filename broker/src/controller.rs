//! Topic changes — create, delete, add partitions, alter configs. Whichever shard receives
//! the request, the change runs on shard 0, one change at a time: shard 0 opens (or closes)
//! the partitions' logs on their owner shards, then records the change in the metadata log
//! (durably) and publishes the new catalog snapshot, so a client that hears "created" can
//! use every partition at once, and a crash never forgets an acknowledged change.
//! Designed to become the replicated controller log's state machine later (DESIGN §5).

use crate::api::Broker;
use crate::metadata_log::{MetadataLog, Record};
use crate::topic_config::TopicConfig;
use crate::topics::{random_uuid, PartitionLog, Topic, TopicError, MAX_PARTITIONS};
use spate_storage::join::join_all;
use std::collections::BTreeMap;
use std::future::Future;
use std::rc::Rc;
use std::sync::Arc;
use uuid::Uuid;

/// Shard 0's controller state: the metadata log, and the lock that keeps topic changes one
/// at a time.
#[derive(Debug)]
pub struct Controller {
    log: MetadataLog,
    next_producer_id: std::cell::Cell<i64>,
    token: flume::Sender<()>,
    waiting: flume::Receiver<()>,
}

impl Controller {
    /// The controller, recording changes in `log`; producer ids from `next_producer_id` on
    /// have not been handed out.
    pub fn new(log: MetadataLog, next_producer_id: i64) -> Controller {
        let (token, waiting) = flume::bounded(1);
        // A fresh bounded(1) channel always takes its first message.
        let _ = token.send(());
        Controller {
            log,
            next_producer_id: std::cell::Cell::new(next_producer_id),
            token,
            waiting,
        }
    }
}

/// Held while a change runs; gives the lock back when dropped.
struct Turn<'a> {
    controller: &'a Controller,
}

impl Drop for Turn<'_> {
    fn drop(&mut self) {
        let _ = self.controller.token.try_send(());
    }
}

impl Controller {
    async fn turn(&self) -> Turn<'_> {
        // The sender lives as long as the controller, so this only waits.
        let _ = self.waiting.recv_async().await;
        Turn { controller: self }
    }
}

/// Producer ids a shard takes from the controller at a time.
const PRODUCER_ID_BLOCK: i64 = 1000;

/// Consumer groups and transactional ids hash onto the internal topics' partitions: their
/// counts never change, and they are never deleted.
fn refuse_internal(name: &str) -> Result<(), TopicError> {
    if crate::topics::is_internal(name) {
        return Err(TopicError::Internal(name.to_string()));
    }
    Ok(())
}

impl Broker {
    /// Creates a topic with `partitions` partitions spread over the shards.
    pub async fn create_topic(
        self: &Rc<Self>,
        name: &str,
        partitions: i32,
        config: TopicConfig,
    ) -> Result<Arc<Topic>, TopicError> {
        let name = name.to_string();
        self.on_controller(move |broker| async move {
            broker.controller_create(&name, partitions, config).await
        })
        .await
    }

    /// Deletes a topic: it leaves the catalog and the metadata file first (so a crash never
    /// resurrects it), then its owners close its logs and remove their directories.
    pub async fn delete_topic(self: &Rc<Self>, name: &str) -> Result<Uuid, TopicError> {
        let name = name.to_string();
        self.on_controller(move |broker| async move { broker.controller_delete(&name).await })
            .await
    }

    /// Raises a topic's partition count to `count` (CreatePartitions).
    pub async fn add_partitions(
        self: &Rc<Self>,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        let name = name.to_string();
        self.on_controller(move |broker| async move {
            broker.controller_add(&name, count, validate_only).await
        })
        .await
    }

    /// Replaces a topic's configs, persists them, and applies what applies to open logs.
    pub async fn set_topic_config(
        self: &Rc<Self>,
        name: &str,
        config: TopicConfig,
    ) -> Result<(), TopicError> {
        let name = name.to_string();
        self.on_controller(move |broker| async move {
            broker.controller_set_config(&name, config).await
        })
        .await
    }

    /// Creates the internal topic `name` (compacted) with `partitions` partitions if it does
    /// not exist (shard 0, at start-up).
    pub async fn create_internal_topic(
        self: &Rc<Self>,
        name: &str,
        partitions: i32,
    ) -> Result<(), TopicError> {
        if self.topics.get(name).is_some() {
            return Ok(());
        }
        let mut config = TopicConfig::default();
        config.set("cleanup.policy", "compact")?;
        self.create_topic(name, partitions, config)
            .await
            .map(|_| ())
    }

    /// The partitions of `topic` this shard owns, with their logs.
    pub fn owned_partitions(&self, topic: &Topic) -> Vec<(i32, PartitionLog)> {
        (0..topic.partition_count())
            .filter(|&p| topic.owner(p) == Some(self.shard))
            .filter_map(|p| Some((p, self.logs.get(topic.id, p)?)))
            .collect()
    }

    /// A producer id never handed out before (InitProducerId): from this shard's block,
    /// taking a new block from the controller (durably recorded) when it is used up.
    pub async fn new_producer_id(self: &Rc<Self>) -> Result<i64, TopicError> {
        let (next, end) = self.producer_ids.get();
        if next < end {
            self.producer_ids.set((next + 1, end));
            return Ok(next);
        }
        let start = self
            .on_controller(|broker| async move { broker.controller_producer_ids().await })
            .await?;
        self.producer_ids
            .set((start + 1, start + PRODUCER_ID_BLOCK));
        Ok(start)
    }

    async fn controller_producer_ids(self: &Rc<Self>) -> Result<i64, TopicError> {
        let controller = self.controller()?;
        let _turn = controller.turn().await;
        let start = controller.next_producer_id.get();
        let next = start + PRODUCER_ID_BLOCK;
        controller
            .log
            .append(&[Record::ProducerIds { next }])
            .await?;
        controller.next_producer_id.set(next);
        Ok(start)
    }

    async fn on_controller<R, F, Fut>(self: &Rc<Self>, change: F) -> Result<R, TopicError>
    where
        R: Send + 'static,
        F: FnOnce(Rc<Broker>) -> Fut + Send + 'static,
        Fut: Future<Output = Result<R, TopicError>> + 'static,
    {
        self.on_shard(0, change)
            .await
            .map_err(|e| TopicError::Unavailable(e.to_string()))?
    }

    fn controller(&self) -> Result<&Controller, TopicError> {
        self.controller.as_ref().ok_or_else(|| {
            TopicError::Unavailable(format!("shard {} has no controller", self.shard))
        })
    }

    async fn controller_create(
        self: &Rc<Self>,
        name: &str,
        partitions: i32,
        config: TopicConfig,
    ) -> Result<Arc<Topic>, TopicError> {
        let _turn = self.controller()?.turn().await;
        self.topics.check_new(name, partitions)?;
        let id = random_uuid(name);
        let owners = self.topics.place(&self.topics.snapshot(), &[], partitions);
        if let Err(e) = self.open_on_owners(name, id, &owners, 0, &config).await {
            // Close whatever did open; the topic never existed.
            self.close_everywhere(name, id).await;
            return Err(e);
        }
        let topic = Arc::new(Topic { id, owners, config });
        if let Err(e) = self.record(Record::of(name, &topic)).await {
            self.close_everywhere(name, id).await;
            return Err(e);
        }
        self.topics.update(|topics| {
            topics.insert(name.to_string(), topic.clone());
        });
        tracing::info!(topic = name, partitions, %id, "topic created");
        Ok(topic)
    }

    async fn controller_delete(self: &Rc<Self>, name: &str) -> Result<Uuid, TopicError> {
        refuse_internal(name)?;
        let _turn = self.controller()?.turn().await;
        let topic = self.existing(name)?;
        self.record(Record::TopicDeleted {
            name: name.to_string(),
            id: topic.id.hyphenated().to_string(),
        })
        .await?;
        self.topics.update(|topics| {
            topics.remove(name);
        });
        self.close_everywhere(name, topic.id).await;
        tracing::info!(
            topic = name,
            partitions = topic.owners.len(),
            "topic deleted"
        );
        Ok(topic.id)
    }

    async fn controller_add(
        self: &Rc<Self>,
        name: &str,
        count: i32,
        validate_only: bool,
    ) -> Result<(), TopicError> {
        refuse_internal(name)?;
        let _turn = self.controller()?.turn().await;
        let topic = self.existing(name)?;
        let current = topic.partition_count();
        if count <= current || count > MAX_PARTITIONS {
            return Err(TopicError::BadNewPartitionCount {
                current,
                requested: count,
            });
        }
        if validate_only {
            return Ok(());
        }
        let added = self
            .topics
            .place(&self.topics.snapshot(), &[], count - current);
        self.open_on_owners(name, topic.id, &added, current, &topic.config)
            .await?;
        let mut grown = Topic::clone(&topic);
        grown.owners.extend(added);
        self.record(Record::of(name, &grown)).await?;
        self.topics.update(|topics| {
            topics.insert(name.to_string(), Arc::new(grown));
        });
        tracing::info!(topic = name, from = current, to = count, "partitions added");
        Ok(())
    }

    async fn controller_set_config(
        self: &Rc<Self>,
        name: &str,
        config: TopicConfig,
    ) -> Result<(), TopicError> {
        let _turn = self.controller()?.turn().await;
        let topic = self.existing(name)?;
        let mut changed = Topic::clone(&topic);
        changed.config = config.clone();
        self.record(Record::of(name, &changed)).await?;
        self.topics.update(|topics| {
            topics.insert(name.to_string(), Arc::new(changed));
        });
        let (id, segment_bytes) = (topic.id, config.segment_bytes());
        let shards = (0..self.topics.shards())
            .map(|shard| {
                self.on_shard(shard, move |broker| async move {
                    for log in broker.logs.of_topic(id) {
                        log.set_segment_bytes(segment_bytes);
                    }
                })
            })
            .collect();
        join_all(shards).await;
        Ok(())
    }

    /// Opens partitions `first..` (owned by `owners`, in order) on their shards.
    async fn open_on_owners(
        self: &Rc<Self>,
        name: &str,
        id: Uuid,
        owners: &[usize],
        first: i32,
        config: &TopicConfig,
    ) -> Result<(), TopicError> {
        let mut by_shard: BTreeMap<usize, Vec<i32>> = BTreeMap::new();
        for (partition, owner) in (first..).zip(owners) {
            by_shard.entry(*owner).or_default().push(partition);
        }
        let calls = by_shard
            .into_iter()
            .map(|(shard, partitions)| {
                let (name, config) = (name.to_string(), config.clone());
                self.on_shard(shard, move |broker| async move {
                    for partition in partitions {
                        broker.logs.open(&name, id, partition, &config).await?;
                    }
                    Ok::<(), TopicError>(())
                })
            })
            .collect();
        for result in join_all(calls).await {
            result.map_err(|e| TopicError::Unavailable(e.to_string()))??;
        }
        Ok(())
    }

    /// Every shard closes its logs of topic `id` and removes their directories.
    async fn close_everywhere(self: &Rc<Self>, name: &str, id: Uuid) {
        let calls = (0..self.topics.shards())
            .map(|shard| {
                let name = name.to_string();
                self.on_shard(shard, move |broker| async move {
                    broker.metrics.forget_topic(id);
                    broker.logs.delete_topic(&name, id).await
                })
            })
            .collect();
        for result in join_all(calls).await {
            match result {
                Ok(Ok(())) => {}
                Ok(Err(error)) => tracing::error!(%error, "closing a deleted topic's logs failed"),
                Err(error) => tracing::error!(%error, "closing a deleted topic's logs failed"),
            }
        }
    }

    fn existing(&self, name: &str) -> Result<Arc<Topic>, TopicError> {
        self.topics
            .get(name)
            .ok_or_else(|| TopicError::Unknown(name.to_string()))
    }

    async fn record(&self, record: Record) -> Result<(), TopicError> {
        self.controller()?.log.append(&[record]).await
    }
}
