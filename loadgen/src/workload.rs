//! A workload: what to run, from command-line flags and/or a TOML file (`--workload FILE`,
//! the same names as the flags with `_` for `-`; flags given on the command line win).
//!
//! ```toml
//! topic = "orders"
//! partitions = 8
//! rate_mb = 50          # or: rate = 50000 (messages per second)
//! message_size = 1024
//! duration = "60s"
//! warmup = "10s"
//! producers = 4
//! consumers = 1
//! acks = "all"
//! compression = "lz4"
//! keys = "zipf"
//! key_count = 10000
//! seed = 7
//! ```

use crate::keys::{Keys, MAX_KEY_COUNT};
use crate::run::{RunConfig, MAX_PRODUCERS};
use serde::Deserialize;
use spate_model::Compression;
use std::path::PathBuf;
use std::time::Duration;

/// The highest rate accepted, in messages per second.
pub const MAX_RATE: f64 = 10_000_000.0;
/// Record bytes per batch by default: under Kafka's default `max.message.bytes` (1 MiB).
pub const DEFAULT_BATCH_BYTES: usize = 1_000_000;
/// The most partitions a run may create.
pub const MAX_PARTITIONS: i32 = 10_000;

/// The workload settings, each optional (the flags, or a file's keys).
#[derive(Debug, Default, Clone, clap::Args)]
pub struct Workload {
    /// The topic to produce to; with --topics N, the prefix of the topics' names
    /// (<topic>-0 … <topic>-N-1) [default: spate-loadgen].
    #[arg(long)]
    pub topic: Option<String>,
    /// Topics, each with --partitions partitions, --producers producers and --consumers
    /// consumers; the rate is shared by all (1-1000) [default: 1].
    #[arg(long)]
    pub topics: Option<u32>,
    /// Messages per second, over all producers; 0 for as fast as possible [default: 1000].
    #[arg(long, conflicts_with = "rate_mb")]
    pub rate: Option<f64>,
    /// Megabytes (10^6 bytes of message values) per second, instead of --rate (0 for as fast
    /// as possible).
    #[arg(long)]
    pub rate_mb: Option<f64>,
    /// Bytes per message value: a size (1024) or a range drawn uniformly (100-2000)
    /// [default: 1024].
    #[arg(long)]
    pub message_size: Option<SizeRange>,
    /// Cut message values from this file's bytes [default: random bytes from --seed].
    #[arg(long, value_name = "FILE")]
    pub payload_file: Option<PathBuf>,
    /// Idempotent producers (InitProducerId and sequence numbers, as
    /// enable.idempotence=true).
    #[arg(long)]
    pub idempotent: bool,
    /// Run time, e.g. 30s, 500ms or 2m [default: 10s].
    #[arg(long, value_parser = parse_duration)]
    pub duration: Option<Duration>,
    /// Initial part left out of the histograms [default: 0s].
    #[arg(long, value_parser = parse_duration)]
    pub warmup: Option<Duration>,
    /// How long a due message may wait for more to join its request, like a producer's
    /// linger.ms (at most 10s) [default: 0ms].
    #[arg(long, value_parser = parse_duration)]
    pub linger: Option<Duration>,
    /// all (-1), 1 or 0 [default: all].
    #[arg(long, value_parser = parse_acks)]
    pub acks: Option<i16>,
    /// Producers per topic, each on its own connections with an equal share of the rate
    /// (1-1000) [default: 1].
    #[arg(long)]
    pub producers: Option<u32>,
    /// Consumers per topic reading the run back for end-to-end latency, each on its own
    /// connections with a share of the partitions (0-1000; at most one per partition)
    /// [default: 1].
    #[arg(long)]
    pub consumers: Option<u32>,
    /// Create the topic with this many partitions (1-10000; an existing topic must have as
    /// many) [default: the topic as the broker has or auto-creates it].
    #[arg(long)]
    pub partitions: Option<i32>,
    /// Batch compression: none, gzip, snappy, lz4 or zstd [default: none].
    #[arg(long, value_parser = parse_compression)]
    pub compression: Option<Compression>,
    /// Record bytes per batch at most, like a producer's batch.size (1 KiB - 16 MiB)
    /// [default: 1000000, under Kafka's default max.message.bytes].
    #[arg(long)]
    pub batch_size: Option<usize>,
    /// Record keys: none (round-robin over the partitions), random, round-robin or zipf;
    /// keyed records go where Kafka's default partitioner (murmur2) puts them [default: none].
    #[arg(long)]
    pub keys: Option<Keys>,
    /// Distinct keys (1-10000000) [default: 1000].
    #[arg(long)]
    pub key_count: Option<u64>,
    /// Seed of the random key draws: the same seed draws the same keys [default: 1].
    #[arg(long)]
    pub seed: Option<u64>,
    /// A workload file (TOML) with any of these settings; flags given too win.
    #[arg(long, value_name = "FILE")]
    pub workload: Option<PathBuf>,
}

