"""Backfilling a cron trigger: one run per fire time in a past range, for every face.

A backfill fires the trigger's schedule (its expression in its time zone, as the
scheduler reads it) for each fire time in [`from`, `to`], both ends included, exactly as
the scheduler would have: the same input, `trigger.scheduledAt`, and idempotency key
(`flowsync.scheduler.scheduler.fire_at`). So a time the scheduler or an earlier backfill
fired starts nothing again; it counts as skipped. Runs beyond the trigger's
`maxConcurrentRuns` wait PENDING, holding no worker, and start as earlier ones end.

The whole range is one transaction, with the trigger locked as the scheduler locks it:
a refused backfill (a bad range, too many fire times, another owner's trigger, a full
queue) changes nothing. The misfire policy is not involved: it decides what the
scheduler does after an outage; a backfill fires every time asked for.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime

import asyncpg

from flowsync.engine.problems import kind_of
from flowsync.errors import InvalidInput, NotFound, Problem, shown
from flowsync.scheduler.cron import CronSchedule, schedule_from_config
from flowsync.scheduler.scheduler import fire_at, iso
from flowsync.services import audit
from flowsync.services.executions import ExecutionService
from flowsync.services.inputs import parse_id
from flowsync.services.principal import Principal, require

__all__ = ["DEFAULT_MAX_TICKS", "BackfillResult", "BackfillService", "fire_times"]

DEFAULT_MAX_TICKS = 10_000
_TICK = datetime.resolution
# The earliest instant a range may start at (far older ones overflow date arithmetic).
EARLIEST = datetime(1970, 1, 1, tzinfo=UTC)

_LOCK_TRIGGER_SQL = """
SELECT id, type, workflow_id, config FROM triggers
 WHERE id = $1 AND owner_id = $2
   FOR NO KEY UPDATE
