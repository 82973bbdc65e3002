//! Byte budgets shared by the logs of one shard, so their memory is bounded per shard
//! whatever the number of partitions:
//!
//! - the tail cache ([`crate::LogConfig::tail_cache`]): written chunks kept in memory so
//!   consumers reading near the end are served without a disk read. Each log keeps its most
//!   recent chunks while the budget allows, evicting its own oldest first; when others have
//!   spent the budget it keeps nothing more (no cross-log eviction in this version);
//! - the write-behind buffers ([`crate::LogConfig::write_budget`]): bytes appended and not
//!   yet handed to a flush. An append that does not fit gets `BufferFull`: flush, then retry.
//!
//! Bounded by construction: the sum over logs never exceeds the capacity.

use std::cell::Cell;
use std::rc::Rc;

/// A shard's byte budget, shared by its logs.
#[derive(Debug)]
pub struct Budget {
    capacity: usize,
    used: Cell<usize>,
}

impl Budget {
    /// A budget of `capacity` bytes.
    pub fn new(capacity: usize) -> Rc<Budget> {
        Rc::new(Budget {
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
    pub fn try_take(&self, bytes: usize) -> bool {
        let used = self.used.get();
        if used + bytes > self.capacity {
            return false;
        }
        self.used.set(used + bytes);
        true
    }

    /// Returns `bytes` claimed earlier.
    pub fn give_back(&self, bytes: usize) {
        let used = self.used.get();
        assert!(
            bytes <= used,
            "returning {bytes} bytes of a budget with {used} in use"
        );
        self.used.set(used - bytes);
    }
}
