use super::*;
use proptest::prelude::*;

fn sample_batch(compression: Compression, records: usize) -> Vec<u8> {
    let mut builder = BatchBuilder::new(compression);
    let headers: &[(&[u8], Option<&[u8]>)] = &[(b"h1", Some(b"v1")), (b"h2", None)];
    for i in 0..records {
        let value = format!("value-{i}");
        let key = format!("key-{i}");
        builder
            .push(&BuilderRecord {
                timestamp_ms: 1_700_000_000_000 + i as i64,
                key: (i % 3 != 0).then_some(key.as_bytes()),
                value: Some(value.as_bytes()),
                headers: if i % 2 == 0 { headers } else { &[] },
            })
            .expect("push");
    }
    builder.build().expect("build")
}

/// Rewrites the CRC so a test can corrupt a CRC-covered field and reach the later checks.
fn fix_crc(batch: &mut [u8]) {
    let crc = crc32c::crc32c(&batch[CRC_START..]);
    batch[17..21].copy_from_slice(&crc.to_be_bytes());
}

fn put_i32(batch: &mut [u8], at: usize, value: i32) {
    batch[at..at + 4].copy_from_slice(&value.to_be_bytes());
}

#[test]
fn built_batches_validate_and_read_back_with_every_codec() {
    for codec in [
        Compression::None,
        Compression::Gzip,
        Compression::Snappy,
        Compression::Lz4,
        Compression::Zstd,
    ] {
        let bytes = sample_batch(codec, 10);
        let batch = RecordBatch::validate(&bytes).unwrap_or_else(|e| panic!("{codec:?}: {e}"));
        let header = batch.header();
        assert_eq!(header.magic(), 2);
        assert_eq!(header.records_count(), 10);
        assert_eq!(header.last_offset_delta(), 9);
        assert_eq!(header.base_timestamp(), 1_700_000_000_000);
        assert_eq!(header.max_timestamp(), 1_700_000_000_009);
        assert_eq!(header.compression().ok(), Some(codec));
        assert_eq!(header.timestamp_type(), TimestampType::CreateTime);
        assert!(!header.is_transactional() && !header.is_control());

        let mut scratch = Vec::new();
        let records: Vec<_> = if codec == Compression::None {
            batch
                .records()
                .expect("records")
                .collect::<Result<_, _>>()
                .expect("iterate")
        } else {
            assert!(matches!(batch.records(), Err(BatchError::Compressed(c)) if c == codec));
            batch
                .decompress_into(1 << 20, &mut scratch)
                .expect("decompress");
            batch
                .records_in(&scratch)
                .collect::<Result<_, _>>()
                .expect("iterate")
        };
        assert_eq!(records.len(), 10);
        for (i, record) in records.iter().enumerate() {
            assert_eq!(record.offset_delta, i as i32);
            assert_eq!(record.timestamp(header), 1_700_000_000_000 + i as i64);
            assert_eq!(record.value, Some(format!("value-{i}").as_bytes()));
            let key = format!("key-{i}");
            assert_eq!(record.key, (i % 3 != 0).then_some(key.as_bytes()));
            let headers: Vec<_> = record.headers().collect();
            if i % 2 == 0 {
                assert_eq!(headers.len(), 2);
                assert_eq!(
                    headers[0],
                    RecordHeader {
                        key: b"h1",
                        value: Some(b"v1")
                    }
                );
                assert_eq!(
                    headers[1],
                    RecordHeader {
                        key: b"h2",
                        value: None
                    }
                );
            } else {
                assert!(headers.is_empty());
            }
        }
    }
}

#[test]
fn producer_and_flags_round_trip() {
    let mut builder = BatchBuilder::new(Compression::None)
        .producer(ProducerId(77), ProducerEpoch(3), Sequence(40))
        .transactional(true)
        .control(true)
        .timestamp_type(TimestampType::LogAppendTime);
    builder
        .push(&BuilderRecord {
            timestamp_ms: 5,
            key: Some(&[0, 0, 0, 1]),
            value: Some(&[0, 0, 0, 0, 0, 9]),
            headers: &[],
        })
        .expect("push");
    let bytes = builder.build().expect("build");
    let batch = RecordBatch::validate(&bytes).expect("valid");
    let header = batch.header();
    assert_eq!(header.producer_id(), ProducerId(77));
    assert_eq!(header.producer_epoch(), ProducerEpoch(3));
    assert_eq!(header.base_sequence(), Sequence(40));
    assert!(header.is_transactional() && header.is_control());
    assert_eq!(header.timestamp_type(), TimestampType::LogAppendTime);
    let record = batch
        .records()
        .expect("records")
        .next()
        .expect("one")
        .expect("ok");
    assert_eq!(
        record.key.and_then(ControlType::from_key),
        Some(ControlType::Commit)
    );
}

