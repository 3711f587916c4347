"""Batch starts through both faces (startExecutions, POST
/api/workflows/{id}/executions:batch): the same results, the same errors, the same
idempotency, limit, backpressure and owner isolation, and runs that complete on a real
worker."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.behaviour.faces import FACES, Face, FaceError, not_found_ids
from tests.rest.server import Server, eventually, new_id, serve, worker
from tests.support.graphs import chain
from tests.support.target import action

DELAYED = chain(1, delay=60)  # stays RUNNING without holding a worker


@pytest.fixture
async def server(db_url: str) -> AsyncIterator[Server]:
    # A small batch limit and queue depth, so that both are reached in a test.
    async with serve(db_url, max_batch_starts=5, max_queue_depth=3) as running:
        yield running


@pytest.fixture(params=sorted(FACES))
async def face(request: pytest.FixtureRequest, server: Server) -> Face:
    owner = await server.owner()
    return FACES[request.param](owner.http)


async def test_a_batch_runs_to_completion_on_a_worker(server: Server, face: Face) -> None:
    wf = await face.create_workflow("w", chain(2))
    started = await face.start_executions(wf["id"], [{"input": {"n": i}} for i in range(3)])
    assert [created for _, created in started] == [True] * 3
    assert [run["input"] for run, _ in started] == [{"n": i} for i in range(3)]
    async with worker(server.services):
        for i, (run, _) in enumerate(started):

            async def done(run_id: str = run["id"]) -> dict[str, object] | None:
                found = await face.get_execution(run_id)
                return found if found and found["status"] == "COMPLETED" else None

            finished = await eventually(done, what=f"run {i} to complete")
            assert finished["output"] == {"n": i + 2}
    listed = await face.list_executions(workflow_id=wf["id"])
    assert sorted(listed.ids) == sorted(run["id"] for run, _ in started)


async def test_keys_repeated_within_and_across_batches_return_their_runs(face: Face) -> None:
    wf = await face.create_workflow("w", DELAYED)
    first = await face.start_executions(
        wf["id"],
        [{"idempotencyKey": "a"}, {"input": {"x": 1}, "idempotencyKey": "a"}, {"input": None}],
    )
    assert [c for _, c in first] == [True, False, True]
    assert first[0][0] == first[1][0]
    again = await face.start_executions(wf["id"], [{"idempotencyKey": "a"}])
    assert again == [(first[0][0], False)]
    single, created = await face.start_execution(wf["id"], {}, key="a")
    assert (single["id"], created) == (first[0][0]["id"], False)
    assert len((await face.list_executions(workflow_id=wf["id"])).ids) == 2


async def test_a_batch_is_one_audit_entry_naming_the_runs_it_started(face: Face) -> None:
    wf = await face.create_workflow("w", DELAYED)
    ((kept, _),) = await face.start_executions(wf["id"], [{"idempotencyKey": "k"}])
    started = await face.start_executions(
        wf["id"], [{"input": {"n": 1}}, {"idempotencyKey": "k"}, {"input": {"n": 2}}]
    )
    entries = [e for e in await face.audit_log() if e["action"].startswith("execution.")]
    assert [e["action"] for e in entries] == ["execution.batch_started"] * 2
    newest = entries[0]
    assert (newest["entityType"], newest["entityId"]) == ("workflow", wf["id"])
    # The repeated key started nothing: the entry lists the two runs this batch made.
    made = [run["id"] for run, created in started if created]
    assert newest["data"] == {
        "version": 1, "trigger": "MANUAL", "count": 2, "executionIds": made,
    }  # fmt: skip
    assert entries[1]["data"]["executionIds"] == [kept["id"]]


async def test_a_batch_over_the_limit_names_it_and_starts_nothing(face: Face) -> None:
    wf = await face.create_workflow("w", DELAYED)
    with pytest.raises(FaceError) as caught:
        await face.start_executions(wf["id"], [{}] * 6)
    assert caught.value.code == "invalid_input" and caught.value.paths == {"$.inputs"}
    assert "at most 5" in caught.value.message and "has 6" in caught.value.message
    assert (await face.list_executions()).ids == []


async def test_an_invalid_item_is_named_by_its_index_and_nothing_starts(face: Face) -> None:
    wf = await face.create_workflow("w", DELAYED)
    with pytest.raises(FaceError) as caught:
        await face.start_executions(wf["id"], [{}, {}, {"idempotencyKey": ""}])
    assert caught.value.code == "invalid_input"
    assert caught.value.paths == {"$.inputs[2].idempotencyKey"}
    assert (await face.list_executions()).ids == []


async def test_backpressure_refuses_a_batch(face: Face) -> None:
    # No worker: each run's first action stays due. 3 due at most before a start.
    wf = await face.create_workflow("w", action("https://example.invalid/"))
    with pytest.raises(FaceError) as caught:
        await face.start_executions(wf["id"], [{}] * 5)
    assert caught.value.code == "backpressure"
    assert (await face.list_executions()).ids == []
    started = await face.start_executions(wf["id"], [{"idempotencyKey": "k"}, {}, {}, {}])
    assert [c for _, c in started] == [True] * 4
    with pytest.raises(FaceError) as refused:
        await face.start_executions(wf["id"], [{}])
    assert refused.value.code == "backpressure"
    # Repeats only are answered, never refused.
    assert await face.start_executions(wf["id"], [{"idempotencyKey": "k"}]) == [
        (started[0][0], False)
    ]


async def test_another_owner_s_workflow_is_not_found(server: Server, face: Face) -> None:
    other = FACES[face.name]((await server.owner()).http)
    theirs = await other.create_workflow("theirs", DELAYED)
    for target in not_found_ids(face, theirs["id"], new_id()):
        with pytest.raises(FaceError) as caught:
            await face.start_executions(target, [{"idempotencyKey": "k"}])
        assert caught.value.code == "not_found"
    assert (await other.list_executions()).ids == []
    assert (await face.list_executions()).ids == []


async def test_a_batchs_runs_are_returned_as_they_read_back(face: Face) -> None:
    # The batch's reply is made from the rows its statement wrote (no read back); it must
    # say what reading each run says, field for field.
    wf = await face.create_workflow("w", DELAYED)
    started = await face.start_executions(
        wf["id"], [{"input": {"n": 1}}, {"idempotencyKey": "k", "input": [1, "two"]}]
    )
    for run, created in started:
        assert created and run["status"] == "RUNNING" and run["startedAt"] is not None
        found = await face.get_execution(run["id"])
        assert found is not None
        assert {k: v for k, v in found.items() if k in run} == run
