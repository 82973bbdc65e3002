#!/usr/bin/env python3
"""consume_batches driver for librdkafka (via confluent-kafka): reads golden[0] from offset 0
with assign() (no group join) until it has the record before the high watermark, or librdkafka
signals the partition's end there.

Usage: librdkafka.py BOOTSTRAP HIGH_WATERMARK BUDGET_SECONDS. Prints one JSON document
{"client", "client_version", "records": [...]} on stdout; on any error librdkafka reports
(bad CRC, bad compression, out of range, ...) or on running out of time, exits 1 with the
reason on stderr. Run by tests/golden/consume_batches.
"""

import json
import sys
import time

import confluent_kafka
from confluent_kafka import Consumer, KafkaError, TopicPartition

TOPIC = "golden"
POLL_S = 0.2


def fail(message):
    print(f"librdkafka: {message}", file=sys.stderr)
    sys.exit(1)


def text(data, what):
    if data is None:
        return None
    try:
        return data.decode("utf-8")
    except UnicodeDecodeError:
        fail(f"{what} is not UTF-8 ({data[:40]!r}); consume_batches reports UTF-8 text only")
    return None


def record_json(message):
    offset = message.offset()
    timestamp_type, timestamp = message.timestamp()
    return {
        "offset": offset,
        "key": text(message.key(), f"offset {offset}: key"),
        "value": text(message.value(), f"offset {offset}: value"),
        "headers": [[key, text(value, f"offset {offset}: header {key}")]
                    for key, value in (message.headers() or [])],
        "timestamp": None if timestamp_type == confluent_kafka.TIMESTAMP_NOT_AVAILABLE
        else timestamp,
    }


def consume(bootstrap, high_watermark, deadline):
    # group.id is required by confluent-kafka; with assign() and no commits it is never joined.
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "client.id": "golden-consume-librdkafka",
        "group.id": "golden-consume-librdkafka",
        "enable.auto.commit": False,
        "enable.auto.offset.store": False,
        "enable.partition.eof": True,
        "check.crcs": True,
        "auto.offset.reset": "error",
        "fetch.wait.max.ms": 100,
    })
    records = []
    try:
        consumer.assign([TopicPartition(TOPIC, 0, 0)])
        while True:
            if time.monotonic() >= deadline:
                last = records[-1]["offset"] if records else None
                fail(f"timed out with {len(records)} records (last offset {last}); "
                     f"the high watermark is {high_watermark}")
            message = consumer.poll(POLL_S)
            if message is None:
                continue
            error = message.error()
            if error is not None:
                if error.code() == KafkaError._PARTITION_EOF:  # pylint: disable=protected-access
                    if message.offset() >= high_watermark:
                        return records
                    continue
                fail(f"error at offset {message.offset()}: {error}")
            records.append(record_json(message))
            if message.offset() >= high_watermark - 1:
                return records
    finally:
        consumer.close()


def main():
    bootstrap, high_watermark, budget_s = sys.argv[1], int(sys.argv[2]), float(sys.argv[3])
    records = consume(bootstrap, high_watermark, time.monotonic() + budget_s)
    version = f"librdkafka {confluent_kafka.libversion()[0]} " \
              f"(confluent-kafka {confluent_kafka.__version__})"
    json.dump({"client": "librdkafka", "client_version": version, "records": records},
              sys.stdout)
    sys.stdout.write("\n")


if __name__ == "__main__":
    main()
