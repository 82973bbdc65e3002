//! The read path: whole batches from the write-behind chunks or the segment file.

use super::{io_error, LogError, ReadBatches};
use crate::disk::{DiskBuffer, DiskFile};
use bytes::{Bytes, BytesMut};
use spate_model::batch::{BATCH_HEADER_BYTES, LOG_OVERHEAD_BYTES};
use spate_model::{BatchHeader, Offset, RecordBatch, TimestampType};

/// Size of each concurrent request a large disk read is split into.
pub(super) const READ_PIECE_BYTES: usize = 256 * 1024;

/// The most a batch may decompress to when a timestamp lookup has to look inside it.
const MAX_DECOMPRESSED_BYTES: usize = 64 * 1024 * 1024;
use super::ahead::AheadBuffer;
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
    /// The segment's read-ahead buffers when the read began.
    pub(super) ahead: Vec<AheadBuffer>,
    /// Bytes served from them.
    pub(super) ahead_bytes: Cell<u64>,
    /// The range of the segment file this plan's reads covered below the buffered chunks.
    pub(super) disk_range: Cell<Option<(u64, u64)>>,
    /// The segment's base offset.
    pub(super) segment_base: i64,
    /// The offset after the segment's last batch when the plan was made: every batch read
    /// lies between the base and this.
    pub(super) segment_next: Offset,
}

impl<F: DiskFile> ReadPlan<F> {
    /// Walks batches from the index position; one read covers the usual case (the skip from
    /// the index entry plus `max_bytes`), more are made only for a batch that runs past it.
    /// The batches are returned as a slice of the bytes read, not copied again.
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
        let mut batches = 0;
        let mut window = self.window(position, first_read as usize).await?;
        // Offsets only go up: a batch at or below the one before is not this log's.
        let mut floor = Offset(self.segment_base);
        while position + (LOG_OVERHEAD_BYTES as u64) <= self.end {
            let (base, last, size) = self.header_at(&mut window, position).await?;
            if base < floor {
                return Err(self.corrupt(position, "batch offsets go backwards"));
            }
            floor = Offset(last.get() + 1);
            if base >= self.upper {
                break;
            }
            if last >= offset {
                if batches > 0 && window.collected() + size > max_bytes {
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
                window.collect(position, size);
                batches += 1;
                if window.collected() >= max_bytes {
                    break;
                }
            }
            position += size as u64;
        }
        Ok(ReadBatches {
            bytes: window.into_collected(),
            batches,
        })
    }

