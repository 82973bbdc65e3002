"""Transactions as users write them, with confluent-kafka (librdkafka).
Usage: transactions_librdkafka.py MODE BOOTSTRAP
  commit-abort   transactions that commit and abort, interleaved with a plain producer:
                 read_committed sees exactly the committed records and the plain ones, in
                 order; read_uncommitted sees everything; a second instance fences the first.
  process        consume-transform-produce with send_offsets_to_transaction; the processor
                 is killed with SIGKILL mid-run and restarted: every input lands once.
  processor      (run by `process`) the processor itself.
  open           commits one transaction, then leaves another open (records flushed) and
                 prints "open" before waiting to be killed along with the broker.
  resume         after the broker restarted: the committed transaction is visible, the open
                 one is not; a new instance aborts it, and its own transaction commits."""
import os
import signal
import subprocess
import sys
import time

from confluent_kafka import Consumer, KafkaException, Producer, TopicPartition
from confluent_kafka.admin import AdminClient, NewTopic

mode, bootstrap = sys.argv[1], sys.argv[2]


def create(topic, partitions):
    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(topic, partitions, 1)])[topic].result(30)


def transactional(txn_id, **extra):
    config = {"bootstrap.servers": bootstrap, "transactional.id": txn_id, "linger.ms": 5}
    config.update(extra)
    producer = Producer(config)
    producer.init_transactions(30)
    return producer


def read_all(topic, partitions, isolation, idle_s=3.0, limit_s=60):
    """Every record of `topic` from the start, read until nothing new comes for `idle_s`:
    a list of (partition, offset, value) in each partition's order."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": f"reader-{isolation}",
                         "enable.auto.commit": False, "isolation.level": isolation})
    consumer.assign([TopicPartition(topic, p, 0) for p in range(partitions)])
    got = []
    last = time.time()
    deadline = time.time() + limit_s
    while time.time() - last < idle_s and time.time() < deadline:
        message = consumer.poll(0.3)
        if message is None:
            continue
        if message.error():
            sys.exit(f"consume failed: {message.error()}")
        got.append((message.partition(), message.offset(), message.value().decode()))
        last = time.time()
    consumer.close()
    return got


def values_by_partition(records):
    by = {}
    for partition, _, value in records:
        by.setdefault(partition, []).append(value)
    return by


def commit_abort():
    topic, partitions = "txn-orders", 3
    create(topic, partitions)
    producer = transactional("orders-writer")
    plain = Producer({"bootstrap.servers": bootstrap, "enable.idempotence": True})
    committed, aborted, plain_values = [], [], []
    for t in range(12):
        producer.begin_transaction()
        values = [f"t{t}-r{r}" for r in range(9)]
        for r, value in enumerate(values):
            producer.produce(topic, value=value.encode(), partition=r % partitions)
            if r % 3 == 0:
                plain_value = f"plain-{t}-{r}"
                plain.produce(topic, value=plain_value.encode(), partition=r % partitions)
                plain_values.append(plain_value)
        plain.flush(30)
        producer.flush(30)
        if t % 3 == 2:
            producer.abort_transaction(30)
            aborted.extend(values)
        else:
            producer.commit_transaction(30)
            committed.extend(values)

    # An open transaction at the end holds read_committed back at its first offset.
    producer.begin_transaction()
    producer.produce(topic, value=b"open-0", partition=0)
    producer.flush(30)

    # A second instance with the same transactional id fences the first and aborts its
    # open transaction.
    second = transactional("orders-writer")
    try:
        producer.commit_transaction(10)
        sys.exit("the fenced instance could still commit")
    except KafkaException as error:
        if not (error.args[0].fatal() or error.args[0].txn_requires_abort()):
            sys.exit(f"unexpected error for the fenced instance: {error}")
    second.begin_transaction()
    second.produce(topic, value=b"second-0", partition=1)
    second.commit_transaction(30)
    committed.append("second-0")
    aborted.append("open-0")

    rc = read_all(topic, partitions, "read_committed")
    ru = read_all(topic, partitions, "read_uncommitted")
    rc_values = [v for _, _, v in rc]
    ru_values = [v for _, _, v in ru]
    expected = sorted(committed + plain_values)
    if sorted(rc_values) != expected:
        missing = set(expected) - set(rc_values)
        extra = set(rc_values) - set(expected)
        sys.exit(f"read_committed saw {len(rc_values)} records, expected {len(expected)}; "
                 f"missing {sorted(missing)[:5]}, extra {sorted(extra)[:5]}")
    if sorted(ru_values) != sorted(committed + plain_values + aborted):
        sys.exit(f"read_uncommitted saw {len(ru_values)} records, expected "
                 f"{len(committed) + len(plain_values) + len(aborted)}")
    # Order within each partition: read_committed is read_uncommitted minus the aborted.
    aborted_set = set(aborted)
    ru_by = values_by_partition(ru)
    rc_by = values_by_partition(rc)
    for partition, values in ru_by.items():
        if [v for v in values if v not in aborted_set] != rc_by.get(partition, []):
            sys.exit(f"partition {partition}: read_committed order differs")
    print(f"committed {len(committed)}, aborted {len(aborted)}, plain {len(plain_values)}")


INPUT, OUTPUT, GROUP, INPUTS = "txn-input", "txn-output", "txn-processor", 3000


def process():
    create(INPUT, 2)
    create(OUTPUT, 2)
    feeder = Producer({"bootstrap.servers": bootstrap, "linger.ms": 5})
    for i in range(INPUTS):
        feeder.produce(INPUT, value=f"in-{i}".encode(), partition=i % 2)
    if feeder.flush(30) != 0:
        sys.exit("could not write the input")
    script = os.path.abspath(__file__)
    child = subprocess.Popen([sys.executable, script, "processor", bootstrap],
                             stdout=subprocess.PIPE, text=True)
    commits = 0
    deadline = time.time() + 60
    while commits < 3 and time.time() < deadline:
        line = child.stdout.readline()
        if not line:
            sys.exit("the processor ended before it was killed")
        if line.startswith("committed"):
            commits += 1
    # Mid-run, most likely mid-transaction.
    time.sleep(0.05)
    child.send_signal(signal.SIGKILL)
    child.wait()
    restarted = subprocess.run([sys.executable, script, "processor", bootstrap],
                               stdout=subprocess.PIPE, text=True, timeout=120)
    if restarted.returncode != 0:
        sys.exit(f"the restarted processor failed: {restarted.stdout[-500:]}")
    out = read_all(OUTPUT, 2, "read_committed")
    values = [v for _, _, v in out]
    expected = {f"out-{i}" for i in range(INPUTS)}
    if len(values) != INPUTS or set(values) != expected:
        sys.exit(f"the output holds {len(values)} records ({len(set(values))} distinct), "
                 f"expected each of {INPUTS} once")
    print(f"{INPUTS} inputs processed exactly once across a SIGKILL after {commits} commits")


def processor():
    """Copies every input record to the output, each batch in one transaction with its
    consumed offsets; ends once the group's committed offsets cover the whole input."""
    consumer = Consumer({"bootstrap.servers": bootstrap, "group.id": GROUP,
                         "enable.auto.commit": False, "auto.offset.reset": "earliest",
                         "isolation.level": "read_committed", "session.timeout.ms": 6000})
    consumer.subscribe([INPUT])
    producer = transactional("txn-processor-0")
    inputs = [TopicPartition(INPUT, p) for p in range(2)]
    deadline = time.time() + 90
    while time.time() < deadline:
        batch = consumer.consume(100, 0.5)
        batch = [m for m in batch if not m.error()]
        if not batch:
            done = consumer.committed(inputs, 10)
            if sum(max(tp.offset, 0) for tp in done) >= INPUTS:
                break
            continue
        producer.begin_transaction()
        for message in batch:
            value = message.value().decode().replace("in-", "out-")
            producer.produce(OUTPUT, value=value.encode(), partition=message.partition())
        producer.send_offsets_to_transaction(consumer.position(consumer.assignment()),
                                             consumer.consumer_group_metadata(), 30)
        producer.commit_transaction(30)
        print("committed", len(batch), flush=True)
    else:
        sys.exit("the processor ran out of time")
    consumer.close()


