//! Connections: frames in, one request at a time per connection (so pipelined requests are
//! answered in order), responses out. A malformed frame or request closes that connection
//! only.

use crate::api::{self, Broker, Reply};
use crate::metrics::CloseReason;
use crate::runtime::{self, Listener, Stream};
use bytes::BytesMut;
use futures_lite::{AsyncReadExt, AsyncWriteExt};
use spate_protocol::FrameDecoder;
use spate_storage::budget::Budget;
use std::cell::Cell;
use std::rc::Rc;

/// `socket.request.max.bytes`: the largest request frame accepted, checked before buffering.
pub const MAX_REQUEST_BYTES: usize = 100 * 1024 * 1024;
/// Bytes read from a socket at a time.
const READ_CHUNK_BYTES: usize = 64 * 1024;
/// Open connections per shard; more are accepted and closed at once.
pub const MAX_CONNECTIONS: usize = 10_000;
/// Request bytes a shard holds at once across its connections (frames being received or
/// handled). A connection whose next frame does not fit waits before reading it: memory
/// admission happens before buffering and decoding, not after.
pub const MAX_INFLIGHT_REQUEST_BYTES: usize = 256 * 1024 * 1024;
const _: () = assert!(
    MAX_INFLIGHT_REQUEST_BYTES >= MAX_REQUEST_BYTES + 4,
    "the largest frame must fit"
);

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
            broker.metrics.connection_closed(CloseReason::Limit);
            continue;
        }
        let (broker, activity) = (broker.clone(), activity.clone());
        runtime::spawn_detached(async move {
            activity.connections.set(activity.connections.get() + 1);
            broker.metrics.connection_opened();
            let peer = stream.peer_addr().ok();
            let host = peer.map(|a| a.ip().to_string()).unwrap_or_default();
            let peer = peer.map(|a| a.to_string()).unwrap_or_default();
            let closed = match connection(&broker, stream, &activity, &host).await {
                Ok(()) => CloseReason::Client,
                Err((why, reason)) => {
                    tracing::debug!(%peer, %reason, "connection closed");
                    why
                }
            };
            broker.metrics.connection_closed(closed);
            activity.connections.set(activity.connections.get() - 1);
        });
    }
}

/// The request bytes one connection holds from the shard's budget; returned when the frame
/// is answered or the connection ends.
struct Admission<'a> {
    budget: &'a Budget,
    bytes: usize,
}

impl Admission<'_> {
    async fn claim(&mut self, bytes: usize) {
        while !self.budget.try_take(bytes) {
            // Back-pressure: wait for other connections' frames to be answered.
            runtime::sleep(std::time::Duration::from_millis(1)).await;
        }
        self.bytes = bytes;
    }

    fn release(&mut self) {
        self.budget.give_back(std::mem::take(&mut self.bytes));
    }
}

impl Drop for Admission<'_> {
    fn drop(&mut self) {
        self.release();
    }
}

fn bad(error: impl std::fmt::Display) -> (CloseReason, String) {
    (CloseReason::BadRequest, error.to_string())
}

fn failed(error: std::io::Error) -> (CloseReason, String) {
    (CloseReason::Error, error.to_string())
}

async fn connection(
    broker: &Rc<Broker>,
    mut stream: Stream,
    activity: &Activity,
    host: &str,
) -> Result<(), (CloseReason, String)> {
    let decoder = FrameDecoder::new(MAX_REQUEST_BYTES);
    let mut buffer = BytesMut::with_capacity(READ_CHUNK_BYTES);
    let mut chunk = vec![0_u8; READ_CHUNK_BYTES];
    let mut admitted = Admission {
        budget: &broker.request_budget,
        bytes: 0,
    };
    loop {
        while let Some(frame) = decoder.decode(&mut buffer).map_err(bad)? {
            activity.requests.set(activity.requests.get() + 1);
            let reply = api::handle(broker, frame, host).await;
            activity.requests.set(activity.requests.get() - 1);
            match reply {
                Reply::Frame(bytes) => stream.write_all(&bytes).await.map_err(failed)?,
                Reply::Rope(rope) => {
                    for piece in rope.chunks() {
                        stream.write_all(piece).await.map_err(failed)?;
                    }
                }
                Reply::Nothing => {}
                Reply::Close(reason) => {
                    tracing::info!(%reason, "closing a connection after a bad request");
                    return Err((CloseReason::BadRequest, reason));
                }
            }
            admitted.release();
        }
        // Claim the next frame's size before buffering it (its prefix says how big it is).
        let needed = decoder.needed(&buffer).map_err(bad)?;
        if buffer.len() >= 4 && admitted.bytes == 0 {
            admitted.claim(needed).await;
        }
        let read = stream.read(&mut chunk).await.map_err(failed)?;
        if read == 0 {
            return Ok(());
        }
        buffer.extend_from_slice(&chunk[..read]);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;
    use std::time::Duration;

    /// A claim that does not fit waits until another connection's frame is answered, and no
    /// more than the budget is ever held.
    #[test]
    fn admission_waits_for_room_and_never_exceeds_the_budget() {
        let order = runtime::run_shard("admission-test", None, || async {
            let budget = Budget::new(100);
            let events = Rc::new(std::cell::RefCell::new(Vec::new()));
            let mut first = Admission {
                budget: &budget,
                bytes: 0,
            };
            first.claim(60).await;
            let waiting_done = Rc::new(Cell::new(false));
            let second = {
                let (budget, events, done) = (&budget, events.clone(), waiting_done.clone());
                async move {
                    let mut second = Admission { budget, bytes: 0 };
                    second.claim(60).await;
                    events.borrow_mut().push("second admitted");
                    assert!(budget.used() <= 100);
                    done.set(true);
                }
            };
            let release = async {
                runtime::sleep(Duration::from_millis(20)).await;
                assert!(
                    !waiting_done.get(),
                    "the second claim waited while the first held the room"
                );
                events.borrow_mut().push("first released");
                first.release();
            };
            futures_lite::future::zip(second, release).await;
            let order = events.borrow().clone();
            assert_eq!(budget.used(), 0, "dropped admissions give their bytes back");
            order
        })
        .expect("executor");
        assert_eq!(order, vec!["first released", "second admitted"]);
    }
}
