"""The behaviour suite: the shared operations through both faces, REST and GraphQL, of
one real server (uvicorn on a free port), expecting the same results and the same
errors. Each test runs once per face; the cross-face tests read through one face what the
other wrote."""

from __future__ import annotations

from collections.abc import AsyncIterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flowsync.scheduler.scheduler import Scheduler
from tests.behaviour.faces import FACES, Face, FaceError, GraphQLFace, RestFace, not_found_ids
from tests.rest.server import Server, eventually, new_id, serve, worker
from tests.support.dead_letters import failed_runs
from tests.support.graphs import chain

DELAYED = chain(1, delay=60)  # stays RUNNING without holding a worker
BROKEN = {
    "nodes": [{"id": "start", "type": "start"}, {"id": "x", "type": "action", "data": {}}],
    "edges": [{"source": "start", "target": "x"}, {"source": "x", "target": "nowhere"}],
}


@pytest.fixture
async def server(db_url: str) -> AsyncIterator[Server]:
    async with serve(db_url) as running:
        yield running


async def face_of(server: Server, name: str) -> Face:
    owner = await server.owner()
    return FACES[name](owner.http)


@pytest.fixture(params=sorted(FACES))
async def face(request: pytest.FixtureRequest, server: Server) -> Face:
    return await face_of(server, request.param)


async def test_workflow_lifecycle(face: Face) -> None:
    created = await face.create_workflow("orders", chain(1), "sync orders")
    assert (created["name"], created["description"], created["version"]) == (
        "orders", "sync orders", 1,
    )  # fmt: skip
    assert await face.get_workflow(created["id"]) == created
    renamed = await face.update_workflow(created["id"], name="orders2")
    assert (renamed["name"], renamed["version"]) == ("orders2", 1)
    bumped = await face.update_workflow(created["id"], definition=chain(2))
    assert bumped["version"] == 2 and bumped["definition"] == chain(2)
    await face.delete_workflow(created["id"])
    assert await face.get_workflow(created["id"]) is None


async def test_an_invalid_definition_is_refused_with_every_path(face: Face) -> None:
    with pytest.raises(FaceError) as caught:
        await face.create_workflow("bad", BROKEN)
    assert caught.value.code == "invalid_definition"
    assert any(p.startswith("$.definition.edges[1]") for p in caught.value.paths)
    assert any(p.startswith("$.definition.nodes[1]") for p in caught.value.paths)
    assert (await face.list_workflows(10)).ids == []


async def test_missing_and_other_owners_objects_look_the_same(server: Server, face: Face) -> None:
    other = await face_of(server, face.name)
    theirs = await other.create_workflow("theirs", DELAYED)
    run, _ = await other.start_execution(theirs["id"])
    for target in not_found_ids(face, theirs["id"], new_id()):
        assert await face.get_workflow(target) is None
        for call in (
            face.update_workflow(target, name="x"),
            face.delete_workflow(target),
            face.start_execution(target),
        ):
            with pytest.raises(FaceError) as caught:
                await call
            assert caught.value.code == "not_found"
    for target in (run["id"], new_id()):
        assert await face.get_execution(target) is None
        with pytest.raises(FaceError) as caught:
            await face.cancel_execution(target)
        assert caught.value.code == "not_found"
    assert (await face.list_executions()).ids == []
    assert (await face.list_executions(workflow_id="not-a-uuid")).ids == []


async def test_idempotent_starts_return_the_first_execution(face: Face) -> None:
    wf = await face.create_workflow("w", DELAYED)
    first, created = await face.start_execution(wf["id"], {"n": 1}, key="same")
    again, created_again = await face.start_execution(wf["id"], {"n": 2}, key="same")
    assert (created, created_again) == (True, False)
    assert again == first and again["input"] == {"n": 1}
    other, created_other = await face.start_execution(wf["id"], {"n": 3}, key="another")
    assert created_other and other["id"] != first["id"]
    with pytest.raises(FaceError) as caught:
        await face.start_execution(wf["id"], key="k" * 256)
    assert caught.value.code == "invalid_input"


