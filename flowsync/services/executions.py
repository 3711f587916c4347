"""The execution service: start, read, list and cancel executions, for every face."""

from __future__ import annotations

import asyncio
import builtins
import time
import uuid
from collections.abc import Awaitable, Callable, Sequence
from contextvars import ContextVar
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, NoReturn, TypeVar

import asyncpg
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker
from sqlalchemy.orm.attributes import set_committed_value

from flowsync import codec, metrics, tracing
from flowsync.db.models import (
    Execution,
    ExecutionEvent,
    StepExecution,
    Workflow,
    among,
    loaded_many,
)
from flowsync.engine.fairness import checked_priority
from flowsync.engine.orchestrator import Orchestrator, retrying
from flowsync.errors import Backpressure, InvalidInput, NotFound, Problem, UnstorableValue, shown
from flowsync.services import audit
from flowsync.services.inputs import checked_json, checked_json_size, parse_id
from flowsync.services.pagination import Page, decode_cursor, encode_cursor, page_size
from flowsync.services.principal import Principal, require
from flowsync.services.signals import Signalled, check_known, checked_signal
from flowsync.worker.queue import QUERIES, Connection

T = TypeVar("T")

# Set inside `ExecutionService.admitted`: a start_in over the limit lets _OverLimit out
# (its transaction rolls back) for admitted to count again, as `start` does.
_RECOUNTING: ContextVar[bool] = ContextVar("flowsync_admission_recounting", default=False)

STATUSES = ("PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED")
MAX_INPUT_BYTES = 1024 * 1024
MAX_KEY_LENGTH = 255

_EVENTS_AFTER_SQL = """
SELECT execution_id, sequence, id, owner_id, workflow_id, kind, status, step_id, node_id,
       attempt, data, at
  FROM execution_events
 WHERE execution_id = $1 AND owner_id = $2 AND sequence > $3
 ORDER BY sequence
 LIMIT $4
"""

# The workflow a start runs, with the admission lock taken shared: every start holds it
# until it commits, so that a count of the due jobs sees all of its jobs or none (see
# ExecutionService._admit). The workflow's row is held FOR KEY SHARE until then too, once
# per start or batch: runs have no key to their workflow (migration 0021), so this is what
# makes a deletion of the workflow wait for the start and then take its runs. So is the
# trigger's that starts it, read once (`trigger_held`: NULL when it is gone), whose
# deletion then clears the run's trigger_id (migration 0022).
_LOCKED_WORKFLOW_SQL = """
SELECT w.id, w.name, w.version, w.max_concurrency, v.id AS version_id,
       t.max_concurrent_runs AS trigger_limit, t.priority AS trigger_priority,
       t.held AS trigger_held, pg_advisory_xact_lock_shared(1181511543, 1)
  FROM workflows w
  JOIN workflow_versions v ON v.workflow_id = w.id AND v.version = w.version
  LEFT JOIN LATERAL (SELECT max_concurrent_runs, priority, true AS held FROM triggers
                      WHERE id = $3::uuid FOR KEY SHARE) t ON true
 WHERE w.id = $1 AND w.owner_id = $2 AND w.deleted_at IS NULL
   FOR KEY SHARE OF w
"""

_WORKFLOW_SEEN_SQL = """
SELECT true FROM workflows WHERE id = $1 AND owner_id = $2 AND deleted_at IS NULL
"""


@dataclass(frozen=True, slots=True)
class StartItem:
    """One execution of a batch start: its input (None: {}) and optional idempotency key."""

    input: Any = None
    idempotency_key: str | None = None


def _checked_item(index: int, item: StartItem) -> tuple[Any, str]:
    """The checks `_checked_start` makes, for item `index` of a batch: its input and the
    input as the JSON text stored (encoded once, for the checks and the statement), or
    the error naming the item (`$.inputs[3].input`)."""
    where = f"$.inputs[{index}]"
    key = item.idempotency_key
    if key is not None and not 1 <= len(key) <= MAX_KEY_LENGTH:
        raise InvalidInput(
            f"The idempotency key of {where} must be 1 to 255 characters.",
            [Problem(f"{where}.idempotencyKey", "must be 1 to 255 characters")],
        )
    value = {} if item.input is None else item.input
    data = checked_json(value, f"{where}.input", MAX_INPUT_BYTES)
    try:
        codec.refuse_nul(data, value)
    except UnstorableValue as exc:
        # Its path is within the input ($...): named within the batch instead.
        inner = exc.details[0].path[1:] if exc.details else ""
        raise UnstorableValue(
            exc.message, [Problem(f"{where}.input{inner}", "holds a NUL character (\\u0000)")]
        ) from exc
    return value, data.decode()


def _checked_start(
    workflow_id: object, input: Any, idempotency_key: str | None
) -> tuple[uuid.UUID, Any]:
    """The checks every start makes before touching the database: (workflow id, input)."""
    wid = parse_id(workflow_id, "workflow")
    if input is None:
        input = {}
    checked_json_size(input, "$.input", MAX_INPUT_BYTES)
    _checked_key(idempotency_key)
    return wid, input


