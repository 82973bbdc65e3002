//! Recovery: opening a segment, scanning its batches, rebuilding its index.

use super::{align_down, io_error, Chunk, LogConfig, LogError, Segment};
use crate::disk::{Disk, DiskFile};
use crate::segment::{self, IndexEntry};
use spate_model::batch::{BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES};
use spate_model::{BatchHeader, Offset, RecordBatch};
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
    let index_path = dir.join(segment::index_file_name(base));
    let index_bytes = disk
        .read_small(&index_path)
        .await
        .map_err(io_error(|| format!("reading {}", index_path.display())))?
        .unwrap_or_default();
    let mut index = segment::decode_index(&index_bytes, size);
    let mut segment = Segment::new(base);
    segment.allocated = size;
    // Scan from the last trusted index entry: to the end of the file for the active segment
    // after a crash (the tail may be torn), else to the file's size.
    let interval = config.index_interval_bytes;
    let scan = match scan_batches(
        &file,
        &log_path,
        base,
        index.last().copied(),
        size,
        interval,
        scan_tail,
    )
    .await?
    {
        Some(scan) => scan,
        None => {
            // The index points at no batch with its offset: distrust it and rebuild.
            index.clear();
            scan_batches(&file, &log_path, base, None, size, interval, scan_tail)
                .await?
                .expect("a scan from the segment start never reports a stale index")
        }
    };
    index.extend(scan.index);
    segment.index = index;
    segment.end = scan.end;
    segment.next_offset = scan.next_offset;
    segment.bytes_since_index = scan.bytes_since_index;
    if scan_tail && scan.end < size {
        // Make the cut durable before anything is appended after it.
        file.fdatasync()
            .await
            .map_err(io_error(|| format!("fdatasync of {}", log_path.display())))?;
    }
    segment.finalised = !active;
    segment.sealed = !active;
    let file = Rc::new(file);
    if active {
        // The next append continues the partial last page, so carry it in an open chunk.
        let alignment = disk.alignment();
        assert_eq!(
            alignment % file.alignment(),
            0,
            "the disk's alignment suits each file"
        );
        let pos = align_down(segment.end, alignment);
        let partial = (segment.end - pos) as usize;
        let mut buffer = disk.alloc_buffer(config.chunk_bytes);
        if partial > 0 {
            let bytes = file
                .read_at(pos, partial)
                .await
                .map_err(io_error(|| format!("reading {}", log_path.display())))?;
            buffer.as_mut()[..bytes.len()].copy_from_slice(&bytes);
        }
        segment.chunks.push_back(Chunk {
            buffer: Rc::new(buffer),
            pos,
            len: partial,
            flushed_len: partial,
            open: true,
        });
    }
    segment.file = Some(file);
    Ok(segment)
}

struct Scan {
    end: u64,
    next_offset: Offset,
    index: Vec<IndexEntry>,
    bytes_since_index: u64,
}

/// Walks batches from `from` (or the segment start) to `size`, checking each one's framing,
/// CRC and offsets, and indexing them. With `tolerate_tail`, the first bad batch ends the log
/// (a torn tail); otherwise it is corruption. A scan from an index entry that finds no batch
/// with that entry's offset there reports `Ok(None)`: the index is stale.
async fn scan_batches<F: DiskFile>(
    file: &F,
    path: &Path,
    base: Offset,
    from: Option<IndexEntry>,
    size: u64,
    index_interval_bytes: u64,
    tolerate_tail: bool,
) -> Result<Option<Scan>, LogError> {
    const READ_AHEAD_BYTES: usize = 1 << 20;
    let start = from.map_or(0, |entry| u64::from(entry.position));
    let mut position = start;
    let mut expected = from.map_or(base, |entry| {
        Offset(base.get() + i64::from(entry.relative_offset))
    });
    let mut index = Vec::new();
    let mut bytes_since_index = 0;
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
            Ok((batch_base, _, _))
                if from.is_some() && position == start && batch_base != expected =>
            {
                return Ok(None);
            }
            Err(_) if from.is_some() && position == start => return Ok(None),
            Err(reason) => Some(reason),
            Ok((batch_base, _, _)) if batch_base < expected => Some(format!(
                "offset {batch_base} goes backwards (expected at least {expected})"
            )),
            Ok((batch_base, last_offset, batch_size)) => {
                let first = index.is_empty() && from.is_none();
                if first || bytes_since_index >= index_interval_bytes {
                    let relative_offset =
                        u32::try_from(batch_base.get() - base.get()).unwrap_or(u32::MAX);
                    if from.is_none_or(|f| relative_offset > f.relative_offset) {
                        let entry_position = u32::try_from(position).unwrap_or(u32::MAX);
                        index.push(IndexEntry {
                            relative_offset,
                            position: entry_position,
                        });
                        bytes_since_index = 0;
                    }
                }
                expected = Offset(last_offset.get() + 1);
                position += batch_size as u64;
                bytes_since_index += batch_size as u64;
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
        index,
        bytes_since_index,
    }))
}

/// Reads and validates the batch at `position`: `Ok(Ok((base, last offset, size)))`, or
/// `Ok(Err(reason))` when it is not a valid batch.
async fn check_batch_at<F: DiskFile>(
    file: &F,
    path: &Path,
    window: &mut Window,
    position: u64,
    available: usize,
    read_ahead: usize,
) -> Result<Result<(Offset, Offset, usize), String>, LogError> {
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
        Ok(batch) => Ok((
            batch.header().base_offset(),
            batch.header().last_offset(),
            size,
        )),
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
