//! The `spate-loadgen` command line.

use clap::{Parser, Subcommand};
use spate_loadgen::capacity::{self, Plan, Slo};
use spate_loadgen::run::RunResult;
use spate_loadgen::workload::{parse_duration, Workload};
use spate_loadgen::{plot, report, RunConfig};
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

/// Where to write results besides the summary table.
#[derive(Debug, Clone, clap::Args)]
struct Outputs {
    /// Also write the result as JSON here.
    #[arg(long, value_name = "FILE")]
    json: Option<PathBuf>,
    /// Also write each latency histogram as PREFIX-<name>.hgrm (HdrHistogram's
    /// percentile-distribution format, milliseconds).
    #[arg(long, value_name = "PREFIX")]
    hgrm: Option<String>,
    /// Also write SVG charts as PREFIX-<chart>.svg.
    #[arg(long, value_name = "PREFIX")]
    svg: Option<String>,
    /// Also write an HTML report with the charts here.
    #[arg(long, value_name = "FILE")]
    html: Option<PathBuf>,
    /// No progress line every second.
    #[arg(long)]
    quiet: bool,
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
    ///   spate-loadgen run --bootstrap 127.0.0.1:9092 --partitions 8 --producers 4 --rate-mb 50 --keys zipf --key-count 10000 --json result.json --html result.html
    ///
    ///   spate-loadgen run --bootstrap 127.0.0.1:9092 --workload orders.toml --duration 2m
    Run {
        /// A broker to start from (host:port).
        #[arg(long)]
        bootstrap: String,
        #[command(flatten)]
        workload: Workload,
        #[command(flatten)]
        outputs: Outputs,
        /// Executors (threads) the producers and consumers are spread over (1-256).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
        cores: u32,
    },
    /// Step the rate up until a latency objective breaks or the broker falls behind, and
    /// name the highest rate that met every objective.
    ///
    /// Each step runs the workload for --step-duration at its rate; a step fails when a
    /// publish-latency objective is exceeded, fewer than 95% of the target rate is
    /// achieved, or any message fails.
    ///
    /// Example:
    ///
    ///   spate-loadgen capacity --bootstrap 127.0.0.1:9092 --partitions 8 --message-size 1024 --start-rate 10000 --step-factor 1.5 --step-duration 20s --warmup 5s --slo p99=10ms --slo p99.9=50ms --html capacity.html
    Capacity {
        /// A broker to start from (host:port).
        #[arg(long)]
        bootstrap: String,
        #[command(flatten)]
        workload: Workload,
        /// The first step's rate (messages per second).
        #[arg(long, default_value_t = 1000.0)]
        start_rate: f64,
        /// Each step's rate is the previous one's times this (above 1).
        #[arg(long, default_value_t = 1.5)]
        step_factor: f64,
        /// How long each step runs, its warm-up included.
        #[arg(long, default_value = "10s", value_parser = parse_duration)]
        step_duration: Duration,
        /// Steps at most (1-50).
        #[arg(long, default_value_t = 20, value_parser = clap::value_parser!(u32).range(1..=50))]
        max_steps: u32,
        /// A publish-latency objective, e.g. p99=10ms (repeatable; p50 … p99.99, max).
        #[arg(long = "slo", required = true)]
        slos: Vec<Slo>,
        /// Also write every step as JSON here.
        #[arg(long, value_name = "FILE")]
        json: Option<PathBuf>,
        /// Also write the latency-against-throughput chart (SVG) here.
        #[arg(long, value_name = "FILE")]
        svg: Option<PathBuf>,
        /// Also write an HTML report with the chart here.
        #[arg(long, value_name = "FILE")]
        html: Option<PathBuf>,
        /// No progress line every second.
        #[arg(long)]
        quiet: bool,
        /// Executors (threads) the producers and consumers are spread over (1-256).
        #[arg(long, default_value_t = 1, value_parser = clap::value_parser!(u32).range(1..=256))]
        cores: u32,
    },
}

fn write(path: &std::path::Path, contents: &str) -> Result<(), String> {
    std::fs::write(path, contents).map_err(|e| format!("cannot write {}: {e}", path.display()))
}

/// Writes the run's outputs other than the table.
fn write_outputs(config: &RunConfig, result: &RunResult, outputs: &Outputs) -> Result<(), String> {
    if let Some(path) = &outputs.json {
        let document =
            serde_json::to_string_pretty(&report::json(config, result)).unwrap_or_default();
        write(path, &document)?;
    }
    if let Some(prefix) = &outputs.hgrm {
        let mut histograms = vec![
            ("publish", &result.publish_latency),
            ("service", &result.service_time),
        ];
        if let Some(e2e) = &result.e2e_latency {
            histograms.push(("e2e", e2e));
        }
        for (name, histogram) in histograms {
            write(
                std::path::Path::new(&format!("{prefix}-{name}.hgrm")),
                &report::hgrm(histogram),
            )?;
        }
    }
    if let Some(prefix) = &outputs.svg {
        for (name, svg) in [
            ("latency", plot::latency_by_percentile(result)),
            ("throughput", plot::throughput_over_time(result)),
            ("latency-over-time", plot::latency_over_time(result)),
        ] {
            write(std::path::Path::new(&format!("{prefix}-{name}.svg")), &svg)?;
        }
    }
    if let Some(path) = &outputs.html {
        write(path, &plot::html(config, result))?;
    }
    Ok(())
}

