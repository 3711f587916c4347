"""The trigger service: how the caller's workflows start, for every face.

Three types: MANUAL (no config), WEBHOOK (ingress at `/api/webhooks/{id}`, reported on
FLOWSYNC_WEBHOOK_BASE_URL when set, see `webhooks.py`) and CRON (run by the scheduler in
every worker). Every call is scoped to the principal's owner: another owner's trigger
answers exactly as a missing one (`NotFound`).
Every change writes an audit entry in its own transaction. A config is validated and
stored normalised, with its defaults filled in; a bad one raises `TriggerInvalid` (422)
naming each field (`$.config.expression`, `$.config.timezone`, ...).

Webhook secrets: the HMAC key must be readable to verify signatures, so it is stored as
is (it is never put in a read model, a list, a log line or an audit entry). It is shown
in the result of `create` and `rotate_secret`; afterwards its owner can read it with
`reveal_secret`, which leaves an audit entry. Rotating replaces it at once.
"""

from __future__ import annotations

import builtins
import difflib
import json
import secrets
import uuid
from collections.abc import Awaitable, Callable, Sequence
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any, Literal, cast

import asyncpg
from pydantic import BaseModel, ConfigDict, Field, ValidationError
from pydantic.alias_generators import to_camel
from sqlalchemy import and_, func, or_, select
from sqlalchemy.ext.asyncio import AsyncSession, async_sessionmaker

from flowsync.db.models import Trigger, Workflow
from flowsync.engine.fairness import checked_priority
from flowsync.engine.problems import kind_of
from flowsync.errors import Conflict, InvalidInput, NotFound, Problem, TriggerInvalid, shown
from flowsync.scheduler.cron import (
    DEFAULT_MAX_CATCH_UP,
    CronSchedule,
    schedule_from_config,
    zone_problem,
)
from flowsync.scheduler.scheduler import SchedulerStatus, read_status
from flowsync.services import audit
from flowsync.services.inputs import parse_id
from flowsync.services.pagination import Page, decode_cursor, encode_cursor, page_size
from flowsync.services.principal import Principal, require
from flowsync.services.trigger_input import check_input, check_signal_config

__all__ = [
    "DEFAULT_FIRE_TIMES",
    "MAX_FIRE_TIMES",
    "TRIGGER_TYPES",
    "CronConfig",
    "TriggerService",
    "TriggerUpdate",
    "TriggerWithSecret",
    "WebhookConfig",
    "WebhookSignalConfig",
    "webhook_url",
]

TRIGGER_TYPES = ("MANUAL", "WEBHOOK", "CRON")
SECRET_PREFIX = "whsec_"  # noqa: S105 (a label in front of the random part)
MAX_SYNC_TIMEOUT_SECONDS = 30.0
# How many of a cron trigger's next fire times one read lists: by default, and at most.
DEFAULT_FIRE_TIMES = 5
MAX_FIRE_TIMES = 20
MAX_CONCURRENT_RUNS = 100_000
_UNSET: Any = object()


class _Config(BaseModel):
    """Base of the config models: camelCase keys only, no unknown keys, no coercion."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        extra="forbid",
        strict=True,
        frozen=True,
    )


class MisfireConfig(_Config):
    """`policy`: skip | catch_up | fire_once; `maxCatchUp` bounds catch_up."""

    policy: Literal["skip", "catch_up", "fire_once"] = "fire_once"
    max_catch_up: int = Field(DEFAULT_MAX_CATCH_UP, ge=1, le=1000)


class CronConfig(_Config):
    """A CRON trigger's config: `expression`, `timezone` (IANA, default UTC), `misfire`,
    and `input`, the template of its runs' input (default `{}`: see trigger_input)."""

    expression: str
    timezone: str = "UTC"
    misfire: MisfireConfig = Field(default_factory=MisfireConfig)
    input: Any = None


class WebhookSignalConfig(_Config):
    """A webhook that signals a run instead of starting one: a delivery sends signal
    `name`, with the delivery's body as its payload, to the oldest active run of the
    trigger's workflow for which `match` (CEL over `trigger`, the delivery as an input
    template sees it, and `input`, that run's input) is true."""

    name: str = Field(min_length=1, max_length=100)
    match: str = Field(min_length=1, max_length=10_000)


