"""Admin operations through librdkafka's AdminClient: create topics (and refuse a duplicate),
describe the cluster, add partitions, delete records, delete topics.
Usage: admin_librdkafka.py BOOTSTRAP"""
import sys

from confluent_kafka import Consumer, KafkaError, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewPartitions, NewTopic

bootstrap = sys.argv[1]
admin = AdminClient({"bootstrap.servers": bootstrap})


def wait(futures):
    return {key: future.result(timeout=30) for key, future in futures.items()}


wait(admin.create_topics([NewTopic("admin-a", num_partitions=3, replication_factor=1), NewTopic("admin-b", 1, 1)]))
try:
    wait(admin.create_topics([NewTopic("admin-a", 1, 1)]))
    sys.exit("a duplicate topic was created")
except Exception as error:  # confluent-kafka raises KafkaException wrapping the KafkaError
    if error.args[0].code() != KafkaError.TOPIC_ALREADY_EXISTS:
        sys.exit(f"wrong error for a duplicate: {error}")

metadata = admin.list_topics(timeout=10)
if len(metadata.topics["admin-a"].partitions) != 3:
    sys.exit(f"admin-a has {len(metadata.topics['admin-a'].partitions)} partitions")
cluster = admin.describe_cluster().result(timeout=10)
if len(cluster.nodes) != 1:
    sys.exit(f"cluster nodes: {cluster.nodes}")

wait(admin.create_partitions([NewPartitions("admin-a", 5)]))
if len(admin.list_topics(timeout=10).topics["admin-a"].partitions) != 5:
    sys.exit("partitions were not added")

producer = Producer({"bootstrap.servers": bootstrap, "acks": "all"})
for i in range(10):
    producer.produce("admin-b", value=str(i).encode(), partition=0)
producer.flush(10)
deleted = admin.delete_records([TopicPartition("admin-b", 0, 6)])
for partition, future in deleted.items():
    low = future.result(timeout=10).low_watermark
    if low != 6:
        sys.exit(f"low watermark {low}")
consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": "admin", "enable.auto.commit": False})
low, high = consumer.get_watermark_offsets(TopicPartition("admin-b", 0), timeout=10)
consumer.close()
if (low, high) != (6, 10):
    sys.exit(f"watermarks after DeleteRecords: {(low, high)}")

wait(admin.delete_topics(["admin-a", "admin-b"]))
remaining = set(admin.list_topics(timeout=10).topics)
if remaining & {"admin-a", "admin-b"}:
    sys.exit(f"deleted topics still listed: {remaining}")
print("ok admin")
