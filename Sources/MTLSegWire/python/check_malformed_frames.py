#!/usr/bin/env python3
"""For tests: the Python client turns a FRAME that breaks PROTOCOL.md into ProtocolError (the one exception a
consumer catches for a daemon that misbehaves), never into struct.error, ValueError or a mask of the wrong size.

    python3 Sources/MTLSegWire/python/check_malformed_frames.py

No daemon: each FRAME payload is handed to the client's decoder as if read from the socket, for a stream of two
tasks with 4x2 masks. A well-formed FRAME first, so that a decoder refusing everything fails too. The last line is
a JSON summary: for each case, the exception's class name (or "ok").
"""
import json
import struct

from mtlseg_client import ProtocolError, Subscriber

WIDTH, HEIGHT = 4, 2
PIXELS = WIDTH * HEIGHT
subscriber = Subscriber("/nonexistent.sock", reconnect=False)
subscriber.description = {"mask_width": WIDTH, "mask_height": HEIGHT, "latencies": ["inference"],
                          "tasks": [{"index": 0, "name": "plants"}, {"index": 1, "name": "rows"}]}


def frame(masks, latencies=(1500,), tail=b""):
    """A FRAME payload: sequence, times, dropped, latencies, then (task, encoding, bytes) per mask."""
    p = struct.pack("<QQQIB", 7, 1, 2, 0, len(latencies)) + struct.pack(f"<{len(latencies)}I", *latencies)
    p += struct.pack("<B", len(masks))
    for task, encoding, data in masks:
        p += struct.pack("<BBI", task, encoding, len(data)) + data
    return p + tail


raw = bytes(range(PIXELS))
rle = bytes((1,)) + struct.pack("<H", PIXELS)  # one run of class 1 over the whole mask
cases = {
    "well_formed": frame([(0, 0, raw), (1, 1, rle)]),
    "cut_in_header": frame([(0, 0, raw), (1, 0, raw)])[:20],
    "cut_in_latencies": frame([], latencies=(1, 2, 3))[:33],
    "mask_cut_short": frame([(0, 0, raw), (1, 0, raw)])[:-3],
    "raw_mask_too_small": frame([(0, 0, raw[:-1]), (1, 0, raw)]),
    "rle_runs_too_short": frame([(0, 0, raw), (1, 1, bytes((1,)) + struct.pack("<H", PIXELS - 1))]),
    "rle_partial_run": frame([(0, 0, raw), (1, 1, rle + b"\x01")]),
    "rle_zero_run": frame([(0, 0, raw), (1, 1, rle + b"\x01\x00\x00")]),
    "unknown_task": frame([(0, 0, raw), (5, 0, raw)]),
    "task_twice": frame([(0, 0, raw), (0, 0, raw)]),
    "one_mask_missing": frame([(0, 0, raw)]),
    "unknown_encoding": frame([(0, 0, raw), (1, 9, raw)]),
    "bytes_after_last_mask": frame([(0, 0, raw), (1, 0, raw)], tail=b"\x00"),
}
summary = {}
for name, payload in cases.items():
    try:
        decoded = subscriber._frame(payload)
        summary[name] = "ok" if all(len(m) == PIXELS for m in decoded.masks.values()) else "wrong mask size"
    except Exception as error:  # the check: which class came out
        summary[name] = type(error).__name__
print(json.dumps(summary))
