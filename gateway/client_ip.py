"""The client's IP address, from the TCP peer and the ``X-Forwarded-For`` hops added by trusted proxies.

The walk is the one nginx's realip module does with ``real_ip_recursive on``, and the one MDN
recommends ("X-Forwarded-For", *Selecting an IP address*): only addresses appended by proxies you
trust can be believed, so start from the right and take the first address that is not a trusted
proxy. Everything to its left was written by the client and is ignored, however it looks.

- Several ``X-Forwarded-For`` header lines are one list, joined in order with commas (RFC 9110
  section 5.3). HAProxy's ``option forwardfor`` adds its own line after the client's, so judging by
  the first line alone would believe the client.
- A hop that is not a bare IP address (a name, ``unknown``, an address with a port, garbage) ends
  the walk, as in nginx: the answer is the last address the walk accepted, that is the trusted
  proxy that passed the bad hop on (or the TCP peer when the right-most hop is bad). It is not
  skipped, since what lies to its left cannot be attributed to anyone we trust.
- When every hop is a trusted proxy, the left-most one is the answer.
- Addresses are normalised: an IPv4-mapped IPv6 address (``::ffff:192.0.2.1``) is reported as the
  IPv4 address, and IPv6 in its compressed form, so that one client always has one key.
"""

from __future__ import annotations

import ipaddress
from collections.abc import Iterable
from dataclasses import dataclass

from starlette.requests import HTTPConnection

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address
IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


def parse_address(text: str) -> IPAddress | None:
    """A bare IPv4 or IPv6 address, IPv4-mapped IPv6 as IPv4; None for anything else."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


@dataclass(frozen=True)
class TrustedProxies:
    """The proxies whose ``X-Forwarded-For`` hops are believed: addresses and CIDR ranges."""

    networks: tuple[IPNetwork, ...] = ()

    @classmethod
    def parse(cls, setting: str) -> TrustedProxies:
        """From ``GATEWAY_TRUSTED_PROXIES``: comma-separated IPs or CIDR ranges (``10.0.0.0/8``, ``fd00::/8``).

        Raises ValueError naming the first entry that is neither; a range with host bits set
        (``10.0.0.1/8``) is refused too, as a probable typo.
        """
        networks = []
        for entry in (part.strip() for part in setting.split(",")):
            if not entry:
                continue
            try:
                network = ipaddress.ip_network(entry)
            except ValueError:
                raise ValueError(f"GATEWAY_TRUSTED_PROXIES: {entry!r} is not an IP address or CIDR range"
                                 + _did_you_mean(entry)) from None
            if isinstance(network, ipaddress.IPv6Network) and network.prefixlen >= 96:
                mapped = network.network_address.ipv4_mapped
                if mapped is not None:  # ::ffff:10.0.0.0/104 means 10.0.0.0/8
                    network = ipaddress.ip_network(f"{mapped}/{network.prefixlen - 96}")
            networks.append(network)
        return cls(tuple(networks))

    def __contains__(self, address: IPAddress) -> bool:
        return any(address in network for network in self.networks)

    def __bool__(self) -> bool:
        return bool(self.networks)


def _did_you_mean(entry: str) -> str:
    try:
        return f" (host bits are set: did you mean {ipaddress.ip_network(entry, strict=False)}?)"
    except ValueError:
        return ""


def forwarded_hops(header_lines: Iterable[str]) -> list[str]:
    """The hops of every ``X-Forwarded-For`` line, left to right, blanks dropped."""
    return [hop.strip() for line in header_lines for hop in line.split(",") if hop.strip()]


def resolve_client_ip(peer: str | None, header_lines: Iterable[str], trusted: TrustedProxies) -> str | None:
    """The client IP for a TCP peer and the request's ``X-Forwarded-For`` lines (see the module doc).

    Returns the normalised address as text; the peer as given when it is not an IP address (e.g. a
    Unix socket path), and None when there is no peer.
    """
    if peer is None:
        return None
    accepted = parse_address(peer)
    if accepted is None:
        return peer
    if accepted not in trusted:
        return str(accepted)
    for hop in reversed(forwarded_hops(header_lines)):
        address = parse_address(hop)
        if address is None:
            break
        accepted = address
        if address not in trusted:
            break
    return str(accepted)


def client_ip(request: HTTPConnection, trusted: TrustedProxies) -> str | None:
    """The client IP of a Starlette request or websocket (see the module doc)."""
    peer = request.client.host if request.client else None
    return resolve_client_ip(peer, request.headers.getlist("x-forwarded-for"), trusted)