class WebhookConfig(_Config):
    """A WEBHOOK trigger's config. `maxBodyBytes` defaults to (and may not exceed) the
    server's `max_body_bytes`; `input`, the template of its runs' input, to the body.
    With `signal`, a delivery signals a matching run instead of starting one."""

    require_signature: bool = True
    mode: Literal["async", "sync"] = "async"
    sync_timeout_seconds: float = Field(10.0, gt=0, le=MAX_SYNC_TIMEOUT_SECONDS)
    max_body_bytes: int | None = Field(None, ge=1)
    input: Any = None
    signal: WebhookSignalConfig | None = None


class _ManualConfig(_Config):
    """A MANUAL trigger takes no config."""


_MODELS: dict[str, type[_Config]] = {
    "MANUAL": _ManualConfig,
    "WEBHOOK": WebhookConfig,
    "CRON": CronConfig,
}
_ALL_MODELS: list[type[_Config]] = [*_MODELS.values(), MisfireConfig, WebhookSignalConfig]
_VOCABULARY = sorted(
    {f.alias for m in _ALL_MODELS for f in m.model_fields.values() if f.alias is not None}
)


@dataclass(frozen=True, slots=True)
class TriggerWithSecret:
    """A trigger and its webhook secret (None for other types): the result of `create`
    and `rotate_secret`, the moments the secret is handed out."""

    trigger: Trigger
    secret: str | None


@dataclass(frozen=True, slots=True)
class TriggerUpdate:
    """A partial change; fields left as None (config: unset) stay as they are. The type
    cannot change; a given `type` must be the current one."""

    workflow_id: object = None
    enabled: bool | None = None
    config: object = _UNSET
    type: str | None = None
    # None clears the limit; unset leaves it.
    max_concurrent_runs: object = _UNSET
    # Its runs' priority (-100..100); None clears it (the definition's then); unset
    # leaves it.
    priority: object = _UNSET


def webhook_url(trigger: Trigger, base_url: str | None = None) -> str | None:
    """Where a WEBHOOK trigger receives deliveries (None for other types):
    `<base_url>/api/webhooks/<id>`, or without a base URL the path alone, on the API's
    origin."""
    if trigger.type != "WEBHOOK":
        return None
    return f"{(base_url or '').rstrip('/')}/api/webhooks/{trigger.id}"


def _utcnow() -> datetime:
    return datetime.now(UTC)


def _new_secret() -> str:
    return SECRET_PREFIX + secrets.token_urlsafe(32)


def check_max_concurrent_runs(value: object) -> int | None:
    """A trigger's maxConcurrentRuns: 1 to MAX_CONCURRENT_RUNS, or None for no limit;
    `TriggerInvalid` at `$.maxConcurrentRuns` otherwise."""
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, int):
        message = f"must be a whole number or null, not {kind_of(value)}"
    elif not 1 <= value <= MAX_CONCURRENT_RUNS:
        message = f"must be 1 to {MAX_CONCURRENT_RUNS} (null: no limit), got {shown(value)}"
    else:
        return value
    raise TriggerInvalid(
        "The trigger's maxConcurrentRuns is not valid.",
        [Problem("$.maxConcurrentRuns", message)],
    )


def check_trigger_priority(value: object) -> int | None:
    """A trigger's priority for the runs it starts: -100 to 100, or None (the
    definition's); `TriggerInvalid` at `$.priority` otherwise."""
    try:
        return checked_priority(value, "$.priority")
    except InvalidInput as exc:
        raise TriggerInvalid("The trigger's priority is not valid.", exc.details) from None


def check_type(value: object) -> str:
    """A trigger type, upper-cased; `TriggerInvalid` at `$.type` otherwise."""
    if isinstance(value, str) and value.upper() in TRIGGER_TYPES:
        return value.upper()
    raise TriggerInvalid(
        "The trigger type is not valid.",
        [Problem("$.type", f"must be one of {', '.join(TRIGGER_TYPES)}, not {shown(value)!r}")],
    )


