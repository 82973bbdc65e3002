//! Read-ahead for sequential readers (a consumer catching up): after a read that continues
//! the previous one, the log keeps up to [`READ_AHEAD_BUFFERS`] buffers of
//! [`READ_AHEAD_BYTES`] of the segment file past it, each filled by a background task, so the
//! device reads the next part while the reader processes this one, and the next read takes
//! its bytes from memory (without a copy when one buffer holds them all).
//!
//! Bounds: the buffers (and one spare, reused by the next fill) are claimed from the shard's
//! tail-cache budget; none are read when it has no room. A cut of the log drops them.

use super::read::{read_pieces, READ_PIECE_BYTES};
use super::{Log, State};
use crate::disk::{Disk, DiskFile};
use crate::notify::Notify;
use bytes::{Bytes, BytesMut};
use std::cell::RefCell;
use std::collections::VecDeque;
use std::rc::Rc;

/// Bytes in one read-ahead buffer.
pub const READ_AHEAD_BYTES: usize = 2 * 1024 * 1024;
/// Read-ahead buffers per log, the one being read included.
pub const READ_AHEAD_BUFFERS: usize = 3;
/// A read starting this far before where the last one ended (or at it) continues it: a
/// consumer resumes at the batch after the last one it got, which the index places at most
/// an index interval plus the slack of a read before that end.
pub(super) const SEQUENTIAL_SLACK_BYTES: u64 = 256 * 1024;

/// What a fill task has done.
#[derive(Debug)]
enum Fill {
    Reading,
    Ready(Bytes),
    /// The read failed or its task was dropped: readers read the file themselves.
    Failed,
}

/// A read-ahead buffer's contents, shared by the fill task and the readers.
#[derive(Debug)]
pub(super) struct AheadFill {
    fill: RefCell<Fill>,
    done: Notify,
}

impl AheadFill {
    /// The bytes once read, or `None` if the fill failed.
    pub(super) async fn wait(&self) -> Option<Bytes> {
        loop {
            let generation = self.done.generation();
            match &*self.fill.borrow() {
                Fill::Ready(bytes) => return Some(bytes.clone()),
                Fill::Failed => return None,
                Fill::Reading => {}
            }
            self.done.changed_since(generation).await;
        }
    }

    fn finish(&self, fill: Fill) {
        *self.fill.borrow_mut() = fill;
        self.done.notify_all();
    }
}

/// Marks a fill failed if its task ends without finishing (dropped at shutdown).
struct FillGuard(Rc<AheadFill>);

impl Drop for FillGuard {
    fn drop(&mut self) {
        if matches!(*self.0.fill.borrow(), Fill::Reading) {
            self.0.finish(Fill::Failed);
        }
    }
}

/// One read-ahead buffer: `len` bytes of the segment file from `pos`.
#[derive(Debug, Clone)]
pub(super) struct AheadBuffer {
    pub(super) pos: u64,
    pub(super) len: usize,
    /// What it holds of the tail-cache budget: its memory's capacity (a reused buffer
    /// shortened for a short fill keeps its capacity).
    pub(super) charged: usize,
    pub(super) fill: Rc<AheadFill>,
}

impl AheadBuffer {
    fn end(&self) -> u64 {
        self.pos + self.len as u64
    }
}

/// A log's read-ahead: for one segment, where its last disk read ended and the buffers
/// past it, contiguous and in order.
#[derive(Debug)]
pub(super) struct ReadAhead {
    pub(super) segment: i64,
    pub(super) last_end: u64,
    pub(super) buffers: VecDeque<AheadBuffer>,
    /// When a disk read last went through it.
    pub(super) touched: std::time::Instant,
}

/// What a read did below the buffered chunks, for the read-ahead to follow.
#[derive(Debug, Clone, Copy)]
pub(super) struct DiskRead {
    pub(super) segment: i64,
    pub(super) start: u64,
    pub(super) end: u64,
    /// Where the segment's buffered chunks begin (the file holds everything below).
    pub(super) on_disk: u64,
}

