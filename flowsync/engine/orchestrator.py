"""The orchestrator applies the pure transition rules inside one transaction each: the
step's result, the job's completion, the next jobs and the events with their sequence
numbers are committed together or not at all."""

from __future__ import annotations

import asyncio
import contextlib
import dataclasses
import functools
import logging
import uuid
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable, Mapping, Sequence
from datetime import UTC, datetime, timedelta
from typing import Any, Generic, Literal, Protocol, TypeVar

import asyncpg

from flowsync import metrics, tracing
from flowsync.engine.fairness import KeyFailed, evaluate_key
from flowsync.engine.graph import WAITS, ExecutionStatus, StepStatus, WaitOutcome
from flowsync.engine.transitions import (
    Event,
    NewJob,
    Plan,
    StepChange,
    StepRow,
    apply_plan,
    combine,
    plan_cancel,
    plan_child_wait,
    plan_completion,
    plan_failure,
    plan_queued,
    plan_rerun,
    plan_resume,
    plan_retry,
    plan_signal_wait,
    plan_signalled,
    plan_start,
    plan_wait,
    runs_alone,
    still_waiting_on,
    with_start,
)
from flowsync.engine.validation import CompiledWorkflow, validate_definition
from flowsync.errors import Conflict, LeaseLost, NotFound
from flowsync.ids import uuid7s
from flowsync.worker.queue import (
    CANCEL_CHANNEL,
    QUERIES,
    ClaimedJob,
    Connection,
    json_texts,
    steps_from_arrays,
)

log = logging.getLogger("flowsync.engine")

# A `workflow` step waiting for its child run is woken by the child's end (write_plan's
# parent_wake); it also looks again this often, should a child end some other way.
CHILD_RECHECK = timedelta(hours=1)

# How a child run ended, for its parent's step: completed with an output, failed with
# an error, or None (still running; the step waits).
ChildOutcome = tuple[Literal["completed"], Any] | tuple[Literal["failed"], dict[str, Any]] | None
T = TypeVar("T")

# Deadlocks are possible only between a claim and a cancel or failure of the same run;
# Postgres aborts one side, which simply tries again.
_RETRYABLE = (asyncpg.exceptions.DeadlockDetectedError, asyncpg.exceptions.SerializationError)


async def retrying(fn: Callable[[], Awaitable[T]], attempts: int = 5) -> T:
    """Run the transaction `fn` again when Postgres aborted it as a deadlock's victim
    (or a serialization failure); the other side has gone ahead meanwhile."""
    for attempt in range(attempts):
        try:
            return await fn()
        except _RETRYABLE:
            if attempt == attempts - 1:
                raise
            await asyncio.sleep(0.01 * (attempt + 1))
    raise AssertionError("unreachable")


class WorkflowCache:
    """Compiled workflow versions by id. Versions are immutable, so entries never go
    stale; the cache is bounded so that memory stays flat.

    A version not cached is read through the caller's connection when it holds one:
    asking the pool for a second connection while holding one waits, for good, once
    every connection is held by such a caller (a burst of starts of a new version)."""

    def __init__(self, pool: asyncpg.Pool, size: int = 512):
        self._pool = pool
        self._size = size
        self._items: OrderedDict[uuid.UUID, CompiledWorkflow] = OrderedDict()
        # Versions being read through the pool, by id: a worker whose slots all start
        # steps of a new version at once reads and compiles it once, not once per slot.
        self._loading: dict[uuid.UUID, asyncio.Future[CompiledWorkflow]] = {}

    def put(self, version_id: uuid.UUID, workflow: CompiledWorkflow) -> None:
        self._items[version_id] = workflow
        self._items.move_to_end(version_id)
        while len(self._items) > self._size:
            self._items.popitem(last=False)

    async def get(self, version_id: uuid.UUID, conn: Connection | None = None) -> CompiledWorkflow:
        """The compiled workflow of a stored version, read (when not cached) through
        `conn`: the connection the caller holds, if any; None only for a caller that
        holds none (a worker running a step), which then borrows one for the read."""
        found = self._items.get(version_id)
        if found is not None:
            self._items.move_to_end(version_id)
            return found
        if conn is not None:
            # Never waits for a read through the pool (see above): reads its own.
            return await self._load(version_id, conn)
        while (loading := self._loading.get(version_id)) is not None:
            try:
                return await asyncio.shield(loading)
            except _LoadAbandoned:
                continue  # its reader was cancelled: read it here
        future = asyncio.get_running_loop().create_future()
        self._loading[version_id] = future
        try:
            compiled = await self._load(version_id, self._pool)
        except BaseException as exc:
            future.set_exception(exc if isinstance(exc, Exception) else _LoadAbandoned())
            future.exception()  # retrieved: no waiter is not an error
            raise
        finally:
            del self._loading[version_id]
        future.set_result(compiled)
        return compiled

    async def _load(
        self, version_id: uuid.UUID, source: asyncpg.Pool | Connection
    ) -> CompiledWorkflow:
        definition = await source.fetchval(QUERIES["workflow_definition"], version_id)
        if definition is None:
            raise NotFound(f"No workflow version {version_id}.")
        # Stored: see validate_definition's docstring.
        compiled = validate_definition(definition, budget=False, stored=True)
        self.put(version_id, compiled)
        return compiled


class _LoadAbandoned(Exception):
    """The task reading a workflow version for others was cancelled."""


def _rows(records: list[asyncpg.Record]) -> dict[str, StepRow]:
    out: dict[str, StepRow] = {}
    for r in records:
        branch = r["branch"]
        out[r["node_id"]] = StepRow(
            r["id"], StepStatus(r["status"]), branch if isinstance(branch, bool | str) else None
        )
    return out


_ENDED = (ExecutionStatus.COMPLETED, ExecutionStatus.FAILED, ExecutionStatus.CANCELLED)


def _count_finished(workflow_id: uuid.UUID, status: ExecutionStatus | None) -> None:
    # Counted when the transaction is written; a rollback after this (rare) overcounts.
    if status is not None:
        metrics.EXECUTIONS_FINISHED.labels(status.value).inc()


# Stands for a run's input in the one plan of a batch's new runs (see start_many).
_INPUT: Any = object()


def _templated(plan: Plan) -> bool:
    """Whether start_executions' templates can write `plan` (a new run's first
    transition): the run goes on, no step fails, and only outputs take the input."""
    return (
        plan.execution_status not in _ENDED
        and not plan.drop_jobs
        and all(c.error is None and c.input is not _INPUT for c in plan.steps)
        and all(e.data is None for e in plan.events)
        and all(not j.take for j in plan.jobs)
    )


def _numbered(events: list[tuple[bool, Event]]) -> list[tuple[int, Event]]:
    """Sequence numbers of a running run's events and, apart, of a PENDING run's."""
    counts = {True: 0, False: 0}
    out = []
    for running, event in events:
        counts[running] += 1
        out.append((counts[running], event))
    return out


class _Stale(Exception):
    """A guarded write found the run changed since what its plan was made from."""


def _carried(
    steps: Mapping[str, StepRow], node_id: str, output: Any, known: Mapping[str, Any] | None
) -> dict[str, Any] | None:
    """The outputs the next step may take over: exact only if the steps completed before
    are the ones the finishing step knew."""
    before = {n for n, r in steps.items() if r.status is StepStatus.COMPLETED and n != node_id}
    if before and (known is None or set(known) != before):
        return None
    return {**(known or {}), node_id: output}


@dataclasses.dataclass(slots=True)
class _Completion:
    """A completed step waiting to be written."""

    job: ClaimedJob
    output: Any
    take_next: bool
    known_outputs: Mapping[str, Any] | None
    # Set while it waits for another completion's writer to write it too.
    result: asyncio.Future[ClaimedJob | None] | None = None


@dataclasses.dataclass(frozen=True, slots=True)
class _Planned:
    """A completion with its plan, the step it hands back to its worker (if any) and
    the outputs that step may take over."""

    item: _Completion
    plan: Plan
    take: NewJob | None
    carried: dict[str, Any] | None


def _plan_completions(
    wf: CompiledWorkflow, steps: Mapping[str, StepRow], items: list[_Completion]
) -> tuple[list[_Planned], dict[str, StepRow]]:
    """Plan completions of one run one after another, each from the steps as the ones
    before it left them; also the steps once all are written."""
    parts: list[_Planned] = []
    for item in items:
        job = item.job
        # A worker completes a wait or approval step only when its timeout fell due: a
        # signal completes it without one (see signal).
        timed_out: WaitOutcome | None = None
        if wf.nodes[job.node_id].type in WAITS:
            timed_out = "timeout"
        plan = _of_attempt(job, plan_completion(wf, steps, job.node_id, item.output,
                                                take_next=item.take_next,
                                                wait_outcome=timed_out))  # fmt: skip
        take = next((j for j in plan.jobs if j.take), None)
        carried = _carried(steps, job.node_id, item.output, item.known_outputs)
        parts.append(_Planned(item, plan, take, carried))
        steps = apply_plan(steps, plan)
    return parts, dict(steps)


def _started_in(
    known: tuple[int, Mapping[str, StepRow]] | None, node_id: str, sequence: int
) -> tuple[int, dict[str, StepRow]] | None:
    """What was known of a run (its sequence and steps) once the write numbered
    `sequence` started step `node_id`; None unless that write came right after it."""
    if known is None or known[0] + 1 != sequence or node_id not in known[1]:
        return None
    after = dict(known[1])
    after[node_id] = dataclasses.replace(after[node_id], status=StepStatus.RUNNING)
    return sequence, after


def _of_attempt(job: ClaimedJob, plan: Plan) -> Plan:
    """`plan`, the outcome of `job`'s attempt: its step's events carry the attempt, and
    the attempt's start comes first if it was not written yet."""
    if job.start_pending:
        at = job.claimed_at or datetime.now(UTC)
        plan = with_start(plan, job.step_id, job.node_id, job.attempts, at)
    plan.events = [
        dataclasses.replace(e, attempt=job.attempts)
        if e.attempt is None and e.step_id == job.step_id
        else e
        for e in plan.events
    ]
    return plan


