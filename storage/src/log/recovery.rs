//! Recovery: opening a segment, scanning its batches, rebuilding its index.

use super::{align_down, io_error, Chunk, LogConfig, LogError, Segment};
use crate::disk::{Disk, DiskBuffer, DiskFile};
use crate::epochs::EpochCache;
use crate::segment::{self, SegmentIndex};
use spate_model::batch::{BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES};
use spate_model::{BatchHeader, LeaderEpoch, Offset, RecordBatch};
use std::path::Path;
use std::rc::Rc;

/// Opens one segment and establishes its end, index and next offset.
pub(super) async fn recover_segment<D: Disk>(
    disk: &D,
    dir: &Path,
    base: Offset,
    active: bool,
    scan_tail: bool,
    config: &LogConfig,
    epochs: &mut EpochCache,
) -> Result<Segment<D::File>, LogError> {
    let log_path = dir.join(segment::log_file_name(base));
    let file = disk
        .open(&log_path, true)
        .await
        .map_err(io_error(|| format!("opening {}", log_path.display())))?;
    let size = file
        .size()
        .await
        .map_err(io_error(|| format!("sizing {}", log_path.display())))?;
    let mut index_files = Vec::with_capacity(2);
    for name in [
        segment::index_file_name(base),
        segment::time_index_file_name(base),
    ] {
        let path = dir.join(name);
        let bytes = disk
            .read_small(&path)
            .await
            .map_err(io_error(|| format!("reading {}", path.display())))?;
        index_files.push(bytes.unwrap_or_default());
    }
    let interval = config.index_interval_bytes;
    let mut index = SegmentIndex::load(base, interval, &index_files[0], &index_files[1], size);
    let mut segment = Segment::new(base, interval);
    segment.allocated = size;
    // Scan from the last trusted index entry: to the end of the file for the active segment
    // after a crash (the tail may be torn), else to the file's size.
    let scan = match scan_batches(&file, &log_path, &mut index, size, scan_tail, epochs).await? {
        Some(scan) => scan,
        None => {
            // The index points at no batch with its offset: distrust it and rebuild.
            tracing::warn!(file = %log_path.display(), "recovery: stale index, rebuilding it by scanning");
            index.clear();
            scan_batches(&file, &log_path, &mut index, size, scan_tail, epochs)
                .await?
                .expect("a scan from the segment start never reports a stale index")
        }
    };
    segment.index = index;
    segment.end = scan.end;
    segment.next_offset = scan.next_offset;
    if scan_tail && scan.end < size {
        tracing::warn!(
            file = %log_path.display(),
            log_end = scan.end,
            file_size = size,
            "recovery: log end found before the file end (preallocated or torn tail); file cut there"
        );
        // Cut the file at the log's end, durably, before anything is appended after it: the
        // bytes past a torn write may hold whole, valid batches of an unacknowledged flush
        // (its writes run concurrently), which must never be found by a later recovery.
        file.truncate(scan.end)
            .await
            .map_err(io_error(|| format!("truncating {}", log_path.display())))?;
        file.fdatasync()
            .await
            .map_err(io_error(|| format!("fdatasync of {}", log_path.display())))?;
        segment.allocated = scan.end;
    }
    segment.finalised = !active;
    segment.sealed = !active;
    let file = Rc::new(file);
    if active {
        // The next append continues the partial last page, so carry it in an open chunk —
        // of one page: an idle partition holds no more (appends open full-size chunks after
        // it as they need them).
        let alignment = disk.alignment();
        assert_eq!(
            alignment % file.alignment(),
            0,
            "the disk's alignment suits each file"
        );
        let pos = align_down(segment.end, alignment);
        let partial = (segment.end - pos) as usize;
        let mut buffer = disk.alloc_buffer(alignment.min(config.chunk_bytes));
        if partial > 0 {
            let bytes = file
                .read_at(pos, partial)
                .await
                .map_err(io_error(|| format!("reading {}", log_path.display())))?;
            buffer.bytes_mut()[..bytes.len()].copy_from_slice(&bytes);
        }
        segment
            .chunks
            .push_back(Chunk::open_at(Rc::new(buffer), pos, partial));
    }
    segment.file = Some(file);
    Ok(segment)
}

pub(super) struct Scan {
    pub(super) end: u64,
    pub(super) next_offset: Offset,
}

