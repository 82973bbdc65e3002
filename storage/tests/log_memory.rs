//! The log on the in-memory disk: every operation, its boundaries, power loss and corruption.

use futures_lite::future::block_on;
use spate_model::{BatchBuilder, BuilderRecord, Compression, LeaderEpoch, Offset, RecordBatch};
use spate_storage::budget::Budget;
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
        flush_policy: spate_storage::FlushPolicy::EveryCommit,
        preallocate_bytes: 32 * 1024,
        // Every test also runs the tail cache: a small budget, so eviction happens too.
        tail_cache: Some(Budget::new(48 * 1024)),
        write_budget: None,
        stats: Default::default(),
        recycle_segments: 2,
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
        out.push(read.bytes.to_vec());
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
    // The first flush also writes the leader-epoch checkpoint; measure after it.
    append(&log, &batch(1, 10, 0));
    block_on(log.flush()).expect("first flush");
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
        (Offset(21), Offset(21), Offset(21))
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

fn batch_at_times(timestamps: &[i64], compression: Compression) -> Vec<u8> {
    sized_batch_at_times(timestamps, compression, 1)
}

fn sized_batch_at_times(
    timestamps: &[i64],
    compression: Compression,
    value_bytes: usize,
) -> Vec<u8> {
    let value = vec![7_u8; value_bytes];
    let mut builder = BatchBuilder::new(compression);
    for ts in timestamps {
        builder
            .push(&BuilderRecord {
                timestamp_ms: *ts,
                value: Some(&value),
                ..Default::default()
            })
            .expect("push");
    }
    builder.build().expect("build")
}

#[test]
fn leader_epochs_are_recorded_persisted_and_answered() {
    let disk = MemoryDisk::default();
    let log = open(&disk, small_config());
    let append_in = |epoch: i32, records: usize| {
        let bytes = batch(records, 100, 1);
        let valid = RecordBatch::validate(&bytes).expect("valid");
        log.append(&valid, LeaderEpoch(epoch))
            .map(|a| a.base_offset)
    };
    append_in(2, 3).expect("epoch 2 at 0");
    append_in(2, 2).expect("epoch 2 again");
    append_in(5, 4).expect("epoch 5 at 5");
    assert!(matches!(
        append_in(4, 1),
        Err(LogError::StaleLeaderEpoch { .. })
    ));
    assert_eq!(log.latest_epoch(), Some(LeaderEpoch(5)));
    assert_eq!(log.end_offset_for_epoch(LeaderEpoch(1)), None);
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(3)),
        Some((LeaderEpoch(2), Offset(5)))
    );
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(5)),
        Some((LeaderEpoch(5), Offset(9)))
    );
    block_on(log.flush()).expect("flush");
    assert_eq!(
        disk.contents(&dir().join("leader-epoch-checkpoint"))
            .expect("checkpoint written with the data"),
        b"0\n2\n2 0\n5 5\n"
    );
    drop(log);
    // After a crash the cache comes back from the checkpoint and the scanned batches.
    disk.crash(7);
    let log = open(&disk, small_config());
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(3)),
        Some((LeaderEpoch(2), Offset(5)))
    );
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(9)),
        Some((LeaderEpoch(5), Offset(9)))
    );
}

#[test]
fn a_missing_epoch_checkpoint_is_rebuilt_from_the_batches() {
    let disk = MemoryDisk::default();
    let log = open(&disk, small_config());
    for (epoch, records) in [(1, 2), (1, 1), (4, 3)] {
        let bytes = batch(records, 50, 0);
        log.append(
            &RecordBatch::validate(&bytes).expect("valid"),
            LeaderEpoch(epoch),
        )
        .expect("append");
    }
    block_on(log.flush()).expect("flush");
    drop(log);
    block_on(spate_storage::disk::Disk::remove(
        &disk,
        &dir().join("leader-epoch-checkpoint"),
    ))
    .expect("remove");
    let log = open(&disk, small_config());
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(2)),
        Some((LeaderEpoch(1), Offset(3)))
    );
    assert_eq!(
        log.end_offset_for_epoch(LeaderEpoch(4)),
        Some((LeaderEpoch(4), Offset(6)))
    );
}

#[test]
fn high_watermark_checkpoint_survives_restart() {
    let disk = MemoryDisk::default();
    let log = open(&disk, small_config());
    for i in 0..5 {
        append(&log, &batch(2, 10, i));
    }
    block_on(log.flush()).expect("flush");
    block_on(log.checkpoint_high_watermark(Offset(7))).expect("checkpoint");
    block_on(log.checkpoint_high_watermark(Offset(700))).expect("clamped to the log end");
    assert_eq!(log.checkpointed_high_watermark(), Offset(10));
    block_on(log.checkpoint_high_watermark(Offset(7))).expect("checkpoint");
    drop(log);
    disk.crash(3);
    let log = open(&disk, small_config());
    assert_eq!(log.checkpointed_high_watermark(), Offset(7));
}

#[test]
fn truncate_prefix_hides_and_deletes_old_data_durably() {
    let disk = MemoryDisk::default();
    let log = open(&disk, small_config());
    let mut expected = Vec::new();
    for i in 0..40 {
        let bytes = batch(2, 3000, i);
        let (base, _) = append(&log, &bytes);
        expected.push(stamped(&bytes, base));
    }
    block_on(log.flush()).expect("flush");
    let bases = log.segment_bases();
    assert!(bases.len() >= 3);
    // A start inside the second segment: the first segment goes, reads below fail.
    let new_start = Offset(bases[1].get() + 3);
    block_on(log.truncate_prefix(new_start)).expect("truncate prefix");
    assert_eq!(log.log_start_offset(), new_start);
    assert_eq!(log.segment_bases(), bases[1..].to_vec());
    assert!(disk
        .contents(&dir().join(spate_storage::segment::log_file_name(bases[0])))
        .is_none());
    assert!(matches!(
        block_on(log.read(Offset(0), 1, Offset(i64::MAX))),
        Err(LogError::OffsetOutOfRange { .. })
    ));
    let read = block_on(log.read(new_start, 1, Offset(i64::MAX))).expect("read at the new start");
    assert_eq!(read.bytes, expected[(new_start.get() / 2) as usize]);
    assert!(
        block_on(log.truncate_prefix(Offset(10_000))).is_err(),
        "beyond the end"
    );
    drop(log);
    disk.crash(11);
    let log = open(&disk, small_config());
    assert_eq!(log.log_start_offset(), new_start, "the start is durable");
    assert_eq!(
        read_all(&log, new_start),
        expected[(new_start.get() / 2) as usize..].to_vec()
    );
}