async def test_cancel_then_cancel_again_is_a_conflict(face: Face) -> None:
    wf = await face.create_workflow("w", DELAYED)
    run, _ = await face.start_execution(wf["id"])
    cancelled = await face.cancel_execution(run["id"])
    assert cancelled["status"] == "CANCELLED" and cancelled["finishedAt"] is not None
    with pytest.raises(FaceError) as caught:
        await face.cancel_execution(run["id"])
    assert caught.value.code == "conflict"
    assert (await face.list_executions(status="CANCELLED")).ids == [run["id"]]
    assert (await face.list_executions(status="RUNNING")).ids == []


async def test_pages_and_page_size_limits(face: Face) -> None:
    ids = [(await face.create_workflow(f"w{i}", chain(1)))["id"] for i in range(3)]
    first = await face.list_workflows(2)
    assert first.ids == ids[:0:-1] and first.next_cursor is not None
    rest = await face.list_workflows(2, first.next_cursor)
    assert rest.ids == [ids[0]] and rest.next_cursor is None
    for size in (0, 201):
        with pytest.raises(FaceError) as caught:
            await face.list_workflows(size)
        assert caught.value.code == "invalid_input"
    with pytest.raises(FaceError) as bad_cursor:
        await face.list_workflows(2, "not-a-cursor")
    assert bad_cursor.value.code == "invalid_input"


async def test_a_run_reads_the_same_through_both_faces(server: Server) -> None:
    owner = await server.owner()
    rest, graphql = RestFace(owner.http), GraphQLFace(owner.http)
    wf = await rest.create_workflow("both", chain(2), "written through REST")
    assert await graphql.get_workflow(wf["id"]) == wf
    run, _ = await graphql.start_execution(wf["id"], {"n": 5})
    async with worker(server.services):

        async def ended() -> dict[str, Any] | None:
            found = await rest.get_execution(run["id"])
            return found if found is not None and found["status"] == "COMPLETED" else None

        via_rest = await eventually(ended, what="the run to complete")
    via_graphql = await graphql.get_execution(run["id"])
    assert via_graphql == via_rest
    assert via_rest["output"] == {"n": 7}
    assert [s["nodeId"] for s in via_rest["steps"]] == ["start", "t1", "t2", "end"]
    # Lists and their cursors agree too.
    for _ in range(2):
        await rest.start_execution(wf["id"], {"n": 0})
    rest_page = await rest.list_executions(workflow_id=wf["id"], limit=2)
    graphql_page = await graphql.list_executions(workflow_id=wf["id"], limit=2)
    assert rest_page == graphql_page and rest_page.next_cursor is not None


async def test_both_faces_write_the_same_audit_entries(server: Server) -> None:
    owner = await server.owner()
    actions: dict[str, list[tuple[str, str]]] = {}
    for face in (RestFace(owner.http), GraphQLFace(owner.http)):
        wf = await face.create_workflow(face.name, DELAYED)
        await face.update_workflow(wf["id"], definition=chain(2))
        run, _ = await face.start_execution(wf["id"])
        await face.cancel_execution(run["id"])
        await face.delete_workflow(wf["id"])
        entries = (await owner.http.get("/api/observability/audit", params={"limit": 200})).json()[
            "items"
        ]
        ours = {wf["id"], run["id"]}
        actions[face.name] = [
            (e["action"], e["entityType"]) for e in reversed(entries) if e["entityId"] in ours
        ]
    assert (
        actions["rest"]
        == actions["graphql"]
        == [
            ("workflow.created", "workflow"),
            ("workflow.updated", "workflow"),
            ("execution.started", "execution"),
            ("execution.cancelled", "execution"),
            ("workflow.deleted", "workflow"),
        ]
    )


async def test_an_audit_time_without_an_offset_is_refused_naming_it(face: Face) -> None:
    await face.create_workflow("w", chain(1))
    hour_ago = datetime.now(UTC) - timedelta(hours=1)
    # An offset, or Z: the entries since then.
    for since in (hour_ago.isoformat(), hour_ago.strftime("%Y-%m-%dT%H:%M:%SZ")):
        assert "workflow.created" in [e["action"] for e in await face.audit_log(since=since)]
    ahead = (datetime.now(UTC) + timedelta(hours=1)).strftime("%Y-%m-%dT%H:%M:%SZ")
    assert await face.audit_log(since=ahead) == []
    # None: which instant is meant depends on a zone the server cannot know.
    naive = hour_ago.replace(tzinfo=None).isoformat()
    for name in ("since", "until"):
        with pytest.raises(FaceError) as caught:
            await face.audit_log(**{name: naive})
        assert caught.value.code == "invalid_input" and caught.value.paths == {name}
        assert "offset" in caught.value.message


