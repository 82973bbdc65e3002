"""kafka-python consumer group: join, consume, commit, and a second member resumes after
the first one's commits.
Usage: group_kafka_python.py BOOTSTRAP"""
import sys
import time

from kafka import KafkaConsumer, KafkaProducer, TopicPartition
from kafka.admin import KafkaAdminClient, NewTopic

bootstrap = sys.argv[1]
TOPIC, GROUP, TOTAL = "kp-group", "kp-members", 20

admin = KafkaAdminClient(bootstrap_servers=bootstrap)
admin.create_topics([NewTopic(TOPIC, 2, 1)])
producer = KafkaProducer(bootstrap_servers=bootstrap, acks="all")
for i in range(TOTAL):
    producer.send(TOPIC, value=f"v{i}".encode(), partition=i % 2)
producer.flush(30)
producer.close()


def member():
    return KafkaConsumer(
        TOPIC,
        bootstrap_servers=bootstrap,
        group_id=GROUP,
        auto_offset_reset="earliest",
        enable_auto_commit=False,
        session_timeout_ms=6000,
        heartbeat_interval_ms=1000,
    )


def take(consumer, count, timeout_s=30):
    got = []
    deadline = time.time() + timeout_s
    while len(got) < count and time.time() < deadline:
        for records in consumer.poll(timeout_ms=500, max_records=count - len(got)).values():
            got.extend(r.value.decode() for r in records)
        consumer.commit()
    return got


first = member()
seen = take(first, 10)
if len(seen) != 10 or len(first.assignment()) != 2:
    sys.exit(f"the first member consumed {seen} with {first.assignment()}")
first.close()

second = member()
rest = take(second, TOTAL - 10)
committed = sum(second.committed(TopicPartition(TOPIC, p)) or 0 for p in range(2))
second.close()
if sorted(seen + rest) != sorted(f"v{i}" for i in range(TOTAL)):
    sys.exit(f"first {seen}, then {rest}")
if committed != TOTAL:
    sys.exit(f"committed offsets add up to {committed}, not {TOTAL}")
listed = {g["group_id"]: g["group_state"] for g in admin.list_groups()}
if listed.get(GROUP) != "Empty":
    sys.exit(f"{GROUP} is not listed as an empty group: {listed}")
print("ok")
