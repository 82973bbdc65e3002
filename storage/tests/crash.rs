//! Crash test: a child process appends batches through glommio as fast as it can (two
//! producers, one with rounds larger than a write chunk, so early writes and overlapping
//! flushes are in flight when it dies), reporting each durable offset as its flush returns; the parent SIGKILLs it at a random moment,
//! reopens the log (running recovery) and checks that every batch acknowledged as durable is
//! present (from the log start: the child applies retention, which recycles segment files),
//! byte-identical and CRC-valid, and that whatever follows is only whole, valid
//! batches. 60 cycles on one directory, so later cycles recover logs that earlier crashes and
//! recoveries left behind.
//!
//! No libtest harness: the same binary is the child when `SPATE_CRASH_CHILD` is set.

use spate_model::{BatchBuilder, BuilderRecord, Compression, LeaderEpoch, Offset, RecordBatch};
use spate_storage::disk::glommio::{run_executor, spawn_local, GlommioDisk};
use spate_storage::{Log, LogConfig, LogError};
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::time::{Duration, Instant};

const CYCLES: u64 = 60;
const IO_MEMORY_BYTES: usize = 512 * 1024;
/// The child stops by itself after this long or this many offsets, whichever comes first.
const CHILD_MAX_RUN: Duration = Duration::from_secs(20);
const CHILD_MAX_OFFSETS: i64 = 5_000_000;

fn config() -> LogConfig {
    LogConfig {
        segment_bytes: 512 * 1024,
        index_interval_bytes: 4096,
        chunk_bytes: 64 * 1024,
        max_unflushed_bytes: 512 * 1024,
        flush_policy: spate_storage::FlushPolicy::EveryCommit,
        preallocate_bytes: 256 * 1024,
        tail_cache: Some(spate_storage::budget::Budget::new(1 << 20)),
        write_budget: None,
        recycle_segments: 2,
        stats: Default::default(),
    }
}

/// The batch that belongs at `base`: its content is a function of its offset, so the parent
/// can regenerate what the child wrote.
fn batch_for(base: Offset) -> Vec<u8> {
    let records = 1 + (base.get() % 4) as usize;
    let mut builder = BatchBuilder::new(Compression::None);
    for i in 0..records {
        let offset = base.get() + i as i64;
        let value: Vec<u8> = (0..(50 + (offset % 900) as usize))
            .map(|j| (offset as usize + j) as u8)
            .collect();
        builder
            .push(&BuilderRecord {
                timestamp_ms: 1_700_000_000_000 + offset,
                key: Some(&offset.to_be_bytes()),
                value: Some(&value),
                headers: &[],
            })
            .expect("push");
    }
    let mut bytes = builder.build().expect("build");
    spate_model::batch::stamp(&mut bytes, base, LeaderEpoch(7));
    bytes
}

async fn child(dir: PathBuf) {
    let disk = GlommioDisk::new(dir.parent().expect("parent"))
        .await
        .expect("probe");
    let log = std::rc::Rc::new(Log::open(disk, &dir, config()).await.expect("open"));
    // Two producers at once: while one waits for its flush the other appends, so chunks
    // fill and go out as early writes beside a flush's own writes (the big rounds are
    // larger than a chunk), and flushes overlap.
    let producers: Vec<_> = [0_u64, 1]
        .into_iter()
        .map(|producer| spawn_local(produce(log.clone(), producer)))
        .collect();
    for producer in producers {
        producer.await;
    }
}

async fn produce(log: std::rc::Rc<Log<GlommioDisk>>, producer: u64) {
    let started = Instant::now();
    // Retention keeps about 1 MiB: removed segments are recycled into new ones, so crashes
    // also hit logs whose active segment holds an older segment's batches past its end.
    let retention = spate_storage::Retention {
        retention_ms: None,
        retention_bytes: Some(1 << 20),
    };
    let mut rounds = 0_u64;
    while started.elapsed() < CHILD_MAX_RUN && log.next_offset().get() < CHILD_MAX_OFFSETS {
        rounds += 1;
        if producer == 0 && rounds % 8 == 0 {
            log.apply_retention(retention, 0).await.expect("retention");
        }
        let batches = if producer == 0 { 4 } else { 1 + rounds % 48 };
        for _ in 0..batches {
            let bytes = batch_for(log.next_offset());
            let batch = RecordBatch::validate(&bytes).expect("valid");
            match log.append(&batch, LeaderEpoch(7)) {
                Ok(_) | Err(LogError::BufferFull { .. }) => {}
                Err(e) => panic!("append: {e}"),
            }
        }
        let durable = log.flush().await.expect("flush");
        let mut out = std::io::stdout().lock();
        writeln!(out, "durable {}", durable.get()).expect("stdout");
        out.flush().expect("stdout");
    }
}

