"""How deeply a JSON-like value nests: one check for every place that takes JSON from a
client or a step (definitions, inputs, expression data), so that nothing recursive (a
serializer, a CEL evaluation, Postgres' jsonb) ever meets a value deep enough to fail."""

from __future__ import annotations

from collections.abc import Iterable, Mapping


def too_deep(value: object, limit: int) -> bool:
    """Whether `value` holds a container (mapping, list or tuple) nested deeper than
    `limit` levels: a container at depth `limit` is one too many. Iterative, so a value
    of any depth is answered without reaching the recursion limit."""
    stack: list[tuple[object, int]] = [(value, 0)]
    while stack:
        item, depth = stack.pop()
        if isinstance(item, Mapping):
            children: Iterable[object] = item.values()
        elif isinstance(item, list | tuple):
            children = item
        else:
            continue
        if depth >= limit:
            return True
        stack.extend((child, depth + 1) for child in children)
    return False
