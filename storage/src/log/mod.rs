//! One partition's log: segments of stamped record batches, appended through aligned
//! write-behind buffers, made durable by group commit, read back by offset, recovered after a
//! crash.
//!
//! Owned by one shard: `&self` methods with interior mutability, no borrow held across an
//! `.await`, so appends go on while a flush is in flight.
//!
//! Write path. [`Log::append`] stamps the batch's base offset and leader epoch while copying
//! it into the active segment's current chunk — an aligned buffer from the shard's pool
//! ([`crate::disk::pool`]; chunks go back to it once written and no longer kept for reads,
//! and pages past a chunk's bytes are zeroed when it is written) — which is the one copy
//! direct I/O requires. A chunk that fills up is written at once by a background
//! task (an early write, see [`eager`]), so the device sees a steady queue of writes.
//! [`Log::flush`] writes the rest (the partial last chunk), waits for the early writes, then
//! `fdatasync`s; appends that arrive meanwhile land in new chunks and are covered by the next
//! flush (group commit: concurrent callers of `flush` share one). A chunk's last, partial
//! page is copied into the next chunk and rewritten there, so every write is aligned.
//! Chunks stay readable until their write completes; after that reads go to the disk.
//!
//! Read path. A read finds the segment, starts at the index entry at or below the offset, and
//! returns whole batches as a slice of the bytes read (one copy, out of the disk's buffer; a
//! large read goes out as several requests at once). After a read that continues the previous
//! one (a consumer catching up), background tasks fill up to [`READ_AHEAD_BUFFERS`] buffers of
//! [`READ_AHEAD_BYTES`] ahead of it, so the device reads on while the reader works; they are
//! held within the shard's tail-cache budget and dropped when the log is cut.
//!
//! On disk. `<dir>/<base offset:020>.log` holds the batches; it is preallocated ahead of the
//! appends, by a step that starts at [`MIN_PREALLOCATE_BYTES`] and doubles with each
//! extension up to `preallocate_bytes` (so a busy segment grows in large steps while an idle
//! partition holds little disk), and the file's size is not the log's end until a segment is
//! sealed or the log is closed, when the file is truncated to its end. `.index` holds the sparse offset index; the
//! active segment's index is written when it is sealed or the log is closed cleanly, and
//! rebuilt by scanning after a crash. `.clean-shutdown` says the last close was clean.
//!
//! Recovery. Without the marker, the active segment is scanned from its last valid index
//! entry: every batch's framing, CRC and offsets are checked, and the log ends before the
//! first batch that fails (a torn or never-written tail; the rest of the file is ignored and
//! overwritten by later appends). Sealed segments are trusted to their (truncated) size; a
//! missing or damaged index is rebuilt by scanning. Batches read from disk are CRC-checked
//! on every read, so a corrupt batch in a sealed segment is reported, never served.

mod ahead;
mod chunks;
mod eager;
mod maintenance;
mod read;
mod recovery;

use crate::budget::Budget;
use crate::disk::{Disk, DiskBuffer, DiskFile};
use crate::epochs::{EpochCache, LEADER_EPOCH_FILE};
use crate::notify::Notify;
use crate::segment::{self, SegmentIndex};
use crate::stats::IoStats;
pub use ahead::{READ_AHEAD_BUFFERS, READ_AHEAD_BYTES};
use chunks::{close_open_chunk, write_into_chunks};
pub use maintenance::Retention;
use read::ReadPlan;
use recovery::recover_segment;
use spate_model::{LeaderEpoch, Offset, RecordBatch};
use std::cell::{Cell, RefCell};
use std::collections::{BTreeMap, VecDeque};
use std::io;
use std::path::{Path, PathBuf};
use std::rc::Rc;

/// Name of the clean-shutdown marker in a log directory.
pub const CLEAN_SHUTDOWN_FILE: &str = ".clean-shutdown";

/// Tunables of one log. Every buffer they size is bounded by them.
///
/// Memory budget of one log: at most `max_unflushed_bytes` appended and waiting for a flush,
/// at most as much again in the flush writing it (one write phase at a time), plus one open
/// `chunk_bytes` chunk and a carried page. Buffers come from the shard's pool of free
/// buffers ([`crate::disk::pool::BUFFER_POOL_BYTES`] kept at most), else from glommio's
/// registered I/O memory while it lasts, then from aligned heap memory. Per shard,
/// `write_budget` bounds the waiting bytes of all its logs together and `tail_cache` the
/// written bytes they keep.
#[derive(Debug, Clone)]
pub struct LogConfig {
    /// Roll to a new segment before one would grow past this (`segment.bytes`).
    pub segment_bytes: u64,
    /// Bytes of log between two index entries (`index.interval.bytes`).
    pub index_interval_bytes: u64,
    /// Size of one aligned write buffer (a multiple of the disk's alignment).
    pub chunk_bytes: usize,
    /// Appends are refused with [`LogError::BufferFull`] while this many bytes wait for a
    /// flush: the bound on a log's write-behind memory.
    pub max_unflushed_bytes: usize,
    /// The most a file is extended (fallocate) ahead of the appends at once; the step starts
    /// at [`MIN_PREALLOCATE_BYTES`] (or this, if smaller) and doubles per extension.
    pub preallocate_bytes: u64,
    /// When the owner flushes this log (see [`FlushPolicy`]).
    pub flush_policy: FlushPolicy,
    /// The shard's tail-cache budget: written chunks are kept for reads while it allows, and
    /// each log's read-ahead with its spare buffer (see the module notes). `None` keeps
    /// nothing once written and reads nothing ahead.
    pub tail_cache: Option<Rc<Budget>>,
    /// The shard's write-behind budget, shared with its other logs: appends beyond it get
    /// [`LogError::BufferFull`]. `None`: only `max_unflushed_bytes` bounds this log.
    pub write_budget: Option<Rc<Budget>>,
    /// The shard's I/O counters, shared with its other logs.
    pub stats: Rc<crate::stats::IoStats>,
    /// Segment files that retention (or DeleteRecords) removes are kept for reuse, up to this
    /// many per log, instead of deleted: a new segment renamed from one overwrites blocks
    /// already written, so its writes convert no extents and its fdatasyncs persist no
    /// metadata. 0 deletes them. Disk held: up to this many old segments per partition.
    pub recycle_segments: usize,
}

impl Default for LogConfig {
    fn default() -> Self {
        LogConfig {
            segment_bytes: 1 << 30,
            index_interval_bytes: 4096,
            chunk_bytes: 256 * 1024,
            max_unflushed_bytes: 16 * 1024 * 1024,
            preallocate_bytes: 64 * 1024 * 1024,
            flush_policy: FlushPolicy::EveryCommit,
            tail_cache: None,
            write_budget: None,
            stats: Rc::default(),
            recycle_segments: 2,
        }
    }
}

/// When a log is flushed. The log itself flushes only when asked ([`Log::flush`]); the policy
/// tells its owner (the broker's produce path and its background flusher) when to ask.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FlushPolicy {
    /// Every commit waits for the fdatasync covering it (`acks=all` is durable on disk):
    /// the default.
    EveryCommit,
    /// Commits do not wait; a background flush runs once this much is unflushed or this long
    /// after the last one (Kafka's `flush.messages`/`flush.ms` style, in bytes and ms).
    Interval {
        /// Flush once this many bytes are unflushed.
        max_unflushed_bytes: usize,
        /// Flush at least this often while anything is unflushed.
        interval_ms: u64,
    },
}

impl FlushPolicy {
    /// Whether a commit waits for the flush that covers it.
    pub fn commit_waits_for_flush(&self) -> bool {
        matches!(self, FlushPolicy::EveryCommit)
    }

    /// Whether a background flush is due, given what is unflushed and the time since the
    /// last flush.
    pub fn flush_due(&self, unflushed_bytes: usize, ms_since_last_flush: u64) -> bool {
        match *self {
            FlushPolicy::EveryCommit => unflushed_bytes > 0,
            FlushPolicy::Interval {
                max_unflushed_bytes,
                interval_ms,
            } => {
                unflushed_bytes >= max_unflushed_bytes
                    || (unflushed_bytes > 0 && ms_since_last_flush >= interval_ms)
            }
        }
    }
}

