"""Reads `customer-orders` from the start with librdkafka and checks COUNT orders arrived in
order with their keys. Usage: check_orders.py BOOTSTRAP COUNT"""
import json
import sys
import time

from confluent_kafka import Consumer, TopicPartition

bootstrap, count = sys.argv[1], int(sys.argv[2])
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "orders-check", "enable.auto.commit": False})
consumer.assign([TopicPartition("customer-orders", 0, 0)])
got = []
deadline = time.time() + 30
while len(got) < count and time.time() < deadline:
    message = consumer.poll(0.5)
    if message is None:
        continue
    if message.error():
        sys.exit(f"consume failed: {message.error()}")
    got.append(message)
consumer.close()
if len(got) != count:
    sys.exit(f"consumed {len(got)} of {count}")
for i, message in enumerate(got):
    order = json.loads(message.value())
    if order["seq"] != i or message.key() != f"order-{i % 10}".encode():
        sys.exit(f"order {i} out of place: {order} key {message.key()}")
print(f"ok {count}")
