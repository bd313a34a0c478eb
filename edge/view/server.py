"""The live view over HTTP: stdlib `ThreadingHTTPServer`, read-only, a fixed set of generated answers.

Routes (GET and HEAD only; everything else is refused):
    /              the page            /app.js      its script
    /stream.mjpg   MJPEG (multipart/x-mixed-replace), which browsers show in an <img>
    /events        server-sent events: the figures twice a second
    /api/state     the same figures as one JSON object, for scripts
    /thumbs/N.jpg  the N-th logged sample, from memory, while it is among the last few

Nothing is read from disk: there is no path a request could point elsewhere. Every
request passes the Host check and, off loopback, the token check first
(edge.view.guard). Each connection has its own thread at lower CPU priority, a send
timeout and a small send buffer, and there is a cap on connections, so clients cost
bounded memory and no client can hold up the car.
"""

from __future__ import annotations

import json
import logging
import re
import select
import socket
import threading
import time
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from typing import TYPE_CHECKING, Any
from urllib.parse import urlsplit

from edge.errors import UserError
from edge.part_contract import yield_cpu_to_inference
from edge.view.guard import COOKIE
from edge.view.page import APP_JS, PAGE_HTML

if TYPE_CHECKING:
    from edge.view.live import LiveView

log = logging.getLogger("edge.view")

BOUNDARY = "edgekit-frame"
SEND_TIMEOUT_S = 10.0     # a client that takes no bytes for this long is disconnected (stalled)
SEND_BUFFER = 256 * 1024  # kernel memory a stalled client can hold
MAX_CONNECTIONS = 16      # open connections of every kind; more are closed at once
EVENTS_INTERVAL_S = 0.5
THUMB_PATH = re.compile(r"/thumbs/([1-9][0-9]{0,8})\.jpg")
SECURITY_HEADERS = {
    "Cache-Control": "no-store",
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "X-Frame-Options": "DENY",
    "Content-Security-Policy": "default-src 'self'; img-src 'self'; style-src 'self' 'unsafe-inline'; "
                               "frame-ancestors 'none'; form-action 'none'; base-uri 'none'",
}


class ViewServer(ThreadingHTTPServer):
    """Binds at construction (so a busy port fails before the run starts); `serve()` runs the loop."""

    daemon_threads = True
    block_on_close = False
    allow_reuse_address = True

    def __init__(self, view: LiveView) -> None:
        settings = view.settings
        self.view = view
        self.address_family = socket.AF_INET6 if ":" in settings.host else socket.AF_INET
        self._active = 0
        self._active_lock = threading.Lock()
        self._serving = threading.Event()
        try:
            super().__init__((settings.host, settings.port), ViewHandler)
        except OSError as error:
            raise UserError(f"the live view cannot listen on {settings.host}:{settings.port} ({error.strerror or error}): "
                            "choose another port with --view [HOST:]PORT") from error

    @property
    def port(self) -> int:
        return int(self.server_address[1])

    @property
    def url(self) -> str:
        host = self.view.settings.host
        if host in ("0.0.0.0", "::"):
            host = socket.gethostname()
        return f"http://{'[' + host + ']' if ':' in host else host}:{self.port}/"

    def start(self) -> threading.Thread:
        """Serve in a thread of its own (lower priority); close() stops it."""
        self._serving.set()
        thread = threading.Thread(target=self._serve, name="view-server", daemon=True)
        thread.start()
        return thread

    def _serve(self) -> None:
        yield_cpu_to_inference()
        self.serve_forever(poll_interval=0.25)

    def close(self) -> None:
        if self._serving.is_set():  # shutdown() would wait forever for a loop never started
            self.shutdown()
        self.server_close()

    def process_request(self, request: Any, client_address: Any) -> None:
        with self._active_lock:
            if self._active >= MAX_CONNECTIONS:
                self.view.busy += 1
                self.shutdown_request(request)
                return
            self._active += 1
        super().process_request(request, client_address)

    def process_request_thread(self, request: Any, client_address: Any) -> None:
        try:
            super().process_request_thread(request, client_address)
        finally:
            with self._active_lock:
                self._active -= 1


