"""CEL expressions: compiled once when a workflow is saved, evaluated against JSON data.

An expression sees four variables: `input`, `steps`, `execution` and `trigger`.
`compile_expression` rejects any other free name and any function this CEL runtime lacks,
so that a typo is reported when the workflow is saved rather than when it runs.

What users may rely on (pinned by tests/unit/test_expressions.py):
- JSON integers are CEL `int` and other JSON numbers CEL `double`. CEL never converts
  between them implicitly: `input.count + 1` works for an integer, `input.price * 2.0` for
  a fractional number, and mixing the two needs `double(x)` or `int(x)`. Comparisons
  (`==`, `<`...) across int and double do work.
- Reading a missing key fails the expression; `has(input.maybe)` tests for one first.
- Results are plain JSON values. Objects come back with their keys sorted (CEL maps are
  unordered). CEL timestamps become RFC 3339 strings and durations strings such as
  `"90s"`; bytes, infinities and NaN are errors.

The runtime is the Rust `cel` package; no Python evaluator ever sees the expression.
"""

from __future__ import annotations

import difflib
import math
import re
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Literal, TypeAlias

import cel
import orjson
from pydantic import JsonValue

from flowsync.engine.budget import MACROS, Cost, estimate
from flowsync.engine.depth import too_deep
from flowsync.errors import ExpressionFailed, ExpressionSyntaxError

__all__ = [
    "FUNCTIONS",
    "MAX_SOURCE_CHARS",
    "MAX_TOKENS",
    "MAX_VALUE_DEPTH",
    "SECRETS",
    "SECRETS_WHERE",
    "VARIABLES",
    "Expression",
    "Token",
    "compile_expression",
    "describe",
    "result_size",
    "scan",
]

VARIABLES = frozenset({"input", "steps", "execution", "trigger"})
"""The only free variables an expression may use."""

SECRETS = "secrets"
"""The variable of an owner's secrets: only `{{ secrets.NAME }}`, alone in its placeholder,
and only where the compiler is told secrets are allowed (an action's url, headers, body)."""
SECRET_USE = re.compile(r"secrets\s*\.\s*([A-Za-z_][A-Za-z0-9_]{0,63})")
SECRETS_WHERE = "secrets can be used only in an action's url, headers and body"

# The functions the Rust runtime implements (macros such as `has` and `map` are expanded by
# the parser and never show up as functions). cel-go extensions such as `lowerAscii` or
# `split` are absent, so naming one is reported at compile time instead of at run time.
FUNCTIONS = frozenset(
    {
        "size", "contains", "startsWith", "endsWith", "matches",
        "int", "uint", "double", "string", "bytes", "dyn", "type",
        "timestamp", "duration",
        "getFullYear", "getMonth", "getDate", "getDayOfMonth", "getDayOfYear",
        "getDayOfWeek", "getHours", "getMinutes", "getSeconds", "getMilliseconds",
    }
)  # fmt: skip

# Type denotations (`type(x) == int`) parse as identifiers, so they are not unknown names.
_TYPE_NAMES = frozenset(
    {"int", "uint", "double", "bool", "string", "bytes", "list", "map", "null_type", "type"}
)

# The Rust parser and evaluator recurse once per level of the syntax tree and per level of
# nesting of a value, and crash the whole process (SIGSEGV) when a thread's stack runs out:
# a 1,600-term sum does on a 1 MiB stack. These limits keep far below that on 256 KiB.
MAX_SOURCE_CHARS = 10_000
MAX_TOKENS = 500
MAX_VALUE_DEPTH = 100


@dataclass(frozen=True, slots=True)
class Token:
    """One lexical token of CEL source; `closed` is False for an unterminated string."""

    kind: Literal["ident", "string", "number", "punct"]
    text: str
    start: int
    end: int
    closed: bool = True


_IDENT = re.compile(r"[A-Za-z_][A-Za-z0-9_]*")
_NUMBER = re.compile(r"0[xX][0-9a-fA-F]+[uU]?|[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?[uU]?")
_STRING_PREFIXES = frozenset({"r", "R", "b", "B", "rb", "rB", "Rb", "RB", "br", "bR", "Br", "BR"})
_TWO_CHAR_OPERATORS = frozenset({"==", "!=", "<=", ">=", "&&", "||"})


