"""When the queue's table is vacuumed (flowsync/retention/upkeep.py)."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import pytest

from flowsync.retention.upkeep import MIN_DEAD, QueueUpkeep, TableStats, needs_vacuum

NOW = datetime(2026, 12, 5, 12, 0, tzinfo=UTC)
MINUTE = timedelta(minutes=1)


def stats(dead: int, live: int = 100, last: datetime | None = None, running: bool = False):
    return TableStats(live=live, dead=dead, last_vacuum=last, running=running, now=NOW)


def test_many_dead_rows_and_no_vacuum_ever() -> None:
    assert needs_vacuum(stats(MIN_DEAD), MINUTE)


def test_few_dead_rows_are_left_alone() -> None:
    assert not needs_vacuum(stats(MIN_DEAD - 1), MINUTE)


def test_dead_rows_fewer_than_live_ones_are_left_alone() -> None:
    assert not needs_vacuum(stats(MIN_DEAD * 2, live=MIN_DEAD * 3), MINUTE)


def test_a_vacuum_within_the_interval_is_enough() -> None:
    assert not needs_vacuum(stats(MIN_DEAD * 5, last=NOW - MINUTE / 2), MINUTE)
    assert needs_vacuum(stats(MIN_DEAD * 5, last=NOW - MINUTE), MINUTE)


def test_a_vacuum_in_progress_is_not_joined() -> None:
    assert not needs_vacuum(stats(MIN_DEAD * 5, running=True), MINUTE)


def test_the_interval_must_be_positive() -> None:
    with pytest.raises(ValueError, match="interval"):
        QueueUpkeep(0)


def test_a_history_table_is_vacuumed_at_a_fifth_of_its_live_rows() -> None:
    # The history's live rows are many: a fifth of them dead (autovacuum's default scale
    # factor) is enough, where the queue waits for more dead rows than live ones.
    history = stats(MIN_DEAD * 3, live=MIN_DEAD * 10)
    assert needs_vacuum(history, MINUTE, scale=0.2)
    assert not needs_vacuum(history, MINUTE, scale=1.0)
    assert not needs_vacuum(stats(MIN_DEAD * 2, live=MIN_DEAD * 10), MINUTE, scale=0.2)
