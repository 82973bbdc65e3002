"""Helpers shared by the librdkafka test scripts."""
import sys
import time

from confluent_kafka import Consumer


def consume(bootstrap, assignments, expected, timeout_s=60, **extra):
    """Reads `expected` records from `assignments` (TopicPartitions with start offsets) without
    a consumer group's commits; exits the script with a message if they do not all arrive."""
    config = {"bootstrap.servers": bootstrap, "group.id": "spate-tests", "enable.auto.commit": False}
    config.update(extra)
    consumer = Consumer(config)
    consumer.assign(assignments)
    got = []
    deadline = time.time() + timeout_s
    while len(got) < expected and time.time() < deadline:
        message = consumer.poll(0.5)
        if message is None:
            continue
        if message.error():
            sys.exit(f"consume failed: {message.error()}")
        got.append(message)
    consumer.close()
    if len(got) != expected:
        sys.exit(f"consumed {len(got)} of {expected}")
    return got
