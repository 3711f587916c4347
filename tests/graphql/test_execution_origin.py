"""An execution's pinned definition and the run it retries, through GraphQL: the
definition is its own version's (not the workflow's newest), read in one batched
statement for a whole page; another owner's execution is null."""

from __future__ import annotations

from flowsync.services.workflows import WorkflowUpdate
from tests.graphql.conftest import Api, op
from tests.graphql.test_statements import run
from tests.support.graphs import chain

DELAYED = chain(1, delay=60)  # stays RUNNING without holding a worker
PAGE = "{ executions(first: 50) { edges { node { id workflowVersion definition } } } }"
ONE = "query($id: ID!) { execution(id: $id) { id status definition retriedFromId } }"


async def test_each_execution_has_its_versions_definition_in_one_statement(api: Api) -> None:
    a = await api.owner()
    services = api.services
    wf = await services.workflows.create(a.principal, "w", None, DELAYED)
    first = (await services.executions.start(a.principal, wf.id)).execution
    await services.workflows.update(a.principal, wf.id, WorkflowUpdate(definition=chain(2)))
    second = (await services.executions.start(a.principal, wf.id)).execution

    counts: dict[int, int] = {}
    for total in (2, 30):
        while len((await services.executions.list(a.principal, limit=200)).items) < total:
            await services.executions.start(a.principal, wf.id)
        statements, _, body = await run(api, a.key, PAGE)
        nodes = {e["node"]["id"]: e["node"] for e in body["data"]["executions"]["edges"]}
        assert len(nodes) == total
        for node in nodes.values():
            expected = DELAYED if node["workflowVersion"] == 1 else chain(2)
            assert node["definition"]["nodes"] == expected["nodes"]
        assert nodes[str(first.id)]["workflowVersion"] == 1
        assert nodes[str(second.id)]["workflowVersion"] == 2
        counts[total] = len(statements)
    # The key's lookup, the page, the versions of all of them: as many for 30 as for 2.
    assert counts[2] == counts[30] <= 3, counts


async def test_a_retry_names_its_origin_and_others_see_nothing(api: Api) -> None:
    a, b = await api.owner(), await api.owner()
    wf = await api.services.workflows.create(a.principal, "w", None, DELAYED)
    origin = (await api.services.executions.start(a.principal, wf.id)).execution
    await api.services.executions.cancel(a.principal, origin.id)
    async with api.http(a.key) as s:
        retried = await s.execute(
            op(
                """mutation($id: ID!) { retryExecution(id: $id) {
                   ... on StartExecutionPayload { execution { id retriedFromId definition } }
                   } }""",
                id=str(origin.id),
            )
        )
        made = retried["retryExecution"]["execution"]
        assert made["retriedFromId"] == str(origin.id)
        assert made["definition"]["nodes"] == DELAYED["nodes"]
        again = (await s.execute(op(ONE, id=made["id"])))["execution"]
        assert again["retriedFromId"] == str(origin.id)
        first = (await s.execute(op(ONE, id=str(origin.id))))["execution"]
        assert first["retriedFromId"] is None and first["status"] == "CANCELLED"
    async with api.http(b.key) as s:
        for eid in (str(origin.id), made["id"]):
            assert (await s.execute(op(ONE, id=eid)))["execution"] is None
