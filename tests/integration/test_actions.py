"""HTTP action steps against a real HTTP server on 127.0.0.1: methods and templates,
retries with backoff, dead letters and redrive, retry from the failed step, the SSRF
guard, timeouts, oversize replies, backpressure and concurrency limits."""

from __future__ import annotations

import asyncio
import itertools
import json
from collections.abc import AsyncIterator, Iterator
from datetime import datetime, timedelta
from typing import Any

import pytest

from flowsync import metrics
from flowsync.errors import Backpressure, Conflict, NotFound
from flowsync.services.principal import Principal
from flowsync.services.workflows import WorkflowUpdate
from flowsync.worker.netguard import NetworkPolicy
from flowsync.worker.registry import default_registry
from tests.conftest import new_subject
from tests.support.env import Env, run_worker
from tests.support.target import Target, action, running_target

FAST_RETRY = {"maxAttempts": 3, "initialIntervalSeconds": 0.2, "maxIntervalSeconds": 1}


@pytest.fixture
def target() -> Iterator[Target]:
    with running_target() as served:
        yield served


@pytest.fixture
async def allowed(env: Env) -> AsyncIterator[Env]:
    """A worker whose actions may call 127.0.0.1 (the tests' servers), nothing else
    private; replies over 100 kB are refused."""
    registry = default_registry(NetworkPolicy(["127.0.0.1/32"]), max_response_bytes=100_000)
    task = await run_worker(env, registry)
    try:
        yield env
    finally:
        assert env.worker is not None
        env.worker.stop()
        await asyncio.wait_for(task, 30)


async def run(env: Env, definition: dict[str, Any], input: Any = None) -> Any:
    wid = await env.create(definition)
    return await env.wait(await env.start(wid, input or {}), timeout=20)


@pytest.mark.parametrize("method", ["GET", "POST", "PUT", "PATCH", "DELETE"])
async def test_methods_with_templated_url_headers_query_and_body(
    allowed: Env, target: Target, method: str
) -> None:
    definition = action(
        target.url + "/{{ input.path }}",
        method,
        headers={"X-Order": "{{ input.order }}", "X-Static": "yes"},
        query={"q": "{{ input.order * 2 }}", "flag": "{{ input.flag }}"},
        body={"order": "{{ input.order }}", "label": "order {{ input.order }}"},
    )
    execution = await run(allowed, definition, {"path": "echo", "order": 21, "flag": True})
    assert execution.status == "COMPLETED", execution.error
    out = execution.output
    assert out["status"] == 200 and out["headers"]["x-target"] == "yes"
    assert isinstance(out["durationMs"], float)
    assert out["body"]["method"] == method
    assert out["body"]["query"] == {"q": "42", "flag": "true"}
    assert out["body"]["headers"]["x-order"] == "21"
    assert out["body"]["headers"]["x-static"] == "yes"
    assert json.loads(out["body"]["body"]) == {"order": 21, "label": "order 21"}
    key = out["body"]["headers"]["idempotency-key"]
    assert key == f"{execution.id}:call"


async def test_a_text_reply_is_kept_as_text(allowed: Env, target: Target) -> None:
    execution = await run(allowed, action(target.url + "/text"))
    assert execution.status == "COMPLETED"
    assert execution.output["body"] == "hello, plain text"


async def test_two_503s_then_success_is_three_attempts_with_backoff_and_one_key(
    allowed: Env, target: Target
) -> None:
    execution = await run(allowed, action(target.url + "/flaky/a?fail=2", retry=FAST_RETRY))
    assert execution.status == "COMPLETED"
    calls = target.requests_to("/flaky/a")
    assert len(calls) == 3
    assert {c.headers["idempotency-key"] for c in calls} == {f"{execution.id}:call"}
    # Equal jitter: at least half the interval passes between attempts.
    assert calls[1].at - calls[0].at >= 0.1 and calls[2].at - calls[1].at >= 0.2
    events = await allowed.events(execution.id)
    retrying = [e for e in events if e.kind == "step.retrying"]
    assert [e.attempt for e in retrying] == [1, 2]
    assert retrying[0].data["error"]["status"] == 503
    started = [e.attempt for e in events if e.kind == "step.started" and e.node_id == "call"]
    assert started == [1, 2, 3]
    steps = await allowed.steps(execution.id)
    assert steps["call"].attempt == 3


