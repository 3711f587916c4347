"""Queue upkeep: the jobs table is vacuumed when it needs it, whatever autovacuum does.

Every job row is inserted, updated by its claim and deleted when its step ends, so the
queue's table makes dead rows at the step rate (a thousand a second on one small
machine). Autovacuum clears them when it runs, but it may not: a server with
`autovacuum = off` (seen on a shared test server), or one whose few autovacuum workers
are busy elsewhere for minutes, lets the table and its indexes grow without bound, and
every claim and count reads past the dead rows. Measured by bench/soak_bench.py with
autovacuum off: the jobs heap grew from 0 to 69 MB (400,000 dead rows, 234 live) in
eight minutes and the claim rate fell by half.

So the process that runs retention (one worker at a time is enough; any may) also looks
at the table's statistics every `FLOWSYNC_QUEUE_VACUUM_INTERVAL_SECONDS` and runs
`VACUUM (ANALYZE) jobs` itself when the dead rows are many (more than `MIN_DEAD` and
more than the live ones) and no vacuum, manual or automatic, has run on it within the
interval. When autovacuum keeps up, this finds nothing to do; a plain VACUUM takes no
lock that claims or writes wait for. ANALYZE comes with it because a server without
autovacuum never refreshes the planner's statistics either.
"""

from __future__ import annotations

import logging
from dataclasses import dataclass
from datetime import datetime, timedelta

import asyncpg

log = logging.getLogger("flowsync.retention")

# Fewer dead rows than this are not worth a vacuum: a few hundred kilobytes of heap.
MIN_DEAD = 10_000

_STATS = """
SELECT s.n_live_tup AS live, s.n_dead_tup AS dead,
       greatest(s.last_vacuum, s.last_autovacuum) AS last_vacuum,
       EXISTS (SELECT 1 FROM pg_stat_progress_vacuum p WHERE p.relid = s.relid) AS running,
       now() AS now
  FROM pg_stat_user_tables s
 WHERE s.relid = 'jobs'::regclass
"""

_VACUUM = "VACUUM (ANALYZE) jobs"


@dataclass(frozen=True, slots=True)
class TableStats:
    """What the server's statistics say of a table now."""

    live: int
    dead: int
    last_vacuum: datetime | None
    running: bool
    now: datetime


def needs_vacuum(stats: TableStats, interval: timedelta, min_dead: int = MIN_DEAD) -> bool:
    """Whether the table should be vacuumed now: many dead rows, more than live ones,
    no vacuum running, and none finished within `interval`."""
    if stats.running or stats.dead < min_dead or stats.dead <= stats.live:
        return False
    return stats.last_vacuum is None or stats.now - stats.last_vacuum >= interval


class QueueUpkeep:
    """Vacuums the jobs table when `needs_vacuum` says so."""

    def __init__(self, interval: float, min_dead: int = MIN_DEAD):
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.min_dead = min_dead

    async def stats(self, conn: asyncpg.Connection) -> TableStats:
        """The jobs table's statistics now."""
        row = await conn.fetchrow(_STATS)
        if row is None:  # the statistics have no row for it yet
            return TableStats(0, 0, None, False, await conn.fetchval("SELECT now()"))
        return TableStats(row["live"], row["dead"], row["last_vacuum"], row["running"],
                          row["now"])  # fmt: skip

    async def run(self, conn: asyncpg.Connection) -> TableStats | None:
        """Vacuum the jobs table if it needs it; the statistics that decided, or None when
        nothing was done. `conn` must not be in a transaction (VACUUM cannot be)."""
        stats = await self.stats(conn)
        if not needs_vacuum(stats, timedelta(seconds=self.interval), self.min_dead):
            return None
        await conn.execute(_VACUUM)
        log.info(
            "vacuumed the jobs table (%d dead rows, %d live; last vacuum %s)",
            stats.dead, stats.live,
            "never" if stats.last_vacuum is None else stats.last_vacuum.isoformat(),
        )  # fmt: skip
        return stats
