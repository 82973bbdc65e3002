//! The read path: whole batches from the write-behind chunks or the segment file.

use super::{io_error, LogError, ReadBatches};
use crate::disk::{DiskBuffer, DiskFile};
use spate_model::batch::{BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES};
use spate_model::{BatchHeader, Offset, RecordBatch, TimestampType};

/// Size of each concurrent request a large disk read is split into.
const READ_PIECE_BYTES: usize = 256 * 1024;

/// The most a batch may decompress to when a timestamp lookup has to look inside it.
const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;
use std::cell::Cell;
use std::path::PathBuf;
use std::rc::Rc;

/// What a read needs, taken under the borrow.
pub(super) struct ReadPlan<F: DiskFile> {
    pub(super) path: PathBuf,
    pub(super) file: Option<Rc<F>>,
    pub(super) chunks: Vec<(Rc<F::Buffer>, u64, usize)>,
    pub(super) start: u64,
    pub(super) end: u64,
    pub(super) upper: Offset,
    /// Bytes this plan's reads took from memory and from the file.
    pub(super) memory_bytes: Cell<u64>,
    pub(super) disk_bytes: Cell<u64>,
}

impl<F: DiskFile> ReadPlan<F> {
    /// Walks batches from the index position; one read covers the usual case (the skip from
    /// the index entry plus `max_bytes`), more are made only for a batch that runs past it.
    pub(super) async fn read(
        &self,
        offset: Offset,
        max_bytes: usize,
        index_interval_bytes: u64,
    ) -> Result<ReadBatches, LogError> {
        const SLACK_BYTES: u64 = 64 * 1024;
        let mut position = self.start;
        let first_read =
            (index_interval_bytes + max_bytes as u64 + SLACK_BYTES).min(self.end - position);
        let mut out = ReadBatches {
            bytes: Vec::with_capacity(max_bytes.min(first_read as usize)),
            batches: 0,
        };
        let mut window = self.window(position, first_read as usize).await?;
        while position + (LOG_OVERHEAD_BYTES as u64) <= self.end {
            let header_len = BATCH_HEADER_BYTES.min((self.end - position) as usize);
            let header = window.get(self, position, header_len).await?;
            let Some(view) = BatchHeader::view(header) else {
                return Err(self.corrupt(position, "batch header runs past the segment end"));
            };
            let size = usize::try_from(view.batch_length()).unwrap_or(0) + LOG_OVERHEAD_BYTES;
            if size < BATCH_HEADER_BYTES || position + size as u64 > self.end {
                return Err(self.corrupt(position, "batch length runs past the segment end"));
            }
            if view.base_offset() >= self.upper {
                break;
            }
            if view.last_offset() >= offset {
                if out.batches > 0 && out.bytes.len() + size > max_bytes {
                    break;
                }
                let (batch, buffered) = window.get_with_source(self, position, size).await?;
                // Buffered batches were validated when they were appended; what comes from
                // the file is checked again (a corrupt batch is reported, never served).
                if !buffered {
                    if let Err(e) = RecordBatch::validate(batch) {
                        return Err(self.corrupt(position, &e.to_string()));
                    }
                }
                out.bytes.extend_from_slice(batch);
                out.batches += 1;
                if out.bytes.len() >= max_bytes {
                    break;
                }
            }
            position += size as u64;
        }
        Ok(out)
    }

    /// The position and base offset of the batch holding `offset` (or the first after it;
    /// the segment end and the next offset if there is none).
    pub(super) async fn position_of_batch_holding(
        &self,
        offset: Offset,
    ) -> Result<(u64, Offset), LogError> {
        let mut position = self.start;
        let mut window = WindowBytes {
            pos: position,
            bytes: Vec::new(),
            in_memory: false,
        };
        let mut next = None;
        while position + LOG_OVERHEAD_BYTES as u64 <= self.end {
            let (base, last, size) = self.header_at(&mut window, position).await?;
            if last >= offset {
                return Ok((position, base));
            }
            next = Some(Offset(last.get() + 1));
            position += size as u64;
        }
        Ok((position, next.unwrap_or(offset)))
    }

    /// The first record at or after `timestamp` in this segment, scanning from `start` and
    /// ignoring records below `from` (the log start offset).
    pub(super) async fn find_timestamp(
        &self,
        timestamp: i64,
        from: Offset,
    ) -> Result<Option<(Offset, i64)>, LogError> {
        let mut position = self.start;
        let mut window = WindowBytes {
            pos: position,
            bytes: Vec::new(),
            in_memory: false,
        };
        let mut scratch = Vec::new();
        while position + LOG_OVERHEAD_BYTES as u64 <= self.end {
            let (base, _, size) = self.header_at(&mut window, position).await?;
            if base >= self.upper {
                break;
            }
            let bytes = window.get(self, position, size).await?;
            let batch =
                RecordBatch::validate(bytes).map_err(|e| self.corrupt(position, &e.to_string()))?;
            let header = batch.header();
            if header.max_timestamp() >= timestamp && header.last_offset() >= from {
                if header.timestamp_type() == TimestampType::LogAppendTime {
                    return Ok(Some((base.max(from), header.max_timestamp())));
                }
                batch
                    .decompress_into(MAX_DECOMPRESSED_BYTES, &mut scratch)
                    .map_err(|e| self.corrupt(position, &e.to_string()))?;
                for record in batch.records_in(&scratch) {
                    let record = record.map_err(|e| self.corrupt(position, &e.to_string()))?;
                    let record_timestamp = record.timestamp(header);
                    let offset = Offset(base.get() + i64::from(record.offset_delta));
                    if record_timestamp >= timestamp && offset >= from {
                        return Ok(Some((offset, record_timestamp)));
                    }
                }
            }
            position += size as u64;
        }
        Ok(None)
    }