/// Message sizes: `min..=max` bytes (equal for a fixed size).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SizeRange(pub usize, pub usize);

impl std::str::FromStr for SizeRange {
    type Err = String;

    /// `1024` or `100-2000`.
    fn from_str(text: &str) -> Result<SizeRange, String> {
        let number = |t: &str| {
            t.trim().parse::<usize>().map_err(|_| {
                format!("message size {text:?}: a byte count or a range like 100-2000")
            })
        };
        let range = match text.split_once('-') {
            Some((low, high)) => SizeRange(number(low)?, number(high)?),
            None => {
                let size = number(text)?;
                SizeRange(size, size)
            }
        };
        if range.0 > range.1 {
            return Err(format!("message size {text:?}: the range is backwards"));
        }
        if range.1 > MAX_MESSAGE_BYTES {
            return Err(format!(
                "message size {text:?}: at most {MAX_MESSAGE_BYTES} bytes"
            ));
        }
        Ok(range)
    }
}

/// The largest message value.
pub const MAX_MESSAGE_BYTES: usize = 16 << 20;

/// A workload file: the flags' names, durations and enums as strings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct WorkloadFile {
    topic: Option<String>,
    topics: Option<u32>,
    rate: Option<f64>,
    rate_mb: Option<f64>,
    message_size: Option<toml::Value>,
    payload_file: Option<PathBuf>,
    idempotent: Option<bool>,
    duration: Option<String>,
    warmup: Option<String>,
    linger: Option<String>,
    acks: Option<String>,
    producers: Option<u32>,
    consumers: Option<u32>,
    partitions: Option<i32>,
    compression: Option<String>,
    batch_size: Option<usize>,
    keys: Option<String>,
    key_count: Option<u64>,
    seed: Option<u64>,
}

impl WorkloadFile {
    fn parse(text: &str) -> Result<Workload, String> {
        let file: WorkloadFile = toml::from_str(text).map_err(|e| e.to_string())?;
        let named = |name: &str, e: String| format!("{name}: {e}");
        Ok(Workload {
            topic: file.topic,
            topics: file.topics,
            rate: file.rate,
            rate_mb: file.rate_mb,
            message_size: file
                .message_size
                .map(|size| match size {
                    toml::Value::Integer(n) => usize::try_from(n)
                        .map_err(|_| format!("{n} is not a size"))
                        .and_then(|n| n.to_string().parse()),
                    toml::Value::String(text) => text.parse(),
                    other => Err(format!("{other:?} is not a size")),
                })
                .transpose()
                .map_err(|e| named("message_size", e))?,
            payload_file: file.payload_file,
            idempotent: file.idempotent.unwrap_or(false),
            duration: file
                .duration
                .map(|d| parse_duration(&d))
                .transpose()
                .map_err(|e| named("duration", e))?,
            warmup: file
                .warmup
                .map(|d| parse_duration(&d))
                .transpose()
                .map_err(|e| named("warmup", e))?,
            linger: file
                .linger
                .map(|d| parse_duration(&d))
                .transpose()
                .map_err(|e| named("linger", e))?,
            acks: file
                .acks
                .map(|a| parse_acks(&a))
                .transpose()
                .map_err(|e| named("acks", e))?,
            producers: file.producers,
            consumers: file.consumers,
            partitions: file.partitions,
            compression: file
                .compression
                .map(|c| parse_compression(&c))
                .transpose()
                .map_err(|e| named("compression", e))?,
            batch_size: file.batch_size,
            keys: file
                .keys
                .map(|k| k.parse())
                .transpose()
                .map_err(|e| named("keys", e))?,
            key_count: file.key_count,
            seed: file.seed,
            workload: None,
        })
    }
}