#[test]
fn truncate_suffix_cuts_at_the_batch_holding_the_offset() {
    for crash in [false, true] {
        let disk = MemoryDisk::default();
        let log = open(&disk, small_config());
        let mut expected = Vec::new();
        for i in 0..40 {
            let bytes = batch(3, 2500, i);
            let (base, _) = append(&log, &bytes);
            expected.push(stamped(&bytes, base));
        }
        let epoch_bytes = batch(1, 10, 0);
        log.append(
            &RecordBatch::validate(&epoch_bytes).expect("valid"),
            LeaderEpoch(9),
        )
        .expect("epoch 9");
        let segments_before = log.segment_bases().len();
        // Offset 31 lies inside the batch 30..=32: the log ends at 30.
        let end = block_on(log.truncate_suffix(Offset(31))).expect("truncate");
        assert_eq!(end, Offset(30));
        assert_eq!(log.next_offset(), Offset(30));
        assert!(log.segment_bases().len() < segments_before);
        assert_eq!(
            log.latest_epoch(),
            Some(LeaderEpoch(3)),
            "epoch 9 started after the cut"
        );
        assert_eq!(read_all(&log, Offset(0)), expected[..10].to_vec());
        // Appends continue at the cut, and everything survives a restart.
        let more = batch(2, 700, 0xaa);
        assert_eq!(append(&log, &more), (Offset(30), Offset(31)));
        block_on(log.flush()).expect("flush");
        let mut now_expected = expected[..10].to_vec();
        now_expected.push(stamped(&more, Offset(30)));
        if crash {
            drop(log);
            disk.crash(5);
        } else {
            block_on(log.close()).expect("close");
        }
        let log = open(&disk, small_config());
        assert_eq!(read_all(&log, Offset(0)), now_expected, "crash={crash}");
        assert_eq!(
            block_on(log.truncate_suffix(Offset(500))).expect("no-op"),
            Offset(32)
        );
    }
}

#[test]
fn retention_deletes_whole_old_segments_only() {
    let disk = MemoryDisk::default();
    let log = open(&disk, small_config());
    // Batch i has timestamps around 1000 * i.
    for i in 0..40_i64 {
        let bytes = sized_batch_at_times(&[1000 * i, 1000 * i + 1], Compression::None, 2000);
        append(&log, &bytes);
    }
    block_on(log.flush()).expect("flush");
    let bases = log.segment_bases();
    assert!(bases.len() >= 2, "{bases:?}");
    // Nothing is old or big enough: nothing goes.
    let none = spate_storage::Retention {
        retention_ms: Some(1_000_000),
        retention_bytes: Some(1 << 30),
    };
    assert!(block_on(log.apply_retention(none, 40_000))
        .expect("retention")
        .is_empty());
    // Everything is "old", but the active segment stays.
    let by_time = spate_storage::Retention {
        retention_ms: Some(1),
        retention_bytes: None,
    };
    let deleted = block_on(log.apply_retention(by_time, 10_000_000)).expect("retention");
    assert_eq!(deleted, bases[..bases.len() - 1].to_vec());
    assert_eq!(log.segment_bases(), vec![*bases.last().expect("active")]);
    assert_eq!(log.log_start_offset(), *bases.last().expect("active"));
}

#[test]
fn retention_by_bytes_keeps_the_log_under_the_limit() {
    let disk = MemoryDisk::default();
    let log = open(&disk, small_config());
    for i in 0..60 {
        append(&log, &batch(1, 3000, i));
    }
    block_on(log.flush()).expect("flush");
    let bases = log.segment_bases();
    let by_size = spate_storage::Retention {
        retention_ms: None,
        retention_bytes: Some(100 * 1024),
    };
    let deleted = block_on(log.apply_retention(by_size, 0)).expect("retention");
    assert!(!deleted.is_empty());
    let remaining = log.segment_bases();
    assert_eq!(
        remaining,
        bases[deleted.len()..].to_vec(),
        "the oldest go first"
    );
    let kept_bytes: usize = read_all(&log, log.log_start_offset())
        .iter()
        .map(Vec::len)
        .sum();
    assert!(
        kept_bytes >= 100 * 1024 - 64 * 1024,
        "no more than needed was deleted ({kept_bytes})"
    );
    assert!(kept_bytes < 100 * 1024 + 64 * 1024, "kept {kept_bytes}");
}

#[test]
fn segments_roll_by_age() {
    let disk = MemoryDisk::default();
    let log = open(&disk, small_config());
    assert!(
        !log.roll_if_older(10_000, 1000),
        "an empty segment never rolls"
    );
    append(&log, &batch_at_times(&[5_000], Compression::None));
    assert!(!log.roll_if_older(5_500, 1000));
    assert!(log.roll_if_older(6_000, 1000));
    append(&log, &batch_at_times(&[6_001], Compression::None));
    assert_eq!(log.segment_bases(), vec![Offset(0), Offset(1)]);
    block_on(log.flush()).expect("flush");
    assert_eq!(read_all(&log, Offset(0)).len(), 2);
}

#[test]
fn offsets_are_found_by_timestamp() {
    for compression in [Compression::None, Compression::Zstd] {
        let disk = MemoryDisk::default();
        let log = open(&disk, small_config());
        // 30 batches of 3 records, timestamps 100*i + {0, 10, 20}; bigger values roll segments.
        for i in 0..30_i64 {
            let mut builder = BatchBuilder::new(compression);
            for j in 0..3 {
                builder
                    .push(&BuilderRecord {
                        timestamp_ms: 100 * i + 10 * j,
                        value: Some(&vec![i as u8; 2000]),
                        ..Default::default()
                    })
                    .expect("push");
            }
            append(&log, &builder.build().expect("build"));
        }
        block_on(log.flush()).expect("flush");
        let find = |ts: i64| block_on(log.offset_for_timestamp(ts)).expect("lookup");
        assert_eq!(find(-1), Some((Offset(0), 0)));
        assert_eq!(find(0), Some((Offset(0), 0)));
        assert_eq!(find(5), Some((Offset(1), 10)));
        assert_eq!(find(1_215), Some((Offset(38), 1_220)));
        assert_eq!(find(2_920), Some((Offset(89), 2_920)));
        assert_eq!(find(2_921), None);
        // Records below the log start are never the answer: the next match is.
        block_on(log.truncate_prefix(Offset(2))).expect("truncate prefix");
        assert_eq!(find(0), Some((Offset(2), 20)));
        assert_eq!(log.max_timestamp(), 2_920);
        if compression == Compression::None {
            assert!(log.segment_bases().len() > 1, "the lookup crossed segments");
        }
    }
}

/// Many crashes on one disk: after every recovery the log holds exactly what the latest
/// writer of each offset wrote, up to at least what was durable.
#[test]
fn repeated_power_loss_never_resurrects_stale_batches() {
    let disk = MemoryDisk::default();
    let config = small_config();
    let mut latest: std::collections::BTreeMap<i64, Vec<u8>> = std::collections::BTreeMap::new();
    for cycle in 0..150_u64 {
        let log = open(&disk, config.clone());
        let recovered = read_all(&log, Offset(0));
        let mut offset = 0;
        for bytes in &recovered {
            assert_eq!(
                Some(bytes),
                latest.get(&offset),
                "cycle {cycle}: offset {offset}"
            );
            offset = RecordBatch::validate(bytes)
                .expect("valid")
                .header()
                .last_offset()
                .get()
                + 1;
        }
        latest.retain(|&o, _| o < offset);
        let durable_before = log.next_offset();
        // Vary sizes per cycle so stale batches could line up with new boundaries.
        for i in 0..(1 + cycle % 4) {
            let bytes = batch(
                1,
                400 + ((cycle * 7 + i * 13) % 5) as usize * 300,
                (cycle + i) as u8,
            );
            let (base, _) = append(&log, &bytes);
            latest.insert(base.get(), stamped(&bytes, base));
        }
        if cycle % 2 == 0 {
            block_on(log.flush()).expect("flush");
        } else {
            disk.stall_fdatasync(true);
            assert!(block_on(futures_lite::future::poll_once(log.flush())).is_none());
        }
        let durable = if cycle % 2 == 0 {
            log.next_offset()
        } else {
            durable_before
        };
        drop(log);
        disk.crash(cycle * 31 + 7);
        disk.stall_fdatasync(false);
        let log = open(&disk, config.clone());
        assert!(
            log.next_offset() >= durable,
            "cycle {cycle}: lost durable data"
        );
        drop(log);
    }
}

