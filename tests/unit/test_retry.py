"""Retry decisions: which statuses retry, how long to wait, and Retry-After parsing."""

from __future__ import annotations

import random
from datetime import UTC, datetime, timedelta

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowsync.engine.definition import RetryPolicy as DefinitionRetryPolicy
from flowsync.worker.retry import (
    RetryPolicy,
    classify,
    has_attempts_left,
    next_delay,
    parse_retry_after,
    retry_after_for,
)

NOW = datetime(2026, 5, 1, 12, 0, 0, tzinfo=UTC)

policies = st.builds(
    lambda initial, coefficient, extra, attempts: RetryPolicy(
        max_attempts=attempts,
        initial_interval_seconds=initial,
        backoff_coefficient=coefficient,
        max_interval_seconds=initial + extra,
    ),
    st.floats(min_value=0.001, max_value=3600),
    st.floats(min_value=1, max_value=100),
    st.floats(min_value=0, max_value=86_400),
    st.integers(min_value=1, max_value=100),
)
attempts = st.integers(min_value=1, max_value=10_000)
unit = st.floats(min_value=0, max_value=1, exclude_max=True)
retry_afters = st.none() | st.floats(min_value=0, max_value=1e9)


def fixed(value: float) -> random.Random:
    """A rand() that always returns `value` (through a Random for the type)."""
    rng = random.Random()
    rng.random = lambda: value  # type: ignore[method-assign]
    return rng


@pytest.mark.parametrize(
    ("status", "outcome"),
    [
        (200, "success"),
        (204, "success"),
        (299, "success"),
        (301, "fail"),
        (400, "fail"),
        (401, "fail"),
        (404, "fail"),
        (409, "fail"),
        (422, "fail"),
        (408, "retry"),
        (429, "retry"),
        (500, "retry"),
        (502, "retry"),
        (503, "retry"),
        (599, "retry"),
    ],
)
def test_classify_by_default(status: int, outcome: str) -> None:
    assert classify(status) == outcome


def test_classify_with_listed_statuses_and_ranges() -> None:
    success: list[int | range] = [201, 404, range(300, 400)]
    assert classify(201, success) == "success"
    assert classify(404, success) == "success"
    assert classify(302, success) == "success"
    assert classify(200, success) == "fail"
    assert classify(503, success) == "retry"
    assert classify(503, {503}) == "success"  # listed wins over the retry rule


def test_attempts_left() -> None:
    policy = RetryPolicy(max_attempts=3)
    assert [has_attempts_left(policy, n) for n in (1, 2, 3)] == [True, True, False]


def test_backoff_doubles_with_equal_jitter() -> None:
    policy = RetryPolicy(initial_interval_seconds=1, backoff_coefficient=2, max_interval_seconds=10)
    low = [next_delay(policy, n, retry_after=None, rand=fixed(0).random) for n in range(1, 7)]
    high = [next_delay(policy, n, retry_after=None, rand=fixed(1).random) for n in range(1, 7)]
    assert low == [0.5, 1, 2, 4, 5, 5]
    assert high == [1, 2, 4, 8, 10, 10]


def test_retry_after_is_used_when_longer_and_capped() -> None:
    policy = RetryPolicy(initial_interval_seconds=1, backoff_coefficient=2, max_interval_seconds=60)
    rand = fixed(0.5).random
    assert next_delay(policy, 1, retry_after=30, rand=rand) == 30
    assert next_delay(policy, 1, retry_after=0.1, rand=rand) == 0.75
    assert next_delay(policy, 1, retry_after=3600, rand=rand) == 60


def test_retry_after_counts_only_for_429_and_503() -> None:
    assert retry_after_for(429, 5) == 5
    assert retry_after_for(503, 5) == 5
    assert retry_after_for(500, 5) is None
    assert retry_after_for(429, None) is None


