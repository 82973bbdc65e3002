//! Everything but append, flush and read: checkpoints, leader epochs, truncation at either
//! end, retention, time-based rolling and timestamp lookup.

use super::read::ReadPlan;
use super::recovery::scan_batches;
use super::{
    io_error, Chunk, Log, LogError, PartitionCheckpoint, Segment, PARTITION_CHECKPOINT_FILE,
};
use crate::disk::{Disk, DiskBuffer, DiskFile};
use crate::epochs::LEADER_EPOCH_FILE;
use crate::segment;
use spate_model::{LeaderEpoch, Offset};
use std::cell::Cell;
use std::rc::Rc;

/// What [`Log::apply_retention`] is asked to enforce (Kafka's topic configs).
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct Retention {
    /// `retention.ms`: delete segments whose newest record is older than this.
    pub retention_ms: Option<i64>,
    /// `retention.bytes`: delete the oldest segments while the log is larger than this.
    pub retention_bytes: Option<u64>,
}

impl<D: Disk> Log<D> {
    /// The high watermark last checkpointed, or loaded at open.
    pub fn checkpointed_high_watermark(&self) -> Offset {
        self.state.borrow().high_watermark
    }

    /// Persists the log start offset and `high_watermark` (clamped to the log) atomically.
    /// The broker calls it periodically, as Kafka checkpoints its high watermarks.
    pub async fn checkpoint_high_watermark(&self, high_watermark: Offset) -> Result<(), LogError> {
        {
            let mut state = self.state.borrow_mut();
            state.high_watermark = high_watermark.clamp(state.log_start, state.next_offset);
        }
        self.write_partition_checkpoint().await
    }

    async fn write_partition_checkpoint(&self) -> Result<(), LogError> {
        let checkpoint = {
            let state = self.state.borrow();
            PartitionCheckpoint {
                log_start: state.log_start,
                high_watermark: state.high_watermark,
            }
        };
        let path = self.dir.join(PARTITION_CHECKPOINT_FILE);
        self.disk
            .write_atomically(&path, checkpoint.encode().as_bytes())
            .await
            .map_err(io_error(|| format!("writing {}", path.display())))
    }

    pub(super) async fn write_epochs_if_changed(&self) -> Result<(), LogError> {
        let text = {
            let mut state = self.state.borrow_mut();
            if !state.epochs.take_dirty() {
                return Ok(());
            }
            state.epochs.encode()
        };
        let path = self.dir.join(LEADER_EPOCH_FILE);
        self.disk
            .write_atomically(&path, text.as_bytes())
            .await
            .map_err(io_error(|| format!("writing {}", path.display())))
    }

    /// The latest leader epoch in the log, if any batch was appended with one.
    pub fn latest_epoch(&self) -> Option<LeaderEpoch> {
        self.state.borrow().epochs.latest()
    }

    /// OffsetForLeaderEpoch: the largest epoch at or below `epoch` and the offset where it
    /// ended (the log end for the latest epoch); `None` if `epoch` predates the log.
    pub fn end_offset_for_epoch(&self, epoch: LeaderEpoch) -> Option<(LeaderEpoch, Offset)> {
        let state = self.state.borrow();
        state.epochs.end_offset_for(epoch, state.next_offset)
    }

