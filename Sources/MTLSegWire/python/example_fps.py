#!/usr/bin/env python3
"""Prints fps, the frames lost (not delivered to this client) and, per task, the share of each class, once a second.

    python3 /usr/share/doc/mtlseg/examples/example_fps.py [SOCKET]    (installed with the package)
    PYTHONPATH=Sources/MTLSegWire/python python3 Sources/MTLSegWire/python/example_fps.py [SOCKET]
"""
import sys
import time

from mtlseg_client import Subscriber

path = sys.argv[1] if len(sys.argv) > 1 else "/run/mtlseg/mtlsegd.sock"
with Subscriber(path, encoding="rle", name="example_fps") as stream:
    count, lost, started = 0, 0, time.monotonic()  # frames and frames lost in the second so far
    for frame in stream.frames():
        count += 1
        lost += frame.dropped
        elapsed = time.monotonic() - started
        if elapsed >= 1:
            shares = []
            for task in stream.description["tasks"]:
                mask = frame.masks[task["name"]]
                fractions = [mask.count(i) / len(mask) for i in range(len(task["classes"]))]
                shares.append(task["name"] + " " + "/".join(f"{100 * f:.0f}%" for f in fractions))
            print(f"{count / elapsed:5.1f} fps  lost {lost}  " + "  ".join(shares), flush=True)
            count, lost, started = 0, 0, time.monotonic()
