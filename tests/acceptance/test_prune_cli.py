"""`flowsync prune --dry-run` and `flowsync prune` as a user runs them: a real process on
a test database; and a bad retention setting refused in one line naming it."""

from __future__ import annotations

import re
import subprocess
import sys
from collections.abc import Callable

import pytest

from tests.integration.test_retention import age_run, finished_runs, table_counts
from tests.support.env import Env
from tests.support.processes import ROOT, Process, flowsync_env
from tests.support.workers import wait_until


def flowsync(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowsync", *args],
        env=env, cwd=ROOT, capture_output=True, text=True, timeout=120,
    )  # fmt: skip


async def test_dry_run_then_prune(running: Env, db_url: str) -> None:
    pool = running.services.pool
    old = await finished_runs(running, 2)
    await finished_runs(running, 1)
    for execution_id in old:
        await age_run(pool, execution_id, 40)
    steps = await pool.fetchval(
        "SELECT count(*) FROM step_executions WHERE execution_id = ANY($1::uuid[])", old
    )
    env = flowsync_env(db_url, retain_executions_days=30)
    before = await table_counts(pool)

    dry = flowsync("prune", "--dry-run", env=env)

    assert dry.returncode == 0, dry.stderr
    assert "Dry run, nothing was deleted" in dry.stdout
    line = re.search(r"^  finished runs: (\d+) \(with (\d+) steps.*; finished before (\S+) "
                     r"\(FLOWSYNC_RETAIN_EXECUTIONS_DAYS=30\)$", dry.stdout, re.M)  # fmt: skip
    assert line, dry.stdout
    assert (int(line.group(1)), int(line.group(2))) == (2, steps)
    assert "  audit entries: kept forever (FLOWSYNC_RETAIN_AUDIT_DAYS=0)" in dry.stdout
    assert await table_counts(pool) == before

    done = flowsync("prune", env=env)

    assert done.returncode == 0, done.stderr
    assert f"  finished runs: 2 (with {steps} steps" in done.stdout
    assert (await table_counts(pool))["executions"] == before["executions"] - 2
    again = flowsync("prune", "--dry-run", env=env)
    assert "  finished runs: 0 (with 0 steps" in again.stdout


@pytest.mark.parametrize("value", ["-1", "thirty", "1.5"])
def test_a_bad_retention_setting_is_one_line_naming_it(value: str) -> None:
    env = flowsync_env("postgresql://unused/unused", retain_audit_days=value)
    result = flowsync("prune", "--dry-run", env=env)
    assert result.returncode == 2
    lines = result.stderr.strip().splitlines()
    assert len(lines) == 1, result.stderr
    assert lines[0].startswith(f"error: FLOWSYNC_RETAIN_AUDIT_DAYS='{value}': "), lines
    assert "whole number of days" in lines[0]


async def test_a_worker_prunes_on_its_own(running: Env, workers: Callable[..., Process]) -> None:
    pool = running.services.pool
    old = await finished_runs(running, 2)
    (recent,) = await finished_runs(running, 1)
    for execution_id in old:
        await age_run(pool, execution_id, 40)
    workers(retain_executions_days=30, retention_interval_seconds=0.5)

    async def gone() -> bool:
        left = await pool.fetchval(
            "SELECT count(*) FROM executions WHERE id = ANY($1::uuid[])", old
        )
        return bool(left == 0)

    await wait_until(gone, 60, "the worker's retention pass")
    assert await pool.fetchval("SELECT count(*) FROM executions WHERE id = $1", recent) == 1
