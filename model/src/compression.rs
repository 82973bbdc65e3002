//! The four codecs a record batch may use (attributes bits 0–2), compress and decompress.
//!
//! Decompression always runs against a caller-given output cap, checked while decompressing
//! (never after), so a small batch that inflates to gigabytes costs at most `cap + 1` bytes of
//! memory before it is refused.
//!
//! Snappy comes in two framings: the xerial "snappy-java" stream the Java client writes
//! (16-byte header, then blocks each prefixed by a big-endian `int32` compressed length) and
//! raw snappy, which librdkafka may write. Decompression accepts both (detected by the xerial
//! magic); compression writes the xerial framing, which every client reads.

use std::io::{self, Read, Write};

/// A record batch's compression codec.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Compression {
    /// Attributes codec 0.
    None,
    /// Attributes codec 1: gzip (RFC 1952).
    Gzip,
    /// Attributes codec 2: snappy (xerial framing or raw).
    Snappy,
    /// Attributes codec 3: the LZ4 frame format.
    Lz4,
    /// Attributes codec 4: zstd.
    Zstd,
}

/// Why compressing or decompressing failed.
#[derive(Debug, thiserror::Error)]
pub enum CompressionError {
    /// The attributes name a codec Kafka does not define (5, 6 or 7).
    #[error("unknown compression codec {0}")]
    UnknownCodec(u8),
    /// The decompressed data would exceed the caller's cap.
    #[error("{codec:?} data decompresses to more than the {cap_bytes}-byte limit")]
    TooLarge {
        /// The codec of the data.
        codec: Compression,
        /// The cap that was hit.
        cap_bytes: usize,
    },
    /// The compressed data is corrupt or truncated.
    #[error("corrupt {codec:?} data: {reason}")]
    Corrupt {
        /// The codec of the data.
        codec: Compression,
        /// What the decoder reported.
        reason: String,
    },
    /// Compression itself failed (an encoder error; not expected with in-memory buffers).
    #[error("{codec:?} compression failed: {reason}")]
    Compress {
        /// The codec used.
        codec: Compression,
        /// What the encoder reported.
        reason: String,
    },
}

/// The 8-byte magic that starts a xerial snappy stream.
const XERIAL_MAGIC: [u8; 8] = [0x82, b'S', b'N', b'A', b'P', b'P', b'Y', 0];
/// The xerial header: magic, then version and minimum compatible version (both `int32` 1).
const XERIAL_HEADER_LEN: usize = 16;
/// Uncompressed bytes per xerial block, as snappy-java's default (32 KiB).
const XERIAL_BLOCK_BYTES: usize = 32 * 1024;

impl Compression {
    /// The codec named by attributes bits 0–2.
    pub fn from_attributes(attributes: i16) -> Result<Compression, CompressionError> {
        let id = (attributes & 0x07) as u8;
        match id {
            0 => Ok(Compression::None),
            1 => Ok(Compression::Gzip),
            2 => Ok(Compression::Snappy),
            3 => Ok(Compression::Lz4),
            4 => Ok(Compression::Zstd),
            other => Err(CompressionError::UnknownCodec(other)),
        }
    }

    /// The codec's id in attributes bits 0–2.
    pub fn id(self) -> i16 {
        match self {
            Compression::None => 0,
            Compression::Gzip => 1,
            Compression::Snappy => 2,
            Compression::Lz4 => 3,
            Compression::Zstd => 4,
        }
    }

    /// Appends `input` compressed with this codec to `out`.
    pub fn compress(self, input: &[u8], out: &mut Vec<u8>) -> Result<(), CompressionError> {
        let failed = |e: io::Error| CompressionError::Compress {
            codec: self,
            reason: e.to_string(),
        };
        match self {
            Compression::None => out.extend_from_slice(input),
            Compression::Gzip => {
                let mut encoder =
                    flate2::write::GzEncoder::new(out, flate2::Compression::default());
                encoder.write_all(input).map_err(failed)?;
                encoder.finish().map_err(failed)?;
            }
            Compression::Snappy => compress_xerial(input, out)?,
            Compression::Lz4 => {
                let mut encoder = lz4_flex::frame::FrameEncoder::new(out);
                encoder.write_all(input).map_err(failed)?;
                encoder.finish().map_err(|e| failed(io::Error::other(e)))?;
            }
            Compression::Zstd => {
                let compressed =
                    zstd::bulk::compress(input, zstd::DEFAULT_COMPRESSION_LEVEL).map_err(failed)?;
                out.extend_from_slice(&compressed);
            }
        }
        Ok(())
    }

