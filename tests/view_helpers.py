"""A LiveView serving in this process, frames made by hand, and raw HTTP, for the view's tests."""

from __future__ import annotations

import contextlib
import http.client
import socket
import time
from collections.abc import Iterator
from typing import Any

import numpy as np

from edge.frame import Frame, Result
from edge.view.live import LiveView
from edge.view.settings import ViewSettings

TOKEN = "test-token-0123456789abcdef"


def frame(index: int, value: int = 0, size: tuple[int, int] = (64, 48)) -> Frame:
    """A B,G,R frame whose pixels encode `value` (so consecutive frames differ)."""
    width, height = size
    pixels = np.full((height, width, 3), value % 256, np.uint8)
    pixels[: height // 2, : width // 2] = (value * 7) % 256
    return Frame(pixels, timestamp=time.time(), index=index, monotonic=time.monotonic(), order="bgr")


def result(index: int, label: str = "red", version: str = "lights:v0001", confidence: float = 0.9) -> Result:
    return Result(frame_index=index, capture_time=time.time(), label=label, confidence=confidence,
                  probabilities=np.array([confidence, 1 - confidence]), top_k=[(label, confidence), ("none", 1 - confidence)],
                  latency_ms=5.0 + index % 3, inference_ms=1.0, model_version=version)


@contextlib.contextmanager
def serving(**settings: Any) -> Iterator[LiveView]:
    """A LiveView on a free port, started, shut down at the end."""
    options = {"port": 0, "max_fps": 50.0, **settings}
    view = LiveView(ViewSettings(**options), counters=lambda: {"frames": 0})
    view.start([])
    try:
        yield view
    finally:
        view.shutdown()


def request(view: LiveView, path: str, headers: dict[str, str] | None = None, method: str = "GET",
            host: str | None = None) -> tuple[int, dict[str, str], bytes]:
    """One request to the view (Host: 127.0.0.1:PORT unless `host` says otherwise)."""
    connection = http.client.HTTPConnection("127.0.0.1", view.server.port, timeout=10)
    try:
        connection.putrequest(method, path, skip_host=True, skip_accept_encoding=True)
        connection.putheader("Host", host if host is not None else f"127.0.0.1:{view.server.port}")
        for key, value in (headers or {}).items():
            connection.putheader(key, value)
        connection.endheaders()
        response = connection.getresponse()
        body = response.read() if response.getheader("Content-Length") is not None or method == "HEAD" else b""
        return response.status, {k.lower(): v for k, v in response.getheaders()}, body
    finally:
        connection.close()


def raw(view: LiveView, data: bytes) -> bytes:
    """Bytes sent as they are (malformed requests); whatever comes back."""
    with socket.create_connection(("127.0.0.1", view.server.port), timeout=10) as sock:
        sock.sendall(data)
        chunks = []
        while chunk := sock.recv(65536):
            chunks.append(chunk)
    return b"".join(chunks)


class MjpegReader:
    """Reads MJPEG parts from /stream.mjpg: the JPEGs, in order."""

    def __init__(self, view: LiveView, headers: dict[str, str] | None = None) -> None:
        self.sock = socket.create_connection(("127.0.0.1", view.server.port), timeout=10)
        extra = "".join(f"{k}: {v}\r\n" for k, v in (headers or {}).items())
        self.sock.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{view.server.port}\r\n{extra}\r\n".encode())
        self.buffer = b""
        head = self._until(b"\r\n\r\n")
        self.status = int(head.split(b" ", 2)[1])

    def _until(self, marker: bytes) -> bytes:
        while marker not in self.buffer:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("stream closed")
            self.buffer += chunk
        head, _, self.buffer = self.buffer.partition(marker)
        return head

    def next_jpeg(self) -> bytes:
        headers = self._until(b"\r\n\r\n")
        length = int(next(line.split(b":")[1] for line in headers.split(b"\r\n")
                          if line.lower().startswith(b"content-length")))
        while len(self.buffer) < length + 2:
            chunk = self.sock.recv(65536)
            if not chunk:
                raise ConnectionError("stream closed")
            self.buffer += chunk
        data, self.buffer = self.buffer[:length], self.buffer[length + 2:]
        return data

    def close(self) -> None:
        self.sock.close()
