#!/usr/bin/env python3
"""Golden flow for librdkafka (via confluent-kafka): produce one record, consume it back.

Usage: librdkafka.py BOOTSTRAP. Exits 0 only when the produce was acknowledged and the consumer
received key k1, value hello-golden, header h1=v1 from golden[0].
"""

import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition

TOPIC = "golden"
EXPECTED = (b"k1", b"hello-golden", [("h1", b"v1")])
FLOW_BUDGET_S = 25.0
# A fixed CreateTime keeps the captured Produce bytes identical from run to run.
TIMESTAMP_MS = 1_700_000_000_000


def produce(bootstrap):
    producer = Producer({
        "bootstrap.servers": bootstrap,
        "client.id": "golden-librdkafka",
        "linger.ms": 0,
        "message.timeout.ms": 10000,
    })
    reports = []
    producer.produce(TOPIC, key=EXPECTED[0], value=EXPECTED[1], headers=EXPECTED[2],
                     timestamp=TIMESTAMP_MS,
                     on_delivery=lambda error, message: reports.append((error, message)))
    remaining = producer.flush(15)
    if remaining or not reports or reports[0][0] is not None:
        raise SystemExit(f"produce failed: remaining={remaining} reports={reports}")
    message = reports[0][1]
    print(f"produced to {message.topic()}[{message.partition()}]@{message.offset()}")


def consume(bootstrap, deadline):
    # group.id is required by confluent-kafka, but with assign() and no commits the consumer
    # never joins the group.
    consumer = Consumer({
        "bootstrap.servers": bootstrap,
        "client.id": "golden-librdkafka",
        "group.id": "golden-librdkafka",
        "enable.auto.commit": False,
        "fetch.wait.max.ms": 100,
    })
    try:
        consumer.assign([TopicPartition(TOPIC, 0, 0)])
        while time.monotonic() < deadline:
            message = consumer.poll(0.5)
            if message is None:
                continue
            if message.error():
                raise KafkaException(message.error())
            got = (message.key(), message.value(), message.headers())
            if got != EXPECTED:
                raise SystemExit(f"consumed unexpected record {got}")
            print(f"consumed {TOPIC}[{message.partition()}]@{message.offset()}: {got}")
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
