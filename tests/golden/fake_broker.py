#!/usr/bin/env python3
"""A fake Kafka broker that records the request frames real clients send.

It answers just enough for a real client to produce one record to topic `golden` and consume
one record back (including a classic consumer group for KafkaJS), and saves the first frame of
every (api_key, api_version) it sees as `<fixtures>/<client>/<NN>-<ApiName>-v<version>.bin`
(request header + body, without the 4-byte size prefix), plus one line in
`<fixtures>/MANIFEST.tsv`. Those files are Spate's golden inputs for decoder tests.

Stdlib only. Listens on 127.0.0.1; every wait is bounded. The wire formats follow Apache
Kafka's message specs (clients/src/main/resources/common/message/*.json).

Usage: fake_broker.py PORT --client NAME --client-version VERSION [--port-file FILE]
PORT 0 picks a free port; --port-file receives the port once the listener is up.
"""

import argparse
import os
import socket
import struct
import sys
import threading
import time
from pathlib import Path

# ---------------------------------------------------------------------------------------------
# Cluster and protocol constants

HOST = "127.0.0.1"
NODE_ID = 0
CLUSTER_ID = "spate-golden-cluster"
TOPIC = "golden"
TOPIC_ID = bytes.fromhex("5bd1a3c2e4f64d0b9a7c1e2f3a4b5c6d")  # fixed, non-zero (Metadata v10+)
PARTITION = 0
LEADER_EPOCH = 0

# The one record every Fetch from offset 0 returns; the log's high watermark is therefore 1.
GOLDEN_KEY = b"k1"
GOLDEN_VALUE = b"hello-golden"
GOLDEN_HEADERS = [(b"h1", b"v1")]
GOLDEN_TIMESTAMP_MS = 1_700_000_000_000
HIGH_WATERMARK = 1

MAX_FRAME_BYTES = 16 * 1024 * 1024
EMPTY_FETCH_MAX_SLEEP_MS = 100
CONNECTION_IDLE_TIMEOUT_S = 60.0
AUTHORIZED_OPERATIONS_OMITTED = -(2**31)

ERROR_NONE = 0
ERROR_OFFSET_OUT_OF_RANGE = 1
ERROR_CORRUPT_MESSAGE = 2
ERROR_UNKNOWN_TOPIC_OR_PARTITION = 3
ERROR_UNSUPPORTED_VERSION = 35
ERROR_UNKNOWN_TOPIC_ID = 100

# api_key -> (name, min advertised, max advertised, first flexible version).
# OffsetForLeaderEpoch (23) is not advertised: none of the captured clients needs it.
APIS = {
    0: ("Produce", 0, 9, 9),
    1: ("Fetch", 4, 13, 12),
    2: ("ListOffsets", 1, 7, 6),
    3: ("Metadata", 0, 12, 9),
    8: ("OffsetCommit", 2, 8, 8),
    9: ("OffsetFetch", 1, 7, 6),
    10: ("FindCoordinator", 0, 3, 3),
    11: ("JoinGroup", 0, 6, 6),
    12: ("Heartbeat", 0, 4, 4),
    13: ("LeaveGroup", 0, 4, 4),
    14: ("SyncGroup", 0, 4, 4),
    18: ("ApiVersions", 0, 3, 3),
    # kafka-python >= 3.0 makes producers idempotent by default (KIP-679).
    22: ("InitProducerId", 0, 4, 2),
}
API_VERSIONS_KEY = 18


class ProtocolError(Exception):
    """The client sent bytes the fake cannot decode; the connection is closed."""


# ---------------------------------------------------------------------------------------------
# CRC32C (Castagnoli, reflected polynomial 0x82F63B78), table-driven.

def _crc32c_table():
    table = []
    for byte in range(256):
        crc = byte
        for _ in range(8):
            crc = (crc >> 1) ^ 0x82F63B78 if crc & 1 else crc >> 1
        table.append(crc)
    return table


_CRC32C_TABLE = _crc32c_table()


def crc32c(data):
    crc = 0xFFFFFFFF
    for byte in data:
        crc = _CRC32C_TABLE[(crc ^ byte) & 0xFF] ^ (crc >> 8)
    return crc ^ 0xFFFFFFFF


assert crc32c(b"123456789") == 0xE3069283, "CRC32C check value (RFC 3720)"


# ---------------------------------------------------------------------------------------------
# Primitive codecs. `flexible` switches strings, arrays and bytes to their compact forms
# (unsigned varint of length + 1) and makes tagged_fields() real (KIP-482).

