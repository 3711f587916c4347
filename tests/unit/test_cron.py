"""Cron schedules and misfire policies, with a fixed clock: time zones, daylight-saving
changes in Europe/Berlin and America/New_York, and what each policy fires after an
outage."""

from __future__ import annotations

import itertools
import time
from datetime import UTC, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsync.errors import DefinitionInvalid, TriggerInvalid
from flowsync.scheduler.cron import (
    CronSchedule,
    Misfire,
    MisfirePolicy,
    due_firings,
    schedule_from_config,
)
from flowsync.services.triggers import normalize_config

BERLIN = "Europe/Berlin"
NEW_YORK = "America/New_York"
GRACE = timedelta(seconds=60)


def utc(
    year: int, month: int, day: int, hour: int = 0, minute: int = 0, second: int = 0
) -> datetime:
    return datetime(year, month, day, hour, minute, second, tzinfo=UTC)


def series(schedule: CronSchedule, after: datetime, count: int) -> list[datetime]:
    out: list[datetime] = []
    for _ in range(count):
        after = schedule.next_after(after)
        out.append(after)
    return out


def local(times: list[datetime], zone: str) -> list[str]:
    return [t.astimezone(ZoneInfo(zone)).isoformat() for t in times]


# -- parsing ------------------------------------------------------------------------------


@pytest.mark.parametrize(
    "expression",
    ["*/5 * * * *", "0 9 * * 1-5", "*/10 * * * * *", "0 0 12 * * *", "@daily", "@HOURLY"],
)
def test_valid_expressions_parse(expression: str) -> None:
    schedule = CronSchedule.parse(expression, "UTC")
    assert schedule.next_after(utc(2024, 1, 1)) > utc(2024, 1, 1)


@pytest.mark.parametrize(
    ("expression", "message"),
    [
        ("* * *", "has 3 fields"),
        ("* * * * * * *", "has 7 fields"),
        ("61 * * * *", "not a valid cron expression"),
        ("*/0 * * * *", "not a valid cron expression"),
        ("every day", "has 2 fields"),
        ("@often", "unknown alias"),
        ("0 0 30 2 *", "never fires"),
        # croniter's random and hashed fields: other times each time it is read.
        ("R * * * *", "field 1 ('R') is a random value"),
        ("0 R(0-5) * * *", "field 2 ('R(0-5)') is a random value"),
        ("0 1,R * * *", "field 2 ('1,R') is a random value"),
        ("H/15 * * * *", "field 1 ('H/15') is a hashed value"),
        ("", "must be a cron expression"),
        (42, "must be a cron expression"),
    ],
)
def test_bad_expressions_name_the_expression_field(expression: object, message: str) -> None:
    with pytest.raises(TriggerInvalid) as caught:
        CronSchedule.parse(expression, "UTC")
    assert isinstance(caught.value, DefinitionInvalid) and caught.value.status == 422
    [problem] = caught.value.details
    assert problem.path == "$.config.expression"
    assert message in problem.message


@pytest.mark.parametrize("zone", ["Mars/Olympus", "", "../../etc/passwd", 3, "CEST"])
def test_bad_time_zones_name_the_timezone_field(zone: object) -> None:
    with pytest.raises(TriggerInvalid) as caught:
        CronSchedule.parse("* * * * *", zone)
    assert [p.path for p in caught.value.details] == ["$.config.timezone"]


@pytest.mark.parametrize("zone", ["localtime", "Factory", "posixrules", "right/UTC"])
def test_zone_files_that_are_no_zone_name_are_refused_at_save(zone: str) -> None:
    """ZoneInfo loads them where the host has them (so a stored trigger with one still
    runs); a trigger saved now may not name them."""
    with pytest.raises(TriggerInvalid) as caught:
        normalize_config("CRON", {"expression": "* * * * *", "timezone": zone}, max_body_bytes=1)
    assert [p.path for p in caught.value.details] == ["$.config.timezone"]
    assert "IANA" in caught.value.details[0].message  # unknown on a host without the file


@pytest.mark.parametrize("zone", ["UTC", "Europe/Berlin", " America/New_York ", "Etc/GMT+5"])
def test_iana_zone_names_are_saved(zone: str) -> None:
    config = {"expression": "0 9 * * *", "timezone": zone}
    assert normalize_config("CRON", config, max_body_bytes=1)["timezone"].strip() == zone.strip()


def test_both_fields_bad_are_reported_together() -> None:
    with pytest.raises(TriggerInvalid) as caught:
        CronSchedule.parse("nope", "Nowhere/City")
    assert {p.path for p in caught.value.details} == {
        "$.config.expression",
        "$.config.timezone",
    }


# -- next fire times ----------------------------------------------------------------------