def normalize_config(kind: str, config: object, *, max_body_bytes: int) -> dict[str, Any]:
    """Validate a config for a trigger type and return it as stored: camelCase, with
    every default filled in. Raises `TriggerInvalid` listing every problem."""
    raw = {} if config is None and kind != "CRON" else config
    problems: list[Problem] = []
    model: _Config | None = None
    try:
        model = _MODELS[kind].model_validate(raw)
    except ValidationError as exc:
        problems.extend(_problems(exc, "$.config"))
    if kind == "CRON" and isinstance(raw, dict):
        try:
            CronSchedule.parse(raw.get("expression"), raw.get("timezone", "UTC"))
        except TriggerInvalid as exc:
            seen = {p.path for p in problems}
            problems.extend(p for p in exc.details if p.path not in seen)
        else:
            zone = zone_problem(raw.get("timezone", "UTC"))
            if zone is not None:
                problems.append(zone)
    if isinstance(model, WebhookConfig) and (model.max_body_bytes or 0) > max_body_bytes:
        problems.append(
            Problem("$.config.maxBodyBytes", f"must be at most {max_body_bytes} (the server's)")
        )
    if isinstance(model, CronConfig | WebhookConfig) and model.input is not None:
        problems.extend(check_input(kind, model.input))
    if isinstance(model, WebhookConfig) and model.signal is not None:
        problems.extend(check_signal_config(model))
    if problems or model is None:
        raise TriggerInvalid(f"The {kind} trigger's config is not valid.", problems)
    # `input` is kept only when given: left out, the type's default applies.
    template = getattr(model, "input", None)
    given = {} if template is None else {"input": template}
    if isinstance(model, CronConfig):
        misfire: dict[str, Any] = {"policy": model.misfire.policy}
        if model.misfire.policy == "catch_up":
            misfire["maxCatchUp"] = model.misfire.max_catch_up
        return {
            "expression": " ".join(model.expression.split()),
            "timezone": model.timezone.strip(),
            "misfire": misfire,
            **given,
        }
    if isinstance(model, WebhookConfig):
        return {
            "requireSignature": model.require_signature,
            "mode": model.mode,
            "syncTimeoutSeconds": model.sync_timeout_seconds,
            "maxBodyBytes": model.max_body_bytes or max_body_bytes,
            **given,
            **({"signal": model.signal.model_dump()} if model.signal is not None else {}),
        }
    return {}


def _problems(exc: ValidationError, base: str) -> list[Problem]:
    out: list[Problem] = []
    for error in exc.errors(include_url=False):
        path = base + "".join(f"[{p}]" if isinstance(p, int) else f".{p}" for p in error["loc"])
        kind = error["type"]
        if kind == "extra_forbidden":
            name = str(error["loc"][-1])
            hint = difflib.get_close_matches(name, _VOCABULARY, 1)
            message = f"unknown field {shown(name)!r}" + (
                f" (did you mean {hint[0]!r}?)" if hint else ""
            )
        elif kind == "missing":
            message = "is required"
        elif kind in ("dict_type", "model_type", "model_attributes_type"):
            message = f"must be an object, not {kind_of(error.get('input'))}"
        else:
            message = error["msg"].removeprefix("Input should be ")
            if message != error["msg"]:
                given = error.get("input")
                # A value of the right type but not one of those allowed is named; a
                # value of the wrong type, by its type.
                named = (
                    shown(json.dumps(given))
                    if kind in ("literal_error", "enum") and isinstance(given, str | int | float)
                    else kind_of(given)
                )
                message = f"must be {message}, not {named}"
        problem = Problem(path, message)
        if problem not in out:
            out.append(problem)
    return out