/// A hole in the middle of an unsynced flush (its writes complete in any order) leaves valid
/// batches after it. Recovery cuts the file at the hole, so a later, shorter write that lines
/// up with them cannot bring them back.
#[test]
fn batches_beyond_a_torn_hole_are_cut_off_for_good() {
    let disk = MemoryDisk::default();
    let config = small_config();
    let log = open(&disk, config.clone());
    // Batches of exactly one 4 KiB page, so the stale ones start on page boundaries and the
    // page-padded writes of the new batch leave them untouched.
    let value_len = (100..4096)
        .find(|&n| batch(1, n, 0).len() == 4096)
        .expect("a page-sized batch");
    let sizes = [1, 2, 3, 4].map(|tag| batch(1, value_len, tag));
    for bytes in &sizes {
        append(&log, bytes);
    }
    block_on(log.flush()).expect("flush");
    drop(log);
    // Zero the second batch: batches 3 and 4 are intact beyond the hole.
    let path = dir().join(spate_storage::segment::log_file_name(Offset(0)));
    let mut contents = disk.contents(&path).expect("segment");
    let (start, len) = (sizes[0].len(), sizes[1].len());
    contents[start..start + len].fill(0);
    disk.set_contents(&path, contents);
    let log = open(&disk, config.clone());
    assert_eq!(log.next_offset(), Offset(1), "the log ends at the hole");
    // A new batch of the same shape fills the hole exactly, then the power goes.
    let replacement = batch(1, value_len, 9);
    assert_eq!(append(&log, &replacement), (Offset(1), Offset(1)));
    block_on(log.flush()).expect("flush");
    drop(log);
    disk.crash(1);
    let log = open(&disk, config);
    assert_eq!(
        log.next_offset(),
        Offset(2),
        "the old batches at 2 and 3 stay gone"
    );
    assert_eq!(
        read_all(&log, Offset(1)),
        vec![stamped(&replacement, Offset(1))]
    );
}

/// A flush future dropped mid-sync (a cancelled request) must not leave later flushes
/// waiting for it.
#[test]
fn a_cancelled_flush_does_not_block_the_next() {
    let disk = MemoryDisk::default();
    let log = open(&disk, small_config());
    append(&log, &batch(1, 100, 1));
    disk.stall_fdatasync(true);
    assert!(
        block_on(futures_lite::future::poll_once(log.flush())).is_none(),
        "stuck in its sync"
    );
    disk.stall_fdatasync(false);
    append(&log, &batch(1, 100, 2));
    assert_eq!(
        block_on(log.flush()).expect("the next flush completes"),
        Offset(2)
    );
    assert_eq!(read_all(&log, Offset(0)).len(), 2);
}

#[test]
fn the_tail_cache_serves_recent_batches_without_disk_reads() {
    let disk = MemoryDisk::default();
    let budget = Budget::new(64 * 1024);
    let config = LogConfig {
        tail_cache: Some(budget.clone()),
        ..small_config()
    };
    let log = open(&disk, config.clone());
    let mut expected = Vec::new();
    for i in 0..30 {
        let bytes = batch(1, 3000, i);
        let (base, _) = append(&log, &bytes);
        expected.push(stamped(&bytes, base));
        block_on(log.flush()).expect("flush");
    }
    assert!(
        budget.used() > 0 && budget.used() <= budget.capacity(),
        "{} of {}",
        budget.used(),
        budget.capacity()
    );
    let reads = disk.read_count();
    let recent = block_on(log.read(Offset(29), 1, Offset(i64::MAX))).expect("read");
    assert_eq!(recent.bytes, expected[29]);
    assert_eq!(
        disk.read_count(),
        reads,
        "the newest batch came from memory"
    );
    let old = block_on(log.read(Offset(0), 1, Offset(i64::MAX))).expect("read");
    assert_eq!(old.bytes, expected[0]);
    assert!(
        disk.read_count() > reads,
        "an evicted batch comes from disk"
    );
    assert_eq!(read_all(&log, Offset(0)), expected);

    // A second log shares the budget; together they never exceed it, and dropping (or
    // closing) a log returns what it held.
    let other_dir = PathBuf::from("/data/other-0");
    let other = block_on(Log::open(disk.clone(), &other_dir, config)).expect("open");
    for i in 0..30 {
        append(&other, &batch(1, 3000, i));
        block_on(other.flush()).expect("flush");
        assert!(budget.used() <= budget.capacity());
    }
    block_on(other.close()).expect("close");
    let held_by_first = budget.used();
    drop(log);
    assert_eq!(
        budget.used(),
        0,
        "the first log held {held_by_first} bytes and gave them back"
    );
}

#[test]
fn flush_policies_decide_when_to_flush() {
    use spate_storage::FlushPolicy;
    let every = FlushPolicy::EveryCommit;
    assert!(every.commit_waits_for_flush());
    assert!(every.flush_due(1, 0));
    assert!(!every.flush_due(0, 1_000_000));
    let interval = FlushPolicy::Interval {
        max_unflushed_bytes: 1 << 20,
        interval_ms: 500,
    };
    assert!(!interval.commit_waits_for_flush());
    assert!(!interval.flush_due(1000, 100), "small and recent: wait");
    assert!(interval.flush_due(1 << 20, 0), "enough bytes");
    assert!(interval.flush_due(1, 500), "old enough");
    assert!(!interval.flush_due(0, 10_000), "nothing to flush");
}

#[test]
fn an_empty_log_reads_nothing_closes_and_reopens() {
    let disk = MemoryDisk::default();
    let log = open(&disk, small_config());
    assert_eq!(
        block_on(log.read(Offset(0), 1 << 20, Offset(i64::MAX)))
            .expect("read")
            .batches,
        0
    );
    assert_eq!(block_on(log.offset_for_timestamp(0)).expect("lookup"), None);
    assert_eq!(log.end_offset_for_epoch(LeaderEpoch(0)), None);
    assert_eq!(block_on(log.flush()).expect("flush"), Offset(0));
    block_on(log.close()).expect("close");
    let log = open(&disk, small_config());
    assert_eq!(
        (log.log_start_offset(), log.next_offset()),
        (Offset(0), Offset(0))
    );
    drop(log);
    disk.crash(1);
    let log = open(&disk, small_config());
    assert_eq!(log.next_offset(), Offset(0));
}

