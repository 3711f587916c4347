"""The workflow definition format (spec: workflow-definition.md) as pydantic models.

JSON names are camelCase (`timeoutSeconds`); Python attributes are snake_case
(`timeout_seconds`). Inside a node's `data` unknown keys are errors, so a typo such as
`timeoutSecond` is reported when the workflow is saved. On nodes and edges themselves,
keys outside the spec (ReactFlow's `selected`, `measured`, `targetHandle`...) are
accepted and dropped. Numbers are strict: `"10"` is not a number, `true` is not 1.

These models check one node at a time; `flowsync.engine.validation` checks the graph and
compiles the templates and expressions.
"""

from __future__ import annotations

import re
import uuid
from datetime import UTC, datetime
from enum import StrEnum
from typing import Annotated, Literal
from urllib.parse import urlsplit

from pydantic import (
    BaseModel,
    BeforeValidator,
    ConfigDict,
    Field,
    JsonValue,
    field_validator,
    model_validator,
)
from pydantic.alias_generators import to_camel

__all__ = [
    "DATA_MODELS",
    "MAX_DELAY_SECONDS",
    "MAX_WAIT_SECONDS",
    "SIGNAL_NAME",
    "TEMPLATE_FIELDS",
    "ActionData",
    "ApprovalData",
    "ConditionData",
    "Definition",
    "DelayData",
    "Edge",
    "EndData",
    "Node",
    "NodeData",
    "NodeType",
    "Position",
    "RetryPolicy",
    "TransformData",
    "WaitData",
    "WebhookResponseData",
    "WorkflowData",
    "parse_instant",
]

MAX_DELAY_SECONDS = 30 * 24 * 3600
MAX_WAIT_SECONDS = 365 * 24 * 3600
# A signal's name: also a path segment of the REST route that sends one.
SIGNAL_NAME = re.compile(r"[A-Za-z_][A-Za-z0-9_.-]{0,99}")

# JSON Schema annotations of the fields that hold CEL (`model_json_schema()` carries them
# to the editor, which offers completion there): a plain expression, or a template
# (any JSON value whose strings may hold `{{ expr }}`). `TEMPLATE_FIELDS` lists the
# same template fields; a test keeps the two equal.
EXPRESSION: dict[str, JsonValue] = {"x-flowsync": "expression"}
TEMPLATE: dict[str, JsonValue] = {"x-flowsync": "template"}


class NodeType(StrEnum):
    """The node types of the spec; values are the JSON `type` strings."""

    START = "start"
    END = "end"
    ACTION = "action"
    CONDITION = "condition"
    DELAY = "delay"
    FORK = "fork"
    JOIN = "join"
    TRANSFORM = "transform"
    WEBHOOK_RESPONSE = "webhook_response"
    WORKFLOW = "workflow"
    WAIT = "wait"
    APPROVAL = "approval"


def _title(name: str, _info: object) -> str:
    """A field's title in the JSON Schema: `timeout_seconds` is "Timeout seconds"."""
    return name.replace("_", " ").capitalize()


