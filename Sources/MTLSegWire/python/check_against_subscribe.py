#!/usr/bin/env python3
"""For tests: reads N consecutive frames and writes each mask as raw class ids to
OUT/<sequence>.<task>.bin; prints one JSON summary line.

    python3 Sources/MTLSegWire/python/check_against_subscribe.py SOCKET N OUT
"""
import json
import os
import sys

from mtlseg_client import Subscriber

path, count, out = sys.argv[1], int(sys.argv[2]), sys.argv[3]
os.makedirs(out, exist_ok=True)
sequences, dropped, gaps = [], 0, 0
with Subscriber(path, encoding="rle", name="python check", reconnect=False) as stream:
    for frame in stream.frames():
        for task, mask in frame.masks.items():
            with open(os.path.join(out, f"{frame.sequence}.{task}.bin"), "wb") as f:
                f.write(mask)
        if sequences:
            dropped += frame.dropped
            gaps += frame.sequence - sequences[-1] - 1
        sequences.append(frame.sequence)
        if len(sequences) == count:
            break
print(json.dumps({"frames": len(sequences), "first": sequences[0], "last": sequences[-1], "dropped": dropped, "gaps": gaps,
                  "mask_width": stream.description["mask_width"], "mask_height": stream.description["mask_height"]}))