/// Why a log operation failed.
#[derive(Debug, thiserror::Error)]
pub enum LogError {
    /// The disk failed.
    #[error("{context}: {source}")]
    Io {
        /// What was being done.
        context: String,
        /// The error.
        source: io::Error,
    },
    /// A stored batch failed its checks (sealed segments; a torn tail is recovered instead).
    #[error("corrupt data in {file} at byte {position}: {reason}")]
    Corrupt {
        /// The segment file.
        file: PathBuf,
        /// Where the bad batch starts.
        position: u64,
        /// What is wrong.
        reason: String,
    },
    /// An earlier write or fdatasync failed, so what is durable is unknown: the log refuses
    /// all further work until it is reopened (and recovered).
    #[error("log {0} is offline after an I/O failure; reopen it to recover")]
    Offline(PathBuf),
    /// The offset is below the log start.
    #[error("offset {offset} is below the log start offset {log_start}")]
    OffsetOutOfRange {
        /// The offset asked for.
        offset: Offset,
        /// The first offset the log holds.
        log_start: Offset,
    },
    /// The write-behind buffers are full; flush, then retry.
    #[error("{unflushed_bytes} bytes await a flush (limit {limit}); flush before appending")]
    BufferFull {
        /// Bytes waiting.
        unflushed_bytes: usize,
        /// The configured limit.
        limit: usize,
    },
    /// The append's leader epoch is older than one already in the log.
    #[error("leader epoch {epoch} is older than the log's latest epoch {latest}")]
    StaleLeaderEpoch {
        /// The epoch given.
        epoch: LeaderEpoch,
        /// The latest epoch recorded.
        latest: LeaderEpoch,
    },
    /// The batch can never fit in a segment.
    #[error("batch of {bytes} bytes exceeds segment.bytes {segment_bytes}")]
    BatchTooLarge {
        /// The batch's size.
        bytes: usize,
        /// The configured segment size.
        segment_bytes: u64,
    },
}

fn io_error(context: impl FnOnce() -> String) -> impl FnOnce(io::Error) -> LogError {
    move |source| LogError::Io {
        context: context(),
        source,
    }
}

/// A segment file's first preallocation step.
pub const MIN_PREALLOCATE_BYTES: u64 = 1 << 20;

/// How far beyond `end` a segment file with `allocated` bytes is extended: the step doubles
/// the allocation, from [`MIN_PREALLOCATE_BYTES`] up to `most` (never past `segment_bytes`,
/// unless `end` already is).
fn allocation_target(end: u64, allocated: u64, most: u64, segment_bytes: u64) -> u64 {
    let step = allocated.max(MIN_PREALLOCATE_BYTES).min(most);
    (end + step).min(segment_bytes.max(end))
}

/// What [`Log::append`] assigned.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Appended {
    /// The batch's first offset.
    pub base_offset: Offset,
    /// The batch's last offset.
    pub last_offset: Offset,
}

/// Whole batches read from the log.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct ReadBatches {
    /// Back-to-back batches, the first one containing (or following) the offset asked for.
    pub bytes: bytes::Bytes,
    /// Number of batches in `bytes`.
    pub batches: usize,
}

/// One partition's log. See the module documentation.
#[derive(Debug)]
pub struct Log<D: Disk> {
    disk: D,
    dir: PathBuf,
    config: LogConfig,
    state: RefCell<State<D::File>>,
    flushed: Notify,
    /// `segment.bytes`, changeable while open (it applies from the next roll).
    segment_bytes: Cell<u64>,
}

#[derive(Debug)]
struct State<F: DiskFile> {
    segments: BTreeMap<i64, Segment<F>>,
    log_start: Offset,
    /// The high watermark last checkpointed (or loaded at open).
    high_watermark: Offset,
    epochs: EpochCache,
    next_offset: Offset,
    durable_offset: Offset,
    unflushed_bytes: usize,
    /// Completed flushes that wrote something (each ends in an fdatasync per segment).
    flushes: u64,
    /// A flush's write phase is running.
    writing: bool,
    /// The flushes whose sync is in flight, and those abandoned in flight (a flush future
    /// dropped mid-fdatasync): an abandoned round stays until a later round has synced its
    /// files again, and each new round takes them on.
    syncing: Vec<SyncRound<F>>,
    /// Rounds whose sync completed while an earlier one (with a target at or below theirs)
    /// was still in flight or abandoned: that one may cover files this one did not sync (the
    /// segment a roll sealed), so the durable offset waits for it.
    synced: Vec<SyncRound<F>>,
    /// The id of the next sync round (they start in write-phase order).
    next_sync_round: u64,
    offline: bool,
    /// Bytes read ahead of a sequential reader, from the tail-cache budget.
    read_ahead: Option<ahead::ReadAhead>,
    /// Suffix truncations so far: a read that began before one keeps no read-ahead.
    truncations: u64,
    /// Suffix truncations running: while any is, no early write may start (one could land
    /// past the cut after the file is truncated).
    early_writes_paused: u32,
    /// A buffer of an earlier read-ahead, reused by the next disk read (its length is what
    /// the tail-cache budget counts).
    spare_read: Option<bytes::BytesMut>,
    /// Removed segment files kept for new segments (see [`LogConfig::recycle_segments`]),
    /// with their sizes.
    recycled: Vec<(PathBuf, u64)>,
}

#[derive(Debug)]
struct Segment<F: DiskFile> {
    base: Offset,
    /// `None` until the first flush creates the file of a freshly rolled segment.
    file: Option<Rc<F>>,
    /// Bytes appended (the log's end in this segment).
    end: u64,
    /// The file's size on disk, preallocation included.
    allocated: u64,
    index: SegmentIndex,
    /// Offset after the last batch in the segment.
    next_offset: Offset,
    /// Write-behind buffers in position order; the last may still be filling.
    chunks: VecDeque<Chunk<F::Buffer>>,
    /// Max timestamp of its first batch, or when it was first seen non-empty (`segment.ms`).
    first_timestamp: Option<i64>,
    /// No more appends: finalise (truncate, write the index) at the next flush.
    sealed: bool,
    /// Sealed and finalised on disk.
    finalised: bool,
}

#[derive(Debug)]
struct Chunk<B> {
    buffer: Rc<B>,
    /// File position of the buffer's first byte (aligned).
    pos: u64,
    /// Valid bytes in the buffer.
    len: usize,
    /// Of those, bytes already on disk (a page carried over from the previous write).
    flushed_len: usize,
    /// Still accepting appends.
    open: bool,
    /// Written to disk and kept for reads: the bytes claimed from the tail budget (0 while
    /// not yet written) — its buffer's allocation, which trimming does not shrink.
    retained: usize,
    /// Bytes allocated for the buffer (its length when the chunk was made).
    allocated: usize,
    /// Who writes it once it is closed (see [`eager`]).
    write: eager::ChunkWrite,
}

impl<B: DiskBuffer> Chunk<B> {
    /// An open chunk at `pos` whose first `len` bytes are already on disk (a carried page).
    fn open_at(buffer: Rc<B>, pos: u64, len: usize) -> Chunk<B> {
        Chunk {
            allocated: buffer.bytes().len(),
            buffer,
            pos,
            len,
            flushed_len: len,
            open: true,
            retained: 0,
            write: eager::ChunkWrite::Pending,
        }
    }
}

impl<F: DiskFile> Segment<F> {
    fn new(base: Offset, index_interval_bytes: u64) -> Segment<F> {
        Segment {
            base,
            file: None,
            end: 0,
            allocated: 0,
            index: SegmentIndex::new(base, index_interval_bytes),
            first_timestamp: None,
            next_offset: base,
            chunks: VecDeque::new(),
            sealed: false,
            finalised: false,
        }
    }
}

