//! Batches Spate builds, with every codec, must be readable by real clients: each batch is
//! served by the golden fake broker (`tests/golden/consume_batches`) and consumed with
//! librdkafka (confluent-kafka), kafka-python and KafkaJS, and every record must come back
//! with its offset, key, value, headers and timestamp.
//!
//! Needs the clients `scripts/install-clients` installs (`scripts/test` runs it first); a
//! missing client is a failure with a message saying so, never a skip.

use serde_json::Value;
use spate_model::batch::stamp;
use spate_model::{BatchBuilder, BuilderRecord, Compression, LeaderEpoch, Offset};
use std::path::{Path, PathBuf};
use std::process::Command;

const CODECS: [Compression; 5] = [
    Compression::None,
    Compression::Gzip,
    Compression::Snappy,
    Compression::Lz4,
    Compression::Zstd,
];
const RECORDS_PER_BATCH: i64 = 7;
const BASE_TIMESTAMP_MS: i64 = 1_700_000_000_000;

struct Expected {
    offset: i64,
    key: Option<String>,
    value: Option<String>,
    headers: Vec<(String, Option<String>)>,
    timestamp: i64,
}

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .expect("repo root")
        .to_path_buf()
}

/// One batch per codec, back to back from offset 0, written as `NN-codec.bin`.
fn write_batches(dir: &Path, codecs: &[Compression]) -> Vec<Expected> {
    let mut expected = Vec::new();
    let mut next_offset = 0_i64;
    for (index, codec) in codecs.iter().enumerate() {
        let mut builder = BatchBuilder::new(*codec);
        for i in 0..RECORDS_PER_BATCH {
            let offset = next_offset + i;
            let key = (offset % 3 != 0).then(|| format!("key-{offset}"));
            let value = (offset % 5 != 4).then(|| format!("{codec:?} value {offset} ").repeat(20));
            let headers = vec![
                ("h1".to_string(), Some(format!("v{offset}"))),
                ("h2".to_string(), None),
            ];
            let header_refs: Vec<(&[u8], Option<&[u8]>)> = headers
                .iter()
                .map(|(k, v)| (k.as_bytes(), v.as_deref().map(str::as_bytes)))
                .collect();
            let timestamp = BASE_TIMESTAMP_MS + offset * 10;
            builder
                .push(&BuilderRecord {
                    timestamp_ms: timestamp,
                    key: key.as_deref().map(str::as_bytes),
                    value: value.as_deref().map(str::as_bytes),
                    headers: &header_refs,
                })
                .expect("push");
            expected.push(Expected {
                offset,
                key,
                value,
                headers,
                timestamp,
            });
        }
        let mut batch = builder.build().expect("build");
        stamp(&mut batch, Offset(next_offset), LeaderEpoch(0));
        std::fs::write(dir.join(format!("{index:02}-{codec:?}.bin")), &batch).expect("write batch");
        next_offset += RECORDS_PER_BATCH;
    }
    expected
}

fn consume(dir: &Path, client: &str) -> Value {
    let script = repo_root().join("tests/golden/consume_batches");
    let output = Command::new(&script)
        .arg(dir)
        .args(["--client", client])
        .output()
        .unwrap_or_else(|e| {
            panic!(
                "cannot run {}: {e} (run scripts/install-clients first)",
                script.display()
            )
        });
    assert!(
        output.status.success(),
        "{client} failed to consume Spate's batches ({}):\n{}",
        output.status,
        String::from_utf8_lossy(&output.stderr)
    );
    serde_json::from_slice(&output.stdout).unwrap_or_else(|e| {
        panic!(
            "{client}: bad JSON ({e}): {}",
            String::from_utf8_lossy(&output.stdout)
        )
    })
}

fn check(client: &str, codecs: &[Compression]) {
    let dir = tempfile::tempdir().expect("temp dir");
    let expected = write_batches(dir.path(), codecs);
    let result = consume(dir.path(), client);
    let records = result["records"]
        .as_array()
        .unwrap_or_else(|| panic!("{client}: no records array: {result}"));
    assert_eq!(
        records.len(),
        expected.len(),
        "{client} ({}): record count",
        result["client_version"]
    );
    for (got, want) in records.iter().zip(&expected) {
        let what = format!("{client} offset {}", want.offset);
        assert_eq!(got["offset"].as_i64(), Some(want.offset), "{what}");
        assert_eq!(got["key"].as_str(), want.key.as_deref(), "{what}: key");
        assert_eq!(
            got["value"].as_str(),
            want.value.as_deref(),
            "{what}: value"
        );
        assert_eq!(
            got["timestamp"].as_i64(),
            Some(want.timestamp),
            "{what}: timestamp"
        );
        let headers: Vec<(String, Option<String>)> = got["headers"]
            .as_array()
            .unwrap_or_else(|| panic!("{what}: headers"))
            .iter()
            .map(|pair| {
                (
                    pair[0].as_str().unwrap_or_default().to_string(),
                    pair[1].as_str().map(str::to_string),
                )
            })
            .collect();
        assert_eq!(headers, want.headers, "{what}: headers");
    }
}

#[test]
fn librdkafka_reads_every_codec() {
    check("librdkafka", &CODECS);
}

#[test]
fn kafka_python_reads_every_codec() {
    check("kafka-python", &CODECS);
}

#[test]
fn kafkajs_reads_uncompressed_and_gzip() {
    // KafkaJS ships only gzip; the other codecs need third-party plugins its users add.
    check("kafkajs", &[Compression::None, Compression::Gzip]);
}