def scan(text: str, start: int = 0) -> Iterator[Token]:
    """The CEL tokens of `text` from `start` on, skipping whitespace and `//` comments.

    Lenient by design: it never raises, whatever the text, so that the template scanner
    can use it to find where an embedded expression ends. String literals (all quote
    styles and prefixes) come out as single tokens, which is what callers rely on.
    """
    i, n = start, len(text)
    while i < n:
        char = text[i]
        if char.isspace():
            i += 1
            continue
        if text.startswith("//", i):
            newline = text.find("\n", i)
            i = n if newline < 0 else newline + 1
            continue
        ident = _IDENT.match(text, i)
        if ident:
            word, end = ident.group(), ident.end()
            if word in _STRING_PREFIXES and end < n and text[end] in "'\"":
                stop, closed = _string_end(text, end, raw="r" in word.lower())
                yield Token("string", text[i:stop], i, stop, closed)
                i = stop
            else:
                yield Token("ident", word, i, end)
                i = end
            continue
        if char in "'\"":
            stop, closed = _string_end(text, i, raw=False)
            yield Token("string", text[i:stop], i, stop, closed)
            i = stop
            continue
        number = _NUMBER.match(text, i)
        if number:
            yield Token("number", number.group(), i, number.end())
            i = number.end()
            continue
        size = 2 if text[i : i + 2] in _TWO_CHAR_OPERATORS else 1
        yield Token("punct", text[i : i + size], i, i + size)
        i += size


def _string_end(text: str, i: int, *, raw: bool) -> tuple[int, bool]:
    """Where the string literal whose opening quote is at `i` ends, and whether it does."""
    quote = text[i : i + 3] if text[i : i + 3] in ("'''", '"""') else text[i]
    j = i + len(quote)
    while j < len(text):
        if not raw and text[j] == "\\":
            j += 2
            continue
        if text.startswith(quote, j):
            return j + len(quote), True
        j += 1
    return len(text), False


# Which part of each variable an expression can read: None means all of it, a dict the
# named keys only. Passing only that part matters: the Rust binding converts the whole
# context on every call: about 8 ms for a 110 KB context, against 20 µs for the fields used.
_Need: TypeAlias = dict[str, "_Need"] | None


