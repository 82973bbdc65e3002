#!/usr/bin/env python3
"""A fake Kafka broker that records the request frames real clients send.

It answers just enough for a real client to produce one record to topic `golden` and consume
one record back (including a classic consumer group for KafkaJS), and saves the first frame of
every (api_key, api_version) it sees as `<fixtures>/<client>/<NN>-<ApiName>-v<version>.bin`
(request header + body, without the 4-byte size prefix), plus one line in
`<fixtures>/MANIFEST.tsv`. Those files are Spate's golden inputs for decoder tests.

`--record compressed` saves instead only Produce frames whose record batch is compressed, the
first of each (version, codec), as `<fixtures>/<client>/compressed/<NN>-Produce-v<version>-
<codec>.bin`. `--record none` saves nothing. `--serve-batches DIR` makes Fetch of golden[0]
serve the record batches in `DIR/*.bin` (sorted by name) instead of the built-in one-record
batch; the log's start and high watermark follow from the batches' headers.

Stdlib only, except that compressed produced batches are decompressed and their records
counted with `cramjam` when it is importable (the repo's venv has it; see
scripts/install-clients). Listens on 127.0.0.1; every wait is bounded. The wire formats follow
Apache Kafka's message specs (clients/src/main/resources/common/message/*.json).

Usage: fake_broker.py PORT [--client NAME --client-version VERSION] [--port-file FILE]
                     [--record all|compressed|none] [--serve-batches DIR]
PORT 0 picks a free port; --port-file receives the port once the listener is up.
"""

import argparse
import gzip
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

# The one record every Fetch from offset 0 returns (unless --serve-batches replaces the log);
# the log's high watermark is therefore 1.
GOLDEN_KEY = b"k1"
GOLDEN_VALUE = b"hello-golden"
GOLDEN_HEADERS = [(b"h1", b"v1")]
GOLDEN_TIMESTAMP_MS = 1_700_000_000_000

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
# Record batch v2 (magic 2): the 61-byte header, then the records, compressed as one block when
# the attributes' low three bits name a codec.

RECORD_BATCH_HEADER_BYTES = 61
CRC_START = 21  # CRC32C covers attributes .. end of batch
# Byte positions of header fields, from the start of the batch.
MAGIC_AT = 16
CRC_AT = 17
ATTRIBUTES_AT = 21
LAST_OFFSET_DELTA_AT = 23
PRODUCER_ID_AT = 43
RECORD_COUNT_AT = 57
CODEC_MASK = 0x07
CODEC_NAMES = {0: "none", 1: "gzip", 2: "snappy", 3: "lz4", 4: "zstd"}
CODEC_IDS = {name: codec_id for codec_id, name in CODEC_NAMES.items()}
MAX_DECOMPRESSED_BYTES = 64 * 1024 * 1024
XERIAL_SNAPPY_MAGIC = b"\x82SNAPPY\x00"  # then int32 version, int32 compat, then blocks
XERIAL_SNAPPY_HEADER_BYTES = 16

try:  # optional: snappy, lz4 and zstd decompression for the produce-side checks
    import cramjam
except ImportError:
    cramjam = None


class CodecUnavailable(Exception):
    """The module a codec needs is not importable; the batch is left unchecked."""


def encode_nullable(data):
    return zigzag_varint(-1) if data is None else zigzag_varint(len(data)) + data


def encode_record(offset_delta, timestamp_delta, key, value, headers):
    """key, value and header values may be None (length -1)."""
    body = bytearray(b"\x00")  # attributes
    body += zigzag_varint(timestamp_delta)
    body += zigzag_varint(offset_delta)
    body += encode_nullable(key)
    body += encode_nullable(value)
    body += zigzag_varint(len(headers))
    for header_key, header_value in headers:
        body += zigzag_varint(len(header_key)) + header_key
        body += encode_nullable(header_value)
    return zigzag_varint(len(body)) + bytes(body)