class _Data(BaseModel):
    """Base of the `data` models: camelCase only, no unknown keys, no coercion."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        extra="forbid",
        strict=True,
        frozen=True,
        field_title_generator=_title,
    )


def _scalar(value: object) -> object:
    if value is None or isinstance(value, list | dict):
        raise ValueError("must be a string, a number or a boolean (a template is fine)")
    return value


# Header and query values: a scalar or a template string, sent as text (`templates.to_text`).
TextValue = Annotated[str | int | float | bool, BeforeValidator(_scalar)]

_STATUS_RANGE = re.compile(r"([1-5][0-9][0-9])-([1-5][0-9][0-9])")
_HEADER_NAME = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")


def _status_item(value: object) -> object:
    if isinstance(value, int) and not isinstance(value, bool):
        if not 100 <= value <= 599:
            raise ValueError("an HTTP status is between 100 and 599")
        return value
    if isinstance(value, str):
        found = _STATUS_RANGE.fullmatch(value)
        if found and int(found.group(1)) <= int(found.group(2)):
            return value
    raise ValueError('must be a status such as 201 or a range such as "200-299"')


# A status (201) or an inclusive range written as a string ("200-299").
StatusItem = Annotated[int | str, BeforeValidator(_status_item)]


def _check_header_names(headers: dict[str, TextValue]) -> dict[str, TextValue]:
    for name in headers:
        if not _HEADER_NAME.fullmatch(name):
            raise ValueError(f"{name!r} is not a valid HTTP header name")
    return headers


def _default_statuses() -> list[int | str]:
    return ["200-299"]


class RetryPolicy(_Data):
    """When a failed action is tried again: attempt n waits
    `min(initialIntervalSeconds * backoffCoefficient ** (n - 1), maxIntervalSeconds)`,
    before jitter, which the worker adds."""

    max_attempts: int = Field(3, ge=1, le=100)
    initial_interval_seconds: float = Field(1, gt=0, le=86_400)
    backoff_coefficient: float = Field(2, ge=1, le=100)
    max_interval_seconds: float = Field(300, gt=0, le=86_400)

    @model_validator(mode="after")
    def _ordered(self) -> RetryPolicy:
        if self.initial_interval_seconds > self.max_interval_seconds:
            raise ValueError("initialIntervalSeconds must not exceed maxIntervalSeconds")
        return self

    def interval(self, attempt: int) -> float:
        """Seconds to wait after failed attempt `attempt` (1-based), before jitter."""
        exponent = max(attempt - 1, 0)
        try:
            raw = self.initial_interval_seconds * self.backoff_coefficient**exponent
        except OverflowError:  # a large attempt number: far past the cap anyway
            return float(self.max_interval_seconds)
        return float(min(raw, self.max_interval_seconds))


class ActionData(_Data):
    """An HTTP call. `url`, header and query values and `body` are templates.

    `successStatuses` lists statuses (`201`) and inclusive ranges as strings
    (`"200-299"`, the default); a reply with any other status fails the attempt.
    """

    method: Literal["GET", "POST", "PUT", "PATCH", "DELETE"]
    url: str = Field(min_length=1, max_length=8192, json_schema_extra=TEMPLATE)
    headers: dict[str, TextValue] = Field(default_factory=dict, json_schema_extra=TEMPLATE)
    query: dict[str, TextValue] = Field(default_factory=dict, json_schema_extra=TEMPLATE)
    body: JsonValue = Field(None, json_schema_extra=TEMPLATE)
    timeout_seconds: float = Field(30, gt=0, le=300)
    retry: RetryPolicy = Field(default_factory=RetryPolicy)
    success_statuses: list[StatusItem] = Field(default_factory=_default_statuses, min_length=1)

    @field_validator("url")
    @classmethod
    def _http_url(cls, url: str) -> str:
        # Only the text before the first placeholder is known when the workflow is saved.
        fixed = url.split("{{", 1)[0].strip()
        if "{{" not in url:
            parts = urlsplit(fixed)
            if parts.scheme not in ("http", "https") or not parts.netloc:
                raise ValueError("must be an absolute http:// or https:// URL")
        elif fixed:
            lowered = fixed.lower()
            if not any(
                lowered.startswith(s) or s.startswith(lowered) for s in ("http://", "https://")
            ):
                raise ValueError("must start with http:// or https:// (or with a template)")
        return url

    _header_names = field_validator("headers")(_check_header_names)

    def accepts(self, status: int) -> bool:
        """Whether an HTTP reply status counts as success."""
        for item in self.success_statuses:
            if isinstance(item, int):
                if item == status:
                    return True
            else:
                low, high = item.split("-")
                if int(low) <= status <= int(high):
                    return True
        return False


class ConditionData(_Data):
    """A branch: `expression` is plain CEL (no `{{ }}`) that must give true or false."""

    expression: str = Field(min_length=1, max_length=10_000, json_schema_extra=EXPRESSION)

    @field_validator("expression")
    @classmethod
    def _plain_cel(cls, expression: str) -> str:
        stripped = expression.strip()
        if not stripped:
            raise ValueError("must not be blank")
        if stripped.startswith("{{") and stripped.endswith("}}"):
            raise ValueError("write the condition as plain CEL, without {{ }}")
        return expression


def parse_instant(text: str) -> datetime:
    """An ISO-8601 time with a timezone (`2025-01-31T09:00:00Z`, `...+02:00`).

    Raises ValueError for anything else, a time without a timezone included, since the
    server's zone must not change when a timer fires.
    """
    try:
        value = datetime.fromisoformat(text.strip())
    except ValueError:
        raise ValueError(f"{text!r} is not an ISO-8601 time") from None
    if value.tzinfo is None or value.utcoffset() is None:
        raise ValueError(f"{text!r} has no timezone; add Z or an offset such as +02:00")
    try:
        # In UTC, as the database keeps it: a time whose offset takes it past year 9999
        # (or before year 1) cannot be kept, and was a timer that no worker could park.
        return value.astimezone(UTC)
    except OverflowError:
        raise ValueError(
            f"{text!r} is out of range: in UTC it falls outside years 1-9999"
        ) from None


class DelayData(_Data):
    """A durable timer: exactly one of `seconds` (at most 30 days) or `until` (an ISO-8601
    time with a timezone, or a template giving one, e.g. `{{ input.sendAt }}`)."""

    seconds: float | None = Field(None, ge=0, le=MAX_DELAY_SECONDS)
    until: str | None = Field(None, min_length=1, max_length=10_000, json_schema_extra=TEMPLATE)

    @field_validator("until")
    @classmethod
    def _instant(cls, until: str | None) -> str | None:
        if until is not None and "{{" not in until:
            parse_instant(until)
        return until

    @model_validator(mode="after")
    def _one_of(self) -> DelayData:
        if (self.seconds is None) == (self.until is None):
            raise ValueError("give exactly one of seconds or until")
        return self


class TransformData(_Data):
    """`output`: a template whose value is the step's output."""

    output: JsonValue = Field(json_schema_extra=TEMPLATE)


