#!/usr/bin/env python3
"""Generate protocol/src/shape/generated.rs from Kafka's JSON message specs.

The shape checker (protocol/src/shape/mod.rs) walks a request or response body
before it is handed to the kafka-protocol crate, so that a tiny frame claiming
billions of array elements is rejected before anything allocates. The walker is
driven by the table this script writes: for every API the kafka-protocol crate
knows, the valid and flexible version ranges of the request and the response,
and the field tree (wire type, present versions, nullable versions, tags).

Usage:

    generate.py SPEC_DIR --kafka-commit SHA [--kafka-release X.Y.Z] [--output PATH]
                [--check-api-keys PATH/TO/kafka-protocol/src/messages.rs]

SPEC_DIR holds the files of apache/kafka's
clients/src/main/resources/common/message/ (for example extracted with
`git show <commit>:clients/src/main/resources/common/message/X.json`).
The specs are JSON with // and /* */ comments, which are stripped first.

Which APIs and versions are included mirrors what the kafka-protocol crate
generates from the same specs:
  * every spec of type "request" or "response" with an apiKey;
  * validVersions "none" (APIs removed from Kafka) is skipped;
  * a request marked "latestVersionUnstable": true loses its highest version,
    and the API is dropped if no version remains (the crate does the same);
    responses keep their full range.
Pass --check-api-keys to compare the resulting key set with the crate's
`ApiKey` enum and fail on any difference.

The script uses only the Python standard library and fails loudly on any spec
construct it does not understand, rather than emitting a table that could
disagree with the real decoder. Its output is deterministic.
"""

import argparse
import json
import os
import re
import sys

MAX_VERSION = 32767  # i16::MAX: the upper bound of an open range like "3+".

PRIMITIVES = {
    "int8": "Int8",
    "int16": "Int16",
    "uint16": "UInt16",
    "int32": "Int32",
    "uint32": "UInt32",
    "int64": "Int64",
    "float64": "Float64",
    "bool": "Bool",
    "uuid": "Uuid",
    "string": "String",
    "bytes": "Bytes",
    "records": "Records",
}
# Types whose wire form can carry a null (length -1 / compact 0).
NULLABLE_PRIMITIVES = {"string", "bytes", "records"}

FIELD_KEYS = {
    "name", "type", "versions", "about", "fields", "default", "entityType",
    "nullableVersions", "ignorable", "mapKey", "tag", "taggedVersions",
    "zeroCopy", "flexibleVersions",
}
MESSAGE_KEYS = {
    "apiKey", "type", "listeners", "name", "validVersions", "flexibleVersions",
    "latestVersionUnstable", "deprecatedVersions", "fields", "commonStructs",
}
STRUCT_KEYS = {"name", "versions", "fields", "about"}


class SpecError(Exception):
    pass


# ---------------------------------------------------------------------------
# Reading specs

def strip_comments(text):
    """Remove // and /* */ comments that are outside JSON strings."""
    out = []
    i, n = 0, len(text)
    in_string = False
    while i < n:
        c = text[i]
        if in_string:
            out.append(c)
            if c == "\\" and i + 1 < n:
                out.append(text[i + 1])
                i += 2
                continue
            if c == '"':
                in_string = False
            i += 1
        elif c == '"':
            in_string = True
            out.append(c)
            i += 1
        elif text.startswith("//", i):
            end = text.find("\n", i)
            i = n if end < 0 else end
        elif text.startswith("/*", i):
            end = text.find("*/", i + 2)
            if end < 0:
                raise SpecError("unterminated /* comment")
            i = end + 2
        else:
            out.append(c)
            i += 1
    return "".join(out)


def parse_versions(text, where):
    """'none' | 'N' | 'N+' | 'N-M' -> (min, max) inclusive, or None when empty."""
    text = text.strip()
    if text == "none":
        return None
    m = re.fullmatch(r"(\d+)(\+|-(\d+))?", text)
    if not m:
        raise SpecError(f"{where}: bad version range {text!r}")
    low = int(m.group(1))
    if m.group(2) is None:
        high = low
    elif m.group(2) == "+":
        high = MAX_VERSION
    else:
        high = int(m.group(3))
    if low > high or high > MAX_VERSION:
        raise SpecError(f"{where}: bad version range {text!r}")
    return (low, high)


def intersect(a, b):
    if a is None or b is None:
        return None
    low, high = max(a[0], b[0]), min(a[1], b[1])
    return (low, high) if low <= high else None


def contains(outer, inner):
    """True when every version of `inner` is in `outer` (empty inner: True)."""
    if inner is None:
        return True
    return outer is not None and outer[0] <= inner[0] and inner[1] <= outer[1]


