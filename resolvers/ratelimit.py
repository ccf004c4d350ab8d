"""Fixed-window rate limits, counted in MongoDB so that every instance shares them.

Every limit counts the same form of its key that the look-up it protects uses (a normalised
identifier, an account id, the canonical hash of a link token), so that a variant spelling of the
same thing (added whitespace, other case, email instead of username) never buys a fresh budget.
Per-IP limits count an IPv6 client by its /64 prefix: one subscriber is usually given a whole /64
(RFC 6177), so counting single addresses would give each client 2^64 budgets.
"""

from __future__ import annotations

import ipaddress

from resolvers.context import Context, Limit
from resolvers.errors import RateLimited
from resolvers.security import keyed_hash
from stores import ratelimits

IPV6_CLIENT_PREFIX = 64


def ip_key(address: str | None) -> str | None:
    """The key a per-IP limit counts: the IPv4 address, or the /64 network of an IPv6 address.

    An IPv4-mapped IPv6 address counts as its IPv4 address. A value that is not an address is kept as it is.
    """
    if not address:
        return None
    try:
        ip = ipaddress.ip_address(address)
    except ValueError:
        return address
    if isinstance(ip, ipaddress.IPv6Address):
        if ip.ipv4_mapped is not None:
            return str(ip.ipv4_mapped)
        return str(ipaddress.IPv6Network((ip, IPV6_CLIENT_PREFIX), strict=False))
    return str(ip)


def _window(ctx: Context, limit: Limit) -> tuple[int, int]:
    now = ctx.now().timestamp()
    index = int(now // limit.window_seconds)
    retry_after = int((index + 1) * limit.window_seconds - now) + 1
    return index, retry_after


def _counter_id(ctx: Context, bucket: str, key: str, index: int) -> str:
    return f"{bucket}:{keyed_hash(ctx.rules.secret_key, key)}:{index}"


async def hit(ctx: Context, bucket: str, key: str | None, limit: Limit) -> int:
    """Count one attempt and return the count in this window; raise RateLimited when it goes over the limit."""
    if not key:
        return 0
    index, retry_after = _window(ctx, limit)
    count = await ratelimits.increment(
        _counter_id(ctx, bucket, key, index), ctx.now_ms() + limit.window_seconds * 2 * 1000
    )
    if count > limit.attempts:
        raise RateLimited(retry_after)
    return count


UNKNOWN_CLIENT = "unknown-client"


async def hit_ip(ctx: Context, bucket: str, limit: Limit) -> int:
    """Count one attempt from the requesting client (see :func:`ip_key`). Clients whose address is not
    known (a Unix-socket deployment without a trusted proxy) share one budget: the limit fails closed."""
    return await hit(ctx, bucket, ip_key(ctx.request.ip_address) or UNKNOWN_CLIENT, limit)


async def reset(ctx: Context, bucket: str, key: str, limit: Limit) -> None:
    index, _ = _window(ctx, limit)
    await ratelimits.clear(_counter_id(ctx, bucket, key, index))


async def reset_many(ctx: Context, budgets: list[tuple[str, str, Limit]]) -> None:
    """:func:`reset` for each ``(bucket, key, limit)``, in one round trip."""
    await ratelimits.clear_many([_counter_id(ctx, bucket, key, _window(ctx, limit)[0]) for bucket, key, limit in budgets])