async def test_a_retry_names_its_origin_and_runs_its_pinned_definition(
    server: Server, face: Face
) -> None:
    wf = await face.create_workflow("w", DELAYED)
    origin, _ = await face.start_execution(wf["id"])
    assert origin["retriedFromId"] is None
    await face.update_workflow(wf["id"], definition=chain(2))
    read = await face.get_execution(origin["id"])
    assert read is not None and read["definition"] == DELAYED  # its version's, not the newest
    with pytest.raises(FaceError) as running:
        await face.retry_execution(origin["id"])
    assert running.value.code == "conflict"
    await face.cancel_execution(origin["id"])
    retried = await face.retry_execution(origin["id"])
    assert retried["retriedFromId"] == origin["id"] and retried["workflowVersion"] == 1
    with pytest.raises(FaceError) as twice:  # a run is retried once: retry its retry
        await face.retry_execution(origin["id"])
    assert twice.value.code == "conflict" and retried["id"] in twice.value.message
    again = await face.get_execution(retried["id"])
    assert again is not None and again["retriedFromId"] == origin["id"]
    assert again["definition"] == DELAYED
    other = await face_of(server, face.name)
    for target in (origin["id"], new_id()):
        with pytest.raises(FaceError) as caught:
            await other.retry_execution(target)
        assert caught.value.code == "not_found"


async def test_api_keys_are_listed_newest_first_and_revoked_once(
    server: Server, face: Face
) -> None:
    made = [await face.create_api_key(f"k{i}") for i in range(3)]
    for key, secret in made:
        assert secret.startswith(key["prefix"]) and key["revokedAt"] is None
    first = await face.list_api_keys(2)
    rest = await face.list_api_keys(2, first.next_cursor)
    assert first.ids == [made[2][0]["id"], made[1][0]["id"]] and first.next_cursor
    assert rest.ids[0] == made[0][0]["id"] and rest.next_cursor is None  # then the owner's own
    revoked = await face.revoke_api_key(made[1][0]["id"])
    assert revoked["revokedAt"] is not None and revoked["id"] == made[1][0]["id"]
    assert (await face.revoke_api_key(made[1][0]["id"])) == revoked  # revoking again: the same
    # A revoked key no longer authenticates; the others still do.
    for (key, secret), works in zip(made, (True, False, True), strict=True):
        reply = await server.client(secret).get("/api/api-keys")
        assert reply.status_code == (200 if works else 401), key
    assert len((await face.list_api_keys()).ids) == 4  # revoked ones stay listed
    with pytest.raises(FaceError) as blank:
        await face.create_api_key("  ")
    assert blank.value.code == "invalid_input"
    other = await face_of(server, face.name)
    assert made[0][0]["id"] not in (await other.list_api_keys()).ids
    for target in not_found_ids(other, made[0][0]["id"], new_id()):
        with pytest.raises(FaceError) as caught:
            await other.revoke_api_key(target)
        assert caught.value.code == "not_found"


@pytest.mark.parametrize("name", sorted(FACES))
async def test_dead_letters_by_execution_read_and_redriven(server: Server, name: str) -> None:
    owner = await server.owner()
    face = FACES[name](owner.http)
    runs = [str(r) for r in await failed_runs(server.services, owner.principal, 3)]
    everything = await face.list_dead_letters()
    assert len(everything.ids) == 3 and everything.next_cursor is None
    first = await face.list_dead_letters(limit=2)
    rest = await face.list_dead_letters(limit=2, cursor=first.next_cursor)
    assert first.ids + rest.ids == everything.ids and rest.next_cursor is None
    [letter_id] = (await face.list_dead_letters(execution_id=runs[0])).ids
    letter = await face.get_dead_letter(letter_id)
    assert letter is not None
    assert (letter["executionId"], letter["nodeId"], letter["redrivenAt"]) == (
        runs[0],
        "call",
        None,
    )
    assert (await face.list_dead_letters(execution_id="not-a-uuid")).ids == []

    redriven = await face.redrive_dead_letter(letter_id)
    assert redriven["redrivenAt"] is not None and redriven["id"] == letter_id
    with pytest.raises(FaceError) as twice:
        await face.redrive_dead_letter(letter_id)
    assert twice.value.code == "conflict"
    assert letter_id not in (await face.list_dead_letters(execution_id=runs[0])).ids
    kept = await face.list_dead_letters(execution_id=runs[0], include_redriven=True)
    assert letter_id in kept.ids

    other = await face_of(server, name)
    assert (await other.list_dead_letters(include_redriven=True)).ids == []
    assert (await other.list_dead_letters(execution_id=runs[1])).ids == []
    for target in not_found_ids(other, everything.ids[1], new_id()):
        assert await other.get_dead_letter(target) is None
        with pytest.raises(FaceError) as caught:
            await other.redrive_dead_letter(target)
        assert caught.value.code == "not_found"