class EndData(_Data):
    """`output`, optional: a template giving the execution's output (else `{}`)."""

    output: JsonValue = Field(None, json_schema_extra=TEMPLATE)


class WebhookResponseData(_Data):
    """The reply to a synchronous webhook call; `headers` and `body` are templates.
    `status` is a final one (200 to 599: a 1xx is not a reply). A reply may set only the
    headers that describe its content (see the definition docs: `Set-Cookie`, policy
    and hop-by-hop headers are refused)."""

    status: int = Field(200, ge=200, le=599)
    headers: dict[str, TextValue] = Field(default_factory=dict, json_schema_extra=TEMPLATE)
    body: JsonValue = Field(None, json_schema_extra=TEMPLATE)

    _header_names = field_validator("headers")(_check_header_names)


class WorkflowData(_Data):
    """A child workflow: runs workflow `workflowId` of the same owner, at `version` (a
    pinned version number) or, without one, at its newest version when the step starts,
    with `input` (a template; `{}` by default) as its input. The step completes with the
    child execution's output and fails when the child fails or is cancelled."""

    workflow_id: str = Field(min_length=1, max_length=64)
    version: int | None = Field(None, ge=1)
    input: JsonValue = Field(None, json_schema_extra=TEMPLATE)

    @field_validator("workflow_id")
    @classmethod
    def _uuid(cls, workflow_id: str) -> str:
        try:
            uuid.UUID(workflow_id)
        except ValueError:
            raise ValueError("must be a workflow id (a UUID)") from None
        return workflow_id


