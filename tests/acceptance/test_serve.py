"""The production process model with real processes: `flowsync serve --workers 2` (two API
processes on one port) and two `flowsync worker` processes on one database run workflows
through the API; SIGTERM drains each (requests finish, websockets close with 1012,
running steps finish) and each exits 0 with one line saying what it drained; `serve`
refuses a database it cannot use in one line, without retrying."""

from __future__ import annotations

import asyncio
import json
import re
import signal
import socket
import subprocess
import sys
from collections.abc import Callable
from pathlib import Path
from typing import Any

import asyncpg
import httpx
import pytest
import websockets
from websockets.exceptions import ConnectionClosed

from flowsync.config import to_asyncpg_dsn
from flowsync.db.compat import MARK
from flowsync.db.migrate import script_directory
from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.conftest import with_database
from tests.graphql.conftest import free_port
from tests.support.graphs import chain
from tests.support.processes import ROOT, Process, flowsync_env
from tests.support.workers import wait_until

pytestmark = pytest.mark.slow

DRAIN_LINE = re.compile(r"drained: (\d+) requests, (\d+) websockets closed")
WORKER_DRAIN = re.compile(r"stopped; drained: finished (\d+) steps, gave back (\d+)")
QUEUE = "subscription { queueStatsUpdated { queued } }"
WORKER_STARTED = re.compile(r"worker (\S+) started \(concurrency")
STEPS = """query($id: ID!) { execution(id: $id) {
  steps { nodeId workerId workerHost } timeline { kind nodeId data } } }"""


async def api_ready(proc: Process, port: int) -> dict[str, Any]:
    """/api/ready's body once it answers 200 (the process must keep running)."""
    async with httpx.AsyncClient() as client:

        async def check() -> dict[str, Any] | None:
            assert proc.proc.poll() is None, proc.output()
            try:
                reply = await client.get(f"http://127.0.0.1:{port}/api/ready", timeout=5)
            except httpx.TransportError:
                return None
            return dict(reply.json()) if reply.status_code == 200 else None

        found: dict[str, Any] = await wait_until(check, 90, "the API to be ready")
        return found


async def subscribed(port: int, key: str) -> websockets.ClientConnection:
    """A graphql-transport-ws socket with one live subscription."""
    ws = await websockets.connect(
        f"ws://127.0.0.1:{port}/graphql",
        subprotocols=[websockets.Subprotocol("graphql-transport-ws")],
    )
    await ws.send(
        json.dumps({"type": "connection_init", "payload": {"Authorization": f"Bearer {key}"}})
    )
    assert json.loads(await ws.recv())["type"] == "connection_ack"
    await ws.send(json.dumps({"id": "1", "type": "subscribe", "payload": {"query": QUEUE}}))
    assert json.loads(await ws.recv())["type"] == "next"
    return ws


async def close_code(ws: websockets.ClientConnection) -> int:
    """The code the server closed the socket with."""
    async with asyncio.timeout(60):
        try:
            while True:
                await ws.recv()
        except ConnectionClosed as exc:
            assert exc.rcvd is not None, "the client closed, not the server"
            return exc.rcvd.code


