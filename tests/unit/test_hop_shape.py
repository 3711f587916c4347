"""Which plans go through hand_on, the lean statement of a chain's hop: only a plain
hop written guarded; every other plan needs write_plan's generality."""

from __future__ import annotations

import asyncio
import dataclasses
import uuid
from datetime import UTC, datetime
from typing import Any

from flowsync.engine.graph import StepStatus
from flowsync.engine.orchestrator import _hop, _HopWrite, _HopWriter, _of_attempt
from flowsync.engine.transitions import NewJob, Plan, StepRow, plan_completion
from flowsync.engine.validation import CompiledWorkflow, validate_definition
from flowsync.worker.queue import ClaimedJob
from tests.support.graphs import chain, fan

S = StepStatus


def job_for(node_id: str, steps: dict[str, StepRow], **kw: object) -> ClaimedJob:
    fields = dict(
        job_id=7, lease_token=uuid.uuid4(), attempts=1, max_attempts=1,
        execution_id=uuid.uuid4(), step_id=steps[node_id].id, node_id=node_id,
        node_type="transform", step_input=None, owner_id=uuid.uuid4(),
        workflow_id=uuid.uuid4(), workflow_version_id=uuid.uuid4(), version=1,
        execution_input={}, trigger_type="MANUAL", trigger_data={},
        execution_started_at=datetime.now(UTC),
    )  # fmt: skip
    fields.update(kw)
    return ClaimedJob(**fields)


def chain_at(node_id: str) -> tuple[CompiledWorkflow, dict[str, StepRow]]:
    wf = validate_definition(chain(3))
    order = ["start", "t1", "t2", "t3", "end"]
    at = order.index(node_id)
    steps = {
        n: StepRow(uuid.uuid4(), S.COMPLETED if i < at else S.RUNNING if i == at else S.PENDING)
        for i, n in enumerate(order)
    }
    return wf, steps


def hop_of(
    wf: CompiledWorkflow, steps: dict[str, StepRow], job: ClaimedJob, *, take: bool = True
) -> Plan:
    plan = plan_completion(wf, steps, job.node_id, {"n": 1}, take_next=take)
    return _of_attempt(job, plan)


def held_of(job: ClaimedJob, plan: Plan) -> list[tuple[int, NewJob | None]]:
    return [(job.job_id, next((j for j in plan.jobs if j.take), None))]


def hop(run: uuid.UUID) -> _HopWrite:
    """A chain's hop t1 -> t2 in run `run`, as the hop writer gets it."""
    wf, steps = chain_at("t1")
    job = job_for("t1", steps)
    plan = hop_of(wf, steps, job)
    found = _hop(plan, held_of(job, plan), [job])
    assert found is not None
    _, done, started, new, attempt, at = found
    return _HopWrite(run, 4, job.owner_id, job.workflow_id, job, done, started, new, attempt, at)


def test_a_plain_hop_written_guarded_is_one() -> None:
    wf, steps = chain_at("t1")
    job = job_for("t1", steps, attempts=2)
    plan = hop_of(wf, steps, job)
    found = _hop(plan, held_of(job, plan), [job])
    assert found is not None
    _, done, started, new, attempt, at = found
    assert (done.node_id, started.node_id, new.node_id, attempt, at) == ("t1", "t2", "t2", 2, None)
    # A claimed step whose start was not written yet: written with it.
    claimed = datetime.now(UTC)
    pending = dataclasses.replace(job, start_pending=True, claimed_at=claimed)
    plan = hop_of(wf, steps, pending)
    found = _hop(plan, held_of(pending, plan), [pending])
    assert found is not None
    _, done, started, new, attempt, at = found
    assert (done.node_id, new.node_id, attempt, at) == ("t1", "t2", 2, claimed)
    assert (done.started_at, done.attempt) == (None, None)
    # Into the end node too: the run ends only when the end step completes.
    wf, steps = chain_at("t3")
    job = job_for("t3", steps)
    plan = hop_of(wf, steps, job)
    assert _hop(plan, held_of(job, plan), [job]) is not None


