//! A shard's pool of write-behind buffers: a log's chunk, once written and no longer kept for
//! reads, goes back here instead of to the allocator, and the next chunk comes from here.
//! Without it every chunk is a fresh aligned allocation (glommio's registered memory is a few
//! MiB per shard, the rest comes from the heap): page faults on first touch, a zero fill, and
//! the pages handed back to the kernel when freed — per 256 KiB chunk, at GiB/s.
//!
//! Bounded: it keeps at most [`BufferPool::capacity`] bytes of free buffers. Callers give
//! back only buffers at their allocated length (a buffer trimmed for its write keeps its
//! allocation but cannot grow back, and would be counted short). A buffer taken from it holds
//! whatever its last user left: callers write every byte that reaches a disk.

use super::DiskBuffer;
use std::cell::{Cell, RefCell};

/// Free buffers kept per pool (per shard): 32 chunks of the default 256 KiB. In use, buffers
/// are bounded by the logs' own budgets (`LogConfig`); this bounds what is kept while none
/// needs them.
pub const BUFFER_POOL_BYTES: usize = 8 << 20;

/// Free buffers of one shard.
#[derive(Debug)]
pub struct BufferPool<B> {
    capacity: usize,
    free: RefCell<Vec<B>>,
    free_bytes: Cell<usize>,
    reused: Cell<u64>,
    allocated: Cell<u64>,
}

impl<B: DiskBuffer> BufferPool<B> {
    /// A pool keeping up to `capacity` bytes of free buffers.
    pub fn new(capacity: usize) -> BufferPool<B> {
        BufferPool {
            capacity,
            free: RefCell::new(Vec::new()),
            free_bytes: Cell::new(0),
            reused: Cell::new(0),
            allocated: Cell::new(0),
        }
    }

    /// The most bytes of free buffers it keeps.
    pub fn capacity(&self) -> usize {
        self.capacity
    }

    /// Bytes of free buffers it holds now.
    pub fn free_bytes(&self) -> usize {
        self.free_bytes.get()
    }

    /// Takes reused so far, and takes that had to allocate.
    pub fn counts(&self) -> (u64, u64) {
        (self.reused.get(), self.allocated.get())
    }

    /// A buffer of `len` bytes: a free one if the pool has one, else `alloc()`'s.
    pub fn take(&self, len: usize, alloc: impl FnOnce() -> B) -> B {
        let mut free = self.free.borrow_mut();
        if let Some(at) = free.iter().rposition(|b| b.bytes().len() == len) {
            self.free_bytes.set(self.free_bytes.get() - len);
            self.reused.set(self.reused.get() + 1);
            return free.swap_remove(at);
        }
        drop(free);
        self.allocated.set(self.allocated.get() + 1);
        alloc()
    }

    /// Keeps `buffer` (at its allocated length, not trimmed) for a later take if it fits;
    /// drops it otherwise. Buffers of other lengths than the one asked for go first, so a
    /// length nobody takes any more does not hold the pool.
    pub fn give(&self, buffer: B) {
        let len = buffer.bytes().len();
        if len == 0 || len > self.capacity {
            return;
        }
        let mut free = self.free.borrow_mut();
        while self.free_bytes.get() + len > self.capacity {
            let Some(at) = free.iter().position(|b| b.bytes().len() != len) else {
                return;
            };
            let evicted = free.swap_remove(at);
            self.free_bytes
                .set(self.free_bytes.get() - evicted.bytes().len());
        }
        self.free_bytes.set(self.free_bytes.get() + len);
        free.push(buffer);
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::memory::{MemoryBuffer, MemoryDisk};
    use crate::disk::Disk;

    fn buffer(len: usize, fill: u8) -> MemoryBuffer {
        let mut buffer = MemoryDisk::default().alloc_buffer(len);
        buffer.bytes_mut().fill(fill);
        buffer
    }

    #[test]
    fn a_buffer_given_back_is_taken_again_without_allocating() {
        let pool = BufferPool::new(1 << 20);
        let first = pool.take(4096, || buffer(4096, 1));
        assert_eq!(pool.counts(), (0, 1));
        pool.give(first);
        assert_eq!(pool.free_bytes(), 4096);
        let again = pool.take(4096, || panic!("the free buffer should be reused"));
        assert_eq!(
            again.bytes()[0],
            1,
            "the same buffer, as its last user left it"
        );
        assert_eq!(pool.counts(), (1, 1));
        assert_eq!(pool.free_bytes(), 0);
    }

    #[test]
    fn it_keeps_no_more_than_its_capacity_and_serves_only_the_length_asked_for() {
        let pool = BufferPool::new(3 * 4096);
        for _ in 0..5 {
            pool.give(buffer(4096, 0));
        }
        assert_eq!(pool.free_bytes(), 3 * 4096, "bounded by its capacity");
        // Another length is served by allocation, never by a buffer of the wrong length.
        let other = pool.take(8192, || buffer(8192, 7));
        assert_eq!(other.bytes().len(), 8192);
        assert_eq!(pool.counts(), (0, 1));
        // Given back, it displaces buffers of other lengths rather than being refused.
        pool.give(other);
        assert_eq!(pool.free_bytes(), 8192 + 4096);
        let again = pool.take(8192, || panic!("the 8 KiB buffer should be kept"));
        assert_eq!(again.bytes()[0], 7);
        assert_eq!(pool.free_bytes(), 4096);
    }
}
