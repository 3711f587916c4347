"""A `flowsync worker` serves its own metrics on a port of its own, under the token rule
of /metrics: scraped while it runs steps, its counters move."""

from __future__ import annotations

import asyncio
import re
from collections.abc import Callable
from pathlib import Path

import httpx
import pytest
from prometheus_client.parser import text_string_to_metric_families

from flowsync.metrics import LABELS
from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.support.graphs import chain
from tests.support.processes import Process, flowsync_env
from tests.support.workers import finished, wait_until

pytestmark = pytest.mark.slow

TOKEN = "scrape-me-please"


def _samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    return {
        (s.name, tuple(sorted(s.labels.items()))): s.value
        for family in text_string_to_metric_families(text)
        for s in family.samples
    }


async def _metrics_url(worker: Process) -> str:
    async def logged() -> str | None:
        found = re.search(r"metrics at (http://127\.0\.0\.1:\d+/metrics)", worker.output())
        return found.group(1) if found else None

    url: str = await wait_until(logged, 20, "the worker to log its metrics URL")
    return url


async def test_a_worker_serves_its_metrics_and_its_step_counters_move(
    services: Services, me: Principal, workers: Callable[..., Process]
) -> None:
    worker = workers(metrics_token=TOKEN, worker_metrics_port=0)  # 0: a free port, logged
    url = await _metrics_url(worker)
    auth = {"Authorization": f"Bearer {TOKEN}"}
    async with httpx.AsyncClient(timeout=5) as client:
        before = _samples((await client.get(url, headers=auth)).text)
        wf = await services.workflows.create(me, "counted", None, chain(3))
        eid = (await services.executions.start(me, wf.id, {"n": 1})).execution.id
        assert (await finished(services, me, eid, 30)).status == "COMPLETED", worker.output()
        reply = await client.get(url, headers=auth)
        assert reply.status_code == 200
        assert reply.headers["content-type"].startswith("text/plain")
        after = _samples(reply.text)
        wrong = await client.get(url, headers={"Authorization": "Bearer nope"})
        missing = await client.get(url)
    transforms = ("flowsync_step_duration_seconds_count", (("node_type", "transform"),))
    assert after[transforms] - before.get(transforms, 0) == 3
    completed = ("flowsync_jobs_completed_total", (("outcome", "completed"),))
    assert after[completed] - before.get(completed, 0) >= 4  # t1..t3 and end at least
    claimed = ("flowsync_jobs_claimed_total", ())
    assert after[claimed] > before[claimed]
    # Bounded labels only: no execution, workflow or owner id.
    assert {k for _, labels in after for k, _ in labels} <= LABELS | {"le"}
    assert str(eid) not in reply.text and str(wf.id) not in reply.text
    assert wrong.status_code == 401 and wrong.json()["error"]["code"] == "unauthenticated"
    assert missing.status_code == 401
    assert await asyncio.to_thread(worker.terminate) == 0, worker.output()


def test_a_metrics_port_without_a_token_is_refused_at_start(db_url: str, tmp_path: Path) -> None:
    proc = Process(["worker", "--metrics-port", "0"], flowsync_env(db_url), tmp_path / "w.log")
    try:
        assert proc.proc.wait(30) == 1
        assert "FLOWSYNC_METRICS_TOKEN" in proc.output()
    finally:
        proc.close()