def compress(codec, data):
    """Compresses a batch's records the way Kafka expects; snappy, lz4 and zstd need the
    modules the repo's venv has (python-snappy's cramjam, lz4, zstandard)."""
    if codec == "none":
        return data
    if codec == "gzip":
        return gzip.compress(data, mtime=0)
    if codec == "snappy":  # raw snappy, as librdkafka writes it
        if cramjam is None:
            raise CodecUnavailable("no cramjam module for snappy")
        return bytes(cramjam.snappy.compress_raw(data))
    if codec == "lz4":
        import lz4.frame  # LZ4 frame format with independent blocks (KIP-57)
        return lz4.frame.compress(data, block_linked=False)
    if codec == "zstd":
        import zstandard
        return zstandard.ZstdCompressor().compress(data)
    raise ValueError(f"unknown codec {codec!r}")


def decompress(codec_id, data):
    """Raises CodecUnavailable, or ValueError (or the codec module's error) on bad input."""
    if codec_id == 0:
        return bytes(data)
    if codec_id == 1:
        out = gzip.decompress(bytes(data))
    elif codec_id in (2, 3, 4):
        if cramjam is None:
            raise CodecUnavailable(f"no cramjam module for {CODEC_NAMES[codec_id]}")
        if codec_id == 2:
            out = decompress_snappy(bytes(data))
        elif codec_id == 3:
            out = bytes(cramjam.lz4.decompress(bytes(data)))
        else:
            out = bytes(cramjam.zstd.decompress(bytes(data)))
    else:
        raise ValueError(f"unknown codec id {codec_id}")
    if len(out) > MAX_DECOMPRESSED_BYTES:
        raise ValueError(f"decompressed to {len(out)} bytes")
    return out


def decompress_snappy(data):
    """Raw snappy (librdkafka) or xerial's blocked stream (the Java client, kafka-python)."""
    if not data.startswith(XERIAL_SNAPPY_MAGIC):
        return bytes(cramjam.snappy.decompress_raw(data))
    out, pos = bytearray(), XERIAL_SNAPPY_HEADER_BYTES
    while pos < len(data):
        if pos + 4 > len(data):
            raise ValueError("truncated xerial snappy block length")
        (size,) = struct.unpack_from(">i", data, pos)
        if size < 0 or pos + 4 + size > len(data):
            raise ValueError(f"xerial snappy block of {size} bytes overruns the payload")
        out += bytes(cramjam.snappy.decompress_raw(data[pos + 4:pos + 4 + size]))
        pos += 4 + size
        if len(out) > MAX_DECOMPRESSED_BYTES:
            raise ValueError("xerial snappy stream too large")
    return bytes(out)


def encode_record_batch(base_offset, timestamp_ms, records, codec="none", timestamps=None):
    """records: list of (key, value, headers). timestamps: each record's CreateTime (default:
    all timestamp_ms; the first one is the batch's base timestamp). No producer id."""
    if timestamps is None:
        timestamps = [timestamp_ms] * len(records)
    assert len(timestamps) == len(records) and records
    base_timestamp = timestamps[0]
    encoded = b"".join(
        encode_record(delta, timestamp - base_timestamp, key, value, headers)
        for delta, ((key, value, headers), timestamp) in enumerate(zip(records, timestamps))
    )
    payload = compress(codec, encoded)
    after_crc = struct.pack(
        ">hiqqqhii",
        CODEC_IDS[codec],   # attributes: the codec, CreateTime, not transactional
        len(records) - 1,   # last offset delta
        base_timestamp,     # base timestamp
        max(timestamps),    # max timestamp
        -1,                 # producer id
        -1,                 # producer epoch
        -1,                 # base sequence
        len(records),
    ) + payload
    batch_length = 4 + 1 + 4 + len(after_crc)  # leader epoch, magic, crc, rest
    batch = struct.pack(">qiibI", base_offset, batch_length, LEADER_EPOCH, 2, crc32c(after_crc))
    batch += after_crc
    assert len(batch) == RECORD_BATCH_HEADER_BYTES + len(payload)
    assert crc32c(batch[CRC_START:]) == struct.unpack_from(">I", batch, CRC_AT)[0]
    return batch


