"""Who may look: the Host check (DNS rebinding) and the token check, as pure functions.

A page on another site can make a browser send requests to the car's address; the
browser then names that site in the Host header (a name the attacker's DNS points at
the car). So the view answers only requests naming it by an IP address, `localhost`,
this machine's hostname, or a name the config lists. Off loopback, every request also
needs the token: in the query (`?token=`, which the page swaps for a cookie), an
`Authorization: Bearer` header, or the cookie.

Example:
    >>> guard = Guard(ViewSettings(host="0.0.0.0"), token="s3cret-s3cret-s3cret")
    >>> guard.host_ok("evil.example:8080")
    False
"""

from __future__ import annotations

import hmac
import ipaddress
import secrets
import socket
from http.cookies import CookieError, SimpleCookie
from urllib.parse import parse_qs

from edge.view.settings import ViewSettings, is_loopback

COOKIE = "edgekit_view"


def new_token() -> str:
    """A fresh secret for this run (128 bits, URL-safe)."""
    return secrets.token_urlsafe(16)


def host_name(header: str | None) -> str | None:
    """The name in a Host header without its port, lower case ("[::1]:80" -> "::1"); None if malformed."""
    if not header or any(c in header for c in " /\\@?#\x00\r\n\t"):
        return None
    header = header.strip().lower()
    if header.startswith("["):
        name, sep, rest = header[1:].partition("]")
        if not sep or (rest and not (rest.startswith(":") and rest[1:].isdigit())):
            return None
        return name
    name, _, port = header.partition(":")
    if port and not port.isdigit() or ":" in port:
        return None
    return name.rstrip(".") or None


def _is_ip(name: str) -> bool:
    try:
        ipaddress.ip_address(name)
        return True
    except ValueError:
        return False


def machine_names() -> set[str]:
    """This machine's own names: its hostname and hostname.local (mDNS).

    No DNS lookup (a car without a network would wait for the resolver at start); other
    names go in the view's `hosts`.
    """
    name = socket.gethostname().lower().rstrip(".")
    short = name.split(".")[0]
    return {n for n in (name, short, f"{short}.local") if n}


class Guard:
    """Decides, per request, whether the Host header and the token let it through.

    Args:
        settings: the view's settings (bind address, extra host names).
        token: this run's secret (checked only off loopback).
        names: this machine's names (default: machine_names()).
    """

    def __init__(self, settings: ViewSettings, token: str, names: set[str] | None = None) -> None:
        self.loopback = settings.loopback
        self.token = token.encode()
        if names is None:
            names = set() if self.loopback else machine_names()
        self.names = set(settings.hosts) | names

    @property
    def needs_token(self) -> bool:
        return not self.loopback

    def host_ok(self, header: str | None) -> bool:
        """Loopback bind: only loopback names; otherwise also IP literals, this machine's names, listed names."""
        name = host_name(header)
        if name is None:
            return False
        if is_loopback(name):
            return True
        if self.loopback:
            return False
        return _is_ip(name) or name in self.names

    def token_ok(self, presented: str | None) -> bool:
        """Constant-time comparison; always true on loopback."""
        if not self.needs_token:
            return True
        return presented is not None and hmac.compare_digest(presented.encode(), self.token)

    def presented_token(self, query: str, authorization: str | None, cookie: str | None) -> str | None:
        """The token a request carries, from the query, a Bearer header or the cookie (first found)."""
        values = parse_qs(query, keep_blank_values=True).get("token")
        if values:
            return values[0]
        if authorization and authorization.lower().startswith("bearer "):
            return authorization[7:].strip()
        if cookie:
            try:
                morsel = SimpleCookie(cookie).get(COOKIE)
            except CookieError:
                return None
            return morsel.value if morsel is not None else None
        return None
