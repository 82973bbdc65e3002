//! The `spate-loadgen` command line.

use clap::{Parser, Subcommand};
use spate_loadgen::keys::Keys;
use spate_loadgen::{report, run, RunConfig};
use spate_model::Compression;
use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Duration;

#[derive(Parser)]
#[command(
    name = "spate-loadgen",
    version,
    about = "Open-loop Kafka load generator with HDR latency histograms"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Produce at a fixed rate and report publish latency from each message's intended send
    /// time, beside the service time.
    ///
    /// Examples:
    ///
    ///   spate-loadgen run --bootstrap 127.0.0.1:9092 --topic load --rate 10000 --message-size 1024 --duration 30s --warmup 5s
    ///
    ///   spate-loadgen run --bootstrap 127.0.0.1:9092 --partitions 8 --producers 4 --rate-mb 50 --keys zipf --key-count 10000 --json result.json
    Run {
        /// A broker to start from (host:port).
        #[arg(long)]
        bootstrap: String,
        /// The topic to produce to.
        #[arg(long, default_value = "spate-loadgen")]
        topic: String,
        /// Messages per second, over all producers [default: 1000].
        #[arg(long, conflicts_with = "rate_mb")]
        rate: Option<f64>,
        /// Megabytes (10^6 bytes of message values) per second, instead of --rate.
        #[arg(long)]
        rate_mb: Option<f64>,
        /// Producers, each on its own connection with an equal share of the rate (1-1000).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=1000))]
        producers: u32,
        /// Bytes per message.
        #[arg(long, default_value_t = 1024)]
        message_size: usize,
        /// Run time, e.g. 30s or 500ms.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        duration: Duration,
        /// Initial part left out of the histograms.
        #[arg(long, default_value = "0s", value_parser = parse_duration)]
        warmup: Duration,
        /// all (-1), 1 or 0.
        #[arg(long, default_value = "all", value_parser = parse_acks)]
        acks: i16,
        /// Consumers reading the run back for end-to-end latency (0 or 1).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(0..=1))]
        consumers: u32,
        /// Create the topic with this many partitions (1-10000; an existing topic must have
        /// as many) [default: the topic as the broker has or auto-creates it].
        #[arg(long, value_parser = clap::value_parser!(i32).range(1..=10_000))]
        partitions: Option<i32>,
        /// Batch compression: none, gzip, snappy, lz4 or zstd.
        #[arg(long, default_value = "none", value_parser = parse_compression)]
        compression: Compression,
        /// Record keys: none (round-robin over the partitions), random, round-robin or zipf;
        /// keyed records go where Kafka's default partitioner (murmur2) puts them.
        #[arg(long, default_value = "none")]
        keys: Keys,
        /// Distinct keys (1-10000000).
        #[arg(long, default_value_t = 1000, value_parser = clap::value_parser!(u64).range(1..=10_000_000))]
        key_count: u64,
        /// Seed of the random key draws: the same seed draws the same keys.
        #[arg(long, default_value_t = 1)]
        seed: u64,
        /// No progress line every second.
        #[arg(long)]
        quiet: bool,
        /// Also write the result as JSON here.
        #[arg(long)]
        json: Option<PathBuf>,
        /// Also write each latency histogram as PREFIX-<name>.hgrm (HdrHistogram's
        /// percentile-distribution format, milliseconds).
        #[arg(long, value_name = "PREFIX")]
        hgrm: Option<String>,
    },
}

fn parse_duration(text: &str) -> Result<Duration, String> {
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

fn parse_compression(text: &str) -> Result<Compression, String> {
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

fn parse_acks(text: &str) -> Result<i16, String> {
    match text {
        "all" | "-1" => Ok(-1),
        "1" => Ok(1),
        "0" => Ok(0),
        other => Err(format!("acks {other:?}: all, 1 or 0")),
    }
}

fn main() -> ExitCode {
    let Command::Run {
        bootstrap,
        topic,
        rate,
        rate_mb,
        producers,
        message_size,
        duration,
        warmup,
        acks,
        consumers,
        partitions,
        compression,
        keys,
        key_count,
        seed,
        quiet,
        json,
        hgrm,
    } = Cli::parse().command;
    let rate = match (rate, rate_mb) {
        (_, Some(mb)) => mb * 1e6 / message_size.max(1) as f64,
        (Some(rate), None) => rate,
        (None, None) => 1000.0,
    };
    if !(rate > 0.0 && rate <= 10_000_000.0) {
        eprintln!("spate-loadgen: the rate must be between 0 and 10000000 messages per second");
        return ExitCode::from(2);
    }
    if warmup >= duration {
        eprintln!("spate-loadgen: --warmup must be shorter than --duration");
        return ExitCode::from(2);
    }
    let config = RunConfig {
        bootstrap,
        topic,
        rate,
        message_bytes: message_size,
        duration,
        warmup,
        acks,
        producers,
        consumers,
        partitions,
        compression,
        keys,
        key_count,
        seed,
        live: !quiet,
    };
    let shared = config.clone();
    let outcome = glommio::LocalExecutorBuilder::new(glommio::Placement::Unbound)
        .name("spate-loadgen")
        .spawn(move || async move { run(&shared).await })
        .and_then(|handle| handle.join());
    let result = match outcome {
        Ok(Ok(result)) => result,
        Ok(Err(e)) => {
            eprintln!("spate-loadgen: {e}");
            return ExitCode::FAILURE;
        }
        Err(e) => {
            eprintln!("spate-loadgen: executor: {e}");
            return ExitCode::FAILURE;
        }
    };
    print!("{}", report::table(&config, &result));
    if let Some(reason) = &result.aborted {
        eprintln!("spate-loadgen: the run ended early: {reason} (the results so far are written)");
    }
    if let Some(path) = json {
        let document =
            serde_json::to_string_pretty(&report::json(&config, &result)).unwrap_or_default();
        if let Err(e) = std::fs::write(&path, document) {
            eprintln!("spate-loadgen: cannot write {}: {e}", path.display());
            return ExitCode::FAILURE;
        }
    }
    if let Some(prefix) = hgrm {
        let mut histograms = vec![
            ("publish", &result.publish_latency),
            ("service", &result.service_time),
        ];
        if let Some(e2e) = &result.e2e_latency {
            histograms.push(("e2e", e2e));
        }
        for (name, histogram) in histograms {
            let path = format!("{prefix}-{name}.hgrm");
            if let Err(e) = std::fs::write(&path, report::hgrm(histogram)) {
                eprintln!("spate-loadgen: cannot write {path}: {e}");
                return ExitCode::FAILURE;
            }
        }
    }
    if result.aborted.is_some() {
        return ExitCode::FAILURE;
    }
    ExitCode::SUCCESS
}