impl Workload {
    /// The run these settings describe, against `bootstrap`: the file's settings (if any)
    /// under the flags, then the defaults; every limit checked.
    pub fn resolve(self, bootstrap: &str, live: bool) -> Result<RunConfig, String> {
        let file = match &self.workload {
            Some(path) => {
                let text = std::fs::read_to_string(path)
                    .map_err(|e| format!("cannot read {}: {e}", path.display()))?;
                WorkloadFile::parse(&text).map_err(|e| format!("{}: {e}", path.display()))?
            }
            None => Workload::default(),
        };
        // A rate on the command line replaces the file's, in either unit.
        let (rate, rate_mb) = if self.rate.is_some() || self.rate_mb.is_some() {
            (self.rate, self.rate_mb)
        } else {
            (file.rate, file.rate_mb)
        };
        if rate.is_some() && rate_mb.is_some() {
            return Err("give rate or rate_mb, not both".into());
        }
        let SizeRange(message_bytes, message_bytes_max) = self
            .message_size
            .or(file.message_size)
            .unwrap_or(SizeRange(1024, 1024));
        let mean_bytes = (message_bytes + message_bytes_max) as f64 / 2.0;
        let rate = match (rate, rate_mb) {
            (_, Some(mb)) => mb * 1e6 / mean_bytes.max(1.0),
            (Some(rate), None) => rate,
            (None, None) => 1000.0,
        };
        if !(0.0..=MAX_RATE).contains(&rate) {
            return Err(format!(
                "the rate must be 0 (as fast as possible) to {MAX_RATE} messages per second"
            ));
        }
        let linger = self.linger.or(file.linger).unwrap_or(Duration::ZERO);
        if linger > Duration::from_secs(10) {
            return Err("linger must be at most 10s".into());
        }
        let duration = self
            .duration
            .or(file.duration)
            .unwrap_or(Duration::from_secs(10));
        let warmup = self.warmup.or(file.warmup).unwrap_or(Duration::ZERO);
        if duration.is_zero() {
            return Err("duration must be above 0".into());
        }
        if warmup >= duration {
            return Err("warmup must be shorter than duration".into());
        }
        let topics = self.topics.or(file.topics).unwrap_or(1);
        if !(1..=MAX_PRODUCERS).contains(&topics) {
            return Err(format!("topics must be 1-{MAX_PRODUCERS}"));
        }
        let producers = self.producers.or(file.producers).unwrap_or(1);
        if !(1..=MAX_PRODUCERS).contains(&producers) {
            return Err(format!("producers must be 1-{MAX_PRODUCERS}"));
        }
        if u64::from(producers) * u64::from(topics) > 10 * u64::from(MAX_PRODUCERS) {
            return Err(format!(
                "producers × topics must be at most {}",
                10 * MAX_PRODUCERS
            ));
        }
        let consumers = self.consumers.or(file.consumers).unwrap_or(1);
        if consumers > MAX_PRODUCERS {
            return Err(format!("consumers must be 0-{MAX_PRODUCERS}"));
        }
        let partitions = self.partitions.or(file.partitions);
        if partitions.is_some_and(|p| !(1..=MAX_PARTITIONS).contains(&p)) {
            return Err(format!("partitions must be 1-{MAX_PARTITIONS}"));
        }
        let batch_bytes = self
            .batch_size
            .or(file.batch_size)
            .unwrap_or(DEFAULT_BATCH_BYTES);
        if !(1024..=16 << 20).contains(&batch_bytes) {
            return Err("batch_size must be 1 KiB - 16 MiB".into());
        }
        let key_count = self.key_count.or(file.key_count).unwrap_or(1000);
        if !(1..=MAX_KEY_COUNT).contains(&key_count) {
            return Err(format!("key_count must be 1-{MAX_KEY_COUNT}"));
        }
        Ok(RunConfig {
            bootstrap: bootstrap.to_string(),
            topic: self
                .topic
                .or(file.topic)
                .unwrap_or_else(|| "spate-loadgen".into()),
            topics,
            rate,
            linger,
            message_bytes,
            message_bytes_max,
            payload_file: self.payload_file.or(file.payload_file),
            idempotent: self.idempotent || file.idempotent,
            duration,
            warmup,
            acks: self.acks.or(file.acks).unwrap_or(-1),
            producers,
            consumers,
            partitions,
            compression: self
                .compression
                .or(file.compression)
                .unwrap_or(Compression::None),
            batch_bytes,
            keys: self.keys.or(file.keys).unwrap_or(Keys::None),
            key_count,
            seed: self.seed.or(file.seed).unwrap_or(1),
            live,
        })
    }
}