    /// Moves the log start to `offset` (DeleteRecords, retention): offsets below it can no
    /// longer be read, and segments wholly below it are deleted. The new start is durable
    /// when this returns.
    pub async fn truncate_prefix(&self, offset: Offset) -> Result<(), LogError> {
        let doomed = {
            let mut state = self.state.borrow_mut();
            if state.offline {
                return Err(LogError::Offline(self.dir.clone()));
            }
            self.forget_read_buffers(&mut state);
            if offset > state.next_offset {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start: state.log_start,
                });
            }
            if offset <= state.log_start {
                return Ok(());
            }
            state.log_start = offset;
            state.high_watermark = state.high_watermark.max(offset);
            state.epochs.truncate_from_start(offset);
            let last = state.segments.keys().next_back().copied();
            let doomed: Vec<i64> = state
                .segments
                .values()
                .filter(|s| s.finalised && s.next_offset <= offset && Some(s.base.get()) != last)
                .map(|s| s.base.get())
                .collect();
            // Their chunks go now, before any await: a failed removal below must not keep
            // their budget.
            doomed
                .iter()
                .filter_map(|base| state.segments.remove(base))
                .map(|mut segment| {
                    self.release().all_chunks(&mut segment);
                    segment
                })
                .collect::<Vec<_>>()
        };
        // The new start goes to disk before any segment goes away.
        self.write_partition_checkpoint().await?;
        self.write_epochs_if_changed().await?;
        // The newest removed segments are kept for reuse (they are the fullest); their
        // offsets are all below the new log start, so no later batch can be taken for theirs.
        for segment in doomed.into_iter().rev() {
            self.delete_segment_files(segment, true).await?;
        }
        self.disk
            .sync_dir(&self.dir)
            .await
            .map_err(io_error(|| format!("syncing {}", self.dir.display())))
    }

    /// Removes a segment's files; with `recycle`, its `.log` file is kept for a new segment
    /// while the log holds fewer than `recycle_segments` (only for segments wholly below the
    /// log start: a segment cut off the end holds offsets the log will assign again).
    async fn delete_segment_files(
        &self,
        mut segment: Segment<D::File>,
        recycle: bool,
    ) -> Result<(), LogError> {
        self.release().all_chunks(&mut segment);
        if let Some(file) = segment.file.and_then(|file| Rc::try_unwrap(file).ok()) {
            file.close().await.map_err(io_error(|| {
                format!("closing a segment of {}", self.dir.display())
            }))?;
        }
        let slot = {
            let state = self.state.borrow();
            (recycle && state.recycled.len() < self.config.recycle_segments)
                .then(|| {
                    (0..self.config.recycle_segments)
                        .map(|n| self.dir.join(segment::recycled_file_name(n)))
                        .find(|path| !state.recycled.iter().any(|(kept, _)| kept == path))
                })
                .flatten()
        };
        if let Some(slot) = slot {
            let from = self.dir.join(segment::log_file_name(segment.base));
            match self.disk.rename(&from, &slot).await {
                Ok(()) => self
                    .state
                    .borrow_mut()
                    .recycled
                    .push((slot, segment.allocated)),
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(LogError::Io {
                        context: format!("recycling {}", from.display()),
                        source: e,
                    })
                }
            }
        }
        for name in [
            segment::log_file_name(segment.base),
            segment::index_file_name(segment.base),
            segment::time_index_file_name(segment.base),
        ] {
            let path = self.dir.join(name);
            match self.disk.remove(&path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(LogError::Io {
                        context: format!("removing {}", path.display()),
                        source: e,
                    })
                }
            }
        }
        Ok(())
    }

    /// Deletes the oldest sealed segments that break `retention` at `now_ms` — never the
    /// active one — and moves the log start past them. Returns the deleted segments' bases.
    pub async fn apply_retention(
        &self,
        retention: Retention,
        now_ms: i64,
    ) -> Result<Vec<Offset>, LogError> {
        let new_start = {
            let state = self.state.borrow();
            let mut total: u64 = state.segments.values().map(|s| s.end).sum();
            let sealed: Vec<&Segment<D::File>> = state
                .segments
                .values()
                .take(state.segments.len().saturating_sub(1))
                .filter(|s| s.finalised)
                .collect();
            let mut new_start = None;
            for segment in sealed {
                let too_big = retention
                    .retention_bytes
                    .is_some_and(|limit| total - segment.end >= limit);
                let max_timestamp = segment.index.max_timestamp();
                let too_old = retention.retention_ms.is_some_and(|ms| {
                    max_timestamp >= 0 && max_timestamp < now_ms.saturating_sub(ms)
                });
                if !(too_big || too_old) {
                    break;
                }
                total -= segment.end;
                new_start = Some(segment.next_offset);
            }
            new_start
        };
        let Some(new_start) = new_start else {
            return Ok(Vec::new());
        };
        let before = self.segment_bases();
        self.truncate_prefix(new_start).await?;
        let after = self.segment_bases();
        Ok(before
            .into_iter()
            .filter(|base| !after.contains(base))
            .collect())
    }

    /// Rolls to a new segment if the active one is non-empty and its first batch is at least
    /// `segment_ms` older than `now_ms` (`segment.ms`). Returns whether it rolled.
    pub fn roll_if_older(&self, now_ms: i64, segment_ms: i64) -> bool {
        let mut state = self.state.borrow_mut();
        let next_offset = state.next_offset;
        let interval = self.config.index_interval_bytes;
        let Some(active) = state.segments.values_mut().next_back() else {
            return false;
        };
        if active.end == 0 {
            return false;
        }
        let first = *active.first_timestamp.get_or_insert(now_ms);
        if now_ms.saturating_sub(first) < segment_ms {
            return false;
        }
        active.sealed = true;
        state
            .segments
            .insert(next_offset.get(), Segment::new(next_offset, interval));
        true
    }

    /// Removes every batch from the one containing `offset` on (a follower whose log
    /// diverged from its leader's). The log then ends at that batch's base offset, which is
    /// at or below `offset`, as Kafka's truncation does. Durable when this returns.
    pub async fn truncate_suffix(&self, offset: Offset) -> Result<Offset, LogError> {
        // No early write starts until the cut is done (one could land past it afterwards),
        // and those already started land before it.
        let _paused = super::eager::PauseEarlyWrites::new(self);
        self.flush().await?;
        for write in self.early_writes() {
            write.wait().await;
        }
        let (keep_base, doomed) = {
            let mut state = self.state.borrow_mut();
            if offset >= state.next_offset {
                return Ok(state.next_offset);
            }
            // The file's bytes past the cut will be rewritten: no read may keep them.
            state.truncations += 1;
            self.forget_read_buffers(&mut state);
            if offset < state.log_start {
                return Err(LogError::OffsetOutOfRange {
                    offset,
                    log_start: state.log_start,
                });
            }
            let keep_base = state
                .segments
                .range(..=offset.get())
                .next_back()
                .map(|(base, _)| *base)
                .expect("a segment at or below any offset above the log start");
            let doomed: Vec<i64> = state
                .segments
                .range(keep_base + 1..)
                .map(|(b, _)| *b)
                .collect();
            let doomed: Vec<_> = doomed
                .iter()
                .filter_map(|b| state.segments.remove(b))
                .map(|mut segment| {
                    self.release().all_chunks(&mut segment);
                    segment
                })
                .collect();
            (keep_base, doomed)
        };
        // Newest first, and durably before the kept segment is cut: a crash part-way leaves
        // the log a prefix of itself, never segments with a gap between them.
        for segment in doomed.into_iter().rev() {
            self.delete_segment_files(segment, false).await?;
        }
        self.disk
            .sync_dir(&self.dir)
            .await
            .map_err(io_error(|| format!("syncing {}", self.dir.display())))?;
        let end = self.truncate_segment_at(keep_base, offset).await?;
        {
            let mut state = self.state.borrow_mut();
            state.next_offset = end;
            state.durable_offset = end;
            // A completed sync of offsets past the cut must not raise it again.
            state.synced.retain(|round| round.target <= end);
            // Reads that ran during the cut may have kept bytes from before it.
            state.truncations += 1;
            self.forget_read_buffers(&mut state);
            state.high_watermark = state.high_watermark.min(end);
            state.epochs.truncate_from_end(end);
        }
        self.write_epochs_if_changed().await?;
        Ok(end)
    }

    /// Cuts the segment at `base` before the batch holding `offset`, makes it the active
    /// segment again, and returns the new log end.
    async fn truncate_segment_at(&self, base: i64, offset: Offset) -> Result<Offset, LogError> {
        let (plan, path) = {
            let state = self.state.borrow();
            let Some(segment) = state.segments.get(&base) else {
                return Err(LogError::Corrupt {
                    file: self.dir.join(segment::log_file_name(Offset(base))),
                    position: 0,
                    reason: "the segment was deleted while it was being truncated".to_string(),
                });
            };
            let path = self.dir.join(segment::log_file_name(segment.base));
            (
                ReadPlan::for_segment(segment, path.clone(), Offset(i64::MAX)),
                path,
            )
        };
        let (position, batch_base) = plan.position_of_batch_holding(offset).await?;
        let file = plan.file.clone().ok_or_else(|| LogError::Corrupt {
            file: path.clone(),
            position,
            reason: "a flushed segment has no file".to_string(),
        })?;
        let context = |what: &'static str| {
            let path = path.clone();
            move || format!("{what} {}", path.display())
        };
        file.truncate(position)
            .await
            .map_err(io_error(context("truncating")))?;
        file.fdatasync()
            .await
            .map_err(io_error(context("fdatasync of")))?;
        for name in [
            segment::index_file_name(Offset(base)),
            segment::time_index_file_name(Offset(base)),
        ] {
            let index_path = self.dir.join(name);
            match self.disk.remove(&index_path).await {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => {
                    return Err(LogError::Io {
                        context: format!("removing {}", index_path.display()),
                        source: e,
                    })
                }
            }
        }
        // Rebuild the index's running figures up to the cut, then reopen the segment for
        // appends with its partial last page carried in an open chunk.
        let index = self
            .state
            .borrow()
            .segments
            .get(&base)
            .map(|segment| segment.index.clone());
        let mut index = index.ok_or_else(|| LogError::Corrupt {
            file: path.clone(),
            position,
            reason: "the segment was deleted while it was being truncated".to_string(),
        })?;
        let _ = index.truncate_for_rescan(position);
        let mut epochs = crate::epochs::EpochCache::default();
        scan_batches(
            file.as_ref(),
            &path,
            &mut index,
            position,
            false,
            &mut epochs,
        )
        .await?
        .ok_or_else(|| LogError::Corrupt {
            file: path.clone(),
            position,
            reason: "index entry below the cut names no batch".to_string(),
        })?;
        let alignment = self.disk.alignment();
        let page = super::align_down(position, alignment);
        let partial = (position - page) as usize;
        let mut buffer = self.disk.alloc_buffer(self.config.chunk_bytes);
        if partial > 0 {
            let bytes = file
                .read_at(page, partial)
                .await
                .map_err(io_error(context("reading")))?;
            buffer.bytes_mut()[..bytes.len()].copy_from_slice(&bytes);
        }
        let mut state = self.state.borrow_mut();
        // Retention may have run during the awaits above and removed the segment.
        let Some(segment) = state.segments.get_mut(&base) else {
            return Err(LogError::Corrupt {
                file: path.clone(),
                position,
                reason: "the segment was deleted while it was being truncated".to_string(),
            });
        };
        segment.index = index;
        segment.end = position;
        segment.allocated = position;
        segment.next_offset = batch_base;
        segment.sealed = false;
        segment.finalised = false;
        segment.first_timestamp = None;
        self.release().all_chunks(segment);
        segment
            .chunks
            .push_back(Chunk::open_at(Rc::new(buffer), page, partial));
        Ok(batch_base)
    }

    /// ListOffsets by timestamp: the first record whose timestamp is at or after
    /// `timestamp`, with its timestamp; `None` if every record is older.
    pub async fn offset_for_timestamp(
        &self,
        timestamp: i64,
    ) -> Result<Option<(Offset, i64)>, LogError> {
        let plans = {
            let state = self.state.borrow();
            if state.offline {
                return Err(LogError::Offline(self.dir.clone()));
            }
            // Segments whose newest batch reaches the target, oldest first: the answer is in
            // the first one unless its batches' records all fall short (max timestamps are
            // per batch, so a later segment may still be needed).
            state
                .segments
                .values()
                .filter(|s| s.index.max_timestamp() >= timestamp)
                .map(|s| {
                    let path = self.dir.join(segment::log_file_name(s.base));
                    let mut plan = ReadPlan::for_segment(s, path, state.next_offset);
                    plan.start = s.index.position_for_timestamp(timestamp);
                    plan
                })
                .collect::<Vec<_>>()
        };
        for plan in plans {
            if let Some(found) = plan
                .find_timestamp(timestamp, self.log_start_offset())
                .await?
            {
                return Ok(Some(found));
            }
        }
        Ok(None)
    }
}

impl<F: DiskFile> ReadPlan<F> {
    /// A plan covering a whole segment, reading up to `upper`.
    pub(super) fn for_segment(
        segment: &Segment<F>,
        path: std::path::PathBuf,
        upper: Offset,
    ) -> ReadPlan<F> {
        ReadPlan {
            path,
            file: segment.file.clone(),
            chunks: segment
                .chunks
                .iter()
                .map(|c| (c.buffer.clone(), c.pos, c.len))
                .collect(),
            start: 0,
            end: segment.end,
            upper,
            memory_bytes: Cell::new(0),
            disk_bytes: Cell::new(0),
            ahead: Vec::new(),
            ahead_bytes: Cell::new(0),
            disk_range: Cell::new(None),
            segment_base: segment.base.get(),
            segment_next: segment.next_offset,
        }
    }
}
