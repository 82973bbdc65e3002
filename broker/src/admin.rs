//! The admin HTTP listener (default 127.0.0.1:9644), on shard 0:
//!
//! - `GET /health`: 200 while the process runs (liveness).
//! - `GET /ready`: 200 once every shard has recovered its partitions and accepts clients,
//!   503 before that and while stopping (readiness).
//! - `GET /metrics`: every shard's metrics, merged (OpenMetrics text, which Prometheus reads).
//! - `GET /v1/cluster`: JSON: node, version, shards, listeners, topics and their partitions
//!   per shard, the Kafka API versions served.
//!
//! HTTP/1.1 with `Connection: close`, one request per connection. Limits: a request head
//! of at most [`MAX_REQUEST_BYTES`], read within [`REQUEST_TIMEOUT`]; at most
//! [`MAX_CONNECTIONS`] at once.

use crate::api::Broker;
use crate::metrics::{self, export};
use crate::runtime::{self, Listener, Stream};
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use serde::Serialize;
use std::cell::{Cell, RefCell};
use std::rc::Rc;
use std::time::Duration;

/// The largest request head accepted.
pub const MAX_REQUEST_BYTES: usize = 8 * 1024;
/// How long a client may take to send its request.
pub const REQUEST_TIMEOUT: Duration = Duration::from_secs(5);
/// Admin connections served at once; more are closed at once.
pub const MAX_CONNECTIONS: usize = 64;

/// What the admin listener answers from.
pub struct Admin {
    /// Shard 0's broker, once it exists (start-up fills it in after recovery).
    broker: RefCell<Option<Rc<Broker>>>,
    /// Whether the broker is ready for clients.
    ready: Box<dyn Fn() -> bool>,
    /// The Kafka listener's bound address, once bound.
    kafka_listener: RefCell<Option<String>>,
    connections: Cell<usize>,
}

impl std::fmt::Debug for Admin {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Admin")
            .field("broker", &self.broker.borrow().is_some())
            .field("connections", &self.connections.get())
            .finish()
    }
}

impl Admin {
    /// An admin state with no broker yet; `ready` says whether clients are being served.
    pub fn new(ready: Box<dyn Fn() -> bool>) -> Rc<Admin> {
        Rc::new(Admin {
            broker: RefCell::new(None),
            ready,
            kafka_listener: RefCell::new(None),
            connections: Cell::new(0),
        })
    }

    /// Hands over shard 0's broker and the Kafka listener's address (start-up, after
    /// recovery).
    pub fn started(&self, broker: Rc<Broker>, kafka_listener: String) {
        *self.broker.borrow_mut() = Some(broker);
        *self.kafka_listener.borrow_mut() = Some(kafka_listener);
    }

    fn broker(&self) -> Option<Rc<Broker>> {
        self.broker.borrow().clone()
    }
}

/// Accepts admin connections for as long as the shard runs.
pub async fn serve(listener: Listener, admin: Rc<Admin>) {
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "admin accept failed");
                runtime::sleep(Duration::from_millis(10)).await;
                continue;
            }
        };
        if admin.connections.get() >= MAX_CONNECTIONS {
            drop(stream);
            continue;
        }
        let admin = admin.clone();
        runtime::spawn_detached(async move {
            admin.connections.set(admin.connections.get() + 1);
            if let Err(error) = connection(&admin, stream).await {
                tracing::debug!(%error, "admin connection ended");
            }
            admin.connections.set(admin.connections.get() - 1);
        });
    }
}

/// A response: status, content type, body.
struct Response {
    status: u16,
    content_type: &'static str,
    body: Vec<u8>,
}

impl Response {
    fn text(status: u16, body: &str) -> Response {
        Response {
            status,
            content_type: "text/plain; charset=utf-8",
            body: body.as_bytes().to_vec(),
        }
    }

    fn reason(&self) -> &'static str {
        match self.status {
            200 => "OK",
            400 => "Bad Request",
            404 => "Not Found",
            405 => "Method Not Allowed",
            408 => "Request Timeout",
            413 => "Content Too Large",
            _ => "Service Unavailable",
        }
    }
}

async fn connection(admin: &Admin, mut stream: Stream) -> std::io::Result<()> {
    let head = futures_lite::future::or(read_head(&mut stream), async {
        runtime::sleep(REQUEST_TIMEOUT).await;
        Err(Response::text(408, "request not received in time\n"))
    })
    .await;
    let (response, head_only) = match head {
        Err(response) => (response, false),
        Ok(head) => match parse(&head) {
            Err(response) => (response, false),
            Ok((method, path)) => (route(admin, &path).await, method == "HEAD"),
        },
    };
    let header = format!(
        "HTTP/1.1 {} {}\r\nContent-Type: {}\r\nContent-Length: {}\r\nConnection: close\r\n\r\n",
        response.status,
        response.reason(),
        response.content_type,
        response.body.len()
    );
    stream.write_all(header.as_bytes()).await?;
    if !head_only {
        stream.write_all(&response.body).await?;
    }
    stream.flush().await?;
    stream.close().await
}

/// Reads up to the blank line ending the request head.
async fn read_head(stream: &mut Stream) -> Result<Vec<u8>, Response> {
    let mut head = Vec::with_capacity(512);
    let mut chunk = [0_u8; 1024];
    loop {
        if head.windows(4).any(|w| w == b"\r\n\r\n") || head.windows(2).any(|w| w == b"\n\n") {
            return Ok(head);
        }
        if head.len() > MAX_REQUEST_BYTES {
            return Err(Response::text(413, "request head too large\n"));
        }
        let read = stream
            .read(&mut chunk)
            .await
            .map_err(|e| Response::text(400, &format!("{e}\n")))?;
        if read == 0 {
            return Err(Response::text(400, "incomplete request\n"));
        }
        head.extend_from_slice(&chunk[..read]);
    }
}

