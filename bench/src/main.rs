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
    /// Raw O_DIRECT write/read bandwidth and fdatasync latency in DIR, CRC32C and memcpy speed.
    ///
    /// Example: spate-bench limits --dir /var/lib/spate --runs 3 --json limits.json
    Limits(Common),
    /// Durable append throughput and latency (group commit) and sequential reads of the log,
    /// each beside the limits measured in the same run.
    ///
    /// Example: spate-bench storage --dir /var/lib/spate --runs 3 --json storage.json
    Storage(Common),
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
    /// batch and waits until it is durable).
    #[arg(long, default_value_t = 16)]
    producers: usize,
    /// Also write the figures as JSON here.
    #[arg(long)]
    json: Option<PathBuf>,
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let command_line = std::env::args().collect::<Vec<_>>().join(" ");
    let (common, with_storage) = match &cli.command {
        Command::Limits(common) => (common.clone(), false),
        Command::Storage(common) => (common.clone(), true),
    };
    match run(&common, with_storage, command_line) {
        Ok(report) => {
            print!("{}", report.table());
            if let Some(path) = &common.json {
                let json = serde_json::to_string_pretty(&report).expect("figures serialise");
                if let Err(e) = std::fs::write(path, json) {
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

fn run(common: &Common, with_storage: bool, command: String) -> Result<Report, String> {
    if common.runs == 0 || common.mib == 0 {
        return Err("--runs and --mib must be at least 1".into());
    }
    let work = common
        .dir
        .join(format!("spate-bench-{}", std::process::id()));
    std::fs::create_dir_all(&work).map_err(|e| format!("cannot create {}: {e}", work.display()))?;
    let mut report = Report {
        command,
        machine: machine(),
        figures: Vec::new(),
    };
    let result =
        (0..common.runs).try_for_each(|run| one_run(&work, common, with_storage, run, &mut report));
    let _ = std::fs::remove_dir_all(&work);
    result?;
    if with_storage {
        for partitions in [1, 8] {
            report.compare(
                &format!("storage.append.{partitions}p.throughput"),
                "limit.disk.write",
            );
        }
        report.compare("storage.read.throughput", "limit.disk.read");
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
    let producers = common.producers.max(1);
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
            let scenario = StorageConfig {
                bytes: mib << 20,
                producers_per_partition: producers,
                ..StorageConfig::default()
            };
            for partitions in [1, 8] {
                let data = dir.join(format!("{partitions}p"));
                let append = storage::append(&disk, &data, partitions, scenario)
                    .await
                    .map_err(|e| e.to_string())?;
                let read = if partitions == 1 {
                    Some(
                        storage::read(&disk, &data)
                            .await
                            .map_err(|e| e.to_string())?,
                    )
                } else {
                    None
                };
                storage_figures.push((partitions, append, read));
            }
        }
        Ok::<_, String>((limits, storage_figures))
    })
    .map_err(|e| format!("executor: {e}"))??;
    let (limits, storage_figures) = figures;
    report.record("limit.disk.write", "MiB/s", limits.write_mib_s);
    report.record(
        "limit.disk.write_durable_1MiB_rounds",
        "MiB/s",
        limits.durable_rounds_mib_s,
    );
    report.record("limit.disk.read", "MiB/s", limits.read_mib_s);
    for (name, value) in ["p50", "p99", "p999", "max"].iter().zip(limits.fsync_us) {
        report.record(&format!("limit.fdatasync.{name}"), "us", value);
    }
    report.record("limit.crc32c", "MiB/s", limits.crc32c_mib_s);
    report.record("limit.memcpy", "MiB/s", limits.memcpy_mib_s);
    for (partitions, append, read) in storage_figures {
        let prefix = format!("storage.append.{partitions}p");
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
        if let Some(read) = read {
            report.record("storage.read.throughput", "MiB/s", read);
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