def test_anything_else_is_not() -> None:
    wf, steps = chain_at("t1")
    job = job_for("t1", steps)
    plan = hop_of(wf, steps, job)
    held = held_of(job, plan)
    # Not guarded (planned under locks).
    assert _hop(plan, held, None) is None
    # A start written with it that is not the completed step's own.
    pending = dataclasses.replace(job, start_pending=True, claimed_at=datetime.now(UTC))
    plan_p = hop_of(wf, steps, pending)
    other_start = dataclasses.replace(plan_p.events[0], step_id=uuid.uuid4())
    plan_p.events = [other_start, *plan_p.events[1:]]
    assert _hop(plan_p, held_of(pending, plan_p), [pending]) is None
    # The next step is queued for any worker, not taken.
    plan_q = hop_of(wf, steps, job, take=False)
    assert _hop(plan_q, held_of(job, plan_q), [job]) is None
    # The end completes: the run ends.
    wf_end, steps_end = chain_at("end")
    end = job_for("end", steps_end)
    plan_e = hop_of(wf_end, steps_end, end)
    assert _hop(plan_e, held_of(end, plan_e), [end]) is None
    # A fork: several steps become ready.
    wf_f = validate_definition(fan(3))
    steps_f = {n: StepRow(uuid.uuid4(), S.PENDING) for n in wf_f.nodes}
    steps_f["start"] = StepRow(steps_f["start"].id, S.COMPLETED)
    steps_f["split"] = StepRow(steps_f["split"].id, S.RUNNING)
    fork = job_for("split", steps_f)
    plan_f = hop_of(wf_f, steps_f, fork)
    assert _hop(plan_f, held_of(fork, plan_f), [fork]) is None
    # A job other than the one guarded.
    other = dataclasses.replace(job, job_id=8)
    assert _hop(plan, held_of(other, plan), [job]) is None


async def test_hops_that_wait_are_written_together_but_never_two_of_one_run() -> None:
    """The hop writer writes a hop at once when none is being written; the hops that
    arrive meanwhile wait, and the first of them writes them all (each writer writes
    once and hands the turn on, so none stalls writing for the others). A second hop
    of a run already in a write waits for the next one (both would pass the guard on
    the same sequence)."""
    runs = [uuid.uuid4() for _ in range(3)]

    batches: list[list[uuid.UUID]] = []

    class Recording(_HopWriter):
        async def _write(self, hops: list[_HopWrite]) -> set[uuid.UUID]:
            batches.append([h.execution_id for h in hops])
            await asyncio.sleep(0.01)
            return {h.execution_id for h in hops if h.execution_id != runs[2]}

    writer = Recording(None)  # type: ignore[arg-type]
    a, b, c = runs
    returned_after: list[int] = []

    async def write(run: uuid.UUID) -> bool:
        result = await writer.write(hop(run))
        returned_after.append(len(batches))
        return result

    results = await asyncio.gather(*(write(r) for r in [a, b, a, c, b]))
    assert batches == [[a], [b, a, c], [b]]
    assert results == [True, True, True, False, True]
    # The first writer was back after its own write, not after the others'.
    assert returned_after[0] == 1

    # A hop cancelled while it waits is passed over; one cancelled as its turn came
    # hands the turn on: either way, the hops after it are written.
    for when in ("waiting", "turn"):
        batches.clear()
        first = asyncio.ensure_future(writer.write(hop(a)))
        await asyncio.sleep(0)
        second = asyncio.ensure_future(writer.write(hop(b)))
        third = asyncio.ensure_future(writer.write(hop(c)))
        await asyncio.sleep(0)
        if when == "waiting":
            second.cancel()
        else:

            def hand_on_then_cancel(
                hand_on: Any = writer._hand_on, second: asyncio.Future[bool] = second
            ) -> None:
                hand_on()  # the turn goes to the second hop...
                second.cancel()  # ...which is cancelled before it could take it

            writer._hand_on = hand_on_then_cancel  # type: ignore[method-assign]
        assert await first is True
        writer.__dict__.pop("_hand_on", None)
        assert await asyncio.wait_for(third, 1) is False  # written, its guard refused it
        assert second.cancelled()
        assert batches == [[a], [c]]


async def test_a_hop_that_cannot_be_written_fails_alone() -> None:
    """When a write of several hops fails (one hop's output could not be encoded, say),
    each is written alone: only the faulty one fails."""
    first, bad, good = (uuid.uuid4() for _ in range(3))
    batches: list[list[uuid.UUID]] = []

    class Failing(_HopWriter):
        async def _write(self, hops: list[_HopWrite]) -> set[uuid.UUID]:
            batches.append([h.execution_id for h in hops])
            await asyncio.sleep(0.01)
            if any(h.execution_id == bad for h in hops):
                raise TypeError("Type is not JSON serializable")
            return {h.execution_id for h in hops}

    writer = Failing(None)  # type: ignore[arg-type]

    results = await asyncio.gather(
        *(writer.write(hop(r)) for r in (first, bad, good)), return_exceptions=True
    )
    assert results[0] is True and results[2] is True
    assert isinstance(results[1], TypeError)
    assert batches == [[first], [bad, good], [bad], [good]]
