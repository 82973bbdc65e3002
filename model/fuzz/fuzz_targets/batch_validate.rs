//! Any bytes through batch splitting, validation, decompression and record iteration: no
//! panic, no allocation beyond the decompression cap, and every record the iterator yields
//! lies inside the bytes it was given.
#![no_main]

use libfuzzer_sys::fuzz_target;
use spate_model::batch::BatchSplitter;
use spate_model::RecordBatch;

const CAP_BYTES: usize = 4 << 20;

fuzz_target!(|data: &[u8]| {
    let mut scratch = Vec::new();
    for candidate in BatchSplitter::new(data).flatten() {
        let Ok(batch) = RecordBatch::validate(candidate) else { continue };
        assert_eq!(batch.bytes().len(), candidate.len());
        if batch.decompress_into(CAP_BYTES, &mut scratch).is_err() {
            continue;
        }
        assert!(scratch.len() <= CAP_BYTES);
        let count = batch.header().records_count();
        let mut seen = 0_i64;
        for record in batch.records_in(&scratch) {
            let Ok(record) = record else { break };
            seen += 1;
            assert!(record.offset_delta <= batch.header().last_offset_delta());
            let total: usize = record.headers().map(|h| h.key.len() + h.value.map_or(0, <[u8]>::len)).sum();
            assert!(total <= scratch.len());
        }
        assert!(seen <= i64::from(count));
    }
});
