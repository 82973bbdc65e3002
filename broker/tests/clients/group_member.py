"""A confluent-kafka group member that stays in its group for a while: it subscribes, prints
"joined" once it has its assignment, keeps polling for SECONDS, then leaves.
Usage: group_member.py BOOTSTRAP TOPIC GROUP SECONDS"""
import sys
import time

from confluent_kafka import Consumer

bootstrap, topic, group, seconds = sys.argv[1], sys.argv[2], sys.argv[3], float(sys.argv[4])
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": group,
                     "client.id": "member-under-test", "auto.offset.reset": "earliest"})
consumer.subscribe([topic])
deadline = time.time() + 60
while not consumer.assignment():
    if time.time() > deadline:
        sys.exit("no assignment within 60 s")
    consumer.poll(0.2)
print("joined", flush=True)
until = time.time() + seconds
while time.time() < until:
    consumer.poll(0.2)
consumer.close()
print("ok")