class Expression:
    """A compiled CEL expression. Build one with `compile_expression`.

    Safe to share and to reuse across threads and calls: it holds no per-call state.
    `cost` is its static estimate (see `flowsync.engine.budget`); `cost.offloaded` tells
    whether a worker evaluates it away from its event loop.
    """

    __slots__ = ("_needs", "_program", "cost", "secret", "source")

    def __init__(
        self,
        source: str,
        program: cel.Program,
        needs: dict[str, _Need],
        cost: Cost,
        secret: str | None = None,
    ) -> None:
        self.source = source
        self._program = program
        self._needs = needs
        self.cost = cost
        self.secret = secret
        """The secret's name when the expression is `secrets.NAME` (the only form one
        that reads a secret may take)."""

    @property
    def variables(self) -> frozenset[str]:
        """The top-level variables (of `VARIABLES`) that the expression reads."""
        return frozenset(self._needs)

    @property
    def steps_read(self) -> frozenset[str] | None:
        """The node ids whose steps the expression reads (`steps.<id>...`), or None when
        it may read any (`steps[...]`, `size(steps)`, a comprehension over `steps`)."""
        if "steps" not in self._needs:
            return frozenset()
        need = self._needs["steps"]
        return None if need is None else frozenset(need)

    def __repr__(self) -> str:
        return f"Expression({self.source!r})"

    def evaluate(self, context: Mapping[str, object]) -> JsonValue:
        """The expression's value for `context` (a mapping from variable name to JSON data).

        Returns a plain JSON value (dict, list, str, int, float, bool or None). Raises
        `ExpressionFailed`, whose message quotes the expression, for any evaluation error:
        a missing key, mismatched types, division by zero, a variable absent from
        `context`, a value nested deeper than `MAX_VALUE_DEPTH`, or a result with no JSON
        form.
        """
        return self.run(self.prepare(context))

    def prepare(self, context: Mapping[str, object]) -> dict[str, object]:
        """The part of `context` the expression reads: what `run` takes. Raises
        `ExpressionFailed` for data nested deeper than `MAX_VALUE_DEPTH`."""
        variables: dict[str, object] = {}
        for name, need in self._needs.items():
            if name in context:
                variables[name] = _prune(context[name], need)
        if too_deep(variables, MAX_VALUE_DEPTH):
            raise ExpressionFailed(
                f"expression {_quote(self.source)} failed: its data is nested more than "
                f"{MAX_VALUE_DEPTH} levels deep"
            )
        return variables

    def run(self, variables: dict[str, object]) -> JsonValue:
        """The expression's value for variables that `prepare` gave (see `evaluate`)."""
        try:
            result = self._program.execute(variables)
        except Exception as exc:  # the binding raises many built-in types; all mean "failed"
            raise ExpressionFailed(
                f"expression {_quote(self.source)} failed: {_runtime_message(exc)}"
            ) from exc
        try:
            return _to_json(result)
        except _NoJSONForm as exc:
            raise ExpressionFailed(
                f"expression {_quote(self.source)} gave {exc.args[0]}, which has no JSON form"
            ) from None

    def evaluate_bool(self, context: Mapping[str, object]) -> bool:
        """Like `evaluate`, for a condition: raises `ExpressionFailed` unless the value is
        a boolean (no truthiness: `1`, `"true"` or `null` are errors)."""
        return self.check_bool(self.evaluate(context))

    def check_bool(self, value: JsonValue) -> bool:
        """`value`, the expression's value, as a condition's result (see `evaluate_bool`)."""
        if not isinstance(value, bool):
            raise ExpressionFailed(
                f"condition {_quote(self.source)} gave {describe(value)}, not true or false"
            )
        return value

    def quoted(self) -> str:
        """The source in backquotes, cut at 120 characters, for messages."""
        return _quote(self.source)


def compile_expression(source: str, *, budget: bool = True, secrets: bool = False) -> Expression:
    """Compile CEL `source` once for many evaluations.

    Raises `ExpressionSyntaxError` with a one-line message for a syntax error (with line
    and column), an empty or over-long source, a free variable other than `input`,
    `steps`, `execution` and `trigger` (names bound by `all`, `exists`, `exists_one`, `map`
    and `filter` are fine), an unknown function, or (when `budget`) a cost over the
    budget of `flowsync.engine.budget`. Deterministic: the same source always gives an
    equivalent `Expression`. With `secrets`, the expression may also be exactly
    `secrets.NAME` (see `SECRETS`); without, any use of `secrets` is refused, saying where
    secrets are allowed.
    """
    if not source.strip():
        raise ExpressionSyntaxError("an expression cannot be empty")
    if len(source) > MAX_SOURCE_CHARS:
        raise ExpressionSyntaxError(
            f"an expression is at most {MAX_SOURCE_CHARS} characters long (got {len(source)})"
        )
    tokens = list(scan(source))
    if len(tokens) > MAX_TOKENS:
        raise ExpressionSyntaxError(
            f"expression {_quote(source)} is too complex: at most {MAX_TOKENS} tokens "
            f"(got {len(tokens)}); split it across steps"
        )
    try:
        program = cel.compile(source)
    except Exception as exc:  # the binding raises ValueError today; any failure is a syntax error
        raise ExpressionSyntaxError(
            f"invalid expression {_quote(source)}: {_parse_message(exc)}"
        ) from exc
    scopes = _macro_scopes(tokens)
    bound = frozenset(scopes)
    free = [
        name
        for name in program.variables()
        if name not in VARIABLES
        and name not in _TYPE_NAMES
        and not _always_in_scope(name, tokens, scopes.get(name, []))
    ]
    secret = None
    if SECRETS in free:
        free.remove(SECRETS)
        use = SECRET_USE.fullmatch(source.strip())
        if not secrets:
            problems = [SECRETS_WHERE]
        elif use is None:
            problems = [
                "a secret is read as `secrets.NAME` alone in its placeholder (no expression "
                "may compute with a secret's value)"
            ]
        else:
            problems, secret = [], use.group(1)
    else:
        problems = []
    problems += [_unknown_variable(name) for name in free]
    problems += [
        f"unknown function '{name}'"
        for name in program.functions()
        # Operators appear as `_+_`, `!_`, `@in`...: only named functions are checked.
        if name[:1].isalpha() and name not in FUNCTIONS
    ]
    cost = estimate(tokens)
    over = cost.problem() if budget else None
    if over is not None:
        problems.append(over)
    if problems:
        raise ExpressionSyntaxError(f"invalid expression {_quote(source)}: {'; '.join(problems)}")
    needs = _needs(tokens, bound)
    if secret is not None:
        needs[SECRETS] = {secret: None}
    return Expression(source, program, needs, cost, secret)