"""


@dataclass(frozen=True, slots=True)
class BackfillResult:
    """What a backfill did: runs it started, and fire times it skipped because they
    were fired already (by the scheduler or an earlier backfill)."""

    started: int
    skipped: int


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _instant(value: object, field: str) -> datetime:
    """An ISO-8601 date-time with an offset (or `Z`), as a UTC instant."""
    if value is None or value == "":
        raise InvalidInput(
            f"A backfill needs `{field}`: a range without both ends is refused.",
            [Problem(field, "is required: an ISO-8601 date-time such as 2026-01-01T00:00:00Z")],
        )
    parsed: datetime | None = value if isinstance(value, datetime) else None
    if isinstance(value, str):
        try:
            parsed = datetime.fromisoformat(value.strip())
        except ValueError:
            parsed = None
    if parsed is None:
        raise InvalidInput(
            f"`{field}` is not an ISO-8601 date-time.",
            [Problem(field, f"must be an ISO-8601 date-time such as 2026-01-01T00:00:00Z, "
                            f"not {shown(value)!r}" if isinstance(value, str) else
                            f"must be an ISO-8601 date-time, not {kind_of(value)}")],
        )  # fmt: skip
    if parsed.tzinfo is None or parsed.utcoffset() is None:
        raise InvalidInput(
            f"`{field}` has no time zone.",
            [Problem(field, "must include its offset or Z (2026-01-01T00:00:00Z)")],
        )
    try:
        instant = parsed.astimezone(UTC)
    except OverflowError:  # beyond year 1 or 9999 in UTC
        instant = EARLIEST - _TICK if parsed.year == 1 else datetime.max.replace(tzinfo=UTC)
    if instant < EARLIEST:
        raise InvalidInput(
            f"`{field}` is too early.",
            [Problem(field, f"must not be before {iso(EARLIEST)}")],
        )
    return instant


def check_range(start: object, end: object, now: datetime) -> tuple[datetime, datetime]:
    """[`from`, `to`] as UTC instants: both given, ISO-8601 with an offset, `from` not
    after `to`, `to` not after `now` (fire times to come are the scheduler's).
    `InvalidInput` naming `from` or `to` otherwise."""
    problems: list[Problem] = []
    bounds: list[datetime] = []
    for value, field in ((start, "from"), (end, "to")):
        try:
            bounds.append(_instant(value, field))
        except InvalidInput as exc:
            problems.extend(exc.details)
    if problems:
        raise InvalidInput("The backfill range is not valid.", problems)
    lower, upper = bounds
    if lower > upper:
        raise InvalidInput(
            "The backfill range is reversed.",
            [Problem("to", f"must not be before `from` ({iso(lower)}), got {iso(upper)}")],
        )
    if upper > now:
        raise InvalidInput(
            "A backfill covers past fire times only.",
            [Problem("to", f"must not be after now ({iso(now)}); the scheduler fires "
                           "the times to come")],
        )  # fmt: skip
    return lower, upper


def fire_times(
    schedule: CronSchedule, lower: datetime, upper: datetime, *, limit: int
) -> list[datetime]:
    """The schedule's fire times in [`lower`, `upper`], oldest first (the scheduler's
    own rules: time zone, daylight-saving changes). `InvalidInput` naming `to` when there
    are more than `limit`; the cost is bounded by `limit`, not by the range."""
    times: list[datetime] = []
    at = schedule.next_after(lower - _TICK)
    while at <= upper:
        if len(times) == limit:
            raise InvalidInput(
                f"The backfill range holds more than {limit} fire times.",
                [Problem("to", f"the range from `from` holds more than {limit} fire times "
                               "(the server's FLOWSYNC_BACKFILL_MAX_TICKS); split it")],
            )  # fmt: skip
        times.append(at)
        at = schedule.next_after(at)
    return times


class BackfillService:
    """Backfill the caller's cron triggers."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        executions: ExecutionService,
        *,
        max_ticks: int = DEFAULT_MAX_TICKS,
        clock: Callable[[], datetime] = _utcnow,
    ):
        self._pool = pool
        self._executions = executions
        self._max_ticks = max_ticks
        self._clock = clock

    async def backfill(
        self, principal: Principal, trigger_id: object, start: object, end: object
    ) -> BackfillResult:
        """Start one run of cron trigger `trigger_id` per fire time in [`start`, `end`]
        (ISO-8601 date-times with offsets, or aware datetimes), each as the scheduler
        would have started it; times fired already are skipped. All or nothing: a
        refusal changes nothing. NotFound for another owner's trigger; InvalidInput
        naming `from`, `to` or `id` for a bad range, more than the server's
        `backfill_max_ticks` fire times, or a trigger that is not CRON; TriggerInvalid
        for a config that no longer parses; Backpressure while the queue is full."""
        require(principal, "BackfillService.backfill")
        tid = parse_id(trigger_id, "trigger")
        lower, upper = check_range(start, end, self._clock())
        await self._executions.check_backpressure()
        async with self._pool.acquire() as conn, conn.transaction():
            # Locked as the scheduler's claim locks it: a tick of this trigger waits (it
            # skips it, and fires its times next tick, finding these firings).
            row = await conn.fetchrow(_LOCK_TRIGGER_SQL, tid, principal.owner_id)
            if row is None:
                raise NotFound(f"No trigger with id {trigger_id}.")
            if row["type"] != "CRON":
                raise InvalidInput(
                    "Only a CRON trigger can be backfilled.",
                    [Problem("id", f"is a {row['type']} trigger, which has no schedule")],
                )
            config = row["config"] or {}
            schedule, _ = schedule_from_config(config)
            started = skipped = 0
            for at in fire_times(schedule, lower, upper, limit=self._max_ticks):
                fired = await fire_at(
                    conn, self._executions, principal, tid, row["workflow_id"], config, at
                )
                if fired:
                    started += 1
                else:
                    skipped += 1
            await audit.record_in(
                conn, principal, "trigger.backfilled", "trigger", tid,
                {"from": iso(lower), "to": iso(upper), "started": started,
                 "skipped": skipped},
            )  # fmt: skip
        return BackfillResult(started, skipped)
