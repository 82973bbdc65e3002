//! Calls between shards: each shard has an inbox; any shard can ask another to run a
//! closure there and await its result. The closure and its result cross threads (`Send`);
//! the future it makes runs on the target shard with that shard's context (`Rc<C>`, the
//! shard's own state, never shared).
//!
//! Inboxes are bounded: a caller waits while the target's inbox is full (back-pressure), and
//! a call to a shard that has stopped fails instead of hanging.

use std::fmt;
use std::future::Future;
use std::pin::Pin;
use std::rc::Rc;

/// A unit of work for another shard: called there with its context, it yields the future
/// to run.
type Job<C> = Box<dyn FnOnce(Rc<C>) -> Pin<Box<dyn Future<Output = ()>>> + Send>;

/// Why a cross-shard call failed.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum MeshError {
    /// No such shard.
    #[error("there is no shard {0}")]
    NoSuchShard(usize),
    /// The shard stopped before answering.
    #[error("shard {0} has stopped")]
    Stopped(usize),
    /// The shard took the call but dropped it without an answer.
    #[error("shard {0} dropped the call without answering")]
    Dropped(usize),
}

/// The senders to every shard's inbox; cheap to clone, shareable across threads.
pub struct Mesh<C> {
    inboxes: Vec<flume::Sender<Job<C>>>,
}

impl<C> Clone for Mesh<C> {
    fn clone(&self) -> Self {
        Mesh {
            inboxes: self.inboxes.clone(),
        }
    }
}

impl<C> fmt::Debug for Mesh<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Mesh")
            .field("shards", &self.inboxes.len())
            .finish()
    }
}

/// One shard's incoming calls.
pub struct Inbox<C> {
    receiver: flume::Receiver<Job<C>>,
}

impl<C> fmt::Debug for Inbox<C> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.debug_struct("Inbox")
            .field("pending", &self.receiver.len())
            .finish()
    }
}

/// A mesh of `shards` inboxes holding at most `capacity` pending calls each.
pub fn mesh<C>(shards: usize, capacity: usize) -> (Mesh<C>, Vec<Inbox<C>>) {
    assert!(shards > 0 && capacity > 0);
    let (senders, receivers): (Vec<_>, Vec<_>) =
        (0..shards).map(|_| flume::bounded(capacity)).unzip();
    let inboxes = receivers
        .into_iter()
        .map(|receiver| Inbox { receiver })
        .collect();
    (Mesh { inboxes: senders }, inboxes)
}

impl<C: 'static> Mesh<C> {
    /// The number of shards.
    pub fn shards(&self) -> usize {
        self.inboxes.len()
    }

    /// Runs `make(context)`'s future on `shard` and returns its output.
    pub async fn call<R, F, Fut>(&self, shard: usize, make: F) -> Result<R, MeshError>
    where
        R: Send + 'static,
        F: FnOnce(Rc<C>) -> Fut + Send + 'static,
        Fut: Future<Output = R> + 'static,
    {
        let inbox = self
            .inboxes
            .get(shard)
            .ok_or(MeshError::NoSuchShard(shard))?;
        let (reply, answer) = flume::bounded(1);
        let job: Job<C> = Box::new(move |context| {
            Box::pin(async move {
                let output = make(context).await;
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
            .map_err(|_| MeshError::Dropped(shard))
    }
}

impl<C: 'static> Inbox<C> {
    /// Serves calls until every sender is gone, each as a task of its own on this shard,
    /// handing each the shard's `context`.
    pub async fn serve(self, context: Rc<C>) {
        while let Ok(job) = self.receiver.recv_async().await {
            super::spawn_detached(job(context.clone()));
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::cell::Cell;

    #[test]
    fn calls_run_on_the_target_shard_and_return_their_results() {
        let (mesh, mut inboxes) = mesh::<Cell<u32>>(2, 4);
        let target = inboxes.pop().expect("shard 1's inbox");
        let server = std::thread::spawn(move || {
            super::super::run_shard("mesh-target", None, move || async move {
                let calls = Rc::new(Cell::new(0));
                target.serve(calls.clone()).await;
                calls.get()
            })
        });
        let caller_mesh = mesh.clone();
        let results = super::super::run_shard("mesh-caller", None, move || async move {
            let caller_thread = std::thread::current().id();
            let mut results = Vec::new();
            for i in 0..10_u32 {
                let (value, thread) = caller_mesh
                    .call(1, move |calls: Rc<Cell<u32>>| async move {
                        calls.set(calls.get() + 1);
                        (i * 2, std::thread::current().id())
                    })
                    .await
                    .expect("shard 1 answers");
                assert_ne!(thread, caller_thread, "the call ran on the other shard");
                results.push(value);
            }
            assert_eq!(
                caller_mesh.call(7, |_| async {}).await,
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
        assert_eq!(
            served, 10,
            "every call ran on the target shard with its context"
        );
    }

    #[test]
    fn a_stopped_shard_fails_calls_instead_of_hanging() {
        let (mesh, inboxes) = mesh::<()>(1, 1);
        drop(inboxes);
        let result = futures_lite::future::block_on(mesh.call(0, |_| async { 1 }));
        assert_eq!(result, Err(MeshError::Stopped(0)));
    }
}
