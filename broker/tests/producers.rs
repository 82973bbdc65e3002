//! Idempotent producers, black box: InitProducerId and duplicate, gap and fencing handling
//! over raw bytes, and real clients with idempotence on (one through a proxy that sends
//! every Produce request twice).

mod common;

use bytes::Bytes;
use common::{produce_request, python, Broker, Raw};
use spate_protocol::kafka_protocol::messages::init_producer_id_request::InitProducerIdRequest;
use spate_protocol::kafka_protocol::messages::{
    ApiKey, ProducerId, RequestKind, ResponseKind, TopicName, TransactionalId,
};
use spate_protocol::kafka_protocol::protocol::StrBytes;

fn init(raw: &mut Raw, version: i16, id: i64, epoch: i16) -> (i16, i64, i16) {
    let request = InitProducerIdRequest::default()
        .with_transactional_id(None)
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(id))
        .with_producer_epoch(epoch);
    let ResponseKind::InitProducerId(response) = raw.call(
        ApiKey::InitProducerId,
        version,
        RequestKind::InitProducerId(request),
    ) else {
        panic!("not an InitProducerId response")
    };
    (
        response.error_code,
        response.producer_id.0,
        response.producer_epoch,
    )
}

/// Produces one idempotent batch of `count` records; returns (error code, base offset).
fn produce(raw: &mut Raw, producer: (i64, i16), sequence: i32, count: usize) -> (i16, i64) {
    let mut builder = spate_model::BatchBuilder::new(spate_model::Compression::None).producer(
        spate_model::ProducerId(producer.0),
        spate_model::ProducerEpoch(producer.1),
        spate_model::Sequence(sequence),
    );
    for _ in 0..count {
        builder
            .push(&spate_model::BuilderRecord {
                value: Some(b"once"),
                ..Default::default()
            })
            .expect("push");
    }
    let records = Bytes::from(builder.build().expect("build"));
    let ResponseKind::Produce(response) =
        raw.call(ApiKey::Produce, 7, produce_request("exactly", 0, records))
    else {
        panic!("not a produce response")
    };
    let partition = &response.responses[0].partition_responses[0];
    (partition.error_code, partition.base_offset)
}

#[test]
fn retried_batches_land_once_and_producer_ids_are_never_reused() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    let mut raw = Raw::connect(&broker.address);
    let metadata = spate_protocol::kafka_protocol::messages::MetadataRequest::default()
        .with_topics(Some(vec![
            spate_protocol::kafka_protocol::messages::metadata_request::MetadataRequestTopic::default()
                .with_name(Some(TopicName(StrBytes::from_static_str("exactly")))),
        ]))
        .with_allow_auto_topic_creation(true);
    raw.call(ApiKey::Metadata, 9, RequestKind::Metadata(metadata));

    let mut ids = Vec::new();
    for version in 0..=5 {
        let (code, id, epoch) = init(&mut raw, version, -1, -1);
        assert_eq!((code, epoch), (0, 0), "InitProducerId v{version}");
        ids.push(id);
    }
    let mut distinct = ids.clone();
    distinct.dedup();
    assert_eq!(
        distinct.len(),
        ids.len(),
        "every producer gets its own id: {ids:?}"
    );
    // KIP-360: the same id with a bumped epoch.
    assert_eq!(init(&mut raw, 4, ids[0], 0), (0, ids[0], 1));
    // A transactional id gets a producer id of its own, from the same blocks.
    let request = InitProducerIdRequest::default()
        .with_transactional_id(Some(TransactionalId(StrBytes::from_static_str("tx"))))
        .with_transaction_timeout_ms(60_000)
        .with_producer_id(ProducerId(-1))
        .with_producer_epoch(-1);
    let ResponseKind::InitProducerId(transactional) = raw.call(
        ApiKey::InitProducerId,
        4,
        RequestKind::InitProducerId(request),
    ) else {
        panic!()
    };
    assert_eq!(
        (transactional.error_code, transactional.producer_epoch),
        (0, 0)
    );
    assert!(!ids.contains(&transactional.producer_id.0));

    let producer = (ids[1], 0);
    assert_eq!(produce(&mut raw, producer, 0, 3), (0, 0));
    assert_eq!(produce(&mut raw, producer, 3, 2), (0, 3));
    // A retry of either batch gets its original offset and writes nothing.
    assert_eq!(produce(&mut raw, producer, 0, 3), (0, 0), "a retried batch");
    assert_eq!(produce(&mut raw, producer, 3, 2), (0, 3));
    assert_eq!(
        produce(&mut raw, producer, 5, 1),
        (0, 5),
        "nothing was written twice"
    );
    assert_eq!(
        produce(&mut raw, producer, 9, 1).0,
        45,
        "OUT_OF_ORDER_SEQUENCE_NUMBER"
    );
    assert_eq!(
        produce(&mut raw, (ids[1], 1), 0, 1),
        (0, 6),
        "a new epoch starts over"
    );
    assert_eq!(
        produce(&mut raw, producer, 6, 1).0,
        47,
        "INVALID_PRODUCER_EPOCH"
    );

    // Ids handed out before a crash are never handed out again, and the producers' state
    // survives it: rebuilt from the log after a SIGKILL, from the shutdown snapshot after a
    // SIGTERM.
    let mut broker = broker;
    for signal in ["-KILL", "-TERM"] {
        broker = broker.restart(signal);
        let mut raw = Raw::connect(&broker.address);
        let (code, id, _) = init(&mut raw, 4, -1, -1);
        assert_eq!(code, 0);
        assert!(ids.iter().all(|old| id > *old), "{id} after {ids:?}");
        ids.push(id);
        assert_eq!(
            produce(&mut raw, (ids[1], 1), 0, 1),
            (0, 6),
            "a retry after {signal}"
        );
        assert_eq!(
            produce(&mut raw, producer, 6, 1).0,
            47,
            "still fenced after {signal}"
        );
    }
    assert!(
        data.path()
            .join("exactly-0")
            .join("producer.snapshot")
            .exists(),
        "SIGTERM wrote the snapshot"
    );
}

