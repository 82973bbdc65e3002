//! Physical limits of this machine, measured the way the log uses it: O_DIRECT through the
//! same disk seam (glommio DMA files), the log's write size, several writes in flight.
//!
//! Napkin math for the development VM (virtio disk on shared storage, 2 cores): sequential
//! O_DIRECT writes of 256 KiB at queue depth 8 should reach hundreds of MiB/s to ~2 GiB/s;
//! reads similar or faster; fdatasync of one 4 KiB write somewhere between 50 µs (write cache
//! honoured by the host) and a few ms; CRC32C with SSE4.2 ~20–30 GiB/s.

use spate_storage::disk::glommio::{spawn_local, GlommioDisk, GlommioFile};
use spate_storage::disk::{Disk, DiskBuffer, DiskFile};
use spate_storage::join::join_all;
use std::io;
use std::path::Path;
use std::rc::Rc;
use std::time::Instant;

/// How a limits probe runs.
#[derive(Debug, Clone, Copy)]
pub struct LimitsConfig {
    /// Bytes written (then read) sequentially.
    pub bytes: u64,
    /// Bytes per write or read (the log's chunk size).
    pub block_bytes: usize,
    /// Writes or reads in flight.
    pub depth: usize,
    /// fdatasync samples.
    pub fsync_samples: usize,
}

impl Default for LimitsConfig {
    fn default() -> Self {
        LimitsConfig {
            bytes: 1 << 30,
            block_bytes: 256 * 1024,
            depth: 8,
            fsync_samples: 400,
        }
    }
}

/// What one probe run measured.
#[derive(Debug, Clone, Copy)]
pub struct Limits {
    /// Sequential O_DIRECT write bandwidth into freshly preallocated extents, fdatasync at
    /// the end included (MiB/s).
    pub write_mib_s: f64,
    /// The same writes over blocks already written (MiB/s): the ceiling for appends into a
    /// recycled segment file.
    pub overwrite_mib_s: f64,
    /// Sequential O_DIRECT writes made durable every MiB: 1 MiB (four blocks in flight),
    /// then fdatasync, repeated (MiB/s), over blocks written before. The ceiling for group
    /// commit with 1 MiB rounds that overwrite.
    pub durable_rounds_mib_s: f64,
    /// The same rounds into freshly preallocated (unwritten) extents, as the log writes: each
    /// write converts extents and each fdatasync persists that metadata (MiB/s).
    pub durable_rounds_fresh_mib_s: f64,
    /// Fresh-extent rounds with each round's fdatasync overlapping the next round's writes,
    /// as the log's group commit does (MiB/s).
    pub durable_rounds_fresh_pipelined_mib_s: f64,
    /// Sequential O_DIRECT read bandwidth (MiB/s).
    pub read_mib_s: f64,
    /// fdatasync after one 4 KiB write: p50, p99, p99.9, max (µs).
    pub fsync_us: [f64; 4],
    /// CRC32C over 64 MiB in memory (MiB/s).
    pub crc32c_mib_s: f64,
    /// memcpy of 256 MiB (MiB/s).
    pub memcpy_mib_s: f64,
}

const PROBE_FILE: &str = "spate-bench-limits.tmp";

/// Runs every probe in `dir` (on the device the data directory lives on).
pub async fn measure(disk: &GlommioDisk, dir: &Path, config: LimitsConfig) -> io::Result<Limits> {
    let path = dir.join(PROBE_FILE);
    let file = Rc::new(disk.open(&path, true).await?);
    file.truncate(0).await?;
    file.allocate(config.bytes).await?;
    let write_mib_s = sequential_write(disk, &file, config).await?;
    let read_mib_s = sequential_read(&file, config).await?;
    // Again over the blocks just written: no extent conversion, as in a recycled segment.
    let overwrite_mib_s = sequential_write(disk, &file, config).await?;
    let durable_rounds_mib_s = durable_rounds(disk, &file, config, false).await?;
    let fsync_us = fsync_latency(disk, &file, config.fsync_samples).await?;
    drop(file);
    disk.remove(&path).await?;
    let fresh = Rc::new(disk.open(&path, true).await?);
    fresh.allocate(config.bytes / 4).await?;
    let durable_rounds_fresh_mib_s = durable_rounds(disk, &fresh, config, false).await?;
    drop(fresh);
    disk.remove(&path).await?;
    let fresh = Rc::new(disk.open(&path, true).await?);
    fresh.allocate(config.bytes / 4).await?;
    let durable_rounds_fresh_pipelined_mib_s = durable_rounds(disk, &fresh, config, true).await?;
    drop(fresh);
    disk.remove(&path).await?;
    Ok(Limits {
        write_mib_s,
        overwrite_mib_s,
        durable_rounds_mib_s,
        durable_rounds_fresh_mib_s,
        durable_rounds_fresh_pipelined_mib_s,
        read_mib_s,
        fsync_us,
        crc32c_mib_s: crc32c_speed(),
        memcpy_mib_s: memcpy_speed(),
    })
}

