"""Fault replays against the live view (`edgekit run --view`): requests from hostile pages and clients.

Each test sends what an attacker could and checks that the view refuses it (and counts the
refusal) while still answering the legitimate request next to it.
"""

from __future__ import annotations

import http.client
import socket
import time

import pytest

from edge.view.server import MAX_CONNECTIONS
from tests.view_helpers import TOKEN, frame, raw, request, result, serving

OFF_LOOPBACK = {"host": "0.0.0.0", "token": TOKEN}


@pytest.mark.fault("view: DNS rebinding (foreign Host header)")
@pytest.mark.parametrize("host", ["evil.example", "evil.example:8080", "127.0.0.1.evil.example", "localhost.evil.example",
                                  "", "evil.example@127.0.0.1", "a b"])
def test_a_foreign_host_header_is_refused_on_loopback(host):
    with serving() as view:
        status, _, body = request(view, "/api/state", host=host)
        assert status in (400, 403) and b"frame" not in body
        assert view.refused == 1
        assert request(view, "/api/state")[0] == 200  # the legitimate request still works


@pytest.mark.fault("view: DNS rebinding (foreign Host header)")
def test_a_foreign_host_header_is_refused_off_loopback_even_with_the_token():
    with serving(**OFF_LOOPBACK) as view:
        headers = {"Authorization": f"Bearer {TOKEN}"}
        assert request(view, "/api/state", headers, host="evil.example:8080")[0] == 403
        assert request(view, "/api/state", headers, host=f"127.0.0.1:{view.server.port}")[0] == 200


@pytest.mark.fault("view: missing or wrong token off loopback")
@pytest.mark.parametrize("path", ["/", "/app.js", "/api/state", "/stream.mjpg", "/events", "/thumbs/1.jpg"])
@pytest.mark.parametrize("presented", [
    {}, {"Authorization": "Bearer wrong-token-0123456789"}, {"Cookie": "edgekit_view=wrong"},
    {"Authorization": f"Basic {TOKEN}"}, {"Cookie": f"other={TOKEN}"},
])
def test_every_route_needs_the_token_off_loopback(path, presented):
    with serving(**OFF_LOOPBACK) as view:
        view.observe(frame(0), result(0), None)
        status, _, body = request(view, path, presented)
        assert status == 401 and b"token required" in body
        assert view.stats()["clients"] == 0 and view.encoded == 0  # nothing was streamed or encoded


@pytest.mark.fault("view: missing or wrong token off loopback")
@pytest.mark.parametrize("query", ["?token=", f"?token={TOKEN[:-1]}", f"?token={TOKEN}x", f"?Token={TOKEN}"])
def test_a_wrong_token_in_the_address_gets_no_cookie(query):
    with serving(**OFF_LOOPBACK) as view:
        status, headers, _ = request(view, "/" + query)
        assert status == 401 and "set-cookie" not in headers


@pytest.mark.fault("view: missing or wrong token off loopback")
def test_the_right_token_is_traded_for_a_strict_http_only_cookie():
    with serving(**OFF_LOOPBACK) as view:
        status, headers, _ = request(view, f"/?token={TOKEN}")
        assert status == 303 and headers["location"] == "/"
        cookie = headers["set-cookie"]
        assert "HttpOnly" in cookie and "SameSite=Strict" in cookie
        assert request(view, "/api/state", {"Cookie": cookie.split(";")[0]})[0] == 200
        assert request(view, "/api/state", {"Authorization": f"Bearer {TOKEN}"})[0] == 200


@pytest.mark.fault("view: path traversal")
@pytest.mark.parametrize("path", [
    "/../../etc/passwd", "/thumbs/../../etc/passwd", "/thumbs/..%2f..%2fetc%2fpasswd", "/%2e%2e/%2e%2e/etc/passwd",
    "/thumbs/1.jpg/../../../etc/passwd", "/thumbs/0.jpg", "/thumbs/-1.jpg", "/thumbs/01.jpg", "/thumbs/1.png",
    "/thumbs/1.jpg%00", "/etc/passwd", "//etc/passwd", "/static/page.py", "/edge/view/page.py",
    "/index.html", "/api", "/api/state/../../../etc/passwd", "/.git/config", "/?path=/etc/passwd&x=../",
])
def test_no_path_reaches_a_file(path):
    with serving() as view:
        view.on_sample_written(frame(0).pixels, "bgr", {"frame_index": 0, "label": "red", "confidence": 0.5})
        status, headers, body = request(view, path)
        if path.startswith("/?"):  # the page itself, whatever the query says
            assert status == 200 and body.startswith(b"<!doctype html>")
            return
        assert status in (400, 404), (path, status)
        assert b"root:" not in body and b"[core]" not in body and b"import" not in body


@pytest.mark.fault("view: path traversal")
def test_absolute_form_and_garbage_request_lines_are_refused():
    with serving() as view:
        port = view.server.port
        absolute = raw(view, f"GET http://127.0.0.1:{port}/../../etc/passwd HTTP/1.1\r\nHost: 127.0.0.1\r\n\r\n".encode())
        assert absolute.startswith(b"HTTP/1.1 400") and b"root:" not in absolute
        garbage = raw(view, b"\x16\x03\x01\x02\x00\x01\x00\x01\xfc\x03\x03" + b"A" * 64 + b"\r\n\r\n")  # a TLS hello
        assert b"400" in garbage and b"live view" not in garbage  # http.server's own error answer
        assert request(view, "/api/state")[0] == 200


@pytest.mark.fault("view: writes to a read-only server")
@pytest.mark.parametrize("method", ["POST", "PUT", "DELETE", "PATCH", "OPTIONS", "TRACE", "CONNECT"])
def test_the_view_is_read_only(method):
    with serving() as view:
        status, _, _ = request(view, "/api/state", method=method)
        assert status in (405, 501)


@pytest.mark.fault("view: connection flood")
def test_a_connection_flood_is_capped_and_the_view_recovers():
    with serving() as view:
        port = view.server.port
        flood = [socket.create_connection(("127.0.0.1", port), timeout=10) for _ in range(MAX_CONNECTIONS + 8)]
        try:
            for sock in flood[:MAX_CONNECTIONS]:  # hold MAX_CONNECTIONS streams open (each has a thread)
                sock.sendall(f"GET /events HTTP/1.1\r\nHost: 127.0.0.1:{port}\r\n\r\n".encode())
            for sock in flood[MAX_CONNECTIONS:]:  # the rest are closed at once, no thread started
                assert sock.recv(1024) == b""
            assert view.busy >= 8
        finally:
            for sock in flood:
                sock.close()
        recovered = False
        for _ in range(200):  # the held connections' threads notice the close at their next write (0.5 s)
            try:
                recovered = request(view, "/api/state")[0] == 200
                break
            except (ConnectionError, OSError, http.client.HTTPException):
                time.sleep(0.05)
        assert recovered


@pytest.mark.fault("view: too many video viewers")
def test_more_video_streams_than_allowed_are_refused():
    with serving(max_clients=1) as view:
        first = socket.create_connection(("127.0.0.1", view.server.port), timeout=10)
        first.sendall(f"GET /stream.mjpg HTTP/1.1\r\nHost: 127.0.0.1:{view.server.port}\r\n\r\n".encode())
        try:
            for _ in range(200):
                if view.stats()["clients"] == 1:
                    break
                view.stop_event.wait(0.01)
            status, _, body = request(view, "/stream.mjpg")
            assert status == 503 and b"too many viewers" in body
        finally:
            first.close()