def result_size(value: JsonValue) -> int:
    """A lower bound of the size in bytes of `value`'s JSON, cheap for scalars and text:
    what a running total of rendered values adds up to stop a template that grows too
    big before it is complete."""
    if isinstance(value, str):
        return len(value) + 2
    if isinstance(value, list | dict):
        return len(orjson.dumps(value))
    return 1


def describe(value: object) -> str:
    """A short description of a JSON value for error messages, e.g. `the number 3`."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, int | float):
        return f"the number {value}"
    if isinstance(value, str):
        shown = value if len(value) <= 40 else value[:40] + "…"
        return f"the string {shown!r}"
    if isinstance(value, list):
        return f"a list of {len(value)} items"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"


def _quote(source: str) -> str:
    shown = source if len(source) <= 120 else source[:120] + "…"
    return f"`{shown}`"


def _unknown_variable(name: str) -> str:
    close = difflib.get_close_matches(name, sorted(VARIABLES), n=1)
    hint = f"did you mean '{close[0]}'? " if close else ""
    return (
        f"unknown variable '{name}' ({hint}expressions can use input, steps, execution and trigger)"
    )


_PARSE_ERROR = re.compile(r"ERROR: <input>:(\d+):(\d+): ([^\n]*)")
_INNER_MESSAGE = re.compile(r'msg: "([^"]*)"')


def _parse_message(exc: Exception) -> str:
    """The binding's multi-line report, cut to its first error with line and column."""
    text = str(exc)
    found = _PARSE_ERROR.search(text)
    if not found:
        return text.strip() or type(exc).__name__
    line, column, message = found.groups()
    inner = _INNER_MESSAGE.search(message)  # nesting limits come wrapped in a Rust Debug dump
    if inner:
        message = inner.group(1)
    return f"line {line}, column {column}: {message}"


def _runtime_message(exc: Exception) -> str:
    if isinstance(exc, KeyError) and exc.args:
        return f"no such key {exc.args[0]!r} (use has() to test for an optional field)"
    return str(exc).strip() or type(exc).__name__


def _macro_scopes(tokens: list[Token]) -> dict[str, list[tuple[int, int]]]:
    """Names bound by comprehension macros (the `x` of `list.map(x, ...)`), each with the
    token ranges (the macro's parentheses) where it is bound."""
    closing: dict[int, int] = {}
    opened: list[int] = []
    for i, token in enumerate(tokens):
        if token.text in ("(", "[", "{"):
            opened.append(i)
        elif token.text in (")", "]", "}") and opened:
            closing[opened.pop()] = i
    scopes: dict[str, list[tuple[int, int]]] = {}
    for i in range(len(tokens) - 4):
        dot, macro, paren, name, comma = tokens[i : i + 5]
        if (
            dot.text == "."
            and macro.kind == "ident"
            and macro.text in MACROS
            and paren.text == "("
            and name.kind == "ident"
            and comma.text == ","
        ):
            scopes.setdefault(name.text, []).append((i + 2, closing.get(i + 2, len(tokens))))
    return scopes


