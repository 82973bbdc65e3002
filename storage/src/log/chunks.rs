//! The write-behind chunks: aligned buffers the appends are copied into, closed and carried
//! over at each flush.

use super::{align_down, align_up, Chunk, Segment};
use crate::disk::{Disk, DiskBuffer, DiskFile};
use spate_model::batch::{copy_stamped, BATCH_HEADER_BYTES};
use spate_model::{LeaderEpoch, Offset};
use std::rc::Rc;

/// Copies `bytes` into the segment's open chunk (new chunks as needed), stamping the copy:
/// the stamped header is written over the first 61 copied bytes, the rest is one memcpy.
pub(super) fn write_into_chunks<D: Disk>(
    disk: &D,
    segment: &mut Segment<D::File>,
    bytes: &[u8],
    chunk_bytes: usize,
    base_offset: Offset,
    leader_epoch: LeaderEpoch,
) {
    let mut stamped_header = [0_u8; BATCH_HEADER_BYTES];
    copy_stamped(
        &bytes[..BATCH_HEADER_BYTES],
        &mut stamped_header,
        base_offset,
        leader_epoch,
    );
    let mut written = 0;
    while written < bytes.len() {
        let position = segment.end + written as u64;
        let chunk = open_chunk(disk, segment, position, chunk_bytes);
        let capacity = chunk.buffer.bytes().len() - chunk.len;
        let take = capacity.min(bytes.len() - written);
        let len = chunk.len;
        let target = &mut own_buffer(disk, chunk).bytes_mut()[len..len + take];
        target.copy_from_slice(&bytes[written..written + take]);
        if written < BATCH_HEADER_BYTES {
            let stamped = (BATCH_HEADER_BYTES - written).min(take);
            target[..stamped].copy_from_slice(&stamped_header[written..written + stamped]);
        }
        chunk.len += take;
        written += take;
        if chunk.len == chunk.buffer.bytes().len() {
            chunk.open = false;
        }
    }
}

/// The chunk accepting bytes at `position`, creating one if needed.
pub(super) fn open_chunk<'a, D: Disk>(
    disk: &D,
    segment: &'a mut Segment<D::File>,
    position: u64,
    chunk_bytes: usize,
) -> &'a mut Chunk<<D::File as DiskFile>::Buffer> {
    let reusable = segment
        .chunks
        .back()
        .is_some_and(|c| c.open && c.pos + c.len as u64 == position);
    if !reusable {
        let pos = align_down(position, disk.alignment());
        debug_assert_eq!(pos, position, "a full chunk ends on an alignment boundary");
        let len = (position - pos) as usize;
        let mut buffer = disk.take_buffer(chunk_bytes);
        buffer.bytes_mut()[..len].fill(0);
        segment
            .chunks
            .push_back(Chunk::open_at(Rc::new(buffer), pos, len));
    }
    segment.chunks.back_mut().expect("just ensured")
}

/// Ends the open chunk if it holds unflushed bytes: it is written by this flush, trimmed to
/// whole pages, and (unless the segment is sealed) its last partial page is carried into a
/// new open chunk, where the next flush rewrites it with whatever follows.
pub(super) fn close_open_chunk<D: Disk>(
    disk: &D,
    segment: &mut Segment<D::File>,
    chunk_bytes: usize,
) {
    let alignment = disk.alignment();
    let sealed = segment.sealed;
    // The open chunk holds no tail budget: only its buffer goes back.
    let release = super::Release {
        disk,
        tail: None,
        chunk_bytes,
    };
    let Some(last) = segment.chunks.back_mut() else {
        return;
    };
    if !last.open || last.len == last.flushed_len {
        if sealed && last.open {
            // Nothing new in it, and nothing will follow: drop it.
            if let Some(chunk) = segment.chunks.pop_back() {
                release.chunk(chunk);
            }
        }
        return;
    }
    last.open = false;
    let partial = last.len % alignment;
    let full_pages = last.len - partial;
    let carried =
        (partial > 0 && !sealed).then(|| last.buffer.bytes()[full_pages..last.len].to_vec());
    // The write covers whole pages: past the appended bytes, zeros rather than whatever the
    // buffer's last user left (pooled buffers are not cleared).
    let (len, written) = (last.len, align_up(last.len, alignment));
    if written <= chunk_bytes / 2 {
        // Mostly empty: its pages move to a buffer of their size (what the tail cache then
        // keeps and charges), and the whole one goes back to the pool for the next chunk.
        let mut pages = disk.alloc_buffer(written);
        pages.bytes_mut()[..len].copy_from_slice(&last.buffer.bytes()[..len]);
        release.buffer(std::mem::replace(&mut last.buffer, Rc::new(pages)));
        last.allocated = written;
    } else {
        let buffer = own_buffer(disk, last);
        buffer.bytes_mut()[len..written].fill(0);
        buffer.trim(written);
    }
    let pos = last.pos + full_pages as u64;
    if let Some(carried) = carried {
        let mut buffer = disk.take_buffer(chunk_bytes);
        buffer.bytes_mut()[..carried.len()].copy_from_slice(&carried);
        let len = carried.len();
        segment
            .chunks
            .push_back(Chunk::open_at(Rc::new(buffer), pos, len));
    }
}

/// The chunk's buffer, to change: if a read in progress holds it (reads share chunks, they do
/// not copy them), the chunk moves to a copy of its bytes and the reader keeps the bytes it
/// planned on.
fn own_buffer<'a, D: Disk>(
    disk: &D,
    chunk: &'a mut Chunk<<D::File as DiskFile>::Buffer>,
) -> &'a mut <D::File as DiskFile>::Buffer {
    if Rc::get_mut(&mut chunk.buffer).is_none() {
        let mut copy = disk.take_buffer(chunk.buffer.bytes().len());
        copy.bytes_mut()[..chunk.len].copy_from_slice(&chunk.buffer.bytes()[..chunk.len]);
        chunk.buffer = Rc::new(copy);
    }
    Rc::get_mut(&mut chunk.buffer).expect("the chunk's buffer was just made its own")
}
