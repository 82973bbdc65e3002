"""Topic configs through librdkafka's AdminClient, and their effect on produce.
Usage: configs_librdkafka.py BOOTSTRAP"""
import sys
import time

from confluent_kafka import Consumer, KafkaError, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import (AdminClient, AlterConfigOpType, ConfigEntry, ConfigResource,
                                   NewTopic, ResourceType)

bootstrap = sys.argv[1]
admin = AdminClient({"bootstrap.servers": bootstrap})


def done(futures):
    return {key: future.result(timeout=30) for key, future in futures.items()}


def describe(topic):
    resource = ConfigResource(ResourceType.TOPIC, topic)
    return list(done(admin.describe_configs([resource])).values())[0]


done(admin.create_topics([NewTopic("cfg", 1, 1, config={"max.message.bytes": "2000", "retention.ms": "3600000"})]))
configs = describe("cfg")
if configs["max.message.bytes"].value != "2000" or configs["retention.ms"].value != "3600000":
    sys.exit(f"created configs not applied: {configs['max.message.bytes']}, {configs['retention.ms']}")
if configs["segment.bytes"].value != "1073741824" or not configs["segment.bytes"].is_default:
    sys.exit(f"segment.bytes should be the default: {configs['segment.bytes']}")

try:
    done(admin.create_topics([NewTopic("cfg-bad", 1, 1, config={"retention.ms": "soon"})]))
    sys.exit("an invalid config was accepted")
except KafkaException as error:
    if error.args[0].code() != KafkaError.INVALID_CONFIG:
        sys.exit(f"wrong error for an invalid config: {error}")

# A record over max.message.bytes is refused with MSG_SIZE_TOO_LARGE; a small one lands.
errors = []
producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "message.max.bytes": 100000})
# Separate flushes: in one batch the small record would share the big one's fate.
producer.produce("cfg", value=b"x" * 5000, on_delivery=lambda err, msg: errors.append(err))
producer.flush(15)
producer.produce("cfg", value=b"small", on_delivery=lambda err, msg: errors.append(err))
producer.flush(15)
codes = [e.code() if e else None for e in errors]
if KafkaError.MSG_SIZE_TOO_LARGE not in codes or None not in codes:
    sys.exit(f"delivery results {codes}")

# Incremental alter: LogAppendTime, then append a cleanup policy.
resource = ConfigResource(ResourceType.TOPIC, "cfg", incremental_configs=[
    ConfigEntry("message.timestamp.type", "LogAppendTime", incremental_operation=AlterConfigOpType.SET),
    ConfigEntry("cleanup.policy", "compact", incremental_operation=AlterConfigOpType.APPEND),
])
done(admin.incremental_alter_configs([resource]))
configs = describe("cfg")
if configs["message.timestamp.type"].value != "LogAppendTime" or configs["cleanup.policy"].value != "delete,compact":
    sys.exit(f"incremental alter not applied: {configs['message.timestamp.type']}, {configs['cleanup.policy']}")

before = int(time.time() * 1000)
producer.produce("cfg", value=b"stamped", timestamp=1_000)
producer.flush(15)
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "cfg", "enable.auto.commit": False})
consumer.assign([TopicPartition("cfg", 0, 1)])
message = None
deadline = time.time() + 15
while message is None and time.time() < deadline:
    message = consumer.poll(0.5)
consumer.close()
kind, stamp = message.timestamp()
if message.value() != b"stamped" or stamp < before:
    sys.exit(f"LogAppendTime not applied: type {kind}, timestamp {stamp}")

print("ok configs")
