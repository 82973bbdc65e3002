"""A consumer group of separate confluent-kafka processes on a 6-partition topic while a
producer keeps writing: 3 members share the partitions, a 4th joins, one leaves cleanly, one is
SIGKILLed (its partitions move after the session timeout). Every member commits after
processing. At the end every produced record has been consumed at least once.
With `consumer`: the same on the KIP-848 protocol (group.protocol=consumer); with
`cooperative`: on the classic protocol with the client-side cooperative-sticky assignor
(incremental rebalances).
With `static`: two static members (group.instance.id); one restarts within the session
timeout and gets its partitions back without the other noticing a rebalance.
Usage: group_librdkafka.py BOOTSTRAP [consumer|cooperative|static]   (the orchestrator)
       group_librdkafka.py BOOTSTRAP worker DIR NAME PROTOCOL [INSTANCE_ID]"""
import json
import os
import signal
import subprocess
import sys
import threading
import time

from confluent_kafka import Consumer, KafkaException, Producer
from confluent_kafka.admin import AdminClient, NewTopic

bootstrap = sys.argv[1]
TOPIC, GROUP, PARTITIONS = "team", "team-workers", 6


def worker(directory, name, protocol, instance=None):
    stopping = []
    signal.signal(signal.SIGTERM, lambda *_: stopping.append(True))
    status = os.path.join(directory, f"{name}.assigned")

    assigns = []
    held = set()

    def publish(partitions, assigned):
        # Callbacks name what changed: everything for the classic (eager) protocol, only
        # the increment for the consumer protocol.
        if assigned:
            assigns.append(partitions)
            held.update(partitions)
        else:
            held.difference_update(partitions)
        with open(status + ".tmp", "w") as out:
            json.dump({"partitions": sorted(held), "assigns": len(assigns)}, out)
        os.replace(status + ".tmp", status)

    config = {
        "bootstrap.servers": bootstrap,
        "group.id": GROUP,
        "client.id": name,
        "auto.offset.reset": "earliest",
        "enable.auto.commit": False,
    }
    if protocol == "consumer":
        # The coordinator sets the session timeout and heartbeat interval.
        config["group.protocol"] = "consumer"
    else:
        config.update({"session.timeout.ms": 6000, "heartbeat.interval.ms": 500})
    if protocol == "cooperative":
        config["partition.assignment.strategy"] = "cooperative-sticky"
    if instance:
        config["group.instance.id"] = instance
    consumer = Consumer(config)
    consumer.subscribe(
        [TOPIC],
        on_assign=lambda c, ps: publish([p.partition for p in ps], True),
        on_revoke=lambda c, ps: publish([p.partition for p in ps], False),
        on_lost=lambda c, ps: publish([p.partition for p in ps], False),
    )
    with open(os.path.join(directory, f"{name}.consumed"), "a") as log:
        while not stopping:
            message = consumer.poll(0.2)
            if message is None:
                continue
            if message.error():
                print(f"{name}: {message.error()}", file=sys.stderr)
                continue
            log.write(f"{message.value().decode()}\n")
            log.flush()
            # Commit after processing: a restart resumes after this record, never before it.
            # A commit during a rebalance fails (REBALANCE_IN_PROGRESS, as Kafka answers);
            # the record may then be consumed again, never skipped.
            try:
                consumer.commit(message=message, asynchronous=False)
            except KafkaException as error:
                print(f"{name}: commit failed: {error}", file=sys.stderr)
    consumer.close()


def status(directory, name):
    try:
        with open(os.path.join(directory, f"{name}.assigned")) as saved:
            return json.load(saved)
    except (FileNotFoundError, json.JSONDecodeError):
        return {"partitions": [], "assigns": 0}


def assignments(directory, names):
    return {name: status(directory, name)["partitions"] for name in names}


def wait_for_coverage(directory, names, what, timeout_s=40):
    """Waits until `names` together hold every partition exactly once, each at least one."""
    deadline = time.time() + timeout_s
    while time.time() < deadline:
        found = assignments(directory, names)
        held = sorted(p for ps in found.values() for p in ps)
        if held == list(range(PARTITIONS)) and all(found.values()):
            return found
        time.sleep(0.2)
    sys.exit(f"{what}: the partitions never settled on {names}: {assignments(directory, names)}")


def stop_all(workers):
    for process in workers.values():
        if process.poll() is None:
            process.send_signal(signal.SIGTERM)
    for process in workers.values():
        try:
            process.wait(20)
        except subprocess.TimeoutExpired:
            process.kill()


