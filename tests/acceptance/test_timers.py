"""Durable timers with real worker processes: a delay or a retry's backoff runs when it
falls due, not at the worker's next poll.

Every worker here polls every 5 s, so only the wake-up mechanism can make a timer fire
promptly: the bounds (well under a second) are far from the poll, and wide enough for a
busy machine. Lateness is measured from the due time to the claim of the job that runs
it (the `step.started` of the attempt that follows, at the claim's time)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import Callable, Iterator
from datetime import UTC, datetime, timedelta
from typing import Any

import pytest

from flowsync.engine.orchestrator import Orchestrator, WorkflowCache
from flowsync.services.container import Services
from flowsync.services.principal import Principal
from flowsync.worker.queue import ClaimedJob, Queue
from tests.support.processes import Process
from tests.support.target import Target, action, running_target
from tests.support.workers import finished, wait_until

pytestmark = pytest.mark.slow

POLL = {"poll_seconds": 5}
# A timer is late by its worker's wake-up, the claim and a busy machine's scheduling;
# a worker that waited for its poll would be seconds late.
BOUND = 0.35

DELAY = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "wait", "type": "delay", "data": {"seconds": 0.3}},
        {"id": "end", "type": "end"},
    ],
    "edges": [{"source": "start", "target": "wait"}, {"source": "wait", "target": "end"}],
}


@pytest.fixture
def target() -> Iterator[Target]:
    with running_target() as served:
        yield served


async def listening(services: Services, worker: Process, count: int = 1) -> None:
    """Until `count` workers listen for jobs (the last step of their start); a worker that
    does not get there shows its output."""

    async def check() -> bool:
        assert worker.proc.poll() is None, f"the worker exited:\n{worker.output()[-3000:]}"
        n = await services.pool.fetchval(
            "SELECT count(*) FROM pg_stat_activity "
            "WHERE application_name = 'flowsync-worker-listener' AND datname = current_database()"
        )
        return bool(n >= count)

    try:
        await wait_until(check, 30, "the worker to listen")
    except AssertionError as exc:
        raise AssertionError(f"{exc}\n{worker.output()[-3000:]}") from exc
    await asyncio.sleep(0.5)  # its first claim, and the poll it then sleeps for


async def lateness(services: Services, eid: uuid.UUID, node: str, due: datetime) -> float:
    """Seconds from `due` to the claim of the step's last attempt."""
    at = await services.pool.fetchval(
        "SELECT max(at) FROM execution_events "
        "WHERE execution_id = $1 AND node_id = $2 AND kind = 'step.started'",
        eid,
        node,
    )
    assert at is not None
    return float((at - due).total_seconds())


async def test_a_delay_fires_at_its_due_time_not_at_the_next_poll(
    services: Services, me: Principal, workers: Callable[..., Process]
) -> None:
    worker = workers(**POLL)
    await listening(services, worker)
    wf = await services.workflows.create(me, "delay", None, DELAY)
    late: list[float] = []
    for _ in range(4):
        eid = (await services.executions.start(me, wf.id, {})).execution.id
        execution = await finished(services, me, eid, 10)
        assert execution.status == "COMPLETED", worker.output()
        steps = {s.node_id: s for s in (await services.executions.steps(me, [eid]))[eid]}
        due = datetime.fromisoformat(steps["wait"].input["until"])
        late.append(await lateness(services, eid, "wait", due))
    assert all(-0.01 <= x < BOUND for x in late), (late, worker.output())


async def claim_delays(services: Services, me: Principal, count: int) -> list[ClaimedJob]:
    """Start `count` runs of DELAY while no worker runs, and claim their delay steps'
    jobs in this process, as another worker would."""
    wf = await services.workflows.create(me, "delay", None, DELAY)
    for _ in range(count):
        await services.executions.start(me, wf.id, {})
    jobs = await Queue(services.pool, "test-process", 60).claim(count)
    assert len(jobs) == count
    return jobs


