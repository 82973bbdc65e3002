//! The log on the in-memory disk: every operation, its boundaries, power loss and corruption.

use futures_lite::future::block_on;
use spate_model::{BatchBuilder, BuilderRecord, Compression, LeaderEpoch, Offset, RecordBatch};
use spate_storage::disk::memory::MemoryDisk;
use spate_storage::{Log, LogConfig, LogError};
use std::path::{Path, PathBuf};

fn batch(records: usize, value_bytes: usize, tag: u8) -> Vec<u8> {
    let value = vec![tag; value_bytes];
    let mut builder = BatchBuilder::new(Compression::None);
    for i in 0..records {
        builder
            .push(&BuilderRecord {
                timestamp_ms: 1_700_000_000_000 + i as i64,
                value: Some(&value),
                ..Default::default()
            })
            .expect("push");
    }
    builder.build().expect("build")
}

fn small_config() -> LogConfig {
    LogConfig {
        segment_bytes: 64 * 1024,
        index_interval_bytes: 1024,
        chunk_bytes: 16 * 1024,
        max_unflushed_bytes: 1 << 20,
        preallocate_bytes: 32 * 1024,
    }
}

fn dir() -> PathBuf {
    PathBuf::from("/data/topic-0")
}

fn open(disk: &MemoryDisk, config: LogConfig) -> Log<MemoryDisk> {
    block_on(Log::open(disk.clone(), &dir(), config)).expect("open")
}

fn append(log: &Log<MemoryDisk>, bytes: &[u8]) -> (Offset, Offset) {
    let batch = RecordBatch::validate(bytes).expect("valid batch");
    let appended = log.append(&batch, LeaderEpoch(3)).expect("append");
    (appended.base_offset, appended.last_offset)
}

/// All batches from `from` to the end, one read at a time.
fn read_all(log: &Log<MemoryDisk>, from: Offset) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = from;
    loop {
        let read = block_on(log.read(offset, 1, Offset(i64::MAX))).expect("read");
        if read.batches == 0 {
            return out;
        }
        let batch = RecordBatch::validate(&read.bytes).expect("one whole valid batch");
        offset = Offset(batch.header().last_offset().get() + 1);
        out.push(read.bytes);
    }
}

/// What a stamped copy of `original` at `base` looks like.
fn stamped(original: &[u8], base: Offset) -> Vec<u8> {
    let mut copy = original.to_vec();
    spate_model::batch::stamp(&mut copy, base, LeaderEpoch(3));
    copy
}

#[test]
fn appends_read_back_before_and_after_flush() {
    let disk = MemoryDisk::default();
    let log = open(&disk, small_config());
    assert_eq!(
        (
            log.log_start_offset(),
            log.next_offset(),
            log.durable_offset()
        ),
        (Offset(0), Offset(0), Offset(0))
    );
    let first = batch(3, 100, 1);
    let second = batch(2, 5000, 2);
    assert_eq!(append(&log, &first), (Offset(0), Offset(2)));
    assert_eq!(append(&log, &second), (Offset(3), Offset(4)));
    assert_eq!(log.durable_offset(), Offset(0));
    let expected = vec![stamped(&first, Offset(0)), stamped(&second, Offset(3))];
    assert_eq!(
        read_all(&log, Offset(0)),
        expected,
        "served from the write-behind buffers"
    );
    assert_eq!(block_on(log.flush()).expect("flush"), Offset(5));
    assert_eq!(read_all(&log, Offset(0)), expected, "served from disk");
    // An offset inside a batch returns that whole batch.
    let read = block_on(log.read(Offset(4), 1 << 20, Offset(i64::MAX))).expect("read");
    assert_eq!(read.bytes, expected[1]);
    let stamped_batch = RecordBatch::validate(&read.bytes).expect("valid");
    assert_eq!(
        stamped_batch.header().partition_leader_epoch(),
        LeaderEpoch(3)
    );
}

