//! Black-box integration tests: the broker binary, raw protocol bytes and real Kafka clients
//! (librdkafka through confluent-kafka, kafka-python, KafkaJS) installed by `scripts/test`.
//!
//! Tests here see Spate only from the outside: through its binary, its sockets and its
//! on-disk files. They may use `spate-model` and `spate-protocol` to build and check bytes,
//! never broker internals. The library part holds shared helpers (fixture paths and the like).

use std::path::PathBuf;

/// The directory holding golden request captures from real clients, one sub-directory per
/// client (see `tests/golden/README.md`).
pub fn golden_fixtures_dir() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR"))
        .join("golden")
        .join("fixtures")
}
