#!/usr/bin/env python3
"""The daemon's resident memory under clients that try to exhaust it (README, Reliability).

Starts the release mtlsegd itself (demo model, synthetic 640x480 at 5 fps), then one of:
  stats                        a client that sends STATS_REQUEST without pause and never reads, for 8 s
  masks N STEP SLEEP [BUDGET]  N clients asking for masks of (3840 - i*STEP) x 2160 (STEP 0: all one size), each
                               reading a frame every SLEEP seconds, for 12 s; BUDGET: [socket] mask_memory_mb
MTLSEG_BIN: the folder of the mtlsegd to run (default .build/release), e.g. an older build's to compare.
Prints the daemon's RSS before the clients and its peak (VmHWM), and what became of the clients.

  python3 Tests/Soak/hostile_clients.py stats
  python3 Tests/Soak/hostile_clients.py masks 4 1 1.5 400
"""
import json, os, socket, struct, subprocess, sys, tempfile, threading, time

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
sys.path.insert(0, os.path.join(ROOT, "Sources/MTLSegWire/python"))
from mtlseg_client import DaemonError, Subscriber  # noqa: E402


def rss_kb(pid: int, key: str = "VmRSS") -> int:
    with open(f"/proc/{pid}/status") as status:
        return int(next(line for line in status if line.startswith(key + ":")).split()[1])


def message(sock: socket.socket) -> bytes:
    header = b""
    while len(header) < 5:
        header += sock.recv(5 - len(header))
    length = struct.unpack("<I", header[:4])[0]
    body = b""
    while len(body) < length - 1:
        body += sock.recv(length - 1 - len(body))
    return body


def stats_flood(path: str, pid: int) -> None:
    sock = socket.socket(socket.AF_UNIX)
    sock.connect(path)
    hello = json.dumps({"protocol": 1, "tasks": [], "name": "asker"}).encode()
    sock.sendall(struct.pack("<IB", len(hello) + 1, 1) + hello)
    message(sock)  # STREAM
    sock.setblocking(False)
    requests, sent, started = struct.pack("<IB", 1, 6) * 4096, 0, time.time()
    while time.time() - started < 8:
        try:
            sent += sock.send(requests)
        except BlockingIOError:
            time.sleep(0.005)
        except OSError as error:
            print(f"the daemon closed the asker after {time.time() - started:.1f} s ({error.__class__.__name__}), {sent} bytes sent")
            break
    else:
        print(f"the asker was still connected after 8 s, {sent} bytes sent")
    sock.close()


def slow_masks(path: str, count: int, step: int, pause: float) -> None:
    outcome: dict = {}

    def client(i: int) -> None:
        frames = 0
        try:
            with Subscriber(path, mask_size=f"{3840 - i * step}x2160", reconnect=False, name=f"big{i}") as stream:
                for _ in stream.frames():
                    frames += 1
                    if stop.is_set():
                        break
                    time.sleep(pause)
            outcome[i] = f"{frames} frames"
        except DaemonError as error:
            outcome[i] = error.code
        except OSError as error:
            outcome[i] = f"{frames} frames, then {error.__class__.__name__}"

    stop = threading.Event()
    threads = [threading.Thread(target=client, args=(i,)) for i in range(count)]
    for thread in threads:
        thread.start()
    time.sleep(12)
    stop.set()
    for thread in threads:
        thread.join()
    print("clients:", ", ".join(f"{i}: {outcome[i]}" for i in sorted(outcome)))


def main() -> None:
    mode = sys.argv[1]
    budget = sys.argv[5] if mode == "masks" and len(sys.argv) > 5 else None
    work = tempfile.mkdtemp()
    path = os.path.join(work, "d.sock")
    config = os.path.join(work, "d.toml")
    with open(config, "w") as file:
        file.write(f"[socket]\nmask_memory_mb = {budget}\n" if budget else "# the defaults\n")
    binaries = os.environ.get("MTLSEG_BIN", os.path.join(ROOT, ".build/release"))
    daemon = subprocess.Popen([os.path.join(binaries, "mtlsegd"), "--config", config, "--socket", path,
                               "--source", "synthetic", "--size", "640x480", "--fps", "5", "--threads", "1"],
                              stderr=subprocess.DEVNULL)
    try:
        while not os.path.exists(path):
            time.sleep(0.1)
        time.sleep(1)
        before, peak_before = rss_kb(daemon.pid), rss_kb(daemon.pid, "VmHWM")
        if mode == "stats":
            stats_flood(path, daemon.pid)
        else:
            slow_masks(path, int(sys.argv[2]), int(sys.argv[3]), float(sys.argv[4]))
        # The peak before the clients is the start's (loading the model); a higher one after is theirs.
        print(f"daemon RSS {before / 1024:.1f} MB before the clients (peak {peak_before / 1024:.1f} MB), "
              f"peak {rss_kb(daemon.pid, 'VmHWM') / 1024:.1f} MB, {rss_kb(daemon.pid) / 1024:.1f} MB after (mask_memory_mb {budget or 'default'})")
    finally:
        daemon.terminate()
        daemon.wait()


if __name__ == "__main__":
    main()
