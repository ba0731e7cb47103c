#!/usr/bin/env python3
"""For tests: the Python client's retries and reconnects against mtlsegd processes it starts and stops itself.

    python3 Sources/MTLSegWire/python/check_reconnect.py MTLSEGD FIXTURES

MTLSEGD is the daemon's binary, FIXTURES the folder with mtl2-tiny.safetensors (tasks "plants", "rows") and
mtl3-tiny.safetensors (those and "gaps"). It checks what the client's docstring promises:

- `with Subscriber(path) as stream:` waits for a socket that is not there yet, and for a daemon that is full
  (`server_full`), as `frames()` does; `reconnect=False` still raises at once;
- errors that retrying cannot fix (`unknown_task`, `bad_message`, `unsupported_protocol`) raise at once, with the
  daemon's message;
- after the daemon restarts with another model and capture size, the first frame has `stream_changed` and
  `reconnected` True and the new description (other tasks, other mask size); so does the first frame after a
  restart with the same model;
- a control connection's `request_stats()` connects again after the daemon restarts (it raised BrokenPipeError at
  every call from then on).

The last line is a JSON summary; "failures" lists what did not hold, and the exit status is 1 when any did not.
"""
import json
import os
import shutil
import signal
import subprocess
import sys
import tempfile
import threading
import time

import mtlseg_client
from mtlseg_client import DaemonError, Subscriber

daemon_binary, fixtures = sys.argv[1], sys.argv[2]
directory = tempfile.mkdtemp(prefix="mtlseg-reconnect-", dir="/tmp")  # short: a socket path has at most 107 bytes
path = os.path.join(directory, "mtlsegd.sock")
config = os.path.join(directory, "mtlsegd.toml")
with open(config, "w") as f:
    # The consumer and one more client taking masks (a third is refused with server_full; control connections, tasks=[],
    # do not count); a long client timeout, so that the consumer,
    # which reads no frames while steps 2 and 3 run, is not disconnected for it: its only reconnects are the restarts.
    f.write("[socket]\nmax_clients = 2\nclient_timeout_ms = 60000\n")
summary, failures = {}, []
daemons, timers = [], []


def check(condition: bool, what: str):
    if not condition:
        failures.append(what)


def start_daemon(model: str, size: str):
    daemons.append(subprocess.Popen(
        [daemon_binary, "--model", os.path.join(fixtures, model), "--source", "synthetic", "--size", size,
         "--fps", "20", "--threads", "1", "--socket", path, "--config", config],
        stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL))


def restart_daemon(model: str, size: str) -> int:
    """Stops the daemon and starts another; returns when the first had gone (CLOCK_MONOTONIC ns)."""
    daemons[-1].send_signal(signal.SIGTERM)
    daemons[-1].wait(timeout=20)
    stopped = time.clock_gettime_ns(time.CLOCK_MONOTONIC)
    start_daemon(model, size)
    return stopped


def first_of_new_daemon(frames, stopped: int):
    # The old daemon may have written one more frame before its shutting_down: the consumer gets it first, unmarked.
    # Frames captured after the old daemon exited are the new one's (CLOCK_MONOTONIC is the daemon's clock too).
    for old in range(3):
        frame = next(frames)
        if frame.capture_monotonic_ns > stopped:
            return frame
    raise RuntimeError("three frames of the old daemon after it had exited")


def wait_for_slot():
    # A client that just closed counts against max_clients until the daemon has noticed it; a one-attempt probe
    # (reconnect=False) that asks for masks, as max_clients counts only such clients, tells when it has.
    for attempt in range(100):
        try:
            with Subscriber(path, name="python probe", reconnect=False):
                return
        except DaemonError as error:
            if error.code != "server_full":
                raise
            time.sleep(0.05)
    raise RuntimeError("the daemon never had room again")


class CountingSubscriber(Subscriber):
    """A Subscriber that records what each connection attempt ended in: "at once" means no attempt after the refusal,
    not a time. (An attempt before it may meet server_full and be retried: the slot wait_for_slot's probe held is
    freed only once the daemon has noticed it closed.)"""

    def __init__(self, *args, **kwargs):
        super().__init__(*args, **kwargs)
        self.outcomes = []

    def connect(self):
        try:
            super().connect()
        except DaemonError as error:
            self.outcomes.append(error.code)
            raise
        self.outcomes.append("connected")


def raised_at_once(protocol: int = mtlseg_client.PROTOCOL, **kwargs):
    """[code, message, each attempt's outcome, seconds] of a `with` whose HELLO the daemon refuses (retries on, the
    default)."""
    wait_for_slot()
    started = time.monotonic()
    mtlseg_client.PROTOCOL = protocol  # another only for a HELLO of a protocol the daemon does not speak
    subscriber = CountingSubscriber(path, name="python refused", **kwargs)
    try:
        with subscriber:
            return ["entered", "", subscriber.outcomes, round(time.monotonic() - started, 2)]
    except DaemonError as error:
        return [error.code, str(error), subscriber.outcomes, round(time.monotonic() - started, 2)]
    finally:
        mtlseg_client.PROTOCOL = 1


def later(seconds: float, action, *arguments):
    timers.append(threading.Timer(seconds, action, arguments))
    timers[-1].start()


def timed_out(signum, frame):
    raise TimeoutError("check_reconnect.py ran for 120 s")  # a client that waits forever must not hang the test