def _hop(
    plan: Plan, held: list[tuple[int, NewJob | None]], guard: list[ClaimedJob] | None
) -> tuple[ClaimedJob, StepChange, StepChange, NewJob, int | None, datetime | None] | None:
    """The parts of a plan that is a chain's hop written guarded (see hand_on): one
    step completed with no error, its job handed on to the one step that became ready,
    which its worker runs at once, and nothing else; but for the completed step's start
    (time and attempt, a step.started event first) when its claim did not write it.
    None for any other plan."""
    if guard is None or len(guard) != 1 or len(held) != 1 or plan.drop_jobs:
        return None
    if plan.execution_status is not None or len(plan.jobs) != 1:
        return None
    if len(plan.steps) != 2 or len(plan.events) not in (2, 3):
        return None
    (job,), ((job_id, take),), (new,) = guard, held, plan.jobs
    done, started = plan.steps
    *late, completed, began = plan.events
    at = None
    if late:
        (start,) = late
        at = start.at
        if (
            at is None
            or (start.kind, start.step_id, start.attempt) != ("step.started", done.step_id,
                                                              completed.attempt)
            or (done.started_at, done.attempt) != (at, completed.attempt)
            or start.data is not None
        ):  # fmt: skip
            return None
        done = dataclasses.replace(done, started_at=None, attempt=None)
    plain = all(
        c.error is None and c.input is None and c.started_at is None and c.attempt is None
        for c in (done, started)
    ) and all(e.data is None and e.at is None for e in (completed, began))
    if (
        not plain
        or take is not new
        or new.run_at is not None
        or job_id != job.job_id
        or done.status is not StepStatus.COMPLETED
        or done.step_id != job.step_id
        or started.status is not StepStatus.RUNNING
        or started.step_id != new.step_id
        or started.output is not None
        or (completed.kind, completed.step_id) != ("step.completed", done.step_id)
        or (began.kind, began.step_id, began.attempt) != ("step.started", new.step_id, 1)
    ):
        return None
    return job, done, started, new, completed.attempt, at


# The sequence remembered of a run after a write guarded by still_waiting_on when the run
# had been written by others since what the worker knew: what it knows of the steps is
# its own writes over an older read, enough to plan more such writes (each checked as
# that one was), not to plan anything else.
_APPROXIMATE = -1

# What a waiting hop is told when the hops waiting are now its to write.
_YOUR_TURN = object()


@dataclasses.dataclass(frozen=True, slots=True)
class _HopWrite:
    """One hop to write with hand_on: its run as the plan knew it, and the plan's parts."""

    execution_id: uuid.UUID
    sequence: int
    owner_id: uuid.UUID
    workflow_id: uuid.UUID
    job: ClaimedJob
    done: StepChange
    started: StepChange
    new: NewJob
    attempt: int | None
    # The completed step's start, written with it (its claim wrote only its job).
    started_at: datetime | None = None


@dataclasses.dataclass(slots=True)
class _BranchWrite:
    """Completions of one run to write with finish_branches (see still_waiting_on): the
    steps completed (their changes, from the plan), the jobs held, as leased, the join's
    sources that were open when planned, and the run's sequence as the worker knew it
    (maybe _APPROXIMATE). `known`, once written: the run's newest sequence if nothing but
    this write was written since `sequence` (what the worker knows is then exact), else
    _APPROXIMATE."""

    execution_id: uuid.UUID
    owner_id: uuid.UUID
    workflow_id: uuid.UUID
    jobs: list[ClaimedJob]
    steps: list[StepChange]
    waiting_on: list[uuid.UUID]
    sequence: int
    known: int = _APPROXIMATE


_W = TypeVar("_W", _HopWrite, _BranchWrite)


class _BatchWriter(Generic[_W]):
    """Writes one kind of write for several runs in one statement (_write). A write is
    written at once when no other is being written; the writes that arrive meanwhile (a
    worker's other runs) wait, and the first of them then writes them all, in one
    statement and one commit: an idle worker's write waits for nothing, and a busy
    worker's writes share their round trip, their executor start-up and their commit.
    Each writer writes one write and hands the turn on, so that no run stalls writing for
    the others. Two writes of one run never go in one statement (two hops would pass the
    guard on the same sequence): the later waits for the next."""

    def __init__(self, pool: asyncpg.Pool, runner: tuple[str | None, str | None] = (None, None)):
        self._pool = pool
        self._runner = runner  # the worker's id and host, recorded on the steps
        self._busy = False
        self._waiting: list[tuple[_W, asyncio.Future[object]]] = []

    async def write(self, hop: _W) -> bool:
        """Whether the hop was written (False: its guard refused it)."""
        if self._busy:
            waiter: asyncio.Future[object] = asyncio.get_running_loop().create_future()
            self._waiting.append((hop, waiter))
            try:
                outcome = await waiter
            except asyncio.CancelledError:
                # Cancelled as its turn came: the turn goes on, or every hop after
                # would wait for a writer that never writes.
                turn = waiter.done() and not waiter.cancelled() and waiter.exception() is None
                if turn and waiter.result() is _YOUR_TURN:
                    self._hand_on()
                raise
            if outcome is not _YOUR_TURN:
                return bool(outcome)
        self._busy = True
        batch: list[tuple[_W, asyncio.Future[object] | None]] = [(hop, None)]
        runs, later = {hop.execution_id}, []
        for item in self._waiting:
            if item[0].execution_id in runs:
                later.append(item)
            else:
                runs.add(item[0].execution_id)
                batch.append(item)
        self._waiting = later
        outcomes: list[bool | BaseException] = [_WriterGone()] * len(batch)
        try:
            outcomes = await self._write_each([h for h, _ in batch])
        finally:
            # Cancelled half-way (only a worker's last resort), the others learn that
            # their hops may not have been written.
            for (_, pending), outcome in zip(batch, outcomes, strict=True):
                if pending is not None and not pending.done():
                    if isinstance(outcome, BaseException):
                        pending.set_exception(outcome)
                    else:
                        pending.set_result(outcome)
            self._hand_on()
        own = outcomes[0]
        if isinstance(own, BaseException):
            raise own
        return own

    async def _write_each(self, hops: list[_W]) -> list[bool | BaseException]:
        """Each hop's outcome: written together; when that fails (a value one hop could
        not encode, a lost connection), each alone, so that one hop's fault is only its
        own."""
        try:
            written = await self._write(hops)
            return [h.execution_id in written for h in hops]
        except Exception as exc:
            if len(hops) == 1:
                return [exc]
        outcomes: list[bool | BaseException] = []
        for hop in hops:
            try:
                outcomes.append(hop.execution_id in await self._write([hop]))
            except Exception as exc:
                outcomes.append(exc)
        return outcomes

    def _hand_on(self) -> None:
        """The turn to write goes to the first hop still waiting, if any."""
        while self._waiting:
            _, waiter = self._waiting.pop(0)
            if not waiter.done():  # a waiter cancelled meanwhile is passed over
                waiter.set_result(_YOUR_TURN)
                return
        self._busy = False

    async def _write(self, hops: list[_W]) -> set[uuid.UUID]:
        """The runs written (the others' guards refused them)."""
        raise NotImplementedError


class _HopWriter(_BatchWriter[_HopWrite]):
    """Writes chains' hops (hand_on; hand_on_one for one)."""

    async def _write(self, hops: list[_HopWrite]) -> set[uuid.UUID]:
        if len(hops) == 1:
            (h,) = hops
            row = await self._pool.fetchrow(
                QUERIES["hand_on_one"], h.execution_id, h.sequence, h.owner_id,
                h.workflow_id, h.job.job_id, h.job.lease_token, h.done.step_id, h.done.output,
                h.attempt, h.new.step_id, h.new.max_attempts, h.done.node_id,
                h.started.node_id, h.started_at, *self._runner,
            )  # fmt: skip
            assert row is not None
            return set() if row["last_sequence"] is None else {h.execution_id}
        row = await self._pool.fetchrow(
            QUERIES["hand_on"],
            [h.execution_id for h in hops],
            [h.sequence for h in hops],
            [h.owner_id for h in hops],
            [h.workflow_id for h in hops],
            [h.job.job_id for h in hops],
            [h.job.lease_token for h in hops],
            [h.done.step_id for h in hops],
            json_texts(h.done.output for h in hops),
            [h.attempt for h in hops],
            [h.new.step_id for h in hops],
            [h.new.max_attempts for h in hops],
            [h.done.node_id for h in hops],
            [h.started.node_id for h in hops],
            [h.started_at for h in hops],
            *self._runner,
        )
        assert row is not None
        return set(row["written"] or ())


class _BranchWriter(_BatchWriter[_BranchWrite]):
    """Writes branches' completions that leave their joins waiting (finish_branches)."""

    # The join's open sources checked per run, latest first (the later branches are
    # queued, and mostly finish, later): a run whose checked ones are all done by now is
    # read and planned again, even if others are still open.
    CHECKED = 2

    async def _write(self, writes: list[_BranchWrite]) -> set[uuid.UUID]:
        items = [
            (w, job, change) for w in writes for job, change in zip(w.jobs, w.steps, strict=True)
        ]
        checked = [(w.execution_id, step) for w in writes for step in w.waiting_on[: self.CHECKED]]
        row = await self._pool.fetchrow(
            QUERIES["finish_branches"],
            [w.execution_id for w, _, _ in items],
            [w.owner_id for w, _, _ in items],
            [w.workflow_id for w, _, _ in items],
            [job.job_id for _, job, _ in items],
            [job.lease_token for _, job, _ in items],
            [job.step_id for _, job, _ in items],
            json_texts(change.output for _, _, change in items),
            [job.attempts for _, job, _ in items],
            [job.node_id for _, job, _ in items],
            [change.started_at for _, _, change in items],
            [eid for eid, _ in checked],
            [step for _, step in checked],
            *self._runner,
            [w.sequence for w, _, _ in items],
        )
        assert row is not None
        known = dict(zip(row["written"] or (), row["known"] or (), strict=True))
        for w in writes:
            w.known = known.get(w.execution_id, _APPROXIMATE)
        return set(known)


