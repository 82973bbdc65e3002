//! The `spate` command: `spate` or `spate start` runs the broker.

use clap::{Parser, Subcommand};
use spate_broker::admin::{self, Admin};
use spate_broker::api::Broker;
use spate_broker::cli;
use spate_broker::config::{Config, LogFormat, StartArgs};
use spate_broker::controller::Controller;
use spate_broker::groups::{self, GroupTimes, Groups};
use spate_broker::metadata_log::MetadataLog;
use spate_broker::runtime::mesh::{self, Inbox, Mesh};
use spate_broker::runtime::{self, Listener};
use spate_broker::server::{self, Activity};
use spate_broker::topics::{Catalog, ShardLogs};
use spate_storage::budget::Budget;
use spate_storage::disk::glommio::GlommioDisk;
use spate_storage::LogConfig;
use std::net::SocketAddr;
use std::process::ExitCode;
use std::rc::Rc;
use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
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
    #[command(flatten)]
    Operator(cli::Operator),
}

/// Appended data a shard holds while it waits for a flush, over all its partitions.
const WRITE_BEHIND_BYTES: usize = 256 * 1024 * 1024;
/// Calls waiting in a shard's inbox before callers wait.
const MESH_CAPACITY: usize = 1024;

/// How long shutdown waits for in-flight requests.
const DRAIN_TIMEOUT: Duration = Duration::from_secs(10);
/// How often a shard looks at the shared start-up and shutdown state.
const POLL: Duration = Duration::from_millis(5);

fn main() -> ExitCode {
    let cli = Cli::parse();
    let args = match cli.command {
        Some(Command::Start(args)) => args,
        Some(Command::Operator(command)) => return cli::run(command),
        None => cli.start,
    };
    let config = match args.validate() {
        Ok(config) => config,
        Err(e) => {
            eprintln!("spate: {e}");
            return ExitCode::from(2);
        }
    };
    let logs = tracing_subscriber::fmt()
        .with_target(false)
        .with_max_level(config.log_level)
        .with_writer(std::io::stderr);
    match config.log_format {
        LogFormat::Json => logs.json().init(),
        LogFormat::Text => logs
            .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
            .init(),
    }
    let stop = Arc::new(AtomicBool::new(false));
    for signal in [signal_hook::consts::SIGINT, signal_hook::consts::SIGTERM] {
        if let Err(e) = signal_hook::flag::register(signal, stop.clone()) {
            eprintln!("spate: cannot install the signal handler: {e}");
            return ExitCode::FAILURE;
        }
    }
    match run(config, stop) {
        Ok(()) => ExitCode::SUCCESS,
        Err(message) => {
            eprintln!("spate: {message}");
            ExitCode::FAILURE
        }
    }
}

/// What the shards share while they start and stop.
struct Lifecycle {
    shards: usize,
    /// Set by SIGINT/SIGTERM, or when a shard fails.
    stop: Arc<AtomicBool>,
    failed: AtomicBool,
    /// The first failure's message.
    failure: Mutex<Option<String>>,
    /// Shards whose direct-I/O probe is done (they probe one after another: the probe file
    /// is shared).
    probed: AtomicUsize,
    /// Shard 0 replayed the metadata log into the catalog.
    catalog_loaded: AtomicBool,
    /// Shards with their logs open.
    opened: AtomicUsize,
    /// The address shard 0 bound; the others bind the same one (SO_REUSEPORT).
    bound: Mutex<Option<SocketAddr>>,
    listening: AtomicUsize,
    /// Shards that finished their in-flight requests.
    drained: AtomicUsize,
}

impl Lifecycle {
    /// Waits until `ready()`; fails if another shard failed meanwhile.
    async fn wait_for(&self, ready: impl Fn() -> bool) -> Result<(), String> {
        while !ready() {
            if self.failed.load(Ordering::Acquire) {
                return Err("another shard failed to start".to_string());
            }
            runtime::sleep(POLL).await;
        }
        Ok(())
    }

    /// Records a failure (the first one is what the broker reports) and stops every shard.
    fn fail(&self, message: String) {
        self.failure
            .lock()
            .unwrap_or_else(PoisonError::into_inner)
            .get_or_insert(message);
        self.failed.store(true, Ordering::Release);
        self.stop.store(true, Ordering::Release);
    }

    fn count(counter: &AtomicUsize) -> usize {
        counter.load(Ordering::Acquire)
    }
}