async def test_the_backoff_counts_from_the_failure_not_from_the_attempt_s_start(
    allowed: Env, target: Target
) -> None:
    """An attempt that takes longer than its backoff (a slow 503) is still followed by
    the backoff: the next attempt comes at least half the interval after the failure."""
    retry = {"maxAttempts": 2, "initialIntervalSeconds": 0.6, "maxIntervalSeconds": 1}
    execution = await run(allowed, action(target.url + "/flaky/s?fail=1&delay=0.8", retry=retry))
    assert execution.status == "COMPLETED", execution.error
    first, second = target.requests_to("/flaky/s")
    assert second.at - first.at >= 0.8 + 0.3
    # The next attempt the event announces is after the failure it records, not before.
    [retrying] = [e for e in await allowed.events(execution.id) if e.kind == "step.retrying"]
    announced = datetime.fromisoformat(retrying.data["nextAttemptAt"])
    assert announced - retrying.at >= timedelta(seconds=0.25)


async def test_lists_and_objects_in_headers_and_query_are_sent_as_json(
    allowed: Env, target: Target
) -> None:
    definition = action(
        target.url + "/echo",
        headers={"X-List": "{{ input.l }}"},
        query={"l": "{{ input.l }}", "o": "{{ input.o }}"},
    )
    execution = await run(allowed, definition, {"l": [1, "a", None], "o": {"x": [1, 2]}})
    assert execution.status == "COMPLETED", execution.error
    echoed = execution.output["body"]
    assert echoed["query"] == {"l": '[1,"a",null]', "o": '{"x":[1,2]}'}
    assert echoed["headers"]["x-list"] == '[1,"a",null]'


async def test_a_target_that_always_fails_is_dead_lettered_then_redriven(
    allowed: Env, target: Target
) -> None:
    before = metrics.DEAD_LETTERS._value.get()
    retry = {**FAST_RETRY, "maxAttempts": 2}
    execution = await run(allowed, action(target.url + "/until-healthy", retry=retry))
    assert execution.status == "FAILED"
    assert execution.error["nodeId"] == "call" and execution.error["status"] == 503
    assert len(target.requests_to("/until-healthy")) == 2
    steps = await allowed.steps(execution.id)
    assert steps["call"].status == "FAILED" and steps["end"].status == "CANCELLED"
    [letter] = (await allowed.services.dead_letters.list(allowed.me)).items
    assert (letter.execution_id, letter.node_id, letter.attempts) == (execution.id, "call", 2)
    assert letter.error["status"] == 503
    # Counted by the worker right after its transaction commits.
    for _ in range(100):
        if metrics.DEAD_LETTERS._value.get() == before + 1:
            break
        await asyncio.sleep(0.02)
    assert metrics.DEAD_LETTERS._value.get() == before + 1
    stats = await allowed.services.dead_letters.queue_stats(allowed.me)
    assert stats.dead_letters == 1

    # Another owner sees no dead letter and cannot redrive this one.
    stranger = Principal(await allowed.services.api_keys.ensure_owner(new_subject()), "x")
    assert (await allowed.services.dead_letters.list(stranger)).items == []
    with pytest.raises(NotFound):
        await allowed.services.dead_letters.redrive(stranger, letter.id)

    target.healthy = True
    await allowed.services.dead_letters.redrive(allowed.me, letter.id)
    resumed = await allowed.wait(execution.id)
    assert resumed.status == "COMPLETED" and resumed.error is None
    assert resumed.output["body"] == {"ok": True}
    assert len(target.requests_to("/until-healthy")) == 3
    kinds = [e.kind for e in await allowed.events(execution.id)]
    assert "execution.resumed" in kinds and kinds[-1] == "execution.completed"
    assert (await allowed.services.dead_letters.list(allowed.me)).items == []
    with pytest.raises(Conflict):
        await allowed.services.dead_letters.redrive(allowed.me, letter.id)


async def test_a_client_error_fails_at_once_without_retries(allowed: Env, target: Target) -> None:
    execution = await run(allowed, action(target.url + "/status/404", retry=FAST_RETRY))
    assert execution.status == "FAILED"
    assert execution.error["status"] == 404 and execution.error["code"] == "http_status"
    assert len(target.requests_to("/status/404")) == 1


async def test_success_statuses_can_accept_a_404(allowed: Env, target: Target) -> None:
    definition = action(target.url + "/status/404", successStatuses=["200-299", 404])
    execution = await run(allowed, definition)
    assert execution.status == "COMPLETED" and execution.output["status"] == 404


