"""Produce and consume through kafka-python (its own protocol implementation).
Usage: roundtrip_kafka_python.py BOOTSTRAP TOPIC COUNT CODEC"""
import sys

from kafka import KafkaConsumer, KafkaProducer, TopicPartition

bootstrap, topic, count, codec = sys.argv[1], sys.argv[2], int(sys.argv[3]), sys.argv[4]
producer = KafkaProducer(
    bootstrap_servers=bootstrap,
    acks="all",
    compression_type=None if codec == "none" else codec,
)  # idempotent, kafka-python 3's default
futures = [
    producer.send(topic, key=f"k{i}".encode(), value=f"v{i}".encode(), headers=[("h", b"x")], timestamp_ms=1_700_000_000_000 + i)
    for i in range(count)
]
offsets = [future.get(timeout=30).offset for future in futures]
producer.close()
if offsets != list(range(count)):
    sys.exit(f"unexpected offsets {offsets[:10]}")
consumer = KafkaConsumer(bootstrap_servers=bootstrap, enable_auto_commit=False, consumer_timeout_ms=10_000)
partition = TopicPartition(topic, 0)
consumer.assign([partition])
consumer.seek_to_beginning(partition)
got = []
for message in consumer:
    got.append(message)
    if len(got) == count:
        break
consumer.close()
if len(got) != count:
    sys.exit(f"consumed {len(got)} of {count}")
for i, message in enumerate(got):
    expected = (i, f"k{i}".encode(), f"v{i}".encode(), [("h", b"x")], 1_700_000_000_000 + i)
    actual = (message.offset, message.key, message.value, list(message.headers), message.timestamp)
    if actual != expected:
        sys.exit(f"record {i}: expected {expected}, got {actual}")
print(f"ok {count}")
