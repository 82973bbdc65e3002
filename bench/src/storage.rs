//! `spate-bench storage`: the log's durable append throughput and latency with group commit,
//! and its sequential read throughput, on the glommio disk.
//!
//! Workload (the storage issue's): 1 KiB records in 16 KiB uncompressed batches; on one
//! shard, 1 and 8 partitions, each with N producers that append a batch and wait until it is
//! durable (acks=all with fsync on commit), so fdatasyncs are shared by whatever arrived
//! meanwhile. The logs get the broker's per-shard budgets (64 MiB tail cache, 256 MiB
//! write-behind).
//!
//! Napkin math: producers that wait for durability are a closed loop, so throughput = bytes
//! in flight / append-to-durable latency (Little's law). A round is one write (the batches
//! that arrived during the previous write) then one fdatasync, and the next round's write
//! overlaps this one's sync; on the development VM a write of fresh preallocated extents and
//! its fdatasync (which persists the extent conversion) each take ~200 µs, so latency is
//! ~0.5 ms: 16 producers × 16 KiB = 256 KiB in flight ≈ 500 MiB/s at most. The raw write
//! probe keeps 2 MiB in flight (8 × 256 KiB), which 128 producers per partition match; only
//! there is the device's bandwidth the bound. 8 partitions on one shard sync separately (one
//! fdatasync per partition per round).
//!
//! Reads: 1 MiB per read, sequential, so after the first the log fills 2 MiB read-ahead
//! buffers in the background (8 requests of 256 KiB each, the raw probe's depth) while the
//! reader checks the CRC of every batch (~15 GiB/s) and moves on; what a read costs beyond
//! the device is one copy out of the DMA buffers, so ≈ the raw read of the same file.

use crate::limits::LimitsConfig;
use spate_model::{BatchBuilder, BuilderRecord, Compression, LeaderEpoch, Offset, RecordBatch};
use spate_storage::budget::Budget;
use spate_storage::disk::glommio::{spawn_local, GlommioDisk};
use spate_storage::disk::{Disk, DiskFile};
use spate_storage::join::join_all;
use spate_storage::{Log, LogConfig, LogError};
use std::cell::RefCell;
use std::path::Path;
use std::rc::Rc;
use std::time::{Duration, Instant};

/// How the storage scenario runs.
#[derive(Debug, Clone, Copy)]
pub struct StorageConfig {
    /// Bytes appended per partition count tested (split across partitions).
    pub bytes: u64,
    /// Concurrent producers per partition.
    pub producers_per_partition: usize,
    /// Records per batch.
    pub records_per_batch: usize,
    /// Bytes per record value.
    pub record_bytes: usize,
}

impl Default for StorageConfig {
    fn default() -> Self {
        StorageConfig {
            bytes: 512 << 20,
            producers_per_partition: 16,
            records_per_batch: 16,
            record_bytes: 1024,
        }
    }
}

/// One run's figures for one partition count.
#[derive(Debug, Clone, Copy)]
pub struct AppendFigures {
    /// Durable append throughput (MiB/s).
    pub throughput_mib_s: f64,
    /// Append-to-durable latency: p50, p99, p99.9, max (µs).
    pub latency_us: [f64; 4],
    /// fdatasync calls per MiB appended (group commit effectiveness).
    pub batches_per_flush: f64,
    /// Mean time of a flush's sync phase (µs): with the bytes in flight, what bounds the
    /// throughput of producers that wait for durability.
    pub sync_mean_us: f64,
}

fn make_batch(config: &StorageConfig) -> Vec<u8> {
    let value = vec![0x42_u8; config.record_bytes];
    let mut builder = BatchBuilder::new(Compression::None);
    for i in 0..config.records_per_batch {
        builder
            .push(&BuilderRecord {
                timestamp_ms: 1_700_000_000_000 + i as i64,
                key: None,
                value: Some(&value),
                headers: &[],
            })
            .expect("a fixed in-memory batch builds");
    }
    builder.build().expect("a fixed in-memory batch builds")
}

