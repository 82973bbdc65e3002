"""A confluent-kafka group consumer reads every record of TOPIC's partitions, then commits
the given offsets (not what it read), so the broker's lag is known.
Usage: metrics_group.py BOOTSTRAP TOPIC GROUP EXPECTED PARTITION=OFFSET..."""
import sys
import time

from confluent_kafka import Consumer, TopicPartition

bootstrap, topic, group, expected = sys.argv[1], sys.argv[2], sys.argv[3], int(sys.argv[4])
commits = [TopicPartition(topic, int(p), int(o))
           for p, o in (arg.split("=") for arg in sys.argv[5:])]

consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "auto.offset.reset": "earliest", "enable.auto.commit": False})
consumer.subscribe([topic])
got = 0
deadline = time.time() + 60
while got < expected and time.time() < deadline:
    message = consumer.poll(0.5)
    if message is None:
        continue
    if message.error():
        sys.exit(f"consume failed: {message.error()}")
    got += 1
if got != expected:
    sys.exit(f"consumed {got} of {expected}")
consumer.commit(offsets=commits, asynchronous=False)
consumer.close()
print("ok")
