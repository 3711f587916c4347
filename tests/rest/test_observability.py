"""Observability over real HTTP: /metrics (Prometheus text that parses, counters that move
when executions run, HTTP request metrics per route template), the metrics snapshot, the
audit log and its filters, timelines, health, queue and scheduler status; and JSON log
lines that name the step a worker runs."""

from __future__ import annotations

import asyncio
import io
import json
import logging
import re
from datetime import UTC, datetime, timedelta
from typing import Any

import asyncpg
import pytest
from prometheus_client.parser import text_string_to_metric_families
from sqlalchemy.engine import make_url

from flowsync.config import Settings, to_asyncpg_dsn
from flowsync.db.migrate import script_directory
from flowsync.logs import JsonFormatter, TextFormatter, bind_step, configure_logging
from flowsync.metrics import LABELS
from flowsync.worker.handlers import Completed, Outcome, StepContext, TemplateHandler
from flowsync.worker.registry import default_registry
from tests.rest.server import Owner, Server, eventually, finished, new_id, serve, worker
from tests.support.graphs import chain, fan

UUID = re.compile(r"[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}")


def samples(text: str) -> dict[tuple[str, tuple[tuple[str, str], ...]], float]:
    """Every sample of a Prometheus text exposition, by (name, sorted labels)."""
    out: dict[tuple[str, tuple[tuple[str, str], ...]], float] = {}
    for family in text_string_to_metric_families(text):
        for sample in family.samples:
            out[(sample.name, tuple(sorted(sample.labels.items())))] = sample.value
    return out


def value(
    found: dict[tuple[str, tuple[tuple[str, str], ...]], float], name: str, **labels: str
) -> float:
    return found.get((name, tuple(sorted(labels.items()))), 0.0)


async def run(me: Owner, definition: Any, input: Any = None) -> str:
    wf = (await me.http.post("/api/workflows", json={"name": "m", "definition": definition})).json()
    started = await me.http.post("/api/executions", json={"workflowId": wf["id"], "input": input})
    assert started.status_code == 201, started.text
    execution_id: str = started.json()["id"]
    return execution_id


async def test_metrics_parse_and_move_when_executions_run(db_url: str) -> None:
    async with serve(db_url, metrics_token="scrape") as server:
        await metrics_move(server, await server.owner())


async def metrics_move(server: Server, me: Owner) -> None:
    scraper = server.client("scrape")
    first = await scraper.get("/metrics")
    assert first.status_code == 200
    assert first.headers["content-type"].startswith("text/plain")
    before = samples(first.text)
    async with worker(server.services):
        execution_id = await run(me, chain(2), {"n": 1})
        await finished(me.http, execution_id)
    wf_id = (await me.http.get(f"/api/executions/{execution_id}")).json()["workflowId"]
    after = samples((await scraper.get("/metrics")).text)

    def moved(name: str, **labels: str) -> float:
        return value(after, name, **labels) - value(before, name, **labels)

    assert moved("flowsync_executions_started_total") == 1
    assert moved("flowsync_executions_finished_total", status="COMPLETED") == 1
    assert moved("flowsync_step_duration_seconds_count", node_type="transform") == 2
    assert moved("flowsync_jobs_completed_total", outcome="completed") >= 3
    # HTTP requests by route template, not by id; the scrape itself is counted too.
    assert moved("flowsync_http_requests_total", method="POST", route="/api/executions",
                 status="201") == 1  # fmt: skip
    assert moved("flowsync_http_requests_total", method="GET", route="/api/executions/{id}",
                 status="200") >= 1  # fmt: skip
    assert moved("flowsync_http_requests_total", method="GET", route="/metrics",
                 status="200") >= 1  # fmt: skip
    assert moved("flowsync_http_request_duration_seconds_count", method="POST",
                 route="/api/workflows") == 1  # fmt: skip
    # No tenant's ids in any label: only FlowSync's own bounded label names and values.
    for name, labels in after:
        assert not {k for k, _ in labels} - LABELS - {"le"}, (name, labels)
        assert not any(UUID.search(v) for _, v in labels), (name, labels)
    assert execution_id not in first.text + (await scraper.get("/metrics")).text
    assert wf_id not in (await scraper.get("/metrics")).text
    await scraper.get(f"/api/nothing/{new_id()}")
    later = samples((await scraper.get("/metrics")).text)
    assert value(later, "flowsync_http_requests_total", method="GET", route="unmatched",
                 status="404") >= 1  # fmt: skip