GOLDEN_BATCH = encode_record_batch(
    0, GOLDEN_TIMESTAMP_MS, [(GOLDEN_KEY, GOLDEN_VALUE, GOLDEN_HEADERS)]
)


def read_zigzag(data, pos):
    """Reads a zigzag varint (at most 10 bytes); returns (value, next position)."""
    value = 0
    for shift in range(0, 70, 7):
        if pos >= len(data):
            raise ValueError("truncated varint")
        byte = data[pos]
        pos += 1
        value |= (byte & 0x7F) << shift
        if not byte & 0x80:
            return (value >> 1) ^ -(value & 1), pos
    raise ValueError("varint longer than 10 bytes")


def decode_records(data, count):
    """Decodes `count` records that must fill `data` exactly. Returns a list of
    (offset_delta, timestamp_delta, key, value, [(header_key, header_value)])."""
    def nullable(pos):
        size, pos = read_zigzag(data, pos)
        if size < 0:
            return None, pos
        if pos + size > len(data):
            raise ValueError(f"field of {size} bytes overruns the records")
        return bytes(data[pos:pos + size]), pos + size

    records, pos = [], 0
    for index in range(count):
        length, pos = read_zigzag(data, pos)
        end = pos + length
        if length < 0 or end > len(data):
            raise ValueError(f"record {index} of {length} bytes overruns the records")
        pos += 1  # attributes
        timestamp_delta, pos = read_zigzag(data, pos)
        offset_delta, pos = read_zigzag(data, pos)
        key, pos = nullable(pos)
        value, pos = nullable(pos)
        header_count, pos = read_zigzag(data, pos)
        if not 0 <= header_count <= length:
            raise ValueError(f"record {index} has {header_count} headers")
        headers = []
        for _ in range(header_count):
            header_key, pos = nullable(pos)
            header_value, pos = nullable(pos)
            headers.append((header_key, header_value))
        if pos != end:
            raise ValueError(f"record {index} is {length} bytes but its fields take "
                             f"{pos - end + length}")
        records.append((offset_delta, timestamp_delta, key, value, headers))
    if pos != len(data):
        raise ValueError(f"{len(data) - pos} bytes left after {count} records")
    return records


def batch_crc_ok(batch):
    return crc32c(batch[CRC_START:]) == struct.unpack_from(">I", batch, CRC_AT)[0]


class ProducedRecords:
    """What the fake read from one partition's produce payload."""

    def __init__(self):
        self.count = 0            # records the batch headers claim
        self.crc_ok = True        # every v2 CRC32C valid, and the batches fill the payload
        self.magics = set()
        self.producer_ids = set()
        self.attributes = set()   # v2 batch attributes
        self.codecs = set()       # codec names of compressed v2 batches
        self.decoded = 0          # records actually decoded (after decompression)
        self.decode_error = None  # why decoding failed (the payload is then corrupt)
        self.unchecked = None     # why some batch could not be decoded here (no codec module)

    def note(self):
        """Keeps the uncompressed notes as they were; compressed batches add attributes, codec
        and the number of records decoded from the decompressed payload."""
        parts = [f"records={self.count} magic={sorted(self.magics)} "
                 f"producer_id={sorted(self.producer_ids)}"]
        if self.codecs:
            attributes = ",".join(f"0x{a:04x}" for a in sorted(self.attributes))
            decoded = f"unchecked({self.unchecked})" if self.unchecked else str(self.decoded)
            parts.append(f"attributes=[{attributes}] codec={','.join(sorted(self.codecs))} "
                         f"decoded={decoded}")
        if self.decode_error:
            parts.append(f"decode=FAILED({self.decode_error})")
        parts.append(f"crc32c={'ok' if self.crc_ok else 'BAD'}")
        return " ".join(parts)

    @property
    def valid(self):
        return self.crc_ok and self.decode_error is None