class Reader:
    def __init__(self, data, flexible=False):
        self.data = data
        self.pos = 0
        self.flexible = flexible

    def _take(self, size):
        if size < 0 or self.pos + size > len(self.data):
            raise ProtocolError(f"need {size} bytes at {self.pos}, frame has {len(self.data)}")
        chunk = self.data[self.pos:self.pos + size]
        self.pos += size
        return chunk

    def _unpack(self, fmt):
        return struct.unpack(fmt, self._take(struct.calcsize(fmt)))[0]

    def i8(self):
        return self._unpack(">b")

    def i16(self):
        return self._unpack(">h")

    def i32(self):
        return self._unpack(">i")

    def i64(self):
        return self._unpack(">q")

    def boolean(self):
        return self.i8() != 0

    def uuid(self):
        return bytes(self._take(16))

    def uvarint(self):
        value = 0
        for shift in range(0, 35, 7):
            byte = self._take(1)[0]
            value |= (byte & 0x7F) << shift
            if not byte & 0x80:
                return value
        raise ProtocolError("unsigned varint longer than 5 bytes")

    def _length(self, classic):
        return self.uvarint() - 1 if self.flexible else classic()

    def string(self):
        size = self._length(self.i16)
        return None if size < 0 else self._take(size).decode("utf-8", "replace")

    def legacy_string(self):
        """An int16-length string even in flexible structs (the request header's client_id)."""
        size = self.i16()
        return None if size < 0 else self._take(size).decode("utf-8", "replace")

    def bytes_(self):
        size = self._length(self.i32)
        return None if size < 0 else bytes(self._take(size))

    def array(self, read_item):
        count = self._length(self.i32)
        if count < 0:
            return None
        if count > len(self.data):
            raise ProtocolError(f"array of {count} items in a {len(self.data)}-byte frame")
        return [read_item(self) for _ in range(count)]

    def tagged_fields(self):
        if not self.flexible:
            return
        for _ in range(self.uvarint()):
            self.uvarint()  # tag
            self._take(self.uvarint())


class Writer:
    def __init__(self, flexible=False):
        self.buf = bytearray()
        self.flexible = flexible

    def i8(self, value):
        self.buf += struct.pack(">b", value)

    def i16(self, value):
        self.buf += struct.pack(">h", value)

    def i32(self, value):
        self.buf += struct.pack(">i", value)

    def i64(self, value):
        self.buf += struct.pack(">q", value)

    def boolean(self, value):
        self.i8(1 if value else 0)

    def uuid(self, value):
        assert len(value) == 16
        self.buf += value

    def uvarint(self, value):
        assert value >= 0
        while value >= 0x80:
            self.buf.append((value & 0x7F) | 0x80)
            value >>= 7
        self.buf.append(value)

    def _length(self, size, classic):
        if self.flexible:
            self.uvarint(size + 1)
        else:
            classic(size)

    def string(self, value):
        if value is None:
            self._length(-1, self.i16)
            return
        encoded = value.encode("utf-8")
        self._length(len(encoded), self.i16)
        self.buf += encoded

    def bytes_(self, value):
        if value is None:
            self._length(-1, self.i32)
            return
        self._length(len(value), self.i32)
        self.buf += value

    def array(self, items, write_item):
        if items is None:
            self._length(-1, self.i32)
            return
        self._length(len(items), self.i32)
        for item in items:
            write_item(self, item)

    def tagged_fields(self):
        """Writes an empty tagged-field section: the fake never sets a tagged field."""
        if self.flexible:
            self.uvarint(0)


def zigzag_varint(value):
    out = bytearray()
    zigzag = (value << 1) ^ (value >> 63)
    while zigzag >= 0x80:
        out.append((zigzag & 0x7F) | 0x80)
        zigzag >>= 7
    out.append(zigzag)
    return bytes(out)


# ---------------------------------------------------------------------------------------------
# Record batch v2 (magic 2): the 61-byte header, then records.

RECORD_BATCH_HEADER_BYTES = 61
CRC_START = 21  # CRC32C covers attributes .. end of batch


def encode_record(offset_delta, timestamp_delta, key, value, headers):
    body = bytearray(b"\x00")  # attributes
    body += zigzag_varint(timestamp_delta)
    body += zigzag_varint(offset_delta)
    body += zigzag_varint(len(key)) + key
    body += zigzag_varint(len(value)) + value
    body += zigzag_varint(len(headers))
    for header_key, header_value in headers:
        body += zigzag_varint(len(header_key)) + header_key
        body += zigzag_varint(len(header_value)) + header_value
    return zigzag_varint(len(body)) + bytes(body)


