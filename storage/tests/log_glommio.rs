//! The log on real files through glommio's direct I/O: the same operations as on the memory
//! disk, in a temporary directory, on one executor with a small registered-memory budget.

use spate_model::{BatchBuilder, BuilderRecord, Compression, LeaderEpoch, Offset, RecordBatch};
use spate_storage::disk::glommio::{run_executor, GlommioDisk};
use spate_storage::{Log, LogConfig};
use std::path::PathBuf;

/// Registered I/O memory per test executor: several tests may run at once under an 8 MiB
/// locked-memory limit.
const IO_MEMORY_BYTES: usize = 512 * 1024;

fn batch(index: u32, value_bytes: usize) -> Vec<u8> {
    let value = vec![(index % 251) as u8; value_bytes];
    let key = index.to_be_bytes();
    let mut builder = BatchBuilder::new(Compression::None);
    builder
        .push(&BuilderRecord {
            timestamp_ms: 1_700_000_000_000 + i64::from(index),
            key: Some(&key),
            value: Some(&value),
            headers: &[],
        })
        .expect("push");
    builder.build().expect("build")
}

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 96 * 1024,
        index_interval_bytes: 4096,
        chunk_bytes: 64 * 1024,
        max_unflushed_bytes: 1 << 20,
        flush_policy: spate_storage::FlushPolicy::EveryCommit,
        preallocate_bytes: 128 * 1024,
        tail_cache: None,
        write_budget: None,
        recycle_segments: 2,
        stats: Default::default(),
    }
}

async fn read_all(log: &Log<GlommioDisk>) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = Offset(0);
    loop {
        let read = log.read(offset, 1, Offset(i64::MAX)).await.expect("read");
        if read.batches == 0 {
            return out;
        }
        let header_last = RecordBatch::validate(&read.bytes)
            .expect("valid")
            .header()
            .last_offset();
        offset = Offset(header_last.get() + 1);
        out.push(read.bytes.to_vec());
    }
}

#[test]
fn append_flush_read_close_reopen_on_real_files() {
    let temp = tempfile::tempdir().expect("temp dir");
    let root: PathBuf = temp.path().to_path_buf();
    let result = run_executor("log-test", IO_MEMORY_BYTES, move || async move {
        let disk = GlommioDisk::new(&root).await.expect("probe");
        let dir = root.join("orders-0");
        let log = Log::open(disk.clone(), &dir, config()).await.expect("open");
        let mut expected = Vec::new();
        for i in 0..120_u32 {
            let bytes = batch(i, 700 + (i as usize * 37) % 3000);
            let valid = RecordBatch::validate(&bytes).expect("valid");
            let appended = log.append(&valid, LeaderEpoch(1)).expect("append");
            let mut stamped = bytes.clone();
            spate_model::batch::stamp(&mut stamped, appended.base_offset, LeaderEpoch(1));
            expected.push(stamped);
            if i % 9 == 0 {
                log.flush().await.expect("flush");
            }
        }
        log.flush().await.expect("flush");
        assert!(log.segment_bases().len() > 1, "rolled over 96 KiB segments");
        assert_eq!(read_all(&log).await, expected);
        log.close().await.expect("close");

        let log = Log::open(disk, &dir, config()).await.expect("reopen");
        assert_eq!(log.next_offset(), Offset(120));
        assert_eq!(read_all(&log).await, expected);
        log.close().await.expect("close again");
        expected.len()
    })
    .expect("executor");
    assert_eq!(result, 120);
    // On disk: sealed segments truncated to their data, indexes beside them, the marker.
    let names: Vec<String> = std::fs::read_dir(temp.path().join("orders-0"))
        .expect("dir")
        .map(|e| e.expect("entry").file_name().to_string_lossy().into_owned())
        .collect();
    assert!(
        names.iter().any(|n| n == "00000000000000000000.log"),
        "{names:?}"
    );
    assert!(
        names.iter().any(|n| n == "00000000000000000000.index"),
        "{names:?}"
    );
    assert!(names.iter().any(|n| n == ".clean-shutdown"), "{names:?}");
}

