//! Background work on each shard, for the partitions it owns: retention (`retention.ms`,
//! `retention.bytes`), time-based segment rolling (`segment.ms`), high-watermark checkpoints
//! and idempotent producers' snapshots (after forgetting producers idle past
//! `producer.id.expiration.ms`), and the release of read-ahead buffers no reader has used
//! since the last pass, every few seconds.

use crate::api::Broker;
use crate::now_ms;
use crate::runtime;
use spate_storage::Retention;
use std::rc::Rc;
use std::time::Duration;

/// How often the maintenance pass runs (Kafka's `log.retention.check.interval.ms` is 5 min;
/// this pass is cheap, so it runs more often).
pub const INTERVAL: Duration = Duration::from_secs(5);

/// Runs maintenance passes forever.
pub async fn run(broker: Rc<Broker>) {
    loop {
        runtime::sleep(INTERVAL).await;
        pass(&broker).await;
    }
}

/// One pass over every partition this shard owns.
pub async fn pass(broker: &Broker) {
    let now = now_ms();
    for state in broker.producers.borrow_mut().values_mut() {
        state.expire(now, crate::producers::PRODUCER_ID_EXPIRATION_MS);
    }
    crate::producers::save_changed(broker).await;
    let topics = broker.topics.snapshot();
    let owned = topics.values().flat_map(|topic| {
        (0..topic.partition_count())
            .filter(|&index| topic.owner(index) == Some(broker.shard))
            .filter_map(|index| Some((broker.logs.get(topic.id, index)?, &topic.config)))
    });
    for (log, config) in owned {
        log.release_idle_read_ahead(INTERVAL);
        log.roll_if_older(now, config.segment_ms());
        let retention = Retention {
            retention_ms: config.retention_ms(),
            retention_bytes: config.retention_bytes(),
        };
        match log.apply_retention(retention, now).await {
            Ok(deleted) if !deleted.is_empty() => {
                tracing::info!(dir = %log.dir().display(), segments = deleted.len(), "retention deleted segments");
            }
            Ok(_) => {}
            Err(error) => tracing::error!(dir = %log.dir().display(), %error, "retention failed"),
        }
        if let Err(error) = log.checkpoint_high_watermark(log.durable_offset()).await {
            tracing::error!(dir = %log.dir().display(), %error, "high-watermark checkpoint failed");
        }
    }
}