async def test_metrics_are_off_without_a_token(server: Server, db_url: str) -> None:
    closed = await server.client().get("/metrics")
    assert closed.status_code == 404
    assert "FLOWSYNC_METRICS_TOKEN" in closed.json()["error"]["message"]
    owner = await server.owner()  # no tenant's key opens them either
    assert (await owner.http.get("/metrics")).status_code == 404
    async with serve(db_url, metrics_open=True) as local:  # `flowsync dev` on loopback
        reply = await local.client().get("/metrics")
        assert reply.status_code == 200 and "flowsync_jobs_claimed_total" in reply.text


async def test_metrics_token_when_configured(db_url: str) -> None:
    async with serve(db_url, metrics_token="s3cret-scrape") as server:
        assert (await server.client().get("/metrics")).status_code == 401
        assert (await server.client("wrong").get("/metrics")).status_code == 401
        owner = await server.owner()  # an owner's API key is not the metrics token
        assert (await owner.http.get("/metrics")).status_code == 401
        reply = await server.client("s3cret-scrape").get("/metrics")
        assert reply.status_code == 200 and "flowsync_jobs_claimed_total" in reply.text


async def test_the_snapshot_counts_statuses_latency_and_throughput(
    server: Server, me: Owner
) -> None:
    async with worker(server.services):
        done = [await run(me, fan(3)) for _ in range(2)]
        for execution_id in done:
            await finished(me.http, execution_id)
    await run(me, chain(1, delay=60))  # stays RUNNING
    other = await server.owner()
    await run(other, chain(1, delay=60))  # another owner's: not counted

    reply = await me.http.get("/api/observability/metrics", params={"windowSeconds": 600})
    assert reply.status_code == 200
    snapshot = reply.json()
    assert snapshot["windowSeconds"] == 600 and snapshot["sampled"] is False
    assert snapshot["executionsByStatus"] == [
        {"status": "PENDING", "count": 0}, {"status": "RUNNING", "count": 1},
        {"status": "COMPLETED", "count": 2}, {"status": "FAILED", "count": 0},
        {"status": "CANCELLED", "count": 0},
    ]  # fmt: skip
    assert snapshot["executionsTotal"] == 3
    latency = {n["nodeType"]: n for n in snapshot["stepLatency"]}
    assert latency["transform"]["count"] == 6
    assert set(latency) >= {"start", "fork", "transform", "join", "end"}
    for node in latency.values():
        assert 0 <= node["p50Ms"] <= node["p95Ms"] <= node["p99Ms"] <= node["maxMs"] + 1e-6
        assert node["waitP50Ms"] is None or node["waitP50Ms"] >= 0
    # Each fan(3) run completed start, fork, 3 transforms, join and end; the delayed run
    # its start node (which needs no worker) while its delay waits for one.
    assert snapshot["stepsCompletedLastMinute"] == 2 * 7 + 1

    for bad in ("59", "x", str(8 * 24 * 3600)):
        refused = await me.http.get("/api/observability/metrics", params={"windowSeconds": bad})
        assert refused.status_code == 400
        assert refused.json()["error"]["details"][0]["path"] == "windowSeconds"


