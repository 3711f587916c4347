"""Templates: JSON values whose strings may hold `{{ expr }}` placeholders (CEL inside).

Rules (the spec's, made precise):
- A string that is exactly one placeholder, `"{{ expr }}"` (spaces inside the braces are
  free), becomes the expression's value with its JSON type: number, list, object...
- A string with placeholders among other text (or several placeholders) becomes a string;
  each value is written with `to_text`: strings as they are, null as nothing, booleans as
  `true`/`false`, numbers as JSON, lists and objects as compact JSON.
- Every other value is copied as it is; lists and objects are walked, object keys are
  copied and never templated.
- A `{{` without its `}}` is a syntax error. A `}}` inside an expression's string literal
  or map literal does not close it. To write a literal `{{`, use `{{ '{{' }}`. A lone `}}`
  outside any placeholder is plain text.
"""

from __future__ import annotations

import json
import re
from collections.abc import Mapping
from dataclasses import dataclass

from pydantic import JsonValue

from flowsync.engine.expressions import Expression, compile_expression, result_size, scan
from flowsync.errors import ExpressionFailed, ExpressionSyntaxError, Problem

__all__ = ["Template", "compile_template", "json_path", "to_text"]

_PLAIN_KEY = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")


def json_path(base: str, key: str | int) -> str:
    """`base` extended by an object key or a list index: `$.a`, `$.a[2]`, `$.h["X-Id"]`."""
    if isinstance(key, int):
        return f"{base}[{key}]"
    if _PLAIN_KEY.fullmatch(key):
        return f"{base}.{key}"
    return f"{base}[{json.dumps(key, ensure_ascii=False)}]"


def to_text(value: JsonValue) -> str:
    """A JSON value as it is interpolated into text: `"a"` → `a`, null → ``, true →
    `true`, 1.5 → `1.5`, lists and objects → compact JSON. Also the form the engine uses
    for header and query values."""
    if value is None:
        return ""
    if isinstance(value, str):
        return value
    if isinstance(value, bool):
        return "true" if value else "false"
    return json.dumps(value, separators=(",", ":"), ensure_ascii=False, allow_nan=False)


class _Rendering:
    """One render's state: its context, values computed elsewhere, and a running total
    of the size of what it produced, checked against `limit` as it goes."""

    __slots__ = ("computed", "context", "limit", "used")

    def __init__(
        self,
        context: Mapping[str, object],
        computed: Mapping[Expression, JsonValue | ExpressionFailed],
        limit: int | None,
    ) -> None:
        self.context = context
        self.computed = computed
        self.limit = limit
        self.used = 0

    def value(self, expression: Expression, path: str) -> JsonValue:
        try:
            if expression in self.computed:
                found = self.computed[expression]
                if isinstance(found, ExpressionFailed):
                    raise found
                value = found
            else:
                value = expression.evaluate(self.context)
        except ExpressionFailed as exc:
            raise ExpressionFailed(f"template at {path}: {exc.message}") from exc
        if self.limit is not None:
            self.add(result_size(value), path)
        return value

    def add(self, size: int, path: str) -> None:
        """Count `size` more bytes; fail once the total is over the limit."""
        self.used += size
        if self.limit is not None and self.used > self.limit:
            raise ExpressionFailed(
                f"template at {path}: its value grew over {self.limit:,} bytes "
                "(the limit on a step's output, FLOWSYNC_MAX_STEP_OUTPUT_BYTES)"
            )


@dataclass(frozen=True, slots=True)
class _Constant:
    value: str | int | float | bool | None

    def render(self, r: _Rendering) -> JsonValue:
        return self.value


@dataclass(frozen=True, slots=True)
class _Whole:
    """A string that is one placeholder: the value keeps its type."""

    expression: Expression
    path: str

    def render(self, r: _Rendering) -> JsonValue:
        return r.value(self.expression, self.path)


@dataclass(frozen=True, slots=True)
class _Text:
    """A string with placeholders among text: always renders to a string."""

    parts: tuple[str | Expression, ...]
    path: str

    def render(self, r: _Rendering) -> JsonValue:
        out = []
        for part in self.parts:
            if isinstance(part, str):
                out.append(part)
                if r.limit is not None:
                    r.add(len(part), self.path)
            else:
                out.append(to_text(r.value(part, self.path)))
        return "".join(out)


@dataclass(frozen=True, slots=True)
class _List:
    items: tuple[_Node, ...]

    def render(self, r: _Rendering) -> JsonValue:
        return [item.render(r) for item in self.items]


@dataclass(frozen=True, slots=True)
class _Object:
    items: tuple[tuple[str, _Node], ...]

    def render(self, r: _Rendering) -> JsonValue:
        return {key: item.render(r) for key, item in self.items}


_Node = _Constant | _Whole | _Text | _List | _Object


