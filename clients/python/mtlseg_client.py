"""A consumer of mtlsegd's mask stream, standard library only (Python >= 3.9).

Written from Sources/MTLSegWire/PROTOCOL.md alone:

    from mtlseg_client import Subscriber
    with Subscriber("/run/mtlseg/mtlsegd.sock", encoding="rle") as stream:
        for frame in stream.frames():
            rows = frame.masks["rows"]          # bytes, mask_width * mask_height class ids
            print(frame.sequence, frame.dropped, stream.description["tasks"])

Masks are `bytes` (no numpy needed; `numpy.frombuffer(mask, numpy.uint8)` makes
an array of them). A lost connection is retried with backoff; after a model
reload the new description is in `stream.description` and `frame.stream_changed`
is True for the first frame that follows it.
"""
import json
import socket
import struct
import time
from dataclasses import dataclass, field
from typing import Dict, Iterator, List, Optional

PROTOCOL = 1
HELLO, STREAM, FRAME, STREAM_CHANGED, ERROR, STATS_REQUEST, STATS = 1, 2, 3, 4, 5, 6, 7


class DaemonError(Exception):
    """The daemon sent ERROR (and closed the connection)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


@dataclass
class Frame:
    sequence: int
    capture_monotonic_ns: int
    capture_realtime_ns: int
    dropped: int
    latencies_ms: Dict[str, float]
    masks: Dict[str, bytes]
    stream_changed: bool = False


def decode_rle(data: bytes, count: int) -> bytes:
    """Runs of (class u8, length u16 LE) to `count` class ids."""
    if len(data) % 3:
        raise ValueError("run-length data is not a whole number of runs")
    out = bytearray()
    for offset in range(0, len(data), 3):
        value, run = data[offset], data[offset + 1] | data[offset + 2] << 8
        if run < 1:
            raise ValueError("a zero-length run")
        out += bytes((value,)) * run
    if len(out) != count:
        raise ValueError(f"runs cover {len(out)} pixels, the mask has {count}")
    return bytes(out)


class Subscriber:
    """Connects, says HELLO, yields frames; reconnects with backoff when the daemon goes away."""

    def __init__(self, path: str = "/run/mtlseg/mtlsegd.sock", encoding: str = "raw", tasks: Optional[List[str]] = None,
                 name: str = "python", reconnect: bool = True, timeout: float = 10.0):
        self.path, self.encoding, self.tasks, self.name = path, encoding, tasks, name
        self.reconnect, self.timeout = reconnect, timeout
        self.description: Optional[dict] = None
        self._socket: Optional[socket.socket] = None
        self._changed = False

    def __enter__(self):
        self.connect()
        return self

    def __exit__(self, *exc):
        self.close()

    def close(self):
        if self._socket is not None:
            self._socket.close()
            self._socket = None

    def connect(self):
        self.close()
        s = socket.socket(socket.AF_UNIX, socket.SOCK_STREAM)
        s.settimeout(self.timeout)
        s.connect(self.path)
        self._socket = s
        hello = {"protocol": PROTOCOL, "encoding": self.encoding, "name": self.name}
        if self.tasks is not None:
            hello["tasks"] = self.tasks
        self._send(HELLO, json.dumps(hello).encode())
        kind, payload = self._message()
        if kind == ERROR:
            error = json.loads(payload)
            raise DaemonError(error.get("code", "?"), error.get("message", ""))
        if kind != STREAM:
            raise ConnectionError(f"expected STREAM, got message type {kind}")
        self.description = json.loads(payload)

    def request_stats(self) -> dict:
        """The daemon's counters (frames that arrive meanwhile are dropped)."""
        self._send(STATS_REQUEST, b"")
        while True:
            kind, payload = self._message()
            if kind == STATS:
                return json.loads(payload)
            if kind == ERROR:
                error = json.loads(payload)
                raise DaemonError(error.get("code", "?"), error.get("message", ""))

    def frames(self) -> Iterator[Frame]:
        backoff = 0.2
        while True:
            try:
                if self._socket is None:
                    self.connect()
                    backoff = 0.2
                kind, payload = self._message()
                if kind == FRAME:
                    yield self._frame(payload)
                elif kind == STREAM_CHANGED:
                    self.description = json.loads(payload)
                    self._changed = True
                elif kind == ERROR:
                    error = json.loads(payload)
                    raise DaemonError(error.get("code", "?"), error.get("message", ""))
            except (ConnectionError, OSError, socket.timeout):
                self.close()
                if not self.reconnect:
                    raise
                time.sleep(backoff)
                backoff = min(backoff * 2, 5.0)

    # Framing: [u32 LE length of type + payload][u8 type][payload]

    def _send(self, kind: int, payload: bytes):
        self._socket.sendall(struct.pack("<IB", len(payload) + 1, kind) + payload)

    def _exactly(self, n: int) -> bytes:
        chunks, left = [], n
        while left:
            chunk = self._socket.recv(left)
            if not chunk:
                raise ConnectionError("the daemon closed the connection")
            chunks.append(chunk)
            left -= len(chunk)
        return b"".join(chunks)

    def _message(self):
        length, kind = struct.unpack("<IB", self._exactly(5))
        return kind, self._exactly(length - 1)

    def _frame(self, p: bytes) -> Frame:
        d = self.description
        sequence, monotonic, realtime, dropped, count = struct.unpack_from("<QQQIB", p, 0)
        offset = 29
        latencies = struct.unpack_from(f"<{count}I", p, offset)
        offset += 4 * count
        (masks_count,) = struct.unpack_from("<B", p, offset)
        offset += 1
        pixels = d["mask_width"] * d["mask_height"]
        names = {task["index"]: task["name"] for task in d["tasks"]}
        masks = {}
        for _ in range(masks_count):
            task, encoding, size = struct.unpack_from("<BBI", p, offset)
            offset += 6
            data = p[offset:offset + size]
            offset += size
            masks[names[task]] = decode_rle(data, pixels) if encoding == 1 else data
        changed, self._changed = self._changed, False
        return Frame(sequence, monotonic, realtime, dropped,
                     {name: value / 1000 for name, value in zip(d["latencies"], latencies)}, masks, changed)
