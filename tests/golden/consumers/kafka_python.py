#!/usr/bin/env python3
"""consume_batches driver for kafka-python: assign() golden[0], seek_to_beginning() and poll
until it has the record before the high watermark (or its position reaches it).

Usage: kafka_python.py BOOTSTRAP HIGH_WATERMARK BUDGET_SECONDS. Prints one JSON document
{"client", "client_version", "records": [...]} on stdout; on any error kafka-python raises
(bad CRC, missing or failing codec, ...) or on running out of time, exits 1 with the reason on
stderr. snappy, lz4 and zstd need python-snappy, lz4 and zstandard (scripts/install-clients).
Run by tests/golden/consume_batches.
"""

import json
import logging
import sys
import time

import kafka
from kafka import KafkaConsumer, TopicPartition

TOPIC = "golden"
POLL_MS = 200


def fail(message):
    print(f"kafka-python: {message}", file=sys.stderr)
    sys.exit(1)


def text(data, what):
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        fail(f"{what} is not UTF-8 ({data[:40]!r}); consume_batches reports UTF-8 text only")
    return None


def record_json(record):
    offset = record.offset
    return {
        "offset": offset,
        "key": text(record.key, f"offset {offset}: key"),
        "value": text(record.value, f"offset {offset}: value"),
        "headers": [[key, text(value, f"offset {offset}: header {key}")]
                    for key, value in (record.headers or [])],
        "timestamp": record.timestamp,
    }


def consume(bootstrap, high_watermark, deadline):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="golden-consume-kafka-python",
                             group_id=None, enable_auto_commit=False, check_crcs=True,
                             fetch_max_wait_ms=100, request_timeout_ms=10000)
    records = []
    try:
        partition = TopicPartition(TOPIC, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        while True:
            if time.monotonic() >= deadline:
                last = records[-1]["offset"] if records else None
                fail(f"timed out with {len(records)} records (last offset {last}); "
                     f"the high watermark is {high_watermark}")
            try:
                polled = consumer.poll(timeout_ms=POLL_MS)
            except Exception as error:  # pylint: disable=broad-except  (any client error)
                fail(f"poll failed after {len(records)} records: {type(error).__name__}: {error}")
            got = [record for batch in polled.values() for record in batch]
            records.extend(record_json(record) for record in got)
            if records and records[-1]["offset"] >= high_watermark - 1:
                return records
            if got and consumer.position(partition) >= high_watermark:
                return records
    finally:
        consumer.close()


def main():
    # kafka-python logs through `logging`; keep stdout for the JSON.
    logging.basicConfig(stream=sys.stderr, level=logging.WARNING)
    bootstrap, high_watermark, budget_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    records = consume(bootstrap, high_watermark, time.monotonic() + budget_s)
    json.dump({"client": "kafka-python", "client_version": f"kafka-python {kafka.__version__}",
               "records": records}, sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
