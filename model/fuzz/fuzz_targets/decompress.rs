//! Any bytes through every codec's decompressor with a cap: no panic, never more output than
//! the cap, and on error nothing appended.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spate_model::Compression;

const CAP_BYTES: usize = 1 << 20;

fuzz_target!(|data: &[u8]| {
    let Some((&selector, input)) = data.split_first() else { return };
    let codec = match selector % 5 {
        0 => Compression::None,
        1 => Compression::Gzip,
        2 => Compression::Snappy,
        3 => Compression::Lz4,
        _ => Compression::Zstd,
    };
    let mut out = vec![1, 2, 3];
    match codec.decompress(input, CAP_BYTES, &mut out) {
        Ok(()) => assert!(out.len() - 3 <= CAP_BYTES),
        Err(_) => assert_eq!(out, [1, 2, 3]),
    }
});
