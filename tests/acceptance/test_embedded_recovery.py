"""`flowsync dev` survives the death of its embedded PostgreSQL: with runs in flight, the
postmaster is SIGKILLed (its pid from postmaster.pid); dev notices within a second,
starts the server again (crash recovery replays the WAL), health is ready again, and
every run finishes, each exactly once."""

from __future__ import annotations

import asyncio
import os
import shutil
import signal
import socket
import tempfile
import time
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest

from flowsync.db import embedded
from tests.support.graphs import chain
from tests.support.processes import Process, flowsync_env, wait_for

RUNS = 30


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port: int = probe.getsockname()[1]
        return port


def _ready(base: str) -> bool:
    try:
        return httpx.get(f"{base}/api/health", timeout=2).status_code == 200
    except httpx.TransportError:
        return False


def _rows(url: str, sql: str) -> list[Any]:
    async def run() -> list[Any]:
        conn = await asyncpg.connect(url)
        try:
            return [tuple(r) for r in await conn.fetch(sql)]
        finally:
            await conn.close()

    loop = asyncio.new_event_loop()
    try:
        return loop.run_until_complete(run())
    finally:
        loop.close()


@pytest.mark.slow
def test_dev_restarts_its_embedded_database_and_every_run_finishes_once() -> None:
    data = Path(tempfile.mkdtemp(prefix="flowsync-revive-", dir="/tmp"))
    data.chmod(0o755)
    pgdata = data / "postgres" / "pgdata"
    port = _free_port()
    base = f"http://127.0.0.1:{port}"
    env = flowsync_env("unused", data_dir=data, port=port, poll_seconds=0.5)
    del env["FLOWSYNC_DATABASE_URL"]
    proc = Process(["dev"], env, data / "dev.log")
    try:
        wait_for(lambda: _ready(base), 90, "dev to be ready")
        key = (data / "dev-api-key").read_text().strip()
        with httpx.Client(base_url=base, headers={"Authorization": f"Bearer {key}"}) as http:
            made = http.post("/api/workflows", json={"name": "r", "definition": chain(2, delay=2)})
            assert made.status_code == 201, made.text
            ids = {}
            for n in range(RUNS):
                started = http.post(
                    "/api/executions", json={"workflowId": made.json()["id"], "input": {"n": n}}
                )
                assert started.status_code == 201, started.text
                ids[started.json()["id"]] = n
            # Every run waits in its delay step: in flight when the database dies.
            pid = int((pgdata / "postmaster.pid").read_text().splitlines()[0])
            os.kill(pid, signal.SIGKILL)
            wait_for(lambda: "restarted it" in proc.output(), 30, "the restart to be logged")
            wait_for(lambda: _ready(base), 60, "health to be ready again")
            assert embedded._postmaster(pgdata) is not None
            assert embedded._postmaster(pgdata)[0] != pid  # type: ignore[index]

            def done() -> bool:
                reply = http.get("/api/executions", params={"limit": 100}, timeout=10)
                items = reply.json()["items"] if reply.status_code == 200 else []
                return sum(i["status"] == "COMPLETED" for i in items) == RUNS

            wait_for(done, 120, f"{RUNS} runs to complete")
            items = http.get("/api/executions", params={"limit": 100}).json()["items"]
        assert sorted(i["id"] for i in items) == sorted(ids)
        assert all(i["output"] == {"n": ids[i["id"]] + 2} for i in items), items
        url = f"postgresql://postgres:@/postgres?host={pgdata}"
        # Exactly once: one completion per run, one completed step per node of each.
        ends = _rows(url, "SELECT execution_id, count(*) FROM execution_events "
                          "WHERE kind = 'execution.completed' GROUP BY 1")  # fmt: skip
        assert len(ends) == RUNS and all(count == 1 for _, count in ends)
        steps = _rows(url, "SELECT execution_id, node_id, count(*) FROM execution_events "
                           "WHERE kind = 'step.completed' GROUP BY 1, 2")  # fmt: skip
        assert len(steps) == RUNS * 5 and all(count == 1 for *_, count in steps), steps
        assert proc.terminate() == 0, proc.output()
    except BaseException:
        print(proc.output())
        raise
    finally:
        proc.close()
        if (running := embedded._postmaster(pgdata)) is not None:
            os.kill(running[0], signal.SIGINT)
            for _ in range(100):
                if embedded._postmaster(pgdata) is None:
                    break
                time.sleep(0.1)
        shutil.rmtree(data, ignore_errors=True)
