"""`flowsync prune [--dry-run]`: one pass now, and what it did (or would do) per kind."""

from __future__ import annotations

import asyncio
import sys
from datetime import UTC, datetime

import asyncpg

from flowsync.config import Settings
from flowsync.db.connect import connect
from flowsync.errors import ConfigurationError
from flowsync.retention.prune import APPLICATION_NAME, Policy, Pruned, Pruner


def _when(instant: datetime) -> str:
    return instant.astimezone(UTC).strftime("%Y-%m-%dT%H:%M:%SZ")


def _rule(cutoff: datetime | None, verb: str, setting: str, days: int) -> str:
    if cutoff is None:
        return f"kept forever ({setting}={days})"
    return f"{verb} before {_when(cutoff)} ({setting}={days})"


def describe(settings: Settings, pruned: Pruned) -> list[str]:
    """One line per kind: how many rows, and the rule that picks them (cutoff and
    setting), or that the kind is kept forever."""
    cut = pruned.cutoffs
    runs = (
        f"{pruned.executions} (with {pruned.steps} steps, {pruned.events} events, "
        f"{pruned.run_dead_letters} dead letters)"
    )
    rows = [
        ("finished runs", runs, cut.executions, "finished",
         "FLOWSYNC_RETAIN_EXECUTIONS_DAYS", settings.retain_executions_days),
        ("dead letters", str(pruned.dead_letters), cut.dead_letters, "made",
         "FLOWSYNC_RETAIN_DEAD_LETTERS_DAYS", settings.retain_dead_letters_days),
        ("audit entries", str(pruned.audit), cut.audit, "written",
         "FLOWSYNC_RETAIN_AUDIT_DAYS", settings.retain_audit_days),
    ]  # fmt: skip
    lines = []
    for kind, count, cutoff, verb, setting, days in rows:
        rule = _rule(cutoff, verb, setting, days)
        lines.append(f"  {kind}: {rule}" if cutoff is None else f"  {kind}: {count}; {rule}")
    lines.append(f"  webhook signatures: {pruned.signatures}; expired before {_when(cut.now)}")
    return lines


async def _check_schema(conn: asyncpg.Connection) -> None:
    from flowsync.db.migrate import head_revision

    head = head_revision()
    try:
        current = await conn.fetchval("SELECT version_num FROM alembic_version")
    except asyncpg.UndefinedTableError:
        current = None
    if current != head:
        raise ConfigurationError(
            f"The database schema is at revision {current or 'none'}, not {head}: run "
            "`flowsync migrate` first."
        )


async def _once(settings: Settings, url: str, dry_run: bool) -> Pruned | None:
    conn = await connect(url, server_settings={"application_name": APPLICATION_NAME}, timeout=10)
    try:
        await _check_schema(conn)
        pruner = Pruner(Policy.from_settings(settings))
        return await (pruner.preview(conn) if dry_run else pruner.prune(conn))
    finally:
        await conn.close()


def prune_once(settings: Settings, *, dry_run: bool) -> int:
    """Run one pass (or count what it would delete) and print it; the exit status: 1
    when another process holds the retention lock (nothing was deleted)."""
    from flowsync.runtime import database_url

    with database_url(settings) as url:
        pruned = asyncio.run(_once(settings, url, dry_run))
    if pruned is None:
        print(
            "error: another process is pruning now (it holds the retention lock); "
            "nothing was deleted. Try again when it is done.",
            file=sys.stderr,
        )
        return 1
    if dry_run:
        print(f"Dry run, nothing was deleted. At {_when(pruned.cutoffs.now)} a prune would delete:")
    else:
        print(f"Deleted at {_when(pruned.cutoffs.now)}:")
    for line in describe(settings, pruned):
        print(line)
    return 0