def test_next_is_strictly_after_and_in_utc() -> None:
    schedule = CronSchedule.parse("0 * * * *", "UTC")
    assert schedule.next_after(utc(2024, 1, 1, 1)) == utc(2024, 1, 1, 2)
    assert schedule.next_after(utc(2024, 1, 1, 1, 0, 0) - timedelta(microseconds=1)) == utc(
        2024, 1, 1, 1
    )
    assert schedule.previous_before(utc(2024, 1, 1, 1)) == utc(2024, 1, 1, 0)


def test_six_fields_put_seconds_first() -> None:
    schedule = CronSchedule.parse("*/15 * * * * *", "UTC")
    start = utc(2024, 1, 1, 0, 0, 0) + timedelta(milliseconds=500)
    assert series(schedule, start, 3) == [
        utc(2024, 1, 1, 0, 0, 15),
        utc(2024, 1, 1, 0, 0, 30),
        utc(2024, 1, 1, 0, 0, 45),
    ]


def test_times_are_local_to_the_time_zone() -> None:
    schedule = CronSchedule.parse("0 9 * * *", BERLIN)
    # 09:00 in Berlin is 08:00 UTC in winter and 07:00 UTC in summer.
    assert schedule.next_after(utc(2024, 1, 15)) == utc(2024, 1, 15, 8)
    assert schedule.next_after(utc(2024, 7, 15)) == utc(2024, 7, 15, 7)


# Europe/Berlin: 2024-03-31 02:00 CET → 03:00 CEST; 2024-10-27 03:00 CEST → 02:00 CET.
# America/New_York: 2024-03-10 02:00 EST → 03:00 EDT; 2024-11-03 02:00 EDT → 01:00 EST.


def test_berlin_spring_forward_a_missing_time_fires_once_at_the_next_valid_one() -> None:
    schedule = CronSchedule.parse("30 2 * * *", BERLIN)
    assert local(series(schedule, utc(2024, 3, 29, 12), 3), BERLIN) == [
        "2024-03-30T02:30:00+01:00",
        "2024-03-31T03:00:00+02:00",  # 02:30 does not exist that day
        "2024-04-01T02:30:00+02:00",
    ]


def test_berlin_spring_forward_intervals_skip_the_missing_hour() -> None:
    schedule = CronSchedule.parse("*/30 * * * *", BERLIN)
    assert local(series(schedule, utc(2024, 3, 31, 0, 10), 3), BERLIN) == [
        "2024-03-31T01:30:00+01:00",
        "2024-03-31T03:00:00+02:00",
        "2024-03-31T03:30:00+02:00",
    ]


def test_berlin_fall_back_a_repeated_time_fires_once() -> None:
    schedule = CronSchedule.parse("30 2 * * *", BERLIN)
    times = series(schedule, utc(2024, 10, 26, 12), 2)
    assert local(times, BERLIN) == [
        "2024-10-27T02:30:00+02:00",  # the first 02:30; the second one does not fire
        "2024-10-28T02:30:00+01:00",
    ]
    # Also when the clock is already inside the repeated hour.
    inside = utc(2024, 10, 27, 0, 45)  # 02:45 CEST, before the clocks go back
    assert schedule.next_after(inside) == utc(2024, 10, 28, 1, 30)
    assert schedule.previous_before(utc(2024, 10, 27, 12)) == utc(2024, 10, 27, 0, 30)


def test_berlin_fall_back_intervals_keep_their_real_time_rhythm() -> None:
    schedule = CronSchedule.parse("*/30 * * * *", BERLIN)
    times = series(schedule, utc(2024, 10, 26, 23, 45), 5)
    assert local(times, BERLIN) == [
        "2024-10-27T02:00:00+02:00",
        "2024-10-27T02:30:00+02:00",
        "2024-10-27T02:00:00+01:00",
        "2024-10-27T02:30:00+01:00",
        "2024-10-27T03:00:00+01:00",
    ]
    assert all(b - a == timedelta(minutes=30) for a, b in itertools.pairwise(times))


def test_new_york_spring_forward() -> None:
    schedule = CronSchedule.parse("30 2 * * *", NEW_YORK)
    assert local(series(schedule, utc(2024, 3, 9, 12), 2), NEW_YORK) == [
        "2024-03-10T03:00:00-04:00",
        "2024-03-11T02:30:00-04:00",
    ]


def test_new_york_fall_back_a_repeated_time_fires_once() -> None:
    schedule = CronSchedule.parse("30 1 * * *", NEW_YORK)
    assert local(series(schedule, utc(2024, 11, 2, 12), 2), NEW_YORK) == [
        "2024-11-03T01:30:00-04:00",
        "2024-11-04T01:30:00-05:00",
    ]


