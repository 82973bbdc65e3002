//! The `spate` command: `spate` or `spate start` runs the broker.

use clap::{Parser, Subcommand};
use spate_broker::api::Broker;
use spate_broker::config::{Config, StartArgs};
use spate_broker::runtime::{self, Listener};
use spate_broker::server::{self, Activity};
use spate_broker::topics::Topics;
use spate_storage::budget::Budget;
use spate_storage::disk::glommio::GlommioDisk;
use spate_storage::LogConfig;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

#[derive(Parser)]
#[command(
    name = "spate",
    version,
    about = "Spate: a Kafka-compatible event streaming broker",
    args_conflicts_with_subcommands = true
)]
struct Cli {
    #[command(subcommand)]
    command: Option<Command>,
    #[command(flatten)]
    start: StartArgs,
}

#[derive(Subcommand)]
enum Command {
    /// Run the broker (the default).
    ///
    /// Example: spate start --listen 127.0.0.1:9092 --data-dir /var/lib/spate
    Start(StartArgs),
}

/// Written log data a shard keeps in memory for readers near the end of their partitions.
const TAIL_CACHE_BYTES: usize = 64 * 1024 * 1024;
/// Appended data a shard holds while it waits for a flush, over all its partitions.
const WRITE_BEHIND_BYTES: usize = 256 * 1024 * 1024;

/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Start(args)) => args,
        None => cli.start,
    };
    let ansi = std::io::IsTerminal::is_terminal(&std::io::stderr());
    tracing_subscriber::fmt()
        .with_target(false)
        .with_ansi(ansi)
        .with_writer(std::io::stderr)
        .init();
    let config = match args.validate() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("spate: {e}");
            return ExitCode::from(2);
        }
    };
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            eprintln!("spate: cannot install the signal handler: {e}");
            return ExitCode::FAILURE;
        }
    }
    let result = runtime::run_shard("spate-shard-0", None, move || run(config, stop));
    match result {
        Ok(Ok(())) => ExitCode::SUCCESS,
        Ok(Err(message)) => {
            eprintln!("spate: {message}");
            ExitCode::FAILURE
        }
        Err(error) => {
            eprintln!("spate: the shard failed: {error}");
            ExitCode::FAILURE
        }
    }
}

async fn run(config: Config, stop: Arc<AtomicBool>) -> Result<(), String> {
    let data_dir = &config.data_dir;
    let disk = GlommioDisk::new(data_dir)
        .await
        .map_err(|e| format!("data directory {} is not usable: {e}", data_dir.display()))?;
    let listener = Listener::bind(config.listen)
        .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
    // The shard's memory budgets, shared by all its logs.
    let log_config = LogConfig {
        tail_cache: Some(Budget::new(TAIL_CACHE_BYTES)),
        write_budget: Some(Budget::new(WRITE_BEHIND_BYTES)),
        ..LogConfig::default()
    };
    let topics = Topics::open(disk, data_dir, log_config)
        .await
        .map_err(|e| format!("cannot open the topics in {}: {e}", data_dir.display()))?;
    let topic_count = topics.names().len();
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let mut advertised = config.advertised.clone();
    if advertised.1 == 0 {
        // Listening on port 0 (tests): tell clients the port the kernel chose.
        advertised.1 = bound.port();
    }
    let broker = Rc::new(Broker {
        node_id: config.node_id,
        advertised: advertised.clone(),
        topics,
        data_dir: data_dir.clone(),
        request_budget: spate_storage::budget::Budget::new(server::MAX_INFLIGHT_REQUEST_BYTES),
        auto_create_topics: config.auto_create_topics,
        num_partitions: config.num_partitions,
    });
    println!(
        "spate {} listening on {bound} (advertised {}:{}), {} shard, node {}, data {} ({topic_count} topics)",
        env!("CARGO_PKG_VERSION"),
        advertised.0,
        advertised.1,
        config.cores,
        config.node_id,
        data_dir.display()
    );
    let activity = Rc::new(Activity::default());
    runtime::spawn_detached(spate_broker::maintenance::run(broker.clone()));
    let serving = server::serve(broker.clone(), listener, activity.clone());
    let stopping = async {
        while !stop.load(Ordering::Relaxed) {
            runtime::sleep(Duration::from_millis(50)).await;
        }
    };
    futures_lite::future::or(serving, stopping).await;
    tracing::info!("shutting down: finishing in-flight requests");
    let drain_started = Instant::now();
    while activity.requests.get() > 0 && drain_started.elapsed() < DRAIN_TIMEOUT {
        runtime::sleep(Duration::from_millis(10)).await;
    }
    broker
        .topics
        .close_all()
        .await
        .map_err(|e| format!("flushing on shutdown: {e}"))?;
    tracing::info!("stopped cleanly");
    Ok(())
}
