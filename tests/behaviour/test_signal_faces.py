"""Signals through both faces (signalExecution, POST /api/executions/{id}/signals/{name}):
the same results and the same errors (unknown name, bad approval, too large, another
owner's run, a finished run), and waits and approvals that a real worker runs on."""

from __future__ import annotations

from collections.abc import AsyncIterator
from typing import Any

import pytest

from tests.behaviour.faces import FACES, Face, FaceError
from tests.rest.server import Server, eventually, new_id, serve, worker
from tests.support.graphs import approving, chain, waiting


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


async def finished(face: Face, run_id: str) -> dict[str, Any]:
    async def done() -> dict[str, Any] | None:
        found = await face.get_execution(run_id)
        return found if found and found["status"] not in ("PENDING", "RUNNING") else None

    found: dict[str, Any] = await eventually(done, what=f"run {run_id} to finish")
    return found


async def waiting_step(face: Face, run_id: str, node: str) -> None:
    async def waits() -> bool:
        found = await face.get_execution(run_id)
        assert found is not None
        return any(s["nodeId"] == node and s["status"] == "WAITING" for s in found["steps"])

    await eventually(waits, what=f"{node} to wait")


async def test_a_signal_completes_a_wait_and_one_sent_early_is_kept(
    server: Server, face: Face
) -> None:
    wf = await face.create_workflow("w", waiting("paid"))
    early, _ = await face.start_execution(wf["id"], {"n": 1})
    run, taken = await face.signal_execution(early["id"], "paid", {"amount": 5})
    assert taken is None and run["status"] == "RUNNING"  # kept: no worker ran it yet
    late, _ = await face.start_execution(wf["id"], {"n": 2})
    async with worker(server.services):
        assert (await finished(face, early["id"]))["output"] == {"amount": 5}
        await waiting_step(face, late["id"], "wait")
        run, taken = await face.signal_execution(late["id"], "paid")
        assert taken == "wait"
        done = await finished(face, late["id"])
    assert done["status"] == "COMPLETED" and done["output"] == {}
    steps = {s["nodeId"]: s for s in done["steps"]}
    assert steps["wait"]["output"] == {} and steps["got"]["status"] == "COMPLETED"


async def test_an_approval_takes_its_branch_and_the_audit_log_says_who(
    server: Server, face: Face
) -> None:
    wf = await face.create_workflow("w", approving())
    run, _ = await face.start_execution(wf["id"])
    async with worker(server.services):
        await waiting_step(face, run["id"], "review")
        decision = {"approved": False, "by": "ann@example.test", "comment": "too dear"}
        _, taken = await face.signal_execution(run["id"], "approval", decision)
        assert taken == "review"
        done = await finished(face, run["id"])
    assert done["output"]["way"] == "rejected"
    assert done["output"]["review"] == decision
    entries = [e for e in await face.audit_log() if e["action"] == "execution.rejected"]
    assert [(e["entityId"], e["data"]["by"], e["data"]["comment"]) for e in entries] == [
        (run["id"], "ann@example.test", "too dear")
    ]


async def test_bad_signals_get_the_same_errors_and_change_nothing(
    server: Server, face: Face
) -> None:
    wf = await face.create_workflow("w", approving())
    run, _ = await face.start_execution(wf["id"])
    cases: list[tuple[str, Any, str, set[str]]] = [
        ("paid", {}, "invalid_input", {"name"}),
        ("approval", {"approved": "yes"}, "invalid_input", {"$.payload.approved"}),
        ("approval", {"approved": True, "x": 1}, "invalid_input", {"$.payload.x"}),
        ("approval", {"approved": True, "comment": "x" * 1_500_000}, "payload_too_large",
         {"$.payload"}),
    ]  # fmt: skip
    for name, payload, code, paths in cases:
        with pytest.raises(FaceError) as caught:
            await face.signal_execution(run["id"], name, payload)
        assert (caught.value.code, caught.value.paths) == (code, paths), name
    assert "'paid'" in (await _message(face, run["id"], "paid"))
    other = await face_of(server, face.name)
    for target in (run["id"], new_id()):
        with pytest.raises(FaceError) as caught:
            await other.signal_execution(target, "approval", {"approved": True})
        assert caught.value.code == "not_found"
    await face.cancel_execution(run["id"])
    with pytest.raises(FaceError) as caught:
        await face.signal_execution(run["id"], "approval", {"approved": True})
    assert caught.value.code == "conflict" and "CANCELLED" in caught.value.message
    found = await face.get_execution(run["id"])
    assert found is not None and found["status"] == "CANCELLED"
    assert not [e for e in await face.audit_log() if e["action"].startswith("execution.appro")]


async def _message(face: Face, run_id: str, name: str) -> str:
    with pytest.raises(FaceError) as caught:
        await face.signal_execution(run_id, name, {})
    return caught.value.message


async def test_a_run_without_waits_refuses_every_signal(face: Face) -> None:
    wf = await face.create_workflow("w", chain(1, delay=60))
    run, _ = await face.start_execution(wf["id"], {"n": 1})
    with pytest.raises(FaceError) as caught:
        await face.signal_execution(run["id"], "go")
    assert caught.value.code == "invalid_input" and "no wait or approval" in caught.value.message
