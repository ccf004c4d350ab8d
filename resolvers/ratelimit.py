"""Fixed-window rate limits, counted in MongoDB so that every instance shares them."""

from __future__ import annotations

from datetime import timedelta

from resolvers.context import Context, Limit
from resolvers.errors import RateLimited
from resolvers.security import keyed_hash
from stores import ratelimits


def _window(ctx: Context, limit: Limit) -> tuple[int, int]:
    now = ctx.now().timestamp()
    index = int(now // limit.window_seconds)
    retry_after = int((index + 1) * limit.window_seconds - now) + 1
    return index, retry_after


def _counter_id(ctx: Context, bucket: str, key: str, index: int) -> str:
    return f"{bucket}:{keyed_hash(ctx.rules.secret_key, key)}:{index}"


async def hit(ctx: Context, bucket: str, key: str | None, limit: Limit) -> None:
    """Count one attempt; raise RateLimited when it goes over the limit."""
    if not key:
        return
    index, retry_after = _window(ctx, limit)
    count = await ratelimits.increment(
        _counter_id(ctx, bucket, key, index), ctx.now() + timedelta(seconds=limit.window_seconds * 2)
    )
    if count > limit.attempts:
        raise RateLimited(retry_after)


async def reset(ctx: Context, bucket: str, key: str, limit: Limit) -> None:
    index, _ = _window(ctx, limit)
    await ratelimits.clear(_counter_id(ctx, bucket, key, index))