/// Why a command failed: its exit code (2 for a usage mistake, 1 otherwise) and message.
struct Failure(u8, String);

impl From<String> for Failure {
    fn from(message: String) -> Failure {
        Failure(1, message)
    }
}

fn usage(message: String) -> Failure {
    Failure(2, message)
}

fn run_command(
    bootstrap: String,
    workload: Workload,
    outputs: Outputs,
    cores: u32,
) -> Result<bool, Failure> {
    let config = workload
        .resolve(&bootstrap, !outputs.quiet)
        .map_err(usage)?;
    let result = spate_loadgen::run::run_on_cores(&config, cores)?;
    print!("{}", report::table(&config, &result));
    write_outputs(&config, &result, &outputs)?;
    if let Some(reason) = &result.aborted {
        eprintln!("spate-loadgen: the run ended early: {reason} (the results so far are written)");
        return Ok(false);
    }
    Ok(true)
}

/// The capacity command's settings besides the workload.
struct CapacityOutputs {
    cores: u32,
    json: Option<PathBuf>,
    svg: Option<PathBuf>,
    html: Option<PathBuf>,
}

fn capacity_command(
    config: RunConfig,
    plan: Plan,
    outputs: CapacityOutputs,
) -> Result<bool, Failure> {
    if !(plan.step_factor > 1.0 && plan.step_factor <= 100.0) {
        return Err(usage(
            "--step-factor must be above 1 and at most 100".into(),
        ));
    }
    if !(plan.start_rate > 0.0 && plan.start_rate <= spate_loadgen::workload::MAX_RATE) {
        return Err(usage(
            "--start-rate must be above 0 and at most 10000000".into(),
        ));
    }
    let steps = capacity::capacity(&config, &plan, outputs.cores)?;
    println!(
        "{:>12} {:>12} {:>10} {:>10} {:>10}  verdict",
        "target/s", "achieved/s", "p50 µs", "p99 µs", "p99.9 µs"
    );
    for step in &steps {
        println!(
            "{:>12.0} {:>12.0} {:>10} {:>10} {:>10}  {}",
            step.target,
            step.achieved,
            capacity::percentile(&step.result, "p50"),
            capacity::percentile(&step.result, "p99"),
            capacity::percentile(&step.result, "p99.9"),
            step.failed.as_deref().unwrap_or("ok")
        );
    }
    let highest = capacity::highest_passing(&steps);
    match highest {
        Some(rate) => println!(
            "highest rate meeting every objective: {rate:.0} msgs/s ({:.2} MB/s)",
            rate * config.mean_message_bytes() / 1e6
        ),
        None => println!("no step met every objective"),
    }
    if let Some(path) = &outputs.json {
        let document = report::capacity_json(&config, &plan, &steps, highest);
        write(
            path,
            &serde_json::to_string_pretty(&document).unwrap_or_default(),
        )?;
    }
    if let Some(path) = &outputs.svg {
        write(path, &plot::capacity_chart(&steps))?;
    }
    if let Some(path) = &outputs.html {
        write(path, &plot::capacity_html(&config, &steps, highest))?;
    }
    Ok(highest.is_some())
}

fn main() -> ExitCode {
    let outcome = match Cli::parse().command {
        Command::Run {
            bootstrap,
            workload,
            outputs,
            cores,
        } => run_command(bootstrap, workload, outputs, cores),
        Command::Capacity {
            bootstrap,
            workload,
            start_rate,
            step_factor,
            step_duration,
            max_steps,
            slos,
            json,
            svg,
            html,
            quiet,
            cores,
        } => {
            // The workload's duration is the step's.
            let workload = Workload {
                duration: Some(step_duration),
                ..workload
            };
            workload
                .resolve(&bootstrap, !quiet)
                .map_err(usage)
                .and_then(|config| {
                    let plan = Plan {
                        start_rate,
                        step_factor,
                        step_duration,
                        slos,
                        max_steps,
                    };
                    capacity_command(
                        config,
                        plan,
                        CapacityOutputs {
                            cores,
                            json,
                            svg,
                            html,
                        },
                    )
                })
        }
    };
    match outcome {
        Ok(true) => ExitCode::SUCCESS,
        Ok(false) => ExitCode::FAILURE,
        Err(Failure(code, message)) => {
            eprintln!("spate-loadgen: {message}");
            ExitCode::from(code)
        }
    }
}
