"""The worker: claims jobs, runs their steps on asyncio and records each outcome.

Concurrency is bounded by what the worker claims: it never holds more than `concurrency`
jobs. It wakes on NOTIFY and also polls every `poll_seconds`, so a lost notification only
delays a step. A job kept for later (a timer, a retry's backoff) wakes it when it falls
due: the notification that parks it says in how many seconds, and an idle worker that
may have missed some (at start, after a reconnect, at each poll, once a due time came)
reads the earliest due time from the table. Heartbeats extend its leases; every worker
also returns jobs whose lease expired (a dead worker's) to the queue. On stop it claims
nothing more, lets running steps finish for `grace_seconds`, and gives back the jobs that
did not.
"""

from __future__ import annotations

import asyncio
import collections
import contextlib
import dataclasses
import logging
import math
import os
import socket
import time
import uuid
import weakref
from collections import OrderedDict
from collections.abc import Awaitable, Callable, Iterable
from datetime import UTC, datetime
from typing import Any

import asyncpg

from flowsync import codec, metrics, tracing
from flowsync.db.pooler import Pooler, startup_settings, warn_polling
from flowsync.engine.definition import NodeType
from flowsync.engine.expressions import SECRETS
from flowsync.engine.orchestrator import Orchestrator, WorkflowCache
from flowsync.engine.transitions import StepRow
from flowsync.engine.validation import CompiledNode, CompiledWorkflow
from flowsync.errors import LeaseLost
from flowsync.eventloop import wait_set
from flowsync.events.listener import PgListener
from flowsync.logs import bind_step
from flowsync.secrets_crypto import Keyring, SecretUnreadable
from flowsync.services.secrets import read_secret_values
from flowsync.tracing import trace_id_of
from flowsync.worker.handlers import (
    ChildRun,
    Completed,
    Failed,
    Outcome,
    StepContext,
    Waiting,
    build_variables,
)
from flowsync.worker.liveness import ChoreConnection, LeaseTimes
from flowsync.worker.presence import Presence
from flowsync.worker.queue import CANCEL_CHANNEL, JOBS_CHANNEL, QUERIES, ClaimedJob, Queue
from flowsync.worker.redaction import LIVE, Redactor
from flowsync.worker.registry import HandlerRegistry

log = logging.getLogger("flowsync.worker")

# A job whose worker died this many times more than its attempts allow is failed instead
# of run again, so that a step that kills its worker cannot loop forever.
CRASH_ALLOWANCE = 3

# A lost or terminated connection, or a statement cut off by its session's limits (see
# flowsync.worker.liveness): the work is retried, never dropped.
_DB_ERRORS = (
    OSError,
    TimeoutError,
    asyncpg.PostgresConnectionError,
    asyncpg.InterfaceError,
    # admin shutdown, pg_terminate_backend, and statement_timeout (QueryCanceledError)
    asyncpg.exceptions.OperatorInterventionError,
    asyncpg.InternalClientError,  # a connection left mid-operation by a dropped socket
    asyncpg.exceptions.LockNotAvailableError,  # lock_timeout
    asyncpg.exceptions.IdleInTransactionSessionTimeoutError,
)
# Waited too long for a lock (the holder is lost or stuck): the job's lease was not
# extended meanwhile (the heartbeat skips a locked job), so it is extended before the
# write is tried again.
_LOCK_WAITS = (asyncpg.exceptions.LockNotAvailableError, asyncpg.exceptions.QueryCanceledError)


def due_in(payload: str) -> float | None:
    """The seconds a jobs-channel notification says its job waits (0: due now), or None
    for an empty payload (due now) or one that is not a finite number."""
    if not payload:
        return None
    try:
        seconds = float(payload)
    except ValueError:
        return None
    return seconds if math.isfinite(seconds) else None


def default_worker_id() -> str:
    """host:pid:random, unique per process."""
    return f"{socket.gethostname()}:{os.getpid()}:{uuid.uuid4().hex[:6]}"


@dataclasses.dataclass
class Drained:
    """What a worker's shutdown did with the steps it was running: finished them within
    the grace period, gave their jobs back to the queue (claimable at once), or, stuck
    outside their handler, abandoned them to lease expiry."""

    in_flight: int = 0
    gave_back: int = 0
    abandoned: int = 0

    def line(self) -> str:
        """The drain, as the worker's last log line says it."""
        finished = self.in_flight - self.gave_back - self.abandoned
        text = f"drained: finished {finished} steps, gave back {self.gave_back}"
        return text + (f", abandoned {self.abandoned} to lease expiry" if self.abandoned else "")


# A worker's backlog at most, by default, per slot: a claim takes up to one fork per free
# slot, and each fork's other branches are kept if there is room; with one per slot, a
# burst of forks claimed at once overflowed it with the first fork's branches, and the
# rest were queued, split between workers, and each run read by both
# (bench/engine_bench.py, fork/join x20 with 2 workers: 2,900 -> 3,400 steps/s, 0.45 ->
# 0.33 commits per step).
BACKLOG_PER_SLOT = 8


