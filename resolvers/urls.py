"""URLs that point back at a customer's site: which are acceptable, and the allow-list they must fall in.

An application's ``redirect_urls`` are the allow-list for every link the gateway builds towards the
application's own site (today: the application's own password-reset page; ``resolvers.links.issue``
refuses any other). A URL is *within* an entry when it has the entry's scheme, host and port, and its
path is the entry's path or continues it at a ``/`` boundary: ``https://a.example.com/app`` allows
``https://a.example.com/app`` and ``https://a.example.com/app/reset?x=1``, never
``https://a.example.com/application`` nor ``https://a.example.com.evil/app``. A raw string prefix
would allow both.
"""

from __future__ import annotations

import ipaddress
import re
from dataclasses import dataclass
from urllib.parse import SplitResult, urlsplit

MAX_URL = 2000
# http is allowed only for these hosts: a loopback redirect never leaves the device (RFC 8252 7.3).
LOOPBACK_HOSTS = frozenset({"localhost", "127.0.0.1", "::1"})
DEFAULT_PORTS = {"https": 443, "http": 80}
HOST_RE = re.compile(r"^(?:[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)(?:\.[a-z0-9](?:[a-z0-9-]{0,61}[a-z0-9])?)*$")
# Encoded dots, slashes and backslashes could step out of an allowed path once a server decodes them.
ENCODED_PATH_TRICKS = re.compile(r"%(?:2e|2f|5c)", re.IGNORECASE)


def _plain_text(url: object) -> bool:
    """At most MAX_URL characters, nothing that breaks out of an HTML attribute (quotes, ``<``, ``>``,
    backslashes), no spaces or control characters."""
    return isinstance(url, str) and 0 < len(url) <= MAX_URL and not any(c in url for c in "\"'<>\\") \
        and not any(c.isspace() or not c.isprintable() for c in url)


def _split(url: str) -> SplitResult | None:
    try:
        parts = urlsplit(url)
        parts.port  # noqa: B018 - raises ValueError for a port that is not a number in range
    except ValueError:
        return None
    return parts


def is_https_url(url: str) -> bool:
    """An absolute ``https://`` URL with a host, at most 2000 characters, with nothing to break out of
    an HTML attribute (no quotes, ``<``, ``>``, backslashes, spaces or control characters)."""
    parts = _split(url) if _plain_text(url) else None
    return parts is not None and parts.scheme == "https" and bool(parts.hostname)


@dataclass(frozen=True)
class Target:
    """A URL reduced to what the allow-list compares: scheme, host, port (explicit), path (at least ``/``)."""

    scheme: str
    host: str
    port: int
    path: str

    def allows(self, other: Target) -> bool:
        """True when ``other`` is this entry's origin and its path is this path or continues it at a ``/``."""
        if (self.scheme, self.host, self.port) != (other.scheme, other.host, other.port):
            return False
        if other.path == self.path or self.path.endswith("/"):
            return other.path.startswith(self.path)
        return other.path.startswith(self.path + "/")


def target(url: str, *, entry: bool = False) -> Target | None:
    """The comparable form of an absolute URL, or None when it is not acceptable at all.

    Acceptable: ``https``, or ``http`` on a loopback host; an ASCII host name (IDNs in their ``xn--``
    form) or an IP literal; no user name or password; no ``.``/``..`` path segments and no encoded
    dot, slash or backslash in the path. An allow-list ``entry`` also carries no query or fragment.
    """
    parts = _split(url) if _plain_text(url) else None
    if parts is None or parts.scheme not in DEFAULT_PORTS or not parts.hostname:
        return None
    host = parts.hostname.lower()
    if "@" in parts.netloc or (parts.scheme == "http" and host not in LOOPBACK_HOSTS):
        return None
    if not (HOST_RE.match(host) or _ip_literal(host)):
        return None
    if entry and (parts.query or parts.fragment or url.endswith(("?", "#"))):
        return None
    path = parts.path or "/"
    segments = path.split("/")
    if "." in segments or ".." in segments or ENCODED_PATH_TRICKS.search(path):
        return None
    return Target(parts.scheme, host, parts.port or DEFAULT_PORTS[parts.scheme], path)


def _ip_literal(host: str) -> bool:
    try:
        ipaddress.ip_address(host)
    except ValueError:
        return False
    return True


def within(allowed: list[str], url: str) -> bool:
    """True when ``url`` is acceptable and falls within one of the ``allowed`` entries (see the module)."""
    candidate = target(url)
    if candidate is None:
        return False
    return any(entry is not None and entry.allows(candidate) for entry in (target(a, entry=True) for a in allowed))
