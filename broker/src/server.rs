//! Connections: frames in, one request at a time per connection (so pipelined requests are
//! answered in order), responses out. A malformed frame or request closes that connection
//! only.

use crate::api::{self, Broker, Reply};
use crate::runtime::{self, Listener, Stream};
use bytes::BytesMut;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use spate_protocol::FrameDecoder;
use std::cell::Cell;
use std::rc::Rc;

/// `socket.request.max.bytes`: the largest request frame accepted, checked before buffering.
pub const MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;
/// Bytes read from a socket at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Open connections per shard; more are accepted and closed at once.
pub const MAX_CONNECTIONS: usize = 10_000;

/// Counts what is in progress, for graceful shutdown.
#[derive(Debug, Default)]
pub struct Activity {
    /// Open connections.
    pub connections: Cell<usize>,
    /// Requests being handled.
    pub requests: Cell<usize>,
}

/// Accepts connections until the listener fails; each runs as its own task.
pub async fn serve(broker: Rc<Broker>, listener: Listener, activity: Rc<Activity>) {
    loop {
        let stream = match listener.accept().await {
            Ok(stream) => stream,
            Err(error) => {
                tracing::warn!(%error, "accept failed");
                runtime::sleep(std::time::Duration::from_millis(10)).await;
                continue;
            }
        };
        if activity.connections.get() >= MAX_CONNECTIONS {
            tracing::warn!(
                limit = MAX_CONNECTIONS,
                "connection limit reached; closing a new connection"
            );
            drop(stream);
            continue;
        }
        let (broker, activity) = (broker.clone(), activity.clone());
        runtime::spawn_detached(async move {
            activity.connections.set(activity.connections.get() + 1);
            let peer = stream
                .peer_addr()
                .map(|a| a.to_string())
                .unwrap_or_default();
            if let Err(reason) = connection(&broker, stream, &activity).await {
                tracing::debug!(%peer, %reason, "connection closed");
            }
            activity.connections.set(activity.connections.get() - 1);
        });
    }
}

async fn connection(
    broker: &Broker,
    mut stream: Stream,
    activity: &Activity,
) -> Result<(), String> {
    let decoder = FrameDecoder::new(MAX_REQUEST_BYTES);
    let mut buffer = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut chunk = vec![0_u8; READ_CHUNK_BYTES];
    loop {
        while let Some(frame) = decoder.decode(&mut buffer).map_err(|e| e.to_string())? {
            activity.requests.set(activity.requests.get() + 1);
            let reply = api::handle(broker, frame).await;
            activity.requests.set(activity.requests.get() - 1);
            match reply {
                Reply::Frame(bytes) => stream.write_all(&bytes).await.map_err(|e| e.to_string())?,
                Reply::Rope(rope) => {
                    for piece in rope.chunks() {
                        stream.write_all(piece).await.map_err(|e| e.to_string())?;
                    }
                }
                Reply::Nothing => {}
                Reply::Close(reason) => {
                    tracing::info!(%reason, "closing a connection after a bad request");
                    return Err(reason);
                }
            }
        }
        let read = stream.read(&mut chunk).await.map_err(|e| e.to_string())?;
        if read == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}