/// A chunk's buffer, its file position and its write, started in the background.
type StartedWrite<F> = (Rc<<F as DiskFile>::Buffer>, u64, Rc<eager::EarlyWrite>);

/// A flush's work for one segment, gathered under the borrow and done without it.
struct FlushJob<F: DiskFile> {
    base: Offset,
    file: Option<Rc<F>>,
    writes: Vec<(Rc<F::Buffer>, u64)>,
    /// Chunks whose early write it waits for (writing those it finds abandoned).
    early: Vec<StartedWrite<F>>,
    allocate_to: Option<u64>,
    /// The segment's end and its two index files' bytes.
    finalise: Option<(u64, Vec<u8>, Vec<u8>)>,
}

/// A flush phase in progress; dropping it (the flush future was cancelled mid-phase) undoes
/// the phase's claim so other callers do not wait for work nobody will finish. Chunks of an
/// abandoned write phase stay queued and are written by the next flush.
struct PhaseGuard<'a, D: Disk> {
    log: &'a Log<D>,
    phase: Phase,
}

enum Phase {
    Write,
    /// The id of the sync round.
    Sync(u64),
}

impl<D: Disk> Drop for PhaseGuard<'_, D> {
    fn drop(&mut self) {
        if let Ok(mut state) = self.log.state.try_borrow_mut() {
            match self.phase {
                Phase::Write => state.writing = false,
                Phase::Sync(id) => {
                    // Its fdatasyncs may not have run: the round stays, as a debt.
                    if let Some(round) = state.syncing.iter_mut().find(|r| r.id == id) {
                        round.abandoned = true;
                    }
                    settle_synced(&mut state);
                }
            }
        }
        self.log.flushed.notify_all();
    }
}

/// One flush's sync: its target and the files it syncs.
#[derive(Debug)]
struct SyncRound<F> {
    /// Rounds are numbered in the order of their write phases.
    id: u64,
    target: Offset,
    files: Vec<Rc<F>>,
    /// Its flush was dropped before the fdatasyncs completed.
    abandoned: bool,
}

impl<F> SyncRound<F> {
    /// Whether this round syncs every file `other` does.
    fn covers(&self, other: &SyncRound<F>) -> bool {
        other
            .files
            .iter()
            .all(|file| self.files.iter().any(|own| Rc::ptr_eq(own, file)))
    }
}

/// Removes (and returns) the sync round `id` from those in flight.
fn remove_syncing<F>(syncing: &mut Vec<SyncRound<F>>, id: u64) -> Option<SyncRound<F>> {
    let at = syncing.iter().position(|round| round.id == id)?;
    Some(syncing.swap_remove(at))
}

/// Moves the durable offset to the completed sync rounds that vouch for everything below
/// their target: a round's fdatasyncs cover what an earlier round, still in flight or
/// abandoned, wrote only if they sync every file that round does — after a roll an earlier
/// round also syncs the sealed segment, which a later one does not. A completed round that
/// started after an abandoned one (its fdatasyncs came after that round's writes) and synced
/// its files makes up for it, whether or not it can settle yet itself.
fn settle_synced<F: DiskFile>(state: &mut State<F>) {
    let synced = &state.synced;
    state.syncing.retain(|running| {
        !(running.abandoned
            && synced
                .iter()
                .any(|done| done.id > running.id && done.covers(running)))
    });
    while let Some(at) = state.synced.iter().position(|done| {
        state
            .syncing
            .iter()
            .all(|running| running.target > done.target || done.covers(running))
    }) {
        let done = state.synced.swap_remove(at);
        state.durable_offset = state.durable_offset.max(done.target);
    }
    let durable = state.durable_offset;
    state.synced.retain(|round| round.target > durable);
}

/// Splits a flush's writes (in file order) into waves written one after the other, each
/// at once. A write that overlaps an earlier one — a chunk carrying the partial page its
/// predecessor ends in, or any write a longer buffer before it reaches into — must land
/// after it, so it goes in a later wave than every earlier write it overlaps. Indexes into
/// `writes`.
fn write_waves<B: DiskBuffer>(writes: &[(Rc<B>, u64)]) -> Vec<Vec<usize>> {
    let mut waves: Vec<Vec<usize>> = Vec::new();
    let mut wave_of: Vec<usize> = Vec::with_capacity(writes.len());
    for (at, (_, pos)) in writes.iter().enumerate() {
        let wave = writes[..at]
            .iter()
            .zip(&wave_of)
            .filter(|((buffer, earlier), _)| earlier + buffer.bytes().len() as u64 > *pos)
            .map(|(_, wave)| wave + 1)
            .max()
            .unwrap_or(0);
        wave_of.push(wave);
        if waves.len() <= wave {
            waves.push(Vec::new());
        }
        waves[wave].push(at);
    }
    waves
}

/// Records what a flush's write phase did: new files, preallocation, finalised segments, and
/// the chunks now on disk (later reads go to the file).
fn apply_written_jobs<D: Disk>(
    release: &Release<'_, D>,
    state: &mut State<D::File>,
    jobs: Vec<FlushJob<D::File>>,
    files: &[Rc<D::File>],
) {
    for (job, file) in jobs.into_iter().zip(files) {
        let Some(segment) = state.segments.get_mut(&job.base.get()) else {
            continue;
        };
        if segment.file.is_none() {
            segment.file = Some(file.clone());
        }
        if let Some(allocated) = job.allocate_to {
            segment.allocated = segment.allocated.max(allocated);
        }
        if let Some((end, _, _)) = job.finalise {
            segment.allocated = end;
            segment.finalised = true;
        }
        let written = |chunk: &Chunk<<D::File as DiskFile>::Buffer>| {
            job.writes
                .iter()
                .map(|(buffer, _)| buffer)
                .chain(job.early.iter().map(|(buffer, _, _)| buffer))
                .any(|buffer| Rc::ptr_eq(buffer, &chunk.buffer))
        };
        let newly_written: Vec<bool> = segment.chunks.iter().map(written).collect();
        // The job's references go first, so chunks that leave memory return their buffers.
        drop(job);
        retain_written(release, segment, &newly_written);
        if segment.finalised {
            // A sealed segment is no longer the tail: its chunks leave memory.
            release.all_chunks(segment);
        }
    }
}

/// Where a dropped chunk's resources go: the tail budget it held, and its buffer to the disk's
/// pool.
struct Release<'a, D> {
    disk: &'a D,
    tail: Option<&'a Budget>,
    chunk_bytes: usize,
}

impl<D: Disk> Release<'_, D> {
    /// Drops a chunk: returns the tail budget it held, and its buffer (see
    /// [`Release::buffer`]).
    fn chunk(&self, chunk: Chunk<<D::File as DiskFile>::Buffer>) {
        if let (Some(budget), true) = (self.tail, chunk.retained > 0) {
            budget.give_back(chunk.retained);
        }
        self.buffer(chunk.buffer);
    }

    /// Hands a buffer to the disk's pool if it is a whole `chunk_bytes` buffer (chunks are
    /// never allocated larger, so not one trimmed for its write: a trimmed buffer keeps its
    /// allocation but cannot grow back) that no write or read still holds.
    fn buffer(&self, buffer: Rc<<D::File as DiskFile>::Buffer>) {
        if buffer.bytes().len() == self.chunk_bytes {
            if let Ok(buffer) = Rc::try_unwrap(buffer) {
                self.disk.give_buffer(buffer);
            }
        }
    }

    /// Drops every chunk of a segment.
    fn all_chunks(&self, segment: &mut Segment<D::File>) {
        for chunk in segment.chunks.drain(..) {
            self.chunk(chunk);
        }
    }
}

