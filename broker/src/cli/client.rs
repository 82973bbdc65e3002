//! A small blocking Kafka client for the operator subcommands: one connection per broker,
//! versions negotiated with ApiVersions, requests routed to partition leaders (Metadata)
//! and group coordinators (FindCoordinator), so the subcommands work against any
//! Kafka-compatible broker, not only Spate.

use super::CliError;
use bytes::{Bytes, BytesMut};
use spate_protocol::header::RequestHeader;
use spate_protocol::kafka_protocol::messages::api_versions_request::ApiVersionsRequest;
use spate_protocol::kafka_protocol::messages::find_coordinator_request::FindCoordinatorRequest;
use spate_protocol::kafka_protocol::messages::metadata_request::{
    MetadataRequest, MetadataRequestTopic,
};
use spate_protocol::kafka_protocol::messages::metadata_response::MetadataResponse;
use spate_protocol::kafka_protocol::messages::{ApiKey, RequestKind, ResponseKind, TopicName};
use spate_protocol::kafka_protocol::protocol::StrBytes;
use spate_protocol::kafka_protocol::ResponseError;
use spate_protocol::{decode_response, encode_request};
use std::collections::HashMap;
use std::io::{Read, Write};
use std::net::{TcpStream, ToSocketAddrs};
use std::time::Duration;

/// The client id the subcommands send.
const CLIENT_ID: &str = "spate-cli";
/// The largest response frame accepted.
const MAX_RESPONSE_BYTES: usize = 256 * 1024 * 1024;

/// Kafka's error name and code, e.g. `UnknownTopicOrPartition (3)`.
pub fn error_name(code: i16) -> String {
    match ResponseError::try_from_code(code) {
        None => "none (0)".to_string(),
        Some(error) => format!("{error} ({code})"),
    }
}

/// `Err` naming `what` and the error when `code` is not 0.
pub fn check(code: i16, what: &str, message: Option<&StrBytes>) -> Result<(), CliError> {
    if code == 0 {
        return Ok(());
    }
    let detail = message
        .map(|m| format!(": {}", m.as_str()))
        .unwrap_or_default();
    Err(CliError::Kafka(format!(
        "{what}: {}{detail}",
        error_name(code)
    )))
}

/// One connection to one broker.
#[derive(Debug)]
pub struct Connection {
    address: String,
    stream: TcpStream,
    correlation: i32,
    /// API key → (min, max) version the broker serves.
    versions: HashMap<i16, (i16, i16)>,
}

impl Connection {
    /// Connects to `address` and asks which versions it serves.
    pub fn open(address: &str, timeout: Duration) -> Result<Connection, CliError> {
        let unreachable =
            |reason: String| CliError::Connection(format!("cannot reach {address}: {reason}"));
        let targets: Vec<_> = address
            .to_socket_addrs()
            .map_err(|e| unreachable(e.to_string()))?
            .collect();
        let mut last = "it resolves to no address".to_string();
        let mut stream = None;
        for target in targets {
            match TcpStream::connect_timeout(&target, timeout) {
                Ok(connected) => {
                    stream = Some(connected);
                    break;
                }
                Err(e) => last = e.to_string(),
            }
        }
        let stream = stream.ok_or_else(|| unreachable(last))?;
        stream
            .set_read_timeout(Some(timeout))
            .and_then(|()| stream.set_write_timeout(Some(timeout)))
            .and_then(|()| stream.set_nodelay(true))
            .map_err(|e| unreachable(e.to_string()))?;
        let mut connection = Connection {
            address: address.to_string(),
            stream,
            correlation: 0,
            versions: HashMap::new(),
        };
        let request = ApiVersionsRequest::default()
            .with_client_software_name(StrBytes::from_static_str(CLIENT_ID))
            .with_client_software_version(StrBytes::from_static_str(env!("CARGO_PKG_VERSION")));
        // v3 first; a broker too old for it answers in v0, which the retry reads.
        let response = connection
            .send(ApiKey::ApiVersions, 3, RequestKind::ApiVersions(request))
            .or_else(|_| {
                let mut again = Connection::open_plain(address, timeout)?;
                let reply = again.send(
                    ApiKey::ApiVersions,
                    0,
                    RequestKind::ApiVersions(ApiVersionsRequest::default()),
                )?;
                connection = again;
                Ok::<_, CliError>(reply)
            })?;
        let ResponseKind::ApiVersions(versions) = response else {
            return Err(CliError::Kafka(
                "unexpected ApiVersions response".to_string(),
            ));
        };
        check(versions.error_code, "ApiVersions", None)?;
        connection.versions = versions
            .api_keys
            .iter()
            .map(|v| (v.api_key, (v.min_version, v.max_version)))
            .collect();
        Ok(connection)
    }

