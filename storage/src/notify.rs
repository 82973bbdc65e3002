//! A single-threaded "something changed" signal: waiters remember the generation they saw
//! and wake when it moves. For a shard's tasks only (no `Send`, no locks).

use std::cell::{Cell, RefCell};
use std::future::Future;
use std::pin::Pin;
use std::task::{Context, Poll, Waker};

/// Wakes every waiter on each [`Notify::notify_all`].
#[derive(Debug, Default)]
pub(crate) struct Notify {
    generation: Cell<u64>,
    waiters: RefCell<Vec<Waker>>,
}

impl Notify {
    /// The current generation, to pass to [`Notify::changed_since`] after checking state.
    pub(crate) fn generation(&self) -> u64 {
        self.generation.get()
    }

    /// Wakes all waiters.
    pub(crate) fn notify_all(&self) {
        self.generation.set(self.generation.get().wrapping_add(1));
        for waker in self.waiters.borrow_mut().drain(..) {
            waker.wake();
        }
    }

    /// Resolves once a notification after `generation` happened.
    pub(crate) fn changed_since(&self, generation: u64) -> Changed<'_> {
        Changed {
            notify: self,
            generation,
        }
    }
}

/// The future of [`Notify::changed_since`].
#[derive(Debug)]
pub(crate) struct Changed<'a> {
    notify: &'a Notify,
    generation: u64,
}

impl Future for Changed<'_> {
    type Output = ();

    fn poll(self: Pin<&mut Self>, cx: &mut Context<'_>) -> Poll<()> {
        if self.notify.generation.get() != self.generation {
            return Poll::Ready(());
        }
        let mut waiters = self.notify.waiters.borrow_mut();
        if !waiters.iter().any(|w| w.will_wake(cx.waker())) {
            waiters.push(cx.waker().clone());
        }
        Poll::Pending
    }
}