#[test]
fn a_batch_exactly_the_segment_size_fills_one_segment() {
    let disk = MemoryDisk::default();
    let config = LogConfig {
        segment_bytes: 8192,
        ..small_config()
    };
    let value_len = (100..8192)
        .find(|&n| batch(1, n, 0).len() == 8192)
        .expect("a batch of exactly 8 KiB");
    let log = open(&disk, config.clone());
    let exact = batch(1, value_len, 1);
    append(&log, &exact);
    append(&log, &exact);
    append(&log, &batch(1, 10, 2));
    assert_eq!(
        log.segment_bases(),
        vec![Offset(0), Offset(1), Offset(2)],
        "each full batch its own segment"
    );
    block_on(log.close()).expect("close");
    let log = open(&disk, config);
    assert_eq!(read_all(&log, Offset(0)).len(), 3);
    let first = dir().join(spate_storage::segment::log_file_name(Offset(0)));
    assert_eq!(
        disk.contents(&first).expect("segment").len(),
        8192,
        "sealed at exactly its data"
    );
}

#[test]
fn batches_on_index_interval_edges_are_all_found() {
    let disk = MemoryDisk::default();
    // Batches of exactly the index interval: an entry at every batch.
    let value_len = (100..1024)
        .find(|&n| batch(1, n, 0).len() == 1024)
        .expect("a 1 KiB batch");
    let log = open(&disk, small_config());
    for i in 0..40 {
        append(&log, &batch(1, value_len, i));
    }
    block_on(log.close()).expect("close");
    let log = open(&disk, small_config());
    for offset in 0..40 {
        let read = block_on(log.read(Offset(offset), 1, Offset(i64::MAX))).expect("read");
        let found = RecordBatch::validate(&read.bytes)
            .expect("valid")
            .header()
            .base_offset();
        assert_eq!(found, Offset(offset));
    }
}

#[test]
fn truncating_to_the_start_empties_the_log() {
    let disk = MemoryDisk::default();
    let log = open(&disk, small_config());
    for i in 0..30 {
        append(&log, &batch(1, 3000, i));
    }
    block_on(log.flush()).expect("flush");
    assert_eq!(
        block_on(log.truncate_suffix(Offset(0))).expect("truncate to 0"),
        Offset(0)
    );
    assert_eq!(log.next_offset(), Offset(0));
    assert_eq!(log.segment_bases(), vec![Offset(0)]);
    assert!(read_all(&log, Offset(0)).is_empty());
    let fresh = batch(1, 5, 7);
    assert_eq!(append(&log, &fresh), (Offset(0), Offset(0)));
    block_on(log.close()).expect("close");
    let log = open(&disk, small_config());
    assert_eq!(read_all(&log, Offset(0)), vec![stamped(&fresh, Offset(0))]);
}

#[test]
fn a_file_cut_inside_a_batch_recovers_to_the_batch_before() {
    let disk = MemoryDisk::default();
    let log = open(&disk, small_config());
    let mut expected = Vec::new();
    for i in 0..6 {
        let bytes = batch(1, 1500, i);
        let (base, _) = append(&log, &bytes);
        expected.push(stamped(&bytes, base));
    }
    block_on(log.flush()).expect("flush");
    drop(log);
    let path = dir().join(spate_storage::segment::log_file_name(Offset(0)));
    let mut contents = disk.contents(&path).expect("segment");
    let cut = expected[..4].iter().map(Vec::len).sum::<usize>() + 700;
    contents.truncate(cut);
    disk.set_contents(&path, contents);
    let log = open(&disk, small_config());
    assert_eq!(log.next_offset(), Offset(4));
    assert_eq!(read_all(&log, Offset(0)), expected[..4].to_vec());
}

#[test]
fn a_shared_write_budget_bounds_unflushed_bytes_across_logs() {
    let disk = MemoryDisk::default();
    let budget = spate_storage::budget::Budget::new(20_000);
    let config = LogConfig {
        write_budget: Some(budget.clone()),
        ..small_config()
    };
    let a = open(&disk, config.clone());
    let b = block_on(Log::open(disk.clone(), &PathBuf::from("/data/b-0"), config)).expect("open");
    let bytes = batch(1, 4000, 1);
    let valid = RecordBatch::validate(&bytes).expect("valid");
    let mut accepted = 0;
    for log in [&a, &b, &a, &b, &a, &b] {
        match log.append(&valid, LeaderEpoch(0)) {
            Ok(_) => accepted += 1,
            Err(LogError::BufferFull { limit: 20_000, .. }) => {}
            Err(e) => panic!("{e}"),
        }
        assert!(budget.used() <= 20_000);
    }
    assert_eq!(
        accepted,
        20_000 / bytes.len(),
        "the two logs together stop at the budget"
    );
    block_on(a.flush()).expect("flush a");
    assert!(budget.used() < 20_000, "a flush returns its log's share");
    a.append(&valid, LeaderEpoch(0)).expect("room again");
    drop(b);
    block_on(a.flush()).expect("flush a");
    assert_eq!(budget.used(), 0, "flushed and dropped logs hold nothing");
}

#[test]
fn io_counters_tell_memory_reads_from_disk_reads_and_count_syncs() {
    let disk = MemoryDisk::default();
    let config = LogConfig {
        tail_cache: None,
        ..small_config()
    };
    let stats = config.stats.clone();
    let log = open(&disk, config);
    // Several pages, so that more than the carried last page goes to the file.
    let first = batch(4, 1000, 1);
    for _ in 0..5 {
        append(&log, &first);
    }
    // Not flushed: the read is served from the write-behind buffer.
    let read = block_on(log.read(Offset(0), 1, Offset(i64::MAX))).expect("read");
    assert_eq!(read.bytes.len(), first.len());
    assert_eq!(stats.read_disk_bytes.get(), 0);
    assert!(stats.read_memory_bytes.get() >= first.len() as u64);
    assert_eq!(stats.syncs.get(), 0);
    block_on(log.flush()).expect("flush");
    assert_eq!(stats.syncs.get(), 1);
    assert_eq!(stats.sync_latency.snapshot().count(), 1);
    assert!(stats.written_bytes.get() >= first.len() as u64);
    // Flushed with no tail cache: the next read goes to the file.
    let read = block_on(log.read(Offset(0), 1, Offset(i64::MAX))).expect("read");
    assert_eq!(read.bytes.len(), first.len());
    assert!(stats.read_disk_bytes.get() >= first.len() as u64);
    // A flush with nothing to write syncs nothing.
    block_on(log.flush()).expect("flush");
    assert_eq!(stats.syncs.get(), 1);
}

