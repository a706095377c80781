#!/usr/bin/env python3
"""Writes the seed corpus of ingest_request_fuzz (protobuf wire format built by hand, so no
Python protobuf package is needed). Run from this folder: ./make_ingest_seeds.py"""
import os


def varint(n):
    out = bytearray()
    while True:
        b = n & 0x7F
        n >>= 7
        out.append(b | (0x80 if n else 0))
        if not n:
            return bytes(out)


def field(num, wire, payload):
    key = varint(num << 3 | wire)
    if wire == 0:
        return key + varint(payload)
    return key + varint(len(payload)) + payload


def s(num, text):
    return field(num, 2, text if isinstance(text, bytes) else text.encode())


def event(seq, host, body_field, body):
    process = s(10, "sshd") + s(12, "root")
    return (field(1, 0, seq) + field(2, 0, 1_700_000_000_000_000_000) + s(3, host) +
            field(5, 2, process) + field(body_field, 2, body))


login = s(1, "sshd") + s(2, "alice") + s(3, "198.18.0.66") + field(4, 0, 40022) + field(5, 0, 2)
exec_body = s(1, "/usr/bin/id") + s(2, "id") + s(2, "-u")
file_body = s(1, "/etc/shadow") + field(3, 0, 1)

seeds = {
    "hello": field(1, 2, s(1, "sensor-1") + s(2, "hosta") + s(4, "0.1.0")),
    "batch_login": field(2, 2, s(1, "sensor-1") + field(2, 0, 1) +
                         field(3, 2, event(1, "hosta", 20, login))),
    "batch_mixed": field(2, 2, s(1, "sensor-1") + field(2, 0, 7) +
                         field(3, 2, event(7, "hosta", 20, login)) +
                         field(3, 2, event(8, "hosta", 22, exec_body)) +
                         field(3, 2, event(9, "hostb", 21, file_body))),
    "batch_no_body": field(2, 2, s(1, "sensor-1") + field(2, 0, 1) +
                           field(3, 2, field(2, 0, 5) + s(3, "hosta"))),
    "batch_bad_utf8": field(2, 2, s(1, "sensor-1") + field(2, 0, 1) +
                            field(3, 2, event(1, b"h\xff\xfe", 20, login))),
    "batch_seq_overflow": field(2, 2, s(1, "sensor-1") + field(2, 0, (1 << 64) - 1) +
                                field(3, 2, event(0, "hosta", 20, login)) +
                                field(3, 2, event(0, "hosta", 20, login))),
}

out_dir = os.path.join(os.path.dirname(os.path.abspath(__file__)), "corpus", "ingest_request")
os.makedirs(out_dir, exist_ok=True)
for name, data in seeds.items():
    with open(os.path.join(out_dir, name), "wb") as f:
        f.write(data)