def inspect_records(records):
    """Summarizes a produce payload: record count, whether every v2 batch's CRC32C is valid
    (and the batches fill the payload exactly), the magics and producer ids, and for v2
    batches the codec and the records decoded after decompression."""
    seen, pos = ProducedRecords(), 0
    while records is not None and pos + 17 <= len(records):
        _, size = struct.unpack_from(">qi", records, pos)
        magic = records[pos + MAGIC_AT]
        end = pos + 12 + size
        if size < 0 or end > len(records):
            seen.crc_ok = False
            break
        seen.magics.add(magic)
        if magic == 2:
            if size + 12 < RECORD_BATCH_HEADER_BYTES:
                seen.crc_ok = False
                break
            batch = records[pos:end]
            seen.crc_ok = seen.crc_ok and batch_crc_ok(batch)
            seen.producer_ids.add(struct.unpack_from(">q", batch, PRODUCER_ID_AT)[0])
            batch_count = struct.unpack_from(">i", batch, RECORD_COUNT_AT)[0]
            seen.count += batch_count
            inspect_batch_payload(seen, batch, batch_count)
        else:
            seen.count += 1  # legacy message set entry: one message (or one compressed wrapper)
        pos = end
    seen.crc_ok = seen.crc_ok and pos == len(records or b"")
    return seen


def inspect_batch_payload(seen, batch, batch_count):
    (attributes,) = struct.unpack_from(">h", batch, ATTRIBUTES_AT)
    codec_id = attributes & CODEC_MASK
    seen.attributes.add(attributes & 0xFFFF)
    if codec_id:
        seen.codecs.add(CODEC_NAMES.get(codec_id, f"unknown({codec_id})"))
    try:
        payload = decompress(codec_id, batch[RECORD_BATCH_HEADER_BYTES:])
        seen.decoded += len(decode_records(payload, batch_count))
    except CodecUnavailable as error:
        seen.unchecked = str(error)
    except Exception as error:  # pylint: disable=broad-except  (any codec module's error)
        seen.decode_error = f"{CODEC_NAMES.get(codec_id, codec_id)}: {error}"


# ---------------------------------------------------------------------------------------------
# The log of golden[0] that Fetch and ListOffsets serve.

class ServedBatch:
    def __init__(self, source, base_offset, last_offset, data):
        self.source = source
        self.base_offset = base_offset
        self.last_offset = last_offset
        self.data = data


class PartitionLog:
    """Record batches in offset order. The log starts at the first batch's base offset; the
    high watermark is one past the last batch's last offset."""

    def __init__(self, batches):
        self.batches = batches
        self.log_start = batches[0].base_offset if batches else 0
        self.high_watermark = batches[-1].last_offset + 1 if batches else 0

    def read(self, fetch_offset, max_bytes):
        """The batches holding offsets >= fetch_offset: the first one whatever its size, then
        as many whole batches as fit in max_bytes (KIP-74)."""
        chosen, size = [], 0
        for batch in self.batches:
            if batch.last_offset < fetch_offset:
                continue
            if chosen and size + len(batch.data) > max_bytes:
                break
            chosen.append(batch.data)
            size += len(batch.data)
        return b"".join(chosen)


