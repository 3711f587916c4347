"""The structural rules of a definition's graph, and its topological order.

One start node without incoming edges; at least one end, without outgoing edges; the
out-degree each type demands (a fork two or more, a condition exactly a "true" and a
"false" edge, every other node but an end exactly one) and a join's two or more incoming
edges; no cycle; every node reachable from the start and reaching an end. Every broken
rule is reported, with the path of the node or edge concerned.
"""

from __future__ import annotations

import heapq
from collections import deque
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass
from typing import Protocol

from flowsync.engine.definition import NodeType
from flowsync.engine.problems import ProblemCollector

__all__ = ["CompiledEdge", "Vertex", "check_structure"]


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
    if node.type is NodeType.START:
        for edge in ins:
            message = f"the start node {name!r} cannot have incoming edges"
            check.add(check.edge_path(edge.index), message, name, edge.index)
    if node.type is NodeType.END:
        for edge in outs:
            message = f"the end node {name!r} cannot have outgoing edges"
            check.add(check.edge_path(edge.index), message, name, edge.index)
        return
    if node.type is NodeType.FORK:
        if len(outs) < 2:
            message = f"fork {name!r} needs two or more outgoing edges (has {len(outs)})"
            check.add(path, message, name)
        return
    if node.type is NodeType.CONDITION:
        first: dict[str, CompiledEdge] = {}
        for edge in outs:
            if edge.handle not in ("true", "false"):
                continue  # reported with the edge
            if edge.handle in first:
                also = check.edge_path(first[edge.handle].index)
                message = f'condition {name!r} has two "{edge.handle}" edges (also {also})'
                check.add(f"{check.edge_path(edge.index)}.sourceHandle", message, name, edge.index)
            else:
                first[edge.handle] = edge
        if len(outs) != 2:
            message = (
                f"condition {name!r} needs exactly two outgoing edges, one with sourceHandle "
                f'"true" and one with "false" (has {len(outs)})'
            )
            check.add(path, message, name)
        return
    if node.type is NodeType.JOIN and len(ins) < 2:
        check.add(path, f"join {name!r} needs two or more incoming edges (has {len(ins)})", name)
    if not outs:
        message = f"{node.type} {name!r} has no outgoing edge; only an end node may end a path"
        check.add(path, message, name)
    elif len(outs) > 1:
        message = (
            f"{node.type} {name!r} has {len(outs)} outgoing edges; it must have exactly one "
            "(use a fork for parallel branches, a condition for a choice)"
        )
        check.add(path, message, name)


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
