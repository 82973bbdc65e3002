"""confluent-kafka produces gzip-compressed records with headers for `spate consume` to print.
Usage: cli_produce.py BOOTSTRAP TOPIC"""
import sys

from confluent_kafka import Producer

bootstrap, topic = sys.argv[1], sys.argv[2]
producer = Producer({"bootstrap.servers": bootstrap, "compression.type": "gzip",
                     "linger.ms": 5})
for i in range(3):
    producer.produce(topic, key=f"key-{i}", value=f"value-{i}", partition=0,
                     headers=[("trace", f"t{i}".encode())])
if producer.flush(30) != 0:
    sys.exit("could not deliver everything")
print("ok")
