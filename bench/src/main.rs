//! The `spate-bench` command line.

use clap::{Parser, Subcommand};
use spate_bench::limits::{self, LimitsConfig};
use spate_bench::report::Report;
use spate_bench::storage::{self, StorageConfig};
use spate_storage::disk::glommio::{run_executor, GlommioDisk};
use std::path::{Path, PathBuf};
use std::process::ExitCode;

/// Registered I/O memory for the bench's executor (locked memory is scarce: `ulimit -l`).
const IO_MEMORY_BYTES: usize = 4 << 20;
/// The loopback TCP probe sends at most this much, for at most this long.
const LOOPBACK_BYTES: u64 = 16 << 30;
const LOOPBACK_TIME: std::time::Duration = std::time::Duration::from_secs(3);

#[derive(Parser)]
#[command(
    name = "spate-bench",
    version,
    about = "Spate benchmarks: physical limits and scenarios, as ratios to the limits"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Raw O_DIRECT write/read bandwidth and fdatasync latency in DIR, CRC32C and memcpy
    /// speed, loopback TCP bandwidth between two executors.
    ///
    /// Example: spate-bench limits --dir /var/lib/spate --runs 3 --json limits.json
    Limits(Common),
    /// Durable append throughput and latency (group commit) and sequential reads of the log,
    /// each beside the limits measured in the same run.
    ///
    /// Example: spate-bench storage --dir /var/lib/spate --runs 3 --json storage.json
    Storage(Common),
    /// Named scenarios against a broker (produce-max, produce-latency, keyed,
    /// partitions-scale), each beside the limits measured in the same run. Without
    /// --bootstrap, a Spate broker is started for each run in a temporary directory under
    /// --dir.
    ///
    /// Examples:
    ///
    ///   spate-bench scenarios --dir /var/lib/spate --runs 3 --json scenarios.json
    ///
    ///   spate-bench scenarios --bootstrap kafka-1:9092 --dir /var/lib/kafka --scenario produce-max,keyed
    Scenarios(ScenarioArgs),
}

#[derive(clap::Args, Clone)]
struct ScenarioArgs {
    /// The broker to measure (host:port) [default: a Spate broker started here].
    #[arg(long)]
    bootstrap: Option<String>,
    /// The `spate` binary to start [default: the one beside this binary].
    #[arg(long)]
    spate: Option<PathBuf>,
    /// Shards of the started broker.
    #[arg(long, default_value_t = 2)]
    shards: u32,
    /// Scenarios to run, comma-separated (produce-max always runs: the others are relative
    /// to it).
    #[arg(
        long,
        value_delimiter = ',',
        default_value = "produce-max,produce-latency,keyed,partitions-scale,catch-up,connections-scale"
    )]
    scenario: Vec<String>,
    /// How long each load runs, its warm-up included.
    #[arg(long, default_value = "10s", value_parser = spate_loadgen::workload::parse_duration)]
    duration: std::time::Duration,
    /// The first part of each load, left out of the latency figures.
    #[arg(long, default_value = "2s", value_parser = spate_loadgen::workload::parse_duration)]
    warmup: std::time::Duration,
    /// Executors of the load generator.
    #[arg(long, default_value_t = 1)]
    loadgen_cores: u32,
    /// Partition counts of partitions-scale, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
    partition_counts: Vec<i32>,
    /// Another Kafka-compatible broker to run the same scenarios against, interleaved with
    /// Spate in each run (repeatable): NAME=HOST:PORT. Its figures are named peer.NAME.*;
    /// its produce-max and catch-up are compared with Spate's.
    #[arg(long = "peer", value_name = "NAME=HOST:PORT")]
    peers: Vec<String>,
    /// Producer counts of connections-scale, comma-separated.
    #[arg(long, value_delimiter = ',', default_value = "1,10,100,1000")]
    connection_counts: Vec<u32>,
    #[command(flatten)]
    common: Common,
}