signal.signal(signal.SIGALRM, timed_out)
signal.alarm(120)
try:
    # 1. No socket yet: with reconnect=False that raises at once; `with` waits for the daemon (started a second later).
    try:
        with Subscriber(path, reconnect=False):
            summary["missing_no_retry"] = "entered"
    except OSError as error:
        summary["missing_no_retry"] = type(error).__name__
    check(summary["missing_no_retry"] == "FileNotFoundError", "reconnect=False did not raise at once on no socket")
    later(1.0, start_daemon, "mtl2-tiny.safetensors", "160x120")
    started = time.monotonic()
    with Subscriber(path, encoding="rle", mask_size="source", name="python consumer") as consumer:
        summary["waited_for_socket_s"] = round(time.monotonic() - started, 2)
        check(summary["waited_for_socket_s"] >= 0.9, "entered before the daemon was started")
        frames = consumer.frames()
        first = [next(frames) for _ in range(3)]
        check(not any(frame.stream_changed or frame.reconnected for frame in first), "a first connection's frames marked")
        before = consumer.description

        # 2. Full (the consumer and a holder are max_clients = 2): one attempt raises, `with` waits for the holder to go;
        # a control connection (mtlseg status's kind) still gets in.
        holder = Subscriber(path, name="python holder", reconnect=False)
        holder.connect()
        try:
            with Subscriber(path, name="python third", reconnect=False):
                summary["full_no_retry"] = "entered"
        except DaemonError as error:
            summary["full_no_retry"] = error.code
        check(summary["full_no_retry"] == "server_full", "reconnect=False did not raise server_full at once")
        try:
            with Subscriber(path, tasks=[], name="python status", reconnect=False) as status:
                summary["control_when_full"] = sorted(status.request_stats())[:2]
        except DaemonError as error:
            summary["control_when_full"] = error.code
        check(summary["control_when_full"] == ["clients", "clients_departed"], "a control connection was refused by a full daemon")
        later(1.0, holder.close)
        started = time.monotonic()
        try:
            with Subscriber(path, name="python waiting") as waiting:
                next(waiting.frames())
                summary["full_with"] = ["frame", round(time.monotonic() - started, 2)]
        except Exception as error:
            summary["full_with"] = [f"{type(error).__name__}: {error}", round(time.monotonic() - started, 2)]
        check(summary["full_with"][0] == "frame" and summary["full_with"][1] >= 0.9, "`with` on a full daemon did not wait")

        # 3. Errors that retrying cannot fix raise at once, with the daemon's message.
        summary["unknown_task"] = raised_at_once(tasks=["weeds"])
        summary["bad_message"] = raised_at_once(mask_size="640by480")
        summary["unsupported_protocol"] = raised_at_once(protocol=2)
        for code, marker in [("unknown_task", "weeds"), ("bad_message", "mask_size"), ("unsupported_protocol", "protocol 2")]:
            got, message, outcomes, _ = summary[code]
            # Refused once, by the last attempt; any attempt before it met only a refusal that is retried.
            retried = outcomes[:-1]
            check(got == code and marker in message and outcomes[-1:] == [code]
                  and all(outcome in mtlseg_client.RETRYABLE for outcome in retried), f"{code}: {summary[code]}")

        # 4. The daemon restarts with another model (a third task) and capture size (the "source" masks grow).
        after = first_of_new_daemon(frames, restart_daemon("mtl3-tiny.safetensors", "320x240"))
        summary["restart_other_model"] = {
            "stream_changed": after.stream_changed, "reconnected": after.reconnected,
            "tasks": [[t["name"] for t in before["tasks"]], [t["name"] for t in consumer.description["tasks"]]],
            "mask": [[before["mask_width"], before["mask_height"]],
                     [consumer.description["mask_width"], consumer.description["mask_height"]]],
            "sequence": [first[-1].sequence, after.sequence]}
        check(after.stream_changed and after.reconnected, "the first frame after a restart with another model not marked")
        check(sorted(after.masks) == ["gaps", "plants", "rows"] and len(after.masks["gaps"]) == 320 * 240,
              "the first frame after the restart is not of the new description")
        following = next(frames)
        check(not (following.stream_changed or following.reconnected), "the second frame after a restart marked too")

        # 5. Restarted with the same model: the same description, the frame marked all the same (its sequence started
        # again, and its dropped does not count the frames missed meanwhile).
        again = first_of_new_daemon(frames, restart_daemon("mtl3-tiny.safetensors", "320x240"))
        summary["restart_same_model"] = {"stream_changed": again.stream_changed, "reconnected": again.reconnected,
                                         "sequence": [following.sequence, again.sequence]}
        check(again.stream_changed and again.reconnected, "the first frame after a restart with the same model not marked")

        # 6. A control connection asks for STATS across a restart: connected again, not broken for good.
        monitor = Subscriber(path, tasks=[], name="python monitor")
        try:
            check("fps" in monitor.request_stats(), "request_stats on a new control connection has no fps")
            restart_daemon("mtl3-tiny.safetensors", "320x240")
            summary["stats_after_restart"] = "fps" in monitor.request_stats()
        except Exception as error:
            summary["stats_after_restart"] = f"{type(error).__name__}: {error}"
        finally:
            monitor.close()
        check(summary["stats_after_restart"] is True, f"request_stats after a restart: {summary['stats_after_restart']}")
except Exception as error:
    failures.append(f"{type(error).__name__}: {error}")
finally:
    signal.alarm(0)
    for timer in timers:  # a daemon not started yet must not be started after the rest are stopped
        timer.cancel()
        timer.join()
    for daemon in daemons:
        if daemon.poll() is None:
            daemon.terminate()
            daemon.wait(timeout=20)
    shutil.rmtree(directory, ignore_errors=True)

summary["failures"] = failures
print(json.dumps(summary))
sys.exit(1 if failures else 0)
