#!/usr/bin/env python3
"""Compressed golden flow for kafka-python: for each codec, one producer with that
compression_type sends 20 records to golden in a single batch.

Usage: kafka_python_compressed.py [CODEC...] BOOTSTRAP (default: gzip snappy lz4 zstd). gzip
is built in; snappy, lz4 and zstd need python-snappy, lz4 and zstandard, which
scripts/install-clients pins into the venv. Exits 0 only when every record was acknowledged.
"""

import sys

from kafka import KafkaProducer
from kafka import codec as kafka_codec

TOPIC = "golden"
CODECS = ("gzip", "snappy", "lz4", "zstd")
CODEC_AVAILABLE = {
    "gzip": kafka_codec.has_gzip,
    "snappy": kafka_codec.has_snappy,
    "lz4": kafka_codec.has_lz4,
    "zstd": kafka_codec.has_zstd,
}
RECORD_COUNT = 20
VALUE_BYTES = 200
TIMESTAMP_MS = 1_700_000_000_000


def golden_records():
    """Same records as flows/librdkafka_compressed.py."""
    for i in range(RECORD_COUNT):
        value = (f"value-{i}" * VALUE_BYTES)[:VALUE_BYTES]
        yield f"k{i}".encode(), value.encode(), [("h1", b"v1")], TIMESTAMP_MS + i


def produce(bootstrap, codec):
    if not CODEC_AVAILABLE[codec]():
        raise SystemExit(f"{codec}: kafka-python finds no library for it; "
                         "run scripts/install-clients")
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="golden-kafka-python",
                             compression_type=codec, linger_ms=5000, request_timeout_ms=10000)
    try:
        futures = [
            producer.send(TOPIC, key=key, value=value, headers=headers, timestamp_ms=timestamp)
            for key, value, headers, timestamp in golden_records()
        ]
        producer.flush(timeout=15)
        offsets = sorted(future.get(timeout=1).offset for future in futures)
    finally:
        producer.close(timeout=5)
    if offsets != list(range(offsets[0], offsets[0] + RECORD_COUNT)):
        raise SystemExit(f"{codec}: offsets not contiguous: {offsets}")
    print(f"{codec}: produced {RECORD_COUNT} records to {TOPIC}@{offsets[0]}..{offsets[-1]}")


def main():
    bootstrap, codecs = sys.argv[-1], sys.argv[1:-1] or CODECS
    for codec in codecs:
        produce(bootstrap, codec)


if __name__ == "__main__":
    main()