    /// The base offset, last offset and size of the batch at `position`.
    async fn header_at(
        &self,
        window: &mut WindowBytes,
        position: u64,
    ) -> Result<(Offset, Offset, usize), LogError> {
        let header_len = BATCH_HEADER_BYTES.min((self.end - position) as usize);
        let header = window.get(self, position, header_len).await?;
        let view = BatchHeader::view(header)
            .ok_or_else(|| self.corrupt(position, "batch header runs past the segment end"))?;
        let size = usize::try_from(view.batch_length()).unwrap_or(0) + LOG_OVERHEAD_BYTES;
        if size < BATCH_HEADER_BYTES || position + size as u64 > self.end {
            return Err(self.corrupt(position, "batch length runs past the segment end"));
        }
        Ok((view.base_offset(), view.last_offset(), size))
    }

    fn corrupt(&self, position: u64, reason: &str) -> LogError {
        // Reads never serve a bad batch; say so once per failed read, not per record.
        tracing::error!(file = %self.path.display(), position, reason, "corrupt batch refused");
        LogError::Corrupt {
            file: self.path.clone(),
            position,
            reason: reason.to_string(),
        }
    }

    /// Bytes `[pos, pos + len)` of the segment. The write-behind chunks cover a suffix of
    /// the segment (`[first chunk's pos, end)`, contiguous); what lies below it is on disk.
    async fn bytes(&self, pos: u64, len: usize) -> Result<Vec<u8>, LogError> {
        let want_end = pos + len as u64;
        let memory_start = self
            .chunks
            .first()
            .map_or(self.end, |(_, chunk_pos, _)| *chunk_pos);
        let mut out = Vec::with_capacity(len);
        if pos < memory_start {
            let disk_len = (want_end.min(memory_start) - pos) as usize;
            let file = self
                .file
                .as_ref()
                .ok_or_else(|| self.corrupt(pos, "data neither buffered nor on disk"))?;
            // Large reads go out as several requests at once: the device serves a queue
            // faster than one long request.
            let pieces: Vec<_> = (0..disk_len.div_ceil(READ_PIECE_BYTES))
                .map(|i| {
                    let offset = i * READ_PIECE_BYTES;
                    file.read_at(pos + offset as u64, READ_PIECE_BYTES.min(disk_len - offset))
                })
                .collect();
            for piece in crate::join::join_all(pieces).await {
                let piece =
                    piece.map_err(io_error(|| format!("reading {}", self.path.display())))?;
                out.extend_from_slice(&piece);
            }
            if out.len() < disk_len {
                return Err(self.corrupt(pos, "segment file shorter than its recorded end"));
            }
        }
        let from_disk = out.len();
        // The rest from the chunks, in order; a later chunk may repeat the last page of the
        // one before it (a carried page holding the same bytes), which is skipped.
        for (buffer, chunk_pos, chunk_len) in &self.chunks {
            let filled = pos + out.len() as u64;
            let from = filled.max(*chunk_pos);
            let to = want_end.min(chunk_pos + *chunk_len as u64);
            if from < to {
                if from != filled {
                    return Err(self.corrupt(filled, "a gap in the buffered data"));
                }
                let source =
                    &buffer.bytes()[(from - chunk_pos) as usize..(to - chunk_pos) as usize];
                out.extend_from_slice(source);
            }
        }
        if out.len() < len {
            let filled = pos + out.len() as u64;
            return Err(self.corrupt(filled, "data neither buffered nor on disk"));
        }
        self.disk_bytes
            .set(self.disk_bytes.get() + from_disk as u64);
        self.memory_bytes
            .set(self.memory_bytes.get() + (len - from_disk) as u64);
        Ok(out)
    }
}

/// Bytes of a segment read ahead for [`ReadPlan::read`].
struct WindowBytes {
    pos: u64,
    bytes: Vec<u8>,
    /// All of them came from the write-behind and tail-cache buffers.
    in_memory: bool,
}

impl<F: DiskFile> ReadPlan<F> {
    /// A window of `[pos, pos + len)`.
    async fn window(&self, pos: u64, len: usize) -> Result<WindowBytes, LogError> {
        let disk_before = self.disk_bytes.get();
        let bytes = self.bytes(pos, len).await?;
        Ok(WindowBytes {
            pos,
            bytes,
            in_memory: self.disk_bytes.get() == disk_before,
        })
    }
}

impl WindowBytes {
    /// Like [`WindowBytes::get`], and whether the bytes came from the buffers alone.
    async fn get_with_source<F: DiskFile>(
        &mut self,
        plan: &ReadPlan<F>,
        position: u64,
        len: usize,
    ) -> Result<(&[u8], bool), LogError> {
        let _ = self.get(plan, position, len).await?;
        let at = (position - self.pos) as usize;
        Ok((&self.bytes[at..at + len], self.in_memory))
    }

    /// `[position, position + len)`, reading it (and what follows, up to the segment end) if
    /// the window does not hold it.
    async fn get<F: DiskFile>(
        &mut self,
        plan: &ReadPlan<F>,
        position: u64,
        len: usize,
    ) -> Result<&[u8], LogError> {
        let held =
            position >= self.pos && position + len as u64 <= self.pos + self.bytes.len() as u64;
        if !held {
            let want = (len as u64).max(256 * 1024).min(plan.end - position) as usize;
            *self = plan.window(position, want.max(len)).await?;
        }
        let at = (position - self.pos) as usize;
        Ok(&self.bytes[at..at + len])
    }
}