/// A duration such as `30s`, `500ms` or `2m` (at most a day).
pub fn parse_duration(text: &str) -> Result<Duration, String> {
    let (number, unit) = match text.find(|c: char| c.is_ascii_alphabetic()) {
        Some(at) => text.split_at(at),
        None => return Err(format!("{text:?}: give a unit (ms, s, m)")),
    };
    let value: f64 = number
        .parse()
        .map_err(|_| format!("{text:?} is not a duration"))?;
    let seconds = match unit {
        "ms" => value / 1000.0,
        "s" => value,
        "m" => value * 60.0,
        other => return Err(format!("unknown unit {other:?} (ms, s, m)")),
    };
    if !(0.0..=86_400.0).contains(&seconds) {
        return Err(format!("{text:?} is out of range"));
    }
    Ok(Duration::from_secs_f64(seconds))
}

/// A codec name.
pub fn parse_compression(text: &str) -> Result<Compression, String> {
    match text {
        "none" => Ok(Compression::None),
        "gzip" => Ok(Compression::Gzip),
        "snappy" => Ok(Compression::Snappy),
        "lz4" => Ok(Compression::Lz4),
        "zstd" => Ok(Compression::Zstd),
        other => Err(format!(
            "compression {other:?}: none, gzip, snappy, lz4 or zstd"
        )),
    }
}

/// `all`, `-1`, `1` or `0`.
pub fn parse_acks(text: &str) -> Result<i16, String> {
    match text {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        other => Err(format!("acks {other:?}: all, 1 or 0")),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_are_a_count_or_a_range() {
        assert_eq!("1024".parse(), Ok(SizeRange(1024, 1024)));
        assert_eq!("100-2000".parse(), Ok(SizeRange(100, 2000)));
        for bad in ["", "big", "2000-100", "1-99999999999", "-5"] {
            assert!(bad.parse::<SizeRange>().is_err(), "{bad}");
        }
    }

    #[test]
    fn files_fill_in_what_flags_leave_out() {
        let dir = std::env::temp_dir().join(format!("loadgen-workload-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let path = dir.join("w.toml");
        std::fs::write(
            &path,
            "topic = \"orders\"\nrate_mb = 2\nmessage_size = 1000\nduration = \"30s\"\n\
             warmup = \"5s\"\nproducers = 4\nacks = \"1\"\ncompression = \"lz4\"\n\
             keys = \"zipf\"\nkey_count = 77\n",
        )
        .expect("write");
        let flags = Workload {
            workload: Some(path.clone()),
            producers: Some(2),
            ..Workload::default()
        };
        let config = flags.resolve("b:9092", false).expect("valid");
        assert_eq!(config.topic, "orders");
        assert_eq!(config.rate, 2000.0, "2 MB/s of 1000-byte messages");
        assert_eq!(config.duration, Duration::from_secs(30));
        assert_eq!(config.warmup, Duration::from_secs(5));
        assert_eq!(config.producers, 2, "the flag wins");
        assert_eq!(config.acks, 1);
        assert_eq!(config.compression, Compression::Lz4);
        assert_eq!((config.keys, config.key_count), (Keys::Zipf, 77));
        assert_eq!((config.consumers, config.seed), (1, 1), "defaults");

        // A rate flag replaces the file's rate_mb.
        let flags = Workload {
            workload: Some(path.clone()),
            rate: Some(10.0),
            ..Workload::default()
        };
        assert_eq!(flags.resolve("b:9092", false).expect("valid").rate, 10.0);

        // Mistakes are named.
        for (text, expected) in [
            ("ratee = 5\n", "unknown field"),
            ("duration = \"5 parsecs\"\n", "duration"),
            ("rate = 5\nrate_mb = 1\n", "not both"),
            ("producers = 0\n", "producers must be"),
            (
                "duration = \"1s\"\nwarmup = \"2s\"\n",
                "warmup must be shorter",
            ),
        ] {
            std::fs::write(&path, text).expect("write");
            let flags = Workload {
                workload: Some(path.clone()),
                ..Workload::default()
            };
            let error = flags.resolve("b:9092", false).expect_err(text);
            assert!(error.contains(expected), "{text:?}: {error}");
        }
        let missing = Workload {
            workload: Some(dir.join("absent.toml")),
            ..Workload::default()
        };
        assert!(missing
            .resolve("b:9092", false)
            .is_err_and(|e| e.contains("cannot read")));
        std::fs::remove_dir_all(&dir).ok();
    }
}