impl<D: Disk> Drop for Log<D> {
    fn drop(&mut self) {
        if let Ok(mut state) = self.state.try_borrow_mut() {
            if let Some(budget) = &self.config.write_budget {
                budget.give_back(state.unflushed_bytes);
                state.unflushed_bytes = 0;
            }
            for segment in state.segments.values_mut() {
                self.release().all_chunks(segment);
            }
            if let Some(budget) = self.config.tail_cache.as_deref() {
                budget.give_back(Self::read_ahead_claims(&state));
                state.read_ahead = None;
                state.spare_read = None;
            }
        }
    }
}

/// Keeps written chunks for reads while the tail budget allows, evicting this segment's
/// oldest first; the rest go. Written chunks form a prefix of the deque (writes go in
/// order), and what stays must remain a suffix of the segment with the unwritten chunks,
/// so a chunk that cannot be kept takes every older one with it.
fn retain_written<D: Disk>(
    release: &Release<'_, D>,
    segment: &mut Segment<D::File>,
    newly_written: &[bool],
) {
    let tail = release.tail;
    let mut index = 0;
    let mut flags = newly_written.to_vec();
    while index < segment.chunks.len() {
        if !flags[index] {
            index += 1;
            continue;
        }
        // A chunk trimmed for its write still holds its whole allocation.
        let bytes = segment.chunks[index].allocated.max(1);
        let kept = loop {
            match tail {
                Some(budget) if budget.try_take(bytes) => break true,
                Some(_) if index > 0 => {
                    // Evict the oldest kept chunk of this segment and try again.
                    let oldest = segment.chunks.pop_front().expect("index > 0");
                    release.chunk(oldest);
                    flags.remove(0);
                    index -= 1;
                }
                _ => break false,
            }
        };
        if kept {
            segment.chunks[index].retained = bytes;
            index += 1;
        } else {
            // Not even alone does it fit: it and everything older leave memory.
            for _ in 0..=index {
                let chunk = segment.chunks.pop_front().expect("within the deque");
                release.chunk(chunk);
                flags.remove(0);
            }
            index = 0;
        }
    }
}

/// Name of the partition checkpoint (log start offset, high watermark) in a log directory.
pub const PARTITION_CHECKPOINT_FILE: &str = "partition.checkpoint";

/// What the partition checkpoint holds.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
struct PartitionCheckpoint {
    log_start: Offset,
    high_watermark: Offset,
}

impl PartitionCheckpoint {
    fn encode(&self) -> String {
        format!(
            "log_start_offset {}\nhigh_watermark {}\n",
            self.log_start.get(),
            self.high_watermark.get()
        )
    }

    fn decode(text: &str) -> Option<PartitionCheckpoint> {
        let mut log_start = None;
        let mut high_watermark = None;
        for line in text.lines() {
            match line.split_once(' ') {
                Some(("log_start_offset", value)) => log_start = value.trim().parse().ok(),
                Some(("high_watermark", value)) => high_watermark = value.trim().parse().ok(),
                _ => return None,
            }
        }
        Some(PartitionCheckpoint {
            log_start: Offset(log_start?),
            high_watermark: Offset(high_watermark?),
        })
    }
}

async fn read_partition_checkpoint<D: Disk>(
    disk: &D,
    dir: &Path,
) -> Result<PartitionCheckpoint, LogError> {
    let path = dir.join(PARTITION_CHECKPOINT_FILE);
    let bytes = disk
        .read_small(&path)
        .await
        .map_err(io_error(|| format!("reading {}", path.display())))?;
    let Some(bytes) = bytes else {
        return Ok(PartitionCheckpoint {
            log_start: Offset(0),
            high_watermark: Offset(0),
        });
    };
    std::str::from_utf8(&bytes)
        .ok()
        .and_then(PartitionCheckpoint::decode)
        .ok_or_else(|| LogError::Corrupt {
            file: path,
            position: 0,
            reason: "malformed partition checkpoint".to_string(),
        })
}

async fn read_epochs<D: Disk>(disk: &D, dir: &Path) -> Result<EpochCache, LogError> {
    let path = dir.join(LEADER_EPOCH_FILE);
    let bytes = disk
        .read_small(&path)
        .await
        .map_err(io_error(|| format!("reading {}", path.display())))?;
    // A damaged checkpoint is rebuilt from the batches' epochs as recovery scans them.
    Ok(bytes
        .and_then(|bytes| String::from_utf8(bytes).ok())
        .and_then(|text| EpochCache::decode(&text).ok())
        .unwrap_or_default())
}

fn align_down(value: u64, alignment: usize) -> u64 {
    value - value % alignment as u64
}

fn align_up(value: usize, alignment: usize) -> usize {
    value.div_ceil(alignment) * alignment
}