def open_transaction():
    create("txn-crash", 1)
    producer = transactional("crash-writer", **{"transaction.timeout.ms": 600000})
    producer.begin_transaction()
    for i in range(5):
        producer.produce("txn-crash", value=f"done-{i}".encode())
    producer.commit_transaction(30)
    producer.begin_transaction()
    for i in range(5):
        producer.produce("txn-crash", value=f"open-{i}".encode())
    producer.flush(30)
    print("open", flush=True)
    time.sleep(120)


def resume():
    before = [v for _, _, v in read_all("txn-crash", 1, "read_committed")]
    if before != [f"done-{i}" for i in range(5)]:
        sys.exit(f"read_committed after the restart saw {before}")
    everything = [v for _, _, v in read_all("txn-crash", 1, "read_uncommitted")]
    if everything != [f"done-{i}" for i in range(5)] + [f"open-{i}" for i in range(5)]:
        sys.exit(f"read_uncommitted after the restart saw {everything}")
    producer = transactional("crash-writer")
    producer.begin_transaction()
    producer.produce("txn-crash", value=b"after-0")
    producer.commit_transaction(30)
    after = [v for _, _, v in read_all("txn-crash", 1, "read_committed")]
    if after != [f"done-{i}" for i in range(5)] + ["after-0"]:
        sys.exit(f"read_committed after the new instance saw {after}")


{"commit-abort": commit_abort, "process": process, "processor": processor,
 "open": open_transaction, "resume": resume}[mode]()
if mode != "processor":
    print("ok")