# A step as _Durations knows it: its workflow version, node id and node type.
Node = tuple[uuid.UUID, str, str]


class _Durations:
    """How long this worker's steps took lately, per node (of a workflow version, for
    the nodes run most recently) and per node type: a moving average of their handlers'
    run times, in seconds."""

    WEIGHT = 0.2  # of each new step
    NODES = 4096

    def __init__(self) -> None:
        self._nodes: OrderedDict[tuple[uuid.UUID, str], float] = OrderedDict()
        self._types: dict[str, float] = {}

    def add(self, node: Node, seconds: float) -> None:
        version, node_id, node_type = node
        self._nodes[version, node_id] = self._moved(self._nodes.pop((version, node_id), None),
                                                    seconds)  # fmt: skip
        if len(self._nodes) > self.NODES:
            self._nodes.popitem(last=False)
        self._types[node_type] = self._moved(self._types.get(node_type), seconds)

    def _moved(self, before: float | None, seconds: float) -> float:
        return seconds if before is None else before + self.WEIGHT * (seconds - before)

    def longest(self, nodes: Iterable[Node]) -> float | None:
        """The longest of these nodes' times (a node not run here lately: its type's);
        None if one's type has not run here yet."""
        longest = 0.0
        for version, node_id, node_type in nodes:
            seconds = self._nodes.get((version, node_id))
            if seconds is None:
                seconds = self._types.get(node_type)
                if seconds is None:
                    return None
            longest = max(longest, seconds)
        return longest


# The backlogs of this process's running workers (Worker.run adds its own and takes it
# out when it stops), read when metrics are scraped: nothing is counted on the backlog's
# own path.
_BACKLOGS: weakref.WeakSet[Backlog] = weakref.WeakSet()
metrics.WORKER_BACKLOG.set_function(lambda: sum(len(b) for b in list(_BACKLOGS)))


class Backlog:
    """Steps leased to this worker by its own writes and not started yet: the other
    branches of a fork it took one of (Orchestrator.backlog). They start before anything
    is claimed, and one that waited `hold_seconds` (every slot busy meanwhile) goes back
    to the queue for any worker (release_jobs).

    How many it keeps of a fork's branches: as many as its `slots` start within HORIZON
    seconds, by how long the steps of their nodes took on this worker lately (of their
    node types, for nodes it has not run lately); at least one per slot (slots soon
    free; also for node types that have not run here yet) and at most `limit`. Quick
    branches then stay together with the worker that forked them, while slow ones (an
    HTTP call each) beyond one per slot are queued for idle workers instead of waiting
    here for this worker's busy slots."""

    HORIZON = 0.1

    def __init__(
        self,
        limit: int,
        hold_seconds: float,
        on_add: Callable[[], None],
        slots: int = 0,
    ):
        self.limit = limit
        self.slots = slots
        self.hold_seconds = hold_seconds
        self.durations = _Durations()
        self._on_add = on_add
        self._jobs: collections.deque[tuple[float, ClaimedJob]] = collections.deque()

    def __len__(self) -> int:
        return len(self._jobs)

    def room(self, nodes: Iterable[Node]) -> int:
        """How many more steps of these nodes (workflow version, node id, node type) it
        takes now."""
        keep = self.slots
        seconds = self.durations.longest(nodes)
        if seconds is not None:
            keep = max(keep, int(self.slots * self.HORIZON / seconds) if seconds else self.limit)
        return min(self.limit, keep) - len(self._jobs)

    def add(self, jobs: list[ClaimedJob]) -> None:
        now = time.monotonic()
        self._jobs.extend((now, job) for job in jobs)
        self._on_add()

    def take(self, count: int) -> list[ClaimedJob]:
        """Up to `count` jobs, oldest first, to start now."""
        taken: list[ClaimedJob] = []
        while self._jobs and len(taken) < count:
            taken.append(self._jobs.popleft()[1])
        return taken

    def tokens(self) -> list[uuid.UUID]:
        return [job.lease_token for _, job in self._jobs]

    def expires_at(self) -> float | None:
        """When the oldest job has waited long enough (time.monotonic)."""
        return self._jobs[0][0] + self.hold_seconds if self._jobs else None

    def drop(self, keep: Callable[[ClaimedJob], bool]) -> None:
        """Forget the jobs `keep` refuses."""
        self._jobs = collections.deque((t, job) for t, job in self._jobs if keep(job))

    def expired(self) -> list[ClaimedJob]:
        """Take out the jobs that waited `hold_seconds` or longer."""
        edge = time.monotonic() - self.hold_seconds
        gone: list[ClaimedJob] = []
        while self._jobs and self._jobs[0][0] <= edge:
            gone.append(self._jobs.popleft()[1])
        return gone


