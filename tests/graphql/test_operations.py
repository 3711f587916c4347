"""Triggers, dead letters, queue statistics, metrics, the audit log, the scheduler and
retryExecution through GraphQL, on a real server; another owner sees none of it."""

from __future__ import annotations

import asyncio
from typing import Any

from flowsync.worker.netguard import NetworkPolicy
from flowsync.worker.registry import default_registry
from tests.graphql.conftest import Api, op, running_worker
from tests.graphql.test_api import create, start
from tests.support.graphs import chain
from tests.support.target import action, running_target

TRIGGER = "id type enabled config webhookUrl nextRunAt lastFiredAt workflow { id name }"


async def until_status(s: Any, eid: str, wanted: str) -> dict[str, Any]:
    for _ in range(200):
        got = await s.execute(op("query($id: ID!) { execution(id: $id) { id status } }", id=eid))
        if got["execution"]["status"] == wanted:
            return dict(got["execution"])
        await asyncio.sleep(0.05)
    raise AssertionError(f"execution {eid} never reached {wanted}")


async def test_trigger_lifecycle_and_isolation(api: Api) -> None:
    a, b = await api.owner(), await api.owner()
    async with api.http(a.key) as s:
        wid = await create(s, chain(1))
        made = await s.execute(
            op(
                f"""mutation($w: ID!, $c: JSON) {{ createTrigger(workflowId: $w, type: CRON,
                    config: $c) {{ __typename ... on CreateTriggerPayload {{ secret
                    trigger {{ {TRIGGER} }} }} }} }}""",
                w=wid,
                c={"expression": "*/5 * * * *", "timezone": "Europe/Berlin"},
            )
        )
        payload = made["createTrigger"]
        assert payload["__typename"] == "CreateTriggerPayload"
        trig = payload["trigger"]
        assert trig["type"] == "CRON" and trig["enabled"] and trig["nextRunAt"]
        assert trig["workflow"]["id"] == wid and trig["webhookUrl"] is None
        bad = await s.execute(
            op(
                """mutation($w: ID!) { createTrigger(workflowId: $w, type: CRON,
                   config: {expression: "nope"}) { __typename
                   ... on ValidationError { problems { path } } } }""",
                w=wid,
            )
        )
        assert bad["createTrigger"]["__typename"] == "ValidationError"
        assert "$.config.expression" in [p["path"] for p in bad["createTrigger"]["problems"]]
        hook = await s.execute(
            op(
                """mutation($w: ID!) { createTrigger(workflowId: $w, type: WEBHOOK) {
                   ... on CreateTriggerPayload { secret trigger { id webhookUrl } } } }""",
                w=wid,
            )
        )
        assert hook["createTrigger"]["secret"]
        assert hook["createTrigger"]["trigger"]["webhookUrl"].startswith("/api/webhooks/")
        nested = await s.execute(
            op("query($id: ID!) { workflow(id: $id) { maxConcurrency triggers { type } } }", id=wid)
        )
        assert nested["workflow"]["maxConcurrency"] is None
        assert sorted(t["type"] for t in nested["workflow"]["triggers"]) == ["CRON", "WEBHOOK"]
        listed = await s.execute(op("{ triggers { edges { node { id type } } } }"))
        assert {e["node"]["type"] for e in listed["triggers"]["edges"]} == {"CRON", "WEBHOOK"}
        off = await s.execute(
            op(
                """mutation($id: ID!) { updateTrigger(id: $id, enabled: false) {
                   ... on TriggerPayload { trigger { enabled nextRunAt } } } }""",
                id=trig["id"],
            )
        )
        assert off["updateTrigger"]["trigger"] == {"enabled": False, "nextRunAt": None}
    async with api.http(b.key) as s:
        assert (await s.execute(op("{ triggers { edges { cursor } } }")))["triggers"]["edges"] == []
        one = await s.execute(op("query($id: ID!) { trigger(id: $id) { id } }", id=trig["id"]))
        assert one == {"trigger": None}
        gone = await s.execute(
            op("mutation($id: ID!) { deleteTrigger(id: $id) { __typename } }", id=trig["id"])
        )
        assert gone["deleteTrigger"]["__typename"] == "NotFoundError"
    async with api.http(a.key) as s:
        deleted = await s.execute(
            op("mutation($id: ID!) { deleteTrigger(id: $id) { __typename } }", id=trig["id"])
        )
        assert deleted["deleteTrigger"]["__typename"] == "DeletedPayload"
        status = await s.execute(op("{ schedulerStatus { enabledTriggers dueTriggers } }"))
        assert status["schedulerStatus"] == {"enabledTriggers": 0, "dueTriggers": 0}