def encode_record_batch(base_offset, timestamp_ms, records):
    """records: list of (key, value, headers); uncompressed, no producer id."""
    encoded = b"".join(
        encode_record(delta, 0, key, value, headers)
        for delta, (key, value, headers) in enumerate(records)
    )
    after_crc = struct.pack(
        ">hiqqqhii",
        0,                  # attributes: no compression, CreateTime, not transactional
        len(records) - 1,   # last offset delta
        timestamp_ms,       # base timestamp
        timestamp_ms,       # max timestamp
        -1,                 # producer id
        -1,                 # producer epoch
        -1,                 # base sequence
        len(records),
    ) + encoded
    batch_length = 4 + 1 + 4 + len(after_crc)  # leader epoch, magic, crc, rest
    batch = struct.pack(">qiibI", base_offset, batch_length, LEADER_EPOCH, 2, crc32c(after_crc))
    batch += after_crc
    assert len(batch) == RECORD_BATCH_HEADER_BYTES + len(encoded)
    assert crc32c(batch[CRC_START:]) == struct.unpack_from(">I", batch, 17)[0]
    return batch


GOLDEN_BATCH = encode_record_batch(
    0, GOLDEN_TIMESTAMP_MS, [(GOLDEN_KEY, GOLDEN_VALUE, GOLDEN_HEADERS)]
)


def inspect_records(records):
    """Summarizes a produce payload: record count, whether every v2 batch's CRC32C is valid
    (and the batches fill the payload exactly), the magics and the producer ids seen."""
    count, crc_ok, magics, producer_ids, pos = 0, True, set(), set(), 0
    while records is not None and pos + 17 <= len(records):
        _, size = struct.unpack_from(">qi", records, pos)
        magic = records[pos + 16]
        end = pos + 12 + size
        if size < 0 or end > len(records):
            crc_ok = False
            break
        magics.add(magic)
        if magic == 2:
            if size + 12 < RECORD_BATCH_HEADER_BYTES:
                crc_ok = False
                break
            stored_crc = struct.unpack_from(">I", records, pos + 17)[0]
            crc_ok = crc_ok and crc32c(records[pos + CRC_START:end]) == stored_crc
            producer_ids.add(struct.unpack_from(">q", records, pos + 43)[0])
            count += struct.unpack_from(">i", records, pos + 57)[0]
        else:
            count += 1  # legacy message set entry: one message (or one compressed wrapper)
        pos = end
    crc_ok = crc_ok and pos == len(records or b"")
    return count, crc_ok, sorted(magics), sorted(producer_ids)


# ---------------------------------------------------------------------------------------------
# Shared state: the produced offsets, and the classic groups (one member each).

class BrokerState:
    def __init__(self, port):
        self.port = port
        self.lock = threading.Lock()
        self.produced_records = 0
        self.next_producer_id = 1000
        self.next_member = 1
        self.group_assignments = {}   # (group, member) -> assignment bytes
        self.committed = {}           # (group, topic, partition) -> offset

    def append(self, record_count):
        with self.lock:
            base_offset = self.produced_records
            self.produced_records += record_count
            return base_offset

    def new_producer_id(self):
        with self.lock:
            self.next_producer_id += 1
            return self.next_producer_id

    def new_member_id(self, client_id):
        with self.lock:
            self.next_member += 1
            return f"{client_id or 'member'}-{self.next_member:04d}"


class RequestContext:
    def __init__(self, state, api_key, version, correlation_id, client_id):
        self.state = state
        self.api_key = api_key
        self.version = version
        self.correlation_id = correlation_id
        self.client_id = client_id
        self.notes = []


def is_known_partition(topic, partition):
    return topic == TOPIC and partition == PARTITION


# ---------------------------------------------------------------------------------------------
# Handlers: each reads its request body from `r` and writes its response body to `w`.
# Returning False means "send no response" (Produce with acks=0).

def handle_api_versions(ctx, r, w):
    if ctx.version >= 3:
        name, version = r.string(), r.string()
        r.tagged_fields()
        ctx.notes.append(f"client_software={name}/{version}")
    w.i16(ERROR_NONE)
    write_api_ranges(w)
    if ctx.version >= 1:
        w.i32(0)  # throttle
    # v3+: SupportedFeatures, FinalizedFeaturesEpoch, FinalizedFeatures and ZkMigrationReady are
    # all tagged and left out (librdkafka 2.0.2 fails to parse them: "Read underflow").
    w.tagged_fields()


def write_api_ranges(w):
    def write_range(w, item):
        key, (_, min_version, max_version, _) = item
        w.i16(key)
        w.i16(min_version)
        w.i16(max_version)
        w.tagged_fields()
    w.array(sorted(APIS.items()), write_range)


