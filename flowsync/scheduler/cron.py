"""Cron schedules and misfire policies: pure functions of their inputs.

Nothing here reads a clock or a database; callers pass `now`. Instants going in are
timezone-aware datetimes; instants coming out are in UTC.

What a schedule means, in the trigger's IANA time zone (croniter computes local times):

* An expression has 5 fields (`minute hour day month weekday`), or 6 with seconds first
  (`second minute hour day month weekday`), or is an alias (`@hourly`, `@daily`, ...).
* Clocks jumping forward: a local time that does not exist fires at the next valid
  instant (`30 2 * * *` fires at 03:00 on that day); interval ticks inside the gap do
  not exist in real time and are not made up.
* Clocks falling back, as cron(8) does it: a schedule at fixed times (no `*` in its
  second, minute or hour field) fires a repeated local time once, at its first
  occurrence; a schedule with `*` there keeps its real-time rhythm through the repeated
  hour (`*/30 * * * *` fires every 30 minutes of real time, four times in that hour).

Misfires: a fire time later than `grace` behind `now` was missed (no scheduler ran). The
trigger's policy decides what happens to missed times: `skip` fires none of them,
`catch_up` fires the newest `max_catch_up` of them in order, `fire_once` fires the newest
one. Times within the grace are simply late and always fire. The work done is bounded by
the number of times fired, never by the length of the outage.
"""

from __future__ import annotations

import contextlib
import functools
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from enum import StrEnum
from typing import Any
from zoneinfo import ZoneInfo, ZoneInfoNotFoundError, available_timezones

from croniter import croniter

from flowsync.errors import Problem, TriggerInvalid

__all__ = [
    "DEFAULT_MAX_CATCH_UP",
    "MAX_FIRINGS_PER_CALL",
    "CronSchedule",
    "Firings",
    "Misfire",
    "MisfirePolicy",
    "due_firings",
    "schedule_from_config",
]

ALIASES = {
    "@yearly": "0 0 1 1 *",
    "@annually": "0 0 1 1 *",
    "@monthly": "0 0 1 * *",
    "@weekly": "0 0 * * 0",
    "@daily": "0 0 * * *",
    "@midnight": "0 0 * * *",
    "@hourly": "0 * * * *",
}
DEFAULT_MAX_CATCH_UP = 10
# On-time firings handed out per trigger per call; older ones count as missed.
MAX_FIRINGS_PER_CALL = 1000
_TICK = timedelta(microseconds=1)
# croniter's results are checked and filtered. A schedule at fixed times rejects each
# of its times in a repeated period (clocks falling back), which is at most 2 hours in
# tzdata: up to 7,200 in a row for one that fires every second of it (about 0.25 s, in
# that period only). 16 was too few: `0-59 1 * * *` (every minute of 01:xx) in New York
# raised AssertionError through its repeated hour (found by QA).
_MAX_CANDIDATES = 2 * 3600 + 16