async def test_the_audit_log_filters_and_pages(server: Server, me: Owner) -> None:
    wf1 = (await me.http.post("/api/workflows", json={"name": "a", "definition": chain(1)})).json()
    wf2 = (await me.http.post("/api/workflows", json={"name": "b", "definition": chain(1)})).json()
    await me.http.put(f"/api/workflows/{wf1['id']}", json={"name": "a2"})
    started = (await me.http.post("/api/executions", json={"workflowId": wf2["id"]})).json()
    other = await server.owner()
    await other.http.post("/api/workflows", json={"name": "theirs", "definition": chain(1)})

    audit = "/api/observability/audit"
    everything = (await me.http.get(audit)).json()
    assert [e["action"] for e in everything["items"]] == [
        "execution.started", "workflow.updated", "workflow.created", "workflow.created",
        "api_key.created",  # the test's key
    ]  # fmt: skip
    entry = everything["items"][0]
    assert set(entry) == {"id", "actor", "action", "entityType", "entityId", "data", "at"}
    assert (entry["entityType"], entry["entityId"], entry["actor"]) == (
        "execution", started["id"], "apikey:" + entry["actor"].split(":", 1)[1],
    )  # fmt: skip
    created = (await me.http.get(audit, params={"action": "workflow.created"})).json()
    assert {e["entityId"] for e in created["items"]} == {wf1["id"], wf2["id"]}
    of_wf1 = (
        await me.http.get(audit, params={"entityType": "workflow", "entityId": wf1["id"]})
    ).json()
    assert [e["action"] for e in of_wf1["items"]] == ["workflow.updated", "workflow.created"]

    pages: list[str] = []
    cursor: str | None = None
    while True:
        params: dict[str, Any] = {"limit": 3, **({"cursor": cursor} if cursor else {})}
        page = (await me.http.get(audit, params=params)).json()
        pages += [e["id"] for e in page["items"]]
        cursor = page["nextCursor"]
        if cursor is None:
            break
    assert pages == [e["id"] for e in everything["items"]]

    now = datetime.now(UTC)
    future = (now + timedelta(hours=1)).isoformat()
    past = (now - timedelta(hours=1)).isoformat()
    assert (await me.http.get(audit, params={"since": future})).json()["items"] == []
    assert len((await me.http.get(audit, params={"since": past})).json()["items"]) == 5
    assert (await me.http.get(audit, params={"until": past})).json()["items"] == []
    middle = everything["items"][1]["at"]  # workflow.updated: `until` is exclusive
    before = (await me.http.get(audit, params={"until": middle})).json()["items"]
    assert [e["action"] for e in before] == [
        "workflow.created", "workflow.created", "api_key.created",
    ]  # fmt: skip

    for params, path in [
        ({"since": "yesterday"}, "since"),
        ({"since": "0001-01-01T00:00:00+14:00"}, "since"),  # before year 1 in UTC
        ({"until": "9999-12-31T23:59:59-14:00"}, "until"),  # after year 9999 in UTC
        ({"entityId": wf1["id"]}, "entityType"),
        ({"since": future, "until": past}, "since"),
        ({"cursor": "bogus"}, "cursor"),
        ({"limit": "500"}, "limit"),
    ]:
        refused = await me.http.get(audit, params=params)
        assert refused.status_code == 400, params
        assert refused.json()["error"]["details"][0]["path"] == path


async def test_the_timeline_has_each_steps_times_and_attempts(server: Server, me: Owner) -> None:
    async with worker(server.services):
        execution_id = await run(me, chain(2), {"n": 0})
        await finished(me.http, execution_id)
    reply = await me.http.get(f"/api/executions/{execution_id}/timeline")
    assert reply.status_code == 200
    timeline = reply.json()
    assert timeline["executionId"] == execution_id and timeline["status"] == "COMPLETED"
    assert timeline["durationMs"] >= 0
    assert [s["nodeId"] for s in timeline["steps"]] == ["start", "t1", "t2", "end"]
    for step in timeline["steps"]:
        assert step["status"] == "COMPLETED" and step["attempts"] == 1
        queued, started, ended = (
            datetime.fromisoformat(step[k]) for k in ("queuedAt", "startedAt", "finishedAt")
        )
        assert queued <= started <= ended
        assert step["durationMs"] == int((ended - started).total_seconds() * 1000)
        assert step["waitMs"] == int((started - queued).total_seconds() * 1000)
    assert (await me.http.get(f"/api/executions/{new_id()}/timeline")).status_code == 404