    fn open_plain(address: &str, timeout: Duration) -> Result<Connection, CliError> {
        let target = address
            .to_socket_addrs()
            .ok()
            .and_then(|mut a| a.next())
            .ok_or_else(|| CliError::Connection(format!("cannot resolve {address}")))?;
        let stream = TcpStream::connect_timeout(&target, timeout)
            .map_err(|e| CliError::Connection(format!("cannot reach {address}: {e}")))?;
        let _ = stream.set_read_timeout(Some(timeout));
        Ok(Connection {
            address: address.to_string(),
            stream,
            correlation: 0,
            versions: HashMap::new(),
        })
    }

    /// The highest version both sides speak, at most `ours` and at least `min_ours`.
    pub fn version(&self, api: ApiKey, min_ours: i16, ours: i16) -> Result<i16, CliError> {
        let (min, max) =
            self.versions.get(&(api as i16)).copied().ok_or_else(|| {
                CliError::Kafka(format!("{} does not serve {api:?}", self.address))
            })?;
        let version = ours.min(max);
        if version < min.max(min_ours) {
            return Err(CliError::Kafka(format!(
                "{} serves {api:?} v{min}–{max}; this tool speaks v{min_ours}–{ours}",
                self.address
            )));
        }
        Ok(version)
    }

    /// Sends `body` at the best version in `min_ours..=ours` and returns the response.
    pub fn call(
        &mut self,
        api: ApiKey,
        (min_ours, ours): (i16, i16),
        body: RequestKind,
    ) -> Result<(i16, ResponseKind), CliError> {
        let version = self.version(api, min_ours, ours)?;
        Ok((version, self.send(api, version, body)?))
    }

    /// Sends a request at `version`; `None` comes back for Produce with acks=0.
    fn send(
        &mut self,
        api: ApiKey,
        version: i16,
        body: RequestKind,
    ) -> Result<ResponseKind, CliError> {
        self.correlation += 1;
        let header = RequestHeader::new(api, version, self.correlation, Some(CLIENT_ID));
        let mut out = BytesMut::new();
        encode_request(&mut out, &header, &body)
            .map_err(|e| CliError::Kafka(format!("cannot encode {api:?} v{version}: {e}")))?;
        let lost = |e: std::io::Error| {
            CliError::Connection(format!("connection to {} failed: {e}", self.address))
        };
        self.stream.write_all(&out).map_err(lost)?;
        let mut size = [0_u8; 4];
        self.stream.read_exact(&mut size).map_err(lost)?;
        let size = usize::try_from(i32::from_be_bytes(size)).unwrap_or(usize::MAX);
        if size > MAX_RESPONSE_BYTES {
            return Err(CliError::Kafka(format!(
                "{} sent a {size}-byte response (the limit is {MAX_RESPONSE_BYTES})",
                self.address
            )));
        }
        let mut frame = vec![0_u8; size];
        self.stream.read_exact(&mut frame).map_err(lost)?;
        let (correlation, response) = decode_response(api, version, Bytes::from(frame))
            .map_err(|e| CliError::Kafka(format!("bad {api:?} v{version} response: {e}")))?;
        if correlation != self.correlation {
            return Err(CliError::Kafka(format!(
                "{} answered request {correlation} to request {}",
                self.address, self.correlation
            )));
        }
        Ok(response)
    }

    /// Sends a request and does not wait for an answer (Produce with acks=0).
    pub fn send_only(
        &mut self,
        api: ApiKey,
        version: i16,
        body: RequestKind,
    ) -> Result<(), CliError> {
        self.correlation += 1;
        let header = RequestHeader::new(api, version, self.correlation, Some(CLIENT_ID));
        let mut out = BytesMut::new();
        encode_request(&mut out, &header, &body)
            .map_err(|e| CliError::Kafka(format!("cannot encode {api:?} v{version}: {e}")))?;
        self.stream.write_all(&out).map_err(|e| {
            CliError::Connection(format!("connection to {} failed: {e}", self.address))
        })
    }
}

