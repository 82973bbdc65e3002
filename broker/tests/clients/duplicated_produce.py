"""confluent-kafka with enable.idempotence=true through a proxy that sends every Produce
request twice (the same bytes): every record lands exactly once, in order.
Usage: duplicated_produce.py BOOTSTRAP"""
import sys

from confluent_kafka import Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

from common import consume

bootstrap = sys.argv[1]
TOPIC, COUNT, PARTITIONS = "duplicated", 1000, 2

admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC].result(30)

producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True,
                     "linger.ms": 2, "batch.num.messages": 50})
for i in range(COUNT):
    producer.produce(TOPIC, value=f"{i}".encode(), partition=i % PARTITIONS)
    if i % 100 == 99:
        producer.flush(30)
if producer.flush(30) != 0:
    sys.exit("could not deliver everything")

got = consume(bootstrap, [TopicPartition(TOPIC, p, 0) for p in range(PARTITIONS)], COUNT)
for p in range(PARTITIONS):
    values = [int(m.value()) for m in got if m.partition() == p]
    if values != list(range(p, COUNT, PARTITIONS)):
        sys.exit(f"partition {p} holds {len(values)} records, not each of its {COUNT // PARTITIONS} once in order")
print("ok")