#[test]
fn stamping_changes_offset_and_epoch_but_not_crc_validity() {
    let mut bytes = sample_batch(Compression::None, 3);
    stamp(&mut bytes, Offset(1_000), LeaderEpoch(7));
    let batch = RecordBatch::validate(&bytes).expect("still valid after stamping");
    assert_eq!(batch.header().base_offset(), Offset(1_000));
    assert_eq!(batch.header().partition_leader_epoch(), LeaderEpoch(7));
    assert_eq!(batch.header().last_offset(), Offset(1_002));

    let mut copy = vec![0; bytes.len()];
    copy_stamped(&bytes, &mut copy, Offset(5), LeaderEpoch(2));
    let batch = RecordBatch::validate(&copy).expect("copy valid");
    assert_eq!(batch.header().base_offset(), Offset(5));
    assert_eq!(&copy[16..], &bytes[16..]);
}

#[test]
fn log_append_time_recomputes_the_crc() {
    let mut bytes = sample_batch(Compression::Lz4, 3);
    set_log_append_time(&mut bytes, 1_800_000_000_000);
    let batch = RecordBatch::validate(&bytes).expect("valid");
    assert_eq!(
        batch.header().timestamp_type(),
        TimestampType::LogAppendTime
    );
    assert_eq!(batch.header().max_timestamp(), 1_800_000_000_000);
}

#[test]
fn rejects_short_buffer() {
    let bytes = sample_batch(Compression::None, 1);
    assert!(matches!(
        RecordBatch::validate(&bytes[..60]),
        Err(BatchError::TooShort { len: 60 })
    ));
    assert!(matches!(
        RecordBatch::validate(&[]),
        Err(BatchError::TooShort { len: 0 })
    ));
}

#[test]
fn rejects_wrong_magic() {
    let mut bytes = sample_batch(Compression::None, 1);
    bytes[16] = 1;
    assert!(matches!(
        RecordBatch::validate(&bytes),
        Err(BatchError::BadMagic { magic: 1 })
    ));
}

#[test]
fn rejects_batch_length_below_header() {
    let mut bytes = sample_batch(Compression::None, 1);
    put_i32(&mut bytes, 8, 48);
    assert!(matches!(
        RecordBatch::validate(&bytes),
        Err(BatchError::BatchLengthTooSmall { declared: 48 })
    ));
    put_i32(&mut bytes, 8, -5);
    assert!(matches!(
        RecordBatch::validate(&bytes),
        Err(BatchError::BatchLengthTooSmall { declared: -5 })
    ));
}

#[test]
fn rejects_declared_length_that_disagrees_with_buffer() {
    let bytes = sample_batch(Compression::None, 2);
    let truncated = &bytes[..bytes.len() - 1];
    assert!(matches!(
        RecordBatch::validate(truncated),
        Err(BatchError::LengthMismatch { declared_bytes, available_bytes })
            if declared_bytes == bytes.len() && available_bytes == bytes.len() - 1
    ));
    let mut extended = bytes.clone();
    extended.push(0);
    assert!(matches!(
        RecordBatch::validate(&extended),
        Err(BatchError::LengthMismatch { .. })
    ));
}

#[test]
fn rejects_flipped_bit_anywhere_in_crc_region() {
    let bytes = sample_batch(Compression::Gzip, 4);
    for position in [CRC_START, 30, BATCH_HEADER_BYTES, bytes.len() - 1] {
        let mut corrupt = bytes.clone();
        corrupt[position] ^= 0x10;
        assert!(
            matches!(
                RecordBatch::validate(&corrupt),
                Err(BatchError::CrcMismatch { .. })
            ),
            "flip at {position}"
        );
    }
    let mut corrupt = bytes.clone();
    corrupt[18] ^= 1;
    assert!(matches!(
        RecordBatch::validate(&corrupt),
        Err(BatchError::CrcMismatch { .. })
    ));
}

#[test]
fn rejects_unknown_codec() {
    let mut bytes = sample_batch(Compression::None, 1);
    bytes[22] = (bytes[22] & !0x07) | 6;
    fix_crc(&mut bytes);
    assert!(matches!(
        RecordBatch::validate(&bytes),
        Err(BatchError::UnknownCompression { codec: 6 })
    ));
}

