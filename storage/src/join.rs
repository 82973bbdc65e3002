//! Runs several futures of one task concurrently (no spawning, no executor dependency): the
//! flush path uses it to keep several writes in flight, as the device's queue wants, and the
//! broker to fan a request out over partitions and shards.
//!
//! Each future gets a waker of its own, and a wake-up polls only the futures that were woken:
//! with hundreds of futures in flight (a Produce touching 1000 partitions), polling all of
//! them on every wake-up would cost N² polls, and every poll of a pending I/O future hands
//! the runtime another clone of the task's waker — glommio counts those in an `i16` and
//! panics past 32767.

use std::future::Future;
use std::pin::Pin;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex, PoisonError};
use std::task::{Context, Poll, Wake, Waker};

/// The task waker the futures' wakers pass their wake-ups on to.
#[derive(Default)]
struct Parent(Mutex<Option<Waker>>);

impl Parent {
    fn set(&self, waker: &Waker) {
        let mut parent = self.0.lock().unwrap_or_else(PoisonError::into_inner);
        if !parent.as_ref().is_some_and(|p| p.will_wake(waker)) {
            *parent = Some(waker.clone());
        }
    }
}

/// One future's waker: marks it woken, then wakes the task.
struct SlotWaker {
    woken: AtomicBool,
    parent: Arc<Parent>,
}

impl Wake for SlotWaker {
    fn wake(self: Arc<Self>) {
        self.wake_by_ref();
    }

    fn wake_by_ref(self: &Arc<Self>) {
        self.woken.store(true, Ordering::Release);
        let parent = self.parent.0.lock().unwrap_or_else(PoisonError::into_inner);
        if let Some(waker) = parent.as_ref() {
            waker.wake_by_ref();
        }
    }
}

/// Polls every future until all are done; returns their outputs in order.
pub async fn join_all<F: Future>(futures: Vec<F>) -> Vec<F::Output> {
    let parent = Arc::new(Parent::default());
    JoinAll {
        slots: futures
            .into_iter()
            .map(|f| {
                let flag = Arc::new(SlotWaker {
                    // Every future is polled once at the start.
                    woken: AtomicBool::new(true),
                    parent: parent.clone(),
                });
                (Slot::Running(Box::pin(f)), flag.clone(), Waker::from(flag))
            })
            .collect(),
        parent,
    }
    .await
}

enum Slot<F: Future> {
    Running(Pin<Box<F>>),
    Done(Option<F::Output>),
}

struct JoinAll<F: Future> {
    slots: Vec<(Slot<F>, Arc<SlotWaker>, Waker)>,
    parent: Arc<Parent>,
}

impl<F: Future> Unpin for JoinAll<F> {}

impl<F: Future> Future for JoinAll<F> {
    type Output = Vec<F::Output>;

    fn poll(mut self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<Self::Output> {
        self.parent.set(cx.waker());
        let mut pending = false;
        for (slot, flag, waker) in &mut self.slots {
            let Slot::Running(future) = slot else {
                continue;
            };
            if !flag.woken.swap(false, Ordering::AcqRel) {
                pending = true;
                continue;
            }
            match future.as_mut().poll(&mut Context::from_waker(waker)) {
                Poll::Ready(output) => *slot = Slot::Done(Some(output)),
                Poll::Pending => pending = true,
            }
        }
        if pending {
            return Poll::Pending;
        }
        let outputs = self
            .slots
            .iter_mut()
            .filter_map(|(slot, _, _)| match slot {
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

/// Lets every other ready task of the executor run once before the caller goes on.
pub async fn yield_now() {
    let mut yielded = false;
    std::future::poll_fn(|cx| {
        if yielded {
            return Poll::Ready(());
        }
        yielded = true;
        cx.waker().wake_by_ref();
        Poll::Pending
    })
    .await;
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

    /// A future that is pending until its flag is set, counting its polls.
    struct Gate {
        open: std::rc::Rc<std::cell::Cell<bool>>,
        polls: std::rc::Rc<std::cell::Cell<u32>>,
        waker: std::rc::Rc<std::cell::RefCell<Option<Waker>>>,
    }

    impl Future for Gate {
        type Output = ();

        fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
            self.polls.set(self.polls.get() + 1);
            if self.open.get() {
                return Poll::Ready(());
            }
            *self.waker.borrow_mut() = Some(cx.waker().clone());
            Poll::Pending
        }
    }

    #[test]
    fn a_wake_up_polls_only_the_future_it_woke() {
        use std::cell::{Cell, RefCell};
        use std::rc::Rc;
        let gates: Vec<_> = (0..100)
            .map(|_| {
                (
                    Rc::new(Cell::new(false)),
                    Rc::new(Cell::new(0)),
                    Rc::new(RefCell::new(None::<Waker>)),
                )
            })
            .collect();
        let futures: Vec<Gate> = gates
            .iter()
            .map(|(open, polls, waker)| Gate {
                open: open.clone(),
                polls: polls.clone(),
                waker: waker.clone(),
            })
            .collect();
        let mut joined = Box::pin(join_all(futures));
        let task = Arc::new(Counter::default());
        let waker = Waker::from(task.clone());
        let mut cx = Context::from_waker(&waker);
        assert!(joined.as_mut().poll(&mut cx).is_pending());
        // Open the gates one by one, waking each: the task is woken each time, and each
        // wake-up polls the woken future only.
        for (i, (open, _, stored)) in gates.iter().enumerate() {
            open.set(true);
            stored.borrow_mut().take().expect("registered").wake();
            assert_eq!(task.0.load(Ordering::Acquire), i + 1);
            let done = joined.as_mut().poll(&mut cx);
            assert_eq!(done.is_ready(), i == gates.len() - 1);
        }
        assert!(
            gates.iter().all(|(_, polls, _)| polls.get() == 2),
            "polled twice each"
        );
    }

    #[derive(Default)]
    struct Counter(std::sync::atomic::AtomicUsize);

    impl Wake for Counter {
        fn wake(self: Arc<Self>) {
            self.0.fetch_add(1, Ordering::AcqRel);
        }
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
