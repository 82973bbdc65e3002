"""Reads `customer-orders` from the start with librdkafka and checks COUNT orders arrived in
order with their keys. Usage: check_orders.py BOOTSTRAP COUNT"""
import json
import sys

from common import consume
from confluent_kafka import TopicPartition

bootstrap, count = sys.argv[1], int(sys.argv[2])
got = consume(bootstrap, [TopicPartition("customer-orders", 0, 0)], count)
for i, message in enumerate(got):
    order = json.loads(message.value())
    if order["seq"] != i or message.key() != f"order-{i % 10}".encode():
        sys.exit(f"order {i} out of place: {order} key {message.key()}")
print(f"ok {count}")