/// Starts one shard per core and waits for all of them to stop.
fn run(config: Config, stop: Arc<AtomicBool>) -> Result<(), String> {
    let data_dir = config.data_dir.clone();
    std::fs::create_dir_all(&data_dir)
        .map_err(|e| format!("data directory {} is not usable: {e}", data_dir.display()))?;
    let catalog = Arc::new(Catalog::new(config.cores));
    let (mesh, inboxes) = mesh::mesh::<Broker>(config.cores, MESH_CAPACITY);
    let life = Arc::new(Lifecycle {
        shards: config.cores,
        stop,
        failed: AtomicBool::new(false),
        failure: Mutex::new(None),
        probed: AtomicUsize::new(0),
        catalog_loaded: AtomicBool::new(false),
        opened: AtomicUsize::new(0),
        bound: Mutex::new(None),
        listening: AtomicUsize::new(0),
        drained: AtomicUsize::new(0),
    });
    let mut shards = Vec::with_capacity(config.cores);
    for (index, inbox) in inboxes.into_iter().enumerate() {
        let (config, catalog, mesh, shard_life) =
            (config.clone(), catalog.clone(), mesh.clone(), life.clone());
        let started = runtime::start_shard(&format!("spate-shard-{index}"), None, move || {
            shard(index, config, catalog, mesh, inbox, shard_life)
        });
        match started {
            Ok(handle) => shards.push(handle),
            Err(e) => {
                life.fail(format!("cannot start shard {index}: {e}"));
                break;
            }
        }
    }
    drop(mesh);
    for handle in shards {
        match handle.join() {
            Ok(Ok(())) => {}
            Ok(Err(message)) => life.fail(message),
            Err(e) => life.fail(format!("a shard failed: {e}")),
        }
    }
    let failure = life
        .failure
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .take();
    match failure {
        None => {
            tracing::info!("stopped cleanly");
            Ok(())
        }
        Some(message) => Err(message),
    }
}

/// One shard, from start-up to shutdown; a failure stops the other shards too.
async fn shard(
    index: usize,
    config: Config,
    catalog: Arc<Catalog>,
    mesh: Mesh<Broker>,
    inbox: Inbox<Broker>,
    life: Arc<Lifecycle>,
) -> Result<(), String> {
    let outcome = run_shard(index, config, catalog, mesh, inbox, life.clone()).await;
    if let Err(message) = &outcome {
        life.fail(message.clone());
    }
    outcome
}

