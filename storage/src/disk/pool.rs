//! A shard's pool of write-behind buffers: a log's chunk, once written and no longer kept for
//! reads, goes back here instead of to the allocator, and the next chunk comes from here.
//! Without it every chunk is a fresh aligned allocation (glommio's registered memory is a few
//! MiB per shard, the rest comes from the heap): page faults on first touch, a zero fill, and
//! the pages handed back to the kernel when freed — per 256 KiB chunk, at GiB/s.
//!
//! Bounded: it keeps at most [`BufferPool::capacity`] bytes of free buffers, and only buffers
//! of a length a caller has asked for (a trimmed buffer, shortened for its write, is not
//! reusable and is dropped). A buffer taken from it holds whatever its last user left: callers
//! write every byte that reaches a disk.

use super::DiskBuffer;
use std::cell::{Cell, RefCell};

/// Free buffers kept per pool (per shard): 32 chunks of the default 256 KiB. In use, buffers
/// are bounded by the logs' own budgets (`LogConfig`); this bounds what is kept while none
/// needs them.
pub const BUFFER_POOL_BYTES: usize = 8 << 20;

/// Lengths a pool keeps buffers of (the chunk sizes its logs use).
const MAX_SIZES: usize = 4;

/// Free buffers of one shard.
#[derive(Debug)]
pub struct BufferPool<B> {
    capacity: usize,
    free: RefCell<Vec<B>>,
    free_bytes: Cell<usize>,
    /// Lengths asked for by [`BufferPool::take`], most recent last.
    sizes: RefCell<Vec<usize>>,
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
            sizes: RefCell::new(Vec::new()),
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
        {
            let mut sizes = self.sizes.borrow_mut();
            if sizes.last() != Some(&len) {
                sizes.retain(|&size| size != len);
                if sizes.len() == MAX_SIZES {
                    sizes.remove(0);
                }
                sizes.push(len);
            }
        }
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

    /// Keeps `buffer` for a later take if it has a length asked for and fits; drops it
    /// otherwise.
    pub fn give(&self, buffer: B) {
        let len = buffer.bytes().len();
        if len == 0
            || self.free_bytes.get() + len > self.capacity
            || !self.sizes.borrow().contains(&len)
        {
            return;
        }
        self.free_bytes.set(self.free_bytes.get() + len);
        self.free.borrow_mut().push(buffer);
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
    fn it_keeps_only_lengths_asked_for_and_no_more_than_its_capacity() {
        let pool = BufferPool::new(3 * 4096);
        let _ = pool.take(4096, || buffer(4096, 0));
        // A trimmed buffer (a length nobody takes) is dropped.
        pool.give(buffer(2048, 0));
        assert_eq!(pool.free_bytes(), 0);
        for _ in 0..5 {
            pool.give(buffer(4096, 0));
        }
        assert_eq!(pool.free_bytes(), 3 * 4096, "bounded by its capacity");
        // Another length is served by allocation, never by a buffer of the wrong length.
        let other = pool.take(8192, || buffer(8192, 7));
        assert_eq!(other.bytes().len(), 8192);
        assert_eq!(pool.counts(), (0, 2));
    }
}