async def test_health_liveness_and_readiness(server: Server) -> None:
    anonymous = server.client()
    # Right after start the live-event listener may still be connecting ("degraded"):
    # wait until the server says it is ready, then health says "ok" throughout.
    await ready_reply(server, 200)
    ready = await anonymous.get("/api/health")
    assert ready.status_code == 200
    body = ready.json()
    assert body["checks"] == {"database": "ok", "migrations": "ok"}
    assert (body["status"], body["ready"], body["live"]) == ("ok", True, True)
    assert body["listener"] == "ok"
    live = await anonymous.get("/api/health", params={"probe": "live"})
    assert live.json() == {"status": "ok", "live": True}
    assert (await anonymous.get("/api/health", params={"probe": "deep"})).status_code == 400


async def test_health_is_503_when_the_schema_is_not_at_head(server: Server) -> None:
    old = script_directory().get_base()  # an older schema: this release's migrate is due
    await server.services.pool.execute(f"UPDATE alembic_version SET version_num = '{old}'")
    reply = await server.client().get("/api/health")
    assert reply.status_code == 503
    body = reply.json()
    assert body["status"] == "unavailable" and body["ready"] is False
    assert body["checks"] == {"database": "ok", "migrations": f"at {old}"}
    await server.services.pool.execute("DROP TABLE alembic_version")
    gone = (await server.client().get("/api/health")).json()
    assert gone["checks"]["migrations"] == "not migrated"


async def ready_reply(server: Server, status: int) -> Any:
    """/api/ready's reply once it answers `status`."""

    async def check() -> Any:
        reply = await server.client().get("/api/ready")
        return reply if reply.status_code == status else None

    return await eventually(check, what=f"/api/ready to answer {status}")


async def test_ready_is_200_when_the_database_schema_and_listener_are(server: Server) -> None:
    reply = await ready_reply(server, 200)
    assert reply.json() == {
        "ready": True,
        "notReady": [],
        "checks": {"database": "ok", "migrations": "ok", "listener": "ok"},
    }


async def test_ready_is_503_naming_the_schema_when_it_is_not_at_head(server: Server) -> None:
    old = script_directory().get_base()
    await server.services.pool.execute(f"UPDATE alembic_version SET version_num = '{old}'")
    reply = await server.client().get("/api/ready")
    assert reply.status_code == 503
    body = reply.json()
    assert (body["ready"], body["notReady"]) == (False, ["migrations"])
    assert body["checks"]["migrations"] == f"at {old}"


async def test_ready_is_503_naming_the_listener_while_it_cannot_reconnect(
    server: Server, db_url: str, server_url: str
) -> None:
    """The live-event listener lost, and the database refusing new connections: the
    pool's open connections still answer (database ok), the listener cannot come back."""
    name = make_url(to_asyncpg_dsn(db_url)).database
    admin = await asyncpg.connect(to_asyncpg_dsn(server_url))
    try:
        await server.services.pool.fetchval("SELECT 1")  # an open connection for the check
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS false')
        await admin.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity "
            "WHERE application_name = 'flowsync-events' AND datname = $1",
            name,
        )
        reply = await ready_reply(server, 503)
        assert reply.json()["notReady"] == ["listener"]
        assert reply.json()["checks"]["listener"] == "disconnected"
        # /api/health only reports it: the process still serves all but live updates.
        health = await server.client().get("/api/health")
        assert (health.status_code, health.json()["status"]) == (200, "degraded")
    finally:
        await admin.execute(f'ALTER DATABASE "{name}" ALLOW_CONNECTIONS true')
        await admin.close()
    back = await ready_reply(server, 200)
    assert back.json()["notReady"] == []