/// Walks batches from the index's resume point to `size`, checking each one's framing, CRC
/// and offsets, and adding them to the index. With `tolerate_tail`, the first bad batch ends
/// the log (a torn tail); otherwise it is corruption. A scan from an index entry that finds
/// no batch with that entry's offset there reports `Ok(None)`: the index is stale.
pub(super) async fn scan_batches<F: DiskFile>(
    file: &F,
    path: &Path,
    index: &mut SegmentIndex,
    size: u64,
    tolerate_tail: bool,
    epochs: &mut EpochCache,
) -> Result<Option<Scan>, LogError> {
    const READ_AHEAD_BYTES: usize = 1 << 20;
    let (start, mut expected) = index.resume_point();
    let from_entry = start > 0;
    let mut position = start;
    let mut window = Window {
        bytes: Vec::new(),
        pos: position,
    };
    while position + LOG_OVERHEAD_BYTES as u64 <= size {
        let available = (size - position) as usize;
        let checked = check_batch_at(
            file,
            path,
            &mut window,
            position,
            available,
            READ_AHEAD_BYTES,
        )
        .await?;
        let problem = match checked {
            Ok(batch) if from_entry && position == start && batch.base != expected => {
                return Ok(None);
            }
            Err(_) if from_entry && position == start => return Ok(None),
            Err(reason) => Some(reason),
            Ok(batch) if batch.base < expected => Some(format!(
                "offset {} goes backwards (expected at least {expected})",
                batch.base
            )),
            Ok(batch) => {
                index.on_batch(position, batch.base, batch.max_timestamp, batch.size as u64);
                epochs.assign(batch.epoch, batch.base);
                expected = Offset(batch.last.get() + 1);
                position += batch.size as u64;
                None
            }
        };
        if let Some(reason) = problem {
            if tolerate_tail {
                break;
            }
            return Err(LogError::Corrupt {
                file: path.to_path_buf(),
                position,
                reason,
            });
        }
    }
    Ok(Some(Scan {
        end: position,
        next_offset: expected,
    }))
}

/// What a scan learns of one valid batch.
struct ScannedBatch {
    base: Offset,
    last: Offset,
    max_timestamp: i64,
    epoch: LeaderEpoch,
    size: usize,
}

/// Reads and validates the batch at `position`: `Ok(Ok(batch))`, or `Ok(Err(reason))` when it
/// is not a valid batch.
async fn check_batch_at<F: DiskFile>(
    file: &F,
    path: &Path,
    window: &mut Window,
    position: u64,
    available: usize,
    read_ahead: usize,
) -> Result<Result<ScannedBatch, String>, LogError> {
    let header_len = BATCH_HEADER_BYTES.min(available);
    window
        .ensure(file, path, position, header_len, read_ahead)
        .await?;
    let size = match BatchHeader::view(window.slice(position, header_len)) {
        Some(header) => usize::try_from(header.batch_length())
            .unwrap_or(0)
            .saturating_add(LOG_OVERHEAD_BYTES),
        None => return Ok(Err("file ends inside a batch header".to_string())),
    };
    if size < BATCH_HEADER_BYTES || size > available {
        return Ok(Err(format!(
            "batch length {size} out of range ({available} bytes left)"
        )));
    }
    window
        .ensure(file, path, position, size, read_ahead)
        .await?;
    Ok(match RecordBatch::validate(window.slice(position, size)) {
        Ok(batch) => Ok(ScannedBatch {
            base: batch.header().base_offset(),
            last: batch.header().last_offset(),
            max_timestamp: batch.header().max_timestamp(),
            epoch: batch.header().partition_leader_epoch(),
            size,
        }),
        Err(e) => Err(e.to_string()),
    })
}

/// A read-ahead window over a file.
struct Window {
    bytes: Vec<u8>,
    pos: u64,
}

impl Window {
    fn slice(&self, position: u64, len: usize) -> &[u8] {
        let at = (position - self.pos) as usize;
        &self.bytes[at..at + len]
    }

    /// Makes the window hold `[position, position + len)`.
    async fn ensure<F: DiskFile>(
        &mut self,
        file: &F,
        path: &Path,
        position: u64,
        len: usize,
        read_ahead: usize,
    ) -> Result<(), LogError> {
        if position >= self.pos && position + len as u64 <= self.pos + self.bytes.len() as u64 {
            return Ok(());
        }
        let bytes = file
            .read_at(position, len.max(read_ahead))
            .await
            .map_err(io_error(|| format!("reading {}", path.display())))?;
        if bytes.len() < len {
            let reason = "file ends inside a batch".to_string();
            return Err(LogError::Corrupt {
                file: path.to_path_buf(),
                position,
                reason,
            });
        }
        self.bytes = bytes;
        self.pos = position;
        Ok(())
    }
}
