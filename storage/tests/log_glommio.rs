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
        out.push(read.bytes);
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