/// A log of `batches` 16 KiB batches, flushed and reopened (nothing buffered), with a tail
/// cache of `tail_bytes`; and the I/O counters of the reopened log.
fn reopened_log(
    disk: &MemoryDisk,
    batches: u8,
    tail: std::rc::Rc<Budget>,
) -> (
    Log<MemoryDisk>,
    Vec<Vec<u8>>,
    std::rc::Rc<spate_storage::stats::IoStats>,
) {
    let config = LogConfig {
        segment_bytes: 64 << 20,
        chunk_bytes: 256 * 1024,
        tail_cache: Some(tail),
        ..LogConfig::default()
    };
    let log = open(disk, config.clone());
    let mut expected = Vec::new();
    for tag in 0..batches {
        let bytes = batch(16, 1000, tag);
        let (base, _) = append(&log, &bytes);
        expected.push(stamped(&bytes, base));
    }
    block_on(log.close()).expect("close");
    let stats = std::rc::Rc::new(spate_storage::stats::IoStats::default());
    let config = LogConfig {
        stats: stats.clone(),
        ..config
    };
    (open(disk, config), expected, stats)
}

/// Reads everything from offset 0 with `max_bytes` per read.
fn read_sequentially(log: &Log<MemoryDisk>, max_bytes: usize) -> Vec<Vec<u8>> {
    let mut out = Vec::new();
    let mut offset = Offset(0);
    loop {
        let read = block_on(log.read(offset, max_bytes, Offset(i64::MAX))).expect("read");
        if read.batches == 0 {
            return out;
        }
        let mut rest = &read.bytes[..];
        while !rest.is_empty() {
            let len = i32::from_be_bytes(rest[8..12].try_into().expect("4 bytes")) as usize + 12;
            let batch = RecordBatch::validate(&rest[..len]).expect("whole valid batches");
            offset = Offset(batch.header().last_offset().get() + 1);
            out.push(rest[..len].to_vec());
            rest = &rest[len..];
        }
    }
}

/// A consumer reading a log from disk in order is served from the read-ahead: after its
/// first reads, what it reads was already read ahead, and every batch is right.
#[test]
fn a_sequential_reader_is_served_from_the_read_ahead() {
    let disk = MemoryDisk::default();
    let (log, expected, stats) = reopened_log(&disk, 200, Budget::new(16 << 20));
    let got = read_sequentially(&log, 256 * 1024);
    assert_eq!(got, expected);
    let ahead = stats.read_ahead_bytes.get();
    let from_disk = stats.read_disk_bytes.get();
    assert!(
        ahead * 10 >= from_disk * 8,
        "{ahead} of {from_disk} bytes came from the read-ahead"
    );
    // Without room in the tail-cache budget nothing is read ahead.
    let disk = MemoryDisk::default();
    let (log, expected, stats) = reopened_log(&disk, 200, Budget::new(64 * 1024));
    assert_eq!(read_sequentially(&log, 256 * 1024), expected);
    assert_eq!(stats.read_ahead_bytes.get(), 0);
    // A reader that jumps around gets no read-ahead either.
    let disk = MemoryDisk::default();
    let (log, _, stats) = reopened_log(&disk, 200, Budget::new(16 << 20));
    for offset in [3000, 100, 2500, 50, 1800] {
        block_on(log.read(Offset(offset), 256 * 1024, Offset(i64::MAX))).expect("read");
    }
    assert_eq!(stats.read_ahead_bytes.get(), 0);
}

fn recycled_files(disk: &MemoryDisk) -> Vec<String> {
    let mut names: Vec<String> = block_on(spate_storage::disk::Disk::list(disk, &dir()))
        .expect("list")
        .into_iter()
        .filter(|name| spate_storage::segment::is_recycled_file_name(name))
        .collect();
    names.sort();
    names
}

/// Retention keeps up to `recycle_segments` removed segment files, and new segments are made
/// from them: their old batches (past the new segment's end, at lower offsets) are never
/// read, not after a crash either; a cut off the end recycles nothing.
#[test]
fn removed_segments_are_recycled_into_new_ones() {
    let disk = MemoryDisk::default();
    let config = LogConfig {
        recycle_segments: 2,
        ..small_config()
    };
    let log = open(&disk, config.clone());
    let mut expected = Vec::new();
    let append_flushed = |log: &Log<MemoryDisk>, tag: u8, expected: &mut Vec<Vec<u8>>| {
        let bytes = batch(4, 2000, tag);
        let (base, _) = append(log, &bytes);
        expected.push(stamped(&bytes, base));
        block_on(log.flush()).expect("flush");
    };
    for tag in 0..60 {
        append_flushed(&log, tag, &mut expected);
    }
    let segments = log.segment_bases().len();
    assert!(segments >= 5, "{segments} segments");
    let retention = spate_storage::Retention {
        retention_ms: None,
        retention_bytes: Some(100 * 1024),
    };
    let deleted = block_on(log.apply_retention(retention, 0)).expect("retention");
    assert!(deleted.len() >= 3, "{deleted:?}");
    assert_eq!(
        recycled_files(&disk),
        vec!["recycled-0.segment", "recycled-1.segment"],
        "two kept, the rest deleted"
    );
    let file_bytes = |name: &str| {
        let path = dir().join(name);
        disk.contents(&path).expect("recycled file").len() as u64
    };
    let recycled_bytes = file_bytes("recycled-0.segment") + file_bytes("recycled-1.segment");
    assert!(recycled_bytes > 0);
    assert_eq!(log.recycled_bytes(), recycled_bytes, "counted as kept");
    // Counted again after a restart (from the files).
    drop(log);
    let log = open(&disk, config.clone());
    assert_eq!(log.recycled_bytes(), recycled_bytes);
    let start = log.log_start_offset();
    let kept: Vec<Vec<u8>> = expected.split_off(expected.len() - read_all(&log, start).len());
    // New segments take the recycled files: no new file is needed until both are used.
    for tag in 60..120 {
        append_flushed(&log, tag, &mut Vec::new());
    }
    assert!(recycled_files(&disk).is_empty(), "both reused");
    assert_eq!(log.recycled_bytes(), 0);
    let all = read_all(&log, start);
    assert_eq!(&all[..kept.len()], &kept[..]);
    assert_eq!(all.len(), kept.len() + 60, "only the new batches follow");
    // A crash leaves the recycled files' old batches past the end of the active segment;
    // recovery stops at them.
    let end = log.next_offset();
    drop(log);
    disk.crash(11);
    let log = open(&disk, config.clone());
    assert_eq!(log.next_offset(), end, "every flushed batch, nothing more");
    assert_eq!(read_all(&log, start), all);
    // Cutting the end deletes, never recycles: those offsets will be assigned again.
    let retention_all = spate_storage::Retention {
        retention_ms: None,
        retention_bytes: Some(0),
    };
    let mid = Offset((start.get() + end.get()) / 2);
    block_on(log.truncate_suffix(mid)).expect("truncate");
    assert!(recycled_files(&disk).is_empty());
    block_on(log.apply_retention(retention_all, 0)).expect("retention");
    assert!(recycled_files(&disk).len() <= 2);
    // Off: nothing is kept.
    let disk = MemoryDisk::default();
    let config = LogConfig {
        recycle_segments: 0,
        ..small_config()
    };
    let log = open(&disk, config);
    for tag in 0..60 {
        append_flushed(&log, tag, &mut Vec::new());
    }
    block_on(log.apply_retention(retention, 0)).expect("retention");
    assert!(recycled_files(&disk).is_empty());
}

