//! Real clients' request bytes (captured by `tests/golden/capture`, listed in
//! `tests/golden/fixtures/MANIFEST.tsv`) must decode, re-encode to the same bytes, and carry
//! what the capture flows sent: topic `golden`, key `k1`, value `hello-golden`, header h1=v1.

use bytes::{Bytes, BytesMut};
use spate_model::RecordBatch;
use spate_protocol::kafka_protocol::messages::RequestKind;
use spate_protocol::{decode_request, encode_request, Request};
use std::fs;

struct Fixture {
    client: String,
    file: String,
    api_key: i16,
    api_version: i16,
    note: String,
}

impl Fixture {
    /// The codec named in the note (`codec=gzip`) for the compressed captures.
    fn codec(&self) -> Option<&str> {
        self.note
            .split_whitespace()
            .find_map(|word| word.strip_prefix("codec="))
    }
}

fn manifest() -> Vec<Fixture> {
    let path = spate_tests::golden_fixtures_dir().join("MANIFEST.tsv");
    let text = fs::read_to_string(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display()));
    text.lines()
        .skip(1)
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let cols: Vec<&str> = line.split('\t').collect();
            assert!(cols.len() >= 5, "short manifest row: {line}");
            Fixture {
                client: cols[0].to_string(),
                file: cols[2].to_string(),
                api_key: cols[3].parse().expect("api_key"),
                api_version: cols[4].parse().expect("api_version"),
                note: cols.get(5).unwrap_or(&"").to_string(),
            }
        })
        .collect()
}

fn load(fixture: &Fixture) -> Bytes {
    let path = spate_tests::golden_fixtures_dir().join(&fixture.file);
    Bytes::from(fs::read(&path).unwrap_or_else(|e| panic!("{}: {e}", path.display())))
}

#[test]
fn every_fixture_decodes_and_re_encodes_byte_for_byte() {
    let fixtures = manifest();
    assert!(
        fixtures.len() >= 20,
        "expected the full capture set, found {}",
        fixtures.len()
    );
    for fixture in &fixtures {
        let bytes = load(fixture);
        let request =
            decode_request(bytes.clone()).unwrap_or_else(|e| panic!("{}: {e}", fixture.file));
        assert_eq!(request.header.api_key, fixture.api_key, "{}", fixture.file);
        assert_eq!(
            request.header.api_version, fixture.api_version,
            "{}",
            fixture.file
        );
        assert!(
            request
                .header
                .client_id
                .as_deref()
                .is_some_and(|id| id.starts_with("golden-")),
            "{}",
            fixture.file
        );
        let mut out = BytesMut::new();
        encode_request(&mut out, &request.header, &request.body)
            .unwrap_or_else(|e| panic!("{}: {e}", fixture.file));
        assert_eq!(
            &out[4..],
            &bytes[..],
            "{}: re-encoding differs",
            fixture.file
        );
    }
}

#[test]
fn every_client_covers_the_data_path_apis() {
    let fixtures = manifest();
    for client in ["librdkafka", "kafka-python", "kafkajs"] {
        for api_key in [18, 3, 0, 1] {
            assert!(
                fixtures
                    .iter()
                    .any(|f| f.client == client && f.api_key == api_key),
                "{client} has no fixture for API key {api_key}"
            );
        }
    }
}

fn decoded(fixture: &Fixture) -> Request {
    decode_request(load(fixture)).unwrap_or_else(|e| panic!("{}: {e}", fixture.file))
}

#[test]
fn produce_fixtures_carry_the_flows_record() {
    let mut seen = 0;
    for fixture in manifest()
        .iter()
        .filter(|f| f.api_key == 0 && f.codec().is_none())
    {
        let RequestKind::Produce(produce) = decoded(fixture).body else {
            panic!("{}: not a produce request", fixture.file)
        };
        assert_eq!(produce.acks, -1, "{}", fixture.file);
        let topic = &produce.topic_data[0];
        assert_eq!(topic.name.0.as_str(), "golden", "{}", fixture.file);
        let records = topic.partition_data[0].records.as_ref().expect("records");
        let batch =
            RecordBatch::validate(records).unwrap_or_else(|e| panic!("{}: {e}", fixture.file));
        let mut scratch = Vec::new();
        batch
            .decompress_into(1 << 20, &mut scratch)
            .expect("decompress");
        let found: Vec<_> = batch
            .records_in(&scratch)
            .collect::<Result<_, _>>()
            .expect("records");
        assert_eq!(found.len(), 1, "{}", fixture.file);
        let record = &found[0];
        assert_eq!(record.key, Some(&b"k1"[..]), "{}", fixture.file);
        assert_eq!(record.value, Some(&b"hello-golden"[..]), "{}", fixture.file);
        if fixture.client != "kcat-librdkafka-2.0" {
            let headers: Vec<_> = record.headers().map(|h| (h.key, h.value)).collect();
            assert_eq!(
                headers,
                vec![(&b"h1"[..], Some(&b"v1"[..]))],
                "{}",
                fixture.file
            );
        }
        seen += 1;
    }
    assert!(
        seen >= 3,
        "expected produce fixtures from at least three clients"
    );
}

