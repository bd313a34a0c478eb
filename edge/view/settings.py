"""The live view's settings: `--view [HOST:]PORT`, or `view = ...` / `[view]` in the run's TOML.

Imports nothing heavy: the runtime's config reads these even when no view runs.

    view = "8080"              # 127.0.0.1:8080, no token needed (only this machine can connect)

    [view]                     # or a table
    listen = "0.0.0.0:8080"    # any other address needs the token
    token = "..."              # default: a new one, printed at start
    max_fps = 5                # frames/s sent to the browser (each one costs the car CPU: see docs/edge.md)
    width = 320                # at most this many pixels wide (whole-factor downscale; never upscaled)
    quality = 70               # JPEG quality
    main = true                # picamera2 with a lores stream: show the main stream while someone watches
    hosts = ["car.example"]    # names the page may be reached under, besides IPs, localhost, this hostname
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass, replace
from typing import Any

from edge.errors import UserError

DEFAULT_HOST = "127.0.0.1"
TOKEN_PATTERN = re.compile(r"[A-Za-z0-9_-]{16,128}")
_HOST_NAME = re.compile(r"[A-Za-z0-9]([A-Za-z0-9-]{0,62})(\.[A-Za-z0-9]([A-Za-z0-9-]{0,62}))*\.?")


@dataclass(frozen=True)
class ViewSettings:
    """Where the view listens and what it sends.

    Args:
        host: address to bind (default 127.0.0.1: only this machine; anything else needs the token).
        port: TCP port (0: any free one, printed at start).
        token: the secret a browser must present off loopback (None: generated at start).
        max_fps: frames per second encoded for the page, at most.
        width: frames are scaled down by the smallest whole factor that makes them at most this wide.
        quality: JPEG quality, 1-100.
        main: on picamera2 with a lores stream, also capture the main stream while a client watches.
        hosts: extra names allowed in the Host header (DNS-rebinding check).
        max_clients: video streams served at once; more are refused (503).
        thumbnails: how many of the last logged samples the page shows.
    """

    host: str = DEFAULT_HOST
    port: int = 8080
    token: str | None = None
    max_fps: float = 5.0
    width: int = 320
    quality: int = 70
    main: bool = True
    hosts: tuple[str, ...] = ()
    max_clients: int = 4
    thumbnails: int = 8

    @property
    def loopback(self) -> bool:
        """True when only this machine can connect (127.0.0.0/8, ::1, localhost)."""
        return is_loopback(self.host)


def is_loopback(host: str) -> bool:
    if host.lower() == "localhost":
        return True
    try:
        return ipaddress.ip_address(host.strip("[]")).is_loopback
    except ValueError:
        return False


def parse_listen(text: str | int) -> tuple[str, int]:
    """"8080" -> ("127.0.0.1", 8080); "0.0.0.0:8080", "[::]:8080", "car.local:8080" as written.

    Example:
        >>> parse_listen("8080")
        ('127.0.0.1', 8080)
    """
    text = str(text).strip()
    host, port_text = DEFAULT_HOST, text
    if text.startswith("["):  # [IPv6]:port
        host, sep, port_text = text[1:].partition("]:")
        if not sep:
            raise UserError(f"bad view address {text!r}: write [ADDRESS]:PORT for IPv6, e.g. [::1]:8080")
    elif ":" in text:
        host, _, port_text = text.rpartition(":")
    if not port_text.isdigit() or not 0 <= int(port_text) <= 65535:
        raise UserError(f"bad view port in {text!r}: give [HOST:]PORT with PORT 0-65535, e.g. 8080 or 0.0.0.0:8080")
    if not host:
        raise UserError(f"bad view address {text!r}: give [HOST:]PORT, e.g. 8080 or 0.0.0.0:8080")
    _check_host(host, "view host")
    return host, int(port_text)


def _check_host(host: str, what: str) -> None:
    try:
        ipaddress.ip_address(host)
        return
    except ValueError:
        pass
    if not _HOST_NAME.fullmatch(host) or len(host) > 253:
        raise UserError(f"bad {what} {host!r}: give an IP address or a host name")


_KEYS = {"listen", "token", "max_fps", "width", "quality", "main", "hosts", "max_clients", "thumbnails"}


def view_settings(value: Any) -> ViewSettings | None:
    """The settings from `--view`/`view = "..."` (a string or port) or a `[view]` table; None/false: no view."""
    if value is None or value is False:
        return None
    if isinstance(value, ViewSettings):
        return value
    if isinstance(value, str | int) and not isinstance(value, bool):
        host, port = parse_listen(value)
        return ViewSettings(host=host, port=port)
    if not isinstance(value, dict):
        raise UserError(f"view must be [HOST:]PORT or a [view] table, got {value!r}")
    table = {str(k).replace("-", "_"): v for k, v in value.items()}
    unknown = set(table) - _KEYS
    if unknown:
        raise UserError(f"unknown view setting(s) {sorted(unknown)}: known are {sorted(_KEYS)}")
    host, port = parse_listen(table.get("listen", 8080))
    token = table.get("token")
    if token is not None and (not isinstance(token, str) or not TOKEN_PATTERN.fullmatch(token)):
        raise UserError("view token must be 16-128 letters, digits, '-' or '_' "
                        "(or leave it out: a new one is printed at start)")
    hosts = table.get("hosts", [])
    if not isinstance(hosts, list | tuple) or not all(isinstance(h, str) for h in hosts):
        raise UserError(f"view hosts must be a list of names, got {hosts!r}")
    for name in hosts:
        _check_host(name, "view hosts entry")
    return ViewSettings(host=host, port=port, token=token, hosts=tuple(h.lower().rstrip(".") for h in hosts),
                        max_fps=_number(table, "max_fps", 5.0, float, 0.1, 60),
                        width=_number(table, "width", 320, int, 32, 4096),
                        quality=_number(table, "quality", 70, int, 1, 100),
                        max_clients=_number(table, "max_clients", 4, int, 1, 64),
                        thumbnails=_number(table, "thumbnails", 8, int, 0, 64),
                        main=_flag(table, "main", True))


def _number(table: dict[str, Any], key: str, default: Any, kind: type, low: float, high: float) -> Any:
    value = table.get(key, default)
    if isinstance(value, bool) or not isinstance(value, int | float | str):
        raise UserError(f"view {key} must be a number, got {value!r}")
    try:
        number = kind(value)
    except ValueError as error:
        raise UserError(f"view {key} must be a number, got {value!r}") from error
    if not low <= number <= high:
        raise UserError(f"view {key} must be between {low:g} and {high:g}, got {value!r}")
    return number


def _flag(table: dict[str, Any], key: str, default: bool) -> bool:
    value = table.get(key, default)
    if not isinstance(value, bool):
        raise UserError(f"view {key} must be true or false, got {value!r}")
    return value


def with_listen(settings: ViewSettings | None, text: str) -> ViewSettings:
    """`--view [HOST:]PORT` over the config file's `[view]` table: the address changes, the rest stays."""
    host, port = parse_listen(text)
    return replace(settings or ViewSettings(), host=host, port=port)
