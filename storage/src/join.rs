//! Runs several futures of one task concurrently (no spawning, no executor dependency): the
//! flush path uses it to keep several writes in flight, as the device's queue wants.

use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll};

/// Polls every future until all are done; returns their outputs in order.
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    JoinAll {
        futures: futures
            .into_iter()
            .map(|f| Slot::Running(Box::pin(f)))
            .collect(),
    }
    .await
}

enum Slot<F: Future> {
    Running(Pin<Box<F>>),
    Done(Option<F::Output>),
}

struct JoinAll<F: Future> {
    futures: Vec<Slot<F>>,
}

impl<F: Future> Unpin for JoinAll<F> {}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        let mut pending = false;
        for slot in &mut self.futures {
            if let Slot::Running(future) = slot {
                match future.as_mut().poll(cx) {
                    Poll::Ready(output) => *slot = Slot::Done(Some(output)),
                    Poll::Pending => pending = true,
                }
            }
        }
        if pending {
            return Poll::Pending;
        }
        let outputs = self
            .futures
            .iter_mut()
            .filter_map(|slot| match slot {
                Slot::Done(output) => output.take(),
                Slot::Running(_) => None,
            })
            .collect();
        Poll::Ready(outputs)
    }
}

/// Resolves when the first of `futures` does (with its index and output); the others are
/// dropped. Pending forever for an empty list.
pub async fn first_of<F: Future>(futures: Vec<F>) -> (usize, F::Output) {
    FirstOf {
        futures: futures.into_iter().map(Box::pin).collect(),
    }
    .await
}

struct FirstOf<F: Future> {
    futures: Vec<Pin<Box<F>>>,
}

impl<F: Future> Unpin for FirstOf<F> {}

impl<F: Future> Future for FirstOf<F> {
    type Output = (usize, F::Output);

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        for (index, future) in self.futures.iter_mut().enumerate() {
            if let Poll::Ready(output) = future.as_mut().poll(cx) {
                return Poll::Ready((index, output));
            }
        }
        Poll::Pending
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn outputs_come_back_in_order() {
        let futures: Vec<_> = (0..5).map(|i| async move { i * 10 }).collect();
        assert_eq!(
            futures_lite::future::block_on(join_all(futures)),
            vec![0, 10, 20, 30, 40]
        );
        let none: Vec<std::future::Ready<u8>> = Vec::new();
        assert!(futures_lite::future::block_on(join_all(none)).is_empty());
    }

    #[test]
    fn the_first_ready_future_wins() {
        let futures: Vec<std::pin::Pin<Box<dyn Future<Output = u8>>>> = vec![
            Box::pin(std::future::pending()),
            Box::pin(async { 7 }),
            Box::pin(async { 9 }),
        ];
        assert_eq!(futures_lite::future::block_on(first_of(futures)), (1, 7));
    }
}