def load_served_batches(directory):
    """Reads DIR/*.bin sorted by name: each file holds one or more whole v2 record batches
    with their offsets already stamped, in increasing offset order across the files.
    Returns (batches, warnings); raises ValueError when the files cannot be served."""
    files = sorted(Path(directory).glob("*.bin"))
    if not files:
        raise ValueError(f"no *.bin files in {directory}")
    batches, warnings = [], []
    for path in files:
        data = path.read_bytes()
        if not data:
            raise ValueError(f"{path.name}: empty file")
        pos = 0
        while pos < len(data):
            where = f"{path.name} byte {pos}"
            if len(data) - pos < RECORD_BATCH_HEADER_BYTES:
                raise ValueError(f"{where}: {len(data) - pos} bytes left, a batch header is 61")
            base_offset, batch_length = struct.unpack_from(">qi", data, pos)
            end = pos + 12 + batch_length
            if batch_length < RECORD_BATCH_HEADER_BYTES - 12 or end > len(data):
                raise ValueError(f"{where}: batch length {batch_length} but "
                                 f"{len(data) - pos - 12} bytes follow it")
            if data[pos + MAGIC_AT] != 2:
                raise ValueError(f"{where}: magic {data[pos + MAGIC_AT]}, expected 2")
            (last_offset_delta,) = struct.unpack_from(">i", data, pos + LAST_OFFSET_DELTA_AT)
            if base_offset < 0 or last_offset_delta < 0:
                raise ValueError(f"{where}: base offset {base_offset}, "
                                 f"last offset delta {last_offset_delta}")
            if batches and base_offset <= batches[-1].last_offset:
                raise ValueError(f"{where}: base offset {base_offset} is not after the previous "
                                 f"batch's last offset {batches[-1].last_offset}")
            batch = data[pos:end]
            if not batch_crc_ok(batch):
                warnings.append(f"{where}: CRC32C does not match (served as is)")
            batches.append(ServedBatch(path.name, base_offset, base_offset + last_offset_delta,
                                       batch))
            pos = end
    return batches, warnings


# ---------------------------------------------------------------------------------------------
# Shared state: the produced offsets, golden[0]'s log, and the classic groups (one member each).

