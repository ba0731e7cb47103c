#!/usr/bin/env python3
"""What the systemd VM checks (guest-checks.sh) ask of mtlsegd, through the Python client the package
installed (python3 finds it on its own path: nothing here adds to sys.path).

    vm_client.py frames N                      read N frames; print model, source and frame count as JSON
    vm_client.py watch SECONDS READY [--until-changed]
        read a frame, create the file READY (the caller then reloads the daemon), keep reading for
        SECONDS (or until a frame after STREAM_CHANGED); print what was seen as JSON

A refused connection (no permission) exits with status 13 and the error on stderr; any other
failure exits 1. The client never reconnects, so a dropped connection shows as an error.
"""
import json
import os
import sys
import time

from mtlseg_client import Subscriber

# MTLSEG_SOCKET: another daemon's socket, e.g. a camera's of mtlsegd@.service.
SOCKET = os.environ.get("MTLSEG_SOCKET", "/run/mtlseg/mtlsegd.sock")


def subscriber(name):
    return Subscriber(SOCKET, encoding="rle", name=name, reconnect=False, timeout=20)


def frames(count):
    with subscriber("vm frames") as stream:
        seen = 0
        for _ in stream.frames():
            seen += 1
            if seen == count:
                break
        stats = stream.request_stats()
        print(json.dumps({"frames": seen, "model": stream.description["model"], "source": stats["source"]["name"]}))


def watch(seconds, ready, until_changed):
    report = {"frames_after_ready": 0, "frames_after_change": 0, "stream_changed": False, "error": None}
    with subscriber("vm watch") as stream:
        report["sha256_before"] = stream.description["model"]["sha256"]
        frames = stream.frames()
        next(frames)
        open(ready, "w").close()
        deadline = time.monotonic() + seconds
        try:
            for frame in frames:
                report["frames_after_ready"] += 1
                if frame.stream_changed:
                    report["stream_changed"] = True
                if report["stream_changed"]:
                    report["frames_after_change"] += 1
                if time.monotonic() > deadline or (until_changed and report["frames_after_change"] >= 2):
                    break
        except Exception as error:  # the connection broke: that is the finding
            report["error"] = repr(error)
        report["sha256_after"] = stream.description["model"]["sha256"]
    print(json.dumps(report))


def main():
    try:
        if sys.argv[1] == "frames":
            frames(int(sys.argv[2]))
        elif sys.argv[1] == "watch":
            watch(float(sys.argv[2]), sys.argv[3], "--until-changed" in sys.argv[4:])
        else:
            sys.exit(__doc__)
    except PermissionError as error:
        print(f"refused: {error}", file=sys.stderr)
        sys.exit(13)


if __name__ == "__main__":
    main()
