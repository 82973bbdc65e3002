//! Writes seed inputs for the model fuzz targets: one small batch per codec (for
//! `batch_validate`) and each codec's compressed payload behind its selector byte (for
//! `decompress`). Usage: `cargo run -p spate-model --example fuzz_seeds -- model/fuzz/corpus`.

use spate_model::{BatchBuilder, BuilderRecord, Compression};
use std::path::PathBuf;

fn main() -> Result<(), Box<dyn std::error::Error>> {
    let root = PathBuf::from(
        std::env::args()
            .nth(1)
            .ok_or("usage: fuzz_seeds CORPUS_DIR")?,
    );
    let batches = root.join("batch_validate");
    let payloads = root.join("decompress");
    std::fs::create_dir_all(&batches)?;
    std::fs::create_dir_all(&payloads)?;
    let codecs = [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ];
    for (selector, codec) in codecs.into_iter().enumerate() {
        let mut builder = BatchBuilder::new(codec);
        let headers: &[(&[u8], Option<&[u8]>)] = &[(b"h", Some(b"v"))];
        for i in 0..3_i64 {
            builder.push(&BuilderRecord {
                timestamp_ms: 1_700_000_000_000 + i,
                key: Some(b"key"),
                value: Some(b"value value value"),
                headers,
            })?;
        }
        let batch = builder.build()?;
        std::fs::write(batches.join(format!("{codec:?}")), &batch)?;
        let mut payload = vec![selector as u8];
        codec.compress(b"hello hello hello hello hello", &mut payload)?;
        std::fs::write(payloads.join(format!("{codec:?}")), &payload)?;
    }
    println!("wrote seeds under {}", root.display());
    Ok(())
}
