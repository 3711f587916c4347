"""GraphQL across real processes: `flowsync dev` prints GraphiQL's URL and a ready API
key (the same one after a restart); events written by a worker process reach the
subscribers of two other API processes, each in order, through LISTEN/NOTIFY."""

from __future__ import annotations

import asyncio
import re
import time
from pathlib import Path
from typing import Any

import httpx
import pytest
from gql import Client
from gql.transport.websockets import WebsocketsTransport

from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.graphql.conftest import free_port, op
from tests.support.graphs import fan
from tests.support.processes import Process, flowsync_env

KEY = re.compile(r"API key \(owner local:dev\): (fsk_\S+)")
UPDATED = """subscription($id: ID!) { executionUpdated(id: $id) { sequence kind nodeId } }"""

pytestmark = pytest.mark.slow


def start_api(db_url: str, data: Path, port: int, name: str) -> Process:
    env = flowsync_env(
        db_url, port=port, data_dir=data, dev_worker="false", subscription_poll_seconds=0.5
    )
    return Process(["dev"], env, data / f"{name}.log")


async def ready(proc: Process, port: int) -> str:
    """Wait for the API to answer; the API key it printed."""
    deadline = time.monotonic() + 60
    async with httpx.AsyncClient() as client:
        while time.monotonic() < deadline:
            found = KEY.search(proc.output())
            if found:
                try:
                    await client.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                    return found.group(1)
                except httpx.TransportError:
                    pass
            assert proc.proc.poll() is None, proc.output()
            await asyncio.sleep(0.2)
    raise AssertionError(f"the API did not start:\n{proc.output()}")


async def test_two_api_processes_stream_a_worker_process_events(
    db_url: str, tmp_path: Path, services: Services
) -> None:
    ports = [free_port(), free_port()]
    apis = [start_api(db_url, tmp_path, ports[0], "api-0")]
    worker: Process | None = None
    try:
        keys = [await ready(apis[0], ports[0])]
        apis.append(start_api(db_url, tmp_path, ports[1], "api-1"))
        keys.append(await ready(apis[1], ports[1]))
        # Both share a data folder: the second reused the key the first wrote there.
        assert keys[0] == keys[1]
        assert f"http://127.0.0.1:{ports[0]}/graphql (GraphiQL" in apis[0].output()
        owner = await services.api_keys.ensure_owner("local:dev")
        me = Principal(owner, "test")
        wid = (await services.workflows.create(me, "fan", None, fan(5))).id
        eid = (await services.executions.start(me, wid, {})).execution.id

        streams: list[list[dict[str, Any]]] = [[], []]

        async def follow(port: int, out: list[dict[str, Any]]) -> None:
            transport = WebsocketsTransport(
                url=f"ws://127.0.0.1:{port}/graphql",
                init_payload={"Authorization": f"Bearer {keys[0]}"},
            )
            async with Client(transport=transport) as session:
                async for message in session.subscribe(op(UPDATED, id=str(eid))):
                    out.append(message["executionUpdated"])

        tasks = [asyncio.create_task(follow(p, s)) for p, s in zip(ports, streams, strict=True)]
        for _ in range(400):
            if all(streams):
                break
            await asyncio.sleep(0.05)
        assert all(streams), "no snapshot"
        worker = Process(["worker"], flowsync_env(db_url), tmp_path / "worker.log")
        await asyncio.wait_for(asyncio.gather(*tasks), 30)
        log = [(e.sequence, e.kind, e.node_id) for e in await services.executions.events(me, eid)]
        for stream in streams:
            assert stream[0]["kind"] == "snapshot"
            after = stream[0]["sequence"]
            assert [(m["sequence"], m["kind"], m["nodeId"]) for m in stream[1:]] == [
                t for t in log if t[0] > after
            ]
            assert stream[-1]["kind"] == "execution.completed"

        # A restart prints the same key again.
        assert apis[0].terminate() == 0, apis[0].output()
        apis[0].close()
        apis[0] = start_api(db_url, tmp_path, ports[0], "api-0-again")
        assert await ready(apis[0], ports[0]) == keys[0]
    finally:
        for proc in [*apis, *([worker] if worker else [])]:
            if proc.proc.poll() is None:
                proc.terminate()
            proc.close()
