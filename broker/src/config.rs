//! The broker's configuration, from (highest precedence first) command-line flags, `SPATE_*`
//! environment variables, a TOML file (`--config FILE`), and the embedded defaults: listen on
//! 127.0.0.1:9092, data in `./data`, node id 0.
//!
//! The file uses the flags' names with underscores:
//!
//! ```toml
//! listen = "0.0.0.0:9092"
//! advertised_listener = "kafka-1.example:9092"
//! data_dir = "/var/lib/spate"
//! node_id = 1
//! auto_create_topics = false
//! num_partitions = 3
//! admin_listen = "127.0.0.1:9644"   # or "off"
//! slow_request_ms = 1000
//! recycle_segments = 2
//! tail_cache_mib = 64
//! log_level = "info"
//! log_format = "json"
//! ```
//!
//! An unknown key, a value of the wrong type or out of range is refused with a message that
//! names it.

use clap::Parser;
use serde::Deserialize;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::{Path, PathBuf};

const DEFAULT_LISTEN: &str = "127.0.0.1:9092";
const DEFAULT_DATA_DIR: &str = "./data";
const DEFAULT_ADMIN_LISTEN: &str = "127.0.0.1:9644";
const DEFAULT_SLOW_REQUEST_MS: u64 = 1_000;
/// The longest slow-request threshold accepted.
const MAX_SLOW_REQUEST_MS: u64 = 3_600_000;
/// Removed segment files kept per partition for reuse, by default.
const DEFAULT_RECYCLE_SEGMENTS: usize = 2;
/// The most removed segment files kept per partition.
const MAX_RECYCLE_SEGMENTS: usize = 16;
/// Each shard's cache of recently written data, by default (MiB).
const DEFAULT_TAIL_CACHE_MIB: usize = 64;
/// The largest tail cache accepted per shard (MiB).
const MAX_TAIL_CACHE_MIB: usize = 65_536;
/// The longest offsets retention accepted.
const MAX_OFFSETS_RETENTION_MINUTES: u64 = 5_256_000;
/// The longest initial rebalance delay accepted.
const MAX_INITIAL_REBALANCE_DELAY_MS: u64 = 300_000;
/// The most shards a broker runs.
pub const MAX_SHARDS: usize = 256;

/// `spate start` options. Every flag can also come from its `SPATE_*` variable.
#[derive(Debug, Clone, Default, Parser)]
pub struct StartArgs {
    /// A TOML file with any of the settings below (flags and variables override it).
    #[arg(long, env = "SPATE_CONFIG")]
    pub config: Option<PathBuf>,
    /// Address to accept Kafka clients on [default: 127.0.0.1:9092].
    #[arg(long, env = "SPATE_LISTEN")]
    pub listen: Option<String>,
    /// host:port clients are told to connect to [default: the listen address].
    #[arg(long, env = "SPATE_ADVERTISED_LISTENER")]
    pub advertised_listener: Option<String>,
    /// Directory holding the partitions' logs and the topic metadata [default: ./data].
    #[arg(long, env = "SPATE_DATA_DIR")]
    pub data_dir: Option<PathBuf>,
    /// Shards: one executor per core, each owning some partitions [default: the number of
    /// CPUs this process may use].
    #[arg(long, env = "SPATE_CORES")]
    pub cores: Option<usize>,
    /// This broker's node id [default: 0].
    #[arg(long, env = "SPATE_NODE_ID")]
    pub node_id: Option<i32>,
    /// Create topics a client asks Metadata about (`auto.create.topics.enable`) [default: true].
    #[arg(long, env = "SPATE_AUTO_CREATE_TOPICS")]
    pub auto_create_topics: Option<bool>,
    /// Partitions of an auto-created topic (`num.partitions`) [default: 1].
    #[arg(long, env = "SPATE_NUM_PARTITIONS")]
    pub num_partitions: Option<i32>,
    /// How long a new consumer group waits for more members before its first assignment
    /// (`group.initial.rebalance.delay.ms`) [default: 3000].
    #[arg(long, env = "SPATE_GROUP_INITIAL_REBALANCE_DELAY_MS")]
    pub group_initial_rebalance_delay_ms: Option<u64>,
    /// How long an empty consumer group's committed offsets are kept
    /// (`offsets.retention.minutes`) [default: 10080, 7 days].
    #[arg(long, env = "SPATE_OFFSETS_RETENTION_MINUTES")]
    pub offsets_retention_minutes: Option<u64>,
    /// How long a `group.protocol=consumer` member may stay silent before it is removed
    /// (`group.consumer.session.timeout.ms`) [default: 45000].
    #[arg(long, env = "SPATE_GROUP_CONSUMER_SESSION_TIMEOUT_MS")]
    pub group_consumer_session_timeout_ms: Option<u64>,
    /// How often `group.protocol=consumer` members heartbeat
    /// (`group.consumer.heartbeat.interval.ms`) [default: 5000].
    #[arg(long, env = "SPATE_GROUP_CONSUMER_HEARTBEAT_INTERVAL_MS")]
    pub group_consumer_heartbeat_interval_ms: Option<u64>,
    /// Address of the admin HTTP listener (/metrics, /health, /ready, /v1/cluster), or
    /// `off` [default: 127.0.0.1:9644].
    #[arg(long, env = "SPATE_ADMIN_LISTEN")]
    pub admin_listen: Option<String>,
    /// Requests slower than this are logged (and counted in spate_slow_requests_total),
    /// except the long polls (Fetch, JoinGroup, SyncGroup); 0 turns this off
    /// [default: 1000].
    #[arg(long, env = "SPATE_SLOW_REQUEST_MS")]
    pub slow_request_ms: Option<u64>,
    /// Segment files removed by retention kept per partition and reused for new segments
    /// (appends into them convert no extents, so durable writes are faster); 0 deletes them
    /// [default: 2; at most 16].
    #[arg(long, env = "SPATE_RECYCLE_SEGMENTS")]
    pub recycle_segments: Option<usize>,
    /// Memory per shard for recently written data served to consumers without a disk read,
    /// and for reading ahead of consumers catching up; 0 keeps and reads ahead nothing
    /// [default: 64; at most 65536].
    #[arg(long, env = "SPATE_TAIL_CACHE_MIB")]
    pub tail_cache_mib: Option<usize>,
    /// Log level: error, warn, info, debug or trace [default: info].
    #[arg(long, env = "SPATE_LOG_LEVEL")]
    pub log_level: Option<String>,
    /// Log format: text, or json (one object per line) [default: text].
    #[arg(long, env = "SPATE_LOG_FORMAT")]
    pub log_format: Option<String>,
}