impl<D: Disk> Log<D> {
    /// Where this log's dropped chunks return their budget and buffers.
    fn release(&self) -> Release<'_, D> {
        Release {
            disk: &self.disk,
            tail: self.config.tail_cache.as_deref(),
            chunk_bytes: self.config.chunk_bytes,
        }
    }

    /// Opens (creating if needed) the log in `dir`, recovering it if its last close was not
    /// clean.
    pub async fn open(disk: D, dir: &Path, config: LogConfig) -> Result<Log<D>, LogError> {
        assert!(
            config.chunk_bytes > 0 && config.segment_bytes > 0 && config.index_interval_bytes > 0
        );
        disk.create_dir_all(dir)
            .await
            .map_err(io_error(|| format!("creating {}", dir.display())))?;
        let names = disk
            .list(dir)
            .await
            .map_err(io_error(|| format!("listing {}", dir.display())))?;
        let clean = names.iter().any(|name| name == CLEAN_SHUTDOWN_FILE);
        let mut recycled = Vec::new();
        for name in names.iter().filter(|n| segment::is_recycled_file_name(n)) {
            let path = dir.join(name);
            let file = disk
                .open(&path, false)
                .await
                .map_err(io_error(|| format!("opening {}", path.display())))?;
            let bytes = file
                .size()
                .await
                .map_err(io_error(|| format!("sizing {}", path.display())))?;
            // Closing a file that was only opened cannot lose data: errors do not matter.
            let _ = file.close().await;
            recycled.push((path, bytes));
        }
        recycled.sort();
        let mut bases: Vec<Offset> = names
            .iter()
            .filter_map(|name| segment::parse_log_file_name(name))
            .collect();
        bases.sort();
        if bases.is_empty() {
            bases.push(Offset(0));
        }
        let mut epochs = read_epochs(&disk, dir).await?;
        let checkpoint = read_partition_checkpoint(&disk, dir).await?;
        let mut segments = BTreeMap::new();
        let last = bases.len() - 1;
        for (position, base) in bases.iter().enumerate() {
            let active = position == last;
            let scan_tail = active && !clean;
            let segment =
                recover_segment(&disk, dir, *base, active, scan_tail, &config, &mut epochs).await?;
            segments.insert(base.get(), segment);
        }
        if clean {
            // From here on a crash must trigger recovery again.
            let marker = dir.join(CLEAN_SHUTDOWN_FILE);
            disk.remove(&marker)
                .await
                .map_err(io_error(|| format!("removing {}", marker.display())))?;
            disk.sync_dir(dir)
                .await
                .map_err(io_error(|| format!("syncing {}", dir.display())))?;
        }
        let next_offset = segments
            .values()
            .next_back()
            .map_or(bases[0], |s: &Segment<D::File>| s.next_offset);
        let log_start = checkpoint.log_start.clamp(bases[0], next_offset);
        epochs.truncate_from_end(next_offset);
        epochs.truncate_from_start(log_start);
        let state = State {
            segments,
            log_start,
            high_watermark: checkpoint.high_watermark.clamp(log_start, next_offset),
            epochs,
            next_offset,
            durable_offset: next_offset,
            unflushed_bytes: 0,
            flushes: 0,
            writing: false,
            syncing: Vec::new(),
            synced: Vec::new(),
            next_sync_round: 0,
            offline: false,
            read_ahead: None,
            truncations: 0,
            early_writes_paused: 0,
            spare_read: None,
            recycled,
        };
        Ok(Log {
            segment_bytes: Cell::new(config.segment_bytes),
            disk,
            dir: dir.to_path_buf(),
            config,
            state: RefCell::new(state),
            flushed: Notify::default(),
        })
    }

    /// The directory holding the log.
    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// The first offset the log holds.
    pub fn log_start_offset(&self) -> Offset {
        self.state.borrow().log_start
    }

    /// The offset the next appended record gets (the log end offset).
    pub fn next_offset(&self) -> Offset {
        self.state.borrow().next_offset
    }

    /// Every offset below this one is durable.
    pub fn durable_offset(&self) -> Offset {
        self.state.borrow().durable_offset
    }

    /// Resolves once the durable offset is beyond `offset` (a long-polling fetch waits on
    /// it), or the log goes offline.
    pub async fn wait_for_durable_beyond(&self, offset: Offset) {
        loop {
            let generation = self.flushed.generation();
            {
                let state = self.state.borrow();
                if state.durable_offset > offset || state.offline {
                    return;
                }
            }
            self.flushed.changed_since(generation).await;
        }
    }

    /// The largest batch max-timestamp in the log, or -1 when it holds no timestamps.
    pub fn max_timestamp(&self) -> i64 {
        let state = self.state.borrow();
        state
            .segments
            .values()
            .map(|segment| segment.index.max_timestamp())
            .max()
            .unwrap_or(-1)
    }

    /// Bytes the log's segments hold (appended data, preallocation excluded).
    pub fn size_bytes(&self) -> u64 {
        self.state
            .borrow()
            .segments
            .values()
            .map(|segment| segment.end)
            .sum()
    }

    /// Changes `segment.bytes`; the active segment rolls by the new size from now on.
    pub fn set_segment_bytes(&self, segment_bytes: u64) {
        assert!(segment_bytes > 0, "segment.bytes must be positive");
        self.segment_bytes.set(segment_bytes);
    }

    /// Bytes of the removed segment files kept for reuse (disk the log holds beyond
    /// [`Log::size_bytes`] and the active segment's preallocation).
    pub fn recycled_bytes(&self) -> u64 {
        self.state
            .borrow()
            .recycled
            .iter()
            .map(|(_, bytes)| bytes)
            .sum()
    }

    /// Flushes that wrote something so far (a group-commit statistic).
    pub fn flush_count(&self) -> u64 {
        self.state.borrow().flushes
    }

    /// Bytes appended but not yet handed to a flush.
    pub fn unflushed_bytes(&self) -> usize {
        self.state.borrow().unflushed_bytes
    }

    /// Base offsets of the segments, oldest first.
    pub fn segment_bases(&self) -> Vec<Offset> {
        self.state
            .borrow()
            .segments
            .values()
            .map(|s| s.base)
            .collect()
    }

    /// Appends a validated batch: stamps it with the next offset and `leader_epoch` while
    /// copying it into the write-behind buffer. Not durable until a [`Log::flush`] covering
    /// it returns.
    pub fn append(
        &self,
        batch: &RecordBatch<'_>,
        leader_epoch: LeaderEpoch,
    ) -> Result<Appended, LogError> {
        let bytes = batch.bytes();
        let mut state = self.state.borrow_mut();
        if state.offline {
            return Err(LogError::Offline(self.dir.clone()));
        }
        if bytes.len() as u64 > self.segment_bytes.get() {
            return Err(LogError::BatchTooLarge {
                bytes: bytes.len(),
                segment_bytes: self.segment_bytes.get(),
            });
        }
        if state.unflushed_bytes + bytes.len() > self.config.max_unflushed_bytes
            && state.unflushed_bytes > 0
        {
            return Err(LogError::BufferFull {
                unflushed_bytes: state.unflushed_bytes,
                limit: self.config.max_unflushed_bytes,
            });
        }
        if let Some(budget) = &self.config.write_budget {
            if bytes.len() > budget.capacity() {
                // It could never be buffered: refuse instead of waiting forever for room.
                return Err(LogError::BatchTooLarge {
                    bytes: bytes.len(),
                    segment_bytes: budget.capacity() as u64,
                });
            }
            if !budget.try_take(bytes.len()) {
                return Err(LogError::BufferFull {
                    unflushed_bytes: budget.used(),
                    limit: budget.capacity(),
                });
            }
        }
        let base_offset = state.next_offset;
        if !state.epochs.assign(leader_epoch, base_offset) {
            return Err(LogError::StaleLeaderEpoch {
                epoch: leader_epoch,
                latest: state.epochs.latest().unwrap_or(leader_epoch),
            });
        }
        let last_offset = base_offset
            .checked_add(i64::from(batch.header().last_offset_delta()))
            .ok_or(LogError::BatchTooLarge {
                bytes: bytes.len(),
                segment_bytes: self.segment_bytes.get(),
            })?;
        self.roll_if_needed(&mut state, bytes.len() as u64, base_offset);
        let early_writes = state.early_writes_paused == 0;
        let segment = state
            .segments
            .values_mut()
            .next_back()
            .expect("a log always has an active segment");
        write_into_chunks(
            &self.disk,
            segment,
            bytes,
            self.config.chunk_bytes,
            base_offset,
            leader_epoch,
        );
        let max_timestamp = batch.header().max_timestamp();
        if segment.end == 0 && max_timestamp >= 0 {
            segment.first_timestamp = Some(max_timestamp);
        }
        segment
            .index
            .on_batch(segment.end, base_offset, max_timestamp, bytes.len() as u64);
        segment.end += bytes.len() as u64;
        segment.next_offset = Offset(last_offset.get() + 1);
        if early_writes {
            eager::start_early_writes(&self.disk, segment, &self.config.stats);
        }
        state.next_offset = Offset(last_offset.get() + 1);
        state.unflushed_bytes += bytes.len();
        Ok(Appended {
            base_offset,
            last_offset,
        })
    }

    fn roll_if_needed(&self, state: &mut State<D::File>, batch_bytes: u64, next_base: Offset) {
        let active = state
            .segments
            .values_mut()
            .next_back()
            .expect("active segment");
        if active.end == 0 || active.end + batch_bytes <= self.segment_bytes.get() {
            return;
        }
        active.sealed = true;
        state.segments.insert(
            next_base.get(),
            Segment::new(next_base, self.config.index_interval_bytes),
        );
    }

    /// Makes every batch appended before the call durable; returns the durable offset.
    ///
    /// Concurrent callers share flushes (group commit), and flushes are pipelined: while one
    /// flush waits for its fdatasync, the next one's writes are already in flight (at most
    /// one write phase at a time). A caller waits while a write phase runs or while a sync
    /// that already covers its appends runs; otherwise it starts the next flush itself.
    pub async fn flush(&self) -> Result<Offset, LogError> {
        let target = self.next_offset();
        loop {
            let generation = self.flushed.generation();
            let wait = {
                let state = self.state.borrow();
                if state.offline {
                    return Err(LogError::Offline(self.dir.clone()));
                }
                // A segment rolled by time (`segment.ms`) is finalised by the next flush,
                // even with nothing new to write.
                let unfinalised = state
                    .segments
                    .values()
                    .rev()
                    .take_while(|s| !s.finalised)
                    .any(|s| s.sealed);
                if state.durable_offset >= target && !unfinalised {
                    return Ok(state.durable_offset);
                }
                // With a sync abandoned, a new flush must sync its files again.
                let debt = state.syncing.iter().any(|round| round.abandoned);
                state.writing
                    || state
                        .syncing
                        .iter()
                        .any(|round| !round.abandoned && round.target >= target)
                    || (!debt && state.synced.iter().any(|round| round.target >= target))
            };
            if wait {
                self.flushed.changed_since(generation).await;
                continue;
            }
            self.flush_once().await?;
        }
    }

    /// One flush: the write phase (every pending chunk, sealed segments finalised), then the
    /// sync phase (fdatasync of every file written). The next flush may start writing as soon
    /// as this one's write phase ends.
    async fn flush_once(&self) -> Result<(), LogError> {
        self.state.borrow_mut().writing = true;
        let write_guard = PhaseGuard {
            log: self,
            phase: Phase::Write,
        };
        let (target, jobs) = self.gather_flush_jobs();
        let wrote_any = !jobs.is_empty();
        let written = self.write_phase(&jobs).await;
        std::mem::forget(write_guard);
        let mut round = None;
        {
            let mut state = self.state.borrow_mut();
            state.writing = false;
            match &written {
                Ok(files) => {
                    apply_written_jobs(&self.release(), &mut state, jobs, files);
                    // The files of abandoned syncs are synced again by this round.
                    let mut sync_files = files.clone();
                    let debts = state.syncing.iter().filter(|r| r.abandoned);
                    for debt in debts.flat_map(|r| r.files.iter()) {
                        if !sync_files.iter().any(|file| Rc::ptr_eq(file, debt)) {
                            sync_files.push(debt.clone());
                        }
                    }
                    let id = state.next_sync_round;
                    state.next_sync_round += 1;
                    state.syncing.push(SyncRound {
                        id,
                        target,
                        files: sync_files.clone(),
                        abandoned: false,
                    });
                    round = Some((id, sync_files));
                    // Chunks that waited for this phase's writes (a carried page, a new
                    // preallocation) may start now.
                    let paused = state.early_writes_paused > 0;
                    if let Some(active) = state.segments.values_mut().next_back() {
                        if !paused {
                            eager::start_early_writes(&self.disk, active, &self.config.stats);
                        }
                    }
                }
                Err(_) => state.offline = true,
            }
        }
        self.flushed.notify_all();
        written?;
        let (id, files) = round.expect("a sync round follows a successful write phase");
        let stats = &self.config.stats;
        let sync_started = std::time::Instant::now();
        let sync_guard = PhaseGuard {
            log: self,
            phase: Phase::Sync(id),
        };
        let synced = self.sync_phase(&files).await;
        std::mem::forget(sync_guard);
        {
            let mut state = self.state.borrow_mut();
            let round = remove_syncing(&mut state.syncing, id);
            match synced {
                Ok(()) => {
                    state.synced.extend(round);
                    settle_synced(&mut state);
                    state.flushes += u64::from(wrote_any);
                    if wrote_any {
                        IoStats::add(&stats.syncs, 1);
                        stats.sync_latency.observe(sync_started.elapsed());
                    }
                }
                Err(_) => state.offline = true,
            }
        }
        self.flushed.notify_all();
        synced
    }

    async fn write_phase(&self, jobs: &[FlushJob<D::File>]) -> Result<Vec<Rc<D::File>>, LogError> {
        let mut files = Vec::with_capacity(jobs.len());
        for job in jobs {
            files.push(self.write_job(job).await?);
        }
        Ok(files)
    }

    async fn sync_phase(&self, files: &[Rc<D::File>]) -> Result<(), LogError> {
        let syncs = files.iter().map(|file| file.fdatasync()).collect();
        for result in crate::join::join_all(syncs).await {
            result.map_err(io_error(|| format!("fdatasync in {}", self.dir.display())))?;
        }
        // After the data: a checkpoint never names an epoch whose batches could be lost.
        self.write_epochs_if_changed().await
    }

    fn gather_flush_jobs(&self) -> (Offset, Vec<FlushJob<D::File>>) {
        let mut state = self.state.borrow_mut();
        let target = state.next_offset;
        if let Some(budget) = &self.config.write_budget {
            // Handed to this flush: the bytes now count against the flush, not the budget.
            budget.give_back(state.unflushed_bytes);
        }
        state.unflushed_bytes = 0;
        let preallocate = self.config.preallocate_bytes;
        let mut jobs = Vec::new();
        for segment in state.segments.values_mut() {
            if segment.finalised || (segment.chunks.is_empty() && !segment.sealed) {
                continue;
            }
            close_open_chunk(&self.disk, segment, self.config.chunk_bytes);
            let mut writes = Vec::new();
            let mut early = Vec::new();
            for chunk in segment.chunks.iter_mut() {
                if chunk.open || chunk.retained > 0 {
                    continue;
                }
                match &chunk.write {
                    eager::ChunkWrite::Early(write) => {
                        early.push((chunk.buffer.clone(), chunk.pos, write.clone()));
                    }
                    // Flushing: left by an abandoned write phase (only one runs at a time).
                    eager::ChunkWrite::Pending | eager::ChunkWrite::Flushing => {
                        chunk.write = eager::ChunkWrite::Flushing;
                        writes.push((chunk.buffer.clone(), chunk.pos));
                    }
                }
            }
            let finalise = segment.sealed.then(|| {
                (
                    segment.end,
                    segment.index.encode_offsets(),
                    segment.index.encode_times(),
                )
            });
            let allocate_to = (!segment.sealed && segment.end > segment.allocated).then(|| {
                allocation_target(
                    segment.end,
                    segment.allocated,
                    preallocate,
                    self.segment_bytes.get(),
                )
            });
            jobs.push(FlushJob {
                base: segment.base,
                file: segment.file.clone(),
                writes,
                early,
                allocate_to,
                finalise,
            });
        }
        (target, jobs)
    }

    async fn write_job(&self, job: &FlushJob<D::File>) -> Result<Rc<D::File>, LogError> {
        let log_path = self.dir.join(segment::log_file_name(job.base));
        let context = |what: &str| {
            let what = what.to_string();
            let path = log_path.clone();
            move || format!("{what} {}", path.display())
        };
        let file = match &job.file {
            Some(file) => file.clone(),
            None => {
                // A recycled segment file becomes the new segment: its old batches lie past
                // the new segment's end, below its base offset, so recovery stops at them.
                let recycled = self.state.borrow_mut().recycled.pop();
                if let Some((recycled, _)) = recycled {
                    self.disk
                        .rename(&recycled, &log_path)
                        .await
                        .map_err(io_error(context("reusing a recycled file as")))?;
                }
                let file = self
                    .disk
                    .open(&log_path, true)
                    .await
                    .map_err(io_error(context("creating")))?;
                self.disk
                    .sync_dir(&self.dir)
                    .await
                    .map_err(io_error(context("syncing the directory of")))?;
                let file = Rc::new(file);
                // The segment knows its file before any write goes to it: if this flush is
                // cancelled from here on, its writes run on into this file, and the next
                // flush must wait for them there rather than make the segment another file.
                if let Some(segment) = self.state.borrow_mut().segments.get_mut(&job.base.get()) {
                    segment.file.get_or_insert_with(|| file.clone());
                }
                file
            }
        };
        if let Some(len) = job.allocate_to {
            file.allocate(len)
                .await
                .map_err(io_error(context("preallocating")))?;
        }
        // A chunk whose write a cancelled flush started (and left running) may share a page
        // with one this flush writes: that write lands first.
        let early_first = job.writes.iter().any(|(buffer, pos)| {
            job.early.iter().any(|(early, early_pos, _)| {
                *early_pos < pos + buffer.bytes().len() as u64
                    && *pos < early_pos + early.bytes().len() as u64
            })
        });
        if early_first {
            self.finish_writes(&file, &job.early, &context).await?;
        }
        // Every chunk of a wave in flight at once: the device sees a queue, not a sequence
        // of single writes. Each write runs in a background task recorded in its chunk, so
        // if this flush is cancelled the next one waits for it rather than racing it.
        for wave in write_waves(&job.writes) {
            let started: Vec<_> = wave
                .iter()
                .map(|&at| {
                    let (buffer, pos) = &job.writes[at];
                    let write =
                        eager::spawn_write(&self.disk, &file, buffer, *pos, &self.config.stats);
                    self.record_write(job.base, buffer, &write);
                    (buffer.clone(), *pos, write)
                })
                .collect();
            self.finish_writes(&file, &started, &context).await?;
        }
        // Started earlier, so mostly done by now.
        if !early_first {
            self.finish_writes(&file, &job.early, &context).await?;
        }
        if let Some((end, offsets, times)) = &job.finalise {
            file.truncate(*end)
                .await
                .map_err(io_error(context("truncating")))?;
            // Durable before its index is written and before the next segment's file exists
            // (the jobs run in segment order): recovery cuts a torn tail only in the newest
            // segment and trusts every other one whole.
            file.fdatasync()
                .await
                .map_err(io_error(context("syncing")))?;
            for (name, bytes) in [
                (segment::index_file_name(job.base), offsets),
                (segment::time_index_file_name(job.base), times),
            ] {
                let path = self.dir.join(name);
                self.disk
                    .write_atomically(&path, bytes)
                    .await
                    .map_err(io_error(|| format!("writing {}", path.display())))?;
            }
        }
        Ok(file)
    }

    /// Waits for started writes; one whose task was dropped before it wrote is written here.
    async fn finish_writes<C: FnOnce() -> String>(
        &self,
        file: &Rc<D::File>,
        writes: &[StartedWrite<D::File>],
        context: &impl Fn(&str) -> C,
    ) -> Result<(), LogError> {
        for (buffer, pos, write) in writes {
            match write.wait().await {
                eager::Outcome::Written => {}
                eager::Outcome::InFlight => unreachable!("wait returns once the write ended"),
                eager::Outcome::Failed(kind, message) => {
                    return Err(io_error(context("writing"))(io::Error::new(kind, message)));
                }
                eager::Outcome::Abandoned => {
                    let written = file
                        .write_at(buffer.clone(), *pos)
                        .await
                        .map_err(io_error(context("writing")))?;
                    IoStats::add(&self.config.stats.written_bytes, written as u64);
                }
            }
        }
        Ok(())
    }

    /// Notes in the chunk holding `buffer` that its write has started.
    fn record_write(
        &self,
        base: Offset,
        buffer: &Rc<<D::File as DiskFile>::Buffer>,
        write: &Rc<eager::EarlyWrite>,
    ) {
        let mut state = self.state.borrow_mut();
        let chunk = state.segments.get_mut(&base.get()).and_then(|segment| {
            segment
                .chunks
                .iter_mut()
                .find(|c| Rc::ptr_eq(&c.buffer, buffer))
        });
        if let Some(chunk) = chunk {
            chunk.write = eager::ChunkWrite::Early(write.clone());
        }
    }

    /// Reads whole batches: the one containing `offset` (or the first after it) and those
    /// following it in the same segment, up to `max_bytes` — but always at least one whole
    /// batch, as Kafka does — and none starting at or after `upper` (the high watermark for
    /// consumers, the log end for followers). Empty when `offset` is at or past the end.
    pub async fn read(
        &self,
        offset: Offset,
        max_bytes: usize,
        upper: Offset,
    ) -> Result<ReadBatches, LogError> {
        let plan = {
            let state = self.state.borrow();
            if state.offline {
                return Err(LogError::Offline(self.dir.clone()));
            }
            if offset < state.log_start {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start: state.log_start,
                });
            }
            let upper = upper.min(state.next_offset);
            if offset >= upper {
                return Ok(ReadBatches::default());
            }
            let Some((_, segment)) = state.segments.range(..=offset.get()).next_back() else {
                return Ok(ReadBatches::default());
            };
            let path = self.dir.join(segment::log_file_name(segment.base));
            let mut plan = ReadPlan::for_segment(segment, path, upper);
            plan.start = segment.index.position_for(offset);
            if let Some(ahead) = &state.read_ahead {
                if ahead.segment == segment.base.get() {
                    plan.ahead = ahead.buffers.iter().cloned().collect();
                }
            }
            (plan, state.truncations)
        };
        let (plan, truncations) = plan;
        let read = plan
            .read(offset, max_bytes, self.config.index_interval_bytes)
            .await;
        let truncated = self.state.borrow().truncations != truncations;
        if let (Some((start, end)), false, true) = (plan.disk_range.get(), truncated, read.is_ok())
        {
            let on_disk = plan.chunks.first().map_or(plan.end, |(_, pos, _)| *pos);
            let disk_read = ahead::DiskRead {
                segment: plan.segment_base,
                start,
                end,
                on_disk,
            };
            if self.follow_read(disk_read, plan.file.clone()) {
                crate::join::yield_now().await;
            }
        }
        let stats = &self.config.stats;
        IoStats::add(&stats.read_memory_bytes, plan.memory_bytes.get());
        IoStats::add(&stats.read_disk_bytes, plan.disk_bytes.get());
        IoStats::add(&stats.read_ahead_bytes, plan.ahead_bytes.get());
        read
    }

    /// Flushes, finalises the active segment (truncates its preallocated tail, writes its
    /// index) and writes the clean-shutdown marker, so the next open skips recovery.
    pub async fn close(self) -> Result<(), LogError> {
        self.flush().await?;
        if let Some(active) = self.state.borrow_mut().segments.values_mut().next_back() {
            active.sealed = true;
        }
        // No other task can hold `&self` now, so no flush is in flight: finalise directly.
        self.flush_once().await?;
        let marker = self.dir.join(CLEAN_SHUTDOWN_FILE);
        self.disk
            .write_atomically(&marker, b"")
            .await
            .map_err(io_error(|| format!("writing {}", marker.display())))?;
        let mut segments = std::mem::take(&mut self.state.borrow_mut().segments);
        // Before any await: a failed close below must not keep chunks' budget.
        for segment in segments.values_mut() {
            self.release().all_chunks(segment);
        }
        for segment in segments.into_values() {
            if let Some(file) = segment.file.and_then(|file| Rc::try_unwrap(file).ok()) {
                file.close().await.map_err(io_error(|| {
                    format!("closing a segment of {}", self.dir.display())
                }))?;
            }
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// An uncompressed batch of one record holding `value`.
    fn one_record(value: &[u8]) -> Vec<u8> {
        let mut builder = spate_model::BatchBuilder::new(spate_model::Compression::None);
        builder
            .push(&spate_model::BuilderRecord {
                value: Some(value),
                ..Default::default()
            })
            .expect("push");
        builder.build().expect("build")
    }

    #[test]
    fn overlapping_writes_go_in_later_waves() {
        let disk = crate::disk::memory::MemoryDisk::default();
        let chunk = |pos: u64, pages: usize| (Rc::new(disk.alloc_buffer(pages * 4096)), pos);
        // Apart: one wave.
        let apart = [chunk(0, 4), chunk(4 * 4096, 4), chunk(8 * 4096, 2)];
        assert_eq!(write_waves(&apart), [vec![0, 1, 2]]);
        // Two cancelled flushes left a chain of carried pages, then a chunk apart from it.
        let chain = [
            chunk(0, 3),
            chunk(2 * 4096, 2),
            chunk(3 * 4096, 4),
            chunk(7 * 4096, 4),
        ];
        assert_eq!(write_waves(&chain), [vec![0, 3], vec![1], vec![2]]);
        // A write reaching past the one after it into a third: that one waits for both.
        let untrimmed = [chunk(0, 8), chunk(2 * 4096, 2), chunk(3 * 4096, 4)];
        assert_eq!(write_waves(&untrimmed), [vec![0], vec![1], vec![2]]);
        let reaching = [chunk(0, 8), chunk(6 * 4096, 1), chunk(7 * 4096, 1)];
        assert_eq!(write_waves(&reaching), [vec![0], vec![1, 2]]);
        assert!(write_waves::<crate::disk::memory::MemoryBuffer>(&[]).is_empty());
    }

    #[test]
    fn preallocation_doubles_from_one_mib_to_the_configured_step() {
        const MIB: u64 = 1 << 20;
        const GIB: u64 = 1 << 30;
        // A fresh segment: 1 MiB ahead.
        assert_eq!(allocation_target(4096, 0, 64 * MIB, GIB), 4096 + MIB);
        // Then the step follows the allocation: 1, 2, 4 ... MiB, capped at 64 MiB.
        let mut allocated = 0;
        let mut steps = Vec::new();
        for _ in 0..9 {
            let end = allocated + 1;
            let target = allocation_target(end, allocated, 64 * MIB, GIB);
            steps.push((target - end) / MIB);
            allocated = target;
        }
        assert_eq!(steps, [1, 1, 2, 4, 8, 16, 32, 64, 64]);
        // Never past the segment size, unless the end already is.
        assert_eq!(allocation_target(GIB - 10, 512 * MIB, 64 * MIB, GIB), GIB);
        assert_eq!(allocation_target(GIB + 5, GIB, 64 * MIB, GIB), GIB + 5);
        // A configured step below 1 MiB (tests) is used as it is.
        assert_eq!(allocation_target(100, 0, 32 * 1024, GIB), 100 + 32 * 1024);
    }

    #[test]
    fn an_idle_partition_holds_one_page_of_buffer_until_it_is_written() {
        let disk = crate::disk::memory::MemoryDisk::default();
        let dir = std::path::Path::new("/data/quiet-0");
        let config = LogConfig::default();
        let log = futures_lite::future::block_on(Log::open(disk.clone(), dir, config.clone()))
            .expect("open");
        let buffered = |log: &Log<crate::disk::memory::MemoryDisk>| -> Vec<usize> {
            let state = log.state.borrow();
            let segment = state.segments.values().next_back().expect("a segment");
            segment
                .chunks
                .iter()
                .map(|c| c.buffer.bytes().len())
                .collect()
        };
        assert_eq!(
            buffered(&log),
            [disk.alignment()],
            "one page, not a whole chunk"
        );
        // Appends beyond it open full-size chunks.
        let bytes = one_record(&[7_u8; 10_000]);
        let batch = RecordBatch::validate(&bytes).expect("valid");
        log.append(&batch, LeaderEpoch(0)).expect("append");
        assert_eq!(buffered(&log), [disk.alignment(), config.chunk_bytes]);
        futures_lite::future::block_on(log.flush()).expect("flush");
        let read = futures_lite::future::block_on(log.read(Offset(0), 1 << 20, Offset(i64::MAX)))
            .expect("read");
        assert_eq!(
            read.bytes.len(),
            bytes.len(),
            "the batch spans both chunks intact"
        );
    }

    #[test]
    fn the_tail_cache_counts_what_its_chunks_hold_not_what_they_wrote() {
        // A flush per batch. Small batches: each flush's last chunk holds a page or two,
        // which move to a buffer of their size (charged that) while the whole buffer goes
        // back to the pool. Batches of over half a chunk: the last chunk is trimmed for its
        // write but keeps its whole allocation, and is charged that.
        for (value_bytes, most_per_chunk) in [(100, 8192), (140_000, 256 * 1024)] {
            let disk = crate::disk::memory::MemoryDisk::default();
            let budget = crate::budget::Budget::new(1 << 20);
            let config = LogConfig {
                tail_cache: Some(budget.clone()),
                ..LogConfig::default()
            };
            let log = futures_lite::future::block_on(Log::open(
                disk.clone(),
                std::path::Path::new("/data/flushes-0"),
                config,
            ))
            .expect("open");
            let bytes = one_record(&vec![3_u8; value_bytes]);
            let batch = RecordBatch::validate(&bytes).expect("valid");
            for _ in 0..64 {
                log.append(&batch, LeaderEpoch(0)).expect("append");
                futures_lite::future::block_on(log.flush()).expect("flush");
            }
            let state = log.state.borrow();
            let kept: Vec<&Chunk<_>> = state
                .segments
                .values()
                .flat_map(|s| s.chunks.iter())
                .filter(|c| c.retained > 0)
                .collect();
            assert!(!kept.is_empty(), "recent chunks are kept for reads");
            let held: usize = kept.iter().map(|c| c.allocated).sum();
            assert!(
                held <= budget.capacity(),
                "{value_bytes}: {} chunks kept hold {held} bytes against a budget of {}",
                kept.len(),
                budget.capacity()
            );
            assert_eq!(budget.used(), held);
            assert!(
                kept.iter().all(|c| c.allocated <= most_per_chunk),
                "{value_bytes}: {:?}",
                kept.iter().map(|c| c.allocated).collect::<Vec<_>>()
            );
            if value_bytes < 4096 {
                let (reused, allocated) = disk.pool().counts();
                assert!(
                    allocated <= 2 && reused >= 60,
                    "the whole buffers serve again: {reused} reused, {allocated} allocated"
                );
            }
        }
    }

    #[test]
    fn an_idle_partition_holds_little_disk() {
        let disk = crate::disk::memory::MemoryDisk::default();
        let dir = std::path::Path::new("/data/idle-0");
        let log =
            futures_lite::future::block_on(Log::open(disk.clone(), dir, LogConfig::default()))
                .expect("open");
        let bytes = one_record(b"one record");
        let batch = RecordBatch::validate(&bytes).expect("valid");
        log.append(&batch, LeaderEpoch(0)).expect("append");
        futures_lite::future::block_on(log.flush()).expect("flush");
        let file = dir.join(segment::log_file_name(Offset(0)));
        let size = disk.contents(&file).expect("the segment file").len() as u64;
        assert!(
            size <= MIN_PREALLOCATE_BYTES + 4096,
            "{size} bytes on disk for one record"
        );
        assert!(size >= bytes.len() as u64);
    }

    /// Cutting the log's tail (or its head) forgets the read-ahead and returns its budget:
    /// the file's bytes past a cut are rewritten by later appends.
    #[test]
    fn truncation_drops_the_read_ahead() {
        use futures_lite::future::block_on;
        let disk = crate::disk::memory::MemoryDisk::default();
        let dir = std::path::Path::new("/data/ahead-0");
        let budget = Budget::new(16 << 20);
        let config = LogConfig {
            tail_cache: Some(budget.clone()),
            ..LogConfig::default()
        };
        let log = block_on(Log::open(disk.clone(), dir, config.clone())).expect("open");
        let bytes = one_record(&[7; 16 * 1024]);
        let batch = RecordBatch::validate(&bytes).expect("valid");
        for _ in 0..300 {
            log.append(&batch, LeaderEpoch(0)).expect("append");
        }
        block_on(log.close()).expect("close");
        let log = block_on(Log::open(disk.clone(), dir, config)).expect("reopen");
        let holds = |log: &Log<_>| {
            log.state
                .borrow()
                .read_ahead
                .as_ref()
                .map(|a| a.buffers.iter().map(|b| b.len).sum::<usize>())
        };
        let first = block_on(log.read(Offset(0), 256 * 1024, Offset(i64::MAX))).expect("read");
        assert_eq!(
            holds(&log),
            Some(0),
            "a first read only notes where it ended"
        );
        let next = Offset(i64::try_from(first.batches).expect("small"));
        block_on(log.read(next, 256 * 1024, Offset(i64::MAX))).expect("read");
        let held = holds(&log).expect("a read-ahead");
        assert!(held >= READ_AHEAD_BYTES, "{held} bytes read ahead");
        assert_eq!(budget.used(), held, "claimed from the tail-cache budget");
        // A read that still holds a released buffer finds it failed (and reads the file),
        // never emptied.
        let held_by_a_reader = log
            .state
            .borrow()
            .read_ahead
            .as_ref()
            .and_then(|a| a.buffers.front().cloned())
            .expect("a buffer");
        block_on(log.truncate_suffix(Offset(200))).expect("truncate");
        assert!(block_on(held_by_a_reader.fill.wait()).is_none());
        assert!(log.state.borrow().read_ahead.is_none());
        assert_eq!(budget.used(), 0, "the budget is returned");
        block_on(log.read(Offset(0), 256 * 1024, Offset(i64::MAX))).expect("read");
        block_on(log.read(next, 256 * 1024, Offset(i64::MAX))).expect("read");
        assert!(holds(&log).is_some_and(|held| held > 0));
        block_on(log.truncate_prefix(Offset(10))).expect("truncate");
        assert!(log.state.borrow().read_ahead.is_none());
        assert_eq!(budget.used(), 0);
    }
}