def handle_metadata(ctx, r, w):
    v = ctx.version

    def read_topic(r):
        topic_id = r.uuid() if v >= 10 else None
        name = r.string()
        r.tagged_fields()
        return TOPIC if name is None and topic_id == TOPIC_ID else name

    requested = r.array(read_topic)
    all_topics = requested is None or (v == 0 and not requested)
    names = [TOPIC] if all_topics else requested
    listed = ",".join(map(str, names)) or "none"
    ctx.notes.append("topics=" + ("all" if all_topics else listed))

    if v >= 3:
        w.i32(0)  # throttle

    def write_broker(w, _):
        w.i32(NODE_ID)
        w.string(HOST)
        w.i32(ctx.state.port)
        if v >= 1:
            w.string(None)  # rack
        w.tagged_fields()
    w.array([NODE_ID], write_broker)
    if v >= 2:
        w.string(CLUSTER_ID)
    if v >= 1:
        w.i32(NODE_ID)  # controller

    def write_partition(w, _):
        w.i16(ERROR_NONE)
        w.i32(PARTITION)
        w.i32(NODE_ID)  # leader
        if v >= 7:
            w.i32(LEADER_EPOCH)
        w.array([NODE_ID], lambda w, n: w.i32(n))  # replicas
        w.array([NODE_ID], lambda w, n: w.i32(n))  # isr
        if v >= 5:
            w.array([], lambda w, n: w.i32(n))  # offline replicas
        w.tagged_fields()

    def write_topic(w, name):
        known = name == TOPIC
        w.i16(ERROR_NONE if known else ERROR_UNKNOWN_TOPIC_OR_PARTITION)
        w.string(name)
        if v >= 10:
            w.uuid(TOPIC_ID if known else bytes(16))
        if v >= 1:
            w.boolean(False)  # is internal
        w.array([PARTITION] if known else [], write_partition)
        if v >= 8:
            w.i32(AUTHORIZED_OPERATIONS_OMITTED)
        w.tagged_fields()
    w.array(names, write_topic)
    if 8 <= v <= 10:
        w.i32(AUTHORIZED_OPERATIONS_OMITTED)  # cluster authorized operations
    w.tagged_fields()


def handle_produce(ctx, r, w):
    v = ctx.version
    transactional_id = r.string() if v >= 3 else None
    acks = r.i16()
    r.i32()  # timeout

    def read_partition(r):
        index, records = r.i32(), r.bytes_()
        r.tagged_fields()
        return index, records

    def read_topic(r):
        name, partitions = r.string(), r.array(read_partition)
        r.tagged_fields()
        return name, partitions or []

    topics = r.array(read_topic) or []
    results = []
    for name, partitions in topics:
        partition_results = []
        for index, records in partitions:
            count, crc_ok, magics, producer_ids = inspect_records(records)
            ctx.notes.append(
                f"{name}[{index}] records={count} magic={magics} producer_id={producer_ids} "
                f"crc32c={'ok' if crc_ok else 'BAD'}"
            )
            if not is_known_partition(name, index):
                partition_results.append((index, ERROR_UNKNOWN_TOPIC_OR_PARTITION, -1))
            elif not crc_ok:
                partition_results.append((index, ERROR_CORRUPT_MESSAGE, -1))
            else:
                partition_results.append((index, ERROR_NONE, ctx.state.append(count)))
        results.append((name, partition_results))
    ctx.notes.append(f"acks={acks} transactional_id={transactional_id}")
    if acks == 0:
        return False

    def write_partition(w, result):
        index, error, base_offset = result
        w.i32(index)
        w.i16(error)
        w.i64(base_offset)
        if v >= 2:
            w.i64(-1)  # log append time: topic uses CreateTime
        if v >= 5:
            w.i64(0)  # log start offset
        if v >= 8:
            w.array([], None)  # record errors
            w.string(None)  # error message
        w.tagged_fields()

    def write_topic(w, result):
        name, partition_results = result
        w.string(name)
        w.array(partition_results, write_partition)
        w.tagged_fields()
    w.array(results, write_topic)
    if v >= 1:
        w.i32(0)  # throttle
    w.tagged_fields()
    return True