async def set_timers(services: Services, jobs: list[ClaimedJob], first: float) -> list[datetime]:
    """Park each job as its delay step would, due `first` s from now and 0.2 s apart;
    the due times."""
    orchestrator = Orchestrator(
        services.pool, WorkflowCache(services.pool), worker_id="test-process", lease_seconds=60
    )
    due = []
    for i, job in enumerate(jobs):
        until = datetime.now(UTC) + timedelta(seconds=first + 0.2 * i)
        await orchestrator.wait(job, until, {"until": until.isoformat()})
        due.append(until)
    return due


async def test_a_timer_set_by_another_process_wakes_an_idle_worker(
    services: Services, me: Principal, workers: Callable[..., Process]
) -> None:
    jobs = await claim_delays(services, me, 3)
    worker = workers(**POLL)  # idle: every job is leased to this process
    await listening(services, worker)
    due = await set_timers(services, jobs, 0.5)
    for job, at in zip(jobs, due, strict=True):
        execution = await finished(services, me, job.execution_id, 10)
        assert execution.status == "COMPLETED", worker.output()
        late = await lateness(services, job.execution_id, "wait", at)
        assert -0.01 <= late < BOUND, (late, worker.output())


async def test_a_worker_that_starts_reads_the_timers_set_before_it(
    services: Services, me: Principal, workers: Callable[..., Process]
) -> None:
    jobs = await claim_delays(services, me, 3)
    due = await set_timers(services, jobs, 10)
    # Its poll is longer than the test: only reading the timers when it starts (and
    # sleeping until the first is due) makes it run them on time.
    worker = workers(poll_seconds=60)
    await listening(services, worker)
    assert datetime.now(UTC) < due[0] - timedelta(seconds=1), "the worker took 9 s to start"
    for job, at in zip(jobs, due, strict=True):
        execution = await finished(services, me, job.execution_id, 20)
        assert execution.status == "COMPLETED", worker.output()
        late = await lateness(services, job.execution_id, "wait", at)
        assert -0.01 <= late < BOUND, (late, worker.output())


async def test_a_retry_runs_at_the_end_of_its_backoff_not_at_the_next_poll(
    services: Services, me: Principal, workers: Callable[..., Process], target: Target
) -> None:
    worker = workers(**POLL, allow_networks="127.0.0.1/32")
    await listening(services, worker)
    retry = {"maxAttempts": 2, "initialIntervalSeconds": 0.4, "maxIntervalSeconds": 1}
    late: list[float] = []
    for i in range(3):
        definition = action(f"{target.url}/flaky/k{i}?fail=1", retry=retry)
        wf = await services.workflows.create(me, f"retry-{i}", None, definition)
        eid = (await services.executions.start(me, wf.id, {})).execution.id
        execution = await finished(services, me, eid, 10)
        assert execution.status == "COMPLETED", worker.output()
        events = await services.executions.events(me, eid)
        [retrying] = [e for e in events if e.kind == "step.retrying"]
        data: Any = retrying.data
        due = datetime.fromisoformat(data["nextAttemptAt"])
        late.append(await lateness(services, eid, "call", due))
    assert len(target.requests_to("/flaky/k0")) == 2
    assert all(-0.01 <= x < BOUND for x in late), (late, worker.output())


async def test_the_next_due_time_counts_a_timer_that_fell_due_after_the_last_claim(
    services: Services, me: Principal
) -> None:
    # A worker reads the next due time after a claim that left slots free. A timer that
    # fell due between that claim and this read must make it claim again at once; read
    # as "none waiting" it slept until its poll (seen once in CI: a timer 20 s late).
    jobs = await claim_delays(services, me, 2)
    queue = Queue(services.pool, "reader", 60)
    await set_timers(services, jobs[:1], -0.5)  # due already, and nobody claimed it
    await set_timers(services, jobs[1:], 30)
    seconds = await queue.next_due()
    assert seconds is not None and seconds <= 0, seconds