/// A segment rolled by time is finalised (trimmed, indexed) by the next flush even when
/// nothing was appended since, so retention can remove it.
#[test]
fn a_flush_finalises_a_segment_rolled_by_time() {
    let disk = MemoryDisk::default();
    let log = open(&disk, small_config());
    append(&log, &batch(2, 100, 1));
    block_on(log.flush()).expect("flush");
    let index = dir().join(spate_storage::segment::index_file_name(Offset(0)));
    assert!(
        disk.contents(&index).is_none(),
        "the active segment has no index file"
    );
    assert!(log.roll_if_older(i64::MAX / 2, 0));
    block_on(log.flush()).expect("flush");
    assert!(disk.contents(&index).is_some(), "finalised");
    let everything_sealed = spate_storage::Retention {
        retention_ms: None,
        retention_bytes: Some(0),
    };
    let removed = block_on(log.apply_retention(everything_sealed, 0)).expect("retention");
    assert_eq!(removed, vec![Offset(0)]);
    assert_eq!(log.log_start_offset(), Offset(2));
}

/// Appends `count` batches of ~`value_bytes` after a first flush has created the segment
/// file (early writes need it), returning every batch appended as stamped on disk.
fn appended_after_first_flush(
    log: &Log<MemoryDisk>,
    count: usize,
    value_bytes: usize,
) -> Vec<Vec<u8>> {
    let mut stamped_batches = Vec::new();
    for tag in 0..=count {
        let bytes = batch(1, value_bytes, tag as u8);
        let (base, _) = append(log, &bytes);
        stamped_batches.push(stamped(&bytes, base));
        if tag == 0 {
            block_on(log.flush()).expect("first flush");
        }
    }
    stamped_batches
}

fn segment_file(base: i64) -> PathBuf {
    dir().join(format!("{base:020}.log"))
}

/// A chunk that fills up goes to the file before any flush asks for it; the flush then only
/// adds the rest and syncs, and everything survives a power cut.
#[test]
fn full_chunks_are_written_before_the_flush() {
    let disk = MemoryDisk::default();
    let config = small_config();
    let stats = config.stats.clone();
    let log = open(&disk, config);
    // Three 16 KiB chunks' worth, within the 32 KiB preallocated by the first flush.
    let expected = appended_after_first_flush(&log, 5, 5000);
    let written = stats.written_bytes.get();
    let on_file = disk.contents(&segment_file(0)).expect("segment file");
    let first_chunk = 16 * 1024;
    let flat: Vec<u8> = expected.concat();
    assert_eq!(
        &on_file[..first_chunk],
        &flat[..first_chunk],
        "the first full chunk is in the file before the flush"
    );
    // The first flush's two pages, then a whole chunk.
    assert_eq!(written, 2 * 4096 + first_chunk as u64);
    let syncs = disk.fdatasync_count();
    block_on(log.flush()).expect("flush");
    assert_eq!(disk.fdatasync_count(), syncs + 1);
    assert_eq!(read_all(&log, Offset(0)), expected);
    disk.crash(7);
    drop(log);
    let log = open(&disk, small_config());
    assert_eq!(
        read_all(&log, Offset(0)),
        expected,
        "durable after a power cut"
    );
}

/// An early write that fails fails the flush covering it, and the log goes offline; what was
/// durable before stays.
#[test]
fn a_failed_early_write_takes_the_log_offline() {
    let disk = MemoryDisk::default();
    let log = open(&disk, small_config());
    let first = batch(1, 5000, 0);
    append(&log, &first);
    block_on(log.flush()).expect("first flush");
    disk.fail_writes(true);
    for tag in 1..6 {
        append(&log, &batch(1, 5000, tag));
    }
    let error = block_on(log.flush()).expect_err("a write failed");
    assert!(
        error.to_string().contains("injected write failure"),
        "{error}"
    );
    assert!(matches!(
        log.append(
            &RecordBatch::validate(&first).expect("valid"),
            LeaderEpoch(3)
        ),
        Err(LogError::Offline(_))
    ));
    disk.fail_writes(false);
    disk.crash(3);
    drop(log);
    let log = open(&disk, small_config());
    assert_eq!(read_all(&log, Offset(0)), [stamped(&first, Offset(0))]);
}

/// Early writes whose tasks never run (an executor shutting down) are written by the flush.
#[test]
fn abandoned_early_writes_are_written_by_the_flush() {
    let disk = MemoryDisk::default();
    let log = open(&disk, small_config());
    disk.drop_spawned(true);
    let expected = appended_after_first_flush(&log, 5, 5000);
    let on_file = disk.contents(&segment_file(0)).expect("segment file");
    assert!(
        on_file.len() < 16 * 1024 || on_file[4096..16 * 1024].iter().all(|&b| b == 0),
        "nothing but the first flush's page reached the file"
    );
    block_on(log.flush()).expect("flush");
    disk.crash(11);
    drop(log);
    disk.drop_spawned(false);
    let log = open(&disk, small_config());
    assert_eq!(read_all(&log, Offset(0)), expected);
}

/// While a suffix truncation runs, appends start no early writes (one could land past the cut
/// once the file is truncated).
#[test]
fn no_early_write_starts_during_a_suffix_truncation() {
    let disk = MemoryDisk::default();
    let config = small_config();
    let stats = config.stats.clone();
    let log = open(&disk, config);
    appended_after_first_flush(&log, 3, 5000);
    block_on(log.flush()).expect("flush");
    // The cut stops at its fdatasync.
    disk.stall_fdatasync(true);
    let mut cut = Box::pin(log.truncate_suffix(Offset(2)));
    assert!(block_on(futures_lite::future::poll_once(cut.as_mut())).is_none());
    let written = stats.written_bytes.get();
    for tag in 10..16 {
        append(&log, &batch(1, 5000, tag));
    }
    assert_eq!(
        stats.written_bytes.get(),
        written,
        "full chunks wait while the cut runs"
    );
    drop(cut);
    // Once no cut runs, the next append starts them.
    append(&log, &batch(1, 100, 20));
    assert!(stats.written_bytes.get() > written);
}

/// A log whose appends (returned) just rolled it to a second segment, nothing flushed.
fn log_just_rolled(disk: &MemoryDisk) -> (Log<MemoryDisk>, Vec<Vec<u8>>) {
    let log = open(disk, small_config());
    let mut appended = Vec::new();
    while log.segment_bases().len() < 2 {
        let bytes = batch(1, 5000, appended.len() as u8);
        append(&log, &bytes);
        appended.push(bytes);
    }
    (log, appended)
}