def snake(name):
    s = re.sub(r"([A-Z]+)([A-Z][a-z])", r"\1_\2", name)
    s = re.sub(r"([a-z0-9])([A-Z])", r"\1_\2", s)
    return s.lower()


# ---------------------------------------------------------------------------
# Model

class Field:
    def __init__(self, name, kind, elem, versions, nullable, tag, tagged):
        self.name = name          # snake_case
        self.kind = kind          # 'Int8'... | 'Struct'
        self.array = False
        self.elem = elem          # StructDef for Struct kinds
        self.versions = versions  # (min, max) or None
        self.nullable = nullable
        self.tag = tag            # int or None
        self.tagged = tagged      # versions in which the field is tagged


class StructDef:
    def __init__(self, name, rust_name):
        self.name = name
        self.rust_name = rust_name
        self.fields = None  # filled once parsed


class Message:
    def __init__(self, spec, path):
        self.path = path
        self.name = spec["name"]
        self.api_key = spec["apiKey"]
        self.kind = spec["type"]
        self.valid = parse_versions(spec["validVersions"], self.name)
        flexible = spec.get("flexibleVersions")
        if flexible is None and self.valid is not None:
            raise SpecError(f"{self.name}: no flexibleVersions")
        self.flexible = parse_versions(flexible or "none", self.name)
        self.unstable_latest = bool(spec.get("latestVersionUnstable", False))
        self.rust_name = snake(self.name).upper()
        self.structs = {}       # spec struct name -> StructDef
        self.struct_order = []  # StructDefs in first-definition order
        self.fields = None


def load_message(path):
    with open(path, encoding="utf-8") as f:
        text = f.read()
    try:
        spec = json.loads(strip_comments(text))
    except json.JSONDecodeError as e:
        raise SpecError(f"{path}: {e}") from e
    if spec.get("type") not in ("request", "response") or "apiKey" not in spec:
        return None
    unknown = set(spec) - MESSAGE_KEYS
    if unknown:
        raise SpecError(f"{path}: unknown message keys {sorted(unknown)}")
    msg = Message(spec, path)
    if msg.valid is None:
        return msg  # removed API; skipped by the caller
    # commonStructs are defined first so that fields can refer to them by name.
    commons = spec.get("commonStructs", [])
    for cs in commons:
        unknown = set(cs) - STRUCT_KEYS
        if unknown:
            raise SpecError(f"{msg.name}.{cs.get('name')}: unknown keys {sorted(unknown)}")
        define_struct(msg, cs["name"])
    for cs in commons:
        sd = msg.structs[cs["name"]]
        sd.fields = parse_fields(msg, cs["fields"], f"{msg.name}.{cs['name']}")
    msg.fields = parse_fields(msg, spec.get("fields", []), msg.name)
    for sd in msg.struct_order:
        if sd.fields is None:
            raise SpecError(f"{msg.name}: struct {sd.name} is used but never defined")
    return msg


def define_struct(msg, name):
    if name in msg.structs:
        raise SpecError(f"{msg.name}: struct {name} defined twice")
    sd = StructDef(name, f"{msg.rust_name}__{snake(name).upper()}")
    msg.structs[name] = sd
    msg.struct_order.append(sd)
    return sd


def parse_fields(msg, specs, where):
    fields = []
    tags = set()
    names = set()
    for fs in specs:
        field = parse_field(msg, fs, where)
        if field.name in names:
            raise SpecError(f"{where}: duplicate field {field.name}")
        names.add(field.name)
        if field.tag is not None:
            if field.tag in tags:
                raise SpecError(f"{where}: duplicate tag {field.tag}")
            tags.add(field.tag)
        fields.append(field)
    return fields


