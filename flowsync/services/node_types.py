"""The node types the editor offers, described by the very rules that validate a save.

Each type's `data` schema is `model_json_schema()` of its model in `DATA_MODELS` (the
model that validates the data when a workflow is saved), and its connection rules are
`structure.CONNECTIONS` (the table the structural validation reads). So a node type
added to the engine appears in the editor with no change there, and the form and the
rules cannot disagree with the validator. Computed once: pure, the same for everyone.
"""

from __future__ import annotations

import functools
from collections.abc import Mapping
from dataclasses import dataclass
from types import MappingProxyType

from pydantic import JsonValue

from flowsync.engine.definition import DATA_MODELS, NodeType
from flowsync.engine.structure import CONNECTIONS

__all__ = ["NodeTypeInfo", "node_types"]

# The types that take no `data` have no model whose docstring describes them.
_NO_DATA: Mapping[NodeType, str] = MappingProxyType(
    {
        NodeType.START: "Where every execution begins; its output is the execution's input.",
        NodeType.FORK: "Runs every outgoing branch in parallel.",
        NodeType.JOIN: (
            "Waits for every incoming branch; its output is an object keyed by each taken "
            "incoming node's id, holding that node's output."
        ),
    }
)


@dataclass(frozen=True, slots=True)
class NodeTypeInfo:
    """One node type: what the palette shows (`label`, `description`), the JSON Schema
    of its `data` (None when it takes none; the fields holding CEL carry
    `"x-flowsync": "expression"` or `"template"`), and how it connects (see
    `structure.Connections`; `max_outgoing` None: no upper bound)."""

    type: str
    label: str
    description: str
    data_schema: dict[str, JsonValue] | None
    has_target: bool
    has_source: bool
    source_handles: tuple[str, ...]
    optional_handles: tuple[str, ...]
    min_outgoing: int
    max_outgoing: int | None
    min_incoming: int


def _describe(node_type: NodeType) -> NodeTypeInfo:
    model = DATA_MODELS[node_type]
    schema: dict[str, JsonValue] | None = None
    if model is not None:
        schema = model.model_json_schema()
        description = str(schema.get("description", ""))
    else:
        description = _NO_DATA[node_type]
    rule = CONNECTIONS[node_type]
    return NodeTypeInfo(
        type=node_type.value,
        label=node_type.value.replace("_", " ").capitalize(),
        description=description,
        data_schema=schema,
        has_target=rule.has_target,
        has_source=rule.has_source,
        source_handles=rule.source_handles,
        optional_handles=rule.optional_handles,
        min_outgoing=rule.min_outgoing,
        max_outgoing=rule.max_outgoing,
        min_incoming=rule.min_incoming,
    )


@functools.cache
def node_types() -> tuple[NodeTypeInfo, ...]:
    """Every node type, in the order of `NodeType`. Raises KeyError at the first call
    when a type lacks its connection rules or (without data) its description: a test
    calls it, so that such a type cannot ship."""
    return tuple(_describe(t) for t in NodeType)