fn run_child(dir: &Path, run_for: Duration) -> i64 {
    let mut process = Command::new(std::env::current_exe().expect("own path"))
        .env("SPATE_CRASH_CHILD", dir)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("spawn child");
    let stdout = process.stdout.take().expect("stdout");
    let reader = std::thread::spawn(move || {
        let mut acked = -1_i64;
        for line in BufReader::new(stdout).lines() {
            let Ok(line) = line else { break };
            if let Some(offset) = line.strip_prefix("durable ").and_then(|n| n.parse().ok()) {
                acked = acked.max(offset);
            }
        }
        acked
    });
    std::thread::sleep(run_for);
    process.kill().expect("SIGKILL the child");
    process.wait().expect("reap the child");
    reader.join().expect("reader")
}

/// Reopens the log and checks it against what the child acknowledged; returns the log end.
fn verify(dir: &Path, acked: i64) -> i64 {
    let dir = dir.to_path_buf();
    run_executor("crash-verify", IO_MEMORY_BYTES, move || async move {
        let disk = GlommioDisk::new(dir.parent().expect("parent"))
            .await
            .expect("probe");
        let log = Log::open(disk, &dir, config()).await.expect("recovery");
        assert!(
            log.next_offset().get() >= acked,
            "log ends at {} but {acked} was acknowledged",
            log.next_offset()
        );
        let mut offset = log.log_start_offset();
        while offset < log.next_offset() {
            let read = log
                .read(offset, 1 << 20, Offset(i64::MAX))
                .await
                .expect("read");
            assert!(
                read.batches > 0,
                "nothing at offset {offset} below the end {}",
                log.next_offset()
            );
            let mut rest = &read.bytes[..];
            while !rest.is_empty() {
                let size = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]) as usize + 12;
                let batch = RecordBatch::validate(&rest[..size]).expect("CRC-valid batch");
                assert_eq!(
                    batch.header().base_offset(),
                    offset,
                    "offsets are contiguous"
                );
                assert_eq!(
                    &rest[..size],
                    &batch_for(offset)[..],
                    "batch at {offset} is byte-identical"
                );
                offset = Offset(batch.header().last_offset().get() + 1);
                rest = &rest[size..];
            }
        }
        let end = log.next_offset().get();
        log.close().await.expect("close");
        end
    })
    .expect("verify executor")
}

fn main() {
    if let Some(dir) = std::env::var_os("SPATE_CRASH_CHILD") {
        let dir = PathBuf::from(dir);
        run_executor("crash-child", IO_MEMORY_BYTES, move || child(dir)).expect("child executor");
        return;
    }
    let temp = tempfile::tempdir().expect("temp dir");
    let dir = temp.path().join("crash-0");
    let mut rng = 0x2545_f491_4f6c_dd1d_u64;
    let mut acked_total = 0;
    let mut end = 0;
    let mut recycled_seen = 0;
    let started = Instant::now();
    for cycle in 0..CYCLES {
        rng ^= rng << 13;
        rng ^= rng >> 7;
        rng ^= rng << 17;
        let run_for = Duration::from_millis(20 + rng % 130);
        let acked = run_child(&dir, run_for);
        let new_end = verify(&dir, acked);
        let names = std::fs::read_dir(&dir).expect("log dir");
        recycled_seen += names
            .filter_map(Result::ok)
            .filter(|e| {
                spate_storage::segment::is_recycled_file_name(&e.file_name().to_string_lossy())
            })
            .count();
        assert!(
            new_end >= end,
            "cycle {cycle}: the log shrank below what an earlier cycle verified"
        );
        acked_total += i64::from(acked > end);
        end = new_end;
    }
    assert!(recycled_seen > 0, "retention recycled segment files");
    assert!(
        acked_total > CYCLES as i64 / 2,
        "most cycles acknowledged new data ({acked_total})"
    );
    println!(
        "test crash_recovery ({CYCLES} SIGKILL cycles, {end} offsets, {:.1} s) ... ok",
        started.elapsed().as_secs_f64()
    );
    println!("test result: ok. 1 passed; 0 failed; 0 ignored; 0 measured; 0 filtered out");
}
