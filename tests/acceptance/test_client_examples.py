"""The Python client example (docs/clients/python/follow_run.py) run as a user runs it,
against a real FlowSync: `flowsync serve` and a `flowsync worker` on the test's database.

It prints every event of the run in sequence order (those before its subscription began
from the run's timeline, the rest live) and exits 0 when the run completes; a run that
fails exits 1 naming the error; a wrong key exits 2 with the server's reason, before
starting anything."""

from __future__ import annotations

import asyncio
import os
import re
import sys
import uuid
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest

from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.graphql.conftest import free_port
from tests.support.processes import ROOT, Process, flowsync_env
from tests.support.workers import wait_until

pytestmark = pytest.mark.slow

EXAMPLE = ROOT / "docs" / "clients" / "python" / "follow_run.py"
# "   12  07:42:51.266  step.completed       COMPLETED  end"
EVENT = re.compile(r"^ *(\d+)  \d\d:\d\d:\d\d\.\d{3}  (\S+) +(\S+)(?: +(\S+))?$")
LIVE = re.compile(r"^following (\S+) live after sequence (\d+)$")
STARTED = re.compile(r"^execution (\S+) started$")
FAILING = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "boom", "type": "transform", "data": {"output": {"x": "{{ 1 / input.zero }}"}}},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"source": "start", "target": "boom"}, {"source": "boom", "target": "end"}],
}


class Example:
    """The example as a child process, its stdout read line by line (each read bounded)."""

    def __init__(self, proc: asyncio.subprocess.Process) -> None:
        self.proc = proc
        self.lines: list[str] = []

    @classmethod
    async def start(cls, *args: str, key: str) -> Example:
        env = {**os.environ, "FLOWSYNC_API_KEY": key}
        proc = await asyncio.create_subprocess_exec(
            sys.executable,
            str(EXAMPLE),
            *args,
            env=env,
            stdout=asyncio.subprocess.PIPE,
            stderr=asyncio.subprocess.PIPE,
        )
        return cls(proc)

    async def line(self) -> str | None:
        """The next line of stdout; None at its end."""
        assert self.proc.stdout is not None
        raw = await asyncio.wait_for(self.proc.stdout.readline(), 60)
        if not raw:
            return None
        self.lines.append(raw.decode().rstrip("\n"))
        return self.lines[-1]

    async def until(self, pattern: re.Pattern[str]) -> re.Match[str]:
        while (text := await self.line()) is not None:
            if found := pattern.match(text):
                return found
        raise AssertionError(f"no line matched {pattern.pattern}: {self.lines}")

    async def finish(self) -> tuple[int, str]:
        """Its exit status and stderr, once it ends (within 60 s)."""
        while await self.line() is not None:
            pass
        assert self.proc.stderr is not None
        stderr = await asyncio.wait_for(self.proc.stderr.read(), 60)
        return await asyncio.wait_for(self.proc.wait(), 60), stderr.decode()

    def events(self, lines: list[str] | None = None) -> list[tuple[int, str, str, str | None]]:
        """(sequence, kind, status, node) of each event line, of `lines` or of all."""
        found = map(EVENT.match, self.lines if lines is None else lines)
        return [(int(m[1]), m[2], m[3], m[4]) for m in found if m is not None]


async def test_python_example_follows_a_run_live_and_says_why_it_fails(
    db_url: str,
    tmp_path: Path,
    services: Services,
    me: Principal,
    workers: Callable[..., Process],
) -> None:
    port = free_port()
    base = f"http://127.0.0.1:{port}"
    api = Process(["serve", "--port", str(port)], flowsync_env(db_url), tmp_path / "serve.log")
    try:
        async with httpx.AsyncClient() as client:

            async def ready() -> bool:
                assert api.proc.poll() is None, api.output()
                try:
                    return (await client.get(f"{base}/api/ready", timeout=5)).status_code == 200
                except httpx.TransportError:
                    return False

            await wait_until(ready, 60, "the API to be ready")
        key = (await services.api_keys.create(me, "example")).secret
        boom = await services.workflows.create(me, "boom", None, FAILING)
        # All three at once: a wrong key, a run that completes and one that fails. No
        # worker yet: each run waits at its first queued step while the example
        # subscribes, so what follows its snapshot can only come live.
        wrong = await Example.start("--url", base, key="fsk_wrong")
        run = await Example.start("--url", base, "--input", '{"name": "Ada"}', key=key)
        failing = await Example.start(
            "--url", base, "--workflow", str(boom.id), "--input", '{"zero": 0}', key=key
        )
        eid = uuid.UUID((await run.until(STARTED))[1])
        live = await run.until(LIVE)
        await failing.until(LIVE)
        workers()

        # A wrong key: one line saying so, exit 2, nothing started.
        status, stderr = await wrong.finish()
        assert (status, wrong.lines) == (2, []), stderr
        assert stderr == "FlowSync refused the API key: The API key is not valid or was revoked.\n"

        # Every event of the run, in order, then its output and exit 0.
        status, stderr = await run.finish()
        assert status == 0, (run.lines, stderr)
        assert run.lines[-1] == f'execution {eid} COMPLETED, output: {{"greeting": "Hello, Ada!"}}'
        log = await services.executions.events(me, eid)
        printed = run.events()
        assert [(seq, kind, node) for seq, kind, _, node in printed] == [
            (e.sequence, e.kind, e.node_id) for e in log
        ]
        assert [seq for seq, *_ in printed] == list(range(1, len(log) + 1))
        assert printed[-1][1:3] == ("execution.completed", "COMPLETED")
        # The events before the live line are the snapshot's; the steps after it came live.
        assert live[1] == str(eid)
        snapshot = int(live[2])
        before = run.events(run.lines[: run.lines.index(live[0])])
        assert before == printed[: len(before)] and before[-1][0] == snapshot
        assert {node for seq, _, _, node in printed if seq > snapshot} >= {"wait", "greet", "end"}

        # A run that fails: every event printed, its error on stderr, exit 1.
        status, stderr = await failing.finish()
        assert status == 1, (failing.lines, stderr)
        assert "FAILED" in stderr and "division by zero" in stderr, stderr
        assert failing.events()[-1][1:3] == ("execution.failed", "FAILED")
    finally:
        if api.proc.poll() is None:
            api.terminate()
        api.close()