/// The broker's per-shard budgets (`broker/src/main.rs`), here for the one shard.
fn log_config() -> LogConfig {
    LogConfig {
        tail_cache: Some(Budget::new(64 * 1024 * 1024)),
        write_budget: Some(Budget::new(256 * 1024 * 1024)),
        ..LogConfig::default()
    }
}

/// Appends `config.bytes` over `partitions` logs in `dir` with durable waits. With
/// `recycled`, what a log under retention does once it reuses removed segment files: an
/// unmeasured first pass of the same size fills each log's first segment, which is then
/// rolled and removed by retention (so kept as a recycled file), and the measured pass
/// appends into the next segment, made from that file.
pub async fn append(
    disk: &GlommioDisk,
    dir: &Path,
    partitions: usize,
    config: StorageConfig,
    recycled: bool,
) -> Result<AppendFigures, LogError> {
    let batch_bytes = Rc::new(make_batch(&config));
    let mut logs = Vec::new();
    let shard = log_config();
    for partition in 0..partitions {
        let log = Log::open(
            disk.clone(),
            &dir.join(format!("bench-{partition}")),
            shard.clone(),
        )
        .await?;
        logs.push(Rc::new(log));
    }
    let batches_per_producer = (config.bytes
        / batch_bytes.len() as u64
        / (partitions * config.producers_per_partition) as u64)
        .max(1);
    let pass = Pass {
        logs: &logs,
        producers_per_partition: config.producers_per_partition,
        batches_per_producer,
        batch_bytes: &batch_bytes,
    };
    if recycled {
        pass.run().await?;
        let everything_sealed = spate_storage::Retention {
            retention_ms: None,
            retention_bytes: Some(0),
        };
        for log in &logs {
            log.roll_if_older(i64::MAX / 2, 0);
            log.flush().await?;
            log.apply_retention(everything_sealed, 0).await?;
        }
    }
    let flushes_before: u64 = logs.iter().map(|log| log.flush_count()).sum();
    let syncs_before = shard.stats.sync_latency.snapshot();
    let started = Instant::now();
    let histogram = pass.run().await?;
    let elapsed = started.elapsed();
    let total_batches = batches_per_producer * (partitions * config.producers_per_partition) as u64;
    let total_bytes = total_batches * batch_bytes.len() as u64;
    let flushes = logs.iter().map(|log| log.flush_count()).sum::<u64>() - flushes_before;
    let syncs = shard.stats.sync_latency.snapshot();
    let sync_count = syncs.count() - syncs_before.count();
    let sync_seconds = syncs.sum_seconds - syncs_before.sum_seconds;
    for log in logs {
        let log = Rc::try_unwrap(log).expect("producers are done with the log");
        log.close().await?;
    }
    Ok(AppendFigures {
        throughput_mib_s: total_bytes as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64(),
        latency_us: [
            histogram.value_at_quantile(0.5) as f64,
            histogram.value_at_quantile(0.99) as f64,
            histogram.value_at_quantile(0.999) as f64,
            histogram.max() as f64,
        ],
        batches_per_flush: total_batches as f64 / flushes.max(1) as f64,
        sync_mean_us: sync_seconds * 1e6 / sync_count.max(1) as f64,
    })
}

/// One pass of producers over the logs.
struct Pass<'a> {
    logs: &'a [Rc<Log<GlommioDisk>>],
    producers_per_partition: usize,
    batches_per_producer: u64,
    batch_bytes: &'a Rc<Vec<u8>>,
}

