//! Write-behind that starts early: a chunk that fills up is handed to the disk at once, by a
//! background task, instead of waiting for the next flush. The device then sees a steady queue
//! of writes (as the raw write probe keeps) rather than one burst per flush, and a flush only
//! writes the last, partial chunk and waits for the early writes before its fdatasync.
//!
//! Rules that keep every byte right:
//! - Only a full chunk starts early: it ends on its buffer's (aligned) end, so no later write
//!   covers any of its pages.
//! - A chunk starts early only once every earlier chunk whose write covers any of its bytes
//!   has completed, so two writes of one page never race: the previous chunk's last partial
//!   page is carried into the next chunk and rewritten there. (A closed chunk is trimmed to
//!   its pages, so only that page overlaps; the rule does not depend on it.)
//! - Only into a file that exists and is preallocated past the chunk (a flush creates and
//!   extends files; a write never changes the file's size).
//! - A flush's own writes go through the same background tasks and are recorded in their
//!   chunks, so a flush cancelled mid-write leaves writes that later flushes and truncation
//!   wait for, never repeat alongside.
//! - Bookkeeping stays with the flushes: the next flush waits for every early write it covers
//!   and only then counts those chunks as written (kept for reads or released), in order.
//!   A write whose task was dropped is written by that flush; a failed one fails it.

use super::{Chunk, Segment};
use crate::disk::{Disk, DiskBuffer, DiskFile};
use crate::notify::Notify;
use crate::stats::IoStats;
use std::cell::RefCell;
use std::io;
use std::rc::Rc;

/// Who writes a closed chunk.
#[derive(Debug, Default)]
pub(super) enum ChunkWrite {
    /// Nobody yet: the next flush, or an early write.
    #[default]
    Pending,
    /// Gathered by a flush, its write not started yet (a phase that was abandoned leaves it
    /// for the next flush).
    Flushing,
    /// Its write is started: an early write, or a flush's (both run in background tasks).
    Early(Rc<EarlyWrite>),
}

/// What an early write did.
#[derive(Debug, Clone)]
pub(super) enum Outcome {
    InFlight,
    Written,
    Failed(io::ErrorKind, String),
    /// Its task ended without writing (dropped at shutdown, or a disk that cannot run
    /// background tasks): the flush writes the chunk itself.
    Abandoned,
}

/// An early write's outcome, shared by its task and the flush that waits for it.
#[derive(Debug)]
pub(super) struct EarlyWrite {
    outcome: RefCell<Outcome>,
    done: Notify,
}

impl EarlyWrite {
    /// Resolves once the write has ended.
    pub(super) async fn wait(&self) -> Outcome {
        loop {
            let generation = self.done.generation();
            let outcome = self.outcome.borrow().clone();
            if !matches!(outcome, Outcome::InFlight) {
                return outcome;
            }
            self.done.changed_since(generation).await;
        }
    }

    /// Completed successfully (without waiting).
    pub(super) fn written(&self) -> bool {
        matches!(*self.outcome.borrow(), Outcome::Written)
    }

    fn finish(&self, outcome: Outcome) {
        *self.outcome.borrow_mut() = outcome;
        self.done.notify_all();
    }
}

/// Marks the write abandoned if its task is dropped before it finished.
struct Guard(Rc<EarlyWrite>);

impl Drop for Guard {
    fn drop(&mut self) {
        if matches!(*self.0.outcome.borrow(), Outcome::InFlight) {
            self.0.finish(Outcome::Abandoned);
        }
    }
}

/// Pauses early writes of a log while it lives (a suffix truncation).
pub(super) struct PauseEarlyWrites<'a, D: Disk>(&'a super::Log<D>);

impl<'a, D: Disk> PauseEarlyWrites<'a, D> {
    pub(super) fn new(log: &'a super::Log<D>) -> Self {
        log.state.borrow_mut().early_writes_paused += 1;
        PauseEarlyWrites(log)
    }
}

impl<D: Disk> Drop for PauseEarlyWrites<'_, D> {
    fn drop(&mut self) {
        if let Ok(mut state) = self.0.state.try_borrow_mut() {
            state.early_writes_paused = state.early_writes_paused.saturating_sub(1);
        }
    }
}

impl<D: Disk> super::Log<D> {
    /// The early writes of every chunk still held.
    pub(super) fn early_writes(&self) -> Vec<Rc<EarlyWrite>> {
        let state = self.state.borrow();
        state
            .segments
            .values()
            .flat_map(|segment| segment.chunks.iter())
            .filter_map(|chunk| match &chunk.write {
                ChunkWrite::Early(write) => Some(write.clone()),
                _ => None,
            })
            .collect()
    }
}

/// Whether `chunk`'s write is known to have completed.
fn on_disk<B>(chunk: &Chunk<B>) -> bool {
    chunk.retained > 0 || matches!(&chunk.write, ChunkWrite::Early(early) if early.written())
}

/// Starts early writes for the segment's full chunks that may go now (see the module notes).
pub(super) fn start_early_writes<D: Disk>(
    disk: &D,
    segment: &mut Segment<D::File>,
    stats: &Rc<IoStats>,
) {
    let Some(file) = segment.file.clone() else {
        return;
    };
    // The unwritten chunks are the deque's suffix after the kept (written) ones.
    let first_unwritten = segment
        .chunks
        .iter()
        .rposition(|chunk| chunk.retained > 0)
        .map_or(0, |kept| kept + 1);
    // The furthest byte an earlier write not known to be complete covers (chunks are in
    // file order; a write covers its chunk's whole buffer).
    let mut unfinished_end = 0;
    for index in first_unwritten..segment.chunks.len() {
        let chunk = &segment.chunks[index];
        let full = !chunk.open && chunk.len == chunk.buffer.bytes().len();
        let eligible = full
            && matches!(chunk.write, ChunkWrite::Pending)
            && chunk.pos + chunk.len as u64 <= segment.allocated
            && unfinished_end <= chunk.pos;
        if !on_disk(chunk) {
            unfinished_end = unfinished_end.max(chunk.pos + chunk.buffer.bytes().len() as u64);
        }
        if !eligible {
            continue;
        }
        let write = spawn_write(disk, &file, &chunk.buffer, chunk.pos, stats);
        segment.chunks[index].write = ChunkWrite::Early(write);
    }
}