async def test_queue_and_scheduler_status(server: Server, me: Owner) -> None:
    execution_id = await run(me, chain(1))  # no worker: its job waits
    assert execution_id
    queue = (await me.http.get("/api/queue")).json()
    assert queue == {
        "queued": 1, "scheduled": 0, "running": 0, "deadLetters": 0, "globalDepth": 1,
        "maxDepth": 100_000, "sheddingLoad": False,
    }  # fmt: skip
    other = await server.owner()
    theirs = (await other.http.get("/api/queue")).json()
    assert (theirs["queued"], theirs["globalDepth"]) == (0, 1)

    wf = (await me.http.get("/api/workflows")).json()["items"][0]
    await me.http.post(
        "/api/triggers",
        json={"workflowId": wf["id"], "type": "CRON", "config": {"expression": "0 3 * * *"}},
    )
    status = (await me.http.get("/api/scheduler/status")).json()
    assert status["enabledTriggers"] == 1 and status["dueTriggers"] == 0
    assert status["nextRunAt"] is not None and status["lastFirings"] == []
    assert status["running"] == 0 and isinstance(status["schedulers"], list)
    assert (await server.client().get("/api/scheduler/status")).status_code == 401


class LoggingTransform(TemplateHandler):
    """A transform that logs a line while it runs (as a real handler would)."""

    async def run(self, ctx: StepContext) -> Outcome:
        logging.getLogger("flowsync.test.handler").info("transforming", extra={"extraField": 1})
        result = await super().run(ctx)
        assert isinstance(result, Completed)
        return result


async def test_worker_log_lines_name_the_execution_and_step(server: Server, me: Owner) -> None:
    stream = io.StringIO()
    handler = logging.StreamHandler(stream)
    handler.setFormatter(JsonFormatter())
    logger = logging.getLogger("flowsync.test.handler")
    logger.addHandler(handler)
    logger.setLevel(logging.INFO)
    registry = default_registry()
    registry.register("transform", LoggingTransform())
    try:
        async with worker(server.services, registry):
            execution_id = await run(me, chain(2), {"n": 0})
            done = await finished(me.http, execution_id)
    finally:
        logger.removeHandler(handler)
    steps = {s["nodeId"]: s["id"] for s in done["steps"]}
    lines = [json.loads(line) for line in stream.getvalue().splitlines()]
    assert [(ln["executionId"], ln["nodeId"], ln["stepId"]) for ln in lines] == [
        (execution_id, "t1", steps["t1"]), (execution_id, "t2", steps["t2"]),
    ]  # fmt: skip
    first = lines[0]
    assert (first["level"], first["logger"], first["message"], first["extraField"]) == (
        "info", "flowsync.test.handler", "transforming", 1,
    )  # fmt: skip
    assert datetime.fromisoformat(first["time"]).tzinfo is not None


async def test_log_formats_outside_a_step_and_with_errors() -> None:
    record = logging.LogRecord("flowsync.x", logging.ERROR, __file__, 1, "boom %s", ("!",), None)
    try:
        raise ValueError("inner")
    except ValueError:
        import sys

        record.exc_info = sys.exc_info()
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == "boom !" and "executionId" not in line
    assert "ValueError: inner" in line["exception"]

    async def in_a_step() -> tuple[str, str]:
        bind_step(new_id_uuid := __import__("uuid").uuid4(), new_id_uuid, "n1")
        plain = logging.LogRecord("flowsync.x", logging.INFO, __file__, 1, "hi", None, None)
        return TextFormatter().format(plain), JsonFormatter().format(plain)

    text, as_json = await asyncio.create_task(in_a_step())
    assert text.endswith("hi [executionId=" + json.loads(as_json)["executionId"]
                         + " stepId=" + json.loads(as_json)["stepId"] + " nodeId=n1]")  # fmt: skip
    # The binding stayed in that task.
    outside = logging.LogRecord("flowsync.x", logging.INFO, __file__, 1, "hi", None, None)
    assert "executionId" not in json.loads(JsonFormatter().format(outside))


@pytest.mark.parametrize("fmt", ["json", "text"])
def test_configure_logging_installs_the_configured_format(fmt: str) -> None:
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    try:
        configure_logging(Settings(_env_file=None, log_format=fmt, log_level="warning"))  # type: ignore[call-arg]
        [installed] = root.handlers
        expected = JsonFormatter if fmt == "json" else TextFormatter
        assert isinstance(installed.formatter, expected)
        assert root.level == logging.WARNING
    finally:
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
