"""Committed offsets outlive their consumer (and the broker, which the Rust test restarts
between phases).
Usage: group_resume_librdkafka.py BOOTSTRAP first STATE_FILE   produce 30 records to 3
           partitions, consume 15 in group `resumers`, committing after each, close
       group_resume_librdkafka.py BOOTSTRAP rest STATE_FILE    the group's committed offsets
           add up to 15; a new member gets exactly the 15 records the first never saw"""
import sys
import time

from confluent_kafka import Consumer, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap, phase, state = sys.argv[1], sys.argv[2], sys.argv[3]
TOPIC, GROUP, TOTAL = "resume", "resumers", 30


def consumer():
    c = Consumer({
        "bootstrap.servers": bootstrap,
        "group.id": GROUP,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
        "session.timeout.ms": 6000,
    })
    c.subscribe([TOPIC])
    return c


def take(c, count, timeout_s=30):
    got = []
    deadline = time.time() + timeout_s
    while len(got) < count and time.time() < deadline:
        message = c.poll(0.5)
        if message is None:
            continue
        if message.error():
            sys.exit(f"consume failed: {message.error()}")
        got.append(message.value().decode())
        c.commit(message=message, asynchronous=False)
    return got


if phase == "first":
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, 3, 1)])[TOPIC].result(30)
    producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
    for i in range(TOTAL):
        producer.produce(TOPIC, value=f"r{i}".encode(), partition=i % 3)
    if producer.flush(30) != 0:
        sys.exit("not everything was delivered")
    c = consumer()
    got = take(c, 15)
    c.close()
    if len(got) != 15:
        sys.exit(f"the first member consumed {len(got)} of 15")
    with open(state, "w") as out:
        out.write("\n".join(got))
else:
    with open(state) as saved:
        seen = set(saved.read().split())
    c = consumer()
    committed = c.committed([TopicPartition(TOPIC, p) for p in range(3)], timeout=10)
    total = sum(max(tp.offset, 0) for tp in committed)
    if total != len(seen):
        sys.exit(f"committed offsets add up to {total}, expected {len(seen)}: {committed}")
    rest = take(c, TOTAL - len(seen))
    # Nothing more arrives: the group resumed exactly where it stopped.
    extra = take(c, 1, timeout_s=2)
    c.close()
    expected = {f"r{i}" for i in range(TOTAL)} - seen
    if sorted(rest) != sorted(expected) or extra:
        sys.exit(f"resumed with {sorted(rest)} (+{extra}); expected {sorted(expected)}")
    with open(state, "w") as out:
        out.write("\n".join(seen | set(rest)))
print("ok")