def parse_field(msg, fs, where):
    unknown = set(fs) - FIELD_KEYS
    if unknown:
        raise SpecError(f"{where}.{fs.get('name')}: unknown field keys {sorted(unknown)}")
    name = fs["name"]
    here = f"{where}.{name}"
    if "flexibleVersions" in fs:
        # Only RequestHeader.ClientId uses this; headers are not bodies.
        raise SpecError(f"{here}: field-level flexibleVersions is not supported")
    versions = parse_versions(fs["versions"], here)
    nullable = parse_versions(fs.get("nullableVersions", "none"), here)
    tag = fs.get("tag")
    if isinstance(tag, str) and tag.isdigit():
        tag = int(tag)  # some older specs quote it; Kafka's JSON reader accepts both
    tagged = None
    if tag is not None or "taggedVersions" in fs:
        if not isinstance(tag, int) or tag < 0 or "taggedVersions" not in fs:
            raise SpecError(f"{here}: a tagged field needs an integer tag and taggedVersions")
        tagged = parse_versions(fs["taggedVersions"], here)
        if not contains(versions, tagged):
            raise SpecError(f"{here}: taggedVersions outside versions")
        if not contains(msg.flexible, intersect(tagged, msg.valid)):
            raise SpecError(f"{here}: tagged in a non-flexible version")

    type_name = fs["type"]
    array = type_name.startswith("[]")
    base = type_name[2:] if array else type_name
    if base in PRIMITIVES:
        if "fields" in fs:
            raise SpecError(f"{here}: a primitive type cannot have fields")
        if base == "records" and (array or tagged is not None):
            raise SpecError(f"{here}: records may be neither an array nor tagged")
        field = Field(snake(name), PRIMITIVES[base], None, versions, nullable, tag, tagged)
        if nullable is not None and not array and base not in NULLABLE_PRIMITIVES:
            raise SpecError(f"{here}: {base} cannot be nullable")
    else:
        if not re.fullmatch(r"[A-Z][A-Za-z0-9]*", base):
            raise SpecError(f"{here}: unknown type {type_name!r}")
        if "fields" in fs:
            sd = define_struct(msg, base)
            sd.fields = parse_fields(msg, fs["fields"], f"{where}.{base}")
        elif base in msg.structs:
            sd = msg.structs[base]
        else:
            raise SpecError(f"{here}: struct type {base} has no definition")
        field = Field(snake(name), "Struct", sd, versions, nullable, tag, tagged)
        if nullable is not None and not array:
            if not contains(nullable, versions):
                # kafka-protocol decodes a struct as Option (with a 1-byte marker)
                # by its Rust type, i.e. in every version; Kafka only in nullable
                # versions. They agree only when the two ranges coincide.
                raise SpecError(f"{here}: struct nullable in only some versions")
            if tagged is not None:
                # Kafka marks a tagged nullable struct with a varint, not a byte;
                # the walker does not model that.
                raise SpecError(f"{here}: tagged nullable structs are not supported")
    field.array = array
    return field


# ---------------------------------------------------------------------------
# Selecting the APIs

def select_apis(spec_dir):
    requests, responses = {}, {}
    for fn in sorted(os.listdir(spec_dir)):
        if not fn.endswith(".json"):
            continue
        msg = load_message(os.path.join(spec_dir, fn))
        if msg is None:
            continue
        table = requests if msg.kind == "request" else responses
        if msg.api_key in table:
            raise SpecError(f"api key {msg.api_key} has two {msg.kind} specs")
        table[msg.api_key] = msg
    if set(requests) != set(responses):
        raise SpecError("request and response api keys differ: "
                        f"{sorted(set(requests) ^ set(responses))}")
    apis = []
    for key in sorted(requests):
        req, resp = requests[key], responses[key]
        if req.valid is None or resp.valid is None:
            continue  # removed from Kafka ("validVersions": "none")
        if req.unstable_latest:
            low, high = req.valid
            req.valid = (low, high - 1) if high > low else None
            if req.valid is None:
                continue
        apis.append((key, req, resp))
    return apis


def crate_api_keys(messages_rs):
    with open(messages_rs, encoding="utf-8") as f:
        text = f.read()
    m = re.search(r"pub enum ApiKey \{(.*?)\n\}", text, re.S)
    if not m:
        raise SpecError(f"{messages_rs}: no ApiKey enum found")
    return {int(k) for k in re.findall(r"=\s*(\d+)\s*,", m.group(1))}


# ---------------------------------------------------------------------------
# Emitting Rust

def rust_versions(v):
    if v is None:
        return "NONE"
    low, high = v
    return f"V({low}, {'MAX' if high == MAX_VERSION else high})"


def rust_type(field):
    base = f"T::Struct(&{field.elem.rust_name})" if field.kind == "Struct" else f"T::{field.kind}"
    return f"T::Array(&{base})" if field.array else base


def rust_field(field):
    args = [f'"{field.name}"', rust_type(field), rust_versions(field.versions),
            rust_versions(field.nullable)]
    if field.tag is None:
        return f"f({', '.join(args)})"
    return f"tf({', '.join(args)}, {field.tag}, {rust_versions(field.tagged)})"


def emit_fields(out, static_name, fields):
    out.append(f"static {static_name}: [Field; {len(fields)}] = [")
    for field in fields:
        out.append(f"    {rust_field(field)},")
    out.append("];")


def live_fields(fields, valid):
    """The fields present in at least one of the message's valid versions.

    Versions removed from Kafka (or the unstable latest request version) can
    never reach the walker, so fields that exist only there are left out.
    """
    return [field for field in fields if intersect(field.versions, valid) is not None]


