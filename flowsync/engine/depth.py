"""How deeply a JSON-like value nests: one check for every place that takes JSON from a
client or a step (definitions, inputs, expression data), so that nothing recursive (a
serializer, a CEL evaluation, Postgres' jsonb) ever meets a value deep enough to fail."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def _children(item: object) -> Iterable[object] | None:
    """A container's values (None: not a container). dict and list, the JSON parsers'
    types, are told by their exact type; the ABC check only runs for anything else."""
    kind = type(item)
    if kind is dict:
        return item.values()  # type: ignore[attr-defined, no-any-return]
    if kind is list or kind is tuple:
        return item  # type: ignore[return-value]
    if kind is str or kind is int or kind is float or kind is bool or item is None:
        return None
    if isinstance(item, Mapping):
        return item.values()
    if isinstance(item, list | tuple):
        return item
    return None


def too_deep(value: object, limit: int) -> bool:
    """Whether `value` holds a container (mapping, list or tuple) nested deeper than
    `limit` levels: a container at depth `limit` is one too many. Iterative, so a value
    of any depth is answered without reaching the recursion limit; only containers are
    stacked (an object of scalars costs one pass over its values)."""
    top = _children(value)
    if top is None:
        return False
    if limit <= 0:
        return True
    stack: list[tuple[Iterable[object], int]] = [(top, 1)]
    while stack:
        children, depth = stack.pop()
        for child in children:
            inner = _children(child)
            if inner is None:
                continue
            if depth >= limit:
                return True
            stack.append((inner, depth + 1))
    return False