class BrokerState:
    def __init__(self, port, log):
        self.port = port
        self.log = log  # PartitionLog: what Fetch and ListOffsets serve for golden[0]
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
        self.codecs = set()  # Produce: codec names of the compressed batches it carried


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
            seen = inspect_records(records)
            ctx.notes.append(f"{name}[{index}] {seen.note()}")
            ctx.codecs |= seen.codecs
            if not is_known_partition(name, index):
                partition_results.append((index, ERROR_UNKNOWN_TOPIC_OR_PARTITION, -1))
            elif not seen.valid:
                partition_results.append((index, ERROR_CORRUPT_MESSAGE, -1))
            else:
                partition_results.append((index, ERROR_NONE, ctx.state.append(seen.count)))
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
        partition_max_bytes = r.i32()
        r.tagged_fields()
        return partition, fetch_offset, partition_max_bytes

    def read_topic(r):
        topic = r.string() if v <= 12 else r.uuid()
        partitions = r.array(read_partition) or []
        r.tagged_fields()
        return topic, partitions

    topics = r.array(read_topic) or []
    # The forgotten topics (v7+), rack id (v11+) and tagged fields that follow are not needed.

    log = ctx.state.log
    any_records = False
    answers = []
    for topic, partitions in topics:
        name = TOPIC if topic == TOPIC_ID else topic
        partition_answers = []
        for partition, fetch_offset, partition_max_bytes in partitions:
            label = name if isinstance(name, str) else f"id:{name.hex()}"
            ctx.notes.append(f"{label}[{partition}]@{fetch_offset}")
            if not is_known_partition(name, partition):
                error = ERROR_UNKNOWN_TOPIC_ID if v >= 13 else ERROR_UNKNOWN_TOPIC_OR_PARTITION
                partition_answers.append((partition, error, b""))
            elif fetch_offset > log.high_watermark:
                partition_answers.append((partition, ERROR_OFFSET_OUT_OF_RANGE, b""))
            else:
                # Below the log start too: the batches that hold offsets >= fetch_offset.
                records = log.read(fetch_offset, partition_max_bytes)
                any_records = any_records or bool(records)
                partition_answers.append((partition, ERROR_NONE, records))
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
        w.i64(log.high_watermark)
        w.i64(log.high_watermark)  # last stable offset (v4+, always here)
        if v >= 5:
            w.i64(log.log_start)
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
            # log start (the built-in record is older than any timestamp a client asks for).
            log = ctx.state.log
            offset = log.high_watermark if timestamp == -1 else log.log_start
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
              "request_header_version": 2 if flexible else 1, "codecs": ctx.codecs}

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
    """Saves the first frame of each (api_key, api_version) and indexes it in MANIFEST.tsv.

    mode "all": every API, as `<client>/NN-<Api>-v<version>.bin`. Mode "compressed": only
    Produce frames carrying compressed batches, the first of each (version, codec), as
    `<client>/compressed/NN-Produce-v<version>-<codec>.bin`. Mode "none": nothing."""

    MANIFEST_COLUMNS = ["client", "client_version", "file", "api_key", "api_version", "note"]
    MODES = ("all", "compressed", "none")

    def __init__(self, fixtures_dir, client, client_version, mode="all"):
        assert mode in self.MODES
        self.mode = mode
        self.fixtures_dir = Path(fixtures_dir)
        self.client = client
        self.client_version = client_version
        self.lock = threading.Lock()
        self.seen = set()
        if mode == "all":
            self.subdir = client
        else:
            self.subdir = f"{client}/compressed"
        if mode != "none":
            (self.fixtures_dir / self.subdir).mkdir(parents=True, exist_ok=True)

    def record(self, api_key, api_version, frame, note, codecs=()):
        if self.mode == "none":
            return
        if self.mode == "compressed":
            if api_key != 0 or not codecs:
                return
            codec = "+".join(sorted(codecs))
            key, suffix = (api_key, api_version, codec), f"-{codec}"
        else:
            key, suffix = (api_key, api_version), ""
        with self.lock:
            if key in self.seen:
                return
            self.seen.add(key)
            sequence = len(self.seen)
            file_name = f"{sequence:02d}-{api_name(api_key)}-v{api_version}{suffix}.bin"
            (self.fixtures_dir / self.subdir / file_name).write_bytes(frame)
            manifest = self.fixtures_dir / "MANIFEST.tsv"
            row = [self.client, self.client_version, f"{self.subdir}/{file_name}",
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
            recorder.record(header["api_key"], header["api_version"], frame, note,
                            header["codecs"])
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
    parser.add_argument("--client", help="fixture directory name, e.g. librdkafka")
    parser.add_argument("--client-version", help="recorded in MANIFEST.tsv")
    parser.add_argument("--fixtures", default=str(Path(__file__).resolve().parent / "fixtures"))
    parser.add_argument("--record", choices=Recorder.MODES, default="all",
                        help="which request frames to save (default: the first of every API "
                             "version; compressed: compressed Produce frames, one per codec)")
    parser.add_argument("--serve-batches", metavar="DIR",
                        help="serve DIR/*.bin (record batches, offsets stamped, sorted by name) "
                             "as golden[0]'s log instead of the built-in one-record batch")
    parser.add_argument("--port-file", help="write the bound port here once listening")
    parser.add_argument("--lifetime-seconds", type=float, default=300.0,
                        help="exit after this long even if nobody stops the fake")
    args = parser.parse_args()
    if args.record != "none" and not (args.client and args.client_version):
        parser.error("--client and --client-version are required unless --record none")

    if args.serve_batches:
        try:
            batches, warnings = load_served_batches(args.serve_batches)
        except (OSError, ValueError) as error:
            log(f"cannot serve batches from {args.serve_batches}: {error}")
            sys.exit(2)
        for warning in warnings:
            log(f"warning: {warning}")
    else:
        batches = [ServedBatch("built-in", 0, 0, GOLDEN_BATCH)]
    partition_log = PartitionLog(batches)

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind((HOST, args.port))
    listener.listen(64)
    listener.settimeout(0.2)
    port = listener.getsockname()[1]
    state = BrokerState(port, partition_log)
    recorder = Recorder(args.fixtures, args.client, args.client_version, args.record)
    if args.port_file:
        temporary = f"{args.port_file}.tmp"
        with open(temporary, "w", encoding="utf-8") as out:
            out.write(f"{port}\n")
        os.replace(temporary, args.port_file)
    log(f"listening on {HOST}:{port} for client {args.client} ({args.client_version}); "
        f"golden[0] holds offsets {partition_log.log_start}..{partition_log.high_watermark - 1} "
        f"in {len(batches)} batch(es)")

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
