#!/usr/bin/env python3
"""Writes the seed corpus of the ttRPC frame fuzzer into corpus/ttrpc/ (the files are committed).

Each file is one fuzz input: a byte that picks how the stream is cut into reads, then the stream.
"""
import os
import struct


def frame(stream_id, ftype, data, flags=0, length=None):
    n = len(data) if length is None else length
    return struct.pack(">IIBB", n, stream_id, ftype, flags) + data


def field(num, data):
    return bytes([num << 3 | 2, len(data)]) + data


def request(service, method, payload=b"", extra=b""):
    return field(1, service) + field(2, method) + (field(3, payload) if payload else b"") + extra


seeds = {
    # containerd-shim-v2.md 2.8: Connect{id:"t1"}, its answer, and a NOT_FOUND on stream 3.
    "golden_request": frame(1, 1, request(b"containerd.task.v2.Task", b"Connect", b"\x0a\x02t1")),
    "golden_responses": frame(1, 2, b"\x12\x06\x08\x92\x21\x10\xf7\x21")
    + frame(3, 2, b"\x0a\x1a\x08\x05\x12\x16container t9 not found"),
    # timeout_nano (field 4, varint) and two metadata pairs (field 5).
    "request_timeout_metadata": frame(
        5, 1,
        request(b"cocoon.agent.v1.Agent", b"Wait", b"\x0a\x01c",
                b"\x20\x80\xa8\xd6\xb9\x07" + field(5, field(1, b"k") + field(2, b"v"))
                + field(5, field(1, b"k") + field(2, b"w")))),
    "even_stream": frame(2, 1, request(b"s", b"m")),
    "bad_envelope": frame(1, 1, b"\xff\xff\xff\xff"),
    "oversized_header": frame(7, 1, b"\x00" * 32, length=(4 << 20) + 1)
    + frame(9, 1, request(b"s", b"m")),
    "other_types": frame(1, 3, b"data", flags=1) + frame(3, 0, b"") + frame(5, 9, b"zz"),
    "truncated": frame(1, 1, request(b"s", b"method"))[:13],
    "empty_response": frame(1, 2, b"") + frame(3, 2, b"\x0a\x00"),
}

out = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "ttrpc")
os.makedirs(out, exist_ok=True)
for i, (name, stream) in enumerate(sorted(seeds.items())):
    with open(os.path.join(out, name), "wb") as f:
        f.write(bytes([i * 7 % 32]) + stream)