def handle_fetch(ctx, r, w):
    v = ctx.version
    if v <= 14:
        r.i32()  # replica id
    max_wait_ms = r.i32()
    r.i32()  # min bytes
    if v >= 3:
        r.i32()  # max bytes
    if v >= 4:
        r.i8()  # isolation level
    if v >= 7:
        session_id, session_epoch = r.i32(), r.i32()
        ctx.notes.append(f"session={session_id}/{session_epoch}")

    def read_partition(r):
        partition = r.i32()
        if v >= 9:
            r.i32()  # current leader epoch
        fetch_offset = r.i64()
        if v >= 12:
            r.i32()  # last fetched epoch
        if v >= 5:
            r.i64()  # log start offset
        r.i32()  # partition max bytes
        r.tagged_fields()
        return partition, fetch_offset

    def read_topic(r):
        topic = r.string() if v <= 12 else r.uuid()
        partitions = r.array(read_partition) or []
        r.tagged_fields()
        return topic, partitions

    topics = r.array(read_topic) or []
    # The forgotten topics (v7+), rack id (v11+) and tagged fields that follow are not needed.

    any_records = False
    answers = []
    for topic, partitions in topics:
        name = TOPIC if topic == TOPIC_ID else topic
        partition_answers = []
        for partition, fetch_offset in partitions:
            label = name if isinstance(name, str) else f"id:{name.hex()}"
            ctx.notes.append(f"{label}[{partition}]@{fetch_offset}")
            if not is_known_partition(name, partition):
                error = ERROR_UNKNOWN_TOPIC_ID if v >= 13 else ERROR_UNKNOWN_TOPIC_OR_PARTITION
                partition_answers.append((partition, error, b""))
            elif fetch_offset == 0:
                any_records = True
                partition_answers.append((partition, ERROR_NONE, GOLDEN_BATCH))
            elif fetch_offset == HIGH_WATERMARK:
                partition_answers.append((partition, ERROR_NONE, b""))
            else:
                partition_answers.append((partition, ERROR_OFFSET_OUT_OF_RANGE, b""))
        answers.append((topic, partition_answers))
    ctx.notes.append(f"max_wait_ms={max_wait_ms}")
    if not any_records:
        # A real broker long-polls until max_wait_ms; sleeping a little keeps clients from spinning.
        time.sleep(min(max(max_wait_ms, 0), EMPTY_FETCH_MAX_SLEEP_MS) / 1000)

    if v >= 1:
        w.i32(0)  # throttle
    if v >= 7:
        w.i16(ERROR_NONE)
        w.i32(0)  # session id 0: no fetch session, every fetch is a full fetch

    def write_partition(w, answer):
        partition, error, records = answer
        w.i32(partition)
        w.i16(error)
        w.i64(HIGH_WATERMARK)
        w.i64(HIGH_WATERMARK)  # last stable offset (v4+, always here)
        if v >= 5:
            w.i64(0)  # log start offset
        w.array(None, None)  # aborted transactions (v4+): null
        if v >= 11:
            w.i32(-1)  # preferred read replica
        w.bytes_(records)
        w.tagged_fields()

    def write_topic(w, answer):
        topic, partition_answers = answer
        if v <= 12:
            w.string(topic)
        else:
            w.uuid(topic)
        w.array(partition_answers, write_partition)
        w.tagged_fields()
    w.array(answers, write_topic)
    w.tagged_fields()


def handle_list_offsets(ctx, r, w):
    v = ctx.version
    r.i32()  # replica id
    if v >= 2:
        r.i8()  # isolation level

    def read_partition(r):
        partition = r.i32()
        if v >= 4:
            r.i32()  # current leader epoch
        timestamp = r.i64()
        if v == 0:
            r.i32()  # max num offsets
        r.tagged_fields()
        return partition, timestamp

    def read_topic(r):
        name, partitions = r.string(), r.array(read_partition) or []
        r.tagged_fields()
        return name, partitions

    topics = r.array(read_topic) or []

    def write_partition_for(name):
        def write_partition(w, item):
            partition, timestamp = item
            ctx.notes.append(f"{name}[{partition}] timestamp={timestamp}")
            known = is_known_partition(name, partition)
            # -1 = latest (the high watermark), -2 = earliest; any other timestamp lands on the
            # only record, whose timestamp is older than any a client asks for.
            offset = HIGH_WATERMARK if timestamp == -1 else 0
            w.i32(partition)
            w.i16(ERROR_NONE if known else ERROR_UNKNOWN_TOPIC_OR_PARTITION)
            if v == 0:
                w.array([offset], lambda w, o: w.i64(o))
            else:
                w.i64(-1)  # timestamp
                w.i64(offset)
            if v >= 4:
                w.i32(LEADER_EPOCH)
            w.tagged_fields()
        return write_partition

    if v >= 2:
        w.i32(0)  # throttle

    def write_topic(w, item):
        name, partitions = item
        w.string(name)
        w.array(partitions, write_partition_for(name))
        w.tagged_fields()
    w.array(topics, write_topic)
    w.tagged_fields()


def handle_find_coordinator(ctx, r, w):
    v = ctx.version
    key = r.string()
    key_type = r.i8() if v >= 1 else 0
    r.tagged_fields()
    ctx.notes.append(f"key={key} key_type={key_type}")
    if v >= 1:
        w.i32(0)  # throttle
    w.i16(ERROR_NONE)
    if v >= 1:
        w.string(None)  # error message
    w.i32(NODE_ID)
    w.string(HOST)
    w.i32(ctx.state.port)
    w.tagged_fields()