async def test_serve_two_processes_and_two_workers_run_workflows_then_drain_on_sigterm(
    db_url: str,
    tmp_path: Path,
    services: Services,
    me: Principal,
    workers: Callable[..., Process],
) -> None:
    port = free_port()
    env = flowsync_env(db_url, shutdown_grace_seconds=30)
    api = Process(["serve", "--workers", "2", "--port", str(port)], env, tmp_path / "serve.log")
    crew = [workers(), workers()]
    try:
        ready = await api_ready(api, port)
        assert ready == {
            "ready": True,
            "notReady": [],
            "checks": {"database": "ok", "migrations": "ok", "listener": "ok"},
        }
        key = (await services.api_keys.create(me, "serve")).secret
        base = f"http://127.0.0.1:{port}"
        async with httpx.AsyncClient(
            base_url=base, headers={"Authorization": f"Bearer {key}"}, timeout=30
        ) as http:
            created = await http.post(
                "/api/workflows", json={"name": "chain", "definition": chain(3)}
            )
            assert created.status_code == 201, created.text
            wid = created.json()["id"]
            ids = []
            for n in range(6):
                started = await http.post(
                    "/api/executions", json={"workflowId": wid, "input": {"n": n}}
                )
                assert started.status_code == 201, started.text
                ids.append(started.json()["id"])

            async def all_done() -> list[dict[str, Any]] | None:
                runs = [(await http.get(f"/api/executions/{i}")).json() for i in ids]
                return runs if all(r["status"] == "COMPLETED" for r in runs) else None

            runs = await wait_until(all_done, 90, "the six runs to complete")
            assert [r["output"] for r in runs] == [{"n": n + 3} for n in range(6)]

            # Each step names the worker process that ran it, in both faces and on its
            # step.started event.
            ids_of_workers = {m for w in crew for m in WORKER_STARTED.findall(w.output())}
            assert len(ids_of_workers) == 2, [w.output()[-2000:] for w in crew]
            host = socket.gethostname()
            ran_by: set[str] = set()
            for run in runs:
                rest_steps = {s["nodeId"]: s for s in run["steps"]}
                reply = await http.post(
                    "/graphql", json={"query": STEPS, "variables": {"id": run["id"]}}
                )
                execution = reply.json()["data"]["execution"]
                gql_steps = {s["nodeId"]: s for s in execution["steps"]}
                started = {
                    e["nodeId"]: e["data"]
                    for e in execution["timeline"]
                    if e["kind"] == "step.started"
                }
                for node in ("t1", "t2", "t3"):
                    worker_id = rest_steps[node]["workerId"]
                    assert worker_id in ids_of_workers, rest_steps[node]
                    assert rest_steps[node]["workerHost"] == host
                    assert (gql_steps[node]["workerId"], gql_steps[node]["workerHost"]) == (
                        worker_id,
                        host,
                    )
                    assert started[node] == {"workerId": worker_id, "workerHost": host}
                    ran_by.add(worker_id)
            assert ran_by <= ids_of_workers

        # Two live websockets, and one request whose body is still on its way.
        sockets = [await subscribed(port, key), await subscribed(port, key)]
        body = json.dumps({"query": "{ health { status } }"}).encode()
        pending = socket.create_connection(("127.0.0.1", port))
        pending.sendall(
            b"POST /graphql HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            + f"Authorization: Bearer {key}\r\nContent-Length: {len(body)}\r\n\r\n".encode()
            + body[:5]
        )
        api.proc.send_signal(signal.SIGTERM)
        assert [await close_code(ws) for ws in sockets] == [1012, 1012]
        # Both API processes are draining; the request in flight may still finish.
        await wait_until(
            lambda: asyncio.sleep(0, api.output().count("Shutting down") >= 2),
            60,
            "both API processes to start draining",
        )
        pending.sendall(body[5:])
        pending.settimeout(30)
        reply = b""
        while b"\r\n\r\n" not in reply or not reply.rstrip().endswith(b"}"):
            chunk = pending.recv(65536)
            if not chunk:
                break
            reply += chunk
        pending.close()
        assert reply.startswith(b"HTTP/1.1 200"), reply
        assert b'"status":"ok"' in reply or b'"status":"degraded"' in reply, reply
        assert await asyncio.to_thread(api.proc.wait, 90) == 0, api.output()
        drained = [tuple(map(int, m)) for m in DRAIN_LINE.findall(api.output())]
        assert len(drained) == 2, api.output()  # one line per API process
        assert sum(r for r, _ in drained) == 1, api.output()
        assert sum(w for _, w in drained) == 2, api.output()

        # The workers: one step running when SIGTERM comes is finished, none given back.
        slow = await services.workflows.create(me, "slow", None, chain(1))
        eid = (await services.executions.start(me, slow.id, {"n": 0, "sleep": 2})).execution.id

        async def running() -> bool:
            steps = (await services.executions.steps(me, [eid]))[eid]
            return any(s.node_id == "t1" and s.status == "RUNNING" for s in steps)

        await wait_until(running, 30, "the slow step to start")
        for worker in crew:
            worker.proc.send_signal(signal.SIGTERM)
        for worker in crew:
            assert await asyncio.to_thread(worker.proc.wait, 60) == 0, worker.output()
        lines = [WORKER_DRAIN.findall(w.output()) for w in crew]
        assert all(len(found) == 1 for found in lines), [w.output()[-2000:] for w in crew]
        assert sum(int(f[0][0]) for f in lines) == 1
        assert sum(int(f[0][1]) for f in lines) == 0
        steps = {s.node_id: s for s in (await services.executions.steps(me, [eid]))[eid]}
        assert steps["t1"].status == "COMPLETED"
        # Its start was written while it ran (start_step), naming its worker too.
        assert steps["t1"].worker_id in ids_of_workers
        assert steps["t1"].worker_host == host
        events = await services.executions.events(me, eid)
        (start,) = [e for e in events if e.kind == "step.started" and e.node_id == "t1"]
        assert start.data == {"workerId": steps["t1"].worker_id, "workerHost": host}
    finally:
        api.close()


