"""Workflow definitions used across the tests."""

from __future__ import annotations

from typing import Any


def chain(length: int, *, delay: float | None = None) -> dict[str, Any]:
    """start → t1 → … → tN → end, each transform adding 1 to the previous value."""
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "start"}]
    edges: list[dict[str, Any]] = []
    prev, prev_expr = "start", "input.n"
    if delay is not None:
        nodes.append({"id": "wait", "type": "delay", "data": {"seconds": delay}})
        edges.append({"source": prev, "target": "wait"})
        prev = "wait"
    for i in range(1, length + 1):
        node = f"t{i}"
        nodes.append(
            {
                "id": node,
                "type": "transform",
                "data": {"output": {"n": f"{{{{ {prev_expr} + 1 }}}}"}},
            }
        )
        edges.append({"source": prev, "target": node})
        prev, prev_expr = node, f"steps.{node}.output.n"
    nodes.append({"id": "end", "type": "end", "data": {"output": {"n": f"{{{{ {prev_expr} }}}}"}}})
    edges.append({"source": prev, "target": "end"})
    return {"nodes": nodes, "edges": edges}


def fan(width: int) -> dict[str, Any]:
    """start → fork → width transforms → join → end."""
    nodes: list[dict[str, Any]] = [
        {"id": "start", "type": "start"},
        {"id": "split", "type": "fork"},
        {"id": "merge", "type": "join"},
        {
            "id": "end",
            "type": "end",
            "data": {"output": {"count": "{{ size(steps.merge.output) }}"}},
        },
    ]
    edges: list[dict[str, Any]] = [
        {"source": "start", "target": "split"},
        {"source": "merge", "target": "end"},
    ]
    for i in range(width):
        nodes.append({"id": f"b{i}", "type": "transform", "data": {"output": {"i": i}}})
        edges.append({"source": "split", "target": f"b{i}"})
        edges.append({"source": f"b{i}", "target": "merge"})
    return {"nodes": nodes, "edges": edges}


def waiting(
    signal: str = "go", *, timeout: float | None = None, timeout_branch: bool = False
) -> dict[str, Any]:
    """start → wait (for `signal`) → got → end, and with `timeout_branch` a "timeout"
    edge wait → late → end. `got` and `late` say which way the run went."""
    data: dict[str, Any] = {"signal": signal}
    if timeout is not None:
        data["timeoutSeconds"] = timeout
    nodes: list[dict[str, Any]] = [
        {"id": "start", "type": "start"},
        {"id": "wait", "type": "wait", "data": data},
        {"id": "got", "type": "transform", "data": {"output": {"way": "signal"}}},
        {"id": "end", "type": "end", "data": {"output": "{{ steps.wait.output }}"}},
    ]
    edges: list[dict[str, Any]] = [
        {"source": "start", "target": "wait"},
        {"source": "wait", "target": "got"},
        {"source": "got", "target": "end"},
    ]
    if timeout_branch:
        nodes.append({"id": "late", "type": "transform", "data": {"output": {"way": "timeout"}}})
        edges += [
            {"source": "wait", "target": "late", "sourceHandle": "timeout"},
            {"source": "late", "target": "end"},
        ]
    return {"nodes": nodes, "edges": edges}


def approving(*, timeout: float | None = None) -> dict[str, Any]:
    """start → approval → yes | no (| late, with `timeout`) → end; the end's output says
    which way the run went and holds the approval's output."""
    data: dict[str, Any] = {} if timeout is None else {"timeoutSeconds": timeout}
    ways = ["approved", "rejected", *(["timeout"] if timeout is not None else [])]
    nodes: list[dict[str, Any]] = [
        {"id": "start", "type": "start"},
        {"id": "review", "type": "approval", "data": data},
        {"id": "end", "type": "end", "data": {"output": {
            "way": "{{ has(steps.approved) ? 'approved' : has(steps.rejected) ? 'rejected' "
                   ": 'timeout' }}",
            "review": "{{ steps.review.output }}",
        }}},
    ]  # fmt: skip
    edges: list[dict[str, Any]] = [{"source": "start", "target": "review"}]
    for way in ways:
        nodes.append({"id": way, "type": "transform", "data": {"output": {"way": way}}})
        edges += [
            {"source": "review", "target": way, "sourceHandle": way},
            {"source": way, "target": "end"},
        ]
    return {"nodes": nodes, "edges": edges}
