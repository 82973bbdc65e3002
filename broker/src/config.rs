//! The broker's configuration: command-line flags, `SPATE_*` environment variables and the
//! embedded defaults (listen on 127.0.0.1:9092, data in `./data`, node id 0).

use clap::Parser;
use std::net::{SocketAddr, ToSocketAddrs};
use std::path::PathBuf;

/// `spate start` options. Every flag can also come from its `SPATE_*` variable.
#[derive(Debug, Clone, Parser)]
pub struct StartArgs {
    /// Address to accept Kafka clients on.
    #[arg(long, env = "SPATE_LISTEN", default_value = "127.0.0.1:9092")]
    pub listen: String,
    /// host:port clients are told to connect to (defaults to the listen address).
    #[arg(long, env = "SPATE_ADVERTISED_LISTENER")]
    pub advertised_listener: Option<String>,
    /// Directory holding the partitions' logs and the topic metadata.
    #[arg(long, env = "SPATE_DATA_DIR", default_value = "./data")]
    pub data_dir: PathBuf,
    /// Shards (one executor per core). Only 1 is implemented so far.
    #[arg(long, env = "SPATE_CORES", default_value_t = 1)]
    pub cores: usize,
    /// This broker's node id.
    #[arg(long, env = "SPATE_NODE_ID", default_value_t = 0)]
    pub node_id: i32,
    /// Create topics a client asks Metadata about (`auto.create.topics.enable`).
    #[arg(long, env = "SPATE_AUTO_CREATE_TOPICS", default_value_t = true, action = clap::ArgAction::Set)]
    pub auto_create_topics: bool,
    /// Partitions of an auto-created topic (`num.partitions`).
    #[arg(long, env = "SPATE_NUM_PARTITIONS", default_value_t = 1)]
    pub num_partitions: i32,
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
}

/// What is wrong with a configuration.
#[derive(Debug, thiserror::Error)]
pub enum ConfigError {
    /// An address does not parse or resolve.
    #[error("--{flag} {value:?} is not a host:port address")]
    BadAddress {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
    },
    /// A value out of range.
    #[error("--{flag} {value}: {reason}")]
    OutOfRange {
        /// The flag.
        flag: &'static str,
        /// The value given.
        value: String,
        /// The rule.
        reason: &'static str,
    },
}

impl StartArgs {
    /// Checks the arguments and resolves addresses.
    pub fn validate(self) -> Result<Config, ConfigError> {
        let listen = resolve("listen", &self.listen)?;
        let advertised = match &self.advertised_listener {
            None => (listen.ip().to_string(), listen.port()),
            Some(value) => split_host_port("advertised-listener", value)?,
        };
        if self.cores != 1 {
            return Err(ConfigError::OutOfRange {
                flag: "cores",
                value: self.cores.to_string(),
                reason: "only 1 shard is implemented so far",
            });
        }
        if self.node_id < 0 {
            return Err(ConfigError::OutOfRange {
                flag: "node-id",
                value: self.node_id.to_string(),
                reason: "node ids are non-negative",
            });
        }
        if !(1..=10_000).contains(&self.num_partitions) {
            return Err(ConfigError::OutOfRange {
                flag: "num-partitions",
                value: self.num_partitions.to_string(),
                reason: "between 1 and 10000",
            });
        }
        Ok(Config {
            listen,
            advertised,
            data_dir: self.data_dir,
            cores: self.cores,
            node_id: self.node_id,
            auto_create_topics: self.auto_create_topics,
            num_partitions: self.num_partitions,
        })
    }
}

fn resolve(flag: &'static str, value: &str) -> Result<SocketAddr, ConfigError> {
    value
        .to_socket_addrs()
        .ok()
        .and_then(|mut addresses| addresses.next())
        .ok_or_else(|| ConfigError::BadAddress {
            flag,
            value: value.to_string(),
        })
}

fn split_host_port(flag: &'static str, value: &str) -> Result<(String, u16), ConfigError> {
    let bad = || ConfigError::BadAddress {
        flag,
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
    }
}