/// The method and path (query string dropped) of a request head.
fn parse(head: &[u8]) -> Result<(String, String), Response> {
    let text = std::str::from_utf8(head).map_err(|_| Response::text(400, "not UTF-8\n"))?;
    let line = text.lines().next().unwrap_or_default();
    let mut words = line.split_whitespace();
    let (Some(method), Some(target), Some(version)) = (words.next(), words.next(), words.next())
    else {
        return Err(Response::text(400, "malformed request line\n"));
    };
    if !version.starts_with("HTTP/1.") {
        return Err(Response::text(400, "only HTTP/1.x is served\n"));
    }
    if method != "GET" && method != "HEAD" {
        return Err(Response::text(405, "only GET and HEAD are served\n"));
    }
    let path = target.split('?').next().unwrap_or_default().to_string();
    Ok((method.to_string(), path))
}

async fn route(admin: &Admin, path: &str) -> Response {
    match path {
        "/health" => Response::text(200, "ok\n"),
        "/ready" => match admin.broker() {
            Some(_) if (admin.ready)() => Response::text(200, "ready\n"),
            _ => Response::text(503, "not ready: starting or stopping\n"),
        },
        "/metrics" => match admin.broker() {
            Some(broker) => Response {
                status: 200,
                content_type: "application/openmetrics-text; version=1.0.0; charset=utf-8",
                body: scrape(&broker).await.into_bytes(),
            },
            None => Response::text(503, "starting: no metrics yet\n"),
        },
        "/v1/cluster" => match admin.broker() {
            Some(broker) => {
                let listener = admin.kafka_listener.borrow().clone().unwrap_or_default();
                Response {
                    status: 200,
                    content_type: "application/json",
                    body: cluster_json(&broker, listener),
                }
            }
            None => Response::text(503, "starting\n"),
        },
        _ => Response::text(
            404,
            "not found: try /metrics, /health, /ready or /v1/cluster\n",
        ),
    }
}

/// Every shard's snapshot, merged and encoded.
pub async fn scrape(broker: &Rc<Broker>) -> String {
    let calls = (0..broker.topics.shards())
        .map(|shard| broker.on_shard(shard, |owner| async move { metrics::snapshot(&owner) }))
        .collect();
    let shards: Vec<_> = spate_storage::join::join_all(calls)
        .await
        .into_iter()
        .filter_map(Result::ok)
        .collect();
    export::encode(
        broker.node_id,
        shards,
        &broker.topics.snapshot(),
        export::Process::read(),
    )
}

#[derive(Serialize)]
struct ClusterView {
    cluster_id: &'static str,
    node_id: i32,
    version: &'static str,
    listener: String,
    advertised: String,
    data_dir: String,
    shards: usize,
    partitions_per_shard: Vec<usize>,
    topics: Vec<TopicView>,
    /// The Kafka APIs served: (name, min version, max version).
    api_versions: Vec<ApiRange>,
}

#[derive(Serialize)]
struct ApiRange {
    api: String,
    key: i16,
    min: i16,
    max: i16,
}

#[derive(Serialize)]
struct TopicView {
    name: String,
    id: String,
    internal: bool,
    partitions: usize,
    /// The shard owning each partition, by index.
    shards: Vec<usize>,
}

fn cluster_json(broker: &Broker, listener: String) -> Vec<u8> {
    let topics = broker.topics.snapshot();
    let mut per_shard = vec![0; broker.topics.shards()];
    for owner in topics.values().flat_map(|t| &t.owners) {
        if let Some(count) = per_shard.get_mut(*owner) {
            *count += 1;
        }
    }
    let view = ClusterView {
        cluster_id: crate::api::CLUSTER_ID,
        node_id: broker.node_id,
        version: env!("CARGO_PKG_VERSION"),
        listener,
        advertised: format!("{}:{}", broker.advertised.0, broker.advertised.1),
        data_dir: broker.data_dir.display().to_string(),
        shards: broker.topics.shards(),
        partitions_per_shard: per_shard,
        topics: topics
            .iter()
            .map(|(name, topic)| TopicView {
                name: name.clone(),
                id: topic.id.to_string(),
                internal: crate::topics::is_internal(name),
                partitions: topic.owners.len(),
                shards: topic.owners.clone(),
            })
            .collect(),
        api_versions: crate::api::SUPPORTED
            .iter()
            .map(|(api, min, max)| ApiRange {
                api: format!("{api:?}"),
                key: *api as i16,
                min: *min,
                max: *max,
            })
            .collect(),
    };
    let mut body = serde_json::to_vec_pretty(&view).unwrap_or_default();
    body.push(b'\n');
    body
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn request_lines_parse_or_get_the_right_status() {
        let ok = parse(b"GET /metrics?x=1 HTTP/1.1\r\nHost: a\r\n\r\n").map_err(|r| r.status);
        assert_eq!(ok, Ok(("GET".to_string(), "/metrics".to_string())));
        let head = parse(b"HEAD /ready HTTP/1.0\r\n\r\n").map_err(|r| r.status);
        assert_eq!(head, Ok(("HEAD".to_string(), "/ready".to_string())));
        for (request, status) in [
            (&b"POST /metrics HTTP/1.1\r\n\r\n"[..], 405),
            (b"GET /metrics\r\n\r\n", 400),
            (b"GET /metrics SPDY/3\r\n\r\n", 400),
            (b"\xff\xfe\r\n\r\n", 400),
        ] {
            assert_eq!(parse(request).map_err(|r| r.status), Err(status));
        }
    }
}
