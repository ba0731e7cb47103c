#!/usr/bin/env python3
"""For tests: the Python client against what PROTOCOL.md promises, on a daemon with max_clients = 2
whose model has the tasks "plants" and "rows" and which the test reloads when told.

    python3 Sources/MTLSegWire/python/check_protocol.py SOCKET

It prints "ready" once it streams, then expects the test to reload to a model that also has "rows"
(STREAM_CHANGED, on which it prints "changed"), then to one without it (ERROR unknown_task). The last
line is a JSON summary.
"""
import json
import socket
import struct
import sys
import time

from mtlseg_client import DaemonError, Subscriber

path = sys.argv[1]
summary = {}


def error_code(**kwargs):
    try:
        with Subscriber(path, reconnect=False, **kwargs):
            return None
    except DaemonError as error:
        return error.code


# A HELLO the client library would never send: a bad encoding, a field of the wrong type.
def raw_hello(payload: bytes):
    s = socket.socket(socket.AF_UNIX)
    s.connect(path)
    s.sendall(struct.pack("<IB", len(payload) + 1, 1) + payload)
    data = b""
    while True:
        chunk = s.recv(4096)
        if not chunk:
            break
        data += chunk
    length, kind = struct.unpack_from("<IB", data)
    return kind, json.loads(data[5:4 + length])


summary["bad_encoding"] = raw_hello(b'{"protocol": 1, "encoding": "png"}')[1]
summary["wrong_type"] = raw_hello(b'{"protocol": 1, "tasks": "rows"}')[1]
summary["unknown_task"] = error_code(tasks=["weeds"])
summary["bad_mask_size"] = raw_hello(b'{"protocol": 1, "mask_size": "640by480"}')[1]

def connected(subscriber):
    # The daemon ends the sessions refused above a moment after closing them: until then they count against max_clients.
    for attempt in range(40):
        try:
            subscriber.connect()
            return subscriber
        except DaemonError as error:
            if error.code != "server_full":
                raise
            time.sleep(0.05)
    raise RuntimeError("the refused sessions never ended")


# Masks at the source's size: the description says so, and the masks have that many pixels.
sized = connected(Subscriber(path, tasks=["plants"], mask_size="source", name="python sized", reconnect=False))
first = next(sized.frames())
summary["sized"] = [sized.description["mask_width"], sized.description["mask_height"], sized.description.get("mask_size"),
                    len(first.masks["plants"])]
sized.close()

# A control connection: no frames, STATS on request.
control = connected(Subscriber(path, tasks=[], name="python control", reconnect=False))
summary["control_tasks"] = control.description["tasks"]
stats = control.request_stats()
summary["stats_keys"] = sorted(stats)

rows = connected(Subscriber(path, tasks=["rows"], encoding="rle", name="python rows", reconnect=False))
# max_clients (2) counts the clients taking masks, not the control connection above: a second one gets in, a third is
# refused once its HELLO asks for masks; a control connection still gets in then (two connections past max_clients are
# kept for them, `control` holds one), and past those any connection is refused at accept.
second = connected(Subscriber(path, tasks=["plants"], name="python second", reconnect=False))
summary["third_client"] = error_code(name="python third")
monitor = connected(Subscriber(path, tasks=[], name="python monitor", reconnect=False))
summary["control_when_full"] = sorted(monitor.request_stats()) == summary["stats_keys"]
summary["past_control_slots"] = error_code(tasks=[], name="python one too many")
monitor.close()
second.close()
events, ages, dropped_ok = [], [], True
frames = rows.frames()
previous = None
try:
    for frame in frames:
        ages.append(frame.age_s())
        if previous is not None and frame.dropped != frame.sequence - previous - 1:
            dropped_ok = False
        previous = frame.sequence
        if frame.stream_changed:
            events.append(["stream_changed", rows.description["model"]["sha256"][:12], [t["name"] for t in rows.description["tasks"]]])
            # The test reloads again only now: two reloads before the session's next pass would reach this client as one.
            print("changed", flush=True)
        if len(ages) == 5:
            print("ready", flush=True)
except DaemonError as error:
    events.append(["error", error.code])
summary.update(events=events, frames=len(ages), oldest_s=max(ages), dropped_adds_up=dropped_ok)
print(json.dumps(summary))