/// The TOML file's settings.
#[derive(Debug, Default, Deserialize)]
#[serde(deny_unknown_fields)]
struct FileConfig {
    listen: Option<String>,
    advertised_listener: Option<String>,
    data_dir: Option<PathBuf>,
    cores: Option<usize>,
    node_id: Option<i32>,
    auto_create_topics: Option<bool>,
    num_partitions: Option<i32>,
    group_initial_rebalance_delay_ms: Option<u64>,
    offsets_retention_minutes: Option<u64>,
    group_consumer_session_timeout_ms: Option<u64>,
    group_consumer_heartbeat_interval_ms: Option<u64>,
    admin_listen: Option<String>,
    slow_request_ms: Option<u64>,
    recycle_segments: Option<usize>,
    tail_cache_mib: Option<usize>,
    log_level: Option<String>,
    log_format: Option<String>,
}

/// How log lines are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LogFormat {
    /// Human-readable lines.
    Text,
    /// One JSON object per line.
    Json,
}

/// A validated configuration.
#[derive(Debug, Clone)]
pub struct Config {
    /// Where to listen.
    pub listen: SocketAddr,
    /// What clients are told (host, port).
    pub advertised: (String, u16),
    /// The data directory.
    pub data_dir: PathBuf,
    /// Shards.
    pub cores: usize,
    /// Node id.
    pub node_id: i32,
    /// Auto-create topics on Metadata.
    pub auto_create_topics: bool,
    /// Partitions of auto-created topics.
    pub num_partitions: i32,
    /// `group.initial.rebalance.delay.ms`.
    pub group_initial_rebalance_delay: std::time::Duration,
    /// `offsets.retention.minutes`.
    pub offsets_retention: std::time::Duration,
    /// `group.consumer.session.timeout.ms`.
    pub group_consumer_session_timeout: std::time::Duration,
    /// `group.consumer.heartbeat.interval.ms`.
    pub group_consumer_heartbeat_interval: std::time::Duration,
    /// Where the admin HTTP listener listens; `None`: it is off.
    pub admin_listen: Option<SocketAddr>,
    /// Requests at least this slow are logged; `None`: none are.
    pub slow_request: Option<std::time::Duration>,
    /// Removed segment files kept per partition for reuse.
    pub recycle_segments: usize,
    /// Each shard's tail cache (and read-ahead) budget, in bytes.
    pub tail_cache_bytes: usize,
    /// The most detailed log level written.
    pub log_level: tracing::Level,
    /// How log lines are written.
    pub log_format: LogFormat,
}

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An address does not parse or resolve.
    #[error("{setting} {value:?} is not a host:port address")]
    BadAddress {
        /// The setting.
        setting: &'static str,
        /// The value given.
        value: String,
    },
    /// A value out of range.
    #[error("{setting} {value}: {reason}")]
    OutOfRange {
        /// The setting.
        setting: &'static str,
        /// The value given.
        value: String,
        /// The rule.
        reason: &'static str,
    },
    /// The config file cannot be read or parsed.
    #[error("config file {path}: {reason}")]
    File {
        /// The file.
        path: PathBuf,
        /// What is wrong (the TOML parser names the key and line).
        reason: String,
    },
}