#[test]
fn idempotent_librdkafka_and_kafka_python_producers_write_every_record_once() {
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start(data.path());
    python("idempotent_clients.py", &[&broker.address]);
}

/// Reads one size-prefixed frame (prefix included), or `None` at the end of the stream.
fn read_frame(stream: &mut std::net::TcpStream) -> Option<Vec<u8>> {
    use std::io::Read;
    let mut size = [0_u8; 4];
    stream.read_exact(&mut size).ok()?;
    let length = usize::try_from(i32::from_be_bytes(size)).ok()?;
    let mut frame = vec![0_u8; 4 + length];
    frame[..4].copy_from_slice(&size);
    stream.read_exact(&mut frame[4..]).ok()?;
    Some(frame)
}

/// Relays one client connection to `upstream`, sending every Produce request twice (the
/// same bytes) and dropping the second answer; counts the duplicates in `duplicated`.
fn relay(
    mut client: std::net::TcpStream,
    upstream: &str,
    duplicated: &std::sync::atomic::AtomicUsize,
) {
    use std::collections::VecDeque;
    use std::io::Write;
    use std::sync::{Arc, Mutex};
    let Ok(mut server) = std::net::TcpStream::connect(upstream) else {
        return;
    };
    // Per request sent upstream, in order: whether its answer is dropped.
    let dropped: Arc<Mutex<VecDeque<bool>>> = Arc::default();
    let (Ok(mut answers), Ok(mut to_client)) = (server.try_clone(), client.try_clone()) else {
        return;
    };
    let queue = dropped.clone();
    let responses = std::thread::spawn(move || {
        while let Some(frame) = read_frame(&mut answers) {
            let drop_it = queue.lock().expect("queue").pop_front().unwrap_or(false);
            if !drop_it && to_client.write_all(&frame).is_err() {
                break;
            }
        }
        let _ = to_client.shutdown(std::net::Shutdown::Both);
    });
    while let Some(frame) = read_frame(&mut client) {
        let is_produce = frame.get(4..6) == Some(&[0, 0]);
        dropped.lock().expect("queue").push_back(false);
        if server.write_all(&frame).is_err() {
            break;
        }
        if is_produce {
            dropped.lock().expect("queue").push_back(true);
            if server.write_all(&frame).is_err() {
                break;
            }
            duplicated.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
    }
    let _ = server.shutdown(std::net::Shutdown::Both);
    let _ = responses.join();
}

#[test]
fn duplicated_produce_requests_from_librdkafka_land_once() {
    use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering};
    use std::sync::Arc;
    use std::time::{Duration, Instant};
    // The proxy listens first, so that the broker can advertise it: every connection the
    // client makes goes through it.
    let proxy = std::net::TcpListener::bind("127.0.0.1:0").expect("bind the proxy");
    let proxy_address = proxy.local_addr().expect("proxy address").to_string();
    let data = tempfile::tempdir().expect("temp dir");
    let broker = Broker::start_with(data.path(), &["--advertised-listener", &proxy_address]);
    let upstream = broker.address.clone();
    let duplicated = Arc::new(AtomicUsize::new(0));
    let done = Arc::new(AtomicBool::new(false));
    proxy.set_nonblocking(true).expect("nonblocking");
    let accepting = {
        let (duplicated, done) = (duplicated.clone(), done.clone());
        std::thread::spawn(move || {
            let deadline = Instant::now() + Duration::from_secs(120);
            while !done.load(Ordering::Relaxed) && Instant::now() < deadline {
                match proxy.accept() {
                    Ok((client, _)) => {
                        client.set_nonblocking(false).expect("blocking");
                        let (upstream, duplicated) = (upstream.clone(), duplicated.clone());
                        std::thread::spawn(move || relay(client, &upstream, &duplicated));
                    }
                    Err(_) => std::thread::sleep(Duration::from_millis(10)),
                }
            }
        })
    };
    python("duplicated_produce.py", &[&proxy_address]);
    done.store(true, Ordering::Relaxed);
    accepting.join().expect("proxy thread");
    assert!(
        duplicated.load(Ordering::Relaxed) >= 10,
        "the proxy duplicated {} produce requests",
        duplicated.load(Ordering::Relaxed)
    );
}
