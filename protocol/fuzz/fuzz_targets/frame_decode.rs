//! A byte stream arriving in arbitrary pieces: framing never panics, never hands out a frame
//! over the limit, and every frame it yields goes through full request decoding.
#![no_main]

use bytes::BytesMut;
use libfuzzer_sys::fuzz_target;
use spate_protocol::{decode_request, FrameDecoder};

const MAX_FRAME_BYTES: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&piece, stream)) = data.split_first() else { return };
    let piece = usize::from(piece).max(1);
    let decoder = FrameDecoder::new(MAX_FRAME_BYTES);
    let mut buf = BytesMut::new();
    for chunk in stream.chunks(piece) {
        buf.extend_from_slice(chunk);
        loop {
            match decoder.decode(&mut buf) {
                Ok(Some(frame)) => {
                    assert!(frame.len() <= MAX_FRAME_BYTES);
                    let _ = decode_request(frame);
                }
                Ok(None) => break,
                Err(_) => return,
            }
        }
    }
});