def handle_join_group(ctx, r, w):
    v = ctx.version
    group = r.string()
    r.i32()  # session timeout
    if v >= 1:
        r.i32()  # rebalance timeout
    member_id = r.string()
    instance_id = r.string() if v >= 5 else None
    protocol_type = r.string()

    def read_protocol(r):
        name, metadata = r.string(), r.bytes_()
        r.tagged_fields()
        return name, metadata

    protocols = r.array(read_protocol) or []
    if not protocols:
        raise ProtocolError("JoinGroup without protocols")
    if not member_id:
        member_id = ctx.state.new_member_id(ctx.client_id)
    protocol_name, metadata = protocols[0]
    ctx.notes.append(
        f"group={group} protocol_type={protocol_type} protocols={[p for p, _ in protocols]}"
    )

    # One member: it is the leader and gets its own metadata back to run the assignor on.
    if v >= 2:
        w.i32(0)  # throttle
    w.i16(ERROR_NONE)
    w.i32(1)  # generation
    if v >= 7:
        w.string(protocol_type)
    w.string(protocol_name)
    w.string(member_id)  # leader
    if v >= 9:
        w.boolean(False)  # skip assignment
    w.string(member_id)

    def write_member(w, _):
        w.string(member_id)
        if v >= 5:
            w.string(instance_id)
        w.bytes_(metadata)
        w.tagged_fields()
    w.array([member_id], write_member)
    w.tagged_fields()


def handle_sync_group(ctx, r, w):
    v = ctx.version
    group = r.string()
    generation = r.i32()
    member_id = r.string()
    if v >= 3:
        r.string()  # group instance id
    protocol_type = r.string() if v >= 5 else None
    protocol_name = r.string() if v >= 5 else None

    def read_assignment(r):
        member, assignment = r.string(), r.bytes_()
        r.tagged_fields()
        return member, assignment

    assignments = r.array(read_assignment) or []
    with ctx.state.lock:
        for member, assignment in assignments:
            ctx.state.group_assignments[(group, member)] = assignment
        mine = ctx.state.group_assignments.get((group, member_id), b"")
    ctx.notes.append(f"group={group} generation={generation} assignments={len(assignments)}")

    if v >= 1:
        w.i32(0)  # throttle
    w.i16(ERROR_NONE)
    if v >= 5:
        w.string(protocol_type)
        w.string(protocol_name)
    w.bytes_(mine)
    w.tagged_fields()


def handle_heartbeat(ctx, r, w):
    ctx.notes.append(f"group={r.string()} generation={r.i32()}")
    if ctx.version >= 1:
        w.i32(0)  # throttle
    w.i16(ERROR_NONE)
    w.tagged_fields()


def handle_leave_group(ctx, r, w):
    v = ctx.version
    group = r.string()
    if v <= 2:
        members = [(r.string(), None)]
    else:
        def read_member(r):
            member, instance = r.string(), r.string()
            if v >= 5:
                r.string()  # reason
            r.tagged_fields()
            return member, instance
        members = r.array(read_member) or []
    ctx.notes.append(f"group={group} members={len(members)}")

    if v >= 1:
        w.i32(0)  # throttle
    w.i16(ERROR_NONE)
    if v >= 3:
        def write_member(w, item):
            member, instance = item
            w.string(member)
            w.string(instance)
            w.i16(ERROR_NONE)
            w.tagged_fields()
        w.array(members, write_member)
    w.tagged_fields()


def handle_offset_fetch(ctx, r, w):
    v = ctx.version  # advertised 1-7: the single-group layout

    def read_topic(r):
        name, partitions = r.string(), r.array(lambda r: r.i32()) or []
        r.tagged_fields()
        return name, partitions

    group = r.string()
    topics = r.array(read_topic)
    ctx.notes.append(f"group={group} topics={'all' if topics is None else len(topics)}")
    if topics is None:
        with ctx.state.lock:
            keys = [k for k in ctx.state.committed if k[0] == group]
        by_topic = {}
        for _, topic, partition in keys:
            by_topic.setdefault(topic, []).append(partition)
        topics = sorted(by_topic.items())

    def write_partition_for(name):
        def write_partition(w, partition):
            with ctx.state.lock:
                offset = ctx.state.committed.get((group, name, partition), -1)
            w.i32(partition)
            w.i64(offset)
            if v >= 5:
                w.i32(-1)  # committed leader epoch
            w.string("")  # metadata
            w.i16(ERROR_NONE)
            w.tagged_fields()
        return write_partition

    def write_topic(w, item):
        name, partitions = item
        w.string(name)
        w.array(partitions, write_partition_for(name))
        w.tagged_fields()

    if v >= 3:
        w.i32(0)  # throttle
    w.array(topics, write_topic)
    if v >= 2:
        w.i16(ERROR_NONE)
    w.tagged_fields()