    /// Appends `input` decompressed to `out`, failing once more than `cap_bytes` would be
    /// produced.
    pub fn decompress(
        self,
        input: &[u8],
        cap_bytes: usize,
        out: &mut Vec<u8>,
    ) -> Result<(), CompressionError> {
        match self {
            Compression::None => {
                if input.len() > cap_bytes {
                    return Err(CompressionError::TooLarge {
                        codec: self,
                        cap_bytes,
                    });
                }
                out.extend_from_slice(input);
                Ok(())
            }
            Compression::Gzip => {
                read_capped(self, flate2::read::GzDecoder::new(input), cap_bytes, out)
            }
            Compression::Snappy => decompress_snappy(input, cap_bytes, out),
            Compression::Lz4 => {
                let decoder = lz4_flex::frame::FrameDecoder::new(input);
                read_capped(self, decoder, cap_bytes, out)
            }
            Compression::Zstd => {
                let mut decoder = zstd::stream::read::Decoder::with_buffer(input)
                    .map_err(|e| corrupt(self, &e))?;
                decoder
                    .window_log_max(zstd_window_log_max(cap_bytes))
                    .map_err(|e| corrupt(self, &e))?;
                read_capped(self, decoder, cap_bytes, out)
            }
        }
    }
}

/// The largest zstd window (as a power of two) a frame may ask the decoder to allocate.
///
/// The window is allocated up front from the frame header, before any output exists, so a
/// tiny frame could otherwise claim 128 MiB. Level 3 (the Java and librdkafka default) uses
/// 2^21; 2^22 is always allowed, larger windows only as far as the output cap, since a window
/// beyond the whole output is never needed to decode it.
fn zstd_window_log_max(cap_bytes: usize) -> u32 {
    const ALWAYS_ALLOWED: u32 = 22;
    const ZSTD_WINDOWLOG_MAX_64: u32 = 31;
    let cap_log = usize::BITS - cap_bytes.saturating_sub(1).leading_zeros();
    cap_log.clamp(ALWAYS_ALLOWED, ZSTD_WINDOWLOG_MAX_64)
}

fn corrupt(codec: Compression, reason: &dyn std::fmt::Display) -> CompressionError {
    CompressionError::Corrupt {
        codec,
        reason: reason.to_string(),
    }
}

/// Reads `reader` to its end into `out`, refusing to go past `cap_bytes`.
fn read_capped(
    codec: Compression,
    reader: impl Read,
    cap_bytes: usize,
    out: &mut Vec<u8>,
) -> Result<(), CompressionError> {
    let start = out.len();
    let limit = u64::try_from(cap_bytes)
        .unwrap_or(u64::MAX)
        .saturating_add(1);
    if let Err(e) = reader.take(limit).read_to_end(out) {
        // Leave `out` as it was: partial output of a corrupt stream is never data.
        out.truncate(start);
        return Err(corrupt(codec, &e));
    }
    if out.len() - start > cap_bytes {
        out.truncate(start);
        return Err(CompressionError::TooLarge { codec, cap_bytes });
    }
    Ok(())
}

fn compress_xerial(input: &[u8], out: &mut Vec<u8>) -> Result<(), CompressionError> {
    out.extend_from_slice(&XERIAL_MAGIC);
    out.extend_from_slice(&1_i32.to_be_bytes());
    out.extend_from_slice(&1_i32.to_be_bytes());
    let mut encoder = snap::raw::Encoder::new();
    for block in input.chunks(XERIAL_BLOCK_BYTES) {
        let compressed = encoder
            .compress_vec(block)
            .map_err(|e| CompressionError::Compress {
                codec: Compression::Snappy,
                reason: e.to_string(),
            })?;
        let len = i32::try_from(compressed.len()).map_err(|_| CompressionError::Compress {
            codec: Compression::Snappy,
            reason: "block larger than 2 GiB".to_string(),
        })?;
        out.extend_from_slice(&len.to_be_bytes());
        out.extend_from_slice(&compressed);
    }
    Ok(())
}