def _handed(
    job: ClaimedJob,
    job_id: int,
    new: NewJob,
    wf: CompiledWorkflow,
    carried: dict[str, Any] | None,
    **changes: Any,
) -> ClaimedJob:
    """The job a write hands to the worker of `job` (same run): `new`, written as job
    `job_id`, its first attempt, with the outputs it may take over (`carried`)."""
    return dataclasses.replace(
        job, job_id=job_id, attempts=1, max_attempts=new.max_attempts, step_id=new.step_id,
        node_id=new.node_id, node_type=wf.nodes[new.node_id].type, step_input=None,
        known_outputs=carried, claimed_at=None, **changes,
    )  # fmt: skip


def _lease(job: ClaimedJob) -> tuple[int, uuid.UUID, uuid.UUID]:
    return job.job_id, job.lease_token, job.step_id


class Backlog(Protocol):
    """A worker's steps leased to it and not started yet (see Orchestrator.backlog)."""

    def room(self, nodes: Iterable[tuple[uuid.UUID, str, str]]) -> int:
        """How many more steps of these nodes (workflow version, node id, node type) it
        takes now."""
        ...

    def add(self, jobs: list[ClaimedJob]) -> None:
        """Take jobs leased to this worker by a committed write."""
        ...


class _WriterGone(Exception):
    """The task writing a batch of completions stopped before it wrote this one."""


def _room(limit: int | None, running: int) -> int:
    """How many waiting runs a limit lets start now; no limit (any more): everything
    still waiting may start (bounded per promotion)."""
    return 10_000 if limit is None else max(limit - running, 0)