#[test]
fn read_limits_max_bytes_upper_bound_and_range() {
    let disk = MemoryDisk::default();
    let log = open(&disk, small_config());
    let sizes: Vec<usize> = (0..6)
        .map(|i| batch(1, 300 * (i + 1), i as u8).len())
        .collect();
    for i in 0..6 {
        append(&log, &batch(1, 300 * (i + 1), i as u8));
    }
    block_on(log.flush()).expect("flush");
    let everything = block_on(log.read(Offset(0), 1 << 20, Offset(i64::MAX))).expect("read");
    assert_eq!(everything.batches, 6);
    // max_bytes below the first batch still returns it whole.
    let one = block_on(log.read(Offset(0), 10, Offset(i64::MAX))).expect("read");
    assert_eq!((one.batches, one.bytes.len()), (1, sizes[0]));
    // Exactly two batches' worth.
    let two = block_on(log.read(Offset(0), sizes[0] + sizes[1], Offset(i64::MAX))).expect("read");
    assert_eq!(two.batches, 2);
    // The upper bound (a high watermark) hides batches at or above it.
    let below_hw = block_on(log.read(Offset(0), 1 << 20, Offset(3))).expect("read");
    assert_eq!(below_hw.batches, 3);
    assert_eq!(
        block_on(log.read(Offset(3), 1 << 20, Offset(3)))
            .expect("read")
            .batches,
        0
    );
    // At or past the end: empty, not an error.
    assert_eq!(
        block_on(log.read(Offset(6), 1 << 20, Offset(i64::MAX)))
            .expect("read")
            .batches,
        0
    );
    assert_eq!(
        block_on(log.read(Offset(600), 1 << 20, Offset(i64::MAX)))
            .expect("read")
            .batches,
        0
    );
    assert!(matches!(
        block_on(log.read(Offset(-1), 1 << 20, Offset(i64::MAX))),
        Err(LogError::OffsetOutOfRange { .. })
    ));
}

#[test]
fn group_commit_covers_many_appends_with_one_fdatasync() {
    let disk = MemoryDisk::default();
    let log = open(&disk, small_config());
    let before = disk.fdatasync_count();
    for i in 0..20 {
        append(&log, &batch(1, 200, i));
    }
    // Three concurrent flushers: the first does the work, the others share it.
    let (a, (b, c)) = block_on(futures_lite::future::zip(
        log.flush(),
        futures_lite::future::zip(log.flush(), log.flush()),
    ));
    assert_eq!(
        (a.expect("a"), b.expect("b"), c.expect("c")),
        (Offset(20), Offset(20), Offset(20))
    );
    assert_eq!(
        disk.fdatasync_count() - before,
        1,
        "one fdatasync for twenty appends"
    );
    // A flush with nothing new does no I/O.
    block_on(log.flush()).expect("flush");
    assert_eq!(disk.fdatasync_count() - before, 1);
}

#[test]
fn segments_roll_and_survive_a_clean_restart() {
    let disk = MemoryDisk::default();
    let config = small_config();
    let log = open(&disk, config.clone());
    let mut expected = Vec::new();
    for i in 0..40 {
        let bytes = batch(2, 3000, i);
        let (base, _) = append(&log, &bytes);
        expected.push(stamped(&bytes, base));
        if i % 7 == 0 {
            block_on(log.flush()).expect("flush");
        }
    }
    let bases = log.segment_bases();
    assert!(
        bases.len() >= 3,
        "40 × 3 KiB batches over 64 KiB segments roll: {bases:?}"
    );
    assert_eq!(read_all(&log, Offset(0)), expected);
    block_on(log.close()).expect("close");

    // Sealed files were truncated to their end; the marker is there.
    for base in &bases[..bases.len() - 1] {
        let path = dir().join(spate_storage::segment::log_file_name(*base));
        let len = disk.contents(&path).expect("segment").len() as u64;
        assert!(len <= config.segment_bytes, "{}", path.display());
    }
    assert!(disk.contents(&dir().join(".clean-shutdown")).is_some());

    let log = open(&disk, config);
    assert_eq!(log.segment_bases(), bases);
    assert_eq!(log.next_offset(), Offset(80));
    assert!(
        disk.contents(&dir().join(".clean-shutdown")).is_none(),
        "marker consumed on open"
    );
    assert_eq!(read_all(&log, Offset(0)), expected);
    // And it keeps appending where it left off.
    let more = batch(1, 10, 9);
    assert_eq!(append(&log, &more), (Offset(80), Offset(80)));
    block_on(log.flush()).expect("flush");
    assert_eq!(read_all(&log, Offset(80)), vec![stamped(&more, Offset(80))]);
}