def test_the_definition_model_is_accepted_too() -> None:
    policy = DefinitionRetryPolicy(maxAttempts=4, initialIntervalSeconds=2)
    assert next_delay(policy, 3, retry_after=None, rand=fixed(1).random) == policy.interval(3)


def test_huge_attempt_numbers_stay_at_the_cap() -> None:
    policy = RetryPolicy(backoff_coefficient=100, max_interval_seconds=300)
    assert next_delay(policy, 10**6, retry_after=None, rand=fixed(1).random) == 300


@pytest.mark.parametrize(
    "kwargs",
    [
        {"max_attempts": 0},
        {"initial_interval_seconds": -1},
        {"initial_interval_seconds": 10, "max_interval_seconds": 5},
        {"backoff_coefficient": 0.5},
    ],
)
def test_nonsense_policies_are_refused(kwargs: dict[str, float]) -> None:
    with pytest.raises(ValueError):
        RetryPolicy(**kwargs)  # type: ignore[arg-type]


@given(policies, attempts, unit, retry_afters)
def test_delays_stay_between_zero_and_the_cap(
    policy: RetryPolicy, attempt: int, r: float, retry_after: float | None
) -> None:
    delay = next_delay(policy, attempt, retry_after=retry_after, rand=lambda: r)
    assert 0 <= delay <= policy.max_interval_seconds


@given(policies, attempts, unit)
def test_delays_stay_within_the_jitter_band(policy: RetryPolicy, attempt: int, r: float) -> None:
    try:
        growth = policy.initial_interval_seconds * policy.backoff_coefficient ** (attempt - 1)
    except OverflowError:
        growth = float("inf")
    ceiling = min(policy.max_interval_seconds, growth)
    delay = next_delay(policy, attempt, retry_after=None, rand=lambda: r)
    assert ceiling / 2 - 1e-9 <= delay <= ceiling + 1e-9


@given(policies, attempts, unit)
def test_delays_never_shrink_from_one_attempt_to_the_next(
    policy: RetryPolicy, attempt: int, r: float
) -> None:
    first = next_delay(policy, attempt, retry_after=None, rand=lambda: r)
    second = next_delay(policy, attempt + 1, retry_after=None, rand=lambda: r)
    assert second >= first


@given(policies, attempts, unit, st.floats(min_value=0, max_value=1e9))
def test_retry_after_is_a_floor_up_to_the_cap(
    policy: RetryPolicy, attempt: int, r: float, retry_after: float
) -> None:
    delay = next_delay(policy, attempt, retry_after=retry_after, rand=lambda: r)
    assert delay >= min(retry_after, policy.max_interval_seconds)


@pytest.mark.parametrize("r", [-1.0, 2.0, float("nan")])
def test_a_misbehaving_rand_cannot_leave_the_bounds(r: float) -> None:
    policy = RetryPolicy(max_interval_seconds=10)
    assert 0 <= next_delay(policy, 3, retry_after=float("nan"), rand=lambda: r) <= 10


@pytest.mark.parametrize(
    ("value", "seconds"),
    [
        ("120", 120.0),
        (" 0 ", 0.0),
        ("1.5", 1.5),
        ("9" * 400, 1e15),
        ("Fri, 01 May 2026 12:00:30 GMT", 30.0),
        ("Friday, 01-May-26 12:01:00 GMT", 60.0),
        ("Fri May  1 12:00:10 2026", 10.0),
        ("Fri, 01 May 2026 11:00:00 GMT", 0.0),
        ("Fri, 01 May 2026 14:00:00 +0200", 0.0),
        ("-5", None),
        ("soon", None),
        ("", None),
    ],
)
def test_parse_retry_after(value: str, seconds: float | None) -> None:
    assert parse_retry_after(value, now=NOW) == seconds


def test_parse_retry_after_counts_from_now() -> None:
    later = NOW + timedelta(seconds=90)
    assert parse_retry_after("Fri, 01 May 2026 12:01:30 GMT", now=later) == 0.0