def _checked_key(idempotency_key: str | None) -> None:
    """InvalidInput unless the idempotency key, if any, is 1 to 255 characters."""
    if idempotency_key is not None and not 1 <= len(idempotency_key) <= MAX_KEY_LENGTH:
        raise InvalidInput(
            "An idempotency key must be 1 to 255 characters.",
            [Problem("idempotencyKey", "must be 1 to 255 characters")],
        )


# A run's steps in the order they were queued; steps queued together (a fork's
# branches; the start node and what follows it, written with the run) in the order they
# started, then by node id.
_STEP_ORDER = (
    StepExecution.queued_at.asc().nulls_last(),
    StepExecution.started_at.asc().nulls_last(),
    StepExecution.node_id,
)


@dataclass(frozen=True, slots=True)
class _Count:
    """Due jobs counted with every start held back, the newest job id handed out then,
    and when (monotonic seconds)."""

    due: int
    newest_id: int
    at: float


class _OverLimit(Exception):
    """A start's admission found more jobs due before it than the limit, by a count
    taken at `counted_at`; a newer count may admit it."""

    def __init__(self, counted_at: float):
        super().__init__()
        self.counted_at = counted_at


@dataclass(frozen=True, slots=True)
class Started:
    """The result of a start: the execution, and whether this call created it."""

    execution: Execution
    created: bool