    /// The position and base offset of the batch holding `offset` (or the first after it;
    /// the segment end and the next offset if there is none).
    pub(super) async fn position_of_batch_holding(
        &self,
        offset: Offset,
    ) -> Result<(u64, Offset), LogError> {
        let mut position = self.start;
        let mut window = WindowBytes::empty(position);
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
        let mut window = WindowBytes::empty(position);
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
        // The CRC does not cover the offsets: check them against the segment's.
        let (base, last) = (view.base_offset(), view.last_offset());
        if base.get() < self.segment_base || last < base || last >= self.segment_next {
            return Err(self.corrupt(position, "batch offsets outside the segment's"));
        }
        Ok((base, last, size))
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
    /// the segment (`[first chunk's pos, end)`, contiguous); what lies below it is on disk,
    /// or in the read-ahead of an earlier sequential read.
    async fn bytes(&self, pos: u64, len: usize) -> Result<Bytes, LogError> {
        let want_end = pos + len as u64;
        let memory_start = self
            .chunks
            .first()
            .map_or(self.end, |(_, chunk_pos, _)| *chunk_pos);
        let mut from_disk = Bytes::new();
        if pos < memory_start {
            let disk_end = want_end.min(memory_start);
            let range = self.disk_range.get();
            self.disk_range.set(Some(
                range.map_or((pos, disk_end), |(start, end)| (start, end.max(disk_end))),
            ));
            from_disk = match self.read_ahead_bytes(pos, disk_end).await {
                Some(bytes) => bytes,
                None => self.read_file(pos, disk_end).await?,
            };
        }
        let disk_len = from_disk.len();
        self.disk_bytes.set(self.disk_bytes.get() + disk_len as u64);
        if disk_len == len {
            return Ok(from_disk);
        }
        let mut out = Vec::with_capacity(len);
        out.extend_from_slice(&from_disk);
        // The rest from the chunks, in order; a later chunk may repeat the last page of the
        // one before it (a carried page holding the same bytes), which is skipped.
        for (buffer, chunk_pos, chunk_len) in &self.chunks {
            let at = pos + out.len() as u64;
            let from = at.max(*chunk_pos);
            let to = want_end.min(chunk_pos + *chunk_len as u64);
            if from < to {
                if from != at {
                    return Err(self.corrupt(at, "a gap in the buffered data"));
                }
                let source =
                    &buffer.bytes()[(from - chunk_pos) as usize..(to - chunk_pos) as usize];
                out.extend_from_slice(source);
            }
        }
        if out.len() < len {
            let at = pos + out.len() as u64;
            return Err(self.corrupt(at, "data neither buffered nor on disk"));
        }
        self.memory_bytes
            .set(self.memory_bytes.get() + (len - disk_len) as u64);
        Ok(Bytes::from(out))
    }

    /// `[pos, end)` of the file from the read-ahead buffers, if they hold all of it (waiting
    /// for a buffer still being filled); without a copy when one buffer holds it.
    async fn read_ahead_bytes(&self, pos: u64, end: u64) -> Option<Bytes> {
        let mut parts = Vec::new();
        let mut at = pos;
        for buffer in &self.ahead {
            let buffer_end = buffer.pos + buffer.len as u64;
            if at >= end || buffer.pos > at || buffer_end <= at {
                continue;
            }
            let to = end.min(buffer_end);
            parts.push((
                buffer,
                (at - buffer.pos) as usize,
                (to - buffer.pos) as usize,
            ));
            at = to;
        }
        if at < end {
            return None;
        }
        let mut slices = Vec::with_capacity(parts.len());
        for (buffer, from, to) in parts {
            slices.push(buffer.fill.wait().await?.slice(from..to));
        }
        self.ahead_bytes.set(self.ahead_bytes.get() + (end - pos));
        if slices.len() == 1 {
            return slices.pop();
        }
        Some(Bytes::from(slices.concat()))
    }

    /// Reads `[pos, end)` from the file.
    async fn read_file(&self, pos: u64, end: u64) -> Result<Bytes, LogError> {
        let file = self
            .file
            .as_ref()
            .ok_or_else(|| self.corrupt(pos, "data neither buffered nor on disk"))?;
        let mut out = BytesMut::zeroed((end - pos) as usize);
        let whole = read_pieces(&**file, pos, &mut out)
            .await
            .map_err(io_error(|| format!("reading {}", self.path.display())))?;
        if !whole {
            return Err(self.corrupt(pos, "segment file shorter than its recorded end"));
        }
        Ok(out.freeze())
    }
}

/// Reads `out.len()` bytes of `file` from `pos` into `out`, as several requests at once (the
/// device serves a queue faster than one long request), each straight into its part of
/// `out`. `Ok(false)`: the file ended first.
pub(super) async fn read_pieces<F: DiskFile>(
    file: &F,
    pos: u64,
    out: &mut [u8],
) -> std::io::Result<bool> {
    let len = out.len();
    let pieces: Vec<_> = out
        .chunks_mut(READ_PIECE_BYTES)
        .enumerate()
        .map(|(i, piece)| file.read_into(pos + (i * READ_PIECE_BYTES) as u64, piece))
        .collect();
    let mut whole = true;
    for (i, piece) in crate::join::join_all(pieces).await.into_iter().enumerate() {
        whole &= piece? >= READ_PIECE_BYTES.min(len - i * READ_PIECE_BYTES);
    }
    Ok(whole)
}

/// Bytes of a segment read ahead for [`ReadPlan::read`], and the batches collected from
/// them: a run of the window's bytes (returned without copying) after whatever earlier
/// windows contributed (copied, when a batch ran past the first window).
struct WindowBytes {
    pos: u64,
    bytes: Bytes,
    /// All of them came from the write-behind and tail-cache buffers.
    in_memory: bool,
    /// Collected batches in this window: `[start, end)` of `bytes`.
    run: Option<(usize, usize)>,
    /// Collected batches from earlier windows.
    spilled: Vec<u8>,
}

impl WindowBytes {
    fn empty(pos: u64) -> WindowBytes {
        WindowBytes {
            pos,
            bytes: Bytes::new(),
            in_memory: false,
            run: None,
            spilled: Vec::new(),
        }
    }

    /// Adds the batch at `[position, position + len)` (held by the window, right after the
    /// batches collected so far) to the result.
    fn collect(&mut self, position: u64, len: usize) {
        let at = (position - self.pos) as usize;
        self.run = Some(match self.run {
            Some((start, end)) if end == at => (start, at + len),
            Some(_) | None => (at, at + len),
        });
    }

    fn collected(&self) -> usize {
        self.spilled.len() + self.run.map_or(0, |(start, end)| end - start)
    }

    fn into_collected(mut self) -> Bytes {
        let Some((start, end)) = self.run else {
            return Bytes::from(self.spilled);
        };
        if self.spilled.is_empty() {
            return self.bytes.slice(start..end);
        }
        self.spilled.extend_from_slice(&self.bytes[start..end]);
        Bytes::from(self.spilled)
    }
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
            run: None,
            spilled: Vec::new(),
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
    /// the window does not hold it; batches collected from the old window are kept.
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
            let mut next = plan.window(position, want.max(len)).await?;
            if let Some((start, end)) = self.run.take() {
                self.spilled.extend_from_slice(&self.bytes[start..end]);
            }
            next.spilled = std::mem::take(&mut self.spilled);
            *self = next;
        }
        let at = (position - self.pos) as usize;
        Ok(&self.bytes[at..at + len])
    }
}
