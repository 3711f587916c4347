"""A failed action's error is JSON all through: the reply's body is kept as the decoded
JSON value (or its text), never as Python's repr of it."""

from __future__ import annotations

import asyncio
import json
from collections.abc import AsyncIterator, Iterator

import pytest

from flowsync.worker.actions import ERROR_BODY_CHARS
from flowsync.worker.netguard import NetworkPolicy
from flowsync.worker.registry import default_registry
from tests.support.env import Env, run_worker
from tests.support.target import Target, action, running_target


@pytest.fixture
def target() -> Iterator[Target]:
    with running_target() as served:
        yield served


@pytest.fixture
async def allowed(env: Env) -> AsyncIterator[Env]:
    task = await run_worker(env, default_registry(NetworkPolicy(["127.0.0.1/32"])))
    try:
        yield env
    finally:
        assert env.worker is not None
        env.worker.stop()
        await asyncio.wait_for(task, 30)


async def test_a_json_reply_that_fails_keeps_its_body_as_json(allowed: Env, target: Target) -> None:
    # /echo answers 200 with a JSON object; accepting only 201 makes that a failure.
    wid = await allowed.create(action(target.url + "/echo?x=1", successStatuses=[201]))
    execution = await allowed.wait(await allowed.start(wid, {}), timeout=20)
    assert execution.status == "FAILED"
    body = execution.error["body"]
    assert isinstance(body, dict), body
    assert body["method"] == "GET" and body["query"] == {"x": "1"}
    json.dumps(execution.error, allow_nan=False)  # the whole error is plain JSON


async def test_a_long_json_reply_keeps_its_json_text_cut_short(
    allowed: Env, target: Target
) -> None:
    wid = await allowed.create(action(target.url + "/echo?pad=" + "y" * 800, successStatuses=[201]))
    execution = await allowed.wait(await allowed.start(wid, {}), timeout=20)
    body = execution.error["body"]
    assert isinstance(body, str) and len(body) == ERROR_BODY_CHARS
    assert body.startswith('{"method":"GET"'), body  # JSON text, not {'method': 'GET'
    assert execution.error["bodyTruncated"] is True


async def test_a_text_reply_that_fails_keeps_its_text(allowed: Env, target: Target) -> None:
    wid = await allowed.create(action(target.url + "/status/418"))
    execution = await allowed.wait(await allowed.start(wid, {}), timeout=20)
    assert execution.error["status"] == 418 and execution.error["body"] == "as asked"
    assert "bodyTruncated" not in execution.error