def _always_in_scope(name: str, tokens: list[Token], scopes: list[tuple[int, int]]) -> bool:
    """Whether every use of `name` as a variable lies inside a macro that binds it."""
    if not scopes:
        return False
    for i, token in enumerate(tokens):
        if token.kind != "ident" or token.text != name:
            continue
        if i > 0 and tokens[i - 1].text == ".":
            continue  # a field name, not a variable
        if not any(start < i < stop for start, stop in scopes):
            return False
    return True


def _needs(tokens: list[Token], bound: frozenset[str]) -> dict[str, _Need]:
    """The parts of each variable the expression can read, from its field-selection chains.

    A chain `steps.fetch.output.body` needs only that path; a chain that ends in an index,
    an operator or a method call needs the whole value where it ends. Conservative: when in
    doubt (a macro rebinding a variable's name), the whole variable is passed.
    """
    needs: dict[str, _Need] = {}
    for i, token in enumerate(tokens):
        if token.kind != "ident" or token.text not in VARIABLES:
            continue
        if i > 0 and tokens[i - 1].text == ".":
            continue  # a field that happens to be named `input`, not the variable
        if i + 1 < len(tokens) and tokens[i + 1].text == "(":
            continue  # a call, not a variable
        if token.text in bound:
            needs[token.text] = None
            continue
        path = [token.text]
        j = i + 1
        while (
            j + 1 < len(tokens)
            and tokens[j].text == "."
            and tokens[j + 1].kind == "ident"
            and not (j + 2 < len(tokens) and tokens[j + 2].text == "(")  # a method call
        ):
            path.append(tokens[j + 1].text)
            j += 2
        _add_path(needs, path)
    return needs


def _add_path(needs: dict[str, _Need], path: list[str]) -> None:
    node = needs
    for key in path[:-1]:
        if key in node and node[key] is None:
            return  # the whole value is needed already
        child = node.setdefault(key, {})
        assert child is not None
        node = child
    node[path[-1]] = None


def _prune(value: object, need: _Need) -> object:
    if need is None or not isinstance(value, Mapping):
        return value
    # Keys absent from the data stay absent, so `has()` and missing-key errors are unchanged.
    return {key: _prune(value[key], sub) for key, sub in need.items() if key in value}


class _NoJSONForm(Exception):
    """A CEL result that has no JSON form; args[0] describes it."""


def _to_json(value: object) -> JsonValue:
    if value is None or isinstance(value, bool | str | int):
        return value
    if isinstance(value, float):
        if not math.isfinite(value):
            raise _NoJSONForm(f"the number {value}")
        return value
    if isinstance(value, list | tuple):
        return [_to_json(item) for item in value]
    if isinstance(value, Mapping):
        # CEL maps are unordered and the binding's order changes from one process to the
        # next; sorted keys make results, and text built from them, reproducible.
        items = sorted((_json_key(key), item) for key, item in value.items())
        return {key: _to_json(item) for key, item in items}
    if isinstance(value, datetime):
        return _format_timestamp(value)
    if isinstance(value, timedelta):
        return _format_duration(value)
    if isinstance(value, bytes):
        raise _NoJSONForm("bytes (convert them with string())")
    raise _NoJSONForm(f"a {type(value).__name__} value")


def _json_key(key: object) -> str:
    # CEL maps may have int, uint or bool keys; JSON objects have strings only.
    if isinstance(key, bool):
        return "true" if key else "false"
    if isinstance(key, str | int):
        return str(key)
    raise _NoJSONForm(f"a map with a {type(key).__name__} key")


def _format_timestamp(value: datetime) -> str:
    text = value.isoformat()
    return text[:-6] + "Z" if text.endswith("+00:00") else text


def _format_duration(value: timedelta) -> str:
    """CEL's own duration syntax: seconds with an `s` suffix, e.g. `90s` or `-1.5s`."""
    micros = (value.days * 86_400 + value.seconds) * 1_000_000 + value.microseconds
    sign = "-" if micros < 0 else ""
    seconds, fraction = divmod(abs(micros), 1_000_000)
    text = f"{seconds}.{fraction:06d}".rstrip("0").rstrip(".")
    return f"{sign}{text}s"