class ExecutionService:
    """Executions of the caller's workflows."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        pool: asyncpg.Pool,
        orchestrator: Orchestrator,
        *,
        max_queue_depth: int = 100_000,
        depth_ttl: float = 1.0,
        max_batch_starts: int = 1000,
    ):
        self._sessions = sessions
        self._pool = pool
        self._orchestrator = orchestrator
        self._max_depth = max_queue_depth
        self._count: _Count | None = None
        self._counting = asyncio.Lock()
        self._depth_ttl = depth_ttl
        self._max_batch = max_batch_starts

    async def start(
        self,
        principal: Principal,
        workflow_id: object,
        input: Any = None,
        *,
        idempotency_key: str | None = None,
        trigger_id: uuid.UUID | None = None,
        trigger_type: str = "MANUAL",
        trigger_data: dict[str, Any] | None = None,
        priority: object = None,
    ) -> Started:
        """Start the workflow's current version with `input`. A repeated idempotency key
        returns the first execution (created=False) and starts nothing. `priority`
        (-100..100, higher first; None: the trigger's, else the definition's)."""
        require(principal, "ExecutionService.start")
        wid, input = _checked_start(workflow_id, input, idempotency_key)
        given = checked_priority(priority)
        if idempotency_key is not None:
            # A repeat returns the first execution, even while new starts are refused.
            existing = await self._pool.fetchval(
                QUERIES["execution_by_key"], principal.owner_id, idempotency_key
            )
            if existing is not None:
                return Started(await self.get(principal, existing), False)
        await self.check_backpressure()
        for last in (False, True):
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    execution_id, created = await self._start_in(
                        conn, principal, wid, input, idempotency_key=idempotency_key,
                        trigger_id=trigger_id, trigger_type=trigger_type,
                        trigger_data=trigger_data, admit=True, priority=given,
                    )  # fmt: skip
                break
            except _OverLimit as over:
                await self._recount(over, last)
        if created:
            metrics.EXECUTIONS_STARTED.inc()
        return Started(await self.get(principal, execution_id), created)

    async def start_many(
        self,
        principal: Principal,
        workflow_id: object,
        items: Sequence[StartItem],
        priority: object = None,
    ) -> builtins.list[Started]:
        """Start the workflow's current version once per item, in one transaction:
        all of them or (on any error) none. Checked as `start` checks one start, with
        each problem named by its item (`$.inputs[3].idempotencyKey`); at most
        `max_batch_starts` items. An item whose idempotency key was used before (or
        earlier in the batch) starts nothing: its place holds that execution
        (created=False). Admitted as one start would be in the place of the batch's
        last (so the whole batch is refused while `start`s would be), and behind a
        concurrency limit, the runs over it wait PENDING in the batch's order. Returns
        one result per item, in order. `priority`: every run's (see `start`)."""
        require(principal, "ExecutionService.start_many")
        wid = parse_id(workflow_id, "workflow")
        given = checked_priority(priority)
        if len(items) > self._max_batch:
            raise InvalidInput(
                f"A batch may start at most {self._max_batch} executions; "
                f"this one has {len(items)}.",
                [Problem("$.inputs", f"{len(items)} items, over the limit of {self._max_batch}")],
            )
        checked = [_checked_item(i, item) for i, item in enumerate(items)]
        inputs = [value for value, _ in checked]
        texts = [text for _, text in checked]
        keys = [item.idempotency_key for item in items]
        # The first item with each key starts it; a later one returns the same execution.
        first: dict[str, int] = {}
        new = [i for i, key in enumerate(keys) if key is None or first.setdefault(key, i) == i]
        used = await self._used_keys(principal, [keys[i] for i in new])
        new = [i for i in new if keys[i] not in used]
        if not new:
            # Repeats only (or no items): not refused, as a repeated single start is
            # not; still a 404 for a workflow the caller has not.
            if not await self._pool.fetchval(_WORKFLOW_SEEN_SQL, wid, principal.owner_id):
                raise NotFound(f"No workflow with id {wid}.")
            return await self._results(principal, keys, used, {})
        await self.check_backpressure()
        for last in (False, True):
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    created = await self._start_many_in(
                        conn,
                        principal,
                        wid,
                        [inputs[i] for i in new],
                        [texts[i] for i in new],
                        [keys[i] for i in new],
                        given,
                    )
                break
            except _OverLimit as over:
                await self._recount(over, last)
        metrics.EXECUTIONS_STARTED.inc(len(created))
        made = {new[place]: execution for place, execution in created.items()}
        raced = [keys[i] for i in new if i not in made]
        if raced:  # keys another call used in the meantime
            used.update(await self._used_keys(principal, raced))
        return await self._results(principal, keys, used, made)

    async def _start_many_in(
        self,
        conn: Connection,
        principal: Principal,
        wid: uuid.UUID,
        inputs: builtins.list[Any],
        texts: builtins.list[str],
        keys: builtins.list[str | None],
        priority: int | None = None,
    ) -> dict[int, Execution]:
        """start_many's transaction: the executions it created, by place in `inputs`
        (`texts`: each as its stored JSON), as it wrote them."""
        began = tracing.start_time()
        row = await conn.fetchrow(_LOCKED_WORKFLOW_SQL, wid, principal.owner_id, None)
        if row is None:
            raise NotFound(f"No workflow with id {wid}.")
        run_now = len(inputs)
        if row["max_concurrency"] is not None:
            limit = await conn.fetchrow(QUERIES["lock_workflow_limit"], wid)
            if limit is not None and limit["max_concurrency"] is not None:
                run_now = max(limit["max_concurrency"] - limit["running"], 0)
        created, before = await self._orchestrator.start_many(
            conn, owner_id=principal.owner_id, workflow_id=wid, version_id=row["version_id"],
            version=row["version"], inputs=inputs, texts=texts, keys=keys, run_now=run_now,
            priority=priority,
        )  # fmt: skip
        if not created:
            return {}
        rows = loaded_many(Execution, [row for _, row in created])
        made = {place: execution for (place, _), execution in zip(created, rows, strict=True)}
        ids = [row["id"] for _, row in created]
        count = self._count
        assert count is not None  # check_backpressure ran first
        # Admitted as the batch's last start would be: every job before it counts,
        # the batch's own earlier ones too.
        if count.due + max(before - count.newest_id, 0) > self._max_depth:
            raise _OverLimit(count.at)
        if began is not None:
            # One trace per run (under the caller's, when the request carried one).
            traced = [
                tracing.execution_started(began, row["name"], eid, wid, "MANUAL") for eid in ids
            ]
            await conn.execute(QUERIES["set_trace_context"], ids, traced)
            for execution, context in zip(made.values(), traced, strict=True):
                set_committed_value(execution, "trace_context", context)
        # One entry for the batch, the one change its caller made (as a backfill's): an
        # entry per run was a fifth of the server's CPU in a batch start, five index
        # entries each, all appended to the same pages by every batch in flight.
        data = {"version": row["version"], "trigger": "MANUAL", "count": len(ids),
                "executionIds": [str(eid) for eid in ids]}  # fmt: skip
        await audit.record_in(conn, principal, "execution.batch_started", "workflow", wid, data)
        return made

    async def _used_keys(
        self, principal: Principal, keys: builtins.list[str | None]
    ) -> dict[str, uuid.UUID]:
        given = [k for k in keys if k is not None]
        if not given:
            return {}
        rows = await self._pool.fetch(QUERIES["executions_by_keys"], principal.owner_id, given)
        return {r["idempotency_key"]: r["id"] for r in rows}

    async def _results(
        self,
        principal: Principal,
        keys: builtins.list[str | None],
        used: dict[str, uuid.UUID],
        created: dict[int, Execution],
    ) -> builtins.list[Started]:
        """One Started per item: the execution it created, or the one its key names
        (read here: only those are)."""
        by_key = {keys[i]: e for i, e in created.items() if keys[i] is not None}
        repeated = {used[key] for i, key in enumerate(keys)
                    if i not in created and key is not None and key not in by_key}  # fmt: skip
        rows = await self.get_many(principal, list(repeated)) if repeated else {}
        out: builtins.list[Started] = []
        for i, key in enumerate(keys):
            if i in created:
                out.append(Started(created[i], True))
            else:
                assert key is not None  # an item without a key always starts one
                out.append(Started(by_key.get(key) or rows[used[key]], False))
        return out

    async def start_in(
        self,
        conn: Connection,
        principal: Principal,
        workflow_id: object,
        input: Any = None,
        *,
        idempotency_key: str | None = None,
        trigger_id: uuid.UUID | None = None,
        trigger_type: str = "MANUAL",
        trigger_data: dict[str, Any] | None = None,
        backpressure: bool = False,
        priority: object = None,
    ) -> tuple[uuid.UUID, bool]:
        """`start` inside the caller's open transaction on `conn` (a cron firing commits
        its firing row and its execution together): the same checks, locks and audit
        entry, committed or rolled back with the caller's work. Returns (execution id,
        created). It applies backpressure only when asked: call it so inside `admitted`,
        which admits it as `start` is admitted (or call `check_backpressure` first,
        before the transaction: a start over the limit then raises Backpressure, final,
        and the caller's transaction must roll back). It counts the start in the
        metrics when called, not on commit."""
        require(principal, "ExecutionService.start_in")
        wid, input = _checked_start(workflow_id, input, idempotency_key)
        given = checked_priority(priority)
        try:
            execution_id, created = await self._start_in(
                conn, principal, wid, input, idempotency_key=idempotency_key,
                trigger_id=trigger_id, trigger_type=trigger_type, trigger_data=trigger_data,
                admit=backpressure, priority=given,
            )  # fmt: skip
        except _OverLimit:
            # No count inside a transaction that holds the admission lock shared: the
            # count would wait for this very transaction.
            if _RECOUNTING.get():
                raise  # admitted() counts again once this transaction has rolled back
            self._refuse()
        if created:
            metrics.EXECUTIONS_STARTED.inc()
        return execution_id, created

    async def _start_in(
        self,
        conn: Connection,
        principal: Principal,
        wid: uuid.UUID,
        input: Any,
        *,
        idempotency_key: str | None,
        trigger_id: uuid.UUID | None,
        trigger_type: str,
        trigger_data: dict[str, Any] | None,
        admit: bool = False,
        priority: int | None = None,
    ) -> tuple[uuid.UUID, bool]:
        began = tracing.start_time()
        # Every start holds the admission lock shared until it commits, so that a count
        # of the due jobs sees all of its jobs or none (see _admit).
        row = await conn.fetchrow(_LOCKED_WORKFLOW_SQL, wid, principal.owner_id, trigger_id)
        if row is None:
            raise NotFound(f"No workflow with id {wid}.")
        if trigger_id is not None and row["trigger_held"] is None:
            raise NotFound(f"No trigger with id {trigger_id}.")  # deleted meanwhile
        run_now = True
        if row["trigger_limit"] is not None:
            # The trigger's maxConcurrentRuns: locked before the workflow (the order the
            # scheduler and a backfill, which hold the trigger already, keep too).
            limit = await conn.fetchrow(QUERIES["lock_trigger_limit"], trigger_id)
            run_now = limit is None or limit["running"] < limit["max_concurrent_runs"]
        if row["max_concurrency"] is not None:
            # Locks the workflow: starts and promotions of it take turns.
            limit = await conn.fetchrow(QUERIES["lock_workflow_limit"], wid)
            run_now = run_now and (limit is None or limit["running"] < limit["max_concurrency"])
        execution_id, created = await self._orchestrator.start(
            conn,
            owner_id=principal.owner_id,
            workflow_id=wid,
            version_id=row["version_id"],
            version=row["version"],
            input=input,
            idempotency_key=idempotency_key,
            trigger_id=trigger_id,
            trigger_type=trigger_type,
            trigger_data=trigger_data,
            run_now=run_now,
            # The start's, else its trigger's; None: the definition's.
            priority=priority if priority is not None else row["trigger_priority"],
        )
        if created and admit:
            await self._admit(conn, execution_id)
        if created and began is not None:
            traced = tracing.execution_started(began, row["name"], execution_id, wid, trigger_type)
            await conn.execute(QUERIES["set_trace_context"], [execution_id], [traced])
        if created:
            await audit.record_in(
                conn, principal, "execution.started", "execution", execution_id,
                {"workflowId": str(wid), "version": row["version"], "trigger": trigger_type},
            )  # fmt: skip
        return execution_id, created

    async def admitted(
        self,
        start: Callable[[], Awaitable[T]],
        principal: Principal,
        idempotency_key: str | None = None,
    ) -> T:
        """Run `start`, which opens a transaction (on a connection it takes only then)
        and calls `start_in(..., backpressure=True)` for `principal` in it, admitted by
        the rule `start` follows: refused at once while the last count is over the
        limit, unless `idempotency_key` was used before (its execution is returned);
        refused by a count older than itself, counted again after its transaction
        rolled back, and run once more. Refusals raise Backpressure."""
        if idempotency_key is not None and await self._pool.fetchval(
            QUERIES["execution_by_key"], principal.owner_id, idempotency_key
        ):
            # A repeat is not refused: start_in finds the key and queues nothing. (Should
            # it start one after all, its admission needs a count; any will do.)
            await self._counted(float("-inf"))
        else:
            await self.check_backpressure()
        for last in (False, True):
            token = _RECOUNTING.set(True)
            try:
                return await start()
            except _OverLimit as over:
                await self._recount(over, last)
            finally:
                _RECOUNTING.reset(token)
        raise AssertionError("unreachable: the second refusal is final")

    async def check_backpressure(self) -> None:
        """Refuse at once while the last count of due jobs (at most `depth_ttl` old) is
        over the limit: a start that would be refused does no work. The exact check is
        made as each start queues its jobs (see `_admit`)."""
        count = await self._counted(time.monotonic() - self._depth_ttl)
        if count.due > self._max_depth:
            self._refuse()

    async def _admit(self, conn: Connection, execution_id: uuid.UUID) -> None:
        """Inside a start's transaction, once its jobs are queued (holding the admission
        lock shared): refuse it if more jobs were due before it than the limit. Counted:
        the due jobs at the last count, plus every job queued since with an id below this
        start's newest, claimed or not (jobs leave the queue uncounted until the next
        count). So concurrent starts are admitted in the order of their jobs' ids, and
        none passes the limit with another: the due jobs a start finds before it never
        exceed the limit. Jobs that steps (not starts) were queueing while a count ran,
        and timers and retries that fell due since it, wait for the next count."""
        count = self._count
        assert count is not None  # check_backpressure ran first
        position = int(await conn.fetchval(QUERIES["admission_position"], execution_id))
        if count.due + max(position - count.newest_id, 0) > self._max_depth:
            raise _OverLimit(count.at)

    async def _recount(self, over: _OverLimit, last: bool) -> None:
        """A start was over the limit by the count it used: refuse it, or (the first
        time) count again, newer than that one, and refuse if that is over."""
        if last:
            self._refuse()
        count = await self._counted(over.counted_at)
        if count.due > self._max_depth:
            self._refuse()

    async def _counted(self, newer_than: float) -> _Count:
        """A count taken after `newer_than` (monotonic): the last one, or a new one.
        Callers in this process wait for one count, never count together. A count holds
        the admission lock exclusively: it waits for the starts in progress to commit
        (and new ones wait for it), so each start's jobs are either counted or newer
        than `newest_id`. Never called inside a transaction holding that lock."""
        async with self._counting:
            count = self._count
            if count is not None and count.at > newer_than:
                return count
            async with self._pool.acquire() as conn, conn.transaction():
                await conn.execute(QUERIES["admission_exclusive"])
                newest = int(await conn.fetchval(QUERIES["newest_job_id"]))
                due = int(await conn.fetchval(QUERIES["queue_depth_bounded"], self._max_depth + 1))
            self._count = _Count(due, newest, time.monotonic())
            metrics.QUEUE_DEPTH.set(due)
            return self._count

    def _refuse(self) -> NoReturn:
        metrics.BACKPRESSURE_REFUSALS.inc()
        raise Backpressure(
            f"The queue holds more than {self._max_depth} due jobs; "
            "new executions are refused for now. Retry shortly.",
            retry_after=5,
        )

    async def retry(
        self, principal: Principal, execution_id: object, *, idempotency_key: str | None = None
    ) -> Started:
        """A new execution from a failed (or cancelled) one's failed step on, reusing
        the outputs of the steps that completed; they are recorded as reused. A run is
        retried once (Conflict after that, as when it is not failed or cancelled, or its
        dead letter was redriven and it runs again). With `idempotency_key`, a repeat
        answers the first retry (created=False), even while new starts are refused; a
        key another execution used is a Conflict."""
        require(principal, "ExecutionService.retry")
        eid = parse_id(execution_id, "execution")
        _checked_key(idempotency_key)
        original = await self.get(principal, eid)  # owner check: another owner's is not found
        if idempotency_key is not None:
            used = await self._pool.fetchrow(
                QUERIES["retry_by_key"], principal.owner_id, idempotency_key
            )
            if used is not None and used["retry_of_id"] == eid:
                return Started(await self.get(principal, used["id"]), False)
            # Any other use of the key is refused by rerun, under the run's lock.
        await self.check_backpressure()
        began = tracing.start_time()
        for last in (False, True):
            try:
                async with self._pool.acquire() as conn, conn.transaction():
                    await conn.execute(QUERIES["admission_share"])
                    new_id, created = await self._orchestrator.rerun(conn, eid, idempotency_key)
                    if not created:  # a repeat that raced the first retry
                        break
                    await self._admit(conn, new_id)
                    if began is not None:
                        # A trace of its own (the caller's, if given), linked to the
                        # original run's.
                        wid = original.workflow_id
                        name = await conn.fetchval(QUERIES["workflow_name"], wid)
                        traced = tracing.execution_started(
                            began, str(name), new_id, wid, original.trigger_type,
                            retry_of=original.trace_context,
                        )  # fmt: skip
                        await conn.execute(QUERIES["set_trace_context"], [new_id], [traced])
                    await audit.record_in(
                        conn, principal, "execution.retried", "execution", new_id,
                        {"retryOf": str(eid)},
                    )  # fmt: skip
                break
            except _OverLimit as over:
                await self._recount(over, last)
        return Started(await self.get(principal, new_id), created)

    async def cancel(self, principal: Principal, execution_id: object) -> Execution:
        """Cancel a running execution (Conflict when it already ended)."""
        require(principal, "ExecutionService.cancel")
        eid = parse_id(execution_id, "execution")

        async def txn() -> None:
            async with self._pool.acquire() as conn, conn.transaction():
                owner = await conn.fetchval("SELECT owner_id FROM executions WHERE id = $1", eid)
                if owner != principal.owner_id:
                    raise NotFound(f"No execution with id {execution_id}.")
                await self._orchestrator.cancel(conn, eid, f"cancelled by {principal.actor}")
                await audit.record_in(conn, principal, "execution.cancelled", "execution", eid)

        # A worker failing the run at the same moment locks its job and the run before
        # the run's other jobs; when that meets the cancel in a cycle, the loser retries.
        await retrying(txn)
        await self._orchestrator.sweep(eid)
        return await self.get(principal, eid)

    async def signal_execution(
        self,
        principal: Principal,
        execution_id: object,
        name: str,
        payload: Any = None,
        *,
        first: Callable[[Connection], Awaitable[None]] | None = None,
    ) -> tuple[Execution, Signalled]:
        """Send signal `name` with `payload` to one of the caller's executions: the step
        waiting for it completes now with the payload as its output, or, when none waits
        yet, the signal is kept for the step that waits for it later. InvalidInput for a
        name no wait or approval node of the run's version waits for, or a bad approval
        payload; PayloadTooLarge over the limit; NotFound (also another owner's run);
        Conflict when the run has ended. The audit log records it (an approval as
        `execution.approved` or `execution.rejected`, with `by` and the comment).
        `first` runs at the start of the transaction (a webhook remembers its delivery's
        signature there, so that a refused signal leaves it unused)."""
        require(principal, "ExecutionService.signal_execution")
        eid = parse_id(execution_id, "execution")
        value = checked_signal(name, payload, principal.actor)

        async def txn() -> str | None:
            async with self._pool.acquire() as conn, conn.transaction():
                if first is not None:
                    await first(conn)
                owner = await conn.fetchval("SELECT owner_id FROM executions WHERE id = $1", eid)
                if owner != principal.owner_id:
                    raise NotFound(f"No execution with id {execution_id}.")
                node_id = await self._orchestrator.signal(
                    conn, eid, name, value, principal.actor,
                    known=lambda wf: check_known(name, wf),
                )  # fmt: skip
                action, data = "execution.signalled", {"name": name, "takenBy": node_id}
                if name == "approval":
                    action = "execution.approved" if value["approved"] else "execution.rejected"
                    data |= {"by": value["by"], "comment": value["comment"]}
                await audit.record_in(conn, principal, action, "execution", eid, data)
                return node_id

        node_id = await retrying(txn)
        return await self.get(principal, eid), Signalled(name, node_id)

    async def get(self, principal: Principal, execution_id: object) -> Execution:
        """The execution, or NotFound (also for another owner's)."""
        require(principal, "ExecutionService.get")
        eid = parse_id(execution_id, "execution")
        async with self._sessions() as session:
            found = (
                await session.execute(
                    select(Execution).where(
                        Execution.id == eid, Execution.owner_id == principal.owner_id
                    )
                )
            ).scalar_one_or_none()
        if found is None:
            raise NotFound(f"No execution with id {execution_id}.")
        return found

    async def steps(
        self, principal: Principal, execution_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, list[StepExecution]]:
        """The steps of several executions in one query (for DataLoaders), each list in
        the order the steps were queued; other owners' executions are left out."""
        require(principal, "ExecutionService.steps")
        out: dict[uuid.UUID, list[StepExecution]] = {eid: [] for eid in execution_ids}
        async with self._sessions() as session:
            rows = await session.execute(
                select(StepExecution)
                .join(Execution, Execution.id == StepExecution.execution_id)
                .where(
                    StepExecution.execution_id.in_(list(execution_ids)),
                    Execution.owner_id == principal.owner_id,
                )
                .order_by(StepExecution.execution_id, *_STEP_ORDER)
            )
            for step in rows.scalars():
                out[step.execution_id].append(step)
        return out

    async def list(
        self,
        principal: Principal,
        *,
        workflow_id: object = None,
        status: str | None = None,
        trigger_id: object = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Execution]:
        """The caller's executions, newest first, optionally of one workflow, status or
        trigger (the trigger that started them; a malformed or another owner's trigger id
        lists nothing). Each filter reads through an index (`ix_executions_trigger_page`
        for a trigger)."""
        require(principal, "ExecutionService.list")
        size = page_size(limit)
        stmt = select(Execution).where(Execution.owner_id == principal.owner_id)
        if workflow_id is not None:
            stmt = stmt.where(Execution.workflow_id == parse_id(workflow_id, "workflow"))
        if trigger_id is not None:
            try:
                tid = parse_id(trigger_id, "trigger")
            except NotFound:  # no trigger has it: the other parameters are still checked
                tid = uuid.UUID(int=0)
            stmt = stmt.where(Execution.trigger_id == tid)
        if status is not None:
            if status not in STATUSES:
                raise InvalidInput(
                    f"Unknown status {shown(status)!r}.",
                    [Problem("status", f"must be one of {', '.join(STATUSES)}")],
                )
            stmt = stmt.where(Execution.status == status)
        if cursor is not None:
            after = decode_cursor(cursor)
            stmt = stmt.where(
                or_(
                    Execution.created_at < after.created_at,
                    and_(
                        Execution.created_at == after.created_at,
                        Execution.id < uuid.UUID(after.id),
                    ),
                )
            )
        stmt = stmt.order_by(Execution.created_at.desc(), Execution.id.desc()).limit(size + 1)
        async with self._sessions() as session:
            rows = list((await session.execute(stmt)).scalars())
        more = len(rows) > size
        rows = rows[:size]
        return Page(rows, encode_cursor(rows[-1].created_at, rows[-1].id) if more else None)

    async def events(
        self, principal: Principal, execution_id: object, *, after: int = 0, limit: int = 1000
    ) -> builtins.list[ExecutionEvent]:
        """The execution's events with a sequence number above `after`, in order."""
        require(principal, "ExecutionService.events")
        eid = parse_id(execution_id, "execution")
        await self.get(principal, eid)
        async with self._sessions() as session:
            rows = await session.execute(
                select(ExecutionEvent)
                .where(ExecutionEvent.execution_id == eid, ExecutionEvent.sequence > after)
                .order_by(ExecutionEvent.sequence)
                .limit(limit)
            )
            return list(rows.scalars())

    # -- batched reads for DataLoaders and live subscriptions -----------------------------

    async def get_many(
        self, principal: Principal, execution_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, Execution]:
        """Several of the caller's executions by id, in one query; others are left out."""
        require(principal, "ExecutionService.get_many")
        async with self._sessions() as session:
            rows = await session.execute(
                select(Execution).where(
                    among(Execution.id, execution_ids),
                    Execution.owner_id == principal.owner_id,
                )
            )
            return {e.id: e for e in rows.scalars()}

    async def children(
        self, principal: Principal, execution_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, builtins.list[Execution]]:
        """The child runs (started by `workflow` steps) of several of the caller's
        executions, in one query, each list oldest first; others' are left out."""
        require(principal, "ExecutionService.children")
        out: dict[uuid.UUID, builtins.list[Execution]] = {eid: [] for eid in execution_ids}
        async with self._sessions() as session:
            rows = await session.execute(
                select(Execution)
                .where(
                    Execution.parent_execution_id.in_(list(execution_ids)),
                    Execution.owner_id == principal.owner_id,
                )
                .order_by(Execution.created_at, Execution.id)
            )
            for child in rows.scalars():
                if child.parent_execution_id is not None:
                    out[child.parent_execution_id].append(child)
        return out

    async def steps_by_id(
        self, principal: Principal, step_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, StepExecution]:
        """Several steps by id, in one query; other owners' steps are left out."""
        require(principal, "ExecutionService.steps_by_id")
        async with self._sessions() as session:
            rows = await session.execute(
                select(StepExecution)
                .join(Execution, Execution.id == StepExecution.execution_id)
                .where(
                    StepExecution.id.in_(list(step_ids)),
                    Execution.owner_id == principal.owner_id,
                )
            )
            return {s.id: s for s in rows.scalars()}

    async def timelines(
        self, principal: Principal, execution_ids: Sequence[uuid.UUID], *, limit: int = 1000
    ) -> dict[uuid.UUID, builtins.list[ExecutionEvent]]:
        """The first `limit` events of each of several executions, in one query, each list
        in sequence order; other owners' executions are left out."""
        require(principal, "ExecutionService.timelines")
        out: dict[uuid.UUID, builtins.list[ExecutionEvent]] = {eid: [] for eid in execution_ids}
        async with self._sessions() as session:
            rows = await session.execute(
                select(ExecutionEvent)
                .where(
                    ExecutionEvent.execution_id.in_(list(execution_ids)),
                    ExecutionEvent.owner_id == principal.owner_id,
                    ExecutionEvent.sequence <= limit,
                )
                .order_by(ExecutionEvent.execution_id, ExecutionEvent.sequence)
            )
            for event in rows.scalars():
                out[event.execution_id].append(event)
        return out

    async def events_after(
        self, principal: Principal, execution_id: uuid.UUID, after: int, *, limit: int = 500
    ) -> builtins.list[ExecutionEvent]:
        """Up to `limit` events of one execution with a sequence above `after`, in order,
        in one statement (empty for another owner's execution). Sequences of one execution
        commit in order, so reading after the last one delivered never skips an event.
        Live subscriptions call this on every change: it skips the ORM's session."""
        require(principal, "ExecutionService.events_after")
        rows = await self._pool.fetch(_EVENTS_AFTER_SQL, execution_id, principal.owner_id,
                                      after, limit)  # fmt: skip
        return [ExecutionEvent(**dict(row)) for row in rows]

    async def snapshot(
        self, principal: Principal, execution_id: object
    ) -> tuple[Execution, builtins.list[StepExecution]]:
        """The execution and its steps as of one moment (one statement, so both agree with
        the execution's `last_sequence`); NotFound also for another owner's."""
        require(principal, "ExecutionService.snapshot")
        eid = parse_id(execution_id, "execution")
        async with self._sessions() as session:
            rows = (
                await session.execute(
                    select(Execution, StepExecution)
                    .outerjoin(StepExecution, StepExecution.execution_id == Execution.id)
                    .where(Execution.id == eid, Execution.owner_id == principal.owner_id)
                    .order_by(*_STEP_ORDER)
                )
            ).all()
        if not rows:
            raise NotFound(f"No execution with id {execution_id}.")
        return rows[0][0], [step for _, step in rows if step is not None]

    async def watch_state(
        self, principal: Principal, workflow_id: uuid.UUID | None, *, window_seconds: float
    ) -> tuple[datetime, builtins.list[Execution]]:
        """The database's clock and the caller's executions (optionally of one workflow)
        that are running or ended less than `window_seconds` ago: where an owner-wide live
        subscription starts from."""
        require(principal, "ExecutionService.watch_state")
        stmt = select(Execution, func.now()).where(
            Execution.owner_id == principal.owner_id,
            or_(
                Execution.status.in_(("PENDING", "RUNNING")),
                Execution.finished_at > func.now() - timedelta(seconds=window_seconds),
            ),
        )
        if workflow_id is not None:
            stmt = stmt.where(Execution.workflow_id == workflow_id)
        async with self._sessions() as session:
            rows = (await session.execute(stmt.order_by(Execution.created_at))).all()
            now = rows[0][1] if rows else (await session.execute(select(func.now()))).scalar_one()
        return now, [execution for execution, _ in rows]

    async def first_pages(
        self,
        principal: Principal,
        workflow_ids: Sequence[uuid.UUID],
        *,
        limit: int | None = None,
        status: str | None = None,
        cursor: str | None = None,
    ) -> dict[uuid.UUID, Page[Execution]]:
        """A page of executions (newest first, after `cursor` when given) of each of
        several workflows, in one query, as `list(workflow_id=…)` would return each (for
        DataLoaders)."""
        require(principal, "ExecutionService.first_pages")
        size = page_size(limit)
        if status is not None and status not in STATUSES:
            raise InvalidInput(
                f"Unknown status {shown(status)!r}.",
                [Problem("status", f"must be one of {', '.join(STATUSES)}")],
            )
        ranked = select(
            Execution.id,
            func.row_number()
            .over(
                partition_by=Execution.workflow_id,
                order_by=(Execution.created_at.desc(), Execution.id.desc()),
            )
            .label("n"),
        ).where(
            Execution.owner_id == principal.owner_id,
            Execution.workflow_id.in_(list(workflow_ids)),
        )
        if status is not None:
            ranked = ranked.where(Execution.status == status)
        if cursor is not None:
            after = decode_cursor(cursor)
            ranked = ranked.where(
                or_(
                    Execution.created_at < after.created_at,
                    and_(
                        Execution.created_at == after.created_at,
                        Execution.id < uuid.UUID(after.id),
                    ),
                )
            )
        sub = ranked.subquery()
        stmt = (
            select(Execution)
            .join(sub, sub.c.id == Execution.id)
            .where(sub.c.n <= size + 1)
            .order_by(Execution.workflow_id, Execution.created_at.desc(), Execution.id.desc())
        )
        grouped: dict[uuid.UUID, builtins.list[Execution]] = {wid: [] for wid in workflow_ids}
        async with self._sessions() as session:
            for execution in (await session.execute(stmt)).scalars():
                grouped[execution.workflow_id].append(execution)
        out: dict[uuid.UUID, Page[Execution]] = {}
        for wid, rows in grouped.items():
            more = len(rows) > size
            rows = rows[:size]
            out[wid] = Page(rows, encode_cursor(rows[-1].created_at, rows[-1].id) if more else None)
        return out


__all__ = ["ExecutionService", "StartItem", "Started", "Workflow"]