class ViewHandler(BaseHTTPRequestHandler):
    """One connection: checks first, then one of the fixed routes."""

    server: ViewServer
    server_version = "edgekit-view"
    sys_version = ""
    protocol_version = "HTTP/1.1"
    timeout = SEND_TIMEOUT_S

    def setup(self) -> None:
        yield_cpu_to_inference()
        self._cpu_mark = time.thread_time()
        super().setup()
        try:
            self.connection.setsockopt(socket.SOL_SOCKET, socket.SO_SNDBUF, SEND_BUFFER)
        except OSError:
            pass

    def finish(self) -> None:
        try:
            super().finish()
        finally:
            self._account_cpu()

    def _account_cpu(self) -> None:
        """Add this connection's CPU time since the last call to the view's (view.cpu_ms)."""
        now = time.thread_time()
        self.server.view.add_cpu(now - self._cpu_mark)
        self._cpu_mark = now

    def log_message(self, format: str, *args: Any) -> None:  # noqa: A002 (the base class's name)
        log.debug("view %s: " + format, self.client_address[0], *args)

    # --- checks ------------------------------------------------------------------------------

    def _allowed(self) -> str | None:
        """The route path if the request may be answered; otherwise the refusal is sent and None returned."""
        view = self.server.view
        if not self.path.startswith("/") or self.path.startswith("//"):
            return self._refuse(HTTPStatus.BAD_REQUEST, "only paths on this server are answered")
        if not view.guard.host_ok(self.headers.get("Host")):
            return self._refuse(HTTPStatus.FORBIDDEN, "unknown Host header: open the view by IP address, "
                                "localhost, this machine's name, or add the name to the view's hosts")
        parts = urlsplit(self.path)
        token = view.guard.presented_token(parts.query, self.headers.get("Authorization"),
                                           self.headers.get("Cookie"))
        if not view.guard.token_ok(token):
            return self._refuse(HTTPStatus.UNAUTHORIZED, "token required: open the address with ?token=... "
                                "that edgekit run printed at start")
        return parts.path

    def _refuse(self, status: HTTPStatus, why: str) -> None:
        view = self.server.view
        view.refused += 1
        if status not in view.refusals_logged:  # the first of each kind: a flood must not flood the journal
            view.refusals_logged.add(status)
            log.warning("live view refused %s %r from %s: %d %s", self.command, self.path[:80],
                        self.client_address[0], status.value, status.phrase + " (later ones are counted)")
        self._send(status, why.encode() + b"\n", "text/plain; charset=utf-8")
        self.close_connection = True
        return None

    # --- methods -----------------------------------------------------------------------------

    def do_GET(self) -> None:  # noqa: N802 (http.server's name)
        path = self._allowed()
        if path is None:
            return
        view = self.server.view
        if path == "/" and "token=" in urlsplit(self.path).query and view.guard.needs_token:
            # trade the token in the address for a cookie, and drop it from the address bar
            self.send_response(HTTPStatus.SEE_OTHER)
            self.send_header("Location", "/")
            self.send_header("Set-Cookie", f"{COOKIE}={view.token}; Path=/; HttpOnly; SameSite=Strict")
            self._finish_headers(0)
        elif path == "/":
            self._send(HTTPStatus.OK, PAGE_HTML, "text/html; charset=utf-8")
        elif path == "/app.js":
            self._send(HTTPStatus.OK, APP_JS, "text/javascript; charset=utf-8")
        elif path == "/api/state":
            self._send(HTTPStatus.OK, _json(view.state()), "application/json")
        elif path == "/stream.mjpg":
            self._stream()
        elif path == "/events":
            self._events()
        elif (match := THUMB_PATH.fullmatch(path)) and (data := view.thumbnail_jpeg(int(match.group(1)))):
            self._send(HTTPStatus.OK, data, "image/jpeg")
        else:
            self._refuse(HTTPStatus.NOT_FOUND, "not found: this server answers /, /stream.mjpg, /events, "
                         "/api/state and the thumbnails the page links")

    def do_HEAD(self) -> None:  # noqa: N802
        path = self._allowed()
        if path is None:
            return
        if path in ("/", "/app.js", "/api/state"):
            self.send_response(HTTPStatus.OK)
            self._finish_headers(0)
        else:
            self._refuse(HTTPStatus.NOT_FOUND, "HEAD answers /, /app.js and /api/state only")

    def _method_not_allowed(self) -> None:
        self.server.view.refused += 1
        self.send_response(HTTPStatus.METHOD_NOT_ALLOWED)
        self.send_header("Allow", "GET, HEAD")
        self.close_connection = True
        self._finish_headers(0)

    do_POST = do_PUT = do_DELETE = do_PATCH = do_OPTIONS = _method_not_allowed  # read-only

    # --- answers -----------------------------------------------------------------------------

    def _finish_headers(self, length: int | None) -> None:
        for key, value in SECURITY_HEADERS.items():
            self.send_header(key, value)
        if length is not None:
            self.send_header("Content-Length", str(length))
        self.end_headers()

    def _send(self, status: HTTPStatus, body: bytes, content_type: str) -> None:
        self.send_response(status)
        self.send_header("Content-Type", content_type)
        self._finish_headers(len(body))
        self.wfile.write(body)

    def _stream(self) -> None:
        view = self.server.view
        key = view.open_client()
        if key is None:
            self._send(HTTPStatus.SERVICE_UNAVAILABLE, b"too many viewers: close another page first\n", "text/plain")
            return
        stalled = False
        try:
            self.send_response(HTTPStatus.OK)
            self.send_header("Content-Type", f"multipart/x-mixed-replace; boundary={BOUNDARY}")
            self.close_connection = True
            self._finish_headers(None)
            seq = view.client_first_seq(key) - 1
            while not view.stop_event.is_set():
                item = view.next_jpeg(seq, timeout=1.0)
                if item is None:
                    if self._client_gone():
                        break
                    continue
                seq, jpeg = item
                view.writing(key, time.monotonic())
                self.wfile.write(b"--" + BOUNDARY.encode() + b"\r\nContent-Type: image/jpeg\r\nContent-Length: "
                                 + str(len(jpeg)).encode() + b"\r\n\r\n" + jpeg + b"\r\n")
                view.writing(key, None)
                self._account_cpu()
        except TimeoutError:
            stalled = True
        except OSError:  # the client went away
            pass
        finally:
            view.close_client(key, stalled=stalled)

    def _client_gone(self) -> bool:
        """The client closed its end (it never sends anything after its request)."""
        try:
            readable, _, _ = select.select([self.connection], [], [], 0)
            return bool(readable) and not self.connection.recv(1, socket.MSG_PEEK)
        except OSError:
            return True

    def _events(self) -> None:
        view = self.server.view
        self.send_response(HTTPStatus.OK)
        self.send_header("Content-Type", "text/event-stream")
        self.close_connection = True
        self._finish_headers(None)
        try:
            while not view.stop_event.is_set():
                self.wfile.write(b"data: " + _json(view.state()) + b"\n\n")
                self._account_cpu()
                view.stop_event.wait(EVENTS_INTERVAL_S)
        except OSError:
            pass


def _json(value: Any) -> bytes:
    return json.dumps(value, separators=(",", ":"), allow_nan=False, default=str).encode()