def refused(args: list[str], env: dict[str, str]) -> tuple[int, str]:
    """Run a command that must refuse to start: its status and its stderr."""
    done = subprocess.run(
        [sys.executable, "-m", "flowsync", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )
    return done.returncode, done.stderr


async def test_serve_refuses_an_unmigrated_database_and_says_to_migrate(
    server_url: str, tmp_path: Path
) -> None:
    name = f"fs_blank_{tmp_path.name[-20:]}".replace("-", "_").lower()
    admin = await asyncpg.connect(to_asyncpg_dsn(server_url))
    try:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}"')
        await admin.execute(f'CREATE DATABASE "{name}"')
        env = flowsync_env(with_database(server_url, name), port=free_port())
        status, err = await asyncio.to_thread(refused, ["serve"], env)
        assert status != 0
        assert err.strip().count("\n") == 0, err  # one line
        assert "has no FlowSync schema yet" in err and "run `flowsync migrate`" in err, err
        # Nothing was created: serve never migrates.
        conn = await asyncpg.connect(to_asyncpg_dsn(with_database(server_url, name)))
        try:
            assert await conn.fetchval("SELECT to_regclass('alembic_version')") is None
        finally:
            await conn.close()
    finally:
        await admin.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        await admin.close()


async def test_serve_and_worker_refuse_a_schema_newer_than_the_release(
    db_url: str, services: Services
) -> None:
    # As a newer release's migrate leaves it after a change this release cannot run on:
    # the oldest compatible revision is one this release does not know.
    await services.pool.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    await services.pool.execute(f"COMMENT ON TABLE alembic_version IS '{MARK}fffffffffff0'")
    env = flowsync_env(db_url, port=free_port())
    for command in (["serve"], ["worker"]):
        status, err = await asyncio.to_thread(refused, command, env)
        assert status != 0, err
        assert "at schema revision ffffffffffff" in err and "newer than this code" in err, err
        assert "FLOWSYNC_DATABASE_URL" in err
    # The same without a mark (a schema migrated before marks existed).
    await services.pool.execute("COMMENT ON TABLE alembic_version IS NULL")
    status, err = await asyncio.to_thread(refused, ["worker"], env)
    assert status != 0 and "newer than this code" in err, err