async fn run_shard(
    index: usize,
    config: Config,
    catalog: Arc<Catalog>,
    mesh: Mesh<Broker>,
    inbox: Inbox<Broker>,
    life: Arc<Lifecycle>,
) -> Result<(), String> {
    let data_dir = &config.data_dir;
    // Shard 0 serves the admin listener from the start: /health answers while the
    // partitions recover, /ready once clients are served.
    let admin = match config.admin_listen.filter(|_| index == 0) {
        Some(address) => {
            let listener = Listener::bind_exclusive(address)
                .map_err(|e| format!("cannot listen on {address} (admin): {e}"))?;
            let bound = listener.local_addr().map_err(|e| e.to_string())?;
            let ready_life = life.clone();
            let admin = Admin::new(Box::new(move || {
                Lifecycle::count(&ready_life.listening) == ready_life.shards
                    && !ready_life.stop.load(Ordering::Acquire)
            }));
            runtime::spawn_detached(admin::serve(listener, admin.clone()));
            Some((admin, bound))
        }
        None => None,
    };
    life.wait_for(|| Lifecycle::count(&life.probed) == index)
        .await?;
    let disk = GlommioDisk::new(data_dir)
        .await
        .map_err(|e| format!("data directory {} is not usable: {e}", data_dir.display()))?;
    life.probed.fetch_add(1, Ordering::AcqRel);
    // Shard 0 owns the metadata log; the others wait for the topics it describes.
    let metadata_log = if index == 0 {
        let replayed = MetadataLog::open(disk.clone(), data_dir)
            .await
            .map_err(|e| {
                format!(
                    "cannot read the metadata log in {}: {e}",
                    data_dir.display()
                )
            })?;
        catalog.install(replayed.topics);
        life.catalog_loaded.store(true, Ordering::Release);
        Some((replayed.log, replayed.next_producer_id))
    } else {
        life.wait_for(|| life.catalog_loaded.load(Ordering::Acquire))
            .await?;
        None
    };
    // The shard's memory budgets, shared by all its logs.
    let log_config = LogConfig {
        tail_cache: Some(Budget::new(config.tail_cache_bytes)),
        write_budget: Some(Budget::new(WRITE_BEHIND_BYTES)),
        recycle_segments: config.recycle_segments,
        ..LogConfig::default()
    };
    let logs = ShardLogs::new(disk, data_dir, log_config);
    let owned = logs
        .open_owned(&catalog.snapshot(), index)
        .await
        .map_err(|e| format!("cannot open the topics in {}: {e}", data_dir.display()))?;
    tracing::debug!(
        shard = index,
        partitions = owned,
        "shard opened its partitions"
    );
    life.opened.fetch_add(1, Ordering::AcqRel);
    life.wait_for(|| Lifecycle::count(&life.opened) == life.shards)
        .await?;

    // Shard 0 binds first (so port 0 picks one port), then the others bind the same address.
    let listener = if index == 0 {
        if config.listen.port() != 0 {
            // The shards' listeners share the port (SO_REUSEPORT), and so would another
            // broker's: a plain bind first makes sure nobody else is listening there.
            std::net::TcpListener::bind(config.listen)
                .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        }
        let listener = Listener::bind(config.listen)
            .map_err(|e| format!("cannot listen on {}: {e}", config.listen))?;
        let bound = listener.local_addr().map_err(|e| e.to_string())?;
        *life.bound.lock().unwrap_or_else(PoisonError::into_inner) = Some(bound);
        listener
    } else {
        let bound = || *life.bound.lock().unwrap_or_else(PoisonError::into_inner);
        life.wait_for(|| bound().is_some()).await?;
        let address = bound().unwrap_or(config.listen);
        Listener::bind(address).map_err(|e| format!("cannot listen on {address}: {e}"))?
    };
    let bound = listener.local_addr().map_err(|e| e.to_string())?;
    let mut advertised = config.advertised.clone();
    if advertised.1 == 0 {
        // Listening on port 0 (tests): tell clients the port the kernel chose.
        advertised.1 = bound.port();
    }
    let broker = Rc::new(Broker {
        node_id: config.node_id,
        advertised: advertised.clone(),
        shard: index,
        mesh,
        topics: catalog.clone(),
        logs,
        controller: metadata_log.map(|(log, next)| Controller::new(log, next)),
        producers: Default::default(),
        transactions: Default::default(),
        producer_ids: Default::default(),
        groups: Groups::new(GroupTimes {
            initial_delay: config.group_initial_rebalance_delay,
            offsets_retention: config.offsets_retention,
            consumer_session: config.group_consumer_session_timeout,
            consumer_heartbeat: config.group_consumer_heartbeat_interval,
        }),
        data_dir: data_dir.clone(),
        request_budget: Budget::new(server::MAX_INFLIGHT_REQUEST_BYTES),
        auto_create_topics: config.auto_create_topics,
        num_partitions: config.num_partitions,
        metrics: Default::default(),
        slow_request: config.slow_request,
    });
    spate_broker::producers::restore(&broker)
        .await
        .map_err(|e| format!("cannot rebuild the idempotent producers' state: {e}"))?;
    let groups = groups::restore(&broker)
        .await
        .map_err(|e| format!("cannot read the committed offsets: {e}"))?;
    tracing::debug!(shard = index, groups, "shard restored its consumer groups");
    let transactional_ids = spate_broker::transactions::restore(&broker)
        .await
        .map_err(|e| format!("cannot read the transaction state: {e}"))?;
    tracing::debug!(
        shard = index,
        transactional_ids,
        "shard restored its transaction coordinator"
    );
    runtime::spawn_detached(inbox.serve(broker.clone()));
    runtime::spawn_detached(groups::expire_sessions(broker.clone()));
    runtime::spawn_detached(spate_broker::transactions::check_timeouts(broker.clone()));
    runtime::spawn_detached(spate_broker::metrics::sample(broker.clone()));
    if let Some((admin, _)) = &admin {
        admin.started(broker.clone(), bound.to_string());
    }
    life.listening.fetch_add(1, Ordering::AcqRel);
    if index == 0 {
        life.wait_for(|| Lifecycle::count(&life.listening) == life.shards)
            .await?;
        groups::create_offsets_topic(&broker)
            .await
            .map_err(|e| format!("cannot create {}: {e}", groups::OFFSETS_TOPIC))?;
        spate_broker::transactions::create_state_topic(&broker)
            .await
            .map_err(|e| {
                let topic = spate_broker::transactions::STATE_TOPIC;
                format!("cannot create {topic}: {e}")
            })?;
        let admin = admin
            .as_ref()
            .map_or("off".to_string(), |(_, a)| format!("http://{a}"));
        println!(
            "spate {} listening on {bound} (advertised {}:{}), {} shard{}, node {}, data {} ({} topics), admin {admin}",
            env!("CARGO_PKG_VERSION"),
            advertised.0,
            advertised.1,
            life.shards,
            if life.shards == 1 { "" } else { "s" },
            config.node_id,
            data_dir.display(),
            catalog.names().len(),
        );
    }

    let activity = Rc::new(Activity::default());
    runtime::spawn_background(spate_broker::maintenance::run(broker.clone()));
    let serving = server::serve(broker.clone(), listener, activity.clone());
    let stopping = async {
        while !life.stop.load(Ordering::Acquire) {
            runtime::sleep(Duration::from_millis(50)).await;
        }
    };
    futures_lite::future::or(serving, stopping).await;
    if index == 0 {
        tracing::info!("shutting down: finishing in-flight requests");
    }
    // Every shard finishes its requests (which may call other shards) before any closes
    // its logs.
    let drain_started = Instant::now();
    while activity.requests.get() > 0 && drain_started.elapsed() < DRAIN_TIMEOUT {
        runtime::sleep(Duration::from_millis(10)).await;
    }
    life.drained.fetch_add(1, Ordering::AcqRel);
    while Lifecycle::count(&life.drained) < life.shards && drain_started.elapsed() < DRAIN_TIMEOUT {
        runtime::sleep(Duration::from_millis(10)).await;
    }
    spate_broker::producers::save_changed(&broker).await;
    broker
        .logs
        .close_all()
        .await
        .map_err(|e| format!("flushing on shutdown: {e}"))
}