@dataclass(frozen=True, slots=True)
class CronSchedule:
    """A valid cron expression in a time zone. Build it with `parse`."""

    expression: str
    timezone: str
    _expanded: str = field(repr=False, compare=False)
    _zone: ZoneInfo = field(repr=False, compare=False)
    _fixed_times: bool = field(repr=False, compare=False)

    @classmethod
    def parse(
        cls, expression: object, timezone: object = "UTC", *, path: str = "$.config"
    ) -> CronSchedule:
        """Check an expression and a time zone; `TriggerInvalid` names each bad field
        (`<path>.expression`, `<path>.timezone`), both at once when both are bad."""
        problems: list[Problem] = []
        zone: ZoneInfo | None = None
        if not isinstance(timezone, str) or not timezone.strip():
            problems.append(Problem(f"{path}.timezone", "must be an IANA time zone name"))
        else:
            try:
                zone = ZoneInfo(timezone.strip())
            except (ZoneInfoNotFoundError, ValueError, OSError):
                problems.append(
                    Problem(
                        f"{path}.timezone",
                        f"unknown time zone {timezone!r}; use an IANA name such as "
                        "'Europe/Berlin' or 'UTC'",
                    )
                )
        expanded, problem = _expand(expression)
        if problem is not None:
            problems.append(Problem(f"{path}.expression", problem))
        if problems or zone is None or expanded is None:
            raise TriggerInvalid("The cron schedule is not valid.", problems)
        fields = expanded.split()
        clock_fields = fields[:3] if len(fields) == 6 else fields[:2]
        schedule = cls(
            expression=" ".join(str(expression).split()),
            timezone=timezone.strip() if isinstance(timezone, str) else "UTC",
            _expanded=expanded,
            _zone=zone,
            _fixed_times=not any(f.startswith("*") for f in clock_fields),
        )
        try:
            schedule.next_after(datetime(2000, 1, 1, tzinfo=UTC))
        except (ValueError, KeyError) as exc:  # croniter's "no date found" is a ValueError
            raise TriggerInvalid(
                "The cron schedule is not valid.",
                [Problem(f"{path}.expression", "never fires (no such date)")],
            ) from exc
        return schedule

    @property
    def zone(self) -> ZoneInfo:
        """The schedule's time zone."""
        return self._zone

    def next_after(self, instant: datetime) -> datetime:
        """The first fire time strictly after `instant`, in UTC."""
        it = croniter(self._expanded, instant.astimezone(self._zone), second_at_beginning=True)
        for _ in range(_MAX_CANDIDATES):
            found = self._accept(it.get_next(datetime), instant, after=True)
            if found is not None:
                return found
        raise AssertionError(f"croniter found no next time for {self.expression!r}")

    def previous_before(self, instant: datetime) -> datetime | None:
        """The last fire time strictly before `instant`, in UTC (None: none for decades)."""
        it = croniter(self._expanded, instant.astimezone(self._zone), second_at_beginning=True)
        for _ in range(_MAX_CANDIDATES):
            try:
                candidate = it.get_prev(datetime)
            except ValueError:  # croniter found nothing within its search window
                return None
            found = self._accept(candidate, instant, after=False)
            if found is not None:
                return found
        return None

    def _accept(self, candidate: datetime, instant: datetime, *, after: bool) -> datetime | None:
        utc = candidate.astimezone(UTC)
        if (utc <= instant) if after else (utc >= instant):
            return None  # croniter may return the start itself around DST changes
        if self._fixed_times and _second_occurrence(utc.astimezone(self._zone)):
            return None
        return utc


def _second_occurrence(local: datetime) -> bool:
    """Whether `local` (converted from UTC, so its fold is right) is the second time its
    wall-clock reading occurs that day (clocks fell back)."""
    return local.fold == 1 and local.replace(fold=0).utcoffset() != local.utcoffset()


def _expand(expression: object) -> tuple[str | None, str | None]:
    """(croniter expression, None) or (None, what is wrong)."""
    if not isinstance(expression, str) or not expression.strip():
        return None, "must be a cron expression such as '*/5 * * * *'"
    text = " ".join(expression.split())
    if text.startswith("@"):
        alias = ALIASES.get(text.lower())
        if alias is None:
            return None, f"unknown alias {text!r}; use one of {', '.join(sorted(ALIASES))}"
        return alias, None
    count = len(text.split())
    if count not in (5, 6):
        return None, (
            f"has {count} field{'s' if count != 1 else ''}; use 5 (minute hour day month "
            "weekday) or 6 (second minute hour day month weekday)"
        )
    chance = _random_field(text)
    if chance is not None:
        return None, chance
    valid = False
    with contextlib.suppress(Exception):  # croniter raises assorted errors on odd input
        valid = bool(croniter.is_valid(text, second_at_beginning=True))
    if not valid:
        return None, f"{text!r} is not a valid cron expression"
    return text, None


def _random_field(text: str) -> str | None:
    """What is wrong with a field that croniter would fill in at random (`R`, `R(0-5)`)
    or by a hash (`H`), else None. croniter draws `R` again each time it reads the
    expression, so the scheduler, `nextFireTimes` and a backfill would each find other
    times (found by QA: `R * * * *` was accepted and fired when it happened to)."""
    for number, value in enumerate(text.split(), start=1):
        for item in value.split(","):
            head = item[:1].upper()
            if head in ("R", "H") and (len(item) == 1 or item[1] in "(/"):
                kind = "random" if head == "R" else "hashed"
                return (
                    f"field {number} ({value!r}) is a {kind} value, which FlowSync does not "
                    "support: a schedule must name the same times each time it is read; "
                    "write the minute or hour you want"
                )
    return None


