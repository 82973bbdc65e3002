//! The tail cache's budget: how many bytes of already-written chunks the logs of one shard
//! may keep in memory, so consumers reading near the end are served without a disk read.
//!
//! Each log keeps its most recent written chunks while the shared budget allows, evicting
//! its own oldest first; when the budget is spent by others, it keeps nothing more (no
//! cross-log eviction in this version). Bounded by construction: the sum over logs never
//! exceeds the capacity.

use std::cell::Cell;
use std::rc::Rc;

/// A shard's tail-cache budget, shared by its logs.
#[derive(Debug)]
pub struct TailBudget {
    capacity: usize,
    used: Cell<usize>,
}

impl TailBudget {
    /// A budget of `capacity` bytes.
    pub fn new(capacity: usize) -> Rc<TailBudget> {
        Rc::new(TailBudget {
            capacity,
            used: Cell::new(0),
        })
    }

    /// Bytes currently held by logs.
    pub fn used(&self) -> usize {
        self.used.get()
    }

    /// The configured bound.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Claims `bytes` if they fit.
    pub(crate) fn try_take(&self, bytes: usize) -> bool {
        let used = self.used.get();
        if used + bytes > self.capacity {
            return false;
        }
        self.used.set(used + bytes);
        true
    }

    /// Returns `bytes` claimed earlier.
    pub(crate) fn give_back(&self, bytes: usize) {
        let used = self.used.get();
        assert!(
            bytes <= used,
            "returning {bytes} bytes of a budget with {used} in use"
        );
        self.used.set(used - bytes);
    }
}