async def test_retry_from_the_failed_step_reuses_completed_outputs(
    allowed: Env, target: Target
) -> None:
    definition = action(
        target.url + "/until-healthy?code=400", body={"n": "{{ steps.prep.output.n }}"}
    )
    definition["nodes"].insert(
        1, {"id": "prep", "type": "transform", "data": {"output": {"n": "{{ input.n * 10 }}"}}}
    )
    definition["edges"][0] = {"source": "start", "target": "prep"}
    definition["edges"].insert(1, {"source": "prep", "target": "call"})
    failed = await run(allowed, definition, {"n": 4})
    assert failed.status == "FAILED"

    target.healthy = True
    retried = await allowed.services.executions.retry(allowed.me, failed.id)
    execution = await allowed.wait(retried.execution.id)
    assert execution.status == "COMPLETED"
    assert execution.retry_of_id == failed.id and execution.version == failed.version
    old, new = await allowed.steps(failed.id), await allowed.steps(execution.id)
    assert new["prep"].output == {"n": 40} and new["prep"].reused_from_id == old["prep"].id
    assert new["start"].reused_from_id == old["start"].id
    assert new["call"].reused_from_id is None and new["call"].status == "COMPLETED"
    events = await allowed.events(execution.id)
    assert [e.node_id for e in events if e.kind == "step.reused"] == ["start", "prep"]
    assert not any(e.kind == "step.started" and e.node_id == "prep" for e in events)
    [second_call] = target.requests_to("/until-healthy")[1:]
    assert json.loads(second_call.body) == {"n": 40}
    # Only failed or cancelled executions can be retried.
    with pytest.raises(Conflict):
        await allowed.services.executions.retry(allowed.me, execution.id)


async def test_a_timeout_fails_the_step_cleanly(allowed: Env, target: Target) -> None:
    definition = action(
        target.url + "/slow?seconds=3", timeoutSeconds=0.3, retry={"maxAttempts": 1}
    )
    execution = await run(allowed, definition)
    assert execution.status == "FAILED"
    assert "timed out" in execution.error["message"].lower()


async def test_an_oversize_reply_fails_at_once(allowed: Env, target: Target) -> None:
    execution = await run(allowed, action(target.url + "/big?bytes=500000", retry=FAST_RETRY))
    assert execution.status == "FAILED"
    assert execution.error["code"] == "response_too_large"
    assert len(target.requests_to("/big")) == 1


@pytest.mark.parametrize(
    ("name", "where", "why"),
    [
        ("lone-surrogate", "$.body.a", "holds text that is not Unicode (a lone surrogate)"),
        ("escaped-surrogate", "$.body", "holds text that is not Unicode (a lone surrogate)"),
        ("deep-json", "$.body.a.a.a", "nests deeper than 254 levels"),
    ],
)
async def test_a_reply_that_cannot_be_stored_fails_its_step_once_saying_where(
    allowed: Env, target: Target, name: str, where: str, why: str
) -> None:
    # Found by QA: such a reply failed as an "Internal error in the action handler", or
    # (too deep) left the run RUNNING while the step ran again each time its lease ran out.
    execution = await run(allowed, action(target.url + f"/canned/{name}", retry=FAST_RETRY))
    assert execution.status == "FAILED"
    assert execution.error["code"] == "output_unstorable"
    assert execution.error["nodeId"] == "call"
    assert why in execution.error["message"] and where in execution.error["message"]
    assert len(target.requests_to(f"/canned/{name}")) == 1  # not retried: it would not fit again


@pytest.mark.parametrize(
    ("name", "kept"),
    [
        (
            "lone-surrogate",
            '{"ok":true,"a":"\ufffd"}',
        ),
        ("nul-json", '{"error":"a\\u0000b"}'),
        ("nul-text", "a\ufffdb"),
    ],
)
async def test_a_failed_reply_s_unstorable_body_is_kept_readable_and_retried(
    allowed: Env, target: Target, name: str, kept: str
) -> None:
    # Found by QA: a 503 whose body held a NUL or a lone surrogate failed its step at
    # once as output_unstorable: the error that quoted the body could not be written.
    url = target.url + f"/canned/{name}?status=503"
    execution = await run(allowed, action(url, retry=FAST_RETRY))
    assert execution.status == "FAILED"
    assert execution.error["code"] == "http_status" and execution.error["status"] == 503
    assert execution.error["body"] == kept
    assert len(target.requests_to(f"/canned/{name}")) == FAST_RETRY["maxAttempts"]


async def test_a_reply_nested_as_deep_as_can_be_stored_is_kept(
    allowed: Env, target: Target
) -> None:
    definition = action(target.url + "/canned/deep-json-fits")
    del definition["nodes"][2]["data"]  # templates read data at most 100 levels deep
    execution = await run(allowed, definition)
    assert execution.status == "COMPLETED", execution.error


