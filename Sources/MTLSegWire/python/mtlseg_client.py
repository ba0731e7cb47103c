"""A consumer of mtlsegd's mask stream, standard library only (Python >= 3.9).

Written from Sources/MTLSegWire/PROTOCOL.md alone:

    from mtlseg_client import Subscriber
    with Subscriber("/run/mtlseg/mtlsegd.sock", encoding="rle") as stream:
        for frame in stream.frames():
            rows = frame.masks["rows"]          # bytes, mask_width * mask_height class ids
            print(frame.sequence, frame.dropped, stream.description["tasks"])

Masks are `bytes` (no numpy needed; `numpy.frombuffer(mask, numpy.uint8)` makes
an array of them). `frame.dropped` counts every frame since the previous one that
this client did not get, so consecutive frames' `dropped` add up to the gaps in
their sequence numbers; `frame.age_s()` is how long ago the frame was captured.

A socket that is not there (yet), a lost connection, a daemon that is stopping
(`shutting_down`) or full (`server_full`) is retried with backoff (0.2 s doubling
to 5 s): `with` and `request_stats()` retry connecting, `frames()` also connects
again when the connection is lost. `reconnect=False` makes them raise at once
instead; `connect()` is always one attempt. Any other ERROR (`not_allowed`,
`unknown_task` — also after a reload to a model that lacks a task asked for —,
`bad_message`, `unsupported_protocol` …) raises DaemonError at once with the
daemon's message, as PermissionError does for a socket this user may not open,
and OSError for a path that cannot be the socket (a file or a folder in its
place, an empty or too long path); connection errors name the path.

After a model reload the new description is in `stream.description` and
`frame.stream_changed` is True for the first frame that follows it. The first
frame after a reconnect has `stream_changed` True as well, and `reconnected`
True: the daemon may have restarted with another model, mask size or tasks (read
`stream.description` again), its `sequence` may start again from a lower number,
and its `dropped` counts only frames since the new connection, not those missed
while disconnected. After a reload, by contrast, `sequence` keeps increasing and
`dropped` adds up. `tasks=[]` asks for no masks: such a connection is for
`request_stats()` only.

`mask_size` asks for masks at another size than the model's output grid:
"source" (the camera's size), "WxH" (e.g. "1280x720") or "model" (the default);
the daemon resizes the logits bilinearly and takes the argmax, as HF's
post_process_semantic_segmentation does. `stream.description["mask_width"]` and
`["mask_height"]` are then that size.
"""
import collections
import errno
import json
import os
import socket
import stat
import struct
import time
from dataclasses import dataclass
from typing import Deque, Dict, Iterator, List, Optional

PROTOCOL = 1
HELLO, STREAM, FRAME, STREAM_CHANGED, ERROR, STATS_REQUEST, STATS = 1, 2, 3, 4, 5, 6, 7


# ERROR codes after which connecting again can succeed.
RETRYABLE = {"shutting_down", "server_full"}


class DaemonError(Exception):
    """The daemon sent ERROR (and closed the connection)."""

    def __init__(self, code: str, message: str):
        super().__init__(f"{code}: {message}")
        self.code = code


# Failures to connect that no daemon starting or restarting can mend: the path itself is wrong (empty, too long, a
# file or a folder where the socket should be, a file where a folder should be) or this user may not use it.
PERMANENT_ERRNOS = {errno.EINVAL, errno.ENAMETOOLONG, errno.ENOTDIR, errno.ENOTSOCK, errno.ELOOP, errno.EACCES, errno.EPERM}


def retryable(error: Exception) -> bool:
    """Whether connecting again can succeed after `error`: a daemon that is away, full or stopping will be back or
    have room; one that refused us (not_allowed, PermissionError on its socket) or our HELLO will refuse it again,
    and a path that cannot be a socket stays so."""
    if isinstance(error, DaemonError):
        return error.code in RETRYABLE
    if isinstance(error, socket.timeout):
        return True
    # ConnectionError (refused, reset, closed) is an OSError too; FileNotFoundError is a daemon not started yet, or
    # between stopping and starting again. An OSError without errno is the socket module's own refusal of the path
    # ("AF_UNIX path too long").
    return isinstance(error, OSError) and error.errno is not None and error.errno not in PERMANENT_ERRNOS