/// The compressed captures: one batch of 20 records per client and codec, which our codecs
/// must decompress (librdkafka writes raw snappy and zstd frames without a content size,
/// kafka-python xerial snappy and lz4 frames with one).
#[test]
fn compressed_produce_fixtures_decompress_to_the_flows_records() {
    let mut codecs_seen = std::collections::BTreeSet::new();
    for fixture in manifest().iter().filter(|f| f.api_key == 0) {
        let Some(codec) = fixture.codec() else {
            continue;
        };
        let RequestKind::Produce(produce) = decoded(fixture).body else {
            panic!("{}: not a produce request", fixture.file)
        };
        let records = produce.topic_data[0].partition_data[0]
            .records
            .as_ref()
            .expect("records");
        let batch =
            RecordBatch::validate(records).unwrap_or_else(|e| panic!("{}: {e}", fixture.file));
        assert_eq!(
            format!("{:?}", batch.compression()).to_lowercase(),
            codec,
            "{}",
            fixture.file
        );
        let mut scratch = Vec::new();
        batch
            .decompress_into(1 << 20, &mut scratch)
            .unwrap_or_else(|e| panic!("{}: {e}", fixture.file));
        let found: Vec<_> = batch
            .records_in(&scratch)
            .collect::<Result<_, _>>()
            .expect("records");
        assert_eq!(found.len(), 20, "{}", fixture.file);
        for (i, record) in found.iter().enumerate() {
            assert_eq!(
                record.key,
                Some(format!("k{i}").as_bytes()),
                "{}",
                fixture.file
            );
            let value = record.value.expect("value");
            assert!(
                value.starts_with(format!("value-{i}").as_bytes()),
                "{}: record {i}",
                fixture.file
            );
            assert_eq!(
                record.timestamp(batch.header()),
                1_700_000_000_000 + i as i64,
                "{}",
                fixture.file
            );
            let headers: Vec<_> = record.headers().map(|h| (h.key, h.value)).collect();
            assert_eq!(
                headers,
                vec![(&b"h1"[..], Some(&b"v1"[..]))],
                "{}",
                fixture.file
            );
        }
        codecs_seen.insert(codec.to_string());
    }
    assert_eq!(
        codecs_seen.len(),
        4,
        "captures for gzip, snappy, lz4 and zstd: {codecs_seen:?}"
    );
}

#[test]
fn fetch_fixtures_ask_for_partition_zero_from_offset_zero() {
    for fixture in manifest().iter().filter(|f| f.api_key == 1) {
        let RequestKind::Fetch(fetch) = decoded(fixture).body else {
            panic!("{}: not a fetch request", fixture.file)
        };
        let topic = &fetch.topics[0];
        if fixture.api_version >= 13 {
            assert!(
                !topic.topic_id.is_nil(),
                "{}: v13+ names topics by id",
                fixture.file
            );
        } else {
            assert_eq!(topic.topic.0.as_str(), "golden", "{}", fixture.file);
        }
        assert_eq!(topic.partitions[0].partition, 0, "{}", fixture.file);
        assert_eq!(topic.partitions[0].fetch_offset, 0, "{}", fixture.file);
        assert!(fetch.max_wait_ms > 0, "{}", fixture.file);
    }
}

#[test]
fn api_versions_fixtures_name_the_client_software_from_v3() {
    for fixture in manifest()
        .iter()
        .filter(|f| f.api_key == 18 && f.api_version >= 3)
    {
        let RequestKind::ApiVersions(request) = decoded(fixture).body else {
            panic!("{}: not ApiVersions", fixture.file)
        };
        assert!(!request.client_software_name.is_empty(), "{}", fixture.file);
        assert!(
            !request.client_software_version.is_empty(),
            "{}",
            fixture.file
        );
    }
}

/// Every truncation and every single-byte corruption of every fixture decodes or fails with
/// an error; none panics (a deterministic complement to the fuzz targets).
#[test]
fn corrupted_fixtures_fail_cleanly() {
    let mut attempts = 0;
    for fixture in manifest() {
        let bytes = load(&fixture);
        for len in 0..bytes.len() {
            let _ = decode_request(bytes.slice(..len));
            attempts += 1;
        }
        for position in 0..bytes.len() {
            for value in [0x00, 0x7f, 0x80, 0xff] {
                let mut corrupt = bytes.to_vec();
                corrupt[position] = value;
                if let Ok(request) = decode_request(Bytes::from(corrupt)) {
                    // Whatever decodes must encode again.
                    let mut out = BytesMut::new();
                    let _ = encode_request(&mut out, &request.header, &request.body);
                }
                attempts += 1;
            }
        }
    }
    assert!(attempts > 10_000, "{attempts}");
}
