"""Retrying a run is safe to repeat (found by QA): `POST /api/executions/{id}/retry`
takes an `Idempotency-Key` as a start does, a run is retried once, and a run that was
retried is not redriven from the dead-letter queue (its retry runs it again already)."""

from __future__ import annotations

import asyncio

from tests.rest.server import Owner, Server
from tests.rest.test_routes import error_of
from tests.support.dead_letters import failed_runs


async def test_a_repeated_retry_with_its_key_answers_the_first_retry(
    server: Server, me: Owner
) -> None:
    [failed] = await failed_runs(server.services, me.principal, 1)
    url = f"/api/executions/{failed}/retry"
    first = await me.http.post(url, headers={"Idempotency-Key": "retry-1"})
    assert first.status_code == 201, first.text
    assert first.json()["retriedFromId"] == str(failed)
    again = await me.http.post(url, headers={"Idempotency-Key": "retry-1"})
    assert again.status_code == 200, again.text
    assert again.headers["Idempotent-Replayed"] == "true"
    assert again.json()["id"] == first.json()["id"]
    assert again.headers["Location"] == f"/api/executions/{first.json()['id']}"
    runs = (await me.http.get("/api/executions")).json()["items"]
    assert len(runs) == 2  # the failed run and one retry


async def test_a_run_is_retried_once_and_not_redriven_after(server: Server, me: Owner) -> None:
    [failed] = await failed_runs(server.services, me.principal, 1)
    url = f"/api/executions/{failed}/retry"
    # Two at once (a client's request and its retry after a timeout): one run.
    replies = await asyncio.gather(me.http.post(url), me.http.post(url))
    assert sorted(r.status_code for r in replies) == [201, 409]
    [made] = [r.json() for r in replies if r.status_code == 201]
    [refused] = [error_of(r) for r in replies if r.status_code == 409]
    assert refused["code"] == "conflict" and made["id"] in refused["message"]

    [letter] = (await me.http.get("/api/dead-letters")).json()["items"]
    redrive = await me.http.post(f"/api/dead-letters/{letter['id']}/redrive")
    assert redrive.status_code == 409, redrive.text
    assert "retried already" in error_of(redrive)["message"]
    kept = (await me.http.get(f"/api/dead-letters/{letter['id']}")).json()
    assert kept["redrivenAt"] is None
    run = (await me.http.get(f"/api/executions/{failed}")).json()
    assert run["status"] == "FAILED"


async def test_a_retry_key_of_another_execution_is_a_conflict(server: Server, me: Owner) -> None:
    first, second = await failed_runs(server.services, me.principal, 2)
    made = await me.http.post(f"/api/executions/{first}/retry", headers={"Idempotency-Key": "k"})
    assert made.status_code == 201
    other = await me.http.post(f"/api/executions/{second}/retry", headers={"Idempotency-Key": "k"})
    assert other.status_code == 409, other.text
    assert "idempotency key" in error_of(other)["message"]
    long = await me.http.post(
        f"/api/executions/{second}/retry", headers={"Idempotency-Key": "x" * 256}
    )
    assert long.status_code == 400
    assert [d["path"] for d in error_of(long)["details"]] == ["headers.idempotency-key"]