class MisfirePolicy(StrEnum):
    """What to do with fire times that were missed while no scheduler ran."""

    SKIP = "skip"
    CATCH_UP = "catch_up"
    FIRE_ONCE = "fire_once"


@dataclass(frozen=True, slots=True)
class Misfire:
    """A trigger's misfire policy; `max_catch_up` matters for `catch_up` only."""

    policy: MisfirePolicy = MisfirePolicy.FIRE_ONCE
    max_catch_up: int = DEFAULT_MAX_CATCH_UP


@dataclass(frozen=True, slots=True)
class Firings:
    """What is due: the times to fire now (oldest first), the next fire time after now,
    and whether any time was missed (beyond the grace)."""

    fire: tuple[datetime, ...]
    next_run_at: datetime
    misfired: bool = False


def due_firings(
    schedule: CronSchedule,
    misfire: Misfire,
    next_run_at: datetime,
    now: datetime,
    *,
    grace: timedelta,
    limit: int = MAX_FIRINGS_PER_CALL,
) -> Firings:
    """The fire times due at `now` for a trigger whose next fire time was `next_run_at`.

    Every fire time in [`next_run_at`, `now`] is considered: those within `grace` of `now`
    fire (at most `limit`, the newest); older ones are missed and the policy picks among
    them. Walks backwards from `now`, so its cost is bounded by what it returns."""
    if next_run_at > now:
        return Firings((), next_run_at)
    cutoff = now - grace
    newest_first: list[datetime] = []
    t = schedule.previous_before(now + _TICK)
    while t is not None and t >= next_run_at and t >= cutoff and len(newest_first) < limit:
        newest_first.append(t)
        t = schedule.previous_before(t)
    misfired = t is not None and t >= next_run_at
    if misfired:
        wanted = {
            MisfirePolicy.SKIP: 0,
            MisfirePolicy.FIRE_ONCE: 1,
            MisfirePolicy.CATCH_UP: misfire.max_catch_up,
        }[misfire.policy]
        taken = 0
        while t is not None and t >= next_run_at and taken < wanted:
            newest_first.append(t)
            taken += 1
            t = schedule.previous_before(t)
    return Firings(tuple(reversed(newest_first)), schedule.next_after(now), misfired)


# Files of the time zone database that are not zones one can name: the host's own zone
# (`localtime`, another on every host a scheduler may run on) and tzdata's placeholder.
_NOT_ZONES = frozenset({"localtime", "Factory", "posixrules"})


@functools.cache
def _zone_names() -> frozenset[str]:
    return frozenset(available_timezones()) - _NOT_ZONES


def zone_problem(timezone: object, path: str = "$.config.timezone") -> Problem | None:
    """A problem when `timezone`, which ZoneInfo loaded, is not an IANA zone name:
    `localtime` and `Factory` (found by QA), or a file such as `posix/Europe/Paris` or
    `right/UTC` (leap seconds counted). Checked when a trigger is saved, not when a
    stored one is read (it keeps running as it did)."""
    if not isinstance(timezone, str) or timezone.strip() in _zone_names():
        return None
    return Problem(
        path,
        f"{timezone.strip()!r} is not an IANA time zone name; use one such as "
        "'Europe/Berlin' or 'UTC'",
    )


def schedule_from_config(config: Mapping[str, Any]) -> tuple[CronSchedule, Misfire]:
    """The schedule and misfire policy of a stored CRON trigger config (as normalised by
    the trigger service). Raises `TriggerInvalid` when it no longer parses."""
    schedule = CronSchedule.parse(config.get("expression"), config.get("timezone", "UTC"))
    raw = config.get("misfire")
    misfire = Misfire()
    if isinstance(raw, Mapping):
        try:
            policy = MisfirePolicy(raw.get("policy", MisfirePolicy.FIRE_ONCE.value))
        except ValueError as exc:
            raise TriggerInvalid(
                "The misfire policy is not valid.",
                [Problem("$.config.misfire.policy", f"unknown policy {raw.get('policy')!r}")],
            ) from exc
        count = raw.get("maxCatchUp", DEFAULT_MAX_CATCH_UP)
        misfire = Misfire(policy, count if isinstance(count, int) else DEFAULT_MAX_CATCH_UP)
    return schedule, misfire