async def test_a_newer_schema_that_declares_this_release_compatible_is_served(
    db_url: str, services: Services, tmp_path: Path
) -> None:
    """A rolling upgrade: the next release has migrated with additive changes only, and
    this release's processes, still running or restarted, keep serving and stay ready."""
    head = script_directory().get_current_head()
    await services.pool.execute("UPDATE alembic_version SET version_num = 'ffffffffffff'")
    await services.pool.execute(f"COMMENT ON TABLE alembic_version IS '{MARK}{head}'")
    port = free_port()
    api = Process(
        ["serve", "--port", str(port)],
        flowsync_env(db_url),
        tmp_path / "serve.log",
    )
    try:
        ready = await api_ready(api, port)
        assert ready["ready"] is True and ready["checks"]["migrations"] == "ok", ready
        # The next release then drops something this one uses: a mark it does not know.
        await services.pool.execute(f"COMMENT ON TABLE alembic_version IS '{MARK}ffffffffffff'")
        async with httpx.AsyncClient() as client:
            reply = await client.get(f"http://127.0.0.1:{port}/api/ready", timeout=10)
        assert reply.status_code == 503, reply.text
        body = reply.json()
        assert body["notReady"] == ["migrations"], body
        assert body["checks"]["migrations"] == "at ffffffffffff", body
    finally:
        api.close()


async def test_serve_refuses_no_or_an_unreachable_database_in_one_line(
    db_url: str, tmp_path: Path
) -> None:
    env = flowsync_env(db_url, data_dir=tmp_path / "data")
    del env["FLOWSYNC_DATABASE_URL"]
    status, err = await asyncio.to_thread(refused, ["serve"], env)
    assert status != 0
    assert err.startswith("error: FLOWSYNC_DATABASE_URL is not set") and err.count("\n") == 1, err
    assert not (tmp_path / "data").exists()  # no embedded database started or made

    closed = free_port()  # nothing listens there
    env = flowsync_env(f"postgresql://postgres@127.0.0.1:{closed}/flowsync")
    status, err = await asyncio.to_thread(refused, ["serve"], env)
    assert status != 0
    assert err.count("\n") == 1, err
    assert (
        f"Cannot connect to the database of FLOWSYNC_DATABASE_URL (127.0.0.1:{closed}/flowsync)"
        in err
    )

    wrong = db_url.rsplit("/", 1)[0] + "/no_such_database_here"
    status, err = await asyncio.to_thread(refused, ["serve"], flowsync_env(wrong))
    assert status != 0
    assert "the server has no such database" in err, err


async def test_a_worker_that_gives_back_a_step_says_so_in_its_drain_line(
    services: Services, me: Principal, workers: Callable[..., Process]
) -> None:
    wf = await services.workflows.create(me, "one", None, chain(1))
    eid = (await services.executions.start(me, wf.id, {"n": 1, "sleep": 30})).execution.id
    worker = workers(shutdown_grace_seconds=0.5)

    async def running() -> bool:
        steps = (await services.executions.steps(me, [eid]))[eid]
        return any(s.node_id == "t1" and s.status == "RUNNING" for s in steps)

    await wait_until(running, 30, "the slow step to start")
    assert await asyncio.to_thread(worker.terminate, 60) == 0, worker.output()
    assert WORKER_DRAIN.findall(worker.output()) == [("0", "1")], worker.output()[-2000:]
    steps = {s.node_id: s for s in (await services.executions.steps(me, [eid]))[eid]}
    assert steps["t1"].status == "QUEUED"


async def test_serve_in_one_process_drains_and_exits_zero(
    db_url: str, tmp_path: Path, services: Services, me: Principal
) -> None:
    port = free_port()
    api = Process(["serve", "--port", str(port)], flowsync_env(db_url), tmp_path / "serve.log")
    try:
        await api_ready(api, port)
        key = (await services.api_keys.create(me, "serve")).secret
        ws = await subscribed(port, key)
        assert await asyncio.to_thread(api.terminate, 60) == 0, api.output()
        assert await close_code(ws) == 1012
        assert DRAIN_LINE.findall(api.output()) == [("0", "1")], api.output()
    finally:
        api.close()