/// Writes `buffer` at `pos` in a background task, which runs to its end even if whoever
/// waits for it goes away (a cancelled flush): a later flush or a truncation waits for the
/// write through the returned outcome instead of racing it with a write of its own.
pub(super) fn spawn_write<D: Disk>(
    disk: &D,
    file: &Rc<D::File>,
    buffer: &Rc<<D::File as DiskFile>::Buffer>,
    pos: u64,
    stats: &Rc<IoStats>,
) -> Rc<EarlyWrite> {
    let write = Rc::new(EarlyWrite {
        outcome: RefCell::new(Outcome::InFlight),
        done: Notify::default(),
    });
    let task = {
        let guard = Guard(write.clone());
        let (file, buffer, stats) = (file.clone(), buffer.clone(), stats.clone());
        async move {
            let outcome = match file.write_at(buffer, pos).await {
                Ok(written) => {
                    IoStats::add(&stats.written_bytes, written as u64);
                    Outcome::Written
                }
                Err(error) => Outcome::Failed(error.kind(), error.to_string()),
            };
            guard.0.finish(outcome);
        }
    };
    disk.spawn(Box::pin(task));
    write
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::disk::memory::{MemoryBuffer, MemoryDisk};
    use futures_lite::future::block_on;
    use spate_model::Offset;
    use std::path::Path;

    const PAGE: usize = 4096;

    fn chunk(disk: &MemoryDisk, pos: u64, len: usize, carried: usize) -> Chunk<MemoryBuffer> {
        let mut chunk = Chunk::open_at(Rc::new(disk.alloc_buffer(len)), pos, carried);
        chunk.len = len;
        chunk.open = false;
        chunk
    }

    fn is_early<B>(chunk: &Chunk<B>) -> bool {
        matches!(chunk.write, ChunkWrite::Early(_))
    }

    #[test]
    fn a_chunk_starting_with_a_carried_page_waits_for_the_write_before_it() {
        let disk = MemoryDisk::default();
        block_on(disk.create_dir_all(Path::new("/d"))).expect("dir");
        let file = block_on(disk.open(Path::new("/d/f"), true)).expect("file");
        let stats = Rc::new(IoStats::default());
        let mut segment = Segment::new(Offset(0), 4096);
        segment.file = Some(Rc::new(file));
        segment.allocated = 64 * PAGE as u64;
        // A flush is writing a trimmed chunk whose last page the next chunk carries.
        let mut first = chunk(&disk, 0, 3 * PAGE, 0);
        first.write = ChunkWrite::Flushing;
        segment.chunks.push_back(first);
        segment
            .chunks
            .push_back(chunk(&disk, 2 * PAGE as u64, 4 * PAGE, 100));
        // A full chunk that carries nothing, and one past the preallocation.
        segment
            .chunks
            .push_back(chunk(&disk, 6 * PAGE as u64, 4 * PAGE, 0));
        segment
            .chunks
            .push_back(chunk(&disk, 62 * PAGE as u64, 4 * PAGE, 0));
        start_early_writes(&disk, &mut segment, &stats);
        let early: Vec<bool> = segment.chunks.iter().map(is_early).collect();
        assert_eq!(early, [false, false, true, false]);
        assert_eq!(stats.written_bytes.get(), 4 * PAGE as u64);
        // Once the flush's write is done, the carried chunk may go.
        segment.chunks[0].retained = 3 * PAGE;
        start_early_writes(&disk, &mut segment, &stats);
        let early: Vec<bool> = segment.chunks.iter().map(is_early).collect();
        assert_eq!(early, [false, true, true, false]);
        // A write reaching past its chunk's bytes (a buffer longer than its pages): the next
        // chunk, though it carries nothing, waits for that write.
        segment.chunks.clear();
        let mut untrimmed = chunk(&disk, 0, 8 * PAGE, 0);
        untrimmed.len = 4 * PAGE;
        untrimmed.write = ChunkWrite::Flushing;
        segment.chunks.push_back(untrimmed);
        segment
            .chunks
            .push_back(chunk(&disk, 4 * PAGE as u64, 4 * PAGE, 0));
        start_early_writes(&disk, &mut segment, &stats);
        assert!(!segment.chunks.iter().any(is_early));
        segment.chunks[0].retained = 8 * PAGE;
        start_early_writes(&disk, &mut segment, &stats);
        assert!(is_early(&segment.chunks[1]));
        // The open chunk never goes early, nor does a chunk that is not full.
        segment.chunks.clear();
        let mut open = chunk(&disk, 0, 4 * PAGE, 0);
        open.open = true;
        segment.chunks.push_back(open);
        let mut trimmed = chunk(&disk, 4 * PAGE as u64, 4 * PAGE, 0);
        trimmed.len -= 1;
        segment.chunks.push_back(trimmed);
        start_early_writes(&disk, &mut segment, &stats);
        assert!(!segment.chunks.iter().any(is_early));
        // Nor does anything before the flush creates the file.
        segment.chunks.clear();
        segment.file = None;
        segment.chunks.push_back(chunk(&disk, 0, 4 * PAGE, 0));
        start_early_writes(&disk, &mut segment, &stats);
        assert!(!segment.chunks.iter().any(is_early));
    }
}
