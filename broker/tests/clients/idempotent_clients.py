"""Idempotent producers as users write them: confluent-kafka with enable.idempotence=true and
kafka-python 3 with its default (idempotence on); every record lands exactly once.
Usage: idempotent_clients.py BOOTSTRAP"""
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic
from kafka import KafkaProducer

bootstrap = sys.argv[1]
TOPIC, COUNT = "idempotent", 2000

admin = AdminClient({"bootstrap.servers": bootstrap})
admin.create_topics([NewTopic(TOPIC, 4, 1)])[TOPIC].result(30)

producer = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True, "linger.ms": 2})
for i in range(COUNT):
    producer.produce(TOPIC, value=f"rd-{i}".encode(), partition=i % 4)
    producer.poll(0)
if producer.flush(30) != 0:
    sys.exit("librdkafka could not deliver everything")

kp = KafkaProducer(bootstrap_servers=bootstrap)  # idempotent by default in kafka-python 3
futures = [kp.send(TOPIC, value=f"kp-{i}".encode(), partition=i % 4) for i in range(COUNT)]
kp.flush(30)
for future in futures:
    future.get(timeout=30)
kp.close()

consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "idempotent-check", "enable.auto.commit": False})
consumer.assign([TopicPartition(TOPIC, p, 0) for p in range(4)])
seen = []
deadline = time.time() + 30
while len(seen) < 2 * COUNT and time.time() < deadline:
    message = consumer.poll(0.5)
    if message is None:
        continue
    if message.error():
        sys.exit(f"consume failed: {message.error()}")
    seen.append(message.value().decode())
extra = consumer.poll(1)
consumer.close()
expected = {f"rd-{i}" for i in range(COUNT)} | {f"kp-{i}" for i in range(COUNT)}
if len(seen) != len(expected) or set(seen) != expected or extra is not None:
    sys.exit(f"consumed {len(seen)} records ({len(set(seen))} distinct), expected {len(expected)} once each")
print("ok")
