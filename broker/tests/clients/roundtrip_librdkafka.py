"""Produce N keyed records with headers and timestamps through librdkafka (confluent-kafka),
then consume them back from offset 0 and check every field. Usage:
roundtrip_librdkafka.py BOOTSTRAP TOPIC COUNT CODEC ACKS [--produce-only|--consume-only]"""
import sys

from common import consume
from confluent_kafka import Producer, TopicPartition

bootstrap, topic, count, codec, acks = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4], sys.argv[5]
mode = sys.argv[6] if len(sys.argv) > 6 else "both"

if mode in ("both", "--produce-only"):
    producer = Producer({"bootstrap.servers": bootstrap, "acks": acks, "linger.ms": 5, "compression.type": codec})
    failures = []
    for i in range(count):
        producer.produce(
            topic,
            key=f"k{i}".encode(),
            value=f"value-{i}-".encode() * (1 + i % 7),
            headers=[("h", str(i).encode())],
            timestamp=1_700_000_000_000 + i,
            on_delivery=lambda err, msg: failures.append(err) if err else None,
        )
    left = producer.flush(30)
    if left or failures:
        sys.exit(f"produce failed: {left} undelivered, errors {failures[:3]}")

if mode in ("both", "--consume-only"):
    got = consume(bootstrap, [TopicPartition(topic, 0, 0)], count)
    for i, message in enumerate(got):
        expected = (i, f"k{i}".encode(), f"value-{i}-".encode() * (1 + i % 7), [("h", str(i).encode())], 1_700_000_000_000 + i)
        actual = (message.offset(), message.key(), message.value(), message.headers(), message.timestamp()[1])
        if actual != expected:
            sys.exit(f"record {i}: expected {expected}, got {actual}")
print(f"ok {count}")