fn read_file(path: &Path) -> Result<FileConfig, ConfigError> {
    let text = std::fs::read_to_string(path).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })?;
    toml::from_str(&text).map_err(|e| ConfigError::File {
        path: path.to_path_buf(),
        reason: e.to_string(),
    })
}

impl StartArgs {
    /// Layers flags and variables over the file over the defaults, checks the result and
    /// resolves addresses.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let file = match &self.config {
            Some(path) => read_file(path)?,
            None => FileConfig::default(),
        };
        let listen_text = self
            .listen
            .or(file.listen)
            .unwrap_or_else(|| DEFAULT_LISTEN.to_string());
        let listen = resolve("--listen", &listen_text)?;
        let advertised = match self.advertised_listener.or(file.advertised_listener) {
            None => (listen.ip().to_string(), listen.port()),
            Some(value) => split_host_port("--advertised-listener", &value)?,
        };
        let cores = self
            .cores
            .or(file.cores)
            .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, usize::from));
        if !(1..=MAX_SHARDS).contains(&cores) {
            let reason = "a broker runs between 1 and 256 shards";
            return Err(ConfigError::OutOfRange {
                setting: "--cores",
                value: cores.to_string(),
                reason,
            });
        }
        let node_id = self.node_id.or(file.node_id).unwrap_or(0);
        if node_id < 0 {
            let reason = "node ids are non-negative";
            return Err(ConfigError::OutOfRange {
                setting: "--node-id",
                value: node_id.to_string(),
                reason,
            });
        }
        let num_partitions = self.num_partitions.or(file.num_partitions).unwrap_or(1);
        if !(1..=10_000).contains(&num_partitions) {
            let reason = "between 1 and 10000";
            return Err(ConfigError::OutOfRange {
                setting: "--num-partitions",
                value: num_partitions.to_string(),
                reason,
            });
        }
        let initial_rebalance_delay_ms = self
            .group_initial_rebalance_delay_ms
            .or(file.group_initial_rebalance_delay_ms)
            .unwrap_or(3_000);
        if initial_rebalance_delay_ms > MAX_INITIAL_REBALANCE_DELAY_MS {
            let reason = "at most 300000 (5 minutes)";
            return Err(ConfigError::OutOfRange {
                setting: "--group-initial-rebalance-delay-ms",
                value: initial_rebalance_delay_ms.to_string(),
                reason,
            });
        }
        let retention_minutes = self
            .offsets_retention_minutes
            .or(file.offsets_retention_minutes)
            .unwrap_or(10_080);
        if !(1..=MAX_OFFSETS_RETENTION_MINUTES).contains(&retention_minutes) {
            let reason = "between 1 and 5256000 (10 years)";
            return Err(ConfigError::OutOfRange {
                setting: "--offsets-retention-minutes",
                value: retention_minutes.to_string(),
                reason,
            });
        }
        let session_ms = self
            .group_consumer_session_timeout_ms
            .or(file.group_consumer_session_timeout_ms)
            .unwrap_or(45_000);
        let heartbeat_ms = self
            .group_consumer_heartbeat_interval_ms
            .or(file.group_consumer_heartbeat_interval_ms)
            .unwrap_or(5_000);
        if !(1_000..=1_800_000).contains(&session_ms) {
            return Err(ConfigError::OutOfRange {
                setting: "--group-consumer-session-timeout-ms",
                value: session_ms.to_string(),
                reason: "between 1000 and 1800000",
            });
        }
        if heartbeat_ms < 100 || heartbeat_ms >= session_ms {
            return Err(ConfigError::OutOfRange {
                setting: "--group-consumer-heartbeat-interval-ms",
                value: heartbeat_ms.to_string(),
                reason: "at least 100 and below the session timeout",
            });
        }
        let admin_text = self
            .admin_listen
            .or(file.admin_listen)
            .unwrap_or_else(|| DEFAULT_ADMIN_LISTEN.to_string());
        let admin_listen = match admin_text.as_str() {
            "off" => None,
            address => Some(resolve("--admin-listen", address)?),
        };
        let slow_ms = self
            .slow_request_ms
            .or(file.slow_request_ms)
            .unwrap_or(DEFAULT_SLOW_REQUEST_MS);
        if slow_ms > MAX_SLOW_REQUEST_MS {
            return Err(ConfigError::OutOfRange {
                setting: "--slow-request-ms",
                value: slow_ms.to_string(),
                reason: "at most 3600000 (1 hour); 0 turns the log line off",
            });
        }
        let recycle_segments = self
            .recycle_segments
            .or(file.recycle_segments)
            .unwrap_or(DEFAULT_RECYCLE_SEGMENTS);
        if recycle_segments > MAX_RECYCLE_SEGMENTS {
            return Err(ConfigError::OutOfRange {
                setting: "--recycle-segments",
                value: recycle_segments.to_string(),
                reason: "at most 16; 0 deletes removed segment files",
            });
        }
        let tail_cache_mib = self
            .tail_cache_mib
            .or(file.tail_cache_mib)
            .unwrap_or(DEFAULT_TAIL_CACHE_MIB);
        if tail_cache_mib > MAX_TAIL_CACHE_MIB {
            return Err(ConfigError::OutOfRange {
                setting: "--tail-cache-mib",
                value: tail_cache_mib.to_string(),
                reason: "at most 65536 (MiB per shard); 0 keeps nothing",
            });
        }
        let level_text = self
            .log_level
            .or(file.log_level)
            .unwrap_or_else(|| "info".to_string());
        let log_level = match level_text.to_ascii_lowercase().as_str() {
            "error" => tracing::Level::ERROR,
            "warn" => tracing::Level::WARN,
            "info" => tracing::Level::INFO,
            "debug" => tracing::Level::DEBUG,
            "trace" => tracing::Level::TRACE,
            _ => {
                return Err(ConfigError::OutOfRange {
                    setting: "--log-level",
                    value: level_text,
                    reason: "one of error, warn, info, debug, trace",
                })
            }
        };
        let format_text = self
            .log_format
            .or(file.log_format)
            .unwrap_or_else(|| "text".to_string());
        let log_format = match format_text.as_str() {
            "text" => LogFormat::Text,
            "json" => LogFormat::Json,
            _ => {
                return Err(ConfigError::OutOfRange {
                    setting: "--log-format",
                    value: format_text,
                    reason: "text or json",
                })
            }
        };
        Ok(Config {
            admin_listen,
            slow_request: (slow_ms > 0).then(|| std::time::Duration::from_millis(slow_ms)),
            recycle_segments,
            tail_cache_bytes: tail_cache_mib << 20,
            log_level,
            log_format,
            listen,
            advertised,
            data_dir: self
                .data_dir
                .or(file.data_dir)
                .unwrap_or_else(|| PathBuf::from(DEFAULT_DATA_DIR)),
            cores,
            node_id,
            auto_create_topics: self
                .auto_create_topics
                .or(file.auto_create_topics)
                .unwrap_or(true),
            num_partitions,
            group_initial_rebalance_delay: std::time::Duration::from_millis(
                initial_rebalance_delay_ms,
            ),
            offsets_retention: std::time::Duration::from_secs(retention_minutes * 60),
            group_consumer_session_timeout: std::time::Duration::from_millis(session_ms),
            group_consumer_heartbeat_interval: std::time::Duration::from_millis(heartbeat_ms),
        })
    }
}