/// Power loss at arbitrary points: everything flushed survives byte for byte, nothing after
/// a torn write is served, and the log accepts appends again.
#[test]
fn power_loss_keeps_every_durable_batch() {
    let mut partial_recoveries = 0;
    for seed in 1..=200_u64 {
        let disk = MemoryDisk::default();
        let config = small_config();
        let log = open(&disk, config.clone());
        let mut durable = Vec::new();
        let mut pending = Vec::new();
        let rounds = 2 + seed % 5;
        for round in 0..rounds {
            for i in 0..(1 + (seed + round) % 6) {
                let bytes = batch(
                    1 + (i as usize % 3),
                    500 + 700 * ((seed + i) as usize % 5),
                    (round * 10 + i) as u8,
                );
                let (base, _) = append(&log, &bytes);
                pending.push(stamped(&bytes, base));
            }
            if round + 1 < rounds || seed % 2 == 0 {
                block_on(log.flush()).expect("flush");
                durable.append(&mut pending);
            }
        }
        // Unflushed appends may be written but not synced (so possibly torn) when the power
        // goes: issue a flush's writes and stop it before its fdatasync completes.
        let mut torn_candidates = 0;
        if seed % 3 != 1 && !pending.is_empty() {
            disk.stall_fdatasync(true);
            assert!(
                block_on(futures_lite::future::poll_once(log.flush())).is_none(),
                "seed {seed}"
            );
            torn_candidates = pending.len();
        }
        drop(log);
        disk.crash(seed);
        disk.stall_fdatasync(false);
        let log = open(&disk, config);
        let recovered = read_all(&log, Offset(0));
        partial_recoveries += usize::from(
            recovered.len() > durable.len() && recovered.len() < durable.len() + torn_candidates,
        );
        assert!(
            recovered.len() >= durable.len(),
            "seed {seed}: lost durable batches"
        );
        assert_eq!(&recovered[..durable.len()], &durable[..], "seed {seed}");
        let all: Vec<Vec<u8>> = durable.iter().chain(pending.iter()).cloned().collect();
        assert_eq!(
            &recovered[..],
            &all[..recovered.len()],
            "seed {seed}: only whole appended batches"
        );
        let next = log.next_offset();
        let extra = batch(1, 10, 0xee);
        assert_eq!(append(&log, &extra).0, next, "seed {seed}");
        block_on(log.flush()).expect("flush");
        assert_eq!(
            read_all(&log, next),
            vec![stamped(&extra, next)],
            "seed {seed}"
        );
    }
    // The crashes did cut through unsynced writes, not only at flush boundaries.
    assert!(
        partial_recoveries > 5,
        "only {partial_recoveries} crashes kept part of the unsynced tail"
    );
}

fn corrupt_byte(disk: &MemoryDisk, path: &Path, at: usize) {
    let mut bytes = disk.contents(path).expect("file");
    bytes[at] ^= 0x40;
    disk.set_contents(path, bytes);
}

#[test]
fn a_corrupt_batch_in_a_sealed_segment_is_reported_not_served() {
    let disk = MemoryDisk::default();
    let config = small_config();
    let log = open(&disk, config.clone());
    for i in 0..30 {
        append(&log, &batch(1, 4000, i));
    }
    block_on(log.close()).expect("close");
    let first = dir().join(spate_storage::segment::log_file_name(Offset(0)));
    corrupt_byte(&disk, &first, 5000); // inside the second batch
    let log = open(&disk, config);
    assert_eq!(
        block_on(log.read(Offset(0), 1, Offset(i64::MAX)))
            .expect("first batch intact")
            .batches,
        1
    );
    let err = block_on(log.read(Offset(1), 1, Offset(i64::MAX))).expect_err("corrupt batch");
    assert!(
        matches!(err, LogError::Corrupt { position, .. } if position > 4000 && position < 8200),
        "{err}"
    );
}