fn mib_per_s(bytes: u64, seconds: f64) -> f64 {
    bytes as f64 / (1024.0 * 1024.0) / seconds
}

async fn sequential_write(
    disk: &GlommioDisk,
    file: &Rc<GlommioFile>,
    config: LimitsConfig,
) -> io::Result<f64> {
    let blocks = config.bytes / config.block_bytes as u64;
    let started = Instant::now();
    let mut next = 0_u64;
    while next < blocks {
        let wave: Vec<_> = (next..blocks.min(next + config.depth as u64))
            .map(|block| {
                let mut buffer = disk.alloc_buffer(config.block_bytes);
                buffer.bytes_mut().fill((block % 251) as u8);
                file.write_at(Rc::new(buffer), block * config.block_bytes as u64)
            })
            .collect();
        next += wave.len() as u64;
        for result in join_all(wave).await {
            result?;
        }
    }
    file.fdatasync().await?;
    Ok(mib_per_s(
        blocks * config.block_bytes as u64,
        started.elapsed().as_secs_f64(),
    ))
}

/// Rounds of 1 MiB made durable. Serial: each round's fdatasync completes before the next
/// round's writes. Pipelined (as the log's group commit): a round's fdatasync runs while the
/// next round is written, and fdatasyncs may overlap.
async fn durable_rounds(
    disk: &GlommioDisk,
    file: &Rc<GlommioFile>,
    config: LimitsConfig,
    pipelined: bool,
) -> io::Result<f64> {
    const ROUND_BYTES: u64 = 1 << 20;
    let block = config.block_bytes as u64;
    let rounds = (config.bytes / 4 / ROUND_BYTES).max(1);
    let started = Instant::now();
    let mut syncs = Vec::new();
    for round in 0..rounds {
        let writes: Vec<_> = (0..ROUND_BYTES / block)
            .map(|i| {
                let mut buffer = disk.alloc_buffer(config.block_bytes);
                buffer.bytes_mut().fill(round as u8);
                file.write_at(Rc::new(buffer), round * ROUND_BYTES + i * block)
            })
            .collect();
        for result in join_all(writes).await {
            result?;
        }
        if pipelined {
            let file = file.clone();
            syncs.push(spawn_local(async move { file.fdatasync().await }));
        } else {
            file.fdatasync().await?;
        }
    }
    for result in join_all(syncs).await {
        result?;
    }
    Ok(mib_per_s(
        rounds * ROUND_BYTES,
        started.elapsed().as_secs_f64(),
    ))
}

/// Reads `config.bytes` of `file` from its start, `config.depth` blocks in flight (MiB/s).
pub async fn sequential_read(file: &Rc<GlommioFile>, config: LimitsConfig) -> io::Result<f64> {
    let blocks = config.bytes / config.block_bytes as u64;
    let started = Instant::now();
    let mut next = 0_u64;
    let mut total = 0_u64;
    while next < blocks {
        let wave: Vec<_> = (next..blocks.min(next + config.depth as u64))
            .map(|block| file.read_at(block * config.block_bytes as u64, config.block_bytes))
            .collect();
        next += wave.len() as u64;
        for result in join_all(wave).await {
            total += result?.len() as u64;
        }
    }
    Ok(mib_per_s(total, started.elapsed().as_secs_f64()))
}

async fn fsync_latency(
    disk: &GlommioDisk,
    file: &Rc<GlommioFile>,
    samples: usize,
) -> io::Result<[f64; 4]> {
    let mut histogram = hdrhistogram::Histogram::<u64>::new_with_bounds(1, 60_000_000, 3)
        .map_err(io::Error::other)?;
    for sample in 0..samples as u64 {
        let buffer = disk.alloc_buffer(4096);
        file.write_at(Rc::new(buffer), sample * 4096).await?;
        let started = Instant::now();
        file.fdatasync().await?;
        let micros = started.elapsed().as_micros().max(1) as u64;
        histogram.record(micros).map_err(io::Error::other)?;
    }
    Ok([
        histogram.value_at_quantile(0.5) as f64,
        histogram.value_at_quantile(0.99) as f64,
        histogram.value_at_quantile(0.999) as f64,
        histogram.max() as f64,
    ])
}

fn crc32c_speed() -> f64 {
    let data: Vec<u8> = (0..64 << 20).map(|i: u32| (i % 253) as u8).collect();
    let rounds = 8;
    let started = Instant::now();
    let mut crc = 0;
    for _ in 0..rounds {
        crc = crc32c::crc32c_append(crc, std::hint::black_box(&data));
    }
    std::hint::black_box(crc);
    mib_per_s(rounds * data.len() as u64, started.elapsed().as_secs_f64())
}

fn memcpy_speed() -> f64 {
    let source = vec![7_u8; 256 << 20];
    let mut target = vec![0_u8; 256 << 20];
    let rounds = 4;
    let started = Instant::now();
    for _ in 0..rounds {
        target.copy_from_slice(std::hint::black_box(&source));
        std::hint::black_box(&target);
    }
    mib_per_s(
        rounds * source.len() as u64,
        started.elapsed().as_secs_f64(),
    )
}