def orchestrate(protocol):
    import tempfile

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC].result(30)
    directory = tempfile.mkdtemp(prefix="spate-group-")
    produced = []
    done = threading.Event()

    def produce():
        producer = Producer({"bootstrap.servers": bootstrap, "acks": "all", "linger.ms": 5})
        i = 0
        while not done.is_set():
            value = f"record-{i}"
            producer.produce(TOPIC, value=value.encode(), partition=i % PARTITIONS)
            produced.append(value)
            i += 1
            producer.poll(0)
            time.sleep(0.02)
        if producer.flush(30) != 0:
            sys.exit("the producer could not deliver everything")

    producing = threading.Thread(target=produce)
    producing.start()
    workers = {}

    def start(name):
        workers[name] = subprocess.Popen([sys.executable, __file__, bootstrap, "worker", directory, name, protocol])

    try:
        for name in ["a", "b", "c"]:
            start(name)
        found = wait_for_coverage(directory, ["a", "b", "c"], "3 members")
        print("3 members:", found)
        start("d")
        found = wait_for_coverage(directory, ["a", "b", "c", "d"], "a 4th member joined")
        print("4 members:", found)
        workers["b"].send_signal(signal.SIGTERM)
        if workers["b"].wait(30) != 0:
            sys.exit("member b did not close cleanly")
        found = wait_for_coverage(directory, ["a", "c", "d"], "b left")
        print("b left:", found)
        killed_at = time.time()
        workers["c"].kill()
        workers["c"].wait(10)
        found = wait_for_coverage(directory, ["a", "d"], "c was killed")
        print(f"c killed, partitions moved after {time.time() - killed_at:.1f} s:", found)
        time.sleep(1)
        done.set()
        producing.join()
        deadline = time.time() + 30
        missing = set(produced)
        while time.time() < deadline:
            consumed = set()
            for name in "abcd":
                try:
                    with open(os.path.join(directory, f"{name}.consumed")) as log:
                        consumed.update(line.strip() for line in log)
                except FileNotFoundError:
                    pass
            missing = set(produced) - consumed
            if not missing:
                break
            time.sleep(0.5)
        if missing:
            sys.exit(f"{len(missing)} of {len(produced)} records were never consumed, e.g. {sorted(missing)[:5]}")
        print(f"all {len(produced)} records consumed")
        # The members still running never failed (a failed commit would end one).
        for name in ["a", "d"]:
            workers[name].send_signal(signal.SIGTERM)
            if workers[name].wait(30) != 0:
                sys.exit(f"member {name} failed")
    finally:
        done.set()
        stop_all(workers)
    print("ok")


def static():
    import tempfile

    admin = AdminClient({"bootstrap.servers": bootstrap})
    admin.create_topics([NewTopic(TOPIC, PARTITIONS, 1)])[TOPIC].result(30)
    directory = tempfile.mkdtemp(prefix="spate-static-")
    workers = {}

    def start(name):
        workers[name] = subprocess.Popen(
            [sys.executable, __file__, bootstrap, "worker", directory, name, "classic", f"instance-{name}"]
        )

    try:
        start("a")
        # a joins first and leads; b follows.
        wait_for_coverage(directory, ["a"], "a alone")
        start("b")
        before = wait_for_coverage(directory, ["a", "b"], "two static members")
        a_assigns = status(directory, "a")["assigns"]
        print("two static members:", before)
        # A static member leaves no LeaveGroup behind when it closes.
        workers["b"].send_signal(signal.SIGTERM)
        if workers["b"].wait(30) != 0:
            sys.exit("member b did not close cleanly")
        os.remove(os.path.join(directory, "b.assigned"))
        start("b")
        after = wait_for_coverage(directory, ["a", "b"], "b came back")
        if after != before:
            sys.exit(f"b came back to a different assignment: {before} then {after}")
        time.sleep(2)
        if status(directory, "a")["assigns"] != a_assigns or assignments(directory, ["a", "b"]) != before:
            sys.exit(f"a went through a rebalance: {status(directory, 'a')}")
        print("b restarted with its partitions, without a rebalance:", after)
    finally:
        stop_all(workers)
    print("ok")


if len(sys.argv) > 2 and sys.argv[2] == "worker":
    worker(sys.argv[3], sys.argv[4], sys.argv[5], sys.argv[6] if len(sys.argv) > 6 else None)
elif len(sys.argv) > 2 and sys.argv[2] == "static":
    static()
else:
    orchestrate(sys.argv[2] if len(sys.argv) > 2 else "classic")