class Orchestrator:
    """Starts executions and records each step's outcome."""

    # How many runs a worker remembers as its last write left them.
    KNOWN_RUNS = 2048
    # Guarded writes of a batch of completions, each planned from the run as last known
    # or read, before the batch is written under the run's lock.
    OPTIMISTIC_WRITES = 3

    def __init__(
        self,
        pool: asyncpg.Pool,
        workflows: WorkflowCache,
        *,
        worker_id: str = "api",
        worker_host: str | None = None,
        lease_seconds: float = 30.0,
        max_workflow_depth: int = 10,
    ):
        self.pool = pool
        # How deep child workflows may nest (FLOWSYNC_MAX_WORKFLOW_DEPTH).
        self.max_workflow_depth = max_workflow_depth
        self.workflows = workflows
        self.worker_id = worker_id
        # A worker process's orchestrator (with its host) records, on each step it runs
        # and on the step's step.started event, its id and host; others record nothing.
        self.runner: tuple[str | None, str | None] = (
            (worker_id, worker_host) if worker_host is not None else (None, None)
        )
        self.lease_seconds = lease_seconds
        # Completions waiting for the one being written for the same execution.
        self._queued: dict[uuid.UUID, list[_Completion]] = {}
        # Workflows found without a concurrency limit when one of their runs ended: the
        # next ends are written guarded, in one statement (see _limited).
        self._unlimited: set[uuid.UUID] = set()
        # Workflows with runs keyed by a concurrencyKey: their ends are never written
        # guarded (runs of the key may wait behind them; see _promote).
        self._keyed: set[uuid.UUID] = set()
        # Runs as this worker's last write of each left them: their newest sequence and
        # their steps. Completions of such a run are planned from it and written in one
        # guarded statement; another writer moves the sequence on, and the guard sees it.
        self._runs: OrderedDict[uuid.UUID, tuple[int, dict[str, StepRow]]] = OrderedDict()
        self._hops = _HopWriter(pool, self.runner)
        self._branches = _BranchWriter(pool, self.runner)
        # A worker's backlog: where the other steps a fork makes ready go, leased to this
        # worker, beside the one it takes next (None: every other step is queued).
        self.backlog: Backlog | None = None

    # -- starting -------------------------------------------------------------------

    async def start(
        self,
        conn: Connection,
        *,
        owner_id: uuid.UUID,
        workflow_id: uuid.UUID,
        version_id: uuid.UUID,
        version: int,
        input: Any,
        idempotency_key: str | None = None,
        trigger_id: uuid.UUID | None = None,
        trigger_type: str = "MANUAL",
        trigger_data: Mapping[str, Any] | None = None,
        retry_of_id: uuid.UUID | None = None,
        run_now: bool = True,
        priority: int | None = None,
    ) -> tuple[uuid.UUID, bool]:
        """Create an execution inside the caller's transaction and queue its start node
        (with `run_now` false it waits PENDING behind its workflow's concurrency limit,
        or its trigger's maxConcurrentRuns). `priority`: the start's or its trigger's
        (None: the definition's). Its concurrency key, if the definition has one, is
        evaluated here: with no room left for the key it waits PENDING too; when the key
        fails to evaluate, the run is created FAILED, its start step failed with the
        error (naming concurrencyKey).
        Returns (id, created); with an idempotency key already used, the first
        execution's id and False."""
        wf = await self.workflows.get(version_id, conn)
        nodes = list(wf.nodes.values())
        fair = wf.fairness
        key: str | None = None
        key_error: dict[str, Any] | None = None
        if fair.concurrency_key is not None:
            trigger = {"type": trigger_type, **(trigger_data or {})}
            try:
                key = evaluate_key(fair.concurrency_key, input, trigger)
            except KeyFailed as exc:
                key_error = exc.error
        if key_error is not None:
            run_now = True  # it ends at once, in this transaction
        elif key is not None and run_now:
            run_now = await self._key_room(conn, workflow_id, key, fair.concurrency_key_limit)
        created = await conn.fetch(
            QUERIES["insert_execution"], owner_id, workflow_id, version_id, version, input,
            idempotency_key, trigger_id, trigger_type, dict(trigger_data or {}), retry_of_id,
            "RUNNING" if run_now else "PENDING", [n.id for n in nodes], [n.type for n in nodes],
            fair.priority if priority is None else priority, key,
            fair.concurrency_key_limit if key is not None else None,
        )  # fmt: skip
        if not created:
            existing = await conn.fetchval(QUERIES["execution_by_key"], owner_id, idempotency_key)
            return existing, False
        execution_id, steps = created[0]["execution_id"], _rows(created)
        if key_error is not None:
            plan = plan_failure(steps, wf.start_id, key_error)
            plan.drop_jobs = False
        elif run_now:
            plan = plan_start(wf, steps, input, created[0]["at"])
        else:
            plan = plan_queued()
        await self._write(conn, execution_id, 0, owner_id, workflow_id, plan)
        return execution_id, True

    async def _key_room(
        self, conn: Connection, workflow_id: uuid.UUID, key: str, limit: int | None
    ) -> bool:
        """Whether one more run of `key` may run now; the key stays locked (for starts
        and promotions of it) until the caller's transaction ends."""
        found = await conn.fetchrow(QUERIES["lock_key"], workflow_id, key)
        assert found is not None
        return limit is None or int(found["running"]) < limit

    async def start_many(
        self,
        conn: Connection,
        *,
        owner_id: uuid.UUID,
        workflow_id: uuid.UUID,
        version_id: uuid.UUID,
        version: int,
        inputs: Sequence[Any],
        texts: Sequence[str],
        keys: Sequence[str | None],
        run_now: int,
        priority: int | None = None,
    ) -> tuple[list[tuple[int, asyncpg.Record]], int]:
        """`start` for a batch of executions of one version (MANUAL starts): `inputs`
        (checked by the caller, which names a bad one; `texts`: each as the caller
        encoded it for its checks, the JSON stored), `keys` their idempotency keys
        (unique within the batch); the first `run_now` items run now, the rest wait
        PENDING (so do those, in order, whose concurrency key has no room left).
        `priority`: the batch's (None: the definition's). Returns (place in the batch,
        row) of each execution created, in order, its row (every column of
        `executions`) as the transaction has it, and the jobs queued before the last
        one's (its place in the queue: the caller's backpressure admits the batch as it
        would that start); one whose key the owner already used is left out (the caller
        finds it by key).

        One statement whatever the batch's size: every new run's first transition is
        the same but for its step ids and input (its steps are all PENDING, and what
        the start node readies depends on the graph alone), so it is planned once and
        written for every run as templates (see start_executions)."""
        wf = await self.workflows.get(version_id, conn)
        nodes = list(wf.nodes.values())
        # Placeholder steps (all PENDING, as a new run's are) and input for the plan.
        fresh = {n.id: StepRow(uuid.uuid4(), StepStatus.PENDING) for n in nodes}
        first = plan_start(wf, fresh, _INPUT, datetime.now(UTC))
        queued = plan_queued()
        fair = wf.fairness
        ckeys: list[str | None] = [None] * len(inputs)
        if fair.concurrency_key is not None:
            try:
                ckeys = [evaluate_key(fair.concurrency_key, value, {"type": "MANUAL"})
                         for value in inputs]  # fmt: skip
            except KeyFailed:
                ckeys = []  # each run on its own: the failing ones fail (see start)
        if not _templated(first) or len(ckeys) != len(inputs):
            return await self._start_each(
                conn, owner_id, workflow_id, version_id, version, inputs, keys, run_now,
                priority,
            )  # fmt: skip
        running = await self._admitted_keys(conn, workflow_id, ckeys, run_now,
                                            fair.concurrency_key_limit)  # fmt: skip
        changes = {c.node_id: c for c in first.steps}
        rows = [(n, changes.get(n.id)) for n in nodes]
        events = [(True, e) for e in first.events] + [(False, e) for e in queued.events]
        # Time-ordered, as the server's default (flowsync/ids.py); the steps' run by run.
        ids = uuid7s(len(inputs))
        step_ids = uuid7s(len(inputs) * len(rows))
        node_place = {n.id: k for k, (n, _) in enumerate(rows, 1)}
        found = await conn.fetch(
            QUERIES["start_executions"], owner_id, workflow_id, version_id, version,
            ids, list(texts), list(keys), running,
            [n.id for n, _ in rows], [n.type for n, _ in rows],
            [c.status.value if c else "PENDING" for _, c in rows],
            [c is not None and c.output is _INPUT for _, c in rows],
            json_texts(None if c is None or c.output is _INPUT else c.output for _, c in rows),
            json_texts(c.input if c else None for _, c in rows),
            [c is not None and c.started_at is not None for _, c in rows],
            [c.attempt if c else None for _, c in rows],
            [running for running, _ in events], [n for n, _ in _numbered(events)],
            [e.kind for _, e in events], [e.status for _, e in events],
            [e.node_id for _, e in events], [e.attempt for _, e in events],
            json_texts(e.data for _, e in events),
            [j.node_id for j in first.jobs], [j.max_attempts for j in first.jobs],
            [j.run_at for j in first.jobs],
            len(first.events), len(queued.events),
            fair.priority if priority is None else priority, ckeys, fair.concurrency_key_limit,
            step_ids, [node_place[j.node_id] for j in first.jobs],
            [None if e.node_id is None else node_place[e.node_id] for _, e in events],
        )  # fmt: skip
        place = {eid: i for i, eid in enumerate(ids)}
        created = [(place[row["id"]], row) for row in found]
        if not created:
            return created, 0
        # A repeated key (not created) still took its place.
        last_jobs = len(first.jobs) if running[created[-1][0]] else 0
        return created, found[0]["queue_position"] + found[0]["queue_own"] - last_jobs

    async def _admitted_keys(
        self,
        conn: Connection,
        workflow_id: uuid.UUID,
        ckeys: Sequence[str | None],
        run_now: int,
        limit: int | None,
    ) -> list[bool]:
        """Which runs of a batch run now: in order, while the workflow's room (`run_now`)
        lasts, and for a keyed run while its key has room (each key locked, in sorted
        order so that two batches never wait on each other in a cycle)."""
        room: dict[str, int] = {}
        for key in sorted({k for k in ckeys if k is not None}):
            found = await conn.fetchrow(QUERIES["lock_key"], workflow_id, key)
            assert found is not None
            room[key] = 10_000 if limit is None else max(limit - int(found["running"]), 0)
        running: list[bool] = []
        for ckey in ckeys:
            go = run_now > 0 and (ckey is None or room[ckey] > 0)
            if go:
                run_now -= 1
                if ckey is not None:
                    room[ckey] -= 1
            running.append(go)
        return running

    async def _start_each(
        self,
        conn: Connection,
        owner_id: uuid.UUID,
        workflow_id: uuid.UUID,
        version_id: uuid.UUID,
        version: int,
        inputs: Sequence[Any],
        keys: Sequence[str | None],
        run_now: int,
        priority: int | None,
    ) -> tuple[list[tuple[int, asyncpg.Record]], int]:
        """start_many one run at a time: for a graph whose start ends the run (a start
        node alone), which start_executions' templates do not write, and for a batch
        with a run whose concurrency key fails (that run fails)."""
        created: list[tuple[int, uuid.UUID]] = []
        for i, (value, key) in enumerate(zip(inputs, keys, strict=True)):
            eid, made = await self.start(
                conn, owner_id=owner_id, workflow_id=workflow_id, version_id=version_id,
                version=version, input=value, idempotency_key=key, run_now=i < run_now,
                priority=priority,
            )  # fmt: skip
            if made:
                created.append((i, eid))
        ids = [eid for _, eid in created]
        rows = await conn.fetch(QUERIES["executions_by_ids"], ids)
        by_id = {row["id"]: row for row in rows}
        queued = await conn.fetchrow(QUERIES["admission_position_many"], ids)
        assert queued is not None
        return [(i, by_id[eid]) for i, eid in created], queued["position"] + queued["own"]

    async def rerun(
        self, conn: Connection, original_id: uuid.UUID, actor_key: str | None = None
    ) -> tuple[uuid.UUID, bool]:
        """A new execution of a failed or cancelled one's version and input that reuses
        the outputs of the steps that completed and runs the rest (inside the caller's
        transaction), and True; its `retry_of_id` names the original. When its workflow's
        limit or its concurrency key has no room, it waits PENDING, as a start does, and
        reuses the outputs when it is promoted (see _start_waiting).

        A run is retried once: Conflict when it was retried already (retry the newest
        run instead) or is not failed or cancelled. With `actor_key`, a repeat of the
        retry that used it answers (that retry, False) and creates nothing; the key used
        by any other execution is a Conflict."""
        old = await conn.fetchrow(QUERIES["execution_for_rerun"], original_id)
        if old is None:
            raise NotFound(f"No execution with id {original_id}.")
        if actor_key is not None:
            used = await conn.fetchrow(QUERIES["retry_by_key"], old["owner_id"], actor_key)
            if used is not None and used["retry_of_id"] == original_id:
                return uuid.UUID(str(used["id"])), False
            if used is not None:
                raise Conflict(
                    "That idempotency key was already used for another execution "
                    f"({used['id']}), not a retry of this one."
                )
        await self.check_retryable(
            conn, original_id, old["status"], ("FAILED", "CANCELLED"), "retried"
        )
        wf = await self.workflows.get(old["workflow_version_id"], conn)
        nodes = list(wf.nodes.values())
        run_now = await self._has_room(
            conn, old["workflow_id"], old["concurrency_key"], old["concurrency_key_limit"]
        )
        created = await conn.fetch(
            QUERIES["insert_execution"], old["owner_id"], old["workflow_id"],
            old["workflow_version_id"], old["version"], old["input"], actor_key, None,
            old["trigger_type"], old["trigger_data"], original_id,
            "RUNNING" if run_now else "PENDING",
            [n.id for n in nodes], [n.type for n in nodes], old["priority"],
            old["concurrency_key"], old["concurrency_key_limit"],
        )  # fmt: skip
        if not created:
            raise Conflict("That idempotency key was already used for another execution.")
        new_id, steps = created[0]["execution_id"], _rows(created)
        if run_now:
            plan = await self._rerun_plan(conn, wf, steps, original_id)
        else:
            plan = plan_queued()
        await self._write(conn, new_id, 0, old["owner_id"], old["workflow_id"], plan)
        if run_now:
            await conn.execute(QUERIES["mark_reused"], new_id, original_id)
        return uuid.UUID(str(new_id)), True

    async def check_retryable(
        self,
        conn: Connection,
        execution_id: uuid.UUID,
        status: str,
        allowed: tuple[str, ...],
        done: str,
    ) -> None:
        """Conflict, naming the reason, unless the locked execution may run again: it
        was not retried already (its retry runs it again: a second retry or a redrive
        would run it twice) and its status is one of `allowed`. The one rule of retry
        (`rerun`) and redrive (`resume`); `done` names which in the message."""
        later = await conn.fetchval(QUERIES["retried_as"], execution_id)
        if later is not None:
            raise Conflict(
                f"This execution was retried already, as execution {later}: it runs again "
                "there; retry or redrive that one instead."
            )
        if status not in allowed:
            which = " or ".join(s.lower() for s in allowed)
            raise Conflict(f"Only a {which} execution can be {done}; this one is {status}.")

    async def _rerun_plan(
        self,
        conn: Connection,
        wf: CompiledWorkflow,
        steps: Mapping[str, StepRow],
        original_id: uuid.UUID,
    ) -> Plan:
        """The first transition of a retry of `original_id`: what completed there is
        reused, what was skipped stays skipped (and their branches taken again)."""
        previous = await conn.fetch(QUERIES["execution_steps_full"], original_id)
        reused = {r["node_id"]: r["output"] for r in previous if r["status"] == "COMPLETED"}
        skipped = {r["node_id"] for r in previous if r["status"] == "SKIPPED"}
        branches = {
            r["node_id"]: r["branch"] for r in previous if isinstance(r["branch"], bool | str)
        }
        return plan_rerun(wf, steps, reused, skipped, branches)

    async def _has_room(
        self, conn: Connection, workflow_id: uuid.UUID, key: str | None, limit: int | None
    ) -> bool:
        """Whether a run of the workflow (with concurrency key `key`, if any) may run
        now, for a retry or a redrive: the workflow's limit and the key's, each locked
        in the order starts take them (workflow, then key) until the transaction ends."""
        room = True
        if await conn.fetchval(QUERIES["workflow_limit"], workflow_id) is not None:
            found = await conn.fetchrow(QUERIES["lock_workflow_limit"], workflow_id)
            if found is not None and found["max_concurrency"] is not None:
                room = found["running"] < found["max_concurrency"]
        if key is not None:
            # Locked even when the workflow is full: a promotion of the key waits.
            room = await self._key_room(conn, workflow_id, key, limit) and room
        return room

    async def resume(self, conn: Connection, execution_id: uuid.UUID, reason: str) -> None:
        """Resume a failed execution from its failed step (a dead letter's redrive),
        inside the caller's transaction. When its workflow's limit or its concurrency
        key has no room, it waits PENDING (its failed step as it was) and resumes when
        it is promoted (see _start_waiting)."""
        head = await conn.fetchrow(QUERIES["lock_execution"], execution_id)
        if head is None:
            raise NotFound(f"No execution with id {execution_id}.")
        await self.check_retryable(conn, execution_id, head["status"], ("FAILED",), "redriven")
        wf = await self.workflows.get(head["workflow_version_id"], conn)
        if await self._has_room(
            conn, head["workflow_id"], head["concurrency_key"], head["concurrency_key_limit"]
        ):
            steps = _rows(await conn.fetch(QUERIES["step_states"], execution_id))
            plan = plan_resume(wf, steps, reason)
        else:
            plan = plan_queued(reason)
        await self._write(
            conn, execution_id, head["last_sequence"], head["owner_id"], head["workflow_id"], plan
        )

    # -- a job's outcome ------------------------------------------------------------

    async def complete(
        self,
        job: ClaimedJob,
        output: Any,
        *,
        take_next: bool = False,
        known_outputs: Mapping[str, Any] | None = None,
    ) -> ClaimedJob | None:
        """Record a completed step and advance the graph. With `take_next`, the first
        step that became ready is handed back already claimed by this worker; when
        `known_outputs` (the outputs this step saw) are still all there is, they travel
        with it, so the next step needs no read."""
        done = _Completion(job, output, take_next, known_outputs)
        if job.known_steps is not None:
            # A chain step this worker was handed with what it knew of the run: one
            # statement, guarded by the lease and the run's sequence, instead of a
            # transaction of four round trips. Anything else (a cancel, a lost lease, a
            # reply lost and retried) makes the guard fail and the usual path decide.
            wf = await self.workflows.get(job.workflow_version_id, None)
            sequence, known = job.known_steps
            parts, after = _plan_completions(wf, known, [done])
            plan = parts[0].plan
            if not plan.drop_jobs and self._may_guard(job.workflow_id, [plan]):
                try:
                    (taken,), written, kept = await self._write_completions_planned(
                        None, wf, sequence, parts, after, guarded=True
                    )
                    self._remember(*written)
                    self._keep(kept)
                    return taken
                except (_Stale, _WriterGone, *_RETRYABLE):
                    # Stale, a deadlock with a cancel, or the writer of a batch of hops
                    # stopped: the locked path below decides. What this worker
                    # remembers of the run came from the same write: stale too.
                    self._runs.pop(job.execution_id, None)
        return await self._complete_locked(done)

    async def _complete_locked(self, done: _Completion) -> ClaimedJob | None:
        """Write a completion under the execution's lock. Completions of one execution
        that arrive while another of its completions is being written wait, and are
        then written together in one transaction: the branches of a fork finishing at
        once would otherwise queue for the execution's lock one transaction each, with
        the lock held across their round trips (and the pool's connections waiting)."""
        key = done.job.execution_id
        queued = self._queued.get(key)
        if queued is not None:
            done.result = asyncio.get_running_loop().create_future()
            queued.append(done)
            try:
                return await done.result
            except _WriterGone:
                done.result = None
                return await self._complete_locked(done)
        self._queued[key] = []
        batch = [done]
        own: ClaimedJob | BaseException | None = None
        try:
            while batch:
                outcomes: list[ClaimedJob | BaseException | None]
                try:
                    outcomes = await retrying(functools.partial(self._write_completions, batch))
                except Exception as exc:
                    outcomes = [exc] * len(batch)
                for item, outcome in zip(batch, outcomes, strict=True):
                    if item is done:
                        own = outcome
                    elif item.result is not None and not item.result.done():
                        if isinstance(outcome, BaseException):
                            item.result.set_exception(outcome)
                        else:
                            item.result.set_result(outcome)
                batch, self._queued[key] = self._queued[key], []
        finally:
            # Cancelled half-way (only a worker's last resort): whoever still waits
            # writes its completion itself.
            for item in [*batch, *self._queued.pop(key, [])]:
                if item.result is not None and not item.result.done():
                    item.result.set_exception(_WriterGone())
        if isinstance(own, BaseException):
            raise own
        return own

    async def _write_completions(
        self, batch: list[_Completion]
    ) -> list[ClaimedJob | BaseException | None]:
        """One write for completions of one execution. Planned from the run as this
        worker last wrote it, or, when it does not know it (another worker wrote it
        last, as the branches of a fork run by two workers do), as one unlocked
        statement reads it: one guarded statement, read and planned again when the
        guard finds the run changed, up to OPTIMISTIC_WRITES times. A transaction under
        the run's lock took four round trips with the lock held across two, and two
        workers finishing branches of one run queued for it (bench/engine_bench.py,
        fork/join with two workers). Then, or when a lease changed, in a transaction:
        the first job still leased locks the run and reads its steps; each completion is
        planned from the steps as the ones before it left them. A job whose lease was
        lost gets LeaseLost, and the others are written all the same."""
        wf = await self.workflows.get(batch[0].job.workflow_version_id, None)
        key = batch[0].job.execution_id
        known = self._runs.get(key)
        for _ in range(self.OPTIMISTIC_WRITES):
            if known is None:
                # Read in one snapshot, without a lock: the guarded write below checks
                # that nothing changed since, and a change makes it read again.
                row = await self.pool.fetchrow(QUERIES["run_steps"], key)
                if row is None:
                    break
                known = (int(row["last_sequence"]), steps_from_arrays(row))
            sequence, steps = known
            parts, after = _plan_completions(wf, steps, batch)
            if not self._may_guard(batch[0].job.workflow_id, [p.plan for p in parts]):
                break
            try:
                taken, written, kept = await self._write_completions_planned(
                    None, wf, sequence, parts, after, guarded=True
                )
                self._remember(*written)
                self._keep(kept)
                return list(taken)
            except (_Stale, _WriterGone, *_RETRYABLE):
                self._runs.pop(key, None)
                known = None
        outcomes: list[ClaimedJob | BaseException | None] = [self._lost(item.job) for item in batch]
        async with self.pool.acquire() as conn, conn.transaction():
            live = list(range(len(batch)))
            if len(batch) > 1:
                # Every job before the run (hold_job locks the run): a cancel locks the
                # run's jobs in the same order, then the run, so neither waits in a cycle.
                # Locked, the leases found here hold until the commit.
                rows = await conn.fetch(QUERIES["lock_jobs"], [i.job.job_id for i in batch])
                ours = {(r["id"], r["lease_token"], r["step_id"]) for r in rows}
                live = [i for i in live if _lease(batch[i].job) in ours]
            head = None
            while live and head is None:
                job = batch[live[0]].job
                head = await conn.fetchrow(
                    QUERIES["hold_job"], job.job_id, job.lease_token, job.step_id
                )
                if head is None:
                    live.pop(0)
            if head is None:
                return outcomes
            # Read as of hold_job's statement, which sees this transaction's own writes.
            steps = await self._states(conn, head)
            parts, after = _plan_completions(wf, steps, [batch[i] for i in live])
            taken, written, kept = await self._write_completions_planned(
                conn, wf, head["last_sequence"], parts, after, guarded=False
            )
            for i, outcome in zip(live, taken, strict=True):
                outcomes[i] = outcome
        # Remembered once committed: a write rolled back must leave no trace here.
        self._remember(*written)
        self._keep(kept)
        return outcomes

    async def _write_completions_planned(
        self,
        conn: Connection | None,
        wf: CompiledWorkflow,
        sequence: int,
        parts: list[_Planned],
        after: Mapping[str, StepRow],
        *,
        guarded: bool,
    ) -> tuple[
        list[ClaimedJob | None],
        tuple[uuid.UUID, Plan, int, Mapping[str, StepRow]],
        list[ClaimedJob],
    ]:
        """Write planned completions of one execution in one statement; returns, for
        each, the step handed back to this worker (its job, under the same lease), if
        any, what to remember of the run once the write is committed (_remember), and
        the steps leased to this worker's backlog (_keep, once committed).
        `guarded`: planned from what the worker knew at `sequence`, not read under
        locks (see write_plan); `_Stale` when that is no longer so. `conn` None: see
        _write."""
        first = parts[0].item.job
        plan = combine([p.plan for p in parts])
        leases = self._backlog_leases(first.workflow_version_id, wf, plan)
        # Branches of a fork that leave their join waiting hold whatever was written to
        # the run meanwhile (by the worker running its other branches, say): written
        # guarded by one of the join's open sources, not by the sequence; what this
        # worker then knows of the run stays exact only if nothing else was written.
        waiting_on = still_waiting_on(wf, after, plan) if guarded else None
        if waiting_on is None and sequence == _APPROXIMATE:
            raise _Stale()  # any other plan needs the run as it is
        row = await self._write(
            conn, first.execution_id, sequence, first.owner_id, first.workflow_id, plan,
            held=[(p.item.job.job_id, p.take) for p in parts],
            guard=[p.item.job for p in parts] if guarded else None,
            waiting_on=waiting_on,
            leases=leases,
        )  # fmt: skip
        # After a write checked by waiting_on, what the worker knows is exact only if
        # nothing else was written to the run since (finish_branches tells; else the
        # sequence is _APPROXIMATE).
        written = (first.execution_id, plan, int(row["last_sequence"]), after)
        job_ids = dict(zip(row["job_steps"] or (), row["job_ids"] or (), strict=True))
        out: list[ClaimedJob | None] = []
        for part in parts:
            take, job = part.take, part.item.job
            if take is None:
                out.append(None)
                continue
            # What the run looks like after this write travels with the step when it
            # runs alone, so that its worker can finish it without reading the run.
            alone = runs_alone(after, take.node_id)
            known = (int(row["last_sequence"]), dict(after)) if alone else None
            # Its start was written with this write.
            out.append(_handed(job, job_ids[take.step_id], take, wf, part.carried,
                               known_steps=known, start_pending=False))  # fmt: skip
        kept = [
            # Claimed, as claim_jobs claims: its start is written when it runs.
            _handed(part.item.job, job_ids[new.step_id], new, wf, part.carried,
                    lease_token=leases[id(new)], known_steps=None, start_pending=True,
                    available_at=None)
            for part in parts if leases
            for new in part.plan.jobs if id(new) in leases
        ]  # fmt: skip
        # (combine keeps the parts' NewJob objects: every job leased is handed over)
        assert len(kept) == len(leases)
        return out, written, kept

    def _backlog_leases(
        self, version_id: uuid.UUID, wf: CompiledWorkflow, plan: Plan
    ) -> dict[int, uuid.UUID]:
        """The steps of `plan` to lease to this worker's backlog (by NewJob's id), each
        with its lease: when the worker takes one step the plan makes ready, others
        due now, as many as the backlog has room for. The branches of a fork then stay
        with the worker that forked it, which knows the run (its other workers would
        each read it, and write it in turns), instead of being claimed one by one."""
        if self.backlog is None or not any(j.take for j in plan.jobs):
            return {}
        rest = [j for j in plan.jobs if not j.take and j.run_at is None]
        if not rest:
            return {}
        room = self.backlog.room({(version_id, j.node_id, wf.nodes[j.node_id].type) for j in rest})
        if room <= 0:
            return {}
        return {id(j): uuid.uuid4() for j in rest[:room]}

    def _keep(self, jobs: list[ClaimedJob]) -> None:
        """Hand jobs leased by a committed write to this worker's backlog."""
        if jobs and self.backlog is not None:
            self.backlog.add(jobs)

    def _remember(
        self, execution_id: uuid.UUID, plan: Plan, sequence: int, steps: Mapping[str, StepRow]
    ) -> None:
        """Keep the run as this worker's committed write left it, while it runs."""
        self._runs.pop(execution_id, None)
        if plan.execution_status in _ENDED:
            return
        self._runs[execution_id] = (sequence, dict(steps))
        while len(self._runs) > self.KNOWN_RUNS:
            self._runs.popitem(last=False)

    async def mark_started(self, job: ClaimedJob) -> tuple[int, dict[str, StepRow]] | None:
        """Write a claimed step's start (RUNNING, its attempt, a step.started event at the
        time of the claim) while it runs: a claim writes only its job, and a step that
        finishes soon gets its start written with its outcome instead. LeaseLost when the
        lease was lost or the run cancelled. Returns what the job knows of the run once
        the start is written (its `known_steps` moved on by this write), or None: a step
        that runs alone (a chain's slow HTTP call) is then still finished with one
        guarded statement, not under the run's lock."""
        at = job.claimed_at or datetime.now(UTC)
        row = await self.pool.fetchrow(
            QUERIES["start_step"], job.job_id, job.lease_token, job.step_id,
            job.execution_id, job.attempts, at, *self.runner,
        )  # fmt: skip
        if row is None or not row["started"]:
            self._runs.pop(job.execution_id, None)
            raise self._lost(job)
        sequence = int(row["sequence"])
        if job.execution_id in self._runs:
            remembered = _started_in(self._runs[job.execution_id], job.node_id, sequence)
            if remembered is None:
                self._runs.pop(job.execution_id, None)
            else:
                self._runs[job.execution_id] = remembered
        return _started_in(job.known_steps, job.node_id, sequence)

    async def fail(self, job: ClaimedJob, error: dict[str, Any]) -> None:
        """A step failed for good: the execution fails, its other steps are cancelled."""
        self._runs.pop(job.execution_id, None)

        async def txn() -> None:
            async with self.pool.acquire() as conn, conn.transaction():
                head = await self._take(conn, job, keep=False)
                steps = await self._states(conn, head)
                plan = _of_attempt(job, plan_failure(steps, job.node_id, error))
                await self._write(
                    conn, job.execution_id, head["last_sequence"], job.owner_id,
                    job.workflow_id, plan,
                )  # fmt: skip
                # The job leaves the queue for the dead-letter queue, where it can be
                # inspected and redriven (which resumes the execution from this step).
                await conn.execute(
                    QUERIES["insert_dead_letter"], job.owner_id, job.execution_id,
                    job.step_id, job.node_id, job.attempts, error,
                    {"nodeType": job.node_type, "jobId": job.job_id,
                     "workflowVersion": job.version},
                )  # fmt: skip
                # Its child runs end with it.
                await self._cancel_children(conn, job.execution_id)
            await self.pool.execute("SELECT pg_notify($1, $2)", CANCEL_CHANNEL,
                                    str(job.execution_id))  # fmt: skip

        await retrying(txn)
        metrics.DEAD_LETTERS.inc()

    async def wait(self, job: ClaimedJob, until: datetime, stored: Any) -> None:
        """Park the step until `until`: its job stays, unleased, due at that time. A
        wait or approval step takes a signal kept for it instead, when there is one."""
        if job.node_type in WAITS:
            await self._wait_for_signal(job, until, stored)
            return
        await self._requeue(job, until, lambda steps: plan_wait(steps, job.node_id, until, stored),
                            count_attempt=False)  # fmt: skip

    async def _wait_for_signal(self, job: ClaimedJob, until: datetime, stored: Any) -> None:
        """A wait or approval step's park, under its job's and its run's locks (which a
        signal's sender takes too): it completes with the oldest signal kept for it, else
        it parks until `until` (its timeout) with no worker holding it."""
        self._runs.pop(job.execution_id, None)
        signal = str(stored["signal"])

        async def txn() -> None:
            async with self.pool.acquire() as conn, conn.transaction():
                head = await self._take(conn, job, keep=True)
                kept = await conn.fetchrow(
                    QUERIES["take_kept_signal"], job.execution_id, signal, job.node_id
                )
                steps = _rows(await conn.fetch(QUERIES["step_states"], job.execution_id))
                if kept is None:
                    await conn.execute(
                        QUERIES["requeue_job"], job.job_id, job.lease_token, until, False
                    )
                    plan = plan_signal_wait(steps, job.node_id, stored)
                else:
                    await conn.execute(QUERIES["delete_job"], job.job_id)
                    wf = await self.workflows.get(job.workflow_version_id, conn)
                    plan = plan_signalled(wf, steps, job.node_id, kept["payload"])
                await self._write(
                    conn, job.execution_id, head["last_sequence"], job.owner_id,
                    job.workflow_id, _of_attempt(job, plan),
                )  # fmt: skip

        await retrying(txn)

    async def signal(
        self,
        conn: Connection,
        execution_id: uuid.UUID,
        name: str,
        payload: Any,
        actor: str,
        known: Callable[[CompiledWorkflow], None] | None = None,
    ) -> str | None:
        """Send signal `name` to an execution, inside the caller's transaction: it
        completes the step waiting for it now (returns its node id), or is kept for
        the step that waits for it later (returns None). `known` checks the name and
        payload against the run's workflow version first (raising to refuse them).
        NotFound for no such run; Conflict when it has ended."""
        head = await conn.fetchrow(QUERIES["lock_execution"], execution_id)
        if head is None:
            raise NotFound(f"No execution with id {execution_id}.")
        if head["status"] not in ("PENDING", "RUNNING"):
            raise Conflict(
                f"The execution has already ended ({head['status']}); signal {name!r} "
                "was not delivered."
            )
        wf = await self.workflows.get(head["workflow_version_id"], conn)
        if known is not None:
            known(wf)
        found = await conn.fetchrow(QUERIES["waiting_for_signal"], execution_id, name)
        node_id = found["node_id"] if found is not None else None
        await conn.execute(QUERIES["insert_signal"], execution_id, name, payload, actor, node_id)
        if head["status"] != "RUNNING":
            return None  # a queued run's events are numbered when it starts
        received = Event(
            "signal.received", head["status"], data={"name": name, "by": actor,
                                                     "takenBy": node_id},
        )  # fmt: skip
        if found is None:
            plan = Plan(events=[received])
        else:
            await conn.execute(QUERIES["delete_job"], found["job_id"])
            steps = _rows(await conn.fetch(QUERIES["step_states"], execution_id))
            plan = plan_signalled(wf, steps, found["node_id"], payload)
            plan.events.insert(0, received)
        await self._write(
            conn, execution_id, head["last_sequence"], head["owner_id"], head["workflow_id"], plan
        )
        return str(node_id) if node_id is not None else None

    async def retry(self, job: ClaimedJob, error: dict[str, Any], at: datetime) -> None:
        """Record a failed attempt; the job runs again at `at`."""
        await self._requeue(
            job, at, lambda steps: plan_retry(steps, job.node_id, error, at, job.attempts),
            count_attempt=True,
        )  # fmt: skip

    async def _requeue(
        self,
        job: ClaimedJob,
        at: datetime,
        make: Callable[[Mapping[str, StepRow]], Plan],
        *,
        count_attempt: bool,
    ) -> None:
        self._runs.pop(job.execution_id, None)

        async def txn() -> None:
            async with self.pool.acquire() as conn, conn.transaction():
                head = await self._take(conn, job, keep=True)
                steps = _rows(await conn.fetch(QUERIES["step_states"], job.execution_id))
                await conn.execute(
                    QUERIES["requeue_job"], job.job_id, job.lease_token, at, count_attempt
                )
                await self._write(
                    conn, job.execution_id, head["last_sequence"], job.owner_id,
                    job.workflow_id, _of_attempt(job, make(steps)),
                )  # fmt: skip

        await retrying(txn)

    # -- child workflows -------------------------------------------------------------

    async def run_child(self, job: ClaimedJob, run: Any) -> ChildOutcome:
        """A `workflow` step's work (`run`: its handler's ChildRun), in one transaction
        holding the step's job: start the child run (same owner, linked to this step, at
        most `max_workflow_depth` deep) and park the step WAITING with the child's id,
        or, once started, look at the child. Returns ("completed", the child's output)
        or ("failed", an error) for the caller to record as the step's outcome, or None
        when the step now waits (no worker holds it; the child's end wakes it)."""
        self._runs.pop(job.execution_id, None)
        recheck = datetime.now(UTC) + CHILD_RECHECK

        async def txn() -> ChildOutcome:
            async with self.pool.acquire() as conn, conn.transaction():
                head = await self._take(conn, job, keep=True)
                if run.child_id is not None:
                    child = await conn.fetchrow(QUERIES["child_state"], run.child_id)
                    if child is None:
                        return "failed", {"message": f"The child execution {run.child_id} "
                                          "no longer exists.", "code": "child_missing",
                                          "childExecutionId": str(run.child_id)}  # fmt: skip
                    if child["status"] == "COMPLETED":
                        output = child["output"]
                        return "completed", {} if output is None else output
                    if child["status"] in ("FAILED", "CANCELLED"):
                        # The step forgets the child (the error names it): a redrive of
                        # the step starts a new one instead of failing on this one again.
                        await conn.execute(QUERIES["forget_child"], job.step_id)
                        return "failed", {
                            "message": f"The child execution {run.child_id} ended "
                            f"{child['status']}.",
                            "code": "child_failed",
                            "childExecutionId": str(run.child_id),
                            "childError": child["error"],
                        }
                    await conn.execute(
                        QUERIES["requeue_job"], job.job_id, job.lease_token, recheck, False
                    )
                    return None
                depth = int(await conn.fetchval(QUERIES["execution_depth"], job.execution_id))
                if depth + 1 > self.max_workflow_depth:
                    return "failed", {
                        "message": f"Starting workflow {run.workflow_id} here would nest child "
                        f"workflows {depth + 1} deep; the limit is {self.max_workflow_depth} "
                        "(FLOWSYNC_MAX_WORKFLOW_DEPTH). Do workflows call each other in a "
                        "cycle?",
                        "code": "workflow_depth_exceeded",
                    }
                began = tracing.start_time()
                target = await conn.fetchrow(
                    QUERIES["child_workflow"], run.workflow_id, job.owner_id, run.version
                )
                if target is None:
                    which = "" if run.version is None else f" at version {run.version}"
                    return "failed", {
                        "message": f"No workflow {run.workflow_id}{which} to start (deleted?).",
                        "code": "workflow_not_found",
                    }
                run_now = True
                if target["max_concurrency"] is not None:
                    limit = await conn.fetchrow(QUERIES["lock_workflow_limit"], target["id"])
                    run_now = limit is None or limit["running"] < limit["max_concurrency"]
                child_id, _ = await self.start(
                    conn, owner_id=job.owner_id, workflow_id=target["id"],
                    version_id=target["version_id"], version=target["version"],
                    input=run.input, trigger_type="MANUAL",
                    trigger_data={"parentExecutionId": str(job.execution_id),
                                  "parentNodeId": job.node_id},
                    run_now=run_now,
                )  # fmt: skip
                await conn.execute(
                    QUERIES["link_child"], child_id, job.execution_id, job.step_id, depth + 1
                )
                if job.trace_context is not None and tracing.enabled():
                    # The child's run continues its parent's trace.
                    traced = tracing.execution_started(
                        began, target["name"], child_id, target["id"], "MANUAL",
                        parent=job.trace_context,
                    )  # fmt: skip
                    await conn.execute(QUERIES["set_trace_context"], [child_id], [traced])
                steps = _rows(await conn.fetch(QUERIES["step_states"], job.execution_id))
                await conn.execute(
                    QUERIES["requeue_job"], job.job_id, job.lease_token, recheck, False
                )
                plan = _of_attempt(job, plan_child_wait(steps, job.node_id, child_id))
                await self._write(
                    conn, job.execution_id, head["last_sequence"], job.owner_id,
                    job.workflow_id, plan,
                )  # fmt: skip
                return None

        result: ChildOutcome = await retrying(txn)
        return result

    async def _cancel_children(self, conn: Connection, execution_id: uuid.UUID) -> None:
        """Cancel the runs `execution_id` started that are still going, and theirs."""
        for row in await conn.fetch(QUERIES["active_children"], execution_id):
            with contextlib.suppress(Conflict):  # it ended meanwhile
                await self.cancel(
                    conn, row["id"], f"Its parent execution {execution_id} ended first."
                )

    # -- cancel -----------------------------------------------------------------------

    async def cancel(self, conn: Connection, execution_id: uuid.UUID, reason: str) -> None:
        """Cancel a running execution inside the caller's transaction: queued steps are
        dropped, running ones are told to stop (NOTIFY on commit) and the execution ends
        CANCELLED; so do the child runs it started (children first: a child's end locks
        its parent's job after the child). Conflict when it has already ended."""
        await self._cancel_children(conn, execution_id)
        # Jobs first, then the execution: the lock order every transition keeps.
        await conn.execute(QUERIES["drop_jobs"], execution_id)
        head = await conn.fetchrow(QUERIES["lock_execution"], execution_id)
        if head is None:
            raise NotFound(f"No execution with id {execution_id}.")
        if head["status"] not in ("PENDING", "RUNNING"):
            raise Conflict(f"The execution has already ended ({head['status']}).")
        steps = _rows(await conn.fetch(QUERIES["step_states"], execution_id))
        plan = plan_cancel(steps, reason)
        plan.drop_jobs = False
        await self._write(
            conn, execution_id, head["last_sequence"], head["owner_id"], head["workflow_id"], plan
        )
        # A child its step started while this waited for the run's lock.
        await self._cancel_children(conn, execution_id)
        await conn.execute("SELECT pg_notify($1, $2)", CANCEL_CHANNEL, str(execution_id))

    async def sweep(self, execution_id: uuid.UUID) -> None:
        """After a cancel commits: remove the run's jobs that its transaction could not.
        It drops the jobs before it locks the run (the order every transition keeps), so
        a transition that commits in between (a fork's completion) leaves jobs it never
        saw, and a worker may claim them at once. Once the cancel has committed no
        transition of the run writes any more (each finds it ended), so this sweep,
        holding no lock of the run, waits for whoever holds such a job and leaves none.
        The cancel stands if this fails: the reaper removes such a job once its lease
        runs out (reclaim_expired)."""
        try:
            await self.pool.execute(QUERIES["drop_jobs"], execution_id)
        except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError) as exc:
            log.warning("sweeping the jobs of cancelled run %s failed: %s", execution_id, exc)

    # -- writing a plan ---------------------------------------------------------------

    async def promote(self, workflow_id: uuid.UUID) -> None:
        """Start what the workflow's (changed) concurrency limit now allows."""
        async with self.pool.acquire() as conn, conn.transaction():
            await self._promote(conn, workflow_id)

    async def promote_trigger(self, trigger_id: uuid.UUID) -> None:
        """Start what the trigger's (changed) maxConcurrentRuns now allows."""
        async with self.pool.acquire() as conn, conn.transaction():
            await self._promote_trigger(conn, trigger_id)

    async def _promote(
        self,
        conn: Connection,
        workflow_id: uuid.UUID,
        *,
        after_end: bool = False,
        ended: uuid.UUID | None = None,
    ) -> None:
        """Start executions waiting behind the workflow's concurrency limit, oldest
        first, as far as the limit allows now that one ended (`after_end`; `ended`: that
        execution, whose trigger's limit is honoured too) or the limit changed."""
        trigger_id: uuid.UUID | None = None
        if ended is not None:
            trigger = await conn.fetchrow(QUERIES["trigger_limit_of_run"], ended)
            if trigger is not None and trigger["max_concurrent_runs"] is not None:
                trigger_id = trigger["id"]
                # Locked before the workflow, the order every start keeps.
                await conn.fetchrow(QUERIES["lock_trigger_limit"], trigger_id)
        if not after_end or await self._limited(conn, workflow_id):
            await self._promote_workflow(conn, workflow_id)
        if trigger_id is not None:
            await self._promote_trigger(conn, trigger_id)
        if ended is not None:
            keyed = await conn.fetchrow(QUERIES["key_of_run"], ended)
            if keyed is not None and keyed["concurrency_key"] is not None:
                self._keyed.add(workflow_id)
                await self._promote_key(conn, workflow_id, keyed["concurrency_key"],
                                        keyed["concurrency_key_limit"])  # fmt: skip

    async def _promote_key(
        self, conn: Connection, workflow_id: uuid.UUID, key: str, limit: int | None
    ) -> None:
        """Start the runs waiting behind concurrency key `key`, oldest first, as far as
        the key's limit (and each one's workflow and trigger limits) allows. The
        workflow is locked first when it has a limit (the order starts keep), then the
        key."""
        if await conn.fetchval(QUERIES["workflow_limit"], workflow_id) is not None:
            await conn.fetchrow(QUERIES["lock_workflow_limit"], workflow_id)
        found = await conn.fetchrow(QUERIES["lock_key"], workflow_id, key)
        assert found is not None
        for _ in range(_room(limit, int(found["running"]))):
            waiting = await conn.fetchrow(QUERIES["next_pending_key"], workflow_id, key)
            if waiting is None or not await self._start_waiting(conn, waiting):
                return

    async def _promote_workflow(self, conn: Connection, workflow_id: uuid.UUID) -> None:
        limit = await conn.fetchrow(QUERIES["lock_workflow_limit"], workflow_id)
        if limit is None:
            return
        for _ in range(_room(limit["max_concurrency"], limit["running"])):
            waiting = await conn.fetchrow(QUERIES["next_pending"], workflow_id)
            if waiting is None or not await self._start_waiting(conn, waiting):
                return

    async def _promote_trigger(self, conn: Connection, trigger_id: uuid.UUID) -> None:
        """Start executions of the trigger waiting behind its maxConcurrentRuns, oldest
        first, as far as it (and each one's workflow limit) allows."""
        limit = await conn.fetchrow(QUERIES["lock_trigger_limit"], trigger_id)
        if limit is None:
            return
        for _ in range(_room(limit["max_concurrent_runs"], limit["running"])):
            waiting = await conn.fetchrow(QUERIES["next_pending_of_trigger"], trigger_id)
            if waiting is None:
                return
            if waiting["max_concurrency"] is not None:
                # Its workflow has a limit too: counted again under the workflow's lock
                # (taken after the trigger's, as starts take them); when it is full, the
                # run starts when one of the workflow's ends.
                wf = await conn.fetchrow(QUERIES["lock_workflow_limit"], waiting["workflow_id"])
                cap = wf["max_concurrency"] if wf is not None else None
                if wf is not None and cap is not None and wf["running"] >= cap:
                    return
            if not await self._start_waiting(conn, waiting):
                return

    async def _start_waiting(self, conn: Connection, waiting: asyncpg.Record) -> bool:
        """Start a PENDING run; False (and it waits on) when its concurrency key, locked
        and counted here, has no room after all."""
        if waiting["concurrency_key"] is not None:
            room = await self._key_room(conn, waiting["workflow_id"], waiting["concurrency_key"],
                                        waiting["concurrency_key_limit"])  # fmt: skip
            if not room:
                return False
        wf = await self.workflows.get(waiting["workflow_version_id"], conn)
        steps = _rows(await conn.fetch(QUERIES["step_states"], waiting["id"]))
        retry_of = waiting["retry_of_id"]
        reusing = False
        if any(s.status in (StepStatus.FAILED, StepStatus.CANCELLED) for s in steps.values()):
            # A redriven run that waited for room: it resumes from its failed step.
            plan = plan_resume(wf, steps, "room under its concurrency limits")
        elif retry_of is not None:
            # A retry that waited for room: it reuses what its original completed.
            plan = await self._rerun_plan(conn, wf, steps, retry_of)
            reusing = True
        else:
            plan = plan_start(wf, steps, waiting["input"], waiting["at"])
        await self._write(
            conn, waiting["id"], waiting["last_sequence"], waiting["owner_id"],
            waiting["workflow_id"], plan,
        )  # fmt: skip
        if reusing:
            await conn.execute(QUERIES["mark_reused"], waiting["id"], retry_of)
        return True

    def _may_guard(self, workflow_id: uuid.UUID, plans: list[Plan]) -> bool:
        """Whether plans made from what this worker knew may be written guarded: not
        when one ends its run, unless the workflow was found without a limit (the
        guarded write then checks that under a shared lock)."""
        ends = any(p.execution_status in _ENDED for p in plans)
        return not ends or (workflow_id in self._unlimited and workflow_id not in self._keyed)

    async def _limited(self, conn: Connection, workflow_id: uuid.UUID) -> bool:
        """Whether the workflow has a concurrency limit, for an execution that ends:
        without one, nothing waits behind it. Locking the workflow and counting its
        running executions, as a limit needs, would make every end of one workflow
        wait for the one before it to commit. Read first without a lock (a limited
        workflow locks it for update at once); when unlimited, read again under a
        shared lock, so that a change of the limit either waits for this commit (and
        the promotion that follows a change sees this execution ended) or is seen here.
        What it finds is kept for _may_guard."""
        limited = await conn.fetchval(QUERIES["workflow_limit"], workflow_id) is not None
        if not limited:
            shared = await conn.fetchval(QUERIES["workflow_limit_shared"], workflow_id)
            limited = shared is not None
        if limited:
            self._unlimited.discard(workflow_id)
        else:
            self._unlimited.add(workflow_id)
        return limited

    async def _states(self, conn: Connection, head: asyncpg.Record) -> dict[str, StepRow]:
        """The steps as take_job read them, unless another transition of the run
        committed while it waited for the lock: then read them again."""
        if head["seen_sequence"] == head["last_sequence"]:
            return steps_from_arrays(head)
        return _rows(await conn.fetch(QUERIES["step_states"], head["id"]))

    async def _take(
        self, conn: Connection, job: ClaimedJob, *, keep: bool, query: str | None = None
    ) -> asyncpg.Record:
        sql = QUERIES[query or ("lock_job" if keep else "take_job")]
        head = await conn.fetchrow(sql, job.job_id, job.lease_token, job.step_id)
        if head is None:
            raise self._lost(job)
        return head

    @staticmethod
    def _lost(job: ClaimedJob) -> LeaseLost:
        return LeaseLost(
            f"The lease on job {job.job_id} ({job.node_id}) was lost; its result is dropped."
        )

    async def _write(
        self,
        conn: Connection | None,
        execution_id: uuid.UUID,
        last_sequence: int,
        owner_id: uuid.UUID,
        workflow_id: uuid.UUID,
        plan: Plan,
        *,
        held: list[tuple[int, NewJob | None]] | None = None,
        guard: list[ClaimedJob] | None = None,
        waiting_on: list[uuid.UUID] | None = None,
        leases: Mapping[int, uuid.UUID] | None = None,
    ) -> Mapping[str, Any] | asyncpg.Record:
        """Write a plan in one statement (a chain's hop: with others, see _HopWriter).
        `conn` None: on a connection of its own, taken only if the plan is not a hop
        (callers holding connections while they wait for the hop writer could leave it
        none to write with). `held`: jobs whose rows this transition
        holds (hold_job, lock_jobs), each handed on, under the same lease, to the job of
        `plan` this worker takes next, or deleted (None). `guard`: the plan was made
        from what these jobs' worker knew of the run at `last_sequence`, not read under
        locks; `_Stale` when that is no longer so, or a lease was lost (and nothing was
        written). `waiting_on` (with `guard`, `conn` None): the plan only completes
        steps and leaves their join waiting on these (still_waiting_on); it is written
        checked by them, not by the sequence (finish_branches)."""
        held = held or []
        leases = leases or {}
        # A caller holding a connection writes through it: the hop writer's connection
        # comes from the pool, which such callers may be holding all of.
        hop = _hop(plan, held, guard) if conn is None and not leases else None
        if hop is not None:
            job, done, started, new, attempt, at = hop
            write = _HopWrite(execution_id, last_sequence, owner_id, workflow_id, job, done,
                              started, new, attempt, at)  # fmt: skip
            if not await self._hops.write(write):
                raise _Stale()
            return {"job_steps": [new.step_id], "job_ids": [job.job_id],
                    "last_sequence": last_sequence + len(plan.events)}  # fmt: skip
        if waiting_on is not None and not leases:
            # Branches that leave their join waiting, planned from what this worker knew:
            # written with other runs' (see _BranchWriter).
            assert conn is None and guard is not None
            changes = {c.step_id: c for c in plan.steps}
            branches = _BranchWrite(execution_id, owner_id, workflow_id, guard,
                                    [changes[j.step_id] for j in guard], waiting_on,
                                    last_sequence)  # fmt: skip
            if not await self._branches.write(branches):
                raise _Stale()
            return {"job_steps": None, "job_ids": None, "last_sequence": branches.known}
        if conn is None:
            async with self.pool.acquire() as own:
                return await self._write_plan(own, execution_id, last_sequence, owner_id,
                                              workflow_id, plan, held, guard,
                                              leases)  # fmt: skip
        return await self._write_plan(conn, execution_id, last_sequence, owner_id,
                                      workflow_id, plan, held, guard, leases)  # fmt: skip

    async def _write_plan(
        self,
        conn: Connection,
        execution_id: uuid.UUID,
        last_sequence: int,
        owner_id: uuid.UUID,
        workflow_id: uuid.UUID,
        plan: Plan,
        held: list[tuple[int, NewJob | None]],
        guard: list[ClaimedJob] | None,
        leases: Mapping[int, uuid.UUID] | None = None,
    ) -> asyncpg.Record:
        """_write for any plan, with write_plan. `leases`: new jobs (by NewJob's id)
        leased to this worker as a claim leases them (its backlog's)."""
        leases = leases or {}
        if plan.drop_jobs:
            await conn.execute(QUERIES["drop_jobs"], execution_id)
        handed_on = {id(take) for _, take in held if take is not None}
        inserted = [j for j in plan.jobs if id(j) not in handed_on]
        events = plan.events
        # A guarded end checks the workflow's limit itself (see _may_guard).
        ends = plan.execution_status in _ENDED
        guarded_end = guard is not None and ends
        row = await conn.fetchrow(
            QUERIES["write_plan"],
            execution_id,
            last_sequence,
            owner_id,
            workflow_id,
            [c.step_id for c in plan.steps],
            [c.status.value for c in plan.steps],
            json_texts(c.output for c in plan.steps),
            json_texts(c.error for c in plan.steps),
            json_texts(c.input for c in plan.steps),
            [j.step_id for j in inserted],
            [j.run_at for j in inserted],
            [j.max_attempts for j in inserted],
            # A job to take that no held job is handed on to starts a lease of its own;
            # so does one for the backlog.
            [uuid.uuid4() if j.take else leases.get(id(j)) for j in inserted],
            [e.kind for e in events],
            [e.status for e in events],
            [e.step_id for e in events],
            [e.node_id for e in events],
            [e.attempt for e in events],
            json_texts(e.data for e in events),
            self.worker_id,
            plan.execution_status.value if plan.execution_status else None,
            plan.execution_output,
            plan.execution_error,
            any(not j.take and id(j) not in leases for j in plan.jobs),
            self.lease_seconds,
            [job_id for job_id, _ in held],
            [take.step_id if take is not None else None for _, take in held],
            [take.max_attempts if take is not None else None for _, take in held],
            [j.lease_token for j in guard] if guard is not None else None,
            [j.step_id for j in guard] if guard is not None else None,
            [c.started_at for c in plan.steps],
            [c.attempt for c in plan.steps],
            [e.at for e in events],
            guarded_end,
            *self.runner,
        )  # fmt: skip
        assert row is not None
        if guard is not None and row["last_sequence"] is None:
            if guarded_end:
                self._unlimited.discard(workflow_id)  # perhaps it has a limit now
            raise _Stale()
        if ends:
            if not guarded_end:
                await self._promote(conn, workflow_id, after_end=True, ended=execution_id)
            _count_finished(workflow_id, plan.execution_status)
        return row
