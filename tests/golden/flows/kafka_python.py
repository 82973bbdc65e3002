#!/usr/bin/env python3
"""Golden flow for kafka-python: produce one record, consume it back without a group.

Usage: kafka_python.py BOOTSTRAP. Exits 0 only when the produce was acknowledged and the
consumer received key k1, value hello-golden, header h1=v1 from golden[0]. The producer keeps
kafka-python's defaults (idempotent since 3.0, so InitProducerId is part of the capture).
"""

import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

TOPIC = "golden"
EXPECTED = (b"k1", b"hello-golden", [("h1", b"v1")])
FLOW_BUDGET_S = 25.0
# A fixed CreateTime keeps the captured Produce bytes identical from run to run.
TIMESTAMP_MS = 1_700_000_000_000


def produce(bootstrap):
    producer = KafkaProducer(bootstrap_servers=bootstrap, client_id="golden-kafka-python",
                             linger_ms=0, request_timeout_ms=10000)
    try:
        future = producer.send(TOPIC, key=EXPECTED[0], value=EXPECTED[1], headers=EXPECTED[2],
                               timestamp_ms=TIMESTAMP_MS)
        metadata = future.get(timeout=15)
        producer.flush(timeout=5)
        print(f"produced to {metadata.topic}[{metadata.partition}]@{metadata.offset}")
    finally:
        producer.close(timeout=5)


def consume(bootstrap, deadline):
    consumer = KafkaConsumer(bootstrap_servers=bootstrap, client_id="golden-kafka-python",
                             group_id=None, enable_auto_commit=False, fetch_max_wait_ms=100,
                             request_timeout_ms=10000)
    try:
        partition = TopicPartition(TOPIC, 0)
        consumer.assign([partition])
        consumer.seek_to_beginning(partition)
        while time.monotonic() < deadline:
            for records in consumer.poll(timeout_ms=500).values():
                record = records[0]
                got = (record.key, record.value, list(record.headers))
                if got != EXPECTED:
                    raise SystemExit(f"consumed unexpected record {got}")
                print(f"consumed {record.topic}[{record.partition}]@{record.offset}: {got}")
                return
        raise SystemExit("no record consumed before the deadline")
    finally:
        consumer.close()


def main():
    deadline = time.monotonic() + FLOW_BUDGET_S
    produce(sys.argv[1])
    consume(sys.argv[1], deadline)


if __name__ == "__main__":
    main()