def emit_message(out, msg):
    """The message's top-level fields, then every struct they reach, in DFS order."""
    out.append("")
    out.append(f"// {msg.name}")
    emit_fields(out, msg.rust_name, live_fields(msg.fields, msg.valid))
    seen = set()

    def visit(fields):
        for field in live_fields(fields, msg.valid):
            if field.kind == "Struct" and field.elem.rust_name not in seen:
                seen.add(field.elem.rust_name)
                emit_fields(out, field.elem.rust_name, live_fields(field.elem.fields, msg.valid))
                visit(field.elem.fields)

    visit(msg.fields)


def schema_depth(fields, valid, seen=()):
    """Deepest nesting below a field list, counting each struct and each array as a level,
    the way the walker counts (a top-level body is 0)."""
    deepest = 0
    for field in live_fields(fields, valid):
        depth = 0
        if field.kind == "Struct":
            if field.elem.name in seen:
                raise SpecError(f"struct {field.elem.name} contains itself")
            depth = 1 + schema_depth(field.elem.fields, valid, seen + (field.elem.name,))
        if field.array:
            depth += 1
        deepest = max(deepest, depth)
    return deepest


def render(apis, commit, release):
    out = []
    out.append("// @generated by protocol/schema/generate.py from Kafka's message specs")
    out.append("// (apache/kafka clients/src/main/resources/common/message/ at commit")
    out.append(f"// {commit}{', release ' + release if release else ''}).")
    out.append("// DO NOT EDIT BY HAND: change the generator and rerun it instead:")
    out.append("//   python3 protocol/schema/generate.py SPEC_DIR --kafka-commit SHA \\")
    out.append("//       --check-api-keys .../kafka-protocol-0.18.0/src/messages.rs")
    out.append("//")
    out.append("// One `Api` per API key kafka-protocol 0.18 knows, sorted by key; each request")
    out.append("// and response lists its top-level fields, and every struct type is one static")
    out.append("// slice referenced from the fields that use it. `V(a, b)` is an inclusive version")
    out.append("// range, `NONE` the empty one; `f` builds a field, `tf` a tagged field.")
    out.append("")
    out.append("#![cfg_attr(rustfmt, rustfmt::skip)]")
    out.append("")
    out.append("use super::{f, tf, Api, Field, Message, Type as T, Versions as V, MAX, NONE};")
    out.append("")
    depth = 0
    for _, req, resp in apis:
        for msg in (req, resp):
            depth = max(depth, schema_depth(msg.fields, msg.valid))
    out.append("/// The deepest nesting (structs and arrays) of any message body in this table.")
    out.append(f"pub(super) const MAX_SCHEMA_DEPTH: usize = {depth};")
    out.append("")
    out.append(f"pub(super) static APIS: [Api; {len(apis)}] = [")
    for key, req, resp in apis:
        out.append(f"    Api {{ key: {key}, name: \"{req.name[:-len('Request')]}\",")
        for label, msg in (("request", req), ("response", resp)):
            out.append(f"        {label}: Message {{ valid: {rust_versions(msg.valid)}, "
                       f"flexible: {rust_versions(msg.flexible)}, fields: &{msg.rust_name} }},")
        out.append("    },")
    out.append("];")
    for _, req, resp in apis:
        emit_message(out, req)
        emit_message(out, resp)
    out.append("")
    return "\n".join(out)


def main(argv):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("spec_dir", help="directory of Kafka's message/*.json specs")
    parser.add_argument("--kafka-commit", required=True,
                        help="apache/kafka commit the specs were taken from")
    parser.add_argument("--kafka-release", help="the Kafka release of that commit, e.g. 4.1.0")
    parser.add_argument("--output", default=os.path.join(
        os.path.dirname(os.path.abspath(__file__)), "..", "src", "shape", "generated.rs"))
    parser.add_argument("--check-api-keys", metavar="MESSAGES_RS",
                        help="kafka-protocol's src/messages.rs: fail unless its ApiKey set matches")
    args = parser.parse_args(argv)
    if not re.fullmatch(r"[0-9a-f]{40}", args.kafka_commit):
        parser.error("--kafka-commit must be a full 40-hex-digit commit id")
    try:
        apis = select_apis(args.spec_dir)
        if args.check_api_keys:
            ours = {key for key, _, _ in apis}
            theirs = crate_api_keys(args.check_api_keys)
            if ours != theirs:
                raise SpecError(f"api keys differ from kafka-protocol: only here "
                                f"{sorted(ours - theirs)}, only there {sorted(theirs - ours)}")
        text = render(apis, args.kafka_commit, args.kafka_release)
    except SpecError as e:
        print(f"generate.py: {e}", file=sys.stderr)
        return 1
    with open(args.output, "w", encoding="utf-8", newline="\n") as f:
        f.write(text)
    print(f"wrote {os.path.normpath(args.output)}: {len(apis)} APIs, {len(text)} bytes")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
