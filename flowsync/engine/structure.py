"""The structural rules of a definition's graph, and its topological order.

One start node without incoming edges; at least one end, without outgoing edges; the
degrees each type demands, read from one table, `CONNECTIONS` (a fork two or more
outgoing edges, a condition exactly a "true" and a "false" edge, every other node but an
end exactly one; a join two or more incoming edges), which the API also serves to the
editor (`nodeTypes`); no cycle; every node reachable from the start and reaching an end.
Every broken rule is reported, with the path of the node or edge concerned.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from flowsync.engine.definition import NodeType
from flowsync.engine.problems import ProblemCollector

__all__ = ["CONNECTIONS", "CompiledEdge", "Connections", "Vertex", "check_structure"]


@dataclass(frozen=True, slots=True)
class Connections:
    """How a node of one type connects. `has_target`: it may have incoming edges;
    `has_source`: outgoing ones. `source_handles`: the `sourceHandle` each outgoing edge
    carries, each once (none: its edges carry none). Outgoing edges number from
    `min_outgoing` to `max_outgoing` (None: no upper bound). `optional_handles`: handles
    an outgoing edge may carry, at most once each, besides those (a wait's `"timeout"`);
    a type with optional handles but no `source_handles` has exactly one edge without a
    handle. `min_incoming`: one for
    every type but the start is implied by reachability from the start (a node without
    incoming edges is reported as unreachable); more is a rule of its own."""

    has_target: bool = True
    has_source: bool = True
    source_handles: tuple[str, ...] = ()
    min_outgoing: int = 1
    max_outgoing: int | None = 1
    min_incoming: int = 1
    optional_handles: tuple[str, ...] = ()


CONNECTIONS: dict[NodeType, Connections] = {
    NodeType.START: Connections(has_target=False, min_incoming=0),
    NodeType.END: Connections(has_source=False, min_outgoing=0, max_outgoing=0),
    NodeType.ACTION: Connections(),
    NodeType.CONDITION: Connections(
        source_handles=("true", "false"), min_outgoing=2, max_outgoing=2
    ),
    NodeType.DELAY: Connections(),
    NodeType.FORK: Connections(min_outgoing=2, max_outgoing=None),
    NodeType.JOIN: Connections(min_incoming=2),
    NodeType.TRANSFORM: Connections(),
    NodeType.WEBHOOK_RESPONSE: Connections(),
    NodeType.WORKFLOW: Connections(),
    NodeType.WAIT: Connections(optional_handles=("timeout",), max_outgoing=2),
    NodeType.APPROVAL: Connections(
        source_handles=("approved", "rejected"),
        optional_handles=("timeout",),
        min_outgoing=2,
        max_outgoing=3,
    ),
}
"""Each node type's connection rules: what `check_structure` applies, and what the
editor draws (handles) and checks as edges are drawn."""

_COUNTS = {1: "one", 2: "two"}


@dataclass(frozen=True, slots=True)
class CompiledEdge:
    """An edge; `index` is its position in the definition's `edges` list."""

    index: int
    source: str
    target: str
    handle: str | None


class Vertex(Protocol):
    """What the rules need of a node. `type` is None for an unknown type (reported
    elsewhere), which has no degree rule of its own."""

    @property
    def index(self) -> int: ...
    @property
    def id(self) -> str: ...
    @property
    def type(self) -> NodeType | None: ...


def check_structure(
    nodes: Mapping[str, Vertex], edges: Sequence[CompiledEdge], check: ProblemCollector
) -> tuple[str, ...] | None:
    """Check every structural rule of the spec on `nodes` (by id, in document order) and
    `edges` (those whose ends exist, without self-loops or duplicates), reporting to
    `check`. Returns the topological order (ties broken by document order) when the
    graph has no cycle, else None."""
    outgoing: dict[str, list[CompiledEdge]] = {node_id: [] for node_id in nodes}
    incoming: dict[str, list[CompiledEdge]] = {node_id: [] for node_id in nodes}
    for edge in edges:
        outgoing[edge.source].append(edge)
        incoming[edge.target].append(edge)
    starts = [n for n in nodes.values() if n.type is NodeType.START]
    ends = [n for n in nodes.values() if n.type is NodeType.END]
    if not starts:
        check.add(f"{check.base}.nodes", "a workflow needs a start node; there is none")
    for extra in starts[1:]:
        check.add(
            check.node_path(extra.index),
            f"a second start node {extra.id!r}: a workflow has exactly one ({starts[0].id!r})",
            extra.id,
        )
    if not ends:
        check.add(f"{check.base}.nodes", "a workflow needs at least one end node; there is none")
    for node in nodes.values():
        _check_degree(node, outgoing[node.id], incoming[node.id], check)
    cyclic = _check_cycles(nodes, outgoing, check)
    _check_reachability(nodes, outgoing, incoming, starts, ends, check)
    return None if cyclic else _topological_order(nodes, outgoing, incoming)


def _check_degree(
    node: Vertex, outs: list[CompiledEdge], ins: list[CompiledEdge], check: ProblemCollector
) -> None:
    path, name = check.node_path(node.index), node.id
    if node.type is None:
        return  # an unknown type has no rule of its own
    rule = CONNECTIONS[node.type]
    if not rule.has_target:
        for edge in ins:
            message = f"the {node.type} node {name!r} cannot have incoming edges"
            check.add(check.edge_path(edge.index), message, name, edge.index)
    if rule.min_incoming > 1 and len(ins) < rule.min_incoming:
        message = (
            f"{node.type} {name!r} needs {_count(rule.min_incoming)} or more incoming edges "
            f"(has {len(ins)})"
        )
        check.add(path, message, name)
    if not rule.has_source:
        for edge in outs:
            message = f"the {node.type} node {name!r} cannot have outgoing edges"
            check.add(check.edge_path(edge.index), message, name, edge.index)
        return
    if rule.source_handles or rule.optional_handles:
        _check_handles(node, rule, outs, check)
        return
    if rule.max_outgoing is None:
        if len(outs) < rule.min_outgoing:
            message = (
                f"{node.type} {name!r} needs {_count(rule.min_outgoing)} or more outgoing "
                f"edges (has {len(outs)})"
            )
            check.add(path, message, name)
        return
    low, high = rule.min_outgoing, rule.max_outgoing
    if not outs and low > 0:
        message = f"{node.type} {name!r} has no outgoing edge; only an end node may end a path"
        check.add(path, message, name)
    elif not low <= len(outs) <= high:
        wanted = f"exactly {_count(high)}" if low == high else f"{low} to {high}"
        message = (
            f"{node.type} {name!r} has {len(outs)} outgoing edges; it must have {wanted} "
            "(use a fork for parallel branches, a condition for a choice)"
        )
        check.add(path, message, name)


def _check_handles(
    node: Vertex, rule: Connections, outs: list[CompiledEdge], check: ProblemCollector
) -> None:
    """A branching node: one outgoing edge per handle, at most one per optional handle
    (an edge with another handle was reported with the edge)."""
    name = node.id
    first: dict[str | None, CompiledEdge] = {}
    allowed: tuple[str | None, ...] = (*rule.source_handles, *rule.optional_handles)
    if not rule.source_handles:
        allowed = (None, *allowed)
    for edge in outs:
        if edge.handle not in allowed:
            continue  # reported with the edge
        if edge.handle in first:
            also = check.edge_path(first[edge.handle].index)
            label = "default" if edge.handle is None else f'"{edge.handle}"'
            message = f"{node.type} {name!r} has two {label} edges (also {also})"
            check.add(f"{check.edge_path(edge.index)}.sourceHandle", message, name, edge.index)
        else:
            first[edge.handle] = edge
    if rule.optional_handles:
        required: tuple[str | None, ...] = rule.source_handles or (None,)
        missing = [h for h in required if h not in first]
        if missing:
            labels = ", ".join("one without a sourceHandle" if h is None else f'one "{h}"'
                               for h in missing)  # fmt: skip
            optional = " or ".join(f'"{h}"' for h in rule.optional_handles)
            message = (
                f"{node.type} {name!r} needs an outgoing edge for each outcome: missing "
                f"{labels} (optional: {optional})"
            )
            check.add(check.node_path(node.index), message, name)
        return
    if not rule.min_outgoing <= len(outs) <= (rule.max_outgoing or len(outs)):
        handles = " and one with ".join(f'"{h}"' for h in rule.source_handles)
        message = (
            f"{node.type} {name!r} needs exactly {_count(len(rule.source_handles))} outgoing "
            f"edges, one with sourceHandle {handles} (has {len(outs)})"
        )
        check.add(check.node_path(node.index), message, name)


def _count(n: int) -> str:
    return _COUNTS.get(n, str(n))


def _check_cycles(
    nodes: Mapping[str, Vertex], outgoing: Mapping[str, list[CompiledEdge]], check: ProblemCollector
) -> bool:
    """Report one cycle per strongly connected component; True when there is any."""
    found = False
    for component in _strong_components(nodes, outgoing):
        if len(component) < 2:
            continue  # self-loops were rejected with their edge
        found = True
        first = min(component, key=lambda node_id: nodes[node_id].index)
        cycle = _cycle_through(first, component, outgoing)
        message = "a cycle: " + " → ".join([*cycle, first])
        check.add(check.node_path(nodes[first].index), message, first)
    return found


def _strong_components(
    nodes: Mapping[str, Vertex], outgoing: Mapping[str, list[CompiledEdge]]
) -> list[set[str]]:
    """Tarjan's algorithm, iterative so that a long chain cannot exhaust the stack."""
    index: dict[str, int] = {}
    low: dict[str, int] = {}
    stack: list[str] = []
    on_stack: set[str] = set()
    components: list[set[str]] = []
    for root in nodes:
        if root in index:
            continue
        work: list[tuple[str, int]] = [(root, 0)]
        while work:
            node_id, position = work.pop()
            if position == 0:
                index[node_id] = low[node_id] = len(index)
                stack.append(node_id)
                on_stack.add(node_id)
            successors = outgoing[node_id]
            if position < len(successors):
                work.append((node_id, position + 1))
                target = successors[position].target
                if target not in index:
                    work.append((target, 0))
                elif target in on_stack:
                    low[node_id] = min(low[node_id], index[target])
                continue
            if low[node_id] == index[node_id]:
                component: set[str] = set()
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.add(member)
                    if member == node_id:
                        break
                components.append(component)
            if work:
                parent = work[-1][0]
                low[parent] = min(low[parent], low[node_id])
    return components


def _cycle_through(
    first: str, component: set[str], outgoing: Mapping[str, list[CompiledEdge]]
) -> list[str]:
    """The shortest cycle from `first` back to itself inside its component."""
    parent: dict[str, str] = {}
    queue = deque([first])
    while queue:
        node_id = queue.popleft()
        for edge in outgoing[node_id]:
            if edge.target == first:
                path = [node_id]
                while path[-1] != first:
                    path.append(parent[path[-1]])
                return path[::-1]
            if edge.target in component and edge.target not in parent:
                parent[edge.target] = node_id
                queue.append(edge.target)
    return [first]  # unreachable for a true component; kept total for safety


def _check_reachability(
    nodes: Mapping[str, Vertex],
    outgoing: Mapping[str, list[CompiledEdge]],
    incoming: Mapping[str, list[CompiledEdge]],
    starts: list[Vertex],
    ends: list[Vertex],
    check: ProblemCollector,
) -> None:
    if starts:
        reached = _walk([n.id for n in starts], outgoing, lambda e: e.target)
        for node in nodes.values():
            if node.id not in reached:
                message = f"node {node.id!r} cannot be reached from the start node"
                check.add(check.node_path(node.index), message, node.id)
    if ends:
        reaching = _walk([n.id for n in ends], incoming, lambda e: e.source)
        for node in nodes.values():
            # A known type without outgoing edges was reported by its own rule already.
            if node.id in reaching or (node.type is not None and not outgoing[node.id]):
                continue
            message = f"no path leads from node {node.id!r} to an end node"
            check.add(check.node_path(node.index), message, node.id)


def _walk(
    roots: list[str],
    adjacent: Mapping[str, list[CompiledEdge]],
    step: Callable[[CompiledEdge], str],
) -> set[str]:
    seen = set(roots)
    queue = deque(roots)
    while queue:
        for edge in adjacent[queue.popleft()]:
            other = step(edge)
            if other not in seen:
                seen.add(other)
                queue.append(other)
    return seen


def _topological_order(
    nodes: Mapping[str, Vertex],
    outgoing: Mapping[str, list[CompiledEdge]],
    incoming: Mapping[str, list[CompiledEdge]],
) -> tuple[str, ...]:
    """Kahn's algorithm, ties broken by document order so that the result is stable."""
    remaining = {node_id: len(incoming[node_id]) for node_id in nodes}
    ready = [(node.index, node.id) for node in nodes.values() if remaining[node.id] == 0]
    heapq.heapify(ready)
    order: list[str] = []
    while ready:
        _, node_id = heapq.heappop(ready)
        order.append(node_id)
        for edge in outgoing[node_id]:
            remaining[edge.target] -= 1
            if remaining[edge.target] == 0:
                heapq.heappush(ready, (nodes[edge.target].index, edge.target))
    return tuple(order)