#[test]
fn rejects_implausible_record_counts() {
    let bytes = sample_batch(Compression::None, 2);

    let mut negative = bytes.clone();
    put_i32(&mut negative, 57, -1);
    fix_crc(&mut negative);
    assert!(matches!(
        RecordBatch::validate(&negative),
        Err(BatchError::BadRecordCount { count: -1, .. })
    ));

    let mut beyond_span = bytes.clone();
    put_i32(&mut beyond_span, 57, 3);
    fix_crc(&mut beyond_span);
    assert!(matches!(
        RecordBatch::validate(&beyond_span),
        Err(BatchError::BadRecordCount { count: 3, reason }) if reason.contains("offsets")
    ));

    // A span wide enough that only the byte count can catch the lie.
    let mut too_many_for_bytes = bytes.clone();
    put_i32(&mut too_many_for_bytes, 23, 1_000_000);
    put_i32(&mut too_many_for_bytes, 57, 1_000_000);
    fix_crc(&mut too_many_for_bytes);
    assert!(matches!(
        RecordBatch::validate(&too_many_for_bytes),
        Err(BatchError::BadRecordCount { count: 1_000_000, reason }) if reason.contains("bytes")
    ));
}

#[test]
fn rejects_negative_last_offset_delta() {
    let mut bytes = sample_batch(Compression::None, 1);
    put_i32(&mut bytes, 23, -2);
    fix_crc(&mut bytes);
    assert!(matches!(
        RecordBatch::validate(&bytes),
        Err(BatchError::BadLastOffsetDelta(-2))
    ));
}

#[test]
fn rejects_bad_timestamps() {
    for (at, field) in [(27, "base_timestamp"), (35, "max_timestamp")] {
        let mut bytes = sample_batch(Compression::None, 1);
        bytes[at..at + 8].copy_from_slice(&(-2_i64).to_be_bytes());
        fix_crc(&mut bytes);
        assert!(
            matches!(RecordBatch::validate(&bytes), Err(BatchError::BadTimestamp { field: f, value: -2 }) if f == field),
            "{field}"
        );
    }
}

#[test]
fn rejects_bad_producer_state() {
    let mut bytes = sample_batch(Compression::None, 1);
    bytes[43..51].copy_from_slice(&(-7_i64).to_be_bytes());
    fix_crc(&mut bytes);
    assert!(matches!(
        RecordBatch::validate(&bytes),
        Err(BatchError::BadProducerState {
            field: "producer_id",
            value: -7,
            ..
        })
    ));

    let mut builder = BatchBuilder::new(Compression::None).transactional(true);
    builder
        .push(&BuilderRecord {
            value: Some(b"x"),
            ..Default::default()
        })
        .expect("push");
    let bytes = builder.build().expect("build");
    assert!(matches!(
        RecordBatch::validate(&bytes),
        Err(BatchError::BadProducerState {
            field: "producer_id",
            value: -1,
            ..
        })
    ));
}

#[test]
fn record_iterator_reports_lies_about_the_count() {
    // Claim one record fewer than present: the leftover bytes are reported.
    let mut bytes = sample_batch(Compression::None, 3);
    put_i32(&mut bytes, 57, 2);
    fix_crc(&mut bytes);
    let batch = RecordBatch::validate(&bytes).expect("header-valid");
    let results: Vec<_> = batch.records().expect("records").collect();
    assert_eq!(results.len(), 3);
    assert!(matches!(
        results[2],
        Err(RecordError::TrailingBatchBytes { .. })
    ));

    // Cut the last record off (and shrink the declared length to match).
    let bytes = sample_batch(Compression::None, 3);
    let batch = RecordBatch::validate(&bytes).expect("valid");
    let third = {
        let mut records = batch.records().expect("records");
        records.next();
        records.next();
        records.remaining_bytes()
    };
    let mut cut = bytes[..bytes.len() - third].to_vec();
    let new_length = (cut.len() - LOG_OVERHEAD_BYTES) as i32;
    put_i32(&mut cut, 8, new_length);
    fix_crc(&mut cut);
    let batch = RecordBatch::validate(&cut).expect("header-valid");
    let results: Vec<_> = batch.records().expect("records").collect();
    assert!(matches!(
        results.last(),
        Some(Err(RecordError::TooFewRecords {
            claimed: 3,
            found: 2
        }))
    ));
}

#[test]
fn record_iterator_rejects_lengths_outside_the_record() {
    let mut builder = BatchBuilder::new(Compression::None);
    builder
        .push(&BuilderRecord {
            key: Some(b"k"),
            value: Some(b"vvvv"),
            ..Default::default()
        })
        .expect("push");
    let mut bytes = builder.build().expect("build");
    // Record layout after the 61-byte header: length, attrs, ts delta, offset delta, key len…
    let key_len_at = BATCH_HEADER_BYTES + 4;
    assert_eq!(bytes[key_len_at], 2, "zig-zag 1");
    bytes[key_len_at] = 0x7e; // zig-zag 63: past the record
    fix_crc(&mut bytes);
    let batch = RecordBatch::validate(&bytes).expect("header-valid");
    let first = batch.records().expect("records").next().expect("one");
    assert!(matches!(
        first,
        Err(RecordError::BadLength {
            field: "key",
            length: 63,
            ..
        })
    ));
}