impl Pass<'_> {
    /// Runs the producers to the end; returns their append-to-durable latencies (µs).
    async fn run(&self) -> Result<hdrhistogram::Histogram<u64>, LogError> {
        let histogram = Rc::new(RefCell::new(
            hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
                .expect("valid histogram bounds"),
        ));
        // One task per producer, so each wakes on its own, as independent clients would.
        let mut producers = Vec::new();
        for log in self.logs {
            for _ in 0..self.producers_per_partition {
                let (log, histogram, batch_bytes) =
                    (log.clone(), histogram.clone(), self.batch_bytes.clone());
                let batches = self.batches_per_producer;
                producers.push(spawn_local(async move {
                    let batch = RecordBatch::validate(&batch_bytes)
                        .expect("the bench's own batch is valid");
                    for _ in 0..batches {
                        let appended = Instant::now();
                        loop {
                            match log.append(&batch, LeaderEpoch(0)) {
                                Ok(_) => break,
                                Err(LogError::BufferFull { .. }) => {
                                    log.flush().await?;
                                }
                                Err(e) => return Err(e),
                            }
                        }
                        log.flush().await?;
                        let micros = appended.elapsed().as_micros().max(1) as u64;
                        histogram.borrow_mut().saturating_record(micros);
                    }
                    Ok::<(), LogError>(())
                }));
            }
        }
        for result in join_all(producers).await {
            result?;
        }
        Ok(Rc::try_unwrap(histogram)
            .expect("producers are done")
            .into_inner())
    }
}

/// Read throughputs (MiB/s): the log's, and the same segment file's read raw around it.
#[derive(Debug, Clone, Copy)]
pub struct ReadFigures {
    /// Partition 0's log from offset 0 to its end, 1 MiB per read (a consumer's fetch size).
    pub log_mib_s: f64,
    /// The segment file read with the raw probe's requests (256 KiB, 8 in flight), before
    /// and after the log read (the mean): the device as the log's read finds it, since a
    /// virtual disk's host cache makes reads of recently written data fast or slow by turns.
    pub raw_same_file_mib_s: f64,
}

/// Reads partition 0's log from offset 0 to its end, 1 MiB per read, between two raw reads of
/// its first segment file.
pub async fn read(disk: &GlommioDisk, dir: &Path) -> Result<ReadFigures, LogError> {
    let log_dir = dir.join("bench-0");
    let log = Log::open(disk.clone(), &log_dir, log_config()).await?;
    let segment = log_dir.join(spate_storage::segment::log_file_name(
        log.segment_bases().first().copied().unwrap_or(Offset(0)),
    ));
    let raw = |path: std::path::PathBuf| async move {
        let file = Rc::new(disk.open(&path, false).await?);
        let bytes = file.size().await?;
        let config = LimitsConfig {
            bytes,
            ..LimitsConfig::default()
        };
        let mib_s = crate::limits::sequential_read(&file, config).await;
        if let Ok(file) = Rc::try_unwrap(file) {
            file.close().await?;
        }
        mib_s
    };
    let io = |e: std::io::Error| LogError::Io {
        context: "reading the bench segment raw".to_string(),
        source: e,
    };
    let raw_before = raw(segment.clone()).await.map_err(io)?;
    let end = log.next_offset();
    let started = Instant::now();
    let mut offset = Offset(0);
    let mut total = 0_u64;
    while offset < end {
        let read = log.read(offset, 1 << 20, end).await?;
        if read.batches == 0 {
            break;
        }
        let mut last = offset;
        let mut rest = &read.bytes[..];
        while rest.len() >= 61 {
            let size = i32::from_be_bytes([rest[8], rest[9], rest[10], rest[11]]) as usize + 12;
            let base = i64::from_be_bytes([
                rest[0], rest[1], rest[2], rest[3], rest[4], rest[5], rest[6], rest[7],
            ]);
            let delta = i32::from_be_bytes([rest[23], rest[24], rest[25], rest[26]]);
            last = Offset(base + i64::from(delta));
            rest = &rest[size.min(rest.len())..];
        }
        total += read.bytes.len() as u64;
        offset = Offset(last.get() + 1);
    }
    let elapsed = started.elapsed().max(Duration::from_micros(1));
    log.close().await?;
    let raw_after = raw(segment).await.map_err(io)?;
    Ok(ReadFigures {
        log_mib_s: total as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64(),
        raw_same_file_mib_s: (raw_before + raw_after) / 2.0,
    })
}