fn resolve(setting: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| ConfigError::BadAddress {
            setting,
            value: value.to_string(),
        })
}

fn split_host_port(setting: &'static str, value: &str) -> Result<(String, u16), ConfigError> {
    let bad = || ConfigError::BadAddress {
        setting,
        value: value.to_string(),
    };
    let (host, port) = value.rsplit_once(':').ok_or_else(bad)?;
    let port = port.parse().map_err(|_| bad())?;
    if host.is_empty() {
        return Err(bad());
    }
    Ok((host.trim_matches(['[', ']']).to_string(), port))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn args(extra: &[&str]) -> StartArgs {
        let mut argv = vec!["start"];
        argv.extend_from_slice(extra);
        StartArgs::try_parse_from(argv).expect("parse")
    }

    #[test]
    fn defaults_and_overrides() {
        let config = args(&[]).validate().expect("defaults are valid");
        assert_eq!(config.listen, "127.0.0.1:9092".parse().expect("addr"));
        assert_eq!(config.advertised, ("127.0.0.1".to_string(), 9092));
        assert_eq!(config.data_dir, PathBuf::from("./data"));
        assert!(config.auto_create_topics);
        let config = args(&[
            "--listen",
            "127.0.0.1:0",
            "--advertised-listener",
            "kafka.local:19092",
        ])
        .validate()
        .expect("valid");
        assert_eq!(config.advertised, ("kafka.local".to_string(), 19092));
    }

    #[test]
    fn admin_listener_slow_requests_and_logging() {
        let config = args(&[]).validate().expect("defaults are valid");
        assert_eq!(
            config.admin_listen,
            Some("127.0.0.1:9644".parse().expect("addr"))
        );
        assert_eq!(config.slow_request, Some(std::time::Duration::from_secs(1)));
        assert_eq!(config.log_level, tracing::Level::INFO);
        assert_eq!(config.log_format, LogFormat::Text);
        assert_eq!(config.recycle_segments, 2);
        assert_eq!(config.tail_cache_bytes, 64 << 20);
        let config = args(&[
            "--recycle-segments",
            "0",
            "--tail-cache-mib",
            "0",
            "--admin-listen",
            "off",
            "--slow-request-ms",
            "0",
            "--log-level",
            "DEBUG",
            "--log-format",
            "json",
        ])
        .validate()
        .expect("valid");
        assert_eq!(config.admin_listen, None);
        assert_eq!(config.recycle_segments, 0);
        assert_eq!(config.tail_cache_bytes, 0);
        assert_eq!(config.slow_request, None);
        assert_eq!(config.log_level, tracing::Level::DEBUG);
        assert_eq!(config.log_format, LogFormat::Json);
        for (flag, value) in [
            ("--admin-listen", "nowhere"),
            ("--slow-request-ms", "3600001"),
            ("--recycle-segments", "17"),
            ("--tail-cache-mib", "65537"),
            ("--log-level", "loud"),
            ("--log-format", "xml"),
        ] {
            let err = args(&[flag, value]).validate().expect_err("refused");
            assert!(err.to_string().contains(flag), "{err}");
        }
    }

    #[test]
    fn bad_values_are_named() {
        let err = args(&["--listen", "nowhere"])
            .validate()
            .expect_err("bad address");
        assert!(err.to_string().contains("--listen"), "{err}");
        let err = args(&["--advertised-listener", "host-without-port"])
            .validate()
            .expect_err("bad");
        assert!(err.to_string().contains("--advertised-listener"), "{err}");
        assert!(args(&["--num-partitions", "0"]).validate().is_err());
        assert!(args(&["--node-id=-3"]).validate().is_err());
        assert!(StartArgs::try_parse_from(["start", "--unknown-flag"]).is_err());
        assert!(StartArgs::try_parse_from(["start", "--auto-create-topics", "maybe"]).is_err());
    }

    #[test]
    fn the_file_sits_between_flags_and_defaults() {
        let dir = tempfile::tempdir().expect("temp dir");
        let path = dir.path().join("spate.toml");
        std::fs::write(&path, "listen = \"127.0.0.1:9999\"\ndata_dir = \"/srv/spate\"\nnum_partitions = 4\nauto_create_topics = false\ntail_cache_mib = 8\n")
            .expect("write");
        let file = path.to_str().expect("utf-8");
        let config = args(&["--config", file]).validate().expect("valid");
        assert_eq!(config.listen.port(), 9999);
        assert_eq!(config.data_dir, PathBuf::from("/srv/spate"));
        assert_eq!(config.num_partitions, 4);
        assert!(!config.auto_create_topics);
        assert_eq!(config.tail_cache_bytes, 8 << 20);
        let config = args(&["--config", file, "--num-partitions", "2"])
            .validate()
            .expect("valid");
        assert_eq!(config.num_partitions, 2, "a flag beats the file");

        std::fs::write(&path, "lissen = \"127.0.0.1:1\"\n").expect("write");
        let err = args(&["--config", file])
            .validate()
            .expect_err("unknown key");
        assert!(err.to_string().contains("lissen"), "{err}");
        std::fs::write(&path, "num_partitions = \"many\"\n").expect("write");
        let err = args(&["--config", file])
            .validate()
            .expect_err("wrong type");
        assert!(err.to_string().contains("num_partitions"), "{err}");
        let err = args(&["--config", "/no/such/file.toml"])
            .validate()
            .expect_err("missing file");
        assert!(err.to_string().contains("/no/such/file.toml"), "{err}");
    }
}
