#!/usr/bin/env python3
"""For tests: the Python client raises at once, naming the path, for a socket path that no daemon starting can mend
(a regular file or a folder in its place, an empty or too long path), even with reconnect on; and a missing socket
with reconnect=False raises FileNotFoundError naming it.

    python3 Sources/MTLSegWire/python/check_bad_paths.py

No daemon. Each case runs under a 20 s alarm, so a client that retries forever fails instead of hanging. The last
line is a JSON summary: for each case, the exception's class name and message (or "no error").
"""
import json
import os
import signal
import sys
import tempfile

from mtlseg_client import Subscriber


class Hung(Exception):
    pass


def alarm(*_):
    raise Hung("still retrying after 20 s")


signal.signal(signal.SIGALRM, alarm)
folder = tempfile.mkdtemp(prefix="mtlseg-bad-paths-")
regular = os.path.join(folder, "a-file.sock")
with open(regular, "w") as f:
    f.write("not a socket")
cases = {
    "regular file": (regular, True),
    "folder": (folder, True),
    "empty": ("", True),
    "too long": (os.path.join(folder, "x" * 200 + ".sock"), True),
    "missing, reconnect off": (os.path.join(folder, "missing.sock"), False),
}
summary, failures = {}, []
for name, (path, reconnect) in cases.items():
    signal.alarm(20)
    try:
        with Subscriber(path, reconnect=reconnect):
            pass
        summary[name] = "no error"
    except Exception as error:  # noqa: BLE001 - the class is what is checked
        summary[name] = f"{type(error).__name__}: {error}"
    finally:
        signal.alarm(0)
    if not summary[name].startswith(("OSError", "FileNotFoundError", "ConnectionRefusedError")):
        failures.append(name)
    elif path and path not in summary[name]:
        failures.append(name + " (path not named)")
if not summary["regular file"].startswith("OSError") or "not a socket" not in summary["regular file"]:
    failures.append("regular file (not called 'not a socket')")
if not summary["missing, reconnect off"].startswith("FileNotFoundError"):
    failures.append("missing (not FileNotFoundError)")
os.remove(regular)
os.rmdir(folder)
print(json.dumps({"cases": summary, "failures": failures}))
sys.exit(1 if failures else 0)
