//! `spate-bench storage`: the log's durable append throughput and latency with group commit,
//! and its sequential read throughput, on the glommio disk.
//!
//! Workload (the storage issue's): 1 KiB records in 16 KiB uncompressed batches; on one
//! shard, 1 and 8 partitions, each with several producers that append a batch and wait until
//! it is durable (acks=all with fsync on commit), so fdatasyncs are shared by whatever
//! arrived meanwhile.
//!
//! Napkin math: one flush writes everything appended while the previous fdatasync ran, so at
//! steady state throughput ≈ write bandwidth × (write time / (write time + fdatasync time)).
//! With N producers × 16 KiB per flush round, rounds carry little data and fdatasync latency
//! dominates: 4 producers × 16 KiB / 1 ms ≈ 64 MiB/s per partition; 8 partitions share a
//! round only across their own flushes (one fdatasync per log), so the per-shard figure scales
//! with partitions until the device's bandwidth or the CPU is the limit. Reads are one copy
//! out of a DMA read each, so ≈ raw read bandwidth.

use spate_model::{BatchBuilder, BuilderRecord, Compression, LeaderEpoch, Offset, RecordBatch};
use spate_storage::disk::glommio::{spawn_local, GlommioDisk};
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

fn log_config() -> LogConfig {
    LogConfig::default()
}

/// Appends `config.bytes` over `partitions` logs in `dir` with durable waits.
pub async fn append(
    disk: &GlommioDisk,
    dir: &Path,
    partitions: usize,
    config: StorageConfig,
) -> Result<AppendFigures, LogError> {
    let batch_bytes = make_batch(&config);
    let mut logs = Vec::new();
    for partition in 0..partitions {
        let log = Log::open(
            disk.clone(),
            &dir.join(format!("bench-{partition}")),
            log_config(),
        )
        .await?;
        logs.push(Rc::new(log));
    }
    let batches_per_producer = (config.bytes
        / batch_bytes.len() as u64
        / (partitions * config.producers_per_partition) as u64)
        .max(1);
    let histogram = Rc::new(RefCell::new(
        hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
            .expect("valid histogram bounds"),
    ));
    let batch_bytes = Rc::new(batch_bytes);
    let started = Instant::now();
    // One task per producer, so each wakes on its own, as independent clients would.
    let mut producers = Vec::new();
    for log in &logs {
        for _ in 0..config.producers_per_partition {
            let (log, histogram, batch_bytes) =
                (log.clone(), histogram.clone(), batch_bytes.clone());
            producers.push(spawn_local(async move {
                let batch =
                    RecordBatch::validate(&batch_bytes).expect("the bench's own batch is valid");
                for _ in 0..batches_per_producer {
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
    let elapsed = started.elapsed();
    let total_batches = batches_per_producer * (partitions * config.producers_per_partition) as u64;
    let total_bytes = total_batches * batch_bytes.len() as u64;
    let flushes: u64 = logs.iter().map(|log| log.flush_count()).sum();
    for log in logs {
        let log = Rc::try_unwrap(log).expect("producers are done with the log");
        log.close().await?;
    }
    let histogram = Rc::try_unwrap(histogram)
        .expect("producers are done")
        .into_inner();
    Ok(AppendFigures {
        throughput_mib_s: total_bytes as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64(),
        latency_us: [
            histogram.value_at_quantile(0.5) as f64,
            histogram.value_at_quantile(0.99) as f64,
            histogram.value_at_quantile(0.999) as f64,
            histogram.max() as f64,
        ],
        batches_per_flush: total_batches as f64 / flushes.max(1) as f64,
    })
}

/// Reads partition 0's log from offset 0 to its end, 1 MiB per read (MiB/s).
pub async fn read(disk: &GlommioDisk, dir: &Path) -> Result<f64, LogError> {
    let log = Log::open(disk.clone(), &dir.join("bench-0"), log_config()).await?;
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
    Ok(total as f64 / (1024.0 * 1024.0) / elapsed.as_secs_f64())
}
