"""Table upkeep: the queue's table, and the run history's, are vacuumed when they need
it, whatever autovacuum does.

Every job row is inserted, updated by its claim and deleted when its step ends, so the
queue's table makes dead rows at the step rate (a thousand a second on one small
machine). Autovacuum clears them when it runs, but it may not: a server with
`autovacuum = off` (seen on a shared test server), or one whose few autovacuum workers
are busy elsewhere for minutes, lets the table and its indexes grow without bound, and
every claim and count reads past the dead rows. Measured by bench/soak_bench.py with
autovacuum off: the jobs heap grew from 0 to 69 MB (400,000 dead rows, 234 live) in
eight minutes and the claim rate fell by half.

The run history makes dead rows too: a run's row is updated at each of its transitions,
a step's row three or four times, and retention deletes whole runs with their steps and
events. Without a vacuum none of that space is reused: the soak (autovacuum off, a 60 s
retention window) ended with 126 MB of executions, 415 MB of step_executions and 528 MB
of execution_events, almost all of it dead rows.

So the process that runs retention (one worker at a time is enough; any may) also looks
at each table's statistics every `FLOWSYNC_QUEUE_VACUUM_INTERVAL_SECONDS` and runs
`VACUUM (ANALYZE)` on it itself when its dead rows are many (more than `MIN_DEAD`, and
more than the table's share of its live rows: all of them for the queue, whose live rows
are few; a fifth, autovacuum's default scale factor, for the history) and no vacuum,
manual or automatic, has run on it within the interval. When autovacuum keeps up, this
finds nothing to do; a plain VACUUM takes no lock that claims or writes wait for.
ANALYZE comes with it because a server without autovacuum never refreshes the planner's
statistics either.
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
       -- This database's vacuums only: the view lists every database's, and databases
       -- made from one template share their tables' OIDs.
       EXISTS (SELECT 1 FROM pg_stat_progress_vacuum p
                WHERE p.relid = s.relid
                  AND p.datid = (SELECT oid FROM pg_database
                                  WHERE datname = current_database())) AS running,
       now() AS now
  FROM pg_stat_user_tables s
 WHERE s.relid = $1::regclass
"""

# The tables kept, each with the share of its live rows its dead rows must exceed.
TABLES: tuple[tuple[str, float], ...] = (
    ("jobs", 1.0),
    ("executions", 0.2),
    ("step_executions", 0.2),
    ("execution_events", 0.2),
)


@dataclass(frozen=True, slots=True)
class TableStats:
    """What the server's statistics say of a table now."""

    live: int
    dead: int
    last_vacuum: datetime | None
    running: bool
    now: datetime
    table: str = "jobs"


def needs_vacuum(
    stats: TableStats, interval: timedelta, min_dead: int = MIN_DEAD, scale: float = 1.0
) -> bool:
    """Whether the table should be vacuumed now: many dead rows, more than `scale` times
    the live ones, no vacuum running, and none finished within `interval`."""
    if stats.running or stats.dead < min_dead or stats.dead <= stats.live * scale:
        return False
    return stats.last_vacuum is None or stats.now - stats.last_vacuum >= interval


class QueueUpkeep:
    """Vacuums the queue's and the history's tables (`TABLES`) when `needs_vacuum` says
    so."""

    def __init__(
        self,
        interval: float,
        min_dead: int = MIN_DEAD,
        tables: tuple[tuple[str, float], ...] = TABLES,
    ):
        if interval <= 0:
            raise ValueError("interval must be positive")
        self.interval = interval
        self.min_dead = min_dead
        self.tables = tables

    async def stats(self, conn: asyncpg.Connection, table: str = "jobs") -> TableStats:
        """A table's statistics now."""
        row = await conn.fetchrow(_STATS, table)
        if row is None:  # the statistics have no row for it yet
            return TableStats(0, 0, None, False, await conn.fetchval("SELECT now()"), table)
        return TableStats(row["live"], row["dead"], row["last_vacuum"], row["running"],
                          row["now"], table)  # fmt: skip

    async def run(self, conn: asyncpg.Connection) -> list[TableStats]:
        """Vacuum each table that needs it, one after the other; the statistics that
        decided, of each table vacuumed. `conn` must not be in a transaction (VACUUM
        cannot be)."""
        done = []
        for table, scale in self.tables:
            stats = await self.stats(conn, table)
            if not needs_vacuum(stats, timedelta(seconds=self.interval), self.min_dead, scale):
                continue
            await conn.execute(f"VACUUM (ANALYZE) {table}")  # a name from TABLES
            log.info(
                "vacuumed the %s table (%d dead rows, %d live; last vacuum %s)",
                table, stats.dead, stats.live,
                "never" if stats.last_vacuum is None else stats.last_vacuum.isoformat(),
            )  # fmt: skip
            done.append(stats)
        return done
