"""Checking one expression or template string as the editor's user types it.

The verdict comes from the compile path that validates a save: a condition's expression
goes through `ConditionData` and `compile_expression`, a template string through
`compile_template`, with the same cost budget. Nothing is evaluated. Each problem says
where it is when that is known: `position` is a 0-based offset into the text, counted in
characters (Unicode code points), pointing at the error CEL reports (line and column),
at an unknown variable or function, or at the `{{` of the template's bad placeholder.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from enum import StrEnum

from pydantic import ValidationError

from flowsync.engine.definition import ConditionData
from flowsync.engine.expressions import compile_expression, scan
from flowsync.engine.problems import translate_errors
from flowsync.engine.templates import _placeholder_end, compile_template
from flowsync.errors import ExpressionSyntaxError, InvalidInput, Problem, shown

__all__ = ["MAX_CHECK_CHARS", "ExpressionKind", "ExpressionProblem", "check_expression"]

# Longer than any expression may be (10,000) and than a template string usually is: past
# it, `validateWorkflow` checks the whole definition instead, so this stays cheap.
MAX_CHECK_CHARS = 100_000

_LINE_COLUMN = re.compile(r"line (\d+), column (\d+):")
_AT_CHARACTER = re.compile(r"^the `\{\{[^`]*` at character (\d+)")
_UNKNOWN = re.compile(r"unknown (variable|function) '([A-Za-z_][A-Za-z0-9_]*)'")


class ExpressionKind(StrEnum):
    """What the text is: a condition's CEL, or a template string (`{{ expr }}` inside)."""

    EXPRESSION = "EXPRESSION"
    TEMPLATE = "TEMPLATE"


@dataclass(frozen=True, slots=True)
class ExpressionProblem:
    """What is wrong, and where in the text (None when no place is known)."""

    message: str
    position: int | None = None


def check_expression(text: object, kind: object) -> list[ExpressionProblem]:
    """The problems of `text` as a `kind` (none: it compiles). Raises `InvalidInput` for
    a text that is not a string or is over MAX_CHECK_CHARS, or an unknown kind."""
    if not isinstance(text, str):
        raise InvalidInput(
            "expression must be a string.", [Problem("expression", "must be a string")]
        )
    if len(text) > MAX_CHECK_CHARS:
        raise InvalidInput(
            f"expression is at most {MAX_CHECK_CHARS} characters long here; validateWorkflow "
            "checks a whole definition.",
            [Problem("expression", f"{len(text)} characters, over {MAX_CHECK_CHARS}")],
        )
    try:
        which = ExpressionKind(str(kind))
    except ValueError:
        raise InvalidInput(
            "kind must be EXPRESSION or TEMPLATE.",
            [Problem("kind", f"must be EXPRESSION or TEMPLATE, not {shown(kind)!r}")],
        ) from None
    if which is ExpressionKind.EXPRESSION:
        return _condition_problems(text)
    return _template_problems(text)


def _condition_problems(text: str) -> list[ExpressionProblem]:
    try:
        ConditionData.model_validate({"expression": text})
    except ValidationError as exc:
        return [ExpressionProblem(p.message) for p in translate_errors(exc, "$")]
    try:
        compile_expression(text)
    except ExpressionSyntaxError as exc:
        return [ExpressionProblem(exc.message, _locate(exc.message, text, 0))]
    return []


def _template_problems(text: str) -> list[ExpressionProblem]:
    # The check does not know the field: `{{ secrets.NAME }}` passes here (it is right in
    # an action's url, headers and body); a save refuses it anywhere else, at its path.
    try:
        compile_template(text, secrets=True)
    except ExpressionSyntaxError as exc:
        # A template string reports its first bad placeholder, as when it is saved.
        message = exc.details[0].message if exc.details else exc.message
        return [ExpressionProblem(message, _template_position(message, text))]
    return []


def _template_position(message: str, text: str) -> int | None:
    found = _AT_CHARACTER.match(message)
    if found:
        return int(found.group(1)) - 1
    # An expression that does not compile: the first placeholder whose does not.
    position = 0
    while (opening := text.find("{{", position)) >= 0:
        closing = _placeholder_end(text, opening + 2)
        if closing is None:
            return opening
        inner = text[opening + 2 : closing]
        source = inner.strip()
        start = opening + 2 + (len(inner) - len(inner.lstrip()))
        try:
            compile_expression(source, secrets=True)
        except ExpressionSyntaxError as exc:
            inside = _locate(exc.message, source, start)
            return inside if inside is not None else opening
        position = closing + 2
    return None


def _locate(message: str, source: str, start: int) -> int | None:
    """Where in `source` (which begins at offset `start` of the text) `message` points."""
    found = _LINE_COLUMN.search(message)
    if found:
        line, column = int(found.group(1)), int(found.group(2))
        lines = source.split("\n")
        if line <= len(lines):
            offset = sum(len(lines[i]) + 1 for i in range(line - 1)) + column - 1
            return start + min(offset, len(source))
        return None
    unknown = _UNKNOWN.search(message)
    if unknown is None:
        return None
    what, name = unknown.groups()
    tokens = list(scan(source))
    for i, token in enumerate(tokens):
        if token.kind != "ident" or token.text != name:
            continue
        after_dot = i > 0 and tokens[i - 1].text == "."
        called = i + 1 < len(tokens) and tokens[i + 1].text == "("
        if (what == "function" and called) or (what == "variable" and not after_dot):
            return start + token.start
    return None