# A completed step's output (as stored: TOAST compresses a large one) that a step reads
# although its expressions do not name it: small ones all are, so that the outputs are
# whole and travel on with the run's next step (see _carried) instead of being read again.
SMALL_OUTPUT_BYTES = 8 * 1024


def _steps_read(workflow: CompiledWorkflow, node: CompiledNode) -> frozenset[str] | None:
    """The nodes whose outputs `node`'s step reads, or None for all: a join's incoming
    nodes, else those its expressions name."""
    if node.type is NodeType.JOIN:
        return frozenset(edge.source for edge in workflow.incoming[node.id])
    return node.steps_read


class Worker:
    """One worker process's engine. `run()` returns after `stop()`."""

    def __init__(
        self,
        url: str,
        pool: asyncpg.Pool,
        registry: HandlerRegistry,
        *,
        concurrency: int = 16,
        lease_seconds: float = 30.0,
        heartbeat_seconds: float = 10.0,
        poll_seconds: float = 2.0,
        reclaim_seconds: float = 5.0,
        grace_seconds: float = 10.0,
        start_seconds: float = 0.05,
        take_next: bool = True,
        backlog: int | None = None,
        backlog_seconds: float = 1.0,
        worker_id: str | None = None,
        clock: Callable[[], datetime] = lambda: datetime.now(UTC),
        pooler: Pooler = "none",
        listen_url: str | None = None,
        poll_only: bool = False,
        max_workflow_depth: int = 10,
        keyring: Keyring | None = None,
    ):
        self.url = url
        # Decrypts the secrets a step reads (`{{ secrets.NAME }}`); None: no key.
        self.keyring = keyring
        # LISTEN at `listen_url` (else `url`); `poll_only`: nowhere to listen (behind a
        # transaction pooler with no direct URL), so only the poll finds new jobs.
        self.listen_url = None if poll_only else listen_url or url
        self.listen_pooler: Pooler = "none" if listen_url else pooler
        self.pool = pool
        self.registry = registry
        self.concurrency = concurrency
        self.heartbeat_seconds = heartbeat_seconds
        self.poll_seconds = poll_seconds
        self.reclaim_seconds = reclaim_seconds
        self.grace_seconds = grace_seconds
        self.start_seconds = start_seconds
        self.take_next = take_next
        self.worker_id = worker_id or default_worker_id()
        self.clock = clock
        self.queue = Queue(pool, self.worker_id, lease_seconds)
        # Heartbeats and reclaims: on a connection of their own, never behind a step.
        self.lease_times = LeaseTimes(lease_seconds, heartbeat_seconds)
        self.chores = ChoreConnection(url, self.lease_times, "flowsync-worker-chores", pooler)
        self.presence = Presence(
            pool, self.worker_id, concurrency=concurrency, heartbeat_seconds=heartbeat_seconds
        )
        self.workflows = WorkflowCache(pool)
        self.orchestrator = Orchestrator(
            pool,
            self.workflows,
            worker_id=self.worker_id,
            worker_host=socket.gethostname(),
            lease_seconds=lease_seconds,
            max_workflow_depth=max_workflow_depth,
        )
        # `_wake` ends the loop's sleep; `_claim_now` says whether to claim or only to
        # sleep again until `_due_at` (loop time), the earliest due time known, moved
        # sooner by a notification. `_due_stale`: a due time may be missing (a
        # notification lost, or one passed over for a sooner one), so read it from the
        # table before sleeping.
        self._wake = asyncio.Event()
        self._claim_now = False
        self._due_at: float | None = None
        self._due_stale = True
        self._stopping = asyncio.Event()
        self._tasks: dict[asyncio.Task[None], ClaimedJob] = {}
        # The jobs whose step is running (not being recorded, not done), by lease token:
        # the only ones a heartbeat may find lost, a cancel or a shutdown may stop. A
        # task takes its job out before it writes the job's outcome, synchronously, so
        # that a heartbeat racing that write (which ends the lease) never sees a loss.
        self._running: dict[uuid.UUID, ClaimedJob] = {}
        # The step outputs each running job saw, by lease token (None: not loaded).
        self._seen: dict[uuid.UUID, dict[str, Any] | None] = {}
        # Claimed jobs whose start is being written, or was, while they ran (by token).
        self._starting: dict[uuid.UUID, asyncio.Task[None]] = {}
        # Jobs whose start was written while they ran: what each then knows of its run.
        self._started: dict[uuid.UUID, tuple[int, dict[str, StepRow]] | None] = {}
        # Running handlers by lease token, and why a step was told to stop.
        self._handler_tasks: dict[uuid.UUID, asyncio.Task[Outcome]] = {}
        self._stop_reason: dict[uuid.UUID, str] = {}
        self.completed = 0
        self.drained = Drained()
        # The other branches of a fork this worker took one of: leased to it, up to
        # `backlog` (None: BACKLOG_PER_SLOT per slot; 0: none), run before anything is
        # claimed (see Backlog).
        if backlog is None:
            backlog = concurrency * BACKLOG_PER_SLOT
        limit = backlog if take_next else 0
        self.backlog = Backlog(limit, backlog_seconds, self._kick, slots=concurrency)
        self.orchestrator.backlog = self.backlog

    def stop(self) -> None:
        """Ask the worker to stop claiming and shut down."""
        self._stopping.set()
        self._kick()

    def _kick(self) -> None:
        """Wake the loop to claim."""
        self._claim_now = True
        self._wake.set()

    def _on_jobs(self, payload: str) -> None:
        """Jobs to claim now (an empty payload), or one kept for later, due in `payload`
        seconds by the database's clock: the loop sleeps no longer than that. Only a due
        time sooner than the one known wakes the loop, and then only to sleep again."""
        seconds = due_in(payload)
        if seconds is None or seconds <= 0:
            self._kick()
            return
        at = asyncio.get_running_loop().time() + seconds
        if self._due_at is None or at < self._due_at:
            self._due_at = at
            self._wake.set()

    def _on_listen(self) -> None:
        """(Re)connected: notifications sent meanwhile are gone; claim, and read the
        next due time again."""
        self._due_stale = True
        self._kick()

    def _on_cancel(self, payload: str) -> None:
        """Stop the steps of a cancelled or failed execution. A step whose outcome is
        being written is left alone: its write fails on the dropped lease by itself, and
        the task that failed the execution (and sent this) must finish its bookkeeping.
        Its steps in the backlog are forgotten (the cancel deleted their jobs)."""
        self.backlog.drop(lambda job: str(job.execution_id) != payload)
        for job in list(self._running.values()):
            if str(job.execution_id) == payload:
                self._stop_step(job, "cancelled")

    def _stop_step(self, job: ClaimedJob, reason: str) -> None:
        """Stop a step's handler (lease lost, run cancelled, or shutdown). Only the
        handler is cancelled, never a task in the middle of a database call: a call
        cancelled half-way leaves its pooled connection unusable."""
        self._stop_reason[job.lease_token] = reason
        handler = self._handler_tasks.get(job.lease_token)
        if handler is not None:
            handler.cancel()

    async def run(self) -> None:
        """Work until stopped."""
        listener: PgListener | None = None
        if self.listen_url is None:
            # A cancelled run's steps then stop at the next heartbeat, which finds the
            # lease gone, instead of at once.
            warn_polling("this worker")
        else:
            listener = PgListener(
                self.listen_url,
                {JOBS_CHANNEL: self._on_jobs, CANCEL_CHANNEL: self._on_cancel},
                on_connect=self._on_listen,
                application_name="flowsync-worker-listener",
                # A lost host's LISTEN connection is dropped by the server within seconds.
                server_settings=startup_settings(
                    self.listen_pooler, self.lease_times.keepalive_settings()
                ),
            )
            listener.start()
        chores = [
            asyncio.create_task(self._every(self.heartbeat_seconds, self._heartbeat)),
            asyncio.create_task(self._every(self.reclaim_seconds, self._reclaim)),
        ]
        await self._note_presence("join", self.presence.join())
        log.info("worker %s started (concurrency %d)", self.worker_id, self.concurrency)
        _BACKLOGS.add(self.backlog)
        try:
            await self._loop()
        finally:
            try:
                await self._drain()
            finally:
                _BACKLOGS.discard(self.backlog)
            for chore in chores:
                chore.cancel()
            await asyncio.gather(*chores, return_exceptions=True)
            await self._note_presence("leave", self.presence.leave())
            if listener is not None:
                await listener.close()
            await self.chores.close()
            try:
                await asyncio.wait_for(self.registry.close(), 5)
            except TimeoutError:
                log.warning("closing the handlers' connections took over 5 s; left them")
            log.info("worker %s stopped; %s", self.worker_id, self.drained.line())

    async def _loop(self) -> None:
        backoff = 0.05
        while not self._stopping.is_set():
            # Clear before claiming: a NOTIFY that arrives during the claim must wake us.
            self._wake.clear()
            self._claim_now = False
            free = self.concurrency - len(self._tasks)
            await self._release(self.backlog.expired())
            now = self.clock()
            for job in self.backlog.take(free):
                self._spawn(dataclasses.replace(job, claimed_at=now))
                free -= 1
            jobs: list[ClaimedJob] = []
            if free > 0:
                try:
                    jobs = await self.queue.claim(free)
                    backoff = 0.05
                except Exception as exc:
                    # A lost connection, a deadlock with a cancel, or anything else: the
                    # loop must outlive it, so try again shortly.
                    log.warning("claim failed: %s; retrying in %.2fs", exc, backoff)
                    await asyncio.sleep(backoff)
                    backoff = min(backoff * 2, 2.0)
                    continue
                if jobs:
                    metrics.JOBS_CLAIMED.inc(len(jobs))
                for job in jobs:
                    self._spawn(job)
            if jobs and len(jobs) == free:
                continue  # there may be more; claim again once a slot is free
            if len(jobs) < free and self._due_stale:
                await self._read_next_due()
            await self._sleep()

    async def _read_next_due(self) -> None:
        """Learn when the earliest job kept for later falls due (nothing else is due:
        the claim left slots free). A notification that arrives meanwhile is kept."""
        loop = asyncio.get_running_loop()
        known, self._due_at = self._due_at, None
        try:
            seconds = await self.queue.next_due()
        except Exception as exc:
            log.warning("reading the next due time failed: %s", exc)
            self._due_at = _earliest(known, self._due_at)
            return
        self._due_stale = False
        if seconds is not None:
            # A job due already (it fell due just after the claim) is claimed at once; the
            # floor keeps a job another worker is claiming right now from spinning this loop.
            self._due_at = _earliest(self._due_at, loop.time() + max(seconds, 0.005))

    async def _sleep(self) -> None:
        """Until woken to claim, the earliest due time or the poll, whichever comes
        first. After a due time or the poll, the next due time is read again: the job
        may have been another worker's to take, and later ones were not all noted."""
        loop = asyncio.get_running_loop()
        poll_at = loop.time() + self.poll_seconds
        while not self._claim_now:
            due = self._due_at
            until = poll_at if due is None else min(poll_at, due)
            held = self.backlog.expires_at()
            if held is not None:  # a backlog's job may have to go back to the queue
                until = min(until, loop.time() + max(held - time.monotonic(), 0.0))
            if not await wait_set(self._wake, until - loop.time()):
                if due is not None and due <= loop.time():
                    self._due_at = None
                self._due_stale = True
                return
            if not self._claim_now:
                self._wake.clear()  # a sooner due time: sleep again, until then

    def _spawn(self, job: ClaimedJob) -> None:
        task = asyncio.create_task(self._run_chain(job), name=f"step-{job.node_id}")
        self._tasks[task] = job
        task.add_done_callback(self._done)

    def _done(self, task: asyncio.Task[None]) -> None:
        self._tasks.pop(task, None)
        self._kick()
        if not task.cancelled() and task.exception() is not None:
            log.error("step task failed", exc_info=task.exception())

    async def _run_chain(self, job: ClaimedJob | None) -> None:
        """Run a job; when its completion hands back the next step, run that too."""
        tokens: set[uuid.UUID] = set()
        try:
            await self._run_jobs(job, tokens)
        finally:
            # Whatever ended the chain (an error included), nothing of it stays behind.
            for token in tokens:
                self._seen.pop(token, None)
                self._stop_reason.pop(token, None)
                self._started.pop(token, None)
                self._running.pop(token, None)

    async def _run_jobs(self, job: ClaimedJob | None, tokens: set[uuid.UUID]) -> None:
        while job is not None:
            current = asyncio.current_task()
            if current is not None:
                self._tasks[current] = job
            token = job.lease_token
            tokens.add(token)
            self._running[token] = job
            try:
                outcome = await self._execute_retrying(job)
                starting = self._starting.pop(token, None)
                if starting is not None:
                    await starting
            finally:
                # No longer running: from here on the task itself ends the lease (its
                # outcome written, or the job given back), which is no loss.
                self._running.pop(token, None)
            if token in self._started:
                known = self._started.pop(token)
                job = dataclasses.replace(job, start_pending=False, known_steps=known)
            reason = self._stop_reason.pop(token, None)
            if outcome is None and reason == "shutdown":
                # Stopped before it finished: back to the queue at once, not at lease expiry.
                with contextlib.suppress(*_DB_ERRORS, asyncpg.PostgresError):
                    if await self.queue.release([job]):
                        self.drained.gave_back += 1
                return
            if outcome is None or reason in ("lost", "cancelled"):
                return  # another worker has the job now, or the run was cancelled
            take = self.take_next and not self._stopping.is_set()
            job = await self._record(job, outcome, take)

    async def _execute_retrying(self, job: ClaimedJob) -> Outcome | None:
        """Run the step; reading its context survives a lost connection. None: the step
        was stopped, or loading failed for good (the lease expires and the step runs
        again elsewhere)."""
        delay = 0.05
        for _ in range(10):
            try:
                return await self._execute(job)
            except _DB_ERRORS as exc:
                log.warning("loading %s failed: %s; retrying", job.node_id, exc)
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
        return None

    async def _secret_values(
        self, job: ClaimedJob, names: frozenset[str]
    ) -> dict[str, str] | Failed:
        """The values of the secrets a step reads, or the step's failure when one is not
        set (deleted since the save) or cannot be read. The failure names secrets only."""
        if self.keyring is None or self.keyring.current is None:
            listed = ", ".join(sorted(names))
            return Failed({"message": f"The step reads secrets ({listed}) and this worker "
                                      "has no secret key (FLOWSYNC_SECRET_KEY).",
                           "code": "secret_key_missing"})  # fmt: skip
        try:
            async with self.pool.acquire() as conn:
                values = await read_secret_values(conn, self.keyring, job.owner_id, names)
        except SecretUnreadable as exc:
            return Failed({"message": exc.message, "code": exc.code})
        missing = sorted(names - values.keys())
        if missing:
            return Failed({"message": f"The step reads secrets that are not set: "
                                      f"{', '.join(missing)} (deleted since the workflow was "
                                      "saved?).", "code": "secret_not_set"})  # fmt: skip
        return values

    async def _execute(self, job: ClaimedJob) -> Outcome | None:
        # Log lines name the step (and the run's trace, when it has one).
        bind_step(job.execution_id, job.step_id, job.node_id, trace_id_of(job.trace_context))
        redactor = NO_SECRETS
        values: dict[str, str] = {}
        if job.attempts > job.max_attempts + CRASH_ALLOWANCE:
            return Failed(
                {"message": f"The step was started {job.attempts} times and its worker was "
                            "lost each time; it is not tried again.", "code": "worker_lost"}
            )  # fmt: skip
        try:
            workflow = await self.workflows.get(job.workflow_version_id)
            node = workflow.nodes[job.node_id]
            handler = self.registry.get(node.type)
            outputs: dict[str, Any] | None = job.known_outputs
            if outputs is None and handler.needs_steps(node):
                # Only the outputs the step reads: found by QA, each step that read one
                # output loaded all of its run's (a run of a hundred 3 MB outputs, read by
                # a few steps at once, took gigabytes of the worker's memory).
                wanted = _steps_read(workflow, node)
                if wanted is None:
                    rows = await self.pool.fetch(QUERIES["step_outputs"], job.execution_id)
                else:
                    rows = await self.pool.fetch(
                        QUERIES["step_outputs_of"], job.execution_id, sorted(wanted),
                        SMALL_OUTPUT_BYTES,
                    )  # fmt: skip
                outputs = {r["node_id"]: r["output"] for r in rows if r.get("loaded", True)}
            variables = build_variables(job, outputs or {})
            if node.secret_names:
                found = await self._secret_values(job, node.secret_names)
                if isinstance(found, Failed):
                    return found
                variables[SECRETS] = values = found
                redactor = Redactor(values)
            ctx = StepContext(
                job=job,
                node=node,
                workflow=workflow,
                variables=variables,
                now=self.clock(),
            )
            # Passed on to the next step only when they are all of the run's: _carried
            # compares them with the completed steps (some large ones may be left out).
            self._seen[job.lease_token] = outputs
            if job.lease_token in self._stop_reason:
                return None
            started = time.perf_counter()
            traced = tracing.step_started(job) if tracing.enabled() else None
            # The handler runs as a task of its own, so that stopping a step cancels the
            # handler's work and never this task's database calls. A traced step's span
            # is current in it (its HTTP call is a child).
            if traced is not None:
                traced.attach()
            try:
                inner = asyncio.ensure_future(handler.run(ctx))
            finally:
                if traced is not None:
                    traced.detach()
            self._handler_tasks[job.lease_token] = inner
            # A claim writes only its job: a step that is still running after
            # start_seconds has its start written then; a quicker one's start is
            # written with its outcome.
            timer = None
            if job.start_pending:
                timer = asyncio.get_running_loop().call_later(
                    self.start_seconds, self._write_start, job
                )
            error: str | None = "stopped"
            ran = False  # the handler returned or raised: not stopped
            try:
                with LIVE.using(values):  # log lines meanwhile are redacted too
                    result = redacted(await inner, redactor)
                ran = True
                if isinstance(result, Failed):
                    error = str(result.error.get("message", "failed"))
                else:
                    error = None
                return result
            except asyncio.CancelledError:
                current = asyncio.current_task()
                if inner.cancelled() and current is not None and not current.cancelling():
                    return None  # stopped by _stop_step
                inner.cancel()
                raise
            except Exception as exc:
                ran = True
                error = str(getattr(exc, "message", None) or type(exc).__name__)
                raise
            finally:
                if traced is not None:  # its error, too, without a secret's value
                    traced.end(None if error is None else redactor.text(error))
                if timer is not None:
                    timer.cancel()
                self._handler_tasks.pop(job.lease_token, None)
                took = time.perf_counter() - started
                metrics.STEP_DURATION.labels(job.node_type).observe(took)
                if ran:  # a stopped step's time says nothing of how long the node takes
                    self.backlog.durations.add(
                        (job.workflow_version_id, job.node_id, job.node_type), took
                    )
        except asyncio.CancelledError:
            raise
        except _DB_ERRORS:
            raise
        except Exception as exc:
            from flowsync.errors import StepFailed

            if isinstance(exc, StepFailed):
                message = redactor.text(exc.message)
                return Failed({"message": message, "code": exc.code}, retryable=exc.retryable)
            if redactor:
                # The traceback could quote a secret's value: its type and redacted text.
                log.error("handler for %s (%s) raised %s: %s", job.node_id, job.node_type,
                          type(exc).__name__, redactor.text(str(exc)))  # fmt: skip
                return Failed(
                    {
                        "message": f"Internal error in the {job.node_type} handler.",
                        "code": "internal_error",
                    }
                )
            log.exception("handler for %s (%s) raised", job.node_id, job.node_type)
            return Failed(
                {
                    "message": f"Internal error in the {job.node_type} handler.",
                    "code": "internal_error",
                }
            )

    def _write_start(self, job: ClaimedJob) -> None:
        """Write the start of a step that is still running (see _execute); its task
        waits for this before it writes the step's outcome."""
        self._starting[job.lease_token] = asyncio.create_task(self._start(job))

    async def _start(self, job: ClaimedJob) -> None:
        try:
            self._started[job.lease_token] = await self.orchestrator.mark_started(job)
        except LeaseLost:
            self._stop_step(job, "lost")  # cancelled, or taken over: stop working on it
        except (*_DB_ERRORS, asyncpg.PostgresError) as exc:
            log.warning("writing the start of %s failed: %s; written with its outcome",
                        job.node_id, exc)  # fmt: skip

    async def _record(self, job: ClaimedJob, outcome: Outcome, take: bool) -> ClaimedJob | None:
        """Write the outcome (the job is out of _running meanwhile: its lease disappears
        when the write commits, which is not a loss). Retried across connection losses
        and lock timeouts while the lease lasts."""
        known = self._seen.pop(job.lease_token, None)
        delay = 0.05
        for _ in range(40):
            try:
                if isinstance(outcome, ChildRun):
                    # A child workflow's step: started or looked at in a transaction of
                    # its own; recorded below once the child has ended.
                    resolved = await self.orchestrator.run_child(job, outcome)
                    if resolved is None:
                        metrics.JOBS_COMPLETED.labels("waiting").inc()
                        return None
                    if resolved[0] == "completed":
                        outcome = Completed(resolved[1])
                    else:
                        outcome = Failed(resolved[1])
                if isinstance(outcome, Completed):
                    result = await self.orchestrator.complete(
                        job, outcome.output, take_next=take, known_outputs=known
                    )
                    self.completed += 1
                    metrics.JOBS_COMPLETED.labels("completed").inc()
                    return result
                if isinstance(outcome, Waiting):
                    await self.orchestrator.wait(job, outcome.until, outcome.stored)
                    metrics.JOBS_COMPLETED.labels("waiting").inc()
                    return None
                if outcome.retryable and job.attempts < job.max_attempts and outcome.retry_at:
                    await self.orchestrator.retry(job, outcome.error, outcome.retry_at)
                    metrics.JOBS_COMPLETED.labels("retrying").inc()
                    metrics.RETRIES.inc()
                    return None
                await self.orchestrator.fail(job, outcome.error)
                metrics.JOBS_COMPLETED.labels("failed").inc()
                return None
            except LeaseLost as exc:
                log.warning("%s", exc.message)
                metrics.JOBS_COMPLETED.labels("lease_lost").inc()
                return None
            except _DB_ERRORS as exc:
                log.warning("recording %s failed: %s; retrying", job.node_id, exc)
                if isinstance(exc, _LOCK_WAITS) and not await self._keep_lease(job):
                    log.warning("lost the lease on %s (%s) while it waited to be recorded; "
                                "its result is dropped", job.node_id, job.job_id)  # fmt: skip
                    metrics.JOBS_COMPLETED.labels("lease_lost").inc()
                    return None
                await asyncio.sleep(delay)
                delay = min(delay * 2, 1.0)
            except Exception as exc:
                unstorable = codec.unstorable(exc)
                if unstorable is None:
                    raise
                # What the step produced cannot be stored (a NUL in its output): it fails
                # now, saying where, instead of running again until its worker is lost.
                outcome = Failed({"message": unstorable.message, "code": "output_unstorable"})
        log.error("gave up recording %s; its lease will expire and it runs again", job.node_id)
        return None

    async def _keep_lease(self, job: ClaimedJob) -> bool:
        """Extend the lease of a job whose write waited for a lock as long as allowed
        (the heartbeat left it alone, locked); False when the lease is gone. A failure
        to tell is not a loss: the write, tried again, finds out."""
        try:
            async with self.chores.use() as conn:
                alive = await self.queue.extend([job.lease_token], conn)
        except (*_DB_ERRORS, asyncpg.PostgresError) as exc:
            log.warning("extending the lease of %s failed: %s", job.node_id, exc)
            return True
        return job.lease_token in alive

    async def _every(self, seconds: float, fn: Callable[[], Any]) -> None:
        """Run a chore periodically; no failure may end it (heartbeats and the reclaim
        of dead workers' jobs must outlive any error)."""
        while True:
            await asyncio.sleep(seconds)
            try:
                await fn()
            except _DB_ERRORS as exc:
                log.warning("%s failed: %s", getattr(fn, "__name__", fn), exc)
            except Exception:
                log.exception("%s failed", getattr(fn, "__name__", fn))

    async def _heartbeat(self) -> None:
        """Extend the leases held; then, whatever became of that, tell the workers table
        that this process lives and how many steps it runs. On the chore connection:
        never behind a step's statement, nor waiting for the pool."""
        try:
            await self._extend_leases()
        finally:
            await self._note_presence("heartbeat", self._beat())

    async def _beat(self) -> None:
        async with self.chores.use() as conn:
            await self.presence.beat(len(self._tasks), conn)

    async def _note_presence(self, what: str, call: Awaitable[None]) -> None:
        """The workers table is for people to look at: failing to write it is logged and
        never stops the worker or its leases."""
        try:
            await call
        except Exception as exc:
            log.warning("writing the workers table (%s) failed: %s", what, exc)

    async def _extend_leases(self) -> None:
        kept = self.backlog.tokens()
        tokens = list({job.lease_token for job in self._tasks.values()} | set(kept))
        if not tokens:
            return
        running = dict(self._running)
        async with self.chores.use() as conn:
            alive = await self.queue.extend(tokens, conn)
        lost = set(kept) - alive
        if lost:  # reclaimed (this worker looked dead) or cancelled: not ours any more
            self.backlog.drop(lambda job: job.lease_token not in lost)
        for token, job in running.items():
            # Only a job still running, as it was when the heartbeat began, has lost
            # its lease: one whose outcome was written meanwhile (its task took it out
            # of _running first), or whose task moved on, or ended, has not.
            if token not in alive and self._running.get(token) is job:
                log.warning("lost the lease on %s (%s); stopping it", job.node_id, job.job_id)
                self._stop_step(job, "lost")

    async def _reclaim(self) -> None:
        async with self.chores.use() as conn:
            count = await self.queue.reclaim_expired(conn)
        if count:
            log.warning("returned %d job(s) with an expired lease to the queue", count)

    async def _release(self, jobs: list[ClaimedJob]) -> int:
        """Give backlog jobs back to the queue (they waited too long, or the worker
        stops); one that cannot be given back now is left to its lease's expiry. How
        many were given back (a cancel may have deleted some)."""
        if not jobs:
            return 0
        try:
            return await self.queue.release(jobs)
        except (*_DB_ERRORS, asyncpg.PostgresError) as exc:
            log.warning("giving back %d waiting step(s) failed: %s; they run again when "
                        "their leases expire", len(jobs), exc)  # fmt: skip
            return 0

    async def _drain(self) -> None:
        """Give the backlog back; let running steps finish within the grace period; stop
        the rest, which give their jobs back to the queue at once."""
        await self._give_back_backlog()
        if not self._tasks:
            return
        self.drained.in_flight += len(self._tasks)
        _done, still = await asyncio.wait(list(self._tasks), timeout=self.grace_seconds)
        for task in still:
            job = self._tasks.get(task)
            if job is not None and self._running.get(job.lease_token) is job:
                self._stop_step(job, "shutdown")
        if still:
            _done, stuck = await asyncio.wait(still, timeout=10)
            for task in stuck:  # last resort: a step stuck outside its handler
                task.cancel()
            self.drained.abandoned = len(stuck)
            await asyncio.gather(*stuck, return_exceptions=True)
        # A write planned before the stop may have kept steps since.
        await self._give_back_backlog()

    async def _give_back_backlog(self) -> None:
        kept = self.backlog.take(len(self.backlog))
        if not kept:
            return
        # Counted as given back (and held) only when they were: a cancel may have
        # deleted some, and a failure leaves them to their leases' expiry.
        given = await self._release(kept)
        self.drained.in_flight += given
        self.drained.gave_back += given


NO_SECRETS = Redactor({})


def redacted(outcome: Outcome, redactor: Redactor) -> Outcome:
    """`outcome` with the values of the secrets its step read replaced by their marks."""
    if not redactor:
        return outcome
    if isinstance(outcome, Completed):
        return Completed(redactor.value(outcome.output))
    if isinstance(outcome, Failed):
        return dataclasses.replace(outcome, error=redactor.value(outcome.error))
    if isinstance(outcome, Waiting):
        return dataclasses.replace(outcome, stored=redactor.value(outcome.stored))
    return dataclasses.replace(outcome, input=redactor.value(outcome.input))


def _earliest(a: float | None, b: float | None) -> float | None:
    return b if a is None else a if b is None else min(a, b)