def test_new_york_fall_back_per_second_schedule_has_no_gap() -> None:
    schedule = CronSchedule.parse("* * * * * *", NEW_YORK)
    start = utc(2024, 11, 3, 5, 59, 58)  # 01:59:58 EDT, two seconds before the change
    times = series(schedule, start, 4)
    assert times == [start + timedelta(seconds=n) for n in range(1, 5)]


_ZONES = st.sampled_from([BERLIN, NEW_YORK, "UTC", "Australia/Lord_Howe", "Asia/Kolkata"])
_EXPRESSIONS = st.sampled_from(
    ["30 2 * * *", "*/30 * * * *", "0 1,2,3 * * *", "15 */2 * * *", "*/20 2 * * *", "0 0 * * 0"]
)
# Instants around the 2024 transitions in both directions.
_DAYS = [(3, 10), (3, 31), (4, 7), (10, 6), (10, 27), (11, 3)]
_INSTANTS = st.sampled_from([utc(2024, month, day) for month, day in _DAYS]).flatmap(
    lambda day: st.integers(-36 * 3600, 36 * 3600).map(lambda s: day + timedelta(seconds=s))
)


@settings(max_examples=300, deadline=None)
@given(expression=_EXPRESSIONS, zone=_ZONES, instant=_INSTANTS)
def test_forward_and_backward_agree(expression: str, zone: str, instant: datetime) -> None:
    """No fire time lies between an instant and the next one, walking either way."""
    schedule = CronSchedule.parse(expression, zone)
    following = schedule.next_after(instant)
    assert following > instant
    before = schedule.previous_before(following)
    assert before is not None and before <= instant
    assert schedule.next_after(before) == following


# -- misfire policies ---------------------------------------------------------------------

EVERY_MINUTE = CronSchedule.parse("* * * * *", "UTC")
NOW = utc(2024, 5, 1, 12, 0, 30)


def test_nothing_is_due_before_the_next_run() -> None:
    due = due_firings(EVERY_MINUTE, Misfire(), utc(2024, 5, 1, 12, 1), NOW, grace=GRACE)
    assert due.fire == () and due.next_run_at == utc(2024, 5, 1, 12, 1) and not due.misfired


def test_an_on_time_tick_fires_and_moves_on() -> None:
    due = due_firings(EVERY_MINUTE, Misfire(), utc(2024, 5, 1, 12), NOW, grace=GRACE)
    assert due.fire == (utc(2024, 5, 1, 12),)
    assert due.next_run_at == utc(2024, 5, 1, 12, 1)
    assert not due.misfired


def test_late_within_the_grace_is_not_a_misfire() -> None:
    every_second = CronSchedule.parse("* * * * * *", "UTC")
    now = utc(2024, 5, 1, 12, 0, 3) + timedelta(milliseconds=200)
    for policy in MisfirePolicy:
        due = due_firings(
            every_second, Misfire(policy), utc(2024, 5, 1, 12), now, grace=timedelta(seconds=5)
        )
        assert due.fire == tuple(utc(2024, 5, 1, 12, 0, s) for s in range(4)), policy
        assert not due.misfired


# The scheduler stopped at 11:00:00 (next run 11:00) and starts again at 12:00:30: the
# ticks 11:00 … 11:59 were missed (12:00 is within the grace of 60 s).
STOPPED = utc(2024, 5, 1, 11)


def test_skip_fires_none_of_the_missed_ticks() -> None:
    due = due_firings(EVERY_MINUTE, Misfire(MisfirePolicy.SKIP), STOPPED, NOW, grace=GRACE)
    assert due.fire == (utc(2024, 5, 1, 12),)  # only the one that is on time
    assert due.next_run_at == utc(2024, 5, 1, 12, 1)
    assert due.misfired


def test_catch_up_fires_the_newest_n_missed_ticks_in_order() -> None:
    due = due_firings(EVERY_MINUTE, Misfire(MisfirePolicy.CATCH_UP, 3), STOPPED, NOW, grace=GRACE)
    assert due.fire == (
        utc(2024, 5, 1, 11, 57),
        utc(2024, 5, 1, 11, 58),
        utc(2024, 5, 1, 11, 59),
        utc(2024, 5, 1, 12),
    )
    assert due.next_run_at == utc(2024, 5, 1, 12, 1)


def test_catch_up_with_fewer_missed_than_allowed_fires_them_all() -> None:
    start = utc(2024, 5, 1, 11, 57)
    due = due_firings(EVERY_MINUTE, Misfire(MisfirePolicy.CATCH_UP, 10), start, NOW, grace=GRACE)
    assert due.fire == (*(utc(2024, 5, 1, 11, m) for m in (57, 58, 59)), utc(2024, 5, 1, 12))


def test_fire_once_fires_the_newest_missed_tick() -> None:
    due = due_firings(EVERY_MINUTE, Misfire(MisfirePolicy.FIRE_ONCE), STOPPED, NOW, grace=GRACE)
    assert due.fire == (utc(2024, 5, 1, 11, 59), utc(2024, 5, 1, 12))
    assert due.misfired


