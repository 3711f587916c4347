"""A worker killed in the middle of an HTTP call: the call is made again, with the same
Idempotency-Key, so that the target can drop the repeat."""

from __future__ import annotations

from collections.abc import Callable

import pytest

from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.support.processes import Process
from tests.support.target import action, running_target
from tests.support.workers import finished, wait_until

pytestmark = pytest.mark.slow


async def test_sigkill_mid_request_repeats_the_call_with_the_same_key(
    services: Services, me: Principal, workers: Callable[..., Process]
) -> None:
    with running_target() as target:
        definition = action(target.url + "/slow?seconds=3", "POST", body={"n": 1})
        wf = await services.workflows.create(me, "slow-call", None, definition)
        eid = (await services.executions.start(me, wf.id, {})).execution.id
        doomed = workers(allow_networks="127.0.0.1/32")

        async def in_flight() -> bool:
            return len(target.requests_to("/slow")) == 1

        await wait_until(in_flight, 20, "the first call to reach the target")
        doomed.kill()
        workers(allow_networks="127.0.0.1/32")
        execution = await finished(services, me, eid, 40)
        assert execution.status == "COMPLETED"
        calls = target.requests_to("/slow")
        assert len(calls) == 2
        assert calls[0].headers["idempotency-key"] == calls[1].headers["idempotency-key"]
        assert calls[0].headers["idempotency-key"] == f"{eid}:call"
        steps = (await services.executions.steps(me, [eid]))[eid]
        assert {s.node_id: s.attempt for s in steps}["call"] == 2