impl<D: Disk> Log<D> {
    /// After a read that went below the buffered chunks: if it continued the last one, drops
    /// the buffers it has passed and starts filling new ones ahead of it; otherwise drops
    /// them all.
    ///
    /// Returns whether it started a fill (the caller then yields once, so the fill's first
    /// requests go out before the caller's task runs on).
    pub(super) fn follow_read(&self, read: DiskRead, file: Option<Rc<D::File>>) -> bool {
        let mut state = self.state.borrow_mut();
        let state = &mut *state;
        if state
            .read_ahead
            .as_ref()
            .is_some_and(|a| a.segment != read.segment)
        {
            self.drop_read_ahead(state);
        }
        let ahead = state.read_ahead.get_or_insert_with(|| ReadAhead {
            segment: read.segment,
            last_end: u64::MAX,
            buffers: VecDeque::new(),
            touched: std::time::Instant::now(),
        });
        ahead.touched = std::time::Instant::now();
        let sequential =
            read.start <= ahead.last_end && ahead.last_end - read.start <= SEQUENTIAL_SLACK_BYTES;
        ahead.last_end = read.end;
        let mut released = Vec::new();
        if !sequential {
            released.extend(ahead.buffers.drain(..));
        }
        // Buffers wholly before where the next read can start are done with.
        while ahead
            .buffers
            .front()
            .is_some_and(|b| b.end() + SEQUENTIAL_SLACK_BYTES <= read.end)
        {
            released.extend(ahead.buffers.pop_front());
        }
        // The first buffer starts where the next read may, rounded down to the size of the
        // requests a fill makes, so every request is aligned as the device likes them.
        let mut frontier = ahead.buffers.back().map_or_else(
            || {
                let from = read.end.saturating_sub(SEQUENTIAL_SLACK_BYTES);
                from - from % READ_PIECE_BYTES as u64
            },
            AheadBuffer::end,
        );
        let mut wanted = Vec::new();
        while sequential
            && ahead.buffers.len() + wanted.len() < READ_AHEAD_BUFFERS
            && frontier < read.on_disk
        {
            let len = (read.on_disk - frontier).min(READ_AHEAD_BYTES as u64) as usize;
            wanted.push((frontier, len));
            frontier += len as u64;
        }
        for buffer in released {
            self.release_buffer(state, buffer);
        }
        let Some(file) = file else {
            return false;
        };
        let mut started = false;
        for (pos, len) in wanted {
            let Some(budget) = &self.config.tail_cache else {
                break;
            };
            let mut out = state.spare_read.take().unwrap_or_default();
            budget.give_back(out.capacity());
            if out.len() >= len {
                out.truncate(len);
            } else {
                out.resize(len, 0);
            }
            let charged = out.capacity();
            if !budget.try_take(charged) {
                break;
            }
            let fill = Rc::new(AheadFill {
                fill: RefCell::new(Fill::Reading),
                done: Notify::default(),
            });
            let task = fill_task(file.clone(), pos, out, fill.clone());
            if let Some(ahead) = state.read_ahead.as_mut() {
                ahead.buffers.push_back(AheadBuffer {
                    pos,
                    len,
                    charged,
                    fill,
                });
            }
            self.disk.spawn(Box::pin(task));
            started = true;
        }
        started
    }

    /// Returns a buffer's budget; its memory becomes the spare if no reader holds it. A read
    /// still holding the buffer (another reader of the log, suspended) then finds it failed
    /// and reads the file itself.
    fn release_buffer(&self, state: &mut State<D::File>, buffer: AheadBuffer) {
        if let Some(budget) = &self.config.tail_cache {
            budget.give_back(buffer.charged);
        }
        let bytes = {
            let mut fill = buffer.fill.fill.borrow_mut();
            match std::mem::replace(&mut *fill, Fill::Failed) {
                Fill::Ready(bytes) => bytes,
                other => {
                    // Still reading (its task finishes it) or already failed.
                    *fill = other;
                    return;
                }
            }
        };
        if let Ok(spare) = bytes.try_into_mut() {
            self.keep_spare(state, spare);
        }
    }

    /// Keeps a read buffer for the next fill while the tail-cache budget allows.
    fn keep_spare(&self, state: &mut State<D::File>, buffer: BytesMut) {
        if state.spare_read.is_none()
            && !buffer.is_empty()
            && self
                .config
                .tail_cache
                .as_ref()
                .is_some_and(|budget| budget.try_take(buffer.capacity()))
        {
            state.spare_read = Some(buffer);
        }
    }

    /// Forgets the read-ahead (its bytes may no longer match the file), returning its budget.
    pub(super) fn drop_read_ahead(&self, state: &mut State<D::File>) {
        if let Some(ahead) = state.read_ahead.take() {
            for buffer in ahead.buffers {
                self.release_buffer(state, buffer);
            }
        }
    }

    /// Forgets the read-ahead and the spare buffer, returning their budget.
    pub(super) fn forget_read_buffers(&self, state: &mut State<D::File>) {
        self.drop_read_ahead(state);
        if let (Some(spare), Some(budget)) = (state.spare_read.take(), &self.config.tail_cache) {
            budget.give_back(spare.capacity());
        }
    }

    /// Drops the read-ahead and the spare buffer if no disk read has gone through them for
    /// `idle`: a reader that caught up with the tail (served from memory) or stopped would
    /// otherwise keep their share of the tail-cache budget until its next disk read. Returns
    /// the budget released. The owner calls it now and then (the broker's maintenance pass).
    pub fn release_idle_read_ahead(&self, idle: std::time::Duration) -> usize {
        let mut state = self.state.borrow_mut();
        let idle = state
            .read_ahead
            .as_ref()
            .is_none_or(|ahead| ahead.touched.elapsed() >= idle);
        let claims = Self::read_ahead_claims(&state);
        if !idle || claims == 0 {
            return 0;
        }
        self.forget_read_buffers(&mut state);
        claims
    }

    /// The budget the read-ahead holds (buffers and spare), for `Drop`.
    pub(super) fn read_ahead_claims(state: &State<D::File>) -> usize {
        let buffers = state
            .read_ahead
            .as_ref()
            .map_or(0, |a| a.buffers.iter().map(|b| b.charged).sum());
        buffers + state.spare_read.as_ref().map_or(0, BytesMut::capacity)
    }
}

/// Reads `out.len()` bytes of `file` from `pos` into `out` and hands them to `fill`. The
/// fill fails if the task is dropped, even before its first poll (the guard exists first).
fn fill_task<F: DiskFile>(
    file: Rc<F>,
    pos: u64,
    mut out: BytesMut,
    fill: Rc<AheadFill>,
) -> impl std::future::Future<Output = ()> {
    let guard = FillGuard(fill);
    async move {
        let outcome = match read_pieces(&*file, pos, &mut out).await {
            Ok(true) => Fill::Ready(out.freeze()),
            Ok(false) | Err(_) => Fill::Failed,
        };
        guard.0.finish(outcome);
    }
}
