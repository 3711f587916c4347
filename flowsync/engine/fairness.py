"""Priorities and concurrency keys: the definition's `priority`, `concurrencyKey` and
`concurrencyKeyLimit`, checked and compiled; a start's priority chosen; a run's key
evaluated. Pure: no I/O and no clock.

A run's priority is a whole number from -100 to 100, higher first, 0 by default. The
one a start gives wins; else its trigger's; else the definition's. Its jobs carry it
negated (`job_priority`): the claim takes the lowest `jobs.priority` first.

A concurrency key is a template evaluated once, at the start, against the run's `input`
and `trigger`; its value (a string, number or boolean, as text) groups the workflow's
runs, and at most `concurrencyKeyLimit` of a group run at once; the others wait PENDING
in start order, holding no worker."""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import JsonValue

from flowsync.engine.problems import ProblemCollector, kind_of
from flowsync.engine.templates import Template, compile_template, to_text
from flowsync.errors import ExpressionFailed, ExpressionSyntaxError, InvalidInput, Problem, shown

__all__ = [
    "KEY_LIMIT_MAX",
    "MAX_KEY_LENGTH",
    "PRIORITY_MAX",
    "PRIORITY_MIN",
    "Fairness",
    "KeyFailed",
    "check_fairness",
    "checked_priority",
    "chosen_priority",
    "evaluate_key",
    "job_priority",
]

PRIORITY_MIN = -100
PRIORITY_MAX = 100
KEY_LIMIT_MAX = 100_000
MAX_KEY_LENGTH = 255
# What a key's template may read: nothing else exists when a run starts.
KEY_VARIABLES = frozenset({"input", "trigger"})


@dataclass(frozen=True, slots=True)
class Fairness:
    """A workflow's defaults: its runs' priority, and its concurrency key with its limit
    (both None, or both set)."""

    priority: int = 0
    concurrency_key: Template | None = None
    concurrency_key_limit: int | None = None


def _is_int(value: object) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


def _priority_problem(value: object) -> str | None:
    if not _is_int(value):
        return f"must be a whole number from {PRIORITY_MIN} to {PRIORITY_MAX}, not {kind_of(value)}"
    assert isinstance(value, int)
    if not PRIORITY_MIN <= value <= PRIORITY_MAX:
        return f"must be from {PRIORITY_MIN} to {PRIORITY_MAX} (higher runs first); got {value}"
    return None


def checked_priority(value: object, where: str = "priority") -> int | None:
    """A priority given to a start or a trigger (None: not given), or InvalidInput
    naming `where` and the range."""
    if value is None:
        return None
    problem = _priority_problem(value)
    if problem is not None:
        raise InvalidInput(f"{where} {problem}.", [Problem(where, problem)])
    assert isinstance(value, int)
    return value


def chosen_priority(given: int | None, trigger: int | None, default: int) -> int:
    """The run's priority: the start's, else its trigger's, else the definition's."""
    if given is not None:
        return given
    if trigger is not None:
        return trigger
    return default


def job_priority(priority: int) -> int:
    """What a run's jobs store in jobs.priority (claimed lowest first)."""
    return -priority


def check_fairness(raw: Mapping[str, object], check: ProblemCollector) -> Fairness:
    """Check the definition's top-level `priority`, `concurrencyKey` and
    `concurrencyKeyLimit`, adding a problem at each bad one's path."""
    base = check.base
    priority = 0
    if "priority" in raw:
        problem = _priority_problem(raw["priority"])
        if problem is None:
            priority = int(raw["priority"])  # type: ignore[call-overload]
        else:
            check.add(f"{base}.priority", problem)
    key: Template | None = None
    has_key = raw.get("concurrencyKey") is not None
    has_limit = raw.get("concurrencyKeyLimit") is not None
    if has_key:
        key = _check_key(raw["concurrencyKey"], f"{base}.concurrencyKey", check)
        if not has_limit:
            check.add(
                f"{base}.concurrencyKey", "needs concurrencyKeyLimit (how many may run at once)"
            )
    limit: int | None = None
    if has_limit:
        value = raw["concurrencyKeyLimit"]
        path = f"{base}.concurrencyKeyLimit"
        if not _is_int(value) or not 1 <= value <= KEY_LIMIT_MAX:  # type: ignore[operator]
            check.add(
                path, f"must be a whole number from 1 to {KEY_LIMIT_MAX}; got {shown(value)!r}"
            )
        else:
            limit = int(value)  # type: ignore[call-overload]
        if not has_key:
            check.add(path, "is allowed only with a concurrencyKey")
    if key is None or limit is None:
        return Fairness(priority)
    return Fairness(priority, key, limit)


def _check_key(value: object, path: str, check: ProblemCollector) -> Template | None:
    if not isinstance(value, str):
        check.add(path, f"must be a template string such as "
                        f"'{{{{ input.customerId }}}}', not {kind_of(value)}")  # fmt: skip
        return None
    if not value.strip():
        check.add(path, "must not be empty")
        return None
    try:
        template = compile_template(value, path=path, budget=check.budget)
    except ExpressionSyntaxError as exc:
        for problem in exc.details:
            check.add(problem.path, problem.message)
        return None
    for expression in template.expressions:
        unknown = sorted(expression.variables - KEY_VARIABLES)
        if unknown:
            check.add(
                path,
                f"may read only input and trigger (it is evaluated when the run starts); "
                f"it reads {', '.join(unknown)}",
            )
            return None
    return template


class KeyFailed(Exception):
    """A run's concurrency key could not be evaluated; `error` is the step error to fail
    the run with (its message names concurrencyKey)."""

    def __init__(self, error: dict[str, JsonValue]):
        super().__init__(str(error.get("message")))
        self.error = error


def evaluate_key(template: Template, input: JsonValue, trigger: Mapping[str, JsonValue]) -> str:
    """The run's key: the template's value as text (at most 255 characters). KeyFailed
    when it fails, is null, an object or a list, or is too long."""
    try:
        value = template.render({"input": input, "trigger": dict(trigger)}, limit=64 * 1024)
    except ExpressionFailed as exc:
        raise KeyFailed(_error(f"concurrencyKey failed: {exc.message}")) from exc
    if value is None or isinstance(value, dict | list):
        kind = "null" if value is None else kind_of(value)
        raise KeyFailed(_error(f"concurrencyKey gave {kind}; it must give text, a number "
                               "or a boolean"))  # fmt: skip
    text = to_text(value)
    if not text or len(text) > MAX_KEY_LENGTH:
        raise KeyFailed(
            _error(
                f"concurrencyKey gave {len(text)} characters; it must give 1 to {MAX_KEY_LENGTH}"
            )
        )
    return text


def _error(message: str) -> dict[str, JsonValue]:
    return {"message": message, "code": "expression_failed", "path": "$.concurrencyKey"}