async def test_dead_letters_redrive_retry_queue_metrics_and_audit(api: Api) -> None:
    a, b = await api.owner(), await api.owner()
    with running_target() as target:
        registry = default_registry(NetworkPolicy(["127.0.0.1/32"]))
        definition = action(target.url + "/until-healthy", retry={"maxAttempts": 1})
        async with running_worker(api, registry), api.http(a.key) as s:
            wid = await create(s, definition)
            first = await start(s, wid)
            eid = first["execution"]["id"]
            await until_status(s, eid, "FAILED")

            letters = await s.execute(
                op("{ deadLetters { edges { node { id executionId nodeId attempts error } } } }")
            )
            [edge] = letters["deadLetters"]["edges"]
            letter = edge["node"]
            assert (letter["executionId"], letter["nodeId"]) == (eid, "call")
            stats = await s.execute(
                op("{ queueStats { queued running deadLetters maxDepth sheddingLoad } }")
            )
            assert stats["queueStats"]["deadLetters"] == 1
            assert stats["queueStats"]["sheddingLoad"] is False

            retry = """mutation($id: ID!, $key: String) {
                retryExecution(id: $id, idempotencyKey: $key) { __typename
                ... on StartExecutionPayload { created execution { id status } } } }"""
            retried = await s.execute(op(retry, id=eid, key="retry-1"))
            second = retried["retryExecution"]["execution"]["id"]
            assert second != eid and retried["retryExecution"]["created"] is True
            # The client repeats its request (a timeout, say): the same retry, no other.
            repeated = await s.execute(op(retry, id=eid, key="retry-1"))
            assert repeated["retryExecution"]["created"] is False
            assert repeated["retryExecution"]["execution"]["id"] == second
            await until_status(s, second, "FAILED")  # the target is still down

            target.healthy = True
            # The first run was retried: its retry runs it again, so neither a second
            # retry nor a redrive of its dead letter may run it a third time.
            for twice in (
                op("mutation($id: ID!) { retryExecution(id: $id) { __typename } }", id=eid),
                op(
                    "mutation($id: ID!) { redriveDeadLetter(id: $id) { __typename } }",
                    id=letter["id"],
                ),
            ):
                refused = next(iter((await s.execute(twice)).values()))
                assert refused["__typename"] == "ConflictError"
            letters = await s.execute(op("{ deadLetters { edges { node { id executionId } } } }"))
            [letter] = [
                e["node"] for e in letters["deadLetters"]["edges"]
                if e["node"]["executionId"] == second
            ]  # fmt: skip
            redriven = await s.execute(
                op(
                    """mutation($id: ID!) { redriveDeadLetter(id: $id) { __typename
                       ... on DeadLetterPayload { deadLetter { redrivenAt } } } }""",
                    id=letter["id"],
                )
            )
            assert redriven["redriveDeadLetter"]["deadLetter"]["redrivenAt"]
            await until_status(s, second, "COMPLETED")
            again = await s.execute(
                op(
                    "mutation($id: ID!) { redriveDeadLetter(id: $id) { __typename } }",
                    id=letter["id"],
                )
            )
            assert again["redriveDeadLetter"]["__typename"] == "ConflictError"

            metrics = (await s.execute(op("{ metrics { executionsTotal } }")))["metrics"]
            assert metrics == {"executionsTotal": 2}
            audit = await s.execute(
                op(
                    """{ auditLog(entityType: "execution", first: 50) {
                       edges { node { action entityId } } } }"""
                )
            )
            actions = {e["node"]["action"] for e in audit["auditLog"]["edges"]}
            assert {"execution.started", "execution.retried"} <= actions
        async with api.http(b.key) as s:
            theirs = await s.execute(op("{ deadLetters { edges { cursor } } }"))
            assert theirs["deadLetters"]["edges"] == []
            stolen = await s.execute(
                op(
                    "mutation($id: ID!) { redriveDeadLetter(id: $id) { __typename } }",
                    id=letter["id"],
                )
            )
            assert stolen["redriveDeadLetter"]["__typename"] == "NotFoundError"
            none = await s.execute(
                op("mutation($id: ID!) { retryExecution(id: $id) { __typename } }", id=eid)
            )
            assert none["retryExecution"]["__typename"] == "NotFoundError"
            log = await s.execute(op("{ auditLog { edges { node { action entityType } } } }"))
            # Only b's own entries (its API key), none of a's.
            assert {e["node"]["entityType"] for e in log["auditLog"]["edges"]} <= {"api_key"}