fn decompress_snappy(
    input: &[u8],
    cap_bytes: usize,
    out: &mut Vec<u8>,
) -> Result<(), CompressionError> {
    let start = out.len();
    let result = if input.len() >= XERIAL_HEADER_LEN && input[..8] == XERIAL_MAGIC {
        decompress_xerial_blocks(&input[XERIAL_HEADER_LEN..], cap_bytes, out)
    } else {
        decompress_raw_snappy(input, cap_bytes, out)
    };
    if result.is_err() {
        out.truncate(start);
    }
    result
}

fn decompress_xerial_blocks(
    mut blocks: &[u8],
    cap_bytes: usize,
    out: &mut Vec<u8>,
) -> Result<(), CompressionError> {
    let mut remaining_cap = cap_bytes;
    while !blocks.is_empty() {
        let Some((len_bytes, rest)) = blocks.split_first_chunk::<4>() else {
            return Err(corrupt(
                Compression::Snappy,
                &"xerial block length truncated",
            ));
        };
        let len = usize::try_from(i32::from_be_bytes(*len_bytes))
            .map_err(|_| corrupt(Compression::Snappy, &"negative xerial block length"))?;
        if len > rest.len() {
            return Err(corrupt(Compression::Snappy, &"xerial block truncated"));
        }
        let (block, rest) = rest.split_at(len);
        let before = out.len();
        decompress_raw_snappy(block, remaining_cap, out).map_err(|e| match e {
            CompressionError::TooLarge { codec, .. } => {
                CompressionError::TooLarge { codec, cap_bytes }
            }
            other => other,
        })?;
        remaining_cap -= out.len() - before;
        blocks = rest;
    }
    Ok(())
}

