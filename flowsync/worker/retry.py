"""When an `action` step is tried again, and after how long. Pure: no clock, no I/O.

What callers may rely on:

- `classify(status, success)` says what a reply status means for the attempt: `"success"`
  for the node's `successStatuses` (checked first, so a listed 503 is a success),
  `"retry"` for 408, 429 and 5xx, `"fail"` for anything else (the step fails at once).
- `next_delay(policy, attempt, retry_after=..., rand=...)` is the wait after failed attempt
  `attempt` (1-based), always within `[0, max_interval_seconds]`.
- Backoff uses *equal jitter*: with `ceiling = min(initial * coefficient ** (attempt - 1),
  max_interval)`, the delay is uniform in `[ceiling / 2, ceiling]`. Unlike full jitter
  (uniform in `[0, ceiling]`) it never retries a struggling endpoint at once, and it still
  spreads the retries of many executions that failed together. For a given `rand()` value
  the delay never decreases from one attempt to the next.
- A `Retry-After` the server sent with 429 or 503 (see `retry_after_for`) is honoured when it
  is longer than the backoff, capped at `max_interval_seconds`: a server asking for more
  than the node is willing to wait gets the cap, and the next reply decides again.
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Iterable
from dataclasses import dataclass
from datetime import UTC, datetime
from email.utils import parsedate_to_datetime
from typing import Literal, Protocol

__all__ = [
    "DEFAULT_SUCCESS",
    "Backoff",
    "Outcome",
    "RetryPolicy",
    "classify",
    "has_attempts_left",
    "next_delay",
    "parse_retry_after",
    "retry_after_for",
]

Outcome = Literal["success", "retry", "fail"]

DEFAULT_SUCCESS: tuple[range, ...] = (range(200, 300),)

# Statuses whose Retry-After header is about when to try again (RFC 9110 §10.2.3).
_RETRY_AFTER_STATUSES = frozenset({429, 503})


class Backoff(Protocol):
    """The four numbers `next_delay` reads; `RetryPolicy` and the definition model's
    `flowsync.engine.definition.RetryPolicy` both have them."""

    @property
    def max_attempts(self) -> int: ...
    @property
    def initial_interval_seconds(self) -> float: ...
    @property
    def backoff_coefficient(self) -> float: ...
    @property
    def max_interval_seconds(self) -> float: ...


@dataclass(frozen=True, slots=True)
class RetryPolicy:
    """A node's `retry` settings, with the spec's defaults. Raises `ValueError` when the
    numbers make no sense (no attempt, a shrinking backoff, a cap below the first wait)."""

    max_attempts: int = 3
    initial_interval_seconds: float = 1.0
    backoff_coefficient: float = 2.0
    max_interval_seconds: float = 300.0

    def __post_init__(self) -> None:
        if self.max_attempts < 1:
            raise ValueError("max_attempts must be at least 1")
        if not (0 <= self.initial_interval_seconds <= self.max_interval_seconds < math.inf):
            raise ValueError("need 0 <= initial_interval_seconds <= max_interval_seconds")
        if not (1 <= self.backoff_coefficient < math.inf):
            raise ValueError("backoff_coefficient must be at least 1")


def classify(status: int, success: Iterable[int | range] = DEFAULT_SUCCESS) -> Outcome:
    """What an HTTP reply status means for the attempt; `success` holds single statuses
    and ranges (`{201, 204}`, `[range(200, 300)]`)."""
    for item in success:
        if (status == item) if isinstance(item, int) else (status in item):
            return "success"
    if status in (408, 429) or 500 <= status <= 599:
        return "retry"
    return "fail"


def has_attempts_left(policy: Backoff, attempt: int) -> bool:
    """Whether another attempt may follow failed attempt `attempt` (1-based)."""
    return attempt < policy.max_attempts


def retry_after_for(status: int, retry_after: float | None) -> float | None:
    """The `Retry-After` value to pass to `next_delay`: only a 429 or 503 reply's counts."""
    return retry_after if status in _RETRY_AFTER_STATUSES else None


def next_delay(
    policy: Backoff,
    attempt: int,
    *,
    retry_after: float | None,
    rand: Callable[[], float],
) -> float:
    """Seconds to wait after failed attempt `attempt` (1-based) before the next one.

    `rand` returns a number in [0, 1) (`random.random`; tests pass a fixed one).
    `retry_after` is the server's wish in seconds, or None (see `retry_after_for`).
    """
    cap = float(policy.max_interval_seconds)
    try:
        raw = policy.initial_interval_seconds * policy.backoff_coefficient ** max(attempt - 1, 0)
    except OverflowError:  # a huge attempt number: far past the cap anyway
        raw = math.inf
    ceiling = min(float(raw), cap)
    fraction = rand()
    if not 0.0 <= fraction <= 1.0:  # a misbehaving rand() (even NaN) cannot leave the bounds
        fraction = 1.0 if fraction > 1.0 else 0.0
    delay = ceiling / 2 + fraction * ceiling / 2
    if retry_after is not None and retry_after > delay:
        delay = min(retry_after, cap)  # NaN compares false above, so it is ignored
    return min(max(delay, 0.0), cap)


_SECONDS = re.compile(r"\d+(?:\.\d+)?")


def parse_retry_after(value: str, *, now: datetime) -> float | None:
    """A `Retry-After` header as seconds from `now`: delay-seconds (`"120"`) or an
    HTTP-date (`"Wed, 21 Oct 2015 07:28:00 GMT"`); a date in the past gives 0.
    None when the value is neither."""
    text = value.strip()
    if _SECONDS.fullmatch(text):
        return min(float(text), 1e15)  # float() of a huge number is inf, never an error
    try:
        when = parsedate_to_datetime(text)
    except (TypeError, ValueError, IndexError):
        return None
    if when.tzinfo is None:  # "-0000" means UTC with no claim about local time
        when = when.replace(tzinfo=UTC)
    return max((when - now).total_seconds(), 0.0)