async def test_an_update_from_a_stale_version_is_a_conflict_that_changes_nothing(
    face: Face,
) -> None:
    wf = await face.create_workflow("w", chain(1), "first")
    mine = await face.update_workflow(wf["id"], definition=chain(2), expectedVersion=1)
    assert mine["version"] == 2
    renamed = await face.update_workflow(wf["id"], name="w2", expectedVersion=2)
    assert (renamed["name"], renamed["version"]) == ("w2", 2)
    # A second editor still holding version 1 is refused, whatever it changes.
    for stale in ({"definition": chain(3)}, {"name": "theirs"}, {"description": "x"}):
        with pytest.raises(FaceError) as caught:
            await face.update_workflow(wf["id"], expectedVersion=1, **stale)
        assert caught.value.code == "conflict"
        assert "version 2" in caught.value.message and "version 1" in caught.value.message
    assert await face.get_workflow(wf["id"]) == renamed
    # Left out, nothing is checked; a version from the future is stale too.
    assert (await face.update_workflow(wf["id"], description="d"))["description"] == "d"
    with pytest.raises(FaceError) as future:
        await face.update_workflow(wf["id"], name="n", expectedVersion=3)
    assert future.value.code == "conflict"
    with pytest.raises(FaceError) as bad:
        await face.update_workflow(wf["id"], name="n", expectedVersion=0)
    assert bad.value.code == "invalid_input"
    with pytest.raises(FaceError) as missing:
        await face.update_workflow(new_id(), name="n", expectedVersion=1)
    assert missing.value.code == "not_found"


async def test_both_faces_list_the_same_workers_to_every_owner(server: Server) -> None:
    mine, theirs = await server.owner(), await server.owner()
    async with worker(server.services) as running:
        # Listed once it has joined (its first write, just after it starts).
        await eventually(RestFace(mine.http).list_workers, what="the worker to be listed")
        lists = [
            await face(owner.http).list_workers()
            for face in (RestFace, GraphQLFace)
            for owner in (mine, theirs)
        ]
    assert all(found == lists[0] for found in lists)
    [only] = lists[0]
    assert (only["id"], only["alive"], only["concurrency"]) == (running.worker_id, True, 8)
    for name in FACES:
        assert await FACES[name](mine.http).list_workers() == []  # it left on stopping


async def test_the_metrics_series_is_the_same_through_both_faces(server: Server) -> None:
    owner = await server.owner()
    rest, graphql = RestFace(owner.http), GraphQLFace(owner.http)
    await failed_runs(server.services, owner.principal, 2)
    # Hour-long buckets: both reads fall in the same ones but at an hour's turn.
    via_rest = await rest.metrics_series(7200, 3600)
    via_graphql = await graphql.metrics_series(7200, 3600)
    for series in (via_rest, via_graphql):
        del series["generatedAt"]
        assert sum(b["executionsFailed"] for b in series["buckets"]) == 2
    if via_rest["buckets"][0]["start"] == via_graphql["buckets"][0]["start"]:
        assert via_rest == via_graphql
    assert set(via_rest) == set(via_graphql)
    assert set(via_rest["buckets"][0]) == set(via_graphql["buckets"][0])
    for face in (rest, graphql):
        with pytest.raises(FaceError) as caught:
            await face.metrics_series(86400, 60)
        assert caught.value.code == "invalid_input" and caught.value.paths == {"bucketSeconds"}
        assert "500" in caught.value.message
    other = await face_of(server, "rest")
    theirs = await other.metrics_series(7200, 3600)
    assert all(b["executionsStarted"] == 0 for b in theirs["buckets"])