fn decompress_raw_snappy(
    input: &[u8],
    cap_bytes: usize,
    out: &mut Vec<u8>,
) -> Result<(), CompressionError> {
    // Raw snappy states its decompressed length up front: check it before allocating.
    let len = snap::raw::decompress_len(input).map_err(|e| corrupt(Compression::Snappy, &e))?;
    if len > cap_bytes {
        return Err(CompressionError::TooLarge {
            codec: Compression::Snappy,
            cap_bytes,
        });
    }
    let start = out.len();
    out.resize(start + len, 0);
    let written = snap::raw::Decoder::new()
        .decompress(input, &mut out[start..])
        .map_err(|e| corrupt(Compression::Snappy, &e));
    match written {
        Ok(written) => {
            out.truncate(start + written);
            Ok(())
        }
        Err(e) => {
            out.truncate(start);
            Err(e)
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Compression; 5] = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];

    fn sample(len: usize) -> Vec<u8> {
        (0..len)
            .map(|i| (i % 251) as u8 ^ (i / 4096) as u8)
            .collect()
    }

    #[test]
    fn every_codec_round_trips_small_and_multi_block_inputs() {
        for codec in ALL {
            for len in [0, 1, 1000, 100_000] {
                let input = sample(len);
                let mut compressed = Vec::new();
                codec.compress(&input, &mut compressed).expect("compress");
                let mut output = vec![9, 9];
                codec
                    .decompress(&compressed, len, &mut output)
                    .unwrap_or_else(|e| panic!("{codec:?} len {len}: {e}"));
                assert_eq!(&output[..2], &[9, 9], "{codec:?} keeps what out held");
                assert_eq!(&output[2..], &input[..], "{codec:?} len {len}");
            }
        }
    }

    #[test]
    fn every_codec_enforces_the_cap() {
        let input = vec![0_u8; 1 << 20];
        for codec in ALL {
            let mut compressed = Vec::new();
            codec.compress(&input, &mut compressed).expect("compress");
            let mut output = Vec::new();
            let err = codec.decompress(&compressed, (1 << 20) - 1, &mut output);
            assert!(
                matches!(err, Err(CompressionError::TooLarge { cap_bytes, .. }) if cap_bytes == (1 << 20) - 1),
                "{codec:?}: {err:?}"
            );
            assert!(output.is_empty(), "{codec:?} leaves no partial output");
        }
    }

    #[test]
    fn zstd_window_is_bounded_by_the_cap() {
        assert_eq!(zstd_window_log_max(0), 22);
        assert_eq!(zstd_window_log_max(1 << 20), 22);
        assert_eq!(zstd_window_log_max(1 << 24), 24);
        assert_eq!(zstd_window_log_max((1 << 24) + 1), 25);
        // A long-window frame (2^27) is refused under a small cap, accepted under a large one.
        let input = vec![7_u8; 1 << 16];
        // A streaming encoder with no pledged size keeps the window it is given.
        let mut encoder = zstd::stream::write::Encoder::new(Vec::new(), 3).expect("encoder");
        encoder.window_log(27).expect("window");
        encoder.include_contentsize(false).expect("no content size");
        encoder.write_all(&input).expect("write");
        let frame = encoder.finish().expect("finish");
        let mut out = Vec::new();
        assert!(Compression::Zstd
            .decompress(&frame, 1 << 20, &mut out)
            .is_err());
        Compression::Zstd
            .decompress(&frame, 1 << 27, &mut out)
            .expect("large cap");
        assert_eq!(out, input);
    }

    #[test]
    fn raw_snappy_is_accepted() {
        let input = sample(70_000);
        let raw = snap::raw::Encoder::new()
            .compress_vec(&input)
            .expect("compress");
        let mut output = Vec::new();
        Compression::Snappy
            .decompress(&raw, input.len(), &mut output)
            .expect("decompress");
        assert_eq!(output, input);
    }

    #[test]
    fn xerial_framing_matches_snappy_java_layout() {
        let mut out = Vec::new();
        Compression::Snappy
            .compress(&sample(XERIAL_BLOCK_BYTES + 1), &mut out)
            .expect("compress");
        assert_eq!(&out[..8], &XERIAL_MAGIC);
        assert_eq!(&out[8..16], &[0, 0, 0, 1, 0, 0, 0, 1]);
        let first_len = i32::from_be_bytes([out[16], out[17], out[18], out[19]]);
        assert!(first_len > 0 && (first_len as usize) < out.len());
    }

    #[test]
    fn corrupt_input_is_an_error_not_a_panic() {
        for codec in ALL.into_iter().skip(1) {
            let mut compressed = Vec::new();
            let input = sample(10_000);
            codec.compress(&input, &mut compressed).expect("compress");
            for cut in [1, compressed.len() / 2, compressed.len() - 1] {
                let mut output = Vec::new();
                let result = codec.decompress(&compressed[..cut], 1 << 20, &mut output);
                // A cut inside LZ4's end mark still yields every block: then the output must be
                // the whole input. Anything else must be an error, never wrong data.
                assert!(
                    result.is_err() || output == input,
                    "{codec:?} truncated at {cut} gave {} bytes of wrong data",
                    output.len()
                );
                if cut < compressed.len() / 2 + 1 {
                    assert!(result.is_err(), "{codec:?} truncated at {cut} must fail");
                }
            }
            let mut garbage = compressed.clone();
            for byte in garbage.iter_mut().skip(20).step_by(7) {
                *byte ^= 0x5a;
            }
            let mut output = vec![1, 2, 3];
            // Either an error that leaves the output untouched, or (for codecs without
            // checksums) some bytes; never a panic.
            match codec.decompress(&garbage, 1 << 20, &mut output) {
                Ok(()) => assert!(output.len() <= 3 + (1 << 20)),
                Err(_) => assert_eq!(output, [1, 2, 3], "{codec:?} left partial output"),
            }
        }
    }

    #[test]
    fn a_gzip_stream_with_a_bad_trailer_leaves_no_output() {
        // Found by the decompress fuzz target: the deflate data is whole, the CRC trailer not.
        let mut compressed = Vec::new();
        Compression::Gzip
            .compress(b"hello hello hello", &mut compressed)
            .expect("compress");
        let len = compressed.len();
        compressed[len - 8] ^= 0xff;
        let mut output = vec![1, 2, 3];
        assert!(Compression::Gzip
            .decompress(&compressed, 1 << 20, &mut output)
            .is_err());
        assert_eq!(output, [1, 2, 3]);
    }

    #[test]
    fn codec_ids_match_kafka() {
        for (id, codec) in ALL.iter().enumerate() {
            assert_eq!(codec.id(), id as i16);
            assert_eq!(
                Compression::from_attributes(id as i16 | 0x30).ok(),
                Some(*codec)
            );
        }
        for id in 5..8 {
            assert!(matches!(
                Compression::from_attributes(id),
                Err(CompressionError::UnknownCodec(x)) if i16::from(x) == id
            ));
        }
    }
}