class TriggerService:
    """Create, list, read, update and delete triggers; webhook secrets; cron schedules'
    next fire times; the scheduler's status."""

    def __init__(
        self,
        sessions: async_sessionmaker[AsyncSession],
        pool: asyncpg.Pool,
        *,
        max_body_bytes: int,
        webhook_base_url: str | None = None,
        clock: Callable[[], datetime] = _utcnow,
        on_limit_change: Callable[[uuid.UUID], Awaitable[None]] | None = None,
    ):
        self._sessions = sessions
        # Called after a change of a trigger's maxConcurrentRuns commits, to start the
        # runs the new limit lets go (the orchestrator's promote_trigger).
        self._on_limit_change = on_limit_change
        self._pool = pool
        self._max_body_bytes = max_body_bytes
        self._webhook_base_url = webhook_base_url
        self._clock = clock

    def webhook_url(self, trigger: Trigger) -> str | None:
        """Where a WEBHOOK trigger receives deliveries, as every face reports it: on
        FLOWSYNC_WEBHOOK_BASE_URL when it is set (see `webhook_url`)."""
        return webhook_url(trigger, self._webhook_base_url)

    def next_fire_times(
        self, trigger: Trigger, count: int | None = None
    ) -> builtins.list[datetime]:
        """The next `count` (1 to MAX_FIRE_TIMES; None: DEFAULT_FIRE_TIMES) times an
        enabled CRON trigger fires after now, oldest first, as UTC instants: the
        scheduler's own schedule code, in the trigger's time zone. Empty for other
        types, a disabled trigger and a config that no longer parses (the scheduler
        pauses such a trigger). Pure computation on a row the caller loaded for its
        principal; `InvalidInput` at `count` when out of bounds, whatever the trigger."""
        if count is None:
            count = DEFAULT_FIRE_TIMES
        if isinstance(count, bool) or not 1 <= count <= MAX_FIRE_TIMES:
            raise InvalidInput(
                f"A trigger lists 1 to {MAX_FIRE_TIMES} next fire times.",
                [Problem("count", f"must be 1 to {MAX_FIRE_TIMES}, got {count}")],
            )
        if trigger.type != "CRON" or not trigger.enabled:
            return []
        try:
            schedule, _ = schedule_from_config(trigger.config or {})
        except TriggerInvalid:
            return []
        times: builtins.list[datetime] = []
        at = self._clock()
        for _ in range(count):
            at = schedule.next_after(at)
            times.append(at)
        return times

    def _next_run(self, kind: str, enabled: bool, config: dict[str, Any]) -> datetime | None:
        if kind != "CRON" or not enabled:
            return None
        schedule = CronSchedule.parse(config["expression"], config["timezone"])
        return schedule.next_after(self._clock())

    async def _live_workflow(
        self, session: AsyncSession, principal: Principal, workflow_id: object
    ) -> Workflow:
        # FOR SHARE: a concurrent delete of the workflow waits for this transaction, then
        # disables the trigger made here along with the others.
        workflow = (
            await session.execute(
                select(Workflow)
                .where(
                    Workflow.id == parse_id(workflow_id, "workflow"),
                    Workflow.owner_id == principal.owner_id,
                    Workflow.deleted_at.is_(None),
                )
                .with_for_update(read=True)
            )
        ).scalar_one_or_none()
        if workflow is None:
            raise NotFound(f"No workflow with id {workflow_id}.")
        return workflow

    async def _owned(
        self, session: AsyncSession, principal: Principal, trigger_id: object, *, lock: bool
    ) -> Trigger:
        stmt = select(Trigger).where(
            Trigger.id == parse_id(trigger_id, "trigger"),
            Trigger.owner_id == principal.owner_id,
        )
        if lock:
            stmt = stmt.with_for_update()
        trigger = (await session.execute(stmt)).scalar_one_or_none()
        if trigger is None:
            raise NotFound(f"No trigger with id {trigger_id}.")
        return trigger

    async def create(
        self,
        principal: Principal,
        workflow_id: object,
        type: object,
        config: object = None,
        *,
        enabled: bool = True,
        max_concurrent_runs: object = None,
        priority: object = None,
    ) -> TriggerWithSecret:
        """A new trigger of one of the caller's live workflows. A WEBHOOK trigger gets a
        new secret, returned here; a CRON trigger gets its first `next_run_at`. With
        `max_concurrent_runs`, runs it starts beyond that many RUNNING wait PENDING.
        `priority`: its runs' (unless a start gives one; None: the definition's)."""
        require(principal, "TriggerService.create")
        kind = check_type(type)
        stored = normalize_config(kind, config, max_body_bytes=self._max_body_bytes)
        limit = check_max_concurrent_runs(max_concurrent_runs)
        rank = check_trigger_priority(priority)
        secret = _new_secret() if kind == "WEBHOOK" else None
        async with self._sessions.begin() as session:
            workflow = await self._live_workflow(session, principal, workflow_id)
            trigger = Trigger(
                owner_id=principal.owner_id,
                workflow_id=workflow.id,
                type=kind,
                enabled=enabled,
                config=stored,
                secret=secret,
                next_run_at=self._next_run(kind, enabled, stored),
                max_concurrent_runs=limit,
                priority=rank,
            )
            session.add(trigger)
            await session.flush()
            await audit.record(
                session, principal, "trigger.created", "trigger", trigger.id,
                {"type": kind, "workflowId": str(workflow.id), "enabled": enabled,
                 "config": stored, "maxConcurrentRuns": limit, "priority": rank},
            )  # fmt: skip
            await session.refresh(trigger)
        return TriggerWithSecret(trigger, secret)

    async def get(self, principal: Principal, trigger_id: object) -> Trigger:
        """The trigger, or NotFound (also for another owner's)."""
        require(principal, "TriggerService.get")
        async with self._sessions() as session:
            return await self._owned(session, principal, trigger_id, lock=False)

    async def get_many(
        self, principal: Principal, trigger_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, Trigger]:
        """Several of the caller's triggers by id, in one query; others are left out
        (for `Query.node`)."""
        require(principal, "TriggerService.get_many")
        if not trigger_ids:
            return {}
        stmt = select(Trigger).where(
            Trigger.id.in_(list(trigger_ids)), Trigger.owner_id == principal.owner_id
        )
        async with self._sessions() as session:
            return {t.id: t for t in (await session.execute(stmt)).scalars()}

    async def list(
        self,
        principal: Principal,
        *,
        workflow_id: object = None,
        type: str | None = None,
        limit: int | None = None,
        cursor: str | None = None,
    ) -> Page[Trigger]:
        """The caller's triggers, newest first, a page at a time, optionally of one
        workflow or type."""
        require(principal, "TriggerService.list")
        size = page_size(limit)
        stmt = select(Trigger).where(Trigger.owner_id == principal.owner_id)
        if workflow_id is not None:
            try:
                wid = parse_id(workflow_id, "workflow")
            except NotFound:
                return Page([], None)
            stmt = stmt.where(Trigger.workflow_id == wid)
        if type is not None:
            try:
                kind = check_type(type)
            except TriggerInvalid as exc:  # a filter, not a trigger: malformed (400)
                raise InvalidInput(
                    "The type filter is not a trigger type.",
                    [Problem("type", p.message) for p in exc.details],
                ) from None
            stmt = stmt.where(Trigger.type == kind)
        if cursor is not None:
            after = decode_cursor(cursor)
            stmt = stmt.where(
                or_(
                    Trigger.created_at < after.created_at,
                    and_(
                        Trigger.created_at == after.created_at,
                        Trigger.id < uuid.UUID(after.id),
                    ),
                )
            )
        stmt = stmt.order_by(Trigger.created_at.desc(), Trigger.id.desc()).limit(size + 1)
        async with self._sessions() as session:
            rows = list((await session.execute(stmt)).scalars())
        more = len(rows) > size
        rows = rows[:size]
        return Page(rows, encode_cursor(rows[-1].created_at, rows[-1].id) if more else None)

    async def of_workflows(
        self, principal: Principal, workflow_ids: Sequence[uuid.UUID]
    ) -> dict[uuid.UUID, builtins.list[Trigger]]:
        """The triggers of several of the caller's workflows in one query (for
        DataLoaders), each list newest first; other owners' are left out."""
        require(principal, "TriggerService.of_workflows")
        out: dict[uuid.UUID, builtins.list[Trigger]] = {wid: [] for wid in workflow_ids}
        async with self._sessions() as session:
            rows = await session.execute(
                select(Trigger)
                .where(
                    Trigger.workflow_id.in_(builtins.list(workflow_ids)),
                    Trigger.owner_id == principal.owner_id,
                )
                .order_by(Trigger.created_at.desc(), Trigger.id.desc())
            )
            for trigger in rows.scalars():
                out[trigger.workflow_id].append(trigger)
        return out

    async def update(
        self, principal: Principal, trigger_id: object, change: TriggerUpdate
    ) -> Trigger:
        """Apply a partial change. A new config replaces the old one (validated, defaults
        filled in). A CRON trigger's next fire time is worked out again from now when its
        schedule changes or it is enabled again, and cleared while it is disabled. A new
        `max_concurrent_runs` starts at once the waiting runs it lets go."""
        require(principal, "TriggerService.update")
        limit: object = _UNSET
        if change.max_concurrent_runs is not _UNSET:
            limit = check_max_concurrent_runs(change.max_concurrent_runs)
        rank: object = _UNSET
        if change.priority is not _UNSET:
            rank = check_trigger_priority(change.priority)
        async with self._sessions.begin() as session:
            trigger = await self._owned(session, principal, trigger_id, lock=True)
            if change.type is not None and check_type(change.type) != trigger.type:
                raise TriggerInvalid(
                    "A trigger's type cannot change.",
                    [Problem("$.type", f"is {trigger.type}; create a new trigger instead")],
                )
            fields: builtins.list[str] = []
            if change.workflow_id is not None:
                workflow = await self._live_workflow(session, principal, change.workflow_id)
                if workflow.id != trigger.workflow_id:
                    trigger.workflow_id = workflow.id
                    fields.append("workflowId")
            reschedule = False
            if change.config is not _UNSET:
                stored = normalize_config(
                    trigger.type, change.config, max_body_bytes=self._max_body_bytes
                )
                if stored != trigger.config:
                    reschedule = _schedule_of(stored) != _schedule_of(trigger.config)
                    trigger.config = stored
                    fields.append("config")
            if limit is not _UNSET and limit != trigger.max_concurrent_runs:
                trigger.max_concurrent_runs = cast(int | None, limit)
                fields.append("maxConcurrentRuns")
            if rank is not _UNSET and rank != trigger.priority:
                trigger.priority = cast(int | None, rank)
                fields.append("priority")
            if change.enabled is not None and change.enabled != trigger.enabled:
                if change.enabled and "workflowId" not in fields:
                    # A trigger of a deleted workflow stays off.
                    await self._live_workflow(session, principal, trigger.workflow_id)
                reschedule = reschedule or change.enabled
                trigger.enabled = change.enabled
                fields.append("enabled")
            if not trigger.enabled or trigger.type != "CRON":
                trigger.next_run_at = None
            elif reschedule or trigger.next_run_at is None:
                trigger.next_run_at = self._next_run(trigger.type, True, trigger.config)
            trigger.updated_at = func.now()
            await audit.record(
                session, principal, "trigger.updated", "trigger", trigger.id,
                {"fields": fields, "enabled": trigger.enabled,
                 **({"config": trigger.config} if "config" in fields else {}),
                 **({"maxConcurrentRuns": trigger.max_concurrent_runs}
                    if "maxConcurrentRuns" in fields else {}),
                 **({"priority": trigger.priority} if "priority" in fields else {})},
            )  # fmt: skip
            await session.flush()
            await session.refresh(trigger)
        if "maxConcurrentRuns" in fields and self._on_limit_change is not None:
            await self._on_limit_change(trigger.id)
        return trigger

    async def delete(self, principal: Principal, trigger_id: object) -> None:
        """Delete a trigger: it stops firing at once. Executions it started stay (their
        trigger reference is cleared); its firing history goes with it. Runs waiting
        behind its maxConcurrentRuns are let go first (the limit is cleared, then it is
        deleted), so that none waits for a trigger that is gone."""
        require(principal, "TriggerService.delete")
        if (await self.get(principal, trigger_id)).max_concurrent_runs is not None:
            await self.update(principal, trigger_id, TriggerUpdate(max_concurrent_runs=None))
        async with self._sessions.begin() as session:
            trigger = await self._owned(session, principal, trigger_id, lock=True)
            await session.delete(trigger)
            await audit.record(
                session, principal, "trigger.deleted", "trigger", trigger.id,
                {"type": trigger.type, "workflowId": str(trigger.workflow_id)},
            )  # fmt: skip

    async def rotate_secret(self, principal: Principal, trigger_id: object) -> TriggerWithSecret:
        """Replace a WEBHOOK trigger's secret; signatures made with the old one fail from
        now on. Conflict for other types."""
        require(principal, "TriggerService.rotate_secret")
        secret = _new_secret()
        async with self._sessions.begin() as session:
            trigger = await self._owned(session, principal, trigger_id, lock=True)
            _require_webhook(trigger)
            trigger.secret = secret
            trigger.updated_at = func.now()
            await audit.record(session, principal, "trigger.secret_rotated", "trigger", trigger.id)
            await session.flush()
            await session.refresh(trigger)
        return TriggerWithSecret(trigger, secret)

    async def reveal_secret(self, principal: Principal, trigger_id: object) -> str:
        """A WEBHOOK trigger's current secret, for its owner; the reading is audited."""
        require(principal, "TriggerService.reveal_secret")
        async with self._sessions.begin() as session:
            trigger = await self._owned(session, principal, trigger_id, lock=False)
            _require_webhook(trigger)
            await audit.record(session, principal, "trigger.secret_revealed", "trigger", trigger.id)
        assert trigger.secret is not None
        return trigger.secret

    async def scheduler_status(self, principal: Principal) -> SchedulerStatus:
        """The running schedulers, and the caller's cron triggers: due now, next fire
        time, newest firings."""
        require(principal, "TriggerService.scheduler_status")
        async with self._pool.acquire() as conn:
            return await read_status(conn, principal.owner_id)


def _schedule_of(config: dict[str, Any]) -> tuple[object, object]:
    return config.get("expression"), config.get("timezone")


def _require_webhook(trigger: Trigger) -> None:
    if trigger.type != "WEBHOOK" or trigger.secret is None:
        raise Conflict(f"Trigger {trigger.id} is a {trigger.type} trigger; only WEBHOOK "
                       "triggers have a secret.")  # fmt: skip