def handle_offset_commit(ctx, r, w):
    v = ctx.version  # advertised 2-8
    group = r.string()
    if v >= 1:
        r.i32()  # generation id or member epoch
        r.string()  # member id
    if v >= 7:
        r.string()  # group instance id
    if 2 <= v <= 4:
        r.i64()  # retention time

    def read_partition(r):
        partition, offset = r.i32(), r.i64()
        if v >= 6:
            r.i32()  # committed leader epoch
        if v == 1:
            r.i64()  # commit timestamp
        r.string()  # metadata
        r.tagged_fields()
        return partition, offset

    def read_topic(r):
        name, partitions = r.string(), r.array(read_partition) or []
        r.tagged_fields()
        return name, partitions

    topics = r.array(read_topic) or []
    with ctx.state.lock:
        for name, partitions in topics:
            for partition, offset in partitions:
                ctx.state.committed[(group, name, partition)] = offset
                ctx.notes.append(f"{group}:{name}[{partition}]={offset}")

    if v >= 3:
        w.i32(0)  # throttle

    def write_partition(w, item):
        w.i32(item[0])
        w.i16(ERROR_NONE)
        w.tagged_fields()

    def write_topic(w, item):
        name, partitions = item
        w.string(name)
        w.array(partitions, write_partition)
        w.tagged_fields()
    w.array(topics, write_topic)
    w.tagged_fields()


def handle_init_producer_id(ctx, r, w):
    v = ctx.version
    transactional_id = r.string()
    r.i32()  # transaction timeout
    if v >= 3:
        r.i64()  # producer id
        r.i16()  # producer epoch
    r.tagged_fields()
    ctx.notes.append(f"transactional_id={transactional_id}")
    w.i32(0)  # throttle
    w.i16(ERROR_NONE)
    w.i64(ctx.state.new_producer_id())
    w.i16(0)  # producer epoch
    w.tagged_fields()


HANDLERS = {
    0: handle_produce,
    1: handle_fetch,
    2: handle_list_offsets,
    3: handle_metadata,
    8: handle_offset_commit,
    9: handle_offset_fetch,
    10: handle_find_coordinator,
    11: handle_join_group,
    12: handle_heartbeat,
    13: handle_leave_group,
    14: handle_sync_group,
    18: handle_api_versions,
    22: handle_init_producer_id,
}
assert set(HANDLERS) == set(APIS)


# ---------------------------------------------------------------------------------------------
# Request dispatch and recording

def api_name(api_key):
    return APIS[api_key][0] if api_key in APIS else f"ApiKey{api_key}"


def is_flexible(api_key, version):
    return api_key in APIS and version >= APIS[api_key][3]


def is_advertised(api_key, version):
    return api_key in APIS and APIS[api_key][1] <= version <= APIS[api_key][2]


def handle_frame(state, frame):
    """Returns (response frame without size prefix or None, header dict, note)."""
    r = Reader(frame)
    api_key, version, correlation_id = r.i16(), r.i16(), r.i32()
    client_id = r.legacy_string()
    ctx = RequestContext(state, api_key, version, correlation_id, client_id)
    flexible = is_flexible(api_key, version)
    header = {"api_key": api_key, "api_version": version, "client_id": client_id,
              "request_header_version": 2 if flexible else 1}

    if not is_advertised(api_key, version):
        if api_key != API_VERSIONS_KEY:
            raise ProtocolError(f"{api_name(api_key)} v{version} was never advertised")
        # KIP-511: answer with the ranges in a v0 body so the client can retry lower.
        w = Writer(flexible=False)
        w.i16(ERROR_UNSUPPORTED_VERSION)
        write_api_ranges(w)
        note = "unsupported version: answered UNSUPPORTED_VERSION(35) with a v0 body"
        return struct.pack(">i", correlation_id) + bytes(w.buf), header, note

    r.flexible = flexible
    r.tagged_fields()  # request header v2
    w = Writer(flexible=flexible)
    respond = HANDLERS[api_key](ctx, r, w)
    note = "; ".join([f"hdr=v{header['request_header_version']} client_id={client_id}"]
                     + ctx.notes)
    if respond is False:
        return None, header, note
    # Response header v1 (tagged fields) for flexible versions, except ApiVersions: always v0.
    response_header = struct.pack(">i", correlation_id)
    if flexible and api_key != API_VERSIONS_KEY:
        response_header += b"\x00"
    return response_header + bytes(w.buf), header, note


