"""A trigger's `input`: what a run it starts gets as its `input`, so that a workflow
written for manual starts (`input.order`) runs the same when a webhook or a schedule
starts it.

`input` in a WEBHOOK or CRON trigger's config is a template (see
`flowsync.engine.templates`) over one variable, `trigger`: the data the run also sees as
`trigger` (`{type, body, query, headers}` for a webhook, only what its signature vouches
for; `{type, scheduledAt}` for a cron firing). Left out (or null), a webhook's input is
its body (`{{ trigger.body }}`: the decoded JSON, a form as an object, other bodies as
text; an empty body gives `{}`), and a cron trigger's is `{}`.

A template is checked when the trigger is saved, each problem at its path under
`$.config.input`: its syntax, that it reads `trigger` only, and that it is cheap enough
to run on the API's event loop (no comprehension over data: reshape big data in a
transform step). A cron trigger's template is also tried on a firing's data, so that a
typo in a field name is refused at save. A webhook's template can still fail on a
delivery that lacks what it reads: the delivery is then refused (400, naming the
template path), and nothing starts.
"""

from __future__ import annotations

import functools
from collections.abc import Iterator, Mapping
from typing import Any

import orjson

from flowsync.engine.definition import SIGNAL_NAME
from flowsync.engine.expressions import Expression, compile_expression
from flowsync.engine.templates import Template, compile_template, json_path
from flowsync.errors import ExpressionFailed, ExpressionSyntaxError, InvalidInput, Problem

__all__ = ["check_input", "render_input"]

PATH = "$.config.input"
# The data of a cron firing, to try a template on at save.
_CRON_SAMPLE = {"type": "CRON", "scheduledAt": "2000-01-01T00:00:00Z"}
# The most a rendered input may hold (as a manual start's input may: executions.py).
MAX_RENDERED_BYTES = 1024 * 1024


def _strings(value: Any, path: str) -> Iterator[tuple[str, str]]:
    """(path, string) of every string in a JSON value, in document order."""
    stack: list[tuple[Any, str]] = [(value, path)]
    while stack:
        item, where = stack.pop()
        if isinstance(item, str):
            yield where, item
        elif isinstance(item, list):
            stack.extend((v, json_path(where, i)) for i, v in reversed(list(enumerate(item))))
        elif isinstance(item, dict):
            stack.extend((v, json_path(where, k)) for k, v in reversed(list(item.items())))


def check_input(kind: str, value: Any) -> list[Problem]:
    """The problems of `value` as the `input` template of a `kind` (WEBHOOK or CRON)
    trigger, each at its JSON path under `$.config.input`; none when it is fine."""
    problems: list[Problem] = []
    for where, text in _strings(value, PATH):
        try:
            template = compile_template(text, path=where)
        except ExpressionSyntaxError as exc:
            problems.extend(exc.details or [Problem(where, exc.message)])
            continue
        for expression in template.expressions:
            other = sorted(expression.variables - {"trigger"})
            if other:
                problems.append(
                    Problem(where, f"{expression.quoted()} reads {', '.join(other)}: a "
                            "trigger's input can read `trigger` only (trigger.body, "
                            "trigger.query, trigger.headers; a cron's trigger.scheduledAt)")
                )  # fmt: skip
        if template.offloaded:
            problems.append(
                Problem(where, f"{template.offloaded[0].quoted()} is too costly for a "
                        "trigger's input (it iterates data): reshape the data in a "
                        "transform step instead")
            )  # fmt: skip
    if not problems and kind == "CRON":
        try:
            _compiled(_key(value)).render({"trigger": _CRON_SAMPLE}, limit=MAX_RENDERED_BYTES)
        except ExpressionFailed as exc:
            problems.append(Problem(PATH, f"fails on a firing's data: {exc.message}"))
    return problems


def render_input(config: Mapping[str, Any], data: Mapping[str, Any], default: Any) -> Any:
    """The input of a run a trigger with `config` starts, from its trigger data `data`
    (`default` when the config has no `input`). A template that fails on this data is
    InvalidInput naming its path."""
    template = config.get("input")
    if template is None:
        return default
    try:
        return _compiled(_key(template)).render({"trigger": dict(data)}, limit=MAX_RENDERED_BYTES)
    except ExpressionFailed as exc:
        raise InvalidInput(
            f"The trigger's input template failed on this delivery: {exc.message}.",
            [Problem("body", exc.message)],
        ) from exc


def _key(template: Any) -> str:
    return orjson.dumps(template).decode()


@functools.lru_cache(maxsize=256)
def _compiled(key: str) -> Template:
    """A trigger's template, compiled once per distinct template (deliveries repeat)."""
    return compile_template(orjson.loads(key), path=PATH)


# The variables a signalling webhook's `match` may read: the delivery and a run's input.
MATCH_VARIABLES = frozenset({"trigger", "input"})


@functools.lru_cache(maxsize=256)
def compiled_match(source: str) -> Expression:
    """A signalling webhook's `match` expression, compiled once per process."""
    return compile_expression(source)


def check_signal_config(config: Any) -> list[Problem]:
    """The problems of a WEBHOOK trigger config's `signal` (a `WebhookConfig` with one),
    each at its path under `$.config`: the signal's name, the `match` expression (CEL
    over `trigger` and `input` only, cheap enough for the API's event loop), and the
    options a signalling webhook has no use for (`input`, synchronous mode)."""
    problems: list[Problem] = []
    signal = config.signal
    if not SIGNAL_NAME.fullmatch(signal.name):
        problems.append(
            Problem("$.config.signal.name",
                    "a signal name starts with a letter or _ and holds letters, digits, _ . -")
        )  # fmt: skip
    where = "$.config.signal.match"
    try:
        expression = compiled_match(signal.match)
    except ExpressionSyntaxError as exc:
        problems.append(Problem(where, exc.message))
    else:
        other = sorted(expression.variables - MATCH_VARIABLES)
        if other:
            problems.append(
                Problem(where, f"{expression.quoted()} reads {', '.join(other)}: a signal's "
                        "match reads `trigger` (the delivery: trigger.body, trigger.query, "
                        "trigger.headers) and `input` (a run's input) only")
            )  # fmt: skip
        if expression.cost.offloaded:
            problems.append(
                Problem(where, f"{expression.quoted()} is too costly for a signal's match "
                        "(it iterates data): compare fields, e.g. "
                        "trigger.body.orderId == input.orderId")
            )  # fmt: skip
    if config.input is not None:
        problems.append(Problem("$.config.input", "a webhook that signals starts no run"))
    if config.mode != "async":
        problems.append(
            Problem("$.config.mode", "a webhook that signals answers at once: use async")
        )
    return problems