class Template:
    """A compiled template. Build one with `compile_template`; reusable and thread-safe."""

    __slots__ = ("_root", "expressions", "offloaded", "secret_uses", "step_reads")

    def __init__(
        self,
        root: _Node,
        expressions: tuple[Expression, ...],
        secret_uses: tuple[tuple[str, str], ...] = (),
        step_reads: tuple[tuple[frozenset[str], str], ...] = (),
    ) -> None:
        self._root = root
        self.expressions = expressions
        """Every expression in the template, in document order."""
        self.secret_uses = secret_uses
        """Each `{{ secrets.NAME }}` of the template as (NAME, JSON path), in document
        order."""
        self.step_reads = step_reads
        """The node ids each string of the template reads as `steps.<id>`, with its JSON
        path, in document order (strings that read no step, or may read any, left out)."""
        self.offloaded = tuple(e for e in expressions if e.cost.offloaded)
        """The expressions a worker evaluates away from its event loop (see budget.py)."""

    def __repr__(self) -> str:
        return f"Template({len(self.expressions)} expressions)"

    def render(
        self,
        context: Mapping[str, object],
        *,
        limit: int | None = None,
        computed: Mapping[Expression, JsonValue | ExpressionFailed] | None = None,
    ) -> JsonValue:
        """The template's value for `context` (see `Expression.evaluate`).

        Always returns fresh lists and dicts, so a caller may change the result. Raises
        `ExpressionFailed` naming the template path and the expression that failed.
        `computed` holds the values (or the failures) of expressions already evaluated
        elsewhere, which are used instead of evaluating them here. With a `limit`, the
        render stops with `ExpressionFailed` as soon as what it produced (expressions'
        values and text) adds up to more than `limit` bytes of JSON: a template that
        repeats a big value fails before it is built whole.
        """
        return self._root.render(_Rendering(context, computed or {}, limit))


def compile_template(
    value: JsonValue, *, path: str = "$", budget: bool = True, secrets: bool = False
) -> Template:
    """Compile every placeholder of JSON `value` (see `compile_expression` for `budget`
    and `secrets`).

    Raises `ExpressionSyntaxError` whose `details` lists one `Problem` per bad string,
    each at its path under `path` (e.g. `$.body.to`). Deterministic: the same value always
    gives an equivalent template.
    """
    problems: list[Problem] = []
    expressions: list[Expression] = []
    uses: list[tuple[str, str]] = []
    reads: list[tuple[frozenset[str], str]] = []
    options = _Options(budget, secrets, uses, reads)
    root = _compile(value, path, problems, expressions, options)
    if problems:
        message = problems[0].message if len(problems) == 1 else f"{len(problems)} problems"
        raise ExpressionSyntaxError(message, problems)
    return Template(root, tuple(expressions), tuple(uses), tuple(reads))


@dataclass(frozen=True, slots=True)
class _Options:
    budget: bool
    secrets: bool
    uses: list[tuple[str, str]]
    reads: list[tuple[frozenset[str], str]]


def _compile(
    value: JsonValue,
    path: str,
    problems: list[Problem],
    expressions: list[Expression],
    options: _Options,
) -> _Node:
    if isinstance(value, str):
        try:
            node = _compile_string(value, path, options.budget, options.secrets)
        except ExpressionSyntaxError as exc:
            problems.append(Problem(path, exc.message))
            return _Constant(value)
        found: list[Expression] = []
        if isinstance(node, _Whole):
            found.append(node.expression)
        elif isinstance(node, _Text):
            found.extend(p for p in node.parts if isinstance(p, Expression))
        expressions.extend(found)
        options.uses.extend((e.secret, path) for e in found if e.secret is not None)
        read = frozenset().union(*(e.steps_read or () for e in found))
        if read:
            options.reads.append((read, path))
        return node
    if isinstance(value, list):
        return _List(
            tuple(
                _compile(item, json_path(path, i), problems, expressions, options)
                for i, item in enumerate(value)
            )
        )
    if isinstance(value, dict):
        return _Object(
            tuple(
                (key, _compile(item, json_path(path, key), problems, expressions, options))
                for key, item in value.items()
            )
        )
    if value is None or isinstance(value, bool | int | float):
        return _Constant(value)
    raise TypeError(f"not a JSON value: {type(value).__name__}")


def _compile_string(
    text: str, path: str, budget: bool, secrets: bool
) -> _Constant | _Whole | _Text:
    parts: list[str | Expression] = []
    position = 0
    while (opening := text.find("{{", position)) >= 0:
        closing = _placeholder_end(text, opening + 2)
        if closing is None:
            raise ExpressionSyntaxError(
                f"the `{{{{` at character {opening + 1} has no matching `}}}}`"
                " (write a literal {{ as {{ '{{' }})"
            )
        source = text[opening + 2 : closing].strip()
        if not source:
            raise ExpressionSyntaxError(f"the `{{{{ }}}}` at character {opening + 1} is empty")
        if opening > position:
            parts.append(text[position:opening])
        parts.append(compile_expression(source, budget=budget, secrets=secrets))
        position = closing + 2
    if position < len(text):
        parts.append(text[position:])
    if not any(isinstance(part, Expression) for part in parts):
        return _Constant(text)
    if len(parts) == 1 and isinstance(parts[0], Expression):
        return _Whole(parts[0], path)
    return _Text(tuple(parts), path)


def _placeholder_end(text: str, start: int) -> int | None:
    """Index of the `}}` that closes the placeholder opened just before `start`.

    Walks CEL tokens so that braces of map literals and string literals do not count:
    `{{ {'a': {'b': 1}} }}` and `{{ 'x}}y' }}` are single placeholders.
    """
    depth = 0
    for token in scan(text, start):
        if token.kind == "string" and not token.closed:
            return None
        if token.text == "{":
            depth += 1
        elif token.text == "}":
            if depth > 0:
                depth -= 1
            elif text.startswith("}", token.end):
                return token.start
    return None
