"""What the live view knows: the newest frame and result, live figures, JPEGs, thumbnails.

The inference thread only hands over references (`observe`: a tuple assignment and a
deque append, no copy, no lock, no encoding). Everything else runs in the view's own
threads at lower CPU priority: one encoder thread, which renders and encodes the newest
frame at most `max_fps` times a second and only while a video client is connected, and
one thread per HTTP client, which sends the newest JPEG it has not sent yet. A client
slower than the encoder misses frames (counted as dropped); one that stops reading
blocks only its own thread, until its socket times out (counted as stalled).

Example:
    >>> view = LiveView(ViewSettings(port=0), counters=dict)
    >>> view.start([])                          # serves until shutdown()
    >>> view.observe(frame, result, roi)        # from the inference thread, per result
"""

from __future__ import annotations

import itertools
import logging
import threading
import time
from collections import deque
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from typing import Any

import cv2
import numpy as np

from edge.frame import Frame, Result
from edge.part_contract import yield_cpu_to_inference
from edge.preprocess import roi_pixels
from edge.view.guard import Guard, new_token
from edge.view.server import ViewServer
from edge.view.settings import ViewSettings

log = logging.getLogger("edge.view")

THUMB_WIDTH = 160
FIGURES_WINDOW_S = 2.0  # fps and latency percentiles over the last seconds


@dataclass
class Thumbnail:
    """One logged sample, small, kept in memory (the view never reads the store's files)."""

    id: int
    pixels: np.ndarray  # B,G,R
    info: dict[str, Any]
    jpeg: bytes | None = None


@dataclass
class ClientRecord:
    """One video client: how many frames it was sent and which one it is writing."""

    first_seq: int
    sent: int = 0
    writing_since: float | None = None


