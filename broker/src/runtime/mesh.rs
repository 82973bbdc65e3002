//! Calls between shards: each shard has an inbox; any shard can ask another to run a
//! closure there and await its result. The closure and its result cross threads (`Send`);
//! the future it makes runs on the target shard and may use that shard's `Rc` state.
//!
//! Inboxes are bounded: a caller waits while the target's inbox is full (back-pressure), and
//! a call to a shard that has stopped fails instead of hanging.
//!
//! Groundwork for more than one shard (`docs/multi-shard-plan.md`); the handlers do not route
//! through it yet.

use std::future::Future;
use std::pin::Pin;

/// A unit of work for another shard: called there, it yields the future to run.
type Job = Box<dyn FnOnce() -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// Why a cross-shard call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeshError {
    /// No such shard.
    #[error("there is no shard {0}")]
    NoSuchShard(usize),
    /// The shard stopped before answering.
    #[error("shard {0} has stopped")]
    Stopped(usize),
}

/// The senders to every shard's inbox; cheap to clone, shareable across threads.
#[derive(Clone, Debug)]
pub struct Mesh {
    inboxes: Vec<flume::Sender<Job>>,
}

/// One shard's incoming calls.
#[derive(Debug)]
pub struct Inbox {
    receiver: flume::Receiver<Job>,
}

/// A mesh of `shards` inboxes holding at most `capacity` pending calls each.
pub fn mesh(shards: usize, capacity: usize) -> (Mesh, Vec<Inbox>) {
    assert!(shards > 0 && capacity > 0);
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..shards).map(|_| flume::bounded(capacity)).unzip();
    let inboxes = receivers
        .into_iter()
        .map(|receiver| Inbox { receiver })
        .collect();
    (Mesh { inboxes: senders }, inboxes)
}

impl Mesh {
    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.inboxes.len()
    }

    /// Runs `make()`'s future on `shard` and returns its output.
    pub async fn call<R, F, Fut>(&self, shard: usize, make: F) -> Result<R, MeshError>
    where
        R: Send + 'static,
        F: FnOnce() -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
    {
        let inbox = self
            .inboxes
            .get(shard)
            .ok_or(MeshError::NoSuchShard(shard))?;
        let (reply, answer) = flume::bounded(1);
        let job: Job = Box::new(move || {
            Box::pin(async move {
                let output = make().await;
                // The caller may have gone away; then nobody needs the answer.
                let _ = reply.send(output);
            })
        });
        inbox
            .send_async(job)
            .await
            .map_err(|_| MeshError::Stopped(shard))?;
        answer
            .recv_async()
            .await
            .map_err(|_| MeshError::Stopped(shard))
    }
}

impl Inbox {
    /// Serves calls until every sender is gone, each as a task of its own on this shard.
    pub async fn serve(self) {
        while let Ok(job) = self.receiver.recv_async().await {
            super::spawn_detached(job());
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    thread_local! {
        static CALLS_HERE: Cell<u32> = const { Cell::new(0) };
    }

    #[test]
    fn calls_run_on_the_target_shard_and_return_their_results() {
        let (mesh, mut inboxes) = mesh(2, 4);
        let target = inboxes.pop().expect("shard 1's inbox");
        let server = std::thread::spawn(move || {
            super::super::run_shard("mesh-target", None, move || async move {
                target.serve().await;
                CALLS_HERE.with(Cell::get)
            })
        });
        let caller_mesh = mesh.clone();
        let results = super::super::run_shard("mesh-caller", None, move || async move {
            let caller_thread = std::thread::current().id();
            let mut results = Vec::new();
            for i in 0..10_u32 {
                let (value, thread) = caller_mesh
                    .call(1, move || async move {
                        CALLS_HERE.with(|calls| calls.set(calls.get() + 1));
                        (i * 2, std::thread::current().id())
                    })
                    .await
                    .expect("shard 1 answers");
                assert_ne!(thread, caller_thread, "the call ran on the other shard");
                results.push(value);
            }
            assert_eq!(
                caller_mesh.call(7, || async {}).await,
                Err(MeshError::NoSuchShard(7))
            );
            results
        })
        .expect("caller executor");
        assert_eq!(results, (0..10).map(|i| i * 2).collect::<Vec<_>>());
        drop(mesh);
        drop(inboxes);
        let served = server
            .join()
            .expect("server thread")
            .expect("target executor");
        assert_eq!(served, 10, "every call ran on the target shard");
    }

    #[test]
    fn a_stopped_shard_fails_calls_instead_of_hanging() {
        let (mesh, inboxes) = mesh(1, 1);
        drop(inboxes);
        let result = futures_lite::future::block_on(mesh.call(0, || async { 1 }));
        assert_eq!(result, Err(MeshError::Stopped(0)));
    }
}