/// After a roll, one flush syncs the sealed segment and the new one, and the next flush only
/// the new one: if the later sync completes first, it must not make the earlier flush's data
/// in the sealed segment count as durable.
#[test]
fn a_later_sync_does_not_vouch_for_an_earlier_one_on_another_segment() {
    let disk = MemoryDisk::default();
    let (log, appended) = log_just_rolled(&disk);
    let tag = appended.len() as u8;
    let sealed = segment_file(0);
    // Its sync when sealed (in the write phase) passes; the flush's sync phase holds.
    disk.hold_fdatasync_after(&sealed, Some(1));
    let first_target = log.next_offset();
    let mut first = Box::pin(log.flush());
    assert!(
        block_on(futures_lite::future::poll_once(first.as_mut())).is_none(),
        "the sealed segment's sync is held"
    );
    append(&log, &batch(1, 5000, tag));
    let second_target = log.next_offset();
    let mut second = Box::pin(log.flush());
    assert!(
        block_on(futures_lite::future::poll_once(second.as_mut())).is_none(),
        "the later flush waits for the earlier sync"
    );
    assert!(
        log.durable_offset() < first_target,
        "durable offset {} vouches for data whose sync is still running",
        log.durable_offset()
    );
    disk.hold_fdatasync(&sealed, false);
    assert_eq!(block_on(first).expect("first flush"), second_target);
    assert_eq!(block_on(second).expect("second flush"), second_target);
    assert_eq!(log.durable_offset(), second_target);
}

#[test]
fn pages_written_past_the_end_hold_zeros_not_a_reused_buffers_bytes() {
    use spate_storage::disk::{Disk, DiskBuffer};
    let disk = MemoryDisk::default();
    let config = small_config();
    // Buffers the pool hands out hold a previous user's bytes (0xEE here; new ones hold the
    // memory disk's poison): only what the log fills may reach the file.
    let dirty: Vec<_> = (0..8)
        .map(|_| {
            let mut buffer = disk.take_buffer(config.chunk_bytes);
            buffer.bytes_mut().fill(0xee);
            buffer
        })
        .collect();
    for buffer in dirty {
        disk.give_buffer(buffer);
    }
    let log = open(&disk, config);
    let path = dir().join(spate_storage::segment::log_file_name(Offset(0)));
    let mut end = 0;
    // Sizes that end mid-page, one flush each: every flush writes a partial last page (and
    // carries it into a new chunk), and a chunk fills and goes whole now and then.
    for (round, value_bytes) in [100, 3000, 5000, 777, 12_000, 1].into_iter().enumerate() {
        let bytes = batch(2, value_bytes, round as u8);
        append(&log, &bytes);
        end += bytes.len();
        block_on(log.flush()).expect("flush");
        let file = disk.contents(&path).expect("segment file");
        let page_end = end.div_ceil(4096) * 4096;
        assert!(
            file[end..page_end].iter().all(|&b| b == 0),
            "round {round}: bytes {end}..{page_end} past the log's end are not zeros"
        );
    }
    let batches = read_all(&log, Offset(0));
    assert_eq!(batches.len(), 6);
    drop(log);
    disk.crash(7);
    let reopened = open(&disk, small_config());
    assert_eq!(read_all(&reopened, Offset(0)), batches);
}

#[test]
fn written_chunks_return_their_buffers_to_the_pool() {
    let disk = MemoryDisk::default();
    let config = LogConfig {
        segment_bytes: 8 << 20,
        tail_cache: None,
        ..small_config()
    };
    let chunk_bytes = config.chunk_bytes;
    let log = open(&disk, config);
    let bytes = batch(4, 1000, 1);
    let mut written = 0;
    let mut flushes = 0;
    while written < 128 * chunk_bytes {
        for _ in 0..40 {
            append(&log, &bytes);
            written += bytes.len();
        }
        block_on(log.flush()).expect("flush");
        flushes += 1;
    }
    let (reused, allocated) = disk.pool().counts();
    let chunks = written / chunk_bytes;
    // Without reuse every chunk, and each flush's carried page, would be an allocation;
    // with it, one round's chunks at the start, then about one per flush (a flush's last
    // chunk is trimmed to its pages and cannot serve again).
    let per_round = (40 * bytes.len()).div_ceil(chunk_bytes);
    assert!(
        allocated as usize <= flushes + per_round + 2,
        "{allocated} buffers allocated for {chunks} chunks in {flushes} flushes ({reused} reused)"
    );
    assert!(
        reused as usize >= chunks - per_round,
        "{reused} reused for {chunks} chunks"
    );
    assert_eq!(read_all(&log, Offset(0)).len(), 40 * flushes);
}

#[test]
fn a_sync_abandoned_in_flight_is_made_up_before_later_data_counts_as_durable() {
    let disk = MemoryDisk::default();
    let (log, mut appended) = log_just_rolled(&disk);
    // The first flush writes both segments and syncs both; the sealed one's sync is held,
    // and the flush is dropped there (a cancelled caller): that fdatasync never completes.
    let sealed = segment_file(0);
    // Its sync when sealed (in the write phase) passes; the flush's sync phase holds.
    disk.hold_fdatasync_after(&sealed, Some(1));
    let first_target = log.next_offset();
    let mut first = Box::pin(log.flush());
    assert!(block_on(futures_lite::future::poll_once(first.as_mut())).is_none());
    // A later flush whose sync starts while the abandoned one is still in flight syncs
    // only the active segment; then the first is dropped.
    let bytes = batch(1, 5000, 100);
    append(&log, &bytes);
    appended.push(bytes);
    let mut second = Box::pin(log.flush());
    assert!(block_on(futures_lite::future::poll_once(second.as_mut())).is_none());
    drop(first);
    // And one that starts after.
    let bytes = batch(1, 5000, 101);
    append(&log, &bytes);
    appended.push(bytes);
    let third_target = log.next_offset();
    let mut third = Box::pin(log.flush());
    assert!(
        block_on(futures_lite::future::poll_once(third.as_mut())).is_none(),
        "a later flush syncs the abandoned round's files again (held)"
    );
    assert!(
        block_on(futures_lite::future::poll_once(second.as_mut())).is_none(),
        "the flush in flight during the abandonment cannot vouch for the sealed segment"
    );
    assert!(
        log.durable_offset() < first_target,
        "durable offset {} counts data whose sync was abandoned",
        log.durable_offset()
    );
    disk.hold_fdatasync(&sealed, false);
    assert_eq!(block_on(third).expect("third flush"), third_target);
    assert_eq!(block_on(second).expect("second flush"), third_target);
    // What it called durable survives a power cut.
    drop(log);
    disk.crash(11);
    let reopened = open(&disk, small_config());
    let read: Vec<Vec<u8>> = read_all(&reopened, Offset(0));
    assert_eq!(read.len(), appended.len());
    for (at, (read, original)) in read.iter().zip(&appended).enumerate() {
        assert_eq!(read, &stamped(original, Offset(at as i64)), "batch {at}");
    }
}