#[derive(clap::Args, Clone)]
struct Common {
    /// Directory on the device to measure (a temporary directory is created inside it).
    #[arg(long, default_value = ".")]
    dir: PathBuf,
    /// Repetitions; figures are medians.
    #[arg(long, default_value_t = 3)]
    runs: usize,
    /// MiB written per probe / per scenario.
    #[arg(long, default_value_t = 512)]
    mib: u64,
    /// Concurrent producers per partition in the storage scenario (each appends a 16 KiB
    /// batch and waits until it is durable), one series per count. 128 keeps 2 MiB in
    /// flight per partition, what the raw write probe keeps (8 writes of 256 KiB).
    #[arg(long, value_delimiter = ',', default_value = "16,128")]
    producers: Vec<usize>,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
    /// Also write the figures as a markdown report here.
    #[arg(long)]
    markdown: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    let (common, outcome) = match &cli.command {
        Command::Limits(common) => (common.clone(), run(common, false, command_line)),
        Command::Storage(common) => (common.clone(), run(common, true, command_line)),
        Command::Scenarios(args) => (args.common.clone(), run_scenarios(args, command_line)),
    };
    match outcome {
        Ok(report) => {
            print!("{}", report.table());
            let json = serde_json::to_string_pretty(&report).expect("figures serialise");
            let mut markdown = report.markdown();
            let mut outputs = vec![(common.json.clone(), json)];
            if let Some(path) = &common.markdown {
                // Each chart beside the report, named after it, and linked from it.
                let stem = path
                    .file_stem()
                    .map_or("report".into(), |s| s.to_string_lossy().into_owned());
                for (suffix, title, svg) in report.charts() {
                    let file = format!("{stem}-{suffix}.svg");
                    markdown.push_str(&format!("\n![{title}]({file})\n"));
                    outputs.push((Some(path.with_file_name(&file)), svg));
                }
            }
            outputs.push((common.markdown.clone(), markdown));
            for (path, contents) in outputs {
                let Some(path) = path else { continue };
                if let Err(e) = std::fs::write(&path, contents) {
                    eprintln!("spate-bench: cannot write {}: {e}", path.display());
                    return ExitCode::FAILURE;
                }
            }
            ExitCode::SUCCESS
        }
        Err(e) => {
            eprintln!("spate-bench: {e}");
            ExitCode::FAILURE
        }
    }
}

/// Checks the common settings and makes the temporary work directory and an empty report.
fn begin(common: &Common, command: String) -> Result<(PathBuf, Report), String> {
    if common.runs == 0 || common.mib == 0 {
        return Err("--runs and --mib must be at least 1".into());
    }
    let work = common
        .dir
        .join(format!("spate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let report = Report {
        command,
        machine: machine(),
        figures: Vec::new(),
    };
    Ok((work, report))
}

fn run(common: &Common, with_storage: bool, command: String) -> Result<Report, String> {
    let (work, mut report) = begin(common, command)?;
    let result =
        (0..common.runs).try_for_each(|run| one_run(&work, common, with_storage, run, &mut report));
    let _ = std::fs::remove_dir_all(&work);
    result?;
    if with_storage {
        for partitions in [1, 8] {
            for &producers in &common.producers {
                // Fresh segments against writes into fresh extents, recycled ones against
                // overwrites.
                for (series, limit) in [
                    ("", "limit.disk.write"),
                    (".recycled", "limit.disk.overwrite"),
                ] {
                    report.compare(
                        &format!("storage.append.{partitions}p.{producers}w{series}.throughput"),
                        limit,
                    );
                }
            }
        }
        report.compare("storage.read.throughput", "limit.disk.read_same_file");
    }
    report.finish();
    Ok(report)
}

/// A Spate broker started for a run.
struct Started {
    child: std::process::Child,
    address: String,
}

impl Drop for Started {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// Starts `spate` on `data_dir` with `shards` shards (its log in `log`) and waits for its
/// address.
fn start_spate(binary: &Path, data_dir: &Path, shards: u32, log: &Path) -> Result<Started, String> {
    use std::io::BufRead;
    let log_file =
        std::fs::File::create(log).map_err(|e| format!("cannot create {}: {e}", log.display()))?;
    let mut child = std::process::Command::new(binary)
        .args([
            "start",
            "--listen",
            "127.0.0.1:0",
            "--admin-listen",
            "off",
            "--cores",
        ])
        .arg(shards.to_string())
        .arg("--data-dir")
        .arg(data_dir)
        .stdout(std::process::Stdio::piped())
        .stderr(log_file)
        .spawn()
        .map_err(|e| format!("cannot start {}: {e}", binary.display()))?;
    let mut line = String::new();
    let stdout = child.stdout.as_mut().ok_or("no stdout")?;
    std::io::BufReader::new(stdout)
        .read_line(&mut line)
        .map_err(|e| format!("{} did not start: {e}", binary.display()))?;
    let address = line
        .split_whitespace()
        .skip_while(|word| *word != "on")
        .nth(1)
        .map(str::to_string);
    match address {
        Some(address) => Ok(Started { child, address }),
        None => {
            let _ = child.kill();
            Err(format!("{} did not start: {line:?}", binary.display()))
        }
    }
}

/// The resident set of process `pid` (MiB).
fn rss_mib(pid: u32) -> Option<f64> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).ok()?;
    let kib: f64 = status
        .lines()
        .find(|l| l.starts_with("VmRSS:"))?
        .split_whitespace()
        .nth(1)?
        .parse()
        .ok()?;
    Some(kib / 1024.0)
}

