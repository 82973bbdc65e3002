//! In-process brokers for unit tests: one shard on real files in a temporary directory.

use crate::api::Broker;
use crate::groups::{GroupTimes, Groups};
use crate::metadata_log::MetadataLog;
use crate::runtime;
use crate::topics::{Catalog, ShardLogs};
use spate_storage::disk::glommio::GlommioDisk;
use std::path::Path;
use std::rc::Rc;
use std::sync::Arc;
use std::time::Duration;

/// Appends one record with `value` to `log`, in a batch from `builder` (which sets the
/// producer and flags).
pub(crate) fn append_record(
    log: &crate::topics::PartitionLog,
    mut builder: spate_model::BatchBuilder,
    value: &[u8],
) {
    builder
        .push(&spate_model::BuilderRecord {
            value: Some(value),
            ..Default::default()
        })
        .expect("push");
    let bytes = builder.build().expect("build");
    let batch = spate_model::RecordBatch::validate(&bytes).expect("valid");
    log.append(&batch, spate_model::LeaderEpoch(0))
        .expect("append");
}

/// An uncompressed batch with one record per value.
pub(crate) fn batch_of(values: &[&[u8]]) -> Vec<u8> {
    let mut builder = spate_model::BatchBuilder::new(spate_model::Compression::None);
    for value in values {
        builder
            .push(&spate_model::BuilderRecord {
                value: Some(value),
                ..Default::default()
            })
            .expect("push");
    }
    builder.build().expect("build")
}

/// A one-shard broker on `path` (inside a running shard executor), serving its mesh inbox.
pub(crate) async fn one_shard_broker(path: &Path) -> Rc<Broker> {
    let disk = GlommioDisk::new(path).await.expect("disk");
    let replayed = MetadataLog::open(disk.clone(), path).await.expect("log");
    let catalog = Arc::new(Catalog::new(1));
    catalog.install(replayed.topics);
    let (mesh, mut inboxes) = runtime::mesh::mesh(1, 8);
    let broker = Rc::new(Broker {
        node_id: 0,
        advertised: ("127.0.0.1".to_string(), 9092),
        shard: 0,
        mesh,
        topics: catalog,
        logs: ShardLogs::new(disk, path, spate_storage::LogConfig::default()),
        controller: Some(crate::controller::Controller::new(replayed.log, 0)),
        producers: Default::default(),
        transactions: Default::default(),
        producer_ids: Default::default(),
        groups: Groups::new(GroupTimes {
            initial_delay: Duration::ZERO,
            offsets_retention: Duration::from_secs(60),
            consumer_session: Duration::from_secs(45),
            consumer_heartbeat: Duration::from_secs(5),
        }),
        data_dir: path.to_path_buf(),
        request_budget: spate_storage::budget::Budget::new(1 << 20),
        auto_create_topics: false,
        num_partitions: 1,
        metrics: Default::default(),
        slow_request: None,
    });
    let inbox = inboxes.pop().expect("inbox");
    runtime::spawn_detached(inbox.serve(broker.clone()));
    broker
}