class Recorder:
    """Saves the first frame of each (api_key, api_version) and indexes it in MANIFEST.tsv."""

    MANIFEST_COLUMNS = ["client", "client_version", "file", "api_key", "api_version", "note"]

    def __init__(self, fixtures_dir, client, client_version):
        self.fixtures_dir = Path(fixtures_dir)
        self.client_dir = self.fixtures_dir / client
        self.client = client
        self.client_version = client_version
        self.lock = threading.Lock()
        self.seen = set()
        self.client_dir.mkdir(parents=True, exist_ok=True)

    def record(self, api_key, api_version, frame, note):
        with self.lock:
            if (api_key, api_version) in self.seen:
                return
            self.seen.add((api_key, api_version))
            sequence = len(self.seen)
            file_name = f"{sequence:02d}-{api_name(api_key)}-v{api_version}.bin"
            (self.client_dir / file_name).write_bytes(frame)
            manifest = self.fixtures_dir / "MANIFEST.tsv"
            row = [self.client, self.client_version, f"{self.client}/{file_name}",
                   str(api_key), str(api_version), note]
            with open(manifest, "a", encoding="utf-8") as out:
                if out.tell() == 0:
                    out.write("\t".join(self.MANIFEST_COLUMNS) + "\n")
                out.write("\t".join(clean_cell(cell) for cell in row) + "\n")


def clean_cell(cell):
    return " ".join(str(cell).split())


def recv_exact(conn, size):
    chunks, remaining = [], size
    while remaining:
        chunk = conn.recv(min(remaining, 1 << 16))
        if not chunk:
            return None
        chunks.append(chunk)
        remaining -= len(chunk)
    return b"".join(chunks)


def log(message):
    print(f"fake-broker {time.strftime('%H:%M:%S')} {message}", file=sys.stderr, flush=True)


def serve_connection(conn, peer, state, recorder):
    conn.settimeout(CONNECTION_IDLE_TIMEOUT_S)
    with conn:
        while True:
            try:
                size_prefix = recv_exact(conn, 4)
                if size_prefix is None:
                    return
                (size,) = struct.unpack(">i", size_prefix)
                if not 8 <= size <= MAX_FRAME_BYTES:
                    log(f"{peer}: bad frame size {size}; closing")
                    return
                frame = recv_exact(conn, size)
                if frame is None:
                    return
            except OSError as error:
                log(f"{peer}: {error}; closing")
                return
            try:
                response, header, note = handle_frame(state, frame)
            except (ProtocolError, struct.error, UnicodeDecodeError) as error:
                log(f"{peer}: cannot handle request ({error}); closing")
                if len(frame) >= 4:
                    api_key, version = struct.unpack_from(">hh", frame)
                    recorder.record(api_key, version, frame, f"fake could not handle: {error}")
                return
            recorder.record(header["api_key"], header["api_version"], frame, note)
            answered = "no response" if response is None else f"{len(response)}-byte response"
            log(f"{peer}: {api_name(header['api_key'])} v{header['api_version']} {answered}; {note}")
            if response is not None:
                try:
                    conn.sendall(struct.pack(">i", len(response)) + response)
                except OSError as error:
                    log(f"{peer}: {error}; closing")
                    return


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("port", type=int, help="TCP port on 127.0.0.1 (0 picks a free one)")
    parser.add_argument("--client", required=True, help="fixture directory name, e.g. librdkafka")
    parser.add_argument("--client-version", required=True, help="recorded in MANIFEST.tsv")
    parser.add_argument("--fixtures", default=str(Path(__file__).resolve().parent / "fixtures"))
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--lifetime-seconds", type=float, default=300.0,
                        help="exit after this long even if nobody stops the fake")
    args = parser.parse_args()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, args.port))
    listener.listen(64)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    state = BrokerState(port)
    recorder = Recorder(args.fixtures, args.client, args.client_version)
    if args.port_file:
        temporary = f"{args.port_file}.tmp"
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(f"{port}\n")
        os.replace(temporary, args.port_file)
    log(f"listening on {HOST}:{port} for client {args.client} ({args.client_version})")

    deadline = time.monotonic() + args.lifetime_seconds
    while time.monotonic() < deadline:
        try:
            conn, peer = listener.accept()
        except socket.timeout:
            continue
        threading.Thread(
            target=serve_connection, args=(conn, f"{peer[0]}:{peer[1]}", state, recorder),
            daemon=True,
        ).start()
    log("lifetime over; exiting")
    listener.close()


if __name__ == "__main__":
    main()