#[test]
fn truncation_retention_epochs_and_timestamps_on_real_files() {
    let temp = tempfile::tempdir().expect("temp dir");
    let root: PathBuf = temp.path().to_path_buf();
    run_executor("log-maintenance", IO_MEMORY_BYTES, move || async move {
        let disk = GlommioDisk::new(&root).await.expect("probe");
        let dir = root.join("events-0");
        let budget = spate_storage::budget::Budget::new(256 * 1024);
        let config = LogConfig {
            tail_cache: Some(budget.clone()),
            ..config()
        };
        let log = Log::open(disk.clone(), &dir, config.clone())
            .await
            .expect("open");
        for i in 0..150_u32 {
            let bytes = batch(i, 1500);
            let valid = RecordBatch::validate(&bytes).expect("valid");
            let epoch = LeaderEpoch(1 + (i / 50) as i32);
            log.append(&valid, epoch).expect("append");
            if i % 10 == 9 {
                log.flush().await.expect("flush");
            }
        }
        log.flush().await.expect("flush");
        assert!(budget.used() <= budget.capacity());
        // Epochs 1, 2, 3 start at 0, 50, 100.
        assert_eq!(
            log.end_offset_for_epoch(LeaderEpoch(2)),
            Some((LeaderEpoch(2), Offset(100)))
        );
        // Record i has timestamp 1_700_000_000_000 + i.
        let found = log
            .offset_for_timestamp(1_700_000_000_077)
            .await
            .expect("lookup");
        assert_eq!(found, Some((Offset(77), 1_700_000_000_077)));
        // A follower-style truncation back into epoch 2, then a new epoch.
        assert_eq!(
            log.truncate_suffix(Offset(90)).await.expect("truncate"),
            Offset(90)
        );
        assert_eq!(log.latest_epoch(), Some(LeaderEpoch(2)));
        let bytes = batch(999, 10);
        log.append(
            &RecordBatch::validate(&bytes).expect("valid"),
            LeaderEpoch(4),
        )
        .expect("append");
        log.flush().await.expect("flush");
        // Retention by size keeps the newest segments only (Kafka's rule: delete the oldest
        // while what remains is still at least the limit).
        let retention = spate_storage::Retention {
            retention_ms: None,
            retention_bytes: Some(32 * 1024),
        };
        let deleted = log.apply_retention(retention, 0).await.expect("retention");
        assert!(!deleted.is_empty());
        let start = log.log_start_offset();
        assert!(start > Offset(0));
        log.close().await.expect("close");

        let log = Log::open(disk, &dir, config).await.expect("reopen");
        assert_eq!(log.log_start_offset(), start);
        assert_eq!(log.next_offset(), Offset(91));
        assert_eq!(
            log.end_offset_for_epoch(LeaderEpoch(3)),
            Some((LeaderEpoch(2), Offset(90)))
        );
        assert_eq!(
            log.end_offset_for_epoch(LeaderEpoch(4)),
            Some((LeaderEpoch(4), Offset(91)))
        );
        let read = log
            .read(Offset(90), 1 << 20, Offset(i64::MAX))
            .await
            .expect("read");
        assert_eq!(read.batches, 1);
        log.close().await.expect("close");
    })
    .expect("executor");
}

/// A read that waits for the disk while an append lands in the chunk it planned to read
/// from: the append writes into a copy of that chunk (no panic), the read returns the
/// batches as they were when it started, and a later read sees the new one.
#[test]
fn appends_during_a_read_from_disk_leave_the_read_intact() {
    let temp = tempfile::tempdir().expect("temp dir");
    let root: PathBuf = temp.path().to_path_buf();
    let counts = run_executor("log-test", IO_MEMORY_BYTES, move || async move {
        let disk = GlommioDisk::new(&root).await.expect("probe");
        let dir = root.join("busy-0");
        let log = std::rc::Rc::new(Log::open(disk, &dir, config()).await.expect("open"));
        // Flushed batches (no tail cache: later reads go to the disk), the last page of
        // them carried in the open chunk.
        for i in 0..20_u32 {
            let bytes = batch(i, 1000);
            let valid = RecordBatch::validate(&bytes).expect("valid");
            log.append(&valid, LeaderEpoch(1)).expect("append");
        }
        log.flush().await.expect("flush");
        let reader = log.clone();
        let read = spate_storage::disk::glommio::spawn_local(async move {
            reader.read(Offset(0), 1 << 20, Offset(i64::MAX)).await
        });
        // Let the read start and wait for its disk read.
        futures_lite::future::yield_now().await;
        for i in 20..25_u32 {
            let bytes = batch(i, 1000);
            let valid = RecordBatch::validate(&bytes).expect("valid");
            log.append(&valid, LeaderEpoch(1))
                .expect("append while a read waits");
        }
        let during = read.await.expect("read");
        log.flush().await.expect("flush");
        let after = log
            .read(Offset(0), 1 << 20, Offset(i64::MAX))
            .await
            .expect("read");
        (during.batches, after.batches)
    })
    .expect("executor");
    assert_eq!(counts.0, 20, "the read saw what was there when it started");
    assert_eq!(counts.1, 25);
}