/// Connections to a cluster: the bootstrap broker, then whichever brokers requests need.
#[derive(Debug)]
pub struct Client {
    timeout: Duration,
    bootstrap: Connection,
    /// Node id → host:port, from the last Metadata.
    brokers: HashMap<i32, String>,
    connections: HashMap<i32, Connection>,
}

impl Client {
    /// Connects to the first reachable address of `bootstrap` (comma-separated).
    pub fn connect(bootstrap: &str, timeout: Duration) -> Result<Client, CliError> {
        let mut last = None;
        for address in bootstrap
            .split(',')
            .map(str::trim)
            .filter(|a| !a.is_empty())
        {
            match Connection::open(address, timeout) {
                Ok(connection) => {
                    return Ok(Client {
                        timeout,
                        bootstrap: connection,
                        brokers: HashMap::new(),
                        connections: HashMap::new(),
                    })
                }
                Err(e) => last = Some(e),
            }
        }
        Err(last.unwrap_or_else(|| CliError::Usage("--bootstrap names no address".to_string())))
    }

    /// The bootstrap connection (any broker answers cluster-wide admin requests).
    pub fn any(&mut self) -> &mut Connection {
        &mut self.bootstrap
    }

    /// Metadata for `topics` (`None`: every topic); never creates topics.
    pub fn metadata(&mut self, topics: Option<&[String]>) -> Result<MetadataResponse, CliError> {
        let request = MetadataRequest::default()
            .with_allow_auto_topic_creation(false)
            .with_topics(topics.map(|names| {
                names
                    .iter()
                    .map(|name| {
                        MetadataRequestTopic::default()
                            .with_name(Some(TopicName(StrBytes::from_string(name.clone()))))
                    })
                    .collect()
            }));
        let (_, response) =
            self.bootstrap
                .call(ApiKey::Metadata, (1, 12), RequestKind::Metadata(request))?;
        let ResponseKind::Metadata(metadata) = response else {
            return Err(CliError::Kafka("unexpected Metadata response".to_string()));
        };
        self.brokers = metadata
            .brokers
            .iter()
            .map(|b| (b.node_id.0, format!("{}:{}", b.host.as_str(), b.port)))
            .collect();
        Ok(metadata)
    }

    /// The connection to broker `node` (from the last Metadata).
    pub fn node(&mut self, node: i32) -> Result<&mut Connection, CliError> {
        if !self.connections.contains_key(&node) {
            let address = self.brokers.get(&node).cloned().ok_or_else(|| {
                CliError::Kafka(format!("broker {node} is not in the cluster's metadata"))
            })?;
            let connection = Connection::open(&address, self.timeout)?;
            self.connections.insert(node, connection);
        }
        self.connections
            .get_mut(&node)
            .ok_or_else(|| CliError::Kafka(format!("no connection to broker {node}")))
    }

    /// The connection to `group`'s coordinator.
    pub fn coordinator(&mut self, group: &str) -> Result<&mut Connection, CliError> {
        let request = FindCoordinatorRequest::default()
            .with_key(StrBytes::from_string(group.to_string()))
            .with_key_type(0);
        let (_, response) = self.bootstrap.call(
            ApiKey::FindCoordinator,
            (0, 3),
            RequestKind::FindCoordinator(request),
        )?;
        let ResponseKind::FindCoordinator(found) = response else {
            return Err(CliError::Kafka(
                "unexpected FindCoordinator response".to_string(),
            ));
        };
        check(
            found.error_code,
            &format!("finding the coordinator of group {group}"),
            found.error_message.as_ref(),
        )?;
        let node = found.node_id.0;
        self.brokers
            .insert(node, format!("{}:{}", found.host.as_str(), found.port));
        self.node(node)
    }

    /// Every broker's node id (from the last Metadata).
    pub fn broker_ids(&self) -> Vec<i32> {
        let mut ids: Vec<i32> = self.brokers.keys().copied().collect();
        ids.sort_unstable();
        ids
    }
}