#[test]
fn a_corrupt_tail_after_a_crash_is_cut_off() {
    let disk = MemoryDisk::default();
    let config = small_config();
    let log = open(&disk, config.clone());
    for i in 0..5 {
        append(&log, &batch(1, 1000, i));
    }
    block_on(log.flush()).expect("flush");
    drop(log);
    let active = dir().join(spate_storage::segment::log_file_name(Offset(0)));
    let fourth_batch_byte = 3 * batch(1, 1000, 0).len() + 100;
    corrupt_byte(&disk, &active, fourth_batch_byte);
    let log = open(&disk, config);
    assert_eq!(
        log.next_offset(),
        Offset(3),
        "the log ends before the first bad batch"
    );
    assert_eq!(read_all(&log, Offset(0)).len(), 3);
}

#[test]
fn missing_or_zeroed_indexes_are_rebuilt() {
    for damage in ["missing", "zeroed", "garbage"] {
        let disk = MemoryDisk::default();
        let config = small_config();
        let log = open(&disk, config.clone());
        let mut expected = Vec::new();
        for i in 0..50 {
            let bytes = batch(1, 2500, i);
            let (base, _) = append(&log, &bytes);
            expected.push(stamped(&bytes, base));
        }
        block_on(log.close()).expect("close");
        let index = dir().join(spate_storage::segment::index_file_name(Offset(0)));
        let original = disk.contents(&index).expect("index written on seal");
        assert!(original.len() >= 16, "several entries");
        match damage {
            "missing" => {
                block_on(spate_storage::disk::Disk::remove(&disk, &index)).expect("remove")
            }
            "zeroed" => disk.set_contents(&index, vec![0; original.len()]),
            _ => disk.set_contents(
                &index,
                (0..original.len()).map(|i| (i * 37) as u8).collect(),
            ),
        }
        let log = open(&disk, config);
        assert_eq!(read_all(&log, Offset(0)), expected, "{damage}");
        for offset in [0, 7, 23, 49] {
            let read = block_on(log.read(Offset(offset), 1, Offset(i64::MAX))).expect("read");
            assert_eq!(
                read.bytes, expected[offset as usize],
                "{damage} offset {offset}"
            );
        }
    }
}

#[test]
fn write_behind_memory_is_bounded() {
    let disk = MemoryDisk::default();
    let config = LogConfig {
        max_unflushed_bytes: 10_000,
        ..small_config()
    };
    let log = open(&disk, config);
    let bytes = batch(1, 3000, 1);
    let valid = RecordBatch::validate(&bytes).expect("valid");
    for _ in 0..3 {
        log.append(&valid, LeaderEpoch(0)).expect("fits");
    }
    assert!(matches!(
        log.append(&valid, LeaderEpoch(0)),
        Err(LogError::BufferFull { limit: 10_000, .. })
    ));
    block_on(log.flush()).expect("flush");
    log.append(&valid, LeaderEpoch(0))
        .expect("room again after a flush");
}

#[test]
fn a_batch_larger_than_a_segment_is_refused() {
    let disk = MemoryDisk::default();
    let log = open(
        &disk,
        LogConfig {
            segment_bytes: 2048,
            ..small_config()
        },
    );
    let bytes = batch(1, 4096, 1);
    let valid = RecordBatch::validate(&bytes).expect("valid");
    assert!(matches!(
        log.append(&valid, LeaderEpoch(0)),
        Err(LogError::BatchTooLarge { .. })
    ));
}

#[test]
fn unaligned_disks_and_sector_sized_alignment_work() {
    let disk = MemoryDisk::with_alignment(512);
    let log = open(&disk, small_config());
    let mut expected = Vec::new();
    for i in 0..10 {
        let bytes = batch(1, 333 + i, i as u8);
        let (base, _) = append(&log, &bytes);
        expected.push(stamped(&bytes, base));
        block_on(log.flush()).expect("flush");
    }
    assert_eq!(read_all(&log, Offset(0)), expected);
}