def render(pixels: np.ndarray, order: str, roi: tuple[float, float, float, float] | None, width: int,
           caption: str = "") -> np.ndarray:
    """A new B,G,R picture for the page, the ROI drawn, a caption; never the frame's own pixels.

    Scaled down by the smallest whole factor that makes it at most `width` wide (640 -> 320 for
    width 320 or 480): OpenCV's area resize by a whole factor costs a tenth of a fractional one.
    """
    height, frame_width = pixels.shape[:2]
    factor = -(-frame_width // width)
    if factor > 1:
        exact = frame_width % factor == 0 and height % factor == 0
        picture = cv2.resize(pixels, (frame_width // factor, max(1, height // factor)),
                             interpolation=cv2.INTER_AREA if exact else cv2.INTER_LINEAR)
    else:
        picture = pixels.copy()
    if order == "rgb":
        cv2.cvtColor(picture, cv2.COLOR_RGB2BGR, dst=picture)
    if roi is not None:
        x0, y0, x1, y1 = roi_pixels(picture.shape[0], picture.shape[1], roi)
        cv2.rectangle(picture, (x0, y0), (x1 - 1, y1 - 1), (0, 255, 255), max(1, picture.shape[1] // 240))
    if caption:
        scale = max(0.35, picture.shape[1] / 960)
        (text_w, text_h), base = cv2.getTextSize(caption, cv2.FONT_HERSHEY_SIMPLEX, scale, 1)
        cv2.rectangle(picture, (0, 0), (text_w + 8, text_h + base + 6), (0, 0, 0), cv2.FILLED)
        cv2.putText(picture, caption, (4, text_h + 3), cv2.FONT_HERSHEY_SIMPLEX, scale, (255, 255, 255), 1,
                    cv2.LINE_AA)
    return picture


def encode_jpeg(picture: np.ndarray, quality: int) -> bytes:
    ok, data = cv2.imencode(".jpg", picture, [cv2.IMWRITE_JPEG_QUALITY, int(quality)])
    if not ok:
        raise ValueError("OpenCV could not encode the frame as JPEG")
    return data.tobytes()


def _copy(items: deque) -> tuple:
    """A copy of a deque another thread appends to (a copy can meet an append where the GIL is optional)."""
    for _ in range(10):
        try:
            return tuple(items)
        except RuntimeError:  # deque mutated during iteration
            continue
    return ()


def _percentile(values: list[float], q: float) -> float | None:
    return round(float(np.percentile(values, q)), 2) if values else None


class LiveView:
    """The view's state and threads; `edge.view.server` serves it over HTTP.

    Args:
        settings: where to listen and what to send (edge.view.settings).
        counters: returns the runtime's counters (frames, skipped, swaps, part counters);
            called from the view's threads, at most a few times a second.
    """

    def __init__(self, settings: ViewSettings, counters: Callable[[], dict[str, Any]]) -> None:
        self.settings = settings
        self.counters = counters
        self.token = settings.token or new_token()
        self.guard = Guard(settings, self.token)
        self.stop_event = threading.Event()
        # written by the inference thread (plain assignments and appends)
        self._newest: tuple[Frame, Result, tuple[float, float, float, float] | None] | None = None
        self._done: deque[tuple[float, float]] = deque(maxlen=512)  # (monotonic, latency_ms)
        self._version: str | None = None
        self.swap_history: deque[dict[str, Any]] = deque(maxlen=5)
        # the encoder's output
        self._cond = threading.Condition()
        self._jpeg: bytes | None = None
        self._seq = 0
        self.encoded = 0
        self.encode_errors = 0
        # clients
        self._lock = threading.Lock()
        self._clients: dict[int, ClientRecord] = {}
        self._keys = itertools.count(1)
        self.watching = threading.Event()  # a video client is connected: encode
        self.sent = 0
        self.dropped = 0
        self.stalled = 0
        self.refused = 0
        self.refusals_logged: set[int] = set()
        self.busy = 0  # streams refused over max_clients
        self._cpu_s = 0.0  # CPU time of the view's own threads (encoder, connections)
        # logged samples
        self._thumbs: deque[Thumbnail] = deque(maxlen=max(1, settings.thumbnails))
        self._thumb_id = 0
        self.server = ViewServer(self)  # binds now: a busy port is a UserError before the run starts
        self._threads: list[threading.Thread] = []

    # --- the inference thread --------------------------------------------------------------

    def observe(self, frame: Frame, result: Result, roi: tuple[float, float, float, float] | None) -> None:
        """The newest frame and its result, by reference (called per result; returns at once)."""
        version = result.model_version
        if version != self._version:
            if self._version is not None:
                self.swap_history.append({"frame": result.frame_index, "from": self._version, "to": version,
                                          "time": time.time()})
            self._version = version
        self._newest = (frame, result, roi)
        self._done.append((time.monotonic(), result.latency_ms))

    def wants_main(self) -> bool:
        """picamera2: capture the main stream too (only while someone watches, if configured)."""
        return self.settings.main and self.watching.is_set()

    # --- lifecycle ---------------------------------------------------------------------------

    @property
    def url(self) -> str:
        return self.server.url

    def start(self, parts: Iterable[Any] = ()) -> None:
        """Serve, encode when watched, and keep thumbnails of what the sample log writes."""
        for part in parts:
            listeners = getattr(part, "on_written", None)
            if isinstance(listeners, list) and self.settings.thumbnails:
                listeners.append(self.on_sample_written)
        encoder = threading.Thread(target=self._encode_loop, name="view-encoder", daemon=True)
        encoder.start()
        self._threads += [self.server.start(), encoder]
        if self.guard.needs_token:
            log.info("live view on %s (not loopback: the token is required; open this address once, the "
                     "browser keeps it in a cookie)", self.url + "?token=" + self.token)
        else:
            log.info("live view on %s (loopback only; from another machine: ssh -L %d:127.0.0.1:%d CAR)",
                     self.url, self.server.port, self.server.port)

    def shutdown(self) -> None:
        self.stop_event.set()
        self.watching.set()  # wake the encoder
        with self._cond:
            self._cond.notify_all()
        self.server.close()
        for thread in self._threads:
            thread.join(timeout=5)

    # --- the encoder thread ------------------------------------------------------------------

    def _encode_loop(self) -> None:
        yield_cpu_to_inference()
        interval = 1.0 / self.settings.max_fps
        last: Frame | None = None
        while not self.stop_event.is_set():
            if not self.watching.wait(0.5) or self.stop_event.is_set():
                continue
            started, cpu = time.monotonic(), time.thread_time()
            newest = self._newest
            if newest is not None and newest[0] is not last:
                last = newest[0]
                try:
                    self._publish(self.picture(*newest))
                except Exception as error:  # a bad frame must not end the view
                    self.encode_errors += 1
                    if self.encode_errors == 1:
                        log.error("live view could not encode frame %d: %s: %s", last.index,
                                  type(error).__name__, error)
            self.add_cpu(time.thread_time() - cpu)
            self.stop_event.wait(max(0.0, started + interval - time.monotonic()))

    def picture(self, frame: Frame, result: Result, roi: tuple[float, float, float, float] | None) -> bytes:
        """The JPEG of a frame for the page (picamera2's main stream when the frame carries one)."""
        main = getattr(frame, "main", None)
        pixels, order = (main, "bgr") if main is not None else (frame.pixels, frame.order)
        caption = f"#{frame.index} {result.label} {result.confidence:.2f} {result.model_version}"
        return encode_jpeg(render(pixels, order, roi, self.settings.width, caption), self.settings.quality)

    def add_cpu(self, seconds: float) -> None:
        """Count CPU time spent in one of the view's threads (reported as view.cpu_ms)."""
        with self._lock:
            self._cpu_s += seconds

    def _publish(self, jpeg: bytes) -> None:
        with self._cond:
            self._jpeg = jpeg
            self._seq += 1
            self.encoded += 1
            self._cond.notify_all()

    # --- client threads ----------------------------------------------------------------------

    def open_client(self) -> int | None:
        """Register a video client (None: too many already); encoding starts with the first."""
        with self._lock:
            if len(self._clients) >= self.settings.max_clients:
                self.busy += 1
                return None
            key = next(self._keys)
            self._clients[key] = ClientRecord(first_seq=self._seq + 1)
            self.watching.set()
            return key

    def client_first_seq(self, key: int) -> int:
        with self._lock:
            return self._clients[key].first_seq

    def close_client(self, key: int, stalled: bool = False) -> None:
        with self._lock:
            record = self._clients.pop(key, None)
            if record is not None:
                self.dropped += self._missed(record)
            if stalled:
                self.stalled += 1
            if not self._clients:
                self.watching.clear()

    def _missed(self, record: ClientRecord) -> int:
        """Frames encoded while this client was connected that it was not sent (lock held)."""
        return max(0, self._seq - record.first_seq + 1 - record.sent - (record.writing_since is not None))

    def next_jpeg(self, after: int, timeout: float) -> tuple[int, bytes] | None:
        """The newest JPEG after sequence number `after` (waits up to `timeout`); None if none came."""
        with self._cond:
            self._cond.wait_for(lambda: self._seq > after or self.stop_event.is_set(), timeout)
            if self._seq > after and self._jpeg is not None:
                return self._seq, self._jpeg
        return None

    def writing(self, key: int, since: float | None) -> None:
        record = self._clients.get(key)
        if record is not None:
            record.writing_since = since
            if since is None:
                record.sent += 1
                self.sent += 1

    # --- logged samples (the sample log's writer thread) -------------------------------------

    def on_sample_written(self, image: np.ndarray, order: str, meta: dict[str, Any]) -> None:
        """Keep a small copy of a sample the sample log just wrote (never its path)."""
        try:
            height, width = image.shape[:2]
            size = (THUMB_WIDTH, max(1, round(height * THUMB_WIDTH / width))) if width > THUMB_WIDTH else (width, height)
            small = cv2.resize(image, size, interpolation=cv2.INTER_AREA)
            if order == "rgb":
                small = cv2.cvtColor(small, cv2.COLOR_RGB2BGR)
            info = {"frame": int(meta.get("frame_index", -1)), "label": str(meta.get("label", "")),
                    "confidence": float(meta.get("confidence", 0.0)), "reasons": str(meta.get("reasons", "")),
                    "model_version": str(meta.get("model_version", "")), "time": float(meta.get("logged_time", 0.0))}
        except Exception as error:  # never disturb the writer
            log.debug("live view: no thumbnail: %s", error)
            return
        with self._lock:
            self._thumb_id += 1
            self._thumbs.append(Thumbnail(self._thumb_id, small, info))

    def thumbnail_jpeg(self, thumb_id: int) -> bytes | None:
        """The JPEG of a thumbnail still in memory, by id; None for any other id."""
        with self._lock:
            thumb = next((t for t in self._thumbs if t.id == thumb_id), None)
        if thumb is None:
            return None
        if thumb.jpeg is None:
            thumb.jpeg = encode_jpeg(thumb.pixels, 80)
        return thumb.jpeg

    # --- figures ---------------------------------------------------------------------------

    def state(self) -> dict[str, Any]:
        """Everything the page shows, as JSON-ready values (also /api/state)."""
        now = time.monotonic()
        recent = [item for item in _copy(self._done) if now - item[0] <= FIGURES_WINDOW_S]
        latencies = [latency for _, latency in recent]
        span = recent[-1][0] - recent[0][0] if len(recent) > 1 else 0.0
        newest = self._newest
        current: dict[str, Any] = {}
        if newest is not None:
            frame, result, roi = newest
            current = {"frame": frame.index, "label": result.label, "confidence": round(result.confidence, 4),
                       "top_k": [[name, round(p, 4)] for name, p in result.top_k],
                       "model_version": result.model_version, "roi": list(roi) if roi else None,
                       "latency_ms": round(result.latency_ms, 2), "truth": frame.truth}
        with self._lock:
            thumbs = [{"id": t.id, "url": f"/thumbs/{t.id}.jpg", **t.info} for t in reversed(self._thumbs)]
            now_blocked = sum(1 for c in self._clients.values()
                              if c.writing_since is not None and now - c.writing_since > 1.0)
        counters = self.counters()
        return {
            **current,
            "fps": round((len(recent) - 1) / span, 2) if span > 0 else 0.0,
            "latency_p50_ms": _percentile(latencies, 50), "latency_p99_ms": _percentile(latencies, 99),
            "counters": counters, "swaps": list(self.swap_history), "thumbnails": thumbs,
            "view": {**self.stats(), "blocked": now_blocked},
            "time": time.time(),
        }

    def stats(self) -> dict[str, Any]:
        """The view's counters (in the runtime's stats line as view.*)."""
        with self._lock:
            dropped = self.dropped + sum(self._missed(record) for record in self._clients.values())
            clients = len(self._clients)
            cpu_ms = round(self._cpu_s * 1000, 1)
        return {"clients": clients, "encoded": self.encoded, "sent": self.sent, "dropped": dropped,
                "stalled": self.stalled, "refused": self.refused, "busy": self.busy, "cpu_ms": cpu_ms}