fn run_scenarios(args: &ScenarioArgs, command: String) -> Result<Report, String> {
    use spate_bench::scenarios::{self, ScenarioConfig, SCENARIOS};
    let common = &args.common;
    if let Some(unknown) = args
        .scenario
        .iter()
        .find(|s| !SCENARIOS.contains(&s.as_str()))
    {
        return Err(format!(
            "unknown scenario {unknown:?} (known: {})",
            SCENARIOS.join(", ")
        ));
    }
    if args.warmup >= args.duration {
        return Err("--warmup must be shorter than --duration".into());
    }
    if args
        .partition_counts
        .iter()
        .any(|c| !(1..=10_000).contains(c))
    {
        return Err("--partition-counts must each be 1-10000".into());
    }
    if args
        .connection_counts
        .iter()
        .any(|c| !(1..=1000).contains(c))
    {
        return Err("--connection-counts must each be 1-1000".into());
    }
    let binary = match &args.spate {
        Some(path) => path.clone(),
        None => std::env::current_exe()
            .map_err(|e| e.to_string())?
            .with_file_name("spate"),
    };
    let (work, mut report) = begin(common, command)?;
    let mut config = ScenarioConfig {
        bootstrap: String::new(),
        pid: None,
        duration: args.duration,
        warmup: args.warmup,
        cores: args.loadgen_cores.max(1),
        partition_counts: args.partition_counts.clone(),
        connection_counts: args.connection_counts.clone(),
        prefix: String::new(),
    };
    let mut peers = Vec::new();
    for peer in &args.peers {
        match peer.split_once('=') {
            Some((name, address)) if !name.is_empty() && !address.is_empty() => {
                peers.push((name.to_string(), address.to_string()));
            }
            _ => return Err(format!("--peer {peer:?}: write it as NAME=HOST:PORT")),
        }
    }
    let result = (0..common.runs).try_for_each(|run| {
        one_run(&work, common, false, run, &mut report)?;
        let p99 = report
            .figures
            .iter()
            .find(|f| f.name == "limit.fdatasync.p99")
            .and_then(|f| f.runs.last().copied())
            .unwrap_or(0.0);
        report.record("limit.fdatasync.p99x2", "us", 2.0 * p99);
        let broker = match &args.bootstrap {
            Some(address) => {
                config.bootstrap = address.clone();
                None
            }
            None => {
                let data = work.join(format!("broker-{run}"));
                let log = work.join(format!("broker-{run}.log"));
                let started = start_spate(&binary, &data, args.shards, &log)?;
                config.bootstrap = started.address.clone();
                config.pid = Some(started.child.id());
                std::thread::sleep(std::time::Duration::from_secs(1));
                if let Some(idle) = rss_mib(started.child.id()) {
                    report.record("broker.idle_rss", "MiB", idle);
                }
                Some(started)
            }
        };
        let mut outcome =
            scenarios::run_once(&mut report, &config, &args.scenario, run).map_err(|error| {
                // What the started broker logged as going wrong, to say why.
                let log = std::fs::read_to_string(work.join(format!("broker-{run}.log")))
                    .unwrap_or_default();
                // A panic first (it ends the broker), then errors, then warnings.
                let lines: Vec<&str> = log.lines().collect();
                let mut problems: Vec<&str> = lines
                    .iter()
                    .enumerate()
                    .filter(|(_, l)| l.contains("panicked at"))
                    .flat_map(|(i, _)| lines[i..(i + 2).min(lines.len())].iter().copied())
                    .take(4)
                    .collect();
                for level in ["ERROR", "WARN"] {
                    problems.extend(lines.iter().filter(|l| l.contains(level)).take(3));
                }
                if problems.is_empty() {
                    error
                } else {
                    format!("{error}\nthe broker logged:\n{}", problems.join("\n"))
                }
            });
        // The peers, interleaved: Spate, then each peer, in every run.
        for (name, address) in &peers {
            if outcome.is_err() {
                break;
            }
            let peer = ScenarioConfig {
                bootstrap: address.clone(),
                pid: None,
                prefix: format!("peer.{name}."),
                ..config.clone()
            };
            outcome = scenarios::run_once(&mut report, &peer, &args.scenario, run)
                .map_err(|error| format!("peer {name}: {error}"));
        }
        // Each run writes gigabytes: the started broker's data goes before the next run.
        if broker.is_some() {
            drop(broker);
            let _ = std::fs::remove_dir_all(work.join(format!("broker-{run}")));
        }
        outcome
    });
    let _ = std::fs::remove_dir_all(&work);
    result?;
    scenarios::compare(&mut report, &config);
    for (name, _) in &peers {
        let peer = ScenarioConfig {
            prefix: format!("peer.{name}."),
            ..config.clone()
        };
        scenarios::compare(&mut report, &peer);
    }
    report.finish();
    Ok(report)
}