#[test]
fn a_round_that_synced_an_abandoned_rounds_files_discharges_it_before_it_can_settle() {
    let disk = MemoryDisk::default();
    let (log, _) = log_just_rolled(&disk);
    let (sealed, active) = (segment_file(0), segment_file(log.segment_bases()[1].get()));
    // The first round syncs both segments; the sealed one's sync is held throughout.
    // Its sync when sealed (in the write phase) passes; the flush's sync phase holds.
    disk.hold_fdatasync_after(&sealed, Some(1));
    disk.hold_fdatasync(&active, true);
    let first_target = log.next_offset();
    let mut first = Box::pin(log.flush());
    assert!(block_on(futures_lite::future::poll_once(first.as_mut())).is_none());
    // A second round, syncing the active segment only, is abandoned mid-sync.
    append(&log, &batch(1, 5000, 200));
    let mut second = Box::pin(log.flush());
    assert!(block_on(futures_lite::future::poll_once(second.as_mut())).is_none());
    drop(second);
    disk.hold_fdatasync(&active, false);
    // A third round takes on the debt and completes; it cannot settle past the first round
    // (the sealed segment), so its caller waits — rather than flushing again and again.
    append(&log, &batch(1, 5000, 201));
    let target = log.next_offset();
    let syncs_before = disk.fdatasync_count();
    let mut third = Box::pin(log.flush());
    assert!(block_on(futures_lite::future::poll_once(third.as_mut())).is_none());
    assert!(
        disk.fdatasync_count() - syncs_before <= 2,
        "{} fdatasyncs for one flush",
        disk.fdatasync_count() - syncs_before
    );
    assert!(log.durable_offset() < first_target);
    disk.hold_fdatasync(&sealed, false);
    assert_eq!(block_on(first).expect("first flush"), target);
    assert_eq!(block_on(third).expect("third flush"), target);
}

/// A flush that seals a segment and goes on into the next: if the power goes before its
/// fdatasync of the sealed segment, the log still opens — the sealed segment's unsynced
/// tail is lost or torn, never taken for corruption — and keeps every durable batch.
#[test]
fn power_loss_while_a_sealed_segment_is_unsynced_keeps_the_log_openable() {
    for seed in 1..=40_u64 {
        let disk = MemoryDisk::default();
        let log = open(&disk, small_config());
        let mut durable = Vec::new();
        for i in 0..3 {
            let bytes = batch(1, 5000, i);
            let (base, _) = append(&log, &bytes);
            durable.push(stamped(&bytes, base));
        }
        block_on(log.flush()).expect("flush");
        // More batches roll the log to a second segment; the flush that writes them seals
        // the first, creates the second, and its sync of the first never completes.
        let mut pending = Vec::new();
        let mut tag = 10;
        while log.segment_bases().len() < 2 {
            let bytes = batch(1, 5000 + 100 * (seed as usize % 7), tag);
            let (base, _) = append(&log, &bytes);
            pending.push(stamped(&bytes, base));
            tag += 1;
        }
        let bytes = batch(1, 3000, tag);
        let (base, _) = append(&log, &bytes);
        pending.push(stamped(&bytes, base));
        disk.hold_fdatasync(&segment_file(0), true);
        let mut flush = Box::pin(log.flush());
        assert!(block_on(futures_lite::future::poll_once(flush.as_mut())).is_none());
        drop(flush);
        drop(log);
        disk.crash(seed);
        disk.hold_fdatasync(&segment_file(0), false);
        let log = block_on(Log::open(disk.clone(), &dir(), small_config()))
            .unwrap_or_else(|e| panic!("seed {seed}: the log does not open: {e}"));
        let recovered = read_all(&log, Offset(0));
        assert!(
            recovered.len() >= durable.len(),
            "seed {seed}: lost durable batches"
        );
        let all: Vec<Vec<u8>> = durable.iter().chain(pending.iter()).cloned().collect();
        assert_eq!(&recovered[..], &all[..recovered.len()], "seed {seed}");
    }
}

/// Read-ahead fills whose tasks are dropped before they run (an executor shutting down):
/// a reader counting on them reads the file itself instead of waiting for them forever.
#[test]
fn a_read_ahead_fill_dropped_unpolled_fails_rather_than_hangs() {
    let disk = MemoryDisk::default();
    let (log, expected, stats) = reopened_log(&disk, 200, Budget::new(16 << 20));
    disk.drop_spawned(true);
    assert_eq!(read_sequentially(&log, 256 * 1024), expected);
    assert_eq!(stats.read_ahead_bytes.get(), 0, "no fill ran");
}

/// A reader that stops reading from the disk (caught up, or gone) gives its read-ahead's
/// share of the tail-cache budget back once it has been idle that long.
#[test]
fn an_idle_readers_read_ahead_is_released() {
    let disk = MemoryDisk::default();
    let budget = Budget::new(16 << 20);
    let (log, expected, _) = reopened_log(&disk, 200, budget.clone());
    let mut offset = Offset(0);
    for _ in 0..4 {
        let read = block_on(log.read(offset, 256 * 1024, Offset(i64::MAX))).expect("read");
        offset = Offset(offset.get() + 16 * read.batches as i64);
    }
    let held = budget.used();
    assert!(held > 0, "a sequential reader reads ahead");
    assert_eq!(
        log.release_idle_read_ahead(std::time::Duration::from_secs(3600)),
        0,
        "not idle yet"
    );
    assert_eq!(budget.used(), held);
    assert_eq!(
        log.release_idle_read_ahead(std::time::Duration::ZERO),
        held,
        "everything it held goes"
    );
    assert_eq!(budget.used(), 0);
    // The reader carries on, reading the file again.
    assert_eq!(read_sequentially(&log, 256 * 1024), expected);
}

/// The batch CRC does not cover the base offset: a batch whose stored offset was damaged (or
/// one that is not this segment's at all) is reported, not served under a wrong offset.
#[test]
fn a_batch_whose_offset_is_damaged_is_reported_not_served() {
    let disk = MemoryDisk::default();
    let config = small_config();
    let log = open(&disk, config.clone());
    let mut positions = Vec::new();
    let mut end = 0;
    for i in 0..30 {
        let bytes = batch(1, 4000, i);
        positions.push(end);
        end += bytes.len();
        append(&log, &bytes);
    }
    block_on(log.close()).expect("close");
    let first = segment_file(0);
    let mut bytes = disk.contents(&first).expect("file");
    // The third batch claims the second's offset (offsets go backwards); a bit flipped in
    // the sixth's puts it far outside the segment.
    bytes[positions[2]..positions[2] + 8].copy_from_slice(&1_i64.to_be_bytes());
    bytes[positions[5]] ^= 0x40;
    disk.set_contents(&first, bytes);
    let log = open(&disk, config);
    let err = block_on(log.read(Offset(1), 1 << 20, Offset(i64::MAX)))
        .expect_err("the batch going backwards is refused");
    assert!(
        matches!(&err, LogError::Corrupt { position, .. } if *position == positions[2] as u64),
        "{err}"
    );
    let err = block_on(log.read(Offset(5), 1, Offset(i64::MAX)))
        .expect_err("the batch outside the segment is refused");
    assert!(
        matches!(&err, LogError::Corrupt { position, .. } if *position == positions[5] as u64),
        "{err}"
    );
    // Batch by batch, nothing is ever served under an offset it does not hold.
    for offset in 0..30 {
        if let Ok(read) = block_on(log.read(Offset(offset), 1, Offset(i64::MAX))) {
            if read.batches > 0 {
                let batch = RecordBatch::validate(&read.bytes).expect("a whole batch");
                let header = batch.header();
                assert!(header.last_offset() >= Offset(offset), "offset {offset}");
                assert!(header.base_offset() < Offset(30), "offset {offset}");
            }
        }
    }
}