class WaitData(_Data):
    """Waits, holding no worker, for the signal `signal` sent to the execution (a signal
    sent before the run gets here is kept and taken then); the signal's payload is the
    step's output. After `timeoutSeconds` (optional, at most a year) the step takes its
    `"timeout"` edge, or fails when it has none."""

    signal: str = Field(min_length=1, max_length=100)
    timeout_seconds: float | None = Field(None, gt=0, le=MAX_WAIT_SECONDS)

    @field_validator("signal")
    @classmethod
    def _name(cls, signal: str) -> str:
        if not SIGNAL_NAME.fullmatch(signal):
            raise ValueError(
                "a signal name starts with a letter or _ and holds letters, digits, _ . -"
            )
        if signal == "approval":
            raise ValueError('"approval" is reserved for the approval node; use one of those')
        return signal


class ApprovalData(_Data):
    """Waits, holding no worker, for the signal `approval` with `{"approved": true|false,
    "by": "who", "comment": "..."}` (the step's output), then takes its `"approved"` or
    `"rejected"` edge. After `timeoutSeconds` (optional, at most a year) it takes its
    `"timeout"` edge, or fails when it has none."""

    timeout_seconds: float | None = Field(None, gt=0, le=MAX_WAIT_SECONDS)


NodeData = (
    ActionData
    | ConditionData
    | DelayData
    | TransformData
    | EndData
    | WebhookResponseData
    | WorkflowData
    | WaitData
    | ApprovalData
)

DATA_MODELS: dict[NodeType, type[NodeData] | None] = {
    NodeType.START: None,
    NodeType.END: EndData,
    NodeType.ACTION: ActionData,
    NodeType.CONDITION: ConditionData,
    NodeType.DELAY: DelayData,
    NodeType.FORK: None,
    NodeType.JOIN: None,
    NodeType.TRANSFORM: TransformData,
    NodeType.WEBHOOK_RESPONSE: WebhookResponseData,
    NodeType.WORKFLOW: WorkflowData,
    NodeType.WAIT: WaitData,
    NodeType.APPROVAL: ApprovalData,
}
"""Each type's `data` model; None for the types that take no data."""

TEMPLATE_FIELDS: dict[NodeType, tuple[str, ...]] = {
    NodeType.ACTION: ("url", "headers", "query", "body"),
    NodeType.DELAY: ("until",),
    NodeType.TRANSFORM: ("output",),
    NodeType.END: ("output",),
    NodeType.WEBHOOK_RESPONSE: ("headers", "body"),
    NodeType.WORKFLOW: ("input",),
}
"""The `data` keys (JSON names) that hold templates, per node type."""


class _Shape(BaseModel):
    """Base of the graph models: keys outside the spec are dropped, not errors."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        serialize_by_alias=True,
        extra="ignore",
        strict=True,
        frozen=True,
    )


class Position(_Shape):
    """Where the editor draws a node; the engine ignores it."""

    x: float
    y: float


class Node(_Shape):
    """A node as it is stored. `data` is checked against `DATA_MODELS[type]` separately,
    so that an unknown type and bad data are reported with their own paths."""

    id: str
    type: str
    data: dict[str, JsonValue] | None = None
    position: Position | None = None
    label: str | None = Field(None, max_length=500)


class Edge(_Shape):
    """A directed edge; `sourceHandle` is `"true"` or `"false"` on a condition's edges,
    `"approved"`, `"rejected"` or `"timeout"` on an approval's, absent (or null) or
    `"timeout"` on a wait's, and absent (or null) elsewhere. `id` is optional and kept,
    since ReactFlow sends one."""

    id: str | None = Field(None, max_length=200)
    source: str
    target: str
    source_handle: str | None = None


class Definition(_Shape):
    """A workflow's graph: the shape only. Use `validation.validate_definition` to check
    it against every rule of the spec."""

    nodes: list[Node]
    edges: list[Edge]
