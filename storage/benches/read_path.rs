//! The read path's hot steps: finding a position in a segment's offset index, and reading
//! recent batches from the tail cache (no disk I/O).
//!
//! Napkin math. A full 1 GiB segment with an index entry every 4 KiB has 262,144 entries
//! (8 bytes each, 2 MiB): a binary search is 18 probes, most of them cache misses once the
//! array is out of L1/L2, so ~50–150 ns per lookup. A 1 MiB read that the tail cache serves
//! is one copy of 1 MiB out of the cached chunks plus a walk over ~64 batch headers: it
//! should cost about what a 1 MiB memcpy costs (~30–80 µs on this class of machine) and
//! nothing like a disk read. The `memcpy_1MiB` case measures that copy alone.
//!
//! Measured on the 2-core development VM (2026-11-29, medians of 3 runs): lookup 43.9 ns;
//! tail-cache read of 1 MiB 35.0 µs against 17.9 µs for the memcpy alone — two copies
//! (buffers to read-ahead window, window to result). It was 76 µs before buffered batches
//! stopped being CRC-checked again on every read. See BENCHMARKS.md ("Microbenchmarks").

use criterion::{criterion_group, criterion_main, Criterion, Throughput};
use futures_lite::future::block_on;
use spate_model::{BatchBuilder, BuilderRecord, Compression, LeaderEpoch, Offset, RecordBatch};
use spate_storage::budget::Budget;
use spate_storage::disk::memory::MemoryDisk;
use spate_storage::segment::SegmentIndex;
use spate_storage::{Log, LogConfig};
use std::hint::black_box;
use std::path::Path;

fn index_lookup(c: &mut Criterion) {
    // A 1 GiB segment of 4 KiB batches of 4 records: one entry per batch.
    let batches: u64 = 1 << 18;
    let mut index = SegmentIndex::new(Offset(0), 4096);
    for i in 0..batches {
        let offset = Offset(i64::try_from(i * 4).unwrap_or(i64::MAX));
        index.on_batch(i * 4096, offset, 1_700_000_000_000, 4096);
    }
    assert_eq!(index.len() as u64, batches);
    // Offsets spread over the segment in an order the branch predictor cannot learn.
    let mut state = 0x9e37_79b9_7f4a_7c15_u64;
    let probes: Vec<Offset> = (0..4096)
        .map(|_| {
            state = state
                .wrapping_mul(6_364_136_223_846_793_005)
                .wrapping_add(1_442_695_040_888_963_407);
            Offset(i64::try_from((state >> 33) % (batches * 4)).unwrap_or(0))
        })
        .collect();
    let mut next = 0;
    c.bench_function("index_lookup_262144_entries", |b| {
        b.iter(|| {
            next = (next + 1) % probes.len();
            index.position_for(black_box(probes[next]))
        })
    });
}

fn tail_cache_read(c: &mut Criterion) {
    let config = LogConfig {
        tail_cache: Some(Budget::new(64 << 20)),
        ..LogConfig::default()
    };
    let stats = config.stats.clone();
    let disk = MemoryDisk::default();
    let log = block_on(Log::open(disk, Path::new("/bench/read-0"), config)).expect("open");
    // 8 MiB of 16 KiB batches (16 records of 1000 bytes), flushed: kept in the tail cache.
    let value = vec![0x17_u8; 1000];
    for _ in 0..512 {
        let mut builder = BatchBuilder::new(Compression::None);
        for _ in 0..16 {
            builder
                .push(&BuilderRecord {
                    timestamp_ms: 1_700_000_000_000,
                    value: Some(&value),
                    ..Default::default()
                })
                .expect("push");
        }
        let bytes = builder.build().expect("build");
        let batch = RecordBatch::validate(&bytes).expect("valid");
        log.append(&batch, LeaderEpoch(0)).expect("append");
    }
    block_on(log.flush()).expect("flush");
    let mut group = c.benchmark_group("tail_cache");
    group.throughput(Throughput::Bytes(1 << 20));
    group.bench_function("read_1MiB", |b| {
        b.iter(|| {
            block_on(log.read(black_box(Offset(2048)), 1 << 20, Offset(i64::MAX))).expect("read")
        })
    });
    let source = vec![0x17_u8; 1 << 20];
    group.bench_function("memcpy_1MiB", |b| b.iter(|| black_box(&source).clone()));
    group.finish();
    assert_eq!(
        stats.read_disk_bytes.get(),
        0,
        "every read came from memory"
    );
    assert!(stats.read_memory_bytes.get() >= 1 << 20);
}

criterion_group!(benches, index_lookup, tail_cache_read);
criterion_main!(benches);