def test_a_daily_schedule_after_a_week_down() -> None:
    daily = CronSchedule.parse("0 6 * * *", BERLIN)
    next_run = utc(2024, 4, 1, 4)  # 06:00 CEST on 1 April
    now = utc(2024, 4, 8, 9)
    once = due_firings(daily, Misfire(), next_run, now, grace=GRACE)
    assert once.fire == (utc(2024, 4, 8, 4),)
    assert once.next_run_at == utc(2024, 4, 9, 4)
    skip = due_firings(daily, Misfire(MisfirePolicy.SKIP), next_run, now, grace=GRACE)
    assert skip.fire == () and skip.next_run_at == utc(2024, 4, 9, 4) and skip.misfired
    caught_up = due_firings(daily, Misfire(MisfirePolicy.CATCH_UP, 2), next_run, now, grace=GRACE)
    assert caught_up.fire == (utc(2024, 4, 7, 4), utc(2024, 4, 8, 4))


def test_misfires_across_a_daylight_saving_change() -> None:
    # Down from Saturday to Monday over Berlin's fall-back night: 02:30 fired once a day.
    schedule = CronSchedule.parse("30 2 * * *", BERLIN)
    due = due_firings(
        schedule,
        Misfire(MisfirePolicy.CATCH_UP, 10),
        utc(2024, 10, 26, 0, 30),
        utc(2024, 10, 28, 6),
        grace=GRACE,
    )
    assert local(list(due.fire), BERLIN) == [
        "2024-10-26T02:30:00+02:00",
        "2024-10-27T02:30:00+02:00",
        "2024-10-28T02:30:00+01:00",
    ]


def test_a_long_outage_costs_only_what_is_fired() -> None:
    every_second = CronSchedule.parse("* * * * * *", "UTC")
    started = time.perf_counter()
    due = due_firings(
        every_second,
        Misfire(MisfirePolicy.CATCH_UP, 5),
        utc(2024, 1, 1),
        utc(2024, 3, 1),  # two months of missed seconds
        grace=timedelta(seconds=2),
    )
    assert time.perf_counter() - started < 1.0
    assert len(due.fire) == 5 + 3  # five missed, and the three within the grace
    assert due.fire[-1] == utc(2024, 3, 1)


def test_on_time_firings_are_bounded_per_call() -> None:
    every_second = CronSchedule.parse("* * * * * *", "UTC")
    now = utc(2024, 1, 1, 1)
    due = due_firings(
        every_second, Misfire(MisfirePolicy.SKIP), utc(2024, 1, 1), now,
        grace=timedelta(hours=1), limit=10,
    )  # fmt: skip
    assert due.fire == tuple(now - timedelta(seconds=s) for s in range(9, -1, -1))
    assert due.misfired


def test_stored_configs_parse_with_their_policy() -> None:
    schedule, misfire = schedule_from_config(
        {
            "expression": "0 * * * *",
            "timezone": BERLIN,
            "misfire": {"policy": "catch_up", "maxCatchUp": 4},
        }
    )
    assert schedule.timezone == BERLIN
    assert misfire == Misfire(MisfirePolicy.CATCH_UP, 4)
    assert schedule_from_config({"expression": "0 * * * *"})[1] == Misfire()


@pytest.mark.parametrize("expression", ["0 0 * * thu", "0 0 * mar,apr *", "0 0 * * fri#2"])
def test_named_days_and_months_are_not_taken_for_random_fields(expression: str) -> None:
    schedule = CronSchedule.parse(expression, "UTC")
    assert schedule.next_after(utc(2024, 1, 1)) == schedule.next_after(utc(2024, 1, 1))


@pytest.mark.parametrize(
    ("expression", "after", "before"),
    [
        # Every minute of 01:xx: the repeated 01:xx (06:00-06:59 UTC) is 60 candidates.
        ("0-59 1 * * *", utc(2026, 11, 2, 6), utc(2026, 11, 1, 5, 59)),
        # Every second of it: 3,600 candidates.
        ("0-59 0-59 1 * * *", utc(2026, 11, 2, 6), utc(2026, 11, 1, 5, 59, 59)),
    ],
)
def test_a_fixed_schedule_skips_a_whole_repeated_hour(
    expression: str, after: datetime, before: datetime
) -> None:
    # Found by QA: past 16 rejected candidates next_after raised AssertionError.
    schedule = CronSchedule.parse(expression, "America/New_York")
    for now in (utc(2026, 11, 1, 6, 0, 30), utc(2026, 11, 1, 6, 59, 30)):
        assert schedule.next_after(now) == after
        assert schedule.previous_before(now) == before