fn one_run(
    work: &Path,
    common: &Common,
    with_storage: bool,
    run: usize,
    report: &mut Report,
) -> Result<(), String> {
    let dir = work.join(format!("run-{run}"));
    let mib = common.mib;
    let producer_counts: Vec<usize> = common.producers.iter().map(|&p| p.max(1)).collect();
    let figures = run_executor("spate-bench", IO_MEMORY_BYTES, move || async move {
        let disk = GlommioDisk::new(&dir).await.map_err(|e| e.to_string())?;
        let config = LimitsConfig {
            bytes: mib << 20,
            ..LimitsConfig::default()
        };
        let limits = limits::measure(&disk, &dir, config)
            .await
            .map_err(|e| e.to_string())?;
        let mut storage_figures = Vec::new();
        if with_storage {
            let series = [1, 8].into_iter().flat_map(|p| {
                let counts = producer_counts.clone();
                counts
                    .into_iter()
                    .flat_map(move |w| [(p, w, false), (p, w, true)])
            });
            for (partitions, producers, recycled) in series {
                let scenario = StorageConfig {
                    bytes: mib << 20,
                    producers_per_partition: producers,
                    ..StorageConfig::default()
                };
                let data = dir.join(format!("{partitions}p-{producers}w-{recycled}"));
                let append = storage::append(&disk, &data, partitions, scenario, recycled)
                    .await
                    .map_err(|e| e.to_string())?;
                let first = producers == producer_counts[0];
                let read = if partitions == 1 && first && !recycled {
                    Some(
                        storage::read(&disk, &data)
                            .await
                            .map_err(|e| e.to_string())?,
                    )
                } else {
                    None
                };
                storage_figures.push((partitions, producers, recycled, append, read));
                std::fs::remove_dir_all(&data).map_err(|e| e.to_string())?;
            }
        }
        Ok::<_, String>((limits, storage_figures))
    })
    .map_err(|e| format!("executor: {e}"))??;
    let (limits, storage_figures) = figures;
    report.record("limit.disk.write", "MiB/s", limits.write_mib_s);
    report.record("limit.disk.overwrite", "MiB/s", limits.overwrite_mib_s);
    report.record(
        "limit.disk.write_durable_1MiB_rounds",
        "MiB/s",
        limits.durable_rounds_mib_s,
    );
    report.record(
        "limit.disk.write_durable_1MiB_rounds_fresh",
        "MiB/s",
        limits.durable_rounds_fresh_mib_s,
    );
    report.record(
        "limit.disk.write_durable_1MiB_rounds_fresh_pipelined",
        "MiB/s",
        limits.durable_rounds_fresh_pipelined_mib_s,
    );
    report.record("limit.disk.read", "MiB/s", limits.read_mib_s);
    for (name, value) in ["p50", "p99", "p999", "max"].iter().zip(limits.fsync_us) {
        report.record(&format!("limit.fdatasync.{name}"), "us", value);
    }
    report.record("limit.crc32c", "MiB/s", limits.crc32c_mib_s);
    report.record("limit.memcpy", "MiB/s", limits.memcpy_mib_s);
    let loopback = spate_loadgen::probe::loopback_tcp(LOOPBACK_BYTES, LOOPBACK_TIME)?;
    report.record("limit.loopback_tcp", "MiB/s", loopback);
    // What a catch-up read can reach: the disk or the network, whichever is slower.
    report.record(
        "limit.catch_up_ceiling",
        "MiB/s",
        loopback.min(limits.read_mib_s),
    );
    for (partitions, producers, recycled, append, read) in storage_figures {
        let series = if recycled { ".recycled" } else { "" };
        let prefix = format!("storage.append.{partitions}p.{producers}w{series}");
        report.record(
            &format!("{prefix}.throughput"),
            "MiB/s",
            append.throughput_mib_s,
        );
        for (name, value) in ["p50", "p99", "p999", "max"].iter().zip(append.latency_us) {
            report.record(&format!("{prefix}.latency.{name}"), "us", value);
        }
        report.record(
            &format!("{prefix}.batches_per_fdatasync"),
            "batches",
            append.batches_per_flush,
        );
        report.record(
            &format!("{prefix}.fdatasync_mean"),
            "us",
            append.sync_mean_us,
        );
        if let Some(read) = read {
            report.record("storage.read.throughput", "MiB/s", read.log_mib_s);
            report.record(
                "limit.disk.read_same_file",
                "MiB/s",
                read.raw_same_file_mib_s,
            );
        }
    }
    Ok(())
}

fn machine() -> String {
    let cpu = std::fs::read_to_string("/proc/cpuinfo")
        .ok()
        .and_then(|text| {
            text.lines()
                .find(|l| l.starts_with("model name"))
                .map(|l| l.split(':').nth(1).unwrap_or("").trim().to_string())
        })
        .unwrap_or_default();
    let cores = std::thread::available_parallelism().map_or(0, |n| n.get());
    format!("{cores} cores, {cpu}")
}