#[test]
fn splitter_walks_concatenated_batches_and_flags_a_torn_tail() {
    let a = sample_batch(Compression::None, 2);
    let b = sample_batch(Compression::Zstd, 5);
    let mut joined = [a.clone(), b.clone()].concat();
    let parts: Vec<_> = BatchSplitter::new(&joined)
        .collect::<Result<_, _>>()
        .expect("split");
    assert_eq!(parts, vec![&a[..], &b[..]]);
    joined.truncate(joined.len() - 3);
    let parts: Vec<_> = BatchSplitter::new(&joined).collect();
    assert_eq!(parts.len(), 2);
    assert!(matches!(parts[1], Err(BatchError::LengthMismatch { .. })));
}

#[test]
fn empty_builder_is_an_error() {
    assert!(matches!(
        BatchBuilder::new(Compression::None).build(),
        Err(BatchError::EmptyBuilder)
    ));
}

type OwnedHeaders = Vec<(Vec<u8>, Option<Vec<u8>>)>;
type OwnedRecord = (i64, Option<Vec<u8>>, Option<Vec<u8>>, OwnedHeaders);

fn arb_record() -> impl Strategy<Value = OwnedRecord> {
    (
        0_i64..4_000_000_000_000,
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..40)),
        proptest::option::of(proptest::collection::vec(any::<u8>(), 0..200)),
        proptest::collection::vec(
            (
                proptest::collection::vec(any::<u8>(), 0..10),
                proptest::option::of(proptest::collection::vec(any::<u8>(), 0..10)),
            ),
            0..4,
        ),
    )
}

fn arb_codec() -> impl Strategy<Value = Compression> {
    prop_oneof![
        Just(Compression::None),
        Just(Compression::Gzip),
        Just(Compression::Snappy),
        Just(Compression::Lz4),
        Just(Compression::Zstd),
    ]
}

proptest! {
    #![proptest_config(ProptestConfig::with_cases(64))]

    #[test]
    fn builder_output_validates_and_iterates_to_the_same_records(
        codec in arb_codec(),
        records in proptest::collection::vec(arb_record(), 1..20),
    ) {
        let mut builder = BatchBuilder::new(codec);
        for (ts, key, value, headers) in &records {
            let headers: Vec<(&[u8], Option<&[u8]>)> =
                headers.iter().map(|(k, v)| (&k[..], v.as_deref())).collect();
            builder.push(&BuilderRecord { timestamp_ms: *ts, key: key.as_deref(), value: value.as_deref(), headers: &headers }).expect("push");
        }
        let bytes = builder.build().expect("build");
        let batch = RecordBatch::validate(&bytes).expect("valid");
        let mut scratch = Vec::new();
        batch.decompress_into(1 << 24, &mut scratch).expect("decompress");
        let decoded: Vec<_> = batch.records_in(&scratch).collect::<Result<_, _>>().expect("iterate");
        prop_assert_eq!(decoded.len(), records.len());
        for (record, (ts, key, value, headers)) in decoded.iter().zip(&records) {
            prop_assert_eq!(record.timestamp(batch.header()), *ts);
            prop_assert_eq!(record.key, key.as_deref());
            prop_assert_eq!(record.value, value.as_deref());
            let got: Vec<_> = record.headers().map(|h| (h.key.to_vec(), h.value.map(<[u8]>::to_vec))).collect();
            prop_assert_eq!(&got, headers);
        }
    }

    #[test]
    fn validation_and_iteration_never_panic_on_mutations(
        codec in arb_codec(),
        flips in proptest::collection::vec((any::<prop::sample::Index>(), any::<u8>()), 1..6),
        refix in any::<bool>(),
    ) {
        let mut bytes = sample_batch(codec, 6);
        for (index, value) in flips {
            let at = index.index(bytes.len());
            bytes[at] = value;
        }
        if refix && bytes.len() > CRC_START {
            fix_crc(&mut bytes);
        }
        if let Ok(batch) = RecordBatch::validate(&bytes) {
            let mut scratch = Vec::new();
            if batch.decompress_into(1 << 20, &mut scratch).is_ok() {
                for record in batch.records_in(&scratch).flatten() {
                    let _ = record.headers().count();
                }
            }
        }
    }
}