async def test_a_redirect_from_an_allowed_server_to_a_private_address_is_refused(
    allowed: Env, target: Target
) -> None:
    for private in ("http://10.0.0.1/", "http://169.254.169.254/latest/meta-data"):
        url = target.url + "/redirect?to=" + private
        execution = await run(allowed, action(url, retry=FAST_RETRY))
        assert execution.status == "FAILED"
        assert execution.error["code"] == "url_refused"
    assert len(target.requests_to("/redirect")) == 2  # refused, and not retried


@pytest.mark.parametrize(
    "host",
    [
        "127.0.0.1",
        "10.0.0.1",
        "169.254.169.254",
        "[::1]",
        "[::ffff:127.0.0.1]",
        "2130706433",
        "0177.0.0.1",
        "localhost",
    ],
)
async def test_the_default_policy_refuses_private_addresses(
    running: Env, target: Target, host: str
) -> None:
    url = f"http://{host}:{target.port}/echo"
    execution = await run(running, action(url, retry=FAST_RETRY))
    assert execution.status == "FAILED"
    if host == "0177.0.0.1":  # httpx itself will not parse this spelling of 127.0.0.1
        assert "not a usable url" in execution.error["message"].lower()
    else:
        assert execution.error["code"] == "url_refused"
        assert "does not allow" in execution.error["message"]
    assert target.requests_to("/echo") == []  # nothing reached the server
    steps = await running.steps(execution.id)
    assert steps["call"].attempt == 1


async def test_backpressure_refuses_new_executions_and_counts_them(env: Env) -> None:
    from flowsync.services.executions import ExecutionService

    service = ExecutionService(
        env.services.sessions,
        env.services.pool,
        env.services.executions._orchestrator,
        max_queue_depth=2,
        depth_ttl=0,
    )
    wid = await env.create(action("https://example.invalid/"))
    for _ in range(3):
        await service.start(env.me, wid, {})
    before = metrics.BACKPRESSURE_REFUSALS._value.get()
    with pytest.raises(Backpressure) as refused:
        await service.start(env.me, wid, {})
    assert refused.value.retry_after > 0 and refused.value.status == 503
    assert metrics.BACKPRESSURE_REFUSALS._value.get() == before + 1
    assert await env.services.pool.fetchval("SELECT count(*) FROM executions") == 3


async def test_a_concurrency_limit_queues_runs_beyond_it(running: Env) -> None:
    definition = {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "wait", "type": "delay", "data": {"seconds": 0.4}},
            {"id": "end", "type": "end"},
        ],
        "edges": [{"source": "start", "target": "wait"}, {"source": "wait", "target": "end"}],
    }
    wf = await running.services.workflows.create(running.me, "one", None, definition, 1)
    eids = [await running.start(wf.id, {"i": i}) for i in range(3)]
    first, *rest = [await running.services.executions.get(running.me, e) for e in eids]
    assert first.status == "RUNNING" and [e.status for e in rest] == ["PENDING", "PENDING"]
    done = [await running.wait(e) for e in eids]
    assert [e.status for e in done] == ["COMPLETED"] * 3
    # One at a time, in order.
    for earlier, later in itertools.pairwise(done):
        assert later.started_at >= earlier.finished_at
    # Lifting the limit starts whatever waits.
    eids = [await running.start(wf.id, {}) for _ in range(3)]
    await running.services.workflows.update(running.me, wf.id, WorkflowUpdate(max_concurrency=None))
    statuses = {(await running.services.executions.get(running.me, e)).status for e in eids}
    assert "PENDING" not in statuses
    for e in eids:
        assert (await running.wait(e)).status == "COMPLETED"


async def test_a_webhook_response_step_builds_the_reply(running: Env) -> None:
    definition = {
        "nodes": [
            {"id": "start", "type": "start"},
            {
                "id": "reply",
                "type": "webhook_response",
                "data": {
                    "status": 201,
                    "headers": {"X-Order": "{{ input.id }}"},
                    "body": {"ok": True, "id": "{{ input.id }}"},
                },
            },
            {"id": "end", "type": "end"},
        ],
        "edges": [{"source": "start", "target": "reply"}, {"source": "reply", "target": "end"}],
    }
    execution = await run(running, definition, {"id": 7})
    steps = await running.steps(execution.id)
    assert steps["reply"].output == {
        "status": 201,
        "headers": {"X-Order": "7"},
        "body": {"ok": True, "id": 7},
    }
