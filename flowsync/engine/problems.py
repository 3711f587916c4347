"""Problems: collecting them, and translating pydantic's errors into them.

A `Problem` names a JSON path (`$.nodes[2].data.timeoutSeconds`) and says what is wrong in
words a user of the API understands: "must be a number, not a string", "unknown field
'timeoutSecond' (did you mean 'timeoutSeconds'?)".
"""

from __future__ import annotations

import difflib

from pydantic import ValidationError
from pydantic_core import ErrorDetails

from flowsync.engine.definition import DATA_MODELS, RetryPolicy
from flowsync.engine.templates import json_path
from flowsync.errors import Problem, shown

__all__ = ["ProblemCollector", "kind_of", "translate_errors", "within"]


class ProblemCollector:
    """Collects the problems of one definition whose JSON path is `base`. `budget`:
    whether expressions over the cost budget are problems (see engine/budget.py);
    `stored`: whether the definition is a version already stored, compiled to run (the
    rules added after it may have been saved are not applied: see validate_definition)."""

    def __init__(
        self, base: str, problems: list[Problem], *, budget: bool = True, stored: bool = False
    ) -> None:
        self.base = base
        self.problems = problems
        self.budget = budget
        self.stored = stored

    def add(
        self, path: str, message: str, node_id: str | None = None, edge: int | None = None
    ) -> None:
        """Record a problem."""
        self.problems.append(Problem(path, message, node_id, edge))

    def node_path(self, index: int) -> str:
        """`$.nodes[index]` under the base path."""
        return f"{self.base}.nodes[{index}]"

    def edge_path(self, index: int) -> str:
        """`$.edges[index]` under the base path."""
        return f"{self.base}.edges[{index}]"


def within(path: str, prefix: str) -> bool:
    """Whether JSON path `path` is `prefix` or inside it."""
    return path == prefix or (path.startswith(prefix) and path[len(prefix)] in ".[")


_DATA_MODELS = [m for m in DATA_MODELS.values() if m is not None]
_VOCABULARY = sorted(
    {
        f.alias
        for model in [*_DATA_MODELS, RetryPolicy]
        for f in model.model_fields.values()
        if f.alias
    }
)
# The node types whose `data` has each field, for a field put on a node of another type.
_OWNERS: dict[str, list[str]] = {}
for _type, _model in DATA_MODELS.items():
    for _field in _model.model_fields.values() if _model is not None else ():
        if _field.alias:
            _OWNERS.setdefault(_field.alias, []).append(_type.value)
_TYPE_MESSAGES = {
    "dict_type": "an object",
    "model_type": "an object",
    "model_attributes_type": "an object",
    "list_type": "a list",
    "string_type": "a string",
    "float_type": "a number",
    "int_type": "an integer",
    "bool_type": "true or false",
}


def translate_errors(
    exc: ValidationError, base: str, *, node_id: str | None = None, edge: int | None = None
) -> list[Problem]:
    """pydantic's errors as problems at JSON paths, one per path and message."""
    problems: list[Problem] = []
    for error in exc.errors(include_url=False):
        path = base
        for part in error["loc"]:
            path = json_path(path, part)
        problem = Problem(path, _message(error), node_id, edge)
        if problem not in problems:
            problems.append(problem)
    return problems


def _message(error: ErrorDetails) -> str:
    kind, loc = error["type"], error["loc"]
    if kind == "extra_forbidden" and loc:
        name = str(loc[-1])
        if name in _OWNERS and len(loc) == 1:
            # A real field, of another node type's data (`retry` on a transform).
            return (
                f"unknown field {shown(name)!r} (only {' and '.join(_OWNERS[name])} nodes have it)"
            )
        hint = difflib.get_close_matches(name, [w for w in _VOCABULARY if w != name], 1)
        return f"unknown field {shown(name)!r}" + (f" (did you mean {hint[0]!r}?)" if hint else "")
    if kind == "missing":
        return "is required"
    if kind in _TYPE_MESSAGES:
        return f"must be {_TYPE_MESSAGES[kind]}, not {kind_of(error.get('input'))}"
    message = error["msg"]
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    if message.startswith("Input should be "):
        message = "must be " + message.removeprefix("Input should be ")
    return message


def kind_of(value: object) -> str:
    """What a JSON value is, for messages: `a string`, `an object`, `null`..."""
    if value is None:
        return "null"
    if isinstance(value, bool):
        return "a boolean"
    if isinstance(value, int | float):
        return "a number"
    if isinstance(value, str):
        return "a string"
    if isinstance(value, list):
        return "a list"
    if isinstance(value, dict):
        return "an object"
    return f"a {type(value).__name__}"