class ProtocolError(Exception):
    """The daemon sent something PROTOCOL.md does not allow."""


@dataclass
class Frame:
    sequence: int
    capture_monotonic_ns: int
    capture_realtime_ns: int
    dropped: int
    latencies_ms: Dict[str, float]
    masks: Dict[str, bytes]
    stream_changed: bool = False  # the first frame after STREAM_CHANGED or a reconnect: read the description again
    reconnected: bool = False  # the first frame after a reconnect: `sequence` may restart, `dropped` misses the gap

    def age_s(self) -> float:
        """Seconds since capture (CLOCK_MONOTONIC, the daemon's clock too)."""
        return (time.clock_gettime_ns(time.CLOCK_MONOTONIC) - self.capture_monotonic_ns) / 1e9


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
                 name: str = "python", reconnect: bool = True, timeout: float = 10.0, mask_size: Optional[str] = None):
        self.path, self.encoding, self.tasks, self.name = path, encoding, tasks, name
        self.mask_size = mask_size
        self.reconnect, self.timeout = reconnect, timeout
        self.description: Optional[dict] = None
        self._socket: Optional[socket.socket] = None
        self._changed = False
        self._reconnected = False
        self._pending: Deque[Frame] = collections.deque()  # frames that came while waiting for STATS

    def __enter__(self):
        # With retries, as frames() would: the documented `with Subscriber(path) as stream:` must not fail on a
        # daemon that is full or not started yet, which frames() alone waits out.
        self._connect_with_retries()
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
        try:
            self._socket = s
            s.connect(self.path)
        except OSError as error:
            raise self._naming_path(error) from None
        hello = {"protocol": PROTOCOL, "encoding": self.encoding, "name": self.name}
        if self.tasks is not None:
            hello["tasks"] = self.tasks
        if self.mask_size is not None:
            hello["mask_size"] = self.mask_size
        try:
            self._send(HELLO, json.dumps(hello).encode())
        except (BrokenPipeError, ConnectionResetError):
            pass  # refused at accept (not_allowed, server_full): the ERROR is still there to read
        kind, payload = self._message()
        if kind == ERROR:
            self._raise(payload)
        if kind != STREAM:
            raise ProtocolError(f"expected STREAM, got message type {kind}")
        # A description from before means this is a new connection: the daemon may have restarted with another model,
        # mask size or tasks, and its sequence with it, so the next frame says so (a consumer that keys its decoding
        # on stream_changed would otherwise read new masks with the old shapes).
        if self.description is not None:
            self._changed = self._reconnected = True
        self.description = json.loads(payload)
        self._pending.clear()

    def _naming_path(self, error: OSError) -> OSError:
        """`error` from connecting, of the same class, with the socket's path and what it tells of the path."""
        if isinstance(error, socket.timeout):
            return error
        if error.errno is None:  # the socket module's own refusal of the path
            return OSError(f"{error}: {self.path!r}")
        code, reason = error.errno, error.strerror
        try:
            is_socket = stat.S_ISSOCK(os.stat(self.path).st_mode)
        except (OSError, ValueError):
            is_socket = None  # not there (or not a name at all)
        if is_socket is False:
            code, reason = errno.ENOTSOCK, "not a socket (the daemon's socket is [socket] path in its configuration)"
            return OSError(code, reason, self.path)
        if isinstance(error, PermissionError):
            reason += " (the socket is for the daemon's group, mtlseg-clients: add this user to it, then log in again)"
        return type(error)(code, reason, self.path)

    def _connect_with_retries(self):
        """connect(), again with backoff while the failure is one that retrying can fix, unless reconnect=False."""
        backoff = 0.2
        while True:
            try:
                self.connect()
                return
            except (OSError, DaemonError) as error:
                self.close()
                if not (self.reconnect and retryable(error)):
                    raise
            time.sleep(backoff)
            backoff = min(backoff * 2, 5.0)

    def request_stats(self) -> dict:
        """The daemon's counters and state (PROTOCOL.md, STATS); frames that arrive meanwhile are kept for frames().
        A lost connection (a restart; a reload whose STREAM_CHANGED sat unread past the daemon's client timeout, as
        it does on a control connection asked seldom) is connected again, as frames() does."""
        while True:
            if self._socket is None:
                self._connect_with_retries()
            try:
                self._send(STATS_REQUEST, b"")
                while True:
                    kind, payload = self._message()
                    if kind == STATS:
                        return json.loads(payload)
                    self._handle(kind, payload, keep_frames=True)
            except (OSError, DaemonError) as error:
                self.close()
                if not (self.reconnect and retryable(error)):
                    raise
                time.sleep(0.2)

    def frames(self) -> Iterator[Frame]:
        if self.tasks == []:
            raise ValueError("tasks=[] asks the daemon for no frames; use request_stats()")
        while True:
            if self._socket is None:
                self._connect_with_retries()
            while self._pending:
                yield self._pending.popleft()
            try:
                kind, payload = self._message()
                frame = self._handle(kind, payload)
            except (OSError, DaemonError) as error:
                self.close()
                if not (self.reconnect and retryable(error)):
                    raise
                # A daemon that just went away is seldom back at once; _connect_with_retries backs off from here on.
                time.sleep(0.2)
                continue
            if frame is not None:
                yield frame

    def _handle(self, kind: int, payload: bytes, keep_frames: bool = False) -> Optional[Frame]:
        """A message after STREAM: a frame is returned (or kept for later), the rest acted on."""
        if kind == FRAME:
            frame = self._frame(payload)
            if keep_frames:
                self._pending.append(frame)
                return None
            return frame
        if kind == STREAM_CHANGED:
            self.description = json.loads(payload)
            self._changed = True
        elif kind == ERROR:
            self._raise(payload)
        elif kind != STATS:
            raise ProtocolError(f"message type {kind} from the daemon")
        return None

    @staticmethod
    def _raise(payload: bytes):
        try:
            error = json.loads(payload)
        except ValueError:
            raise ProtocolError("ERROR whose payload is not JSON")
        raise DaemonError(str(error.get("code", "?")), str(error.get("message", "")))

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
        header = self._exactly(5)
        if header.startswith(b"HTTP"):
            # As a length "HTTP" is over a gigabyte: this is an HTTP server, such as mtlsegd's [metrics] socket.
            raise ProtocolError(f"{self.path} answered with HTTP: it is an HTTP socket (mtlsegd's [metrics] socket?), "
                                "not the mask socket")
        length, kind = struct.unpack("<IB", header)
        return kind, self._exactly(length - 1)

    def _frame(self, p: bytes) -> Frame:
        # A FRAME too short for its fields (struct.error) or with runs that do not cover the mask (decode_rle's
        # ValueError) is the daemon breaking PROTOCOL.md: the one exception a consumer catches for that.
        try:
            return self._parse_frame(p)
        except (struct.error, ValueError) as error:
            raise ProtocolError(f"malformed FRAME: {error}") from error

    def _parse_frame(self, p: bytes) -> Frame:
        d = self.description
        sequence, monotonic, realtime, dropped, count = struct.unpack_from("<QQQIB", p, 0)
        offset = 29
        latencies = struct.unpack_from(f"<{count}I", p, offset)
        offset += 4 * count
        (masks_count,) = struct.unpack_from("<B", p, offset)
        offset += 1
        pixels = d["mask_width"] * d["mask_height"]
        names = {task["index"]: task["name"] for task in d["tasks"]}
        if masks_count != len(names):
            raise ProtocolError(f"{masks_count} masks in a FRAME of a stream of {len(names)} tasks")
        masks = {}
        for _ in range(masks_count):
            task, encoding, size = struct.unpack_from("<BBI", p, offset)
            offset += 6
            if task not in names or names[task] in masks or offset + size > len(p):
                raise ProtocolError(f"a mask for task index {task} that the stream does not describe, a second one, or cut short")
            data = p[offset:offset + size]
            offset += size
            if encoding == 0 and len(data) != pixels:
                raise ProtocolError(f"raw mask of {len(data)} bytes, expected {pixels}")
            if encoding not in (0, 1):
                raise ProtocolError(f"unknown mask encoding {encoding}")
            masks[names[task]] = decode_rle(data, pixels) if encoding == 1 else data
        if offset != len(p):
            raise ProtocolError(f"{len(p) - offset} bytes after the last mask")
        changed, self._changed = self._changed, False
        reconnected, self._reconnected = self._reconnected, False
        return Frame(sequence, monotonic, realtime, dropped,
                     {name: value / 1000 for name, value in zip(d["latencies"], latencies)}, masks, changed, reconnected)
