"""Per-IP and per-principal request limits, and what a caller has left of its budget."""

from __future__ import annotations

import math
import time
from collections.abc import Sequence
from dataclasses import dataclass
from datetime import UTC, datetime

from limits import RateLimitItem, parse_many
from limits.aio.strategies import SlidingWindowCounterRateLimiter
from limits.storage import storage_from_string

from flowsync.config import Settings
from flowsync.errors import RateLimited
from flowsync.services.auth import Credential


@dataclass(frozen=True, slots=True)
class RateBudget:
    """What an owner has left of its request budget, right after a request was counted.
    Of several limits ("20/second;600/minute"), the one with the fewest requests left.
    `reset_at` (seconds since the epoch) is when the window next gives requests back: it
    slides, so the requests counted a window ago stop counting a few at a time."""

    limit: int
    remaining: int
    reset_at: float

    @property
    def used(self) -> int:
        """Requests counted in the current window."""
        return self.limit - self.remaining

    def reset_time(self) -> datetime:
        """`reset_at` as an aware UTC time, whole seconds."""
        return datetime.fromtimestamp(math.ceil(self.reset_at), UTC)

    def as_json(self) -> dict[str, object]:
        """As GraphQL responses report it in `extensions.rateLimit`."""
        return {
            "limit": self.limit,
            "remaining": self.remaining,
            "used": self.used,
            "resetAt": self.reset_time().isoformat(),  # as GraphQL's DateTime: +00:00
        }


class RateLimits:
    """Per-IP and per-principal limits (the `limits` library's sliding window counter:
    constant memory per key, and no per-request work that grows with the number of keys,
    unlike its moving window over the async memory store). With the default memory storage
    each API process counts on its own; point `FLOWSYNC_RATE_LIMIT_STORAGE` at a shared
    store (e.g. redis://) to count across them."""

    def __init__(self, settings: Settings) -> None:
        uri = settings.rate_limit_storage
        self._limiter = SlidingWindowCounterRateLimiter(
            storage_from_string(uri if uri.startswith("async+") else f"async+{uri}")
        )
        self._per_ip = parse_many(settings.rate_limit_per_ip)
        self._per_principal = parse_many(settings.rate_limit_per_principal)

    async def _hit(self, items: Sequence[RateLimitItem], *key: str) -> None:
        """Count one request against every item; RateLimited at the first one over."""
        for item in items:
            if not await self._limiter.hit(item, *key):
                stats = await self._limiter.get_window_stats(item, *key)
                retry = max(1, math.ceil(stats.reset_time - time.time()))
                raise RateLimited(
                    f"Too many requests ({item}); retry after {retry} s.", retry_after=retry
                )

    async def ip(self, address: str) -> None:
        """Count a request from `address`; RateLimited when over the limit."""
        await self._hit(self._per_ip, "ip", address)

    async def principal(self, credential: Credential) -> RateBudget:
        """Count a request of the credential's owner and return what the owner has left;
        RateLimited when over the limit."""
        key = ("owner", str(credential.principal.owner_id))
        await self._hit(self._per_principal, *key)
        budgets = []
        for item in self._per_principal:  # never empty: parse_many refuses ""
            stats = await self._limiter.get_window_stats(item, *key)
            budgets.append(RateBudget(item.amount, stats.remaining, stats.reset_time))
        return min(budgets, key=lambda b: b.remaining)
