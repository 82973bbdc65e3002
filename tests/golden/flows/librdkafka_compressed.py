#!/usr/bin/env python3
"""Compressed golden flow for librdkafka (via confluent-kafka): for each codec, one producer
with that compression.type sends 20 records to golden in a single batch.

Usage: librdkafka_compressed.py [CODEC...] BOOTSTRAP (default: gzip snappy lz4 zstd, all built
into confluent-kafka's bundled librdkafka). Exits 0 only when every record was acknowledged.
The fake (`--record compressed`) saves each compressed Produce frame and checks its CRC and
its decompressed records; the capture script then checks what it noted.
"""

import sys

from confluent_kafka import Producer

TOPIC = "golden"
CODECS = ("gzip", "snappy", "lz4", "zstd")
RECORD_COUNT = 20
VALUE_BYTES = 200
# Fixed CreateTimes keep the captured bytes identical from run to run.
TIMESTAMP_MS = 1_700_000_000_000


def golden_records():
    """The compressed flows' records (the same in every client): key k<i>, value `value-<i>`
    repeated to 200 bytes, header h1=v1, CreateTime TIMESTAMP_MS + i."""
    for i in range(RECORD_COUNT):
        value = (f"value-{i}" * VALUE_BYTES)[:VALUE_BYTES]
        yield f"k{i}".encode(), value.encode(), [("h1", b"v1")], TIMESTAMP_MS + i


def produce(bootstrap, codec):
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "client.id": "golden-librdkafka",
        "compression.type": codec,
        # Hold the records back so they go out together; flush() sends them at once.
        "linger.ms": 5000,
        "message.timeout.ms": 10000,
    })
    reports = []
    for key, value, headers, timestamp in golden_records():
        producer.produce(TOPIC, key=key, value=value, headers=headers, timestamp=timestamp,
                         on_delivery=lambda error, message: reports.append((error, message)))
    remaining = producer.flush(15)
    errors = [error for error, _ in reports if error is not None]
    if remaining or len(reports) != RECORD_COUNT or errors:
        raise SystemExit(f"{codec}: produce failed: remaining={remaining} "
                         f"reports={len(reports)} errors={errors}")
    offsets = sorted(message.offset() for _, message in reports)
    if offsets != list(range(offsets[0], offsets[0] + RECORD_COUNT)):
        raise SystemExit(f"{codec}: offsets not contiguous: {offsets}")
    print(f"{codec}: produced {RECORD_COUNT} records to {TOPIC}@{offsets[0]}..{offsets[-1]}")


def main():
    bootstrap, codecs = sys.argv[-1], sys.argv[1:-1] or CODECS
    for codec in codecs:
        produce(bootstrap, codec)


if __name__ == "__main__":
    main()