async def test_the_metrics_snapshot_is_the_same_through_both_faces(server: Server) -> None:
    owner = await server.owner()
    rest, graphql = RestFace(owner.http), GraphQLFace(owner.http)
    await failed_runs(server.services, owner.principal, 2)
    wf = await rest.create_workflow("w", DELAYED)
    await rest.start_execution(wf["id"])
    via_rest = await rest.metrics_snapshot(600)
    via_graphql = await graphql.metrics_snapshot(600)
    assert via_rest.pop("generatedAt") and via_graphql.pop("generatedAt")
    # Steps may complete between the two reads: the counts of the last minute may differ.
    assert via_rest.pop("stepsCompletedLastMinute") >= 0
    assert via_graphql.pop("stepsCompletedLastMinute") >= 0
    assert via_rest == via_graphql
    assert via_rest["executionsByStatus"] == [
        {"status": s, "count": n}
        for s, n in (("PENDING", 0), ("RUNNING", 1), ("COMPLETED", 0), ("FAILED", 2),
                     ("CANCELLED", 0))
    ]  # fmt: skip
    assert via_rest["executionsTotal"] == 3 and via_rest["windowSeconds"] == 600
    assert {n["nodeType"] for n in via_rest["stepLatency"]} >= {"start"}
    for face in (rest, graphql):
        with pytest.raises(FaceError) as caught:
            await face.metrics_snapshot(59)
        assert caught.value.code == "invalid_input" and caught.value.paths == {"windowSeconds"}


async def test_the_scheduler_status_is_the_same_through_both_faces(server: Server) -> None:
    owner = await server.owner()
    rest, graphql = RestFace(owner.http), GraphQLFace(owner.http)
    wf = await rest.create_workflow("cron", DELAYED)
    made = await server.services.triggers.create(
        owner.principal, wf["id"], "CRON", {"expression": "* * * * * *"}
    )
    now = datetime.now(UTC)
    sched = Scheduler(
        server.services.url, server.services.executions, scheduler_id="faces",
        clock=lambda: now + timedelta(seconds=3),
    )  # fmt: skip
    conn = await sched.connect()
    try:
        fired = (await sched.tick(conn)).fired
        via_rest = await rest.scheduler_status()
        via_graphql = await graphql.scheduler_status()
    finally:
        await conn.close()
    assert via_rest.pop("checkedAt") and via_graphql.pop("checkedAt")
    assert via_rest == via_graphql
    assert [s["id"] for s in via_rest["schedulers"]] == ["faces"]
    assert len(via_rest["lastFirings"]) == fired >= 1  # one a second, up to now
    for firing in via_rest["lastFirings"]:
        assert (firing["triggerId"], firing["workflowId"]) == (str(made.trigger.id), wf["id"])
        assert firing["executionId"] is not None
    assert (via_rest["enabledTriggers"], via_rest["running"]) == (1, 1)


async def test_a_definition_is_validated_alike_through_both_faces(server: Server) -> None:
    owner = await server.owner()
    rest, graphql = RestFace(owner.http), GraphQLFace(owner.http)
    assert await rest.validate_workflow(chain(2)) == {"valid": True, "problems": []}
    via_rest = await rest.validate_workflow(BROKEN)
    assert via_rest == await graphql.validate_workflow(BROKEN)
    assert via_rest["valid"] is False
    assert {p["path"].split(".")[2].split("[")[0] for p in via_rest["problems"]} == {
        "nodes", "edges",
    }  # fmt: skip
    assert any(p["edge"] == 1 for p in via_rest["problems"])
    for nonsense in (5, "x", {"nodes": "no"}, []):
        assert await rest.validate_workflow(nonsense) == await graphql.validate_workflow(nonsense)
    assert (await owner.http.post("/api/workflows/validate", json={})).status_code == 400
    assert (await server.client().post("/api/workflows/validate", json={})).status_code == 401
    assert (await rest.list_workflows(10)).ids == []  # nothing stored
