"""64 partitions, 1 MiB records and replay from a timestamp, through librdkafka.
Usage: scale_librdkafka.py BOOTSTRAP"""
import sys

from common import consume
from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap = sys.argv[1]
admin = AdminClient({"bootstrap.servers": bootstrap})
for future in admin.create_topics([
    NewTopic("wide", 64, 1),
    NewTopic("big", 1, 1, config={"max.message.bytes": str(3 << 20)}),
    NewTopic("timed", 1, 1),
]).values():
    future.result(timeout=30)


# 64 partitions, 25 records each, every partition read back in order.
producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
for partition in range(64):
    for i in range(25):
        producer.produce("wide", value=f"{partition}:{i}".encode(), partition=partition)
if producer.flush(30):
    sys.exit("wide: undelivered records")
got = consume(bootstrap, [TopicPartition("wide", p, 0) for p in range(64)], 64 * 25)
per_partition = {}
for message in got:
    per_partition.setdefault(message.partition(), []).append(message.value().decode())
for partition in range(64):
    if per_partition.get(partition) != [f"{partition}:{i}" for i in range(25)]:
        sys.exit(f"partition {partition}: {per_partition.get(partition)}")

# 1 MiB records.
big = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.max.bytes": 4 << 20})
payloads = [bytes([i]) * (1 << 20) for i in range(5)]
for payload in payloads:
    big.produce("big", value=payload)
if big.flush(30):
    sys.exit("big: undelivered records")
got = consume(bootstrap, [TopicPartition("big", 0, 0)], 5, **{"fetch.max.bytes": 8 << 20, "max.partition.fetch.bytes": 4 << 20})
if [m.value() for m in got] != payloads:
    sys.exit("1 MiB records came back different")

# Replay from a timestamp: record i at t = 1000 * (i + 1) (librdkafka reads 0 as "now"); the
# first at or after 5500 is record 5, at offset 5.
for i in range(10):
    producer.produce("timed", value=str(i).encode(), timestamp=1_000 * (i + 1))
producer.flush(30)
probe = Consumer({"bootstrap.servers": bootstrap, "group.id": "scale", "enable.auto.commit": False})
found = probe.offsets_for_times([TopicPartition("timed", 0, 5_500)], timeout=10)
probe.close()
if found[0].offset != 5:
    sys.exit(f"offsets_for_times gave {found[0].offset}")
got = consume(bootstrap, [TopicPartition("timed", 0, found[0].offset)], 5)
if [m.value() for m in got] != [b"5", b"6", b"7", b"8", b"9"]:
    sys.exit(f"replay from the timestamp gave {[m.value() for m in got]}")
print("ok scale")
