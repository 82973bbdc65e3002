//! Length-prefixed framing: a big-endian `int32` size, then that many bytes.
//!
//! The size is checked against the configured maximum before a single byte of the frame is
//! buffered for it; an incomplete frame is `Ok(None)`, so the caller reads more and retries.

use bytes::{Buf, Bytes, BytesMut};

/// Kafka's default `socket.request.max.bytes`: 100 MiB.
pub const DEFAULT_MAX_FRAME_BYTES: usize = 100 * 1024 * 1024;

/// Why a frame cannot be read. Each is fatal for the connection that sent it.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum FrameError {
    /// The size prefix is negative.
    #[error("frame size {0} is negative")]
    NegativeSize(i32),
    /// The size prefix exceeds the maximum.
    #[error("frame of {size} bytes exceeds the {max} byte limit (socket.request.max.bytes)")]
    TooLarge {
        /// The announced size.
        size: usize,
        /// The configured maximum.
        max: usize,
    },
}

/// Splits frames off a read buffer.
#[derive(Debug, Clone, Copy)]
pub struct FrameDecoder {
    max_frame_bytes: usize,
}

impl Default for FrameDecoder {
    fn default() -> Self {
        FrameDecoder::new(DEFAULT_MAX_FRAME_BYTES)
    }
}

impl FrameDecoder {
    /// A decoder that refuses frames larger than `max_frame_bytes`.
    pub fn new(max_frame_bytes: usize) -> FrameDecoder {
        FrameDecoder { max_frame_bytes }
    }

    /// The size limit.
    pub fn max_frame_bytes(&self) -> usize {
        self.max_frame_bytes
    }

    /// Cheap check of the buffer's first frame: `Ok(Some(n))` when the whole frame (prefix
    /// included, `n` bytes) is buffered, `Ok(None)` when more bytes are needed.
    pub fn check(&self, buf: &[u8]) -> Result<Option<usize>, FrameError> {
        let Some(prefix) = buf.first_chunk::<4>() else {
            return Ok(None);
        };
        let size = i32::from_be_bytes(*prefix);
        let size = usize::try_from(size).map_err(|_| FrameError::NegativeSize(size))?;
        if size > self.max_frame_bytes {
            return Err(FrameError::TooLarge {
                size,
                max: self.max_frame_bytes,
            });
        }
        Ok((buf.len() - 4 >= size).then_some(size + 4))
    }

    /// How many bytes the buffer must hold before the first frame is complete (for sizing a
    /// read), after the prefix has been checked; 4 while the prefix itself is incomplete.
    pub fn needed(&self, buf: &[u8]) -> Result<usize, FrameError> {
        match buf.first_chunk::<4>() {
            None => Ok(4),
            Some(_) => {
                self.check(buf)?;
                let size = i32::from_be_bytes([buf[0], buf[1], buf[2], buf[3]]);
                Ok(usize::try_from(size).unwrap_or(0) + 4)
            }
        }
    }

    /// Takes the first whole frame (without its prefix) off `buf`.
    pub fn decode(&self, buf: &mut BytesMut) -> Result<Option<Bytes>, FrameError> {
        match self.check(buf)? {
            None => Ok(None),
            Some(total) => {
                let mut frame = buf.split_to(total);
                frame.advance(4);
                Ok(Some(frame.freeze()))
            }
        }
    }
}

/// Appends `payload` to `out` with its size prefix.
///
/// # Panics
/// If `payload` is 2 GiB or more, which no caller builds (responses are bounded by the fetch
/// limits, requests by the client's own limits).
pub fn encode_frame(out: &mut BytesMut, payload: &[u8]) {
    let size =
        i32::try_from(payload.len()).unwrap_or_else(|_| panic!("frame of {} bytes", payload.len()));
    out.reserve(4 + payload.len());
    out.extend_from_slice(&size.to_be_bytes());
    out.extend_from_slice(payload);
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn incomplete_frames_are_none_and_whole_ones_split_off() {
        let decoder = FrameDecoder::new(16);
        let mut buf = BytesMut::new();
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&[0, 0, 0]);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        buf.extend_from_slice(&[3, b'a', b'b']);
        assert_eq!(decoder.decode(&mut buf), Ok(None));
        assert_eq!(decoder.needed(&buf), Ok(7));
        buf.extend_from_slice(b"c\x00\x00\x00\x00rest");
        assert_eq!(
            decoder.decode(&mut buf),
            Ok(Some(Bytes::from_static(b"abc")))
        );
        assert_eq!(decoder.decode(&mut buf), Ok(Some(Bytes::new())));
        assert_eq!(&buf[..], b"rest");
    }

    #[test]
    fn oversized_and_negative_sizes_are_refused_before_buffering() {
        let decoder = FrameDecoder::new(16);
        let mut buf = BytesMut::from(&17_i32.to_be_bytes()[..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Err(FrameError::TooLarge { size: 17, max: 16 })
        );
        let mut buf = BytesMut::from(&(-1_i32).to_be_bytes()[..]);
        assert_eq!(decoder.decode(&mut buf), Err(FrameError::NegativeSize(-1)));
        let mut buf = BytesMut::from(&16_i32.to_be_bytes()[..]);
        assert_eq!(
            decoder.decode(&mut buf),
            Ok(None),
            "exactly the maximum is allowed"
        );
    }

    #[test]
    fn encode_then_decode() {
        let mut buf = BytesMut::new();
        encode_frame(&mut buf, b"hello");
        encode_frame(&mut buf, b"");
        let decoder = FrameDecoder::default();
        assert_eq!(
            decoder.decode(&mut buf),
            Ok(Some(Bytes::from_static(b"hello")))
        );
        assert_eq!(decoder.decode(&mut buf), Ok(Some(Bytes::new())));
        assert!(buf.is_empty());
    }
}
