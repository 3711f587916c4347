"""Definition validation: the spec's example, each rule broken, random graphs, any shape."""

from __future__ import annotations

import copy
import itertools
import json
from collections.abc import Callable
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsync.engine.definition import ActionData, DelayData, NodeType, parse_instant
from flowsync.engine.validation import (
    MAX_DEPTH,
    MAX_EDGES,
    MAX_NODES,
    CompiledWorkflow,
    parse_definition_bytes,
    validate_definition,
    validate_workflow_document,
)
from flowsync.errors import (
    DefinitionInvalid,
    InvalidInput,
    PayloadTooLarge,
    Problem,
)

FIXTURE = Path(__file__).parent.parent / "fixtures" / "order-sync.json"
Definition = dict[str, Any]


def example() -> dict[str, Any]:
    document: dict[str, Any] = json.loads(FIXTURE.read_text())
    return document


def problems_of(definition: object) -> list[Problem]:
    with pytest.raises(DefinitionInvalid) as info:
        validate_definition(definition)
    assert info.value.details, "a DefinitionInvalid always lists its problems"
    return info.value.details


# --- the spec's example ------------------------------------------------------------------


def test_the_spec_example_validates() -> None:
    document = validate_workflow_document(example())
    wf = document.workflow
    assert document.name == "order-sync"
    assert wf.start_id == "start"
    assert wf.end_ids == ("end",)
    assert list(wf.nodes) == [n["id"] for n in example()["definition"]["nodes"]]
    assert wf.topological_order == (
        "start", "fetch", "paid", "cool_off", "split", "crm", "mail", "merge", "shape",
        "reply", "end",
    )  # fmt: skip
    assert [e.target for e in wf.outgoing["split"]] == ["crm", "mail"]
    assert [(e.source, e.handle) for e in wf.incoming["end"]] == [
        ("paid", "false"),
        (
            "reply",
            None,
        ),
    ]
    assert wf.definition == example()["definition"]


def test_the_example_compiles_what_each_handler_needs() -> None:
    wf = validate_definition(example()["definition"])
    context = {
        "input": {"orderId": 42},
        "steps": {
            "fetch": {
                "output": {"status": 200, "body": {"id": 42, "state": "paid", "items": [1, 2]}},
                "status": "COMPLETED",
            },
            "shape": {"output": {"orderId": 42}, "status": "COMPLETED"},
        },
    }
    fetch = wf.nodes["fetch"]
    assert isinstance(fetch.data, ActionData)
    assert fetch.data.timeout_seconds == 10
    assert fetch.data.retry.max_attempts == 5
    assert fetch.data.accepts(204) and not fetch.data.accepts(304)
    assert fetch.url is not None and fetch.url.render(context) == "https://shop.example/orders/42"
    assert fetch.headers is not None and fetch.headers.render(context) == {}
    assert fetch.query is not None and fetch.body is None
    paid = wf.nodes["paid"]
    assert paid.condition is not None and paid.condition.evaluate_bool(context) is True
    assert isinstance(wf.nodes["cool_off"].data, DelayData)
    assert wf.nodes["cool_off"].until is None
    crm = wf.nodes["crm"]
    assert crm.body is not None and crm.body.render(context) == {"order": 42}
    shape = wf.nodes["shape"].output
    assert shape is not None
    assert shape.render(context) == {"orderId": 42, "summary": "Order 42 synced", "itemCount": 2}
    reply = wf.nodes["reply"]
    assert reply.body is not None and reply.body.render(context) == {"ok": True, "order": 42}
    assert wf.nodes["end"].output is None and wf.nodes["end"].data is not None
    assert wf.nodes["split"].data is None and wf.nodes["split"].expressions == ()
    assert [e.source for e in wf.nodes["shape"].expressions] == [
        "steps.fetch.output.body.id",
        "steps.fetch.output.body.id",
        "size(steps.fetch.output.body.items)",
    ]


def test_compiling_is_deterministic() -> None:
    first = validate_definition(example()["definition"])
    second = validate_definition(copy.deepcopy(first.definition))
    assert second.definition == first.definition
    assert second.topological_order == first.topological_order
    assert second.edges == first.edges


Mutation = Callable[[Definition], None]


def _set(path: str, value: object) -> Mutation:
    """A mutation that sets a dotted path (`nodes.1.data.url`) to `value`."""

    def apply(definition: Definition) -> None:
        *parents, last = path.split(".")
        target: Any = definition
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        if last.isdigit():
            target[int(last)] = value
        else:
            target[last] = value

    return apply


def _append(key: str, *items: object) -> Mutation:
    return lambda definition: definition[key].extend(items)


def _delete(path: str) -> Mutation:
    def apply(definition: Definition) -> None:
        *parents, last = path.split(".")
        target: Any = definition
        for key in parents:
            target = target[int(key)] if key.isdigit() else target[key]
        del target[int(last) if last.isdigit() else last]

    return apply


def _both(*mutations: Mutation) -> Mutation:
    def apply(definition: Definition) -> None:
        for mutation in mutations:
            mutation(definition)

    return apply


BROKEN: list[tuple[str, Mutation, str, str]] = [
    ("no start", _both(_delete("edges.0"), _delete("nodes.0")), "$.nodes", "needs a start node"),
    (
        "two starts",
        _both(
            _append("nodes", {"id": "start2", "type": "start"}),
            _append("edges", {"source": "start2", "target": "fetch"}),
        ),
        "$.nodes[11]",
        "a second start node 'start2'",
    ),
    (
        "start with an incoming edge",
        _append("edges", {"source": "reply", "target": "start"}),
        "$.edges[12]",
        "start node 'start' cannot have incoming edges",
    ),
    ("no end", _set("nodes.10.type", "transform"), "$.nodes", "at least one end node"),
    (
        "end with an outgoing edge",
        _both(
            _append("nodes", {"id": "after", "type": "end"}),
            _append("edges", {"source": "end", "target": "after"}),
        ),
        "$.edges[12]",
        "end node 'end' cannot have outgoing edges",
    ),
    (
        "cycle",
        _append("edges", {"source": "merge", "target": "split"}),
        "$.nodes[4]",
        "a cycle: split → crm → merge → split",
    ),
    (
        "unreachable node",
        _both(
            _append("nodes", {"id": "lonely", "type": "transform", "data": {"output": 1}}),
            _append("edges", {"source": "lonely", "target": "end"}),
        ),
        "$.nodes[11]",
        "node 'lonely' cannot be reached from the start node",
    ),
    (
        "no path to an end",
        _both(
            _append("nodes", {"id": "stuck", "type": "mystery"}),
            _append("edges", {"source": "crm", "target": "stuck"}),
        ),
        "$.nodes[11]",
        "no path leads from node 'stuck' to an end node",
    ),
    ("dead end", _delete("edges.9"), "$.nodes[7]", "join 'merge' has no outgoing edge"),
    ("fork with one branch", _delete("edges.6"), "$.nodes[4]", "two or more outgoing edges"),
    ("join with one branch", _delete("edges.8"), "$.nodes[7]", "two or more incoming edges"),
    (
        "condition with three edges",
        _append("edges", {"source": "paid", "target": "reply", "sourceHandle": "true"}),
        "$.nodes[2]",
        "needs exactly two outgoing edges",
    ),
    (
        "condition with two true edges",
        _set("edges.3.sourceHandle", "true"),
        "$.edges[3].sourceHandle",
        'has two "true" edges (also $.edges[2])',
    ),
    (
        "bad handle",
        _set("edges.2.sourceHandle", "yes"),
        "$.edges[2].sourceHandle",
        'needs sourceHandle "true" or "false" (got \'yes\')',
    ),
    ("missing handle", _delete("edges.3.sourceHandle"), "$.edges[3].sourceHandle", "(got none)"),
    (
        "handle on a plain edge",
        _set("edges.0.sourceHandle", "true"),
        "$.edges[0].sourceHandle",
        "only a condition's edges",
    ),
    (
        "edge to a missing node",
        _set("edges.11.target", "ending"),
        "$.edges[11].target",
        "no node has the id 'ending'",
    ),
    (
        "duplicate edge",
        _append("edges", {"source": "split", "target": "crm"}),
        "$.edges[12]",
        "duplicate edge split → crm (also $.edges[5])",
    ),
    (
        "self-loop",
        _append("edges", {"source": "shape", "target": "shape"}),
        "$.edges[12]",
        "self-loop on node 'shape'",
    ),
    ("bad node id", _set("nodes.1.id", "1fetch"), "$.nodes[1].id", "not a valid node id"),
    ("long node id", _set("nodes.1.id", "f" * 65), "$.nodes[1].id", "at most 64 characters"),
    ("duplicate node id", _set("nodes.6.id", "crm"), "$.nodes[6].id", "duplicate node id 'crm'"),
    ("unknown type", _set("nodes.8.type", "shaper"), "$.nodes[8].type", "unknown node type"),
    ("id not a string", _set("nodes.8.id", 8), "$.nodes[8].id", "must be a string, not a number"),
    (
        "timeout too long",
        _set("nodes.1.data.timeoutSeconds", 301),
        "$.nodes[1].data.timeoutSeconds",
        "less than or equal to 300",
    ),
    (
        "timeout as text",
        _set("nodes.1.data.timeoutSeconds", "10"),
        "$.nodes[1].data.timeoutSeconds",
        "must be a number, not a string",
    ),
    (
        "typo in data",
        _set("nodes.1.data.retry.maxAttempt", 2),
        "$.nodes[1].data.retry.maxAttempt",
        "unknown field 'maxAttempt' (did you mean 'maxAttempts'?)",
    ),
    (
        "a field of another node type",
        _set("nodes.8.data.retry", {"maxAttempts": 2}),
        "$.nodes[8].data.retry",
        "unknown field 'retry' (only action nodes have it)",
    ),
    (
        "no attempts",
        _set("nodes.1.data.retry.maxAttempts", 0),
        "$.nodes[1].data.retry.maxAttempts",
        "greater than or equal to 1",
    ),
    (
        "lowercase method",
        _set("nodes.5.data.method", "post"),
        "$.nodes[5].data.method",
        "must be 'GET'",
    ),
    ("missing url", _delete("nodes.5.data.url"), "$.nodes[5].data.url", "is required"),
    ("ftp url", _set("nodes.6.data.url", "ftp://mail.example"), "$.nodes[6].data.url", "http"),
    (
        "header value list",
        _set("nodes.5.data.headers", {"X-A": ["a"]}),
        '$.nodes[5].data.headers["X-A"]',
        "must be a string, a number or a boolean",
    ),
    (
        "bad success status",
        _set("nodes.5.data.successStatuses", [200, 600]),
        "$.nodes[5].data.successStatuses[1]",
        "between 100 and 599",
    ),
    (
        "bad condition",
        _set("nodes.2.data.expression", "steps.fetch.output.status =="),
        "$.nodes[2].data.expression",
        "line 1, column 29",
    ),
    (
        "condition in braces",
        _set("nodes.2.data.expression", "{{ input.ok }}"),
        "$.nodes[2].data.expression",
        "without {{ }}",
    ),
    (
        "unknown variable",
        _set("nodes.2.data.expression", "step.fetch.output.status == 200"),
        "$.nodes[2].data.expression",
        "did you mean 'steps'?",
    ),
    (
        "bad template",
        _set("nodes.8.data.output.summary", "Order {{ steps.fetch.output.body.id"),
        "$.nodes[8].data.output.summary",
        "has no matching `}}`",
    ),
    (
        "bad url template",
        _set("nodes.1.data.url", "https://x/{{ input.id + }}"),
        "$.nodes[1].data.url",
        "invalid expression",
    ),
    (
        "delay with both",
        _set("nodes.3.data.until", "2025-01-01T00:00:00Z"),
        "$.nodes[3].data",
        "exactly one of seconds or until",
    ),
    (
        "delay with neither",
        _set("nodes.3.data", {}),
        "$.nodes[3].data",
        "exactly one of seconds or until",
    ),
    (
        "delay too long",
        _set("nodes.3.data.seconds", 30 * 86400 + 1),
        "$.nodes[3].data.seconds",
        "less than or equal to 2592000",
    ),
    (
        "until without timezone",
        _set("nodes.3.data", {"until": "2025-01-01T00:00:00"}),
        "$.nodes[3].data.until",
        "no timezone",
    ),
    (
        "until not a time",
        _set("nodes.3.data", {"until": "tomorrow"}),
        "$.nodes[3].data.until",
        "not an ISO-8601 time",
    ),
    (
        "data on a fork",
        _set("nodes.4.data", {"x": 1}),
        "$.nodes[4].data",
        "a fork node takes no data",
    ),
    ("data not an object", _set("nodes.1.data", [1]), "$.nodes[1].data", "must be an object"),
    ("node is a string", _set("nodes.4", "split"), "$.nodes[4]", "a node must be an object"),
    (
        "edge is a list",
        _set("edges.0", ["start", "fetch"]),
        "$.edges[0]",
        "an edge must be an object",
    ),
    ("edge without target", _delete("edges.0.target"), "$.edges[0].target", "is required"),
    ("nodes missing", _delete("nodes"), "$.nodes", "is required"),
    ("edges not a list", _set("edges", {}), "$.edges", "must be a list, not an object"),
    (
        "status too low",
        _set("nodes.9.data.status", 99),
        "$.nodes[9].data.status",
        "greater than or equal to 200",
    ),
    ("transform without output", _set("nodes.8.data", {}), "$.nodes[8].data.output", "is required"),
]


@pytest.mark.parametrize(
    ("mutation", "path", "fragment"),
    [pytest.param(m, p, f, id=name) for name, m, p, f in BROKEN],
)
def test_each_broken_variant_names_the_path(mutation: Mutation, path: str, fragment: str) -> None:
    definition = example()["definition"]
    mutation(definition)
    found = problems_of(definition)
    assert any(p.path == path and fragment in p.message for p in found), found
    assert all(p.path.startswith("$") for p in found)


def test_problems_name_the_node_or_edge() -> None:
    definition = example()["definition"]
    definition["nodes"][2]["data"]["expression"] = "1 +"
    definition["edges"][0]["sourceHandle"] = "x"
    found = problems_of(definition)
    assert Problem("$.nodes[2].data.expression", found[0].message, "paid", None) in found
    assert any(p.path == "$.edges[0].sourceHandle" and p.edge == 0 for p in found)


def test_every_problem_is_reported_at_once() -> None:
    definition = example()["definition"]
    for mutation in (
        _set("nodes.1.data.timeoutSeconds", 0),
        _set("nodes.2.data.expression", "1 +"),
        _set("nodes.5.data.body.order", "{{ x"),
        _set("edges.2.sourceHandle", "yes"),
        _append("edges", {"source": "merge", "target": "split"}),
    ):
        mutation(definition)
    paths = {p.path for p in problems_of(definition)}
    assert {
        "$.nodes[1].data.timeoutSeconds",
        "$.nodes[2].data.expression",
        "$.nodes[5].data.body.order",
        "$.edges[2].sourceHandle",
        "$.nodes[4]",
    } <= paths


def test_a_bad_field_and_a_bad_template_in_one_node_are_both_reported() -> None:
    definition = example()["definition"]
    definition["nodes"][5]["data"]["timeoutSeconds"] = 999
    definition["nodes"][5]["data"]["body"] = {"order": "{{ 1 + }}"}
    paths = {p.path for p in problems_of(definition)}
    assert {"$.nodes[5].data.timeoutSeconds", "$.nodes[5].data.body.order"} <= paths


@pytest.mark.parametrize(
    ("raw", "path"),
    [
        (None, "$"),
        (3, "$"),
        ("nodes", "$"),
        ([], "$"),
        ({}, "$.nodes"),
        ({"nodes": None, "edges": []}, "$.nodes"),
        ({"nodes": "abc", "edges": []}, "$.nodes"),
        ({"nodes": [1, None, [], "s", True], "edges": [{}, 2]}, "$.nodes[0]"),
        (
            {"nodes": [{"id": 5, "type": None, "data": []}], "edges": [{"source": 1}]},
            "$.nodes[0].id",
        ),
        ({"nodes": [{}], "edges": []}, "$.nodes[0].id"),
        ({"nodes": [{"id": "a", "type": "action", "data": "x"}], "edges": []}, "$.nodes[0].data"),
        (
            {"nodes": [{"id": "a", "type": "start", "position": "top"}], "edges": []},
            "$.nodes[0].position",
        ),
        ({"nodes": [], "edges": []}, "$.nodes"),
    ],
)
def test_any_shape_gives_problems_not_a_traceback(raw: object, path: str) -> None:
    found = problems_of(raw)
    assert any(p.path == path for p in found), found


def test_limits() -> None:
    many_nodes = {"nodes": [{"id": f"n{i}", "type": "fork"} for i in range(MAX_NODES + 1)]}
    many_nodes["edges"] = []
    assert any(p.path == "$.nodes" and "at most 500" in p.message for p in problems_of(many_nodes))
    many_edges = example()["definition"]
    many_edges["edges"] = [{"source": "a", "target": "b"}] * (MAX_EDGES + 1)
    assert any(p.path == "$.edges" and "at most 2000" in p.message for p in problems_of(many_edges))
    huge = example()["definition"]
    huge["nodes"][8]["data"]["output"]["pad"] = "x" * (1 << 20)
    with pytest.raises(PayloadTooLarge):
        validate_definition(huge)
    deep: Any = "x"
    for _ in range(MAX_DEPTH + 1):
        deep = [deep]
    nested = example()["definition"]
    nested["nodes"][8]["data"]["output"] = deep
    assert any("nested more than" in p.message for p in problems_of(nested))


def test_reactflow_extras_are_dropped_and_spec_keys_kept() -> None:
    definition = example()["definition"]
    definition["viewport"] = {"x": 0, "y": 0, "zoom": 1}
    definition["nodes"][0].update(
        position={"x": 10, "y": 20.5}, label="Begin", selected=True, measured={"width": 3}
    )
    definition["edges"][0].update(id="e-start-fetch", targetHandle=None, animated=True)
    definition["edges"][1]["sourceHandle"] = None
    stored = validate_definition(definition).definition
    assert stored["nodes"][0] == {  # type: ignore[index]
        "id": "start",
        "type": "start",
        "position": {"x": 10, "y": 20.5},
        "label": "Begin",
    }
    assert stored["edges"][0] == {"id": "e-start-fetch", "source": "start", "target": "fetch"}  # type: ignore[index]
    assert stored["edges"][1] == {"source": "fetch", "target": "paid"}  # type: ignore[index]
    assert "viewport" not in stored


def test_start_fork_and_join_accept_empty_data() -> None:
    definition = example()["definition"]
    definition["nodes"][0]["data"] = {}
    definition["nodes"][4]["data"] = None
    validate_definition(definition)


def test_delay_until_a_template_or_an_instant() -> None:
    definition = example()["definition"]
    definition["nodes"][3]["data"] = {"until": "{{ input.sendAt }}"}
    wf = validate_definition(definition)
    until = wf.nodes["cool_off"].until
    assert until is not None and until.render({"input": {"sendAt": "2025-01-01T00:00:00Z"}})
    definition["nodes"][3]["data"] = {"until": "2025-01-31T09:00:00+02:00"}
    validate_definition(definition)
    assert parse_instant("2025-01-31T09:00:00Z").utcoffset() is not None
    assert parse_instant("2025-01-31T09:00:00+02:00").hour == 7  # in UTC, as it is kept
    # An offset that takes a time past year 9999 in UTC cannot be kept: refused, named.
    definition["nodes"][3]["data"] = {"until": "9999-12-31T23:00:00-14:00"}
    [problem] = problems_of(definition)
    assert problem.path == "$.nodes[3].data.until" and "outside years 1-9999" in problem.message


def test_success_statuses_are_codes_or_ranges() -> None:
    data = ActionData.model_validate(
        {"method": "GET", "url": "https://x.example", "successStatuses": [304, "200-204"]}
    )
    assert [s for s in range(100, 600) if data.accepts(s)] == [200, 201, 202, 203, 204, 304]
    default = ActionData.model_validate({"method": "GET", "url": "https://x.example"})
    assert default.accepts(200) and default.accepts(299) and not default.accepts(300)
    assert default.retry.interval(1) == 1 and default.retry.interval(3) == 4
    assert default.retry.interval(10_000) == 300


# --- documents and bytes -----------------------------------------------------------------


def test_a_document_is_trimmed_and_its_problems_collected_together() -> None:
    document = example()
    document["name"] = "  order-sync  "
    document["description"] = "  "
    parsed = validate_workflow_document(document)
    assert parsed.name == "order-sync" and parsed.description is None
    broken = example()
    broken["name"] = ""
    broken["descripton"] = "typo"
    broken["definition"]["nodes"][1]["data"]["timeoutSeconds"] = 0
    with pytest.raises(DefinitionInvalid) as info:
        validate_workflow_document(broken)
    paths = [p.path for p in info.value.details]
    assert "$.name" in paths and "$.descripton" in paths
    assert "$.definition.nodes[1].data.timeoutSeconds" in paths


@pytest.mark.parametrize(
    ("raw", "path", "fragment"),
    [
        ([], "$", "must be an object"),
        ({"definition": {}}, "$.name", "is required"),
        ({"name": "x" * 201, "definition": {}}, "$.name", "at most 200"),
        ({"name": 5, "definition": {}}, "$.name", "must be a string"),
        (
            {"name": "n", "description": "d" * 2001, "definition": {}},
            "$.description",
            "at most 2000",
        ),
        ({"name": "n"}, "$.definition", "is required"),
        ({"name": "n", "definition": []}, "$.definition", "must be an object"),
    ],
)
def test_document_problems(raw: object, path: str, fragment: str) -> None:
    with pytest.raises(DefinitionInvalid) as info:
        validate_workflow_document(raw)
    assert any(p.path == path and fragment in p.message for p in info.value.details)


def test_parse_definition_bytes() -> None:
    assert parse_definition_bytes(b'{"a": [1, 2.5]}') == {"a": [1, 2.5]}
    assert parse_definition_bytes('\ufeff{"a": 1}'.encode()) == {"a": 1}
    assert parse_definition_bytes('{"é": 1}') == {"é": 1}
    with pytest.raises(PayloadTooLarge):
        parse_definition_bytes(b" " * 11, max_bytes=10)
    with pytest.raises(PayloadTooLarge):
        parse_definition_bytes("é" * 6, max_bytes=10)  # counted in UTF-8 bytes
    with pytest.raises(InvalidInput, match="line 2, column 5") as info:
        parse_definition_bytes(b'{"a":\n    }')
    assert info.value.details[0].path == "$"
    for bad in (b'{"a": NaN}', b"[Infinity]", b"\xff\xfe", b"[" * 100_000, b""):
        with pytest.raises(InvalidInput):
            parse_definition_bytes(bad)


# --- random graphs ------------------------------------------------------------------------

SIMPLE_DATA: dict[str, dict[str, Any] | None] = {
    "action": {
        "method": "POST",
        "url": "https://example.test/{{ input.id }}",
        "body": {"id": "{{ input.id }}"},
    },
    "transform": {"output": {"id": "{{ input.id }}", "text": "id {{ input.id }}"}},
    "delay": {"seconds": 1},
    "webhook_response": {"status": 201, "body": "{{ input }}"},
    "join": None,
}


@st.composite
def workflows(draw: st.DrawFn, max_nodes: int = 14) -> Definition:
    """A random valid definition: any DAG in which `n0` (start) has one child, every node
    has a parent and a node without children is an end; types follow from the degrees
    (forks and conditions split, joins merge). Node and edge order are shuffled."""
    count = draw(st.integers(min_value=3, max_value=max_nodes))
    parents: dict[int, list[int]] = {1: [0]}
    for i in range(2, count):
        parents[i] = draw(
            st.lists(st.integers(1, i - 1), min_size=1, max_size=min(3, i - 1), unique=True)
        )
    children: dict[int, list[int]] = {i: [] for i in range(count)}
    for child, its_parents in parents.items():
        for parent in sorted(its_parents):
            children[parent].append(child)
    nodes: list[dict[str, Any]] = [{"id": "n0", "type": "start"}]
    edges: list[dict[str, Any]] = []
    for i in range(1, count):
        out, incoming = len(children[i]), len(parents[i])
        if out == 0:
            kind = "end"
        elif out == 1:
            kinds = ["action", "transform", "delay", "webhook_response"]
            kind = draw(st.sampled_from([*kinds, "join"] if incoming >= 2 else kinds))
        elif out == 2:
            kind = draw(st.sampled_from(["fork", "condition"]))
        else:
            kind = "fork"
        node: dict[str, Any] = {"id": f"n{i}", "type": kind}
        if kind == "condition":
            node["data"] = {"expression": "input.flag == true"}
            handles = draw(st.permutations(["true", "false"]))
            for child, handle in zip(children[i], handles, strict=True):
                edges.append({"source": f"n{i}", "target": f"n{child}", "sourceHandle": handle})
        else:
            edges.extend({"source": f"n{i}", "target": f"n{c}"} for c in children[i])
        if kind == "end" and draw(st.booleans()):
            node["data"] = {"output": {"done": "{{ input.id }}"}}
        elif SIMPLE_DATA.get(kind) is not None:
            node["data"] = copy.deepcopy(SIMPLE_DATA[kind])
        nodes.append(node)
    edges.append({"source": "n0", "target": "n1"})
    return {"nodes": draw(st.permutations(nodes)), "edges": draw(st.permutations(edges))}


def index_of(definition: Definition, node_id: str) -> int:
    return next(i for i, n in enumerate(definition["nodes"]) if n["id"] == node_id)


def assert_consistent(wf: CompiledWorkflow, definition: Definition) -> None:
    position = {node_id: i for i, node_id in enumerate(wf.topological_order)}
    assert sorted(position) == sorted(n["id"] for n in definition["nodes"])
    for edge in wf.edges:
        assert position[edge.source] < position[edge.target]
    assert wf.start_id == "n0"
    assert list(wf.end_ids) == [n["id"] for n in definition["nodes"] if n["type"] == "end"]
    for node in wf.nodes.values():
        outs = wf.outgoing[node.id]
        if node.type is NodeType.CONDITION:
            assert sorted(e.handle or "" for e in outs) == ["false", "true"]
        elif node.type is NodeType.FORK:
            assert len(outs) >= 2
        elif node.type is not NodeType.END:
            assert len(outs) == 1


@settings(max_examples=120, deadline=None)
@given(workflows())
def test_random_valid_workflows_validate(definition: Definition) -> None:
    wf = validate_definition(definition)
    assert wf.definition == definition
    assert_consistent(wf, definition)
    again = validate_definition(copy.deepcopy(wf.definition))
    assert again.topological_order == wf.topological_order


@settings(max_examples=80, deadline=None)
@given(workflows(), st.data())
def test_an_injected_cycle_is_named_in_order(definition: Definition, data: st.DataObject) -> None:
    plain = [e for e in definition["edges"] if e["source"] != "n0"]
    if not plain:
        return
    edge = data.draw(st.sampled_from(plain))
    definition["edges"].append({"source": edge["target"], "target": edge["source"]})
    cycles = [p for p in problems_of(definition) if p.message.startswith("a cycle: ")]
    assert cycles
    for problem in cycles:
        names = problem.message.removeprefix("a cycle: ").split(" → ")
        pairs = {(e["source"], e["target"]) for e in definition["edges"]}
        assert names[0] == names[-1] == problem.node_id
        assert all((a, b) in pairs for a, b in itertools.pairwise(names))
        assert problem.path == f"$.nodes[{index_of(definition, names[0])}]"


@settings(max_examples=60, deadline=None)
@given(workflows())
def test_an_injected_unreachable_node_is_the_only_problem(definition: Definition) -> None:
    end = next(n["id"] for n in definition["nodes"] if n["type"] == "end")
    definition["nodes"].append({"id": "orphan", "type": "delay", "data": {"seconds": 5}})
    definition["edges"].append({"source": "orphan", "target": end})
    assert problems_of(definition) == [
        Problem(
            f"$.nodes[{len(definition['nodes']) - 1}]",
            "node 'orphan' cannot be reached from the start node",
            "orphan",
        )
    ]


@settings(max_examples=60, deadline=None)
@given(workflows(), st.data())
def test_an_injected_dead_end_is_the_only_problem(
    definition: Definition, data: st.DataObject
) -> None:
    # Route one edge through a new fork whose second branch goes nowhere.
    edge = data.draw(st.sampled_from(definition["edges"]))
    target = edge["target"]
    edge["target"] = "split"
    definition["nodes"] += [
        {"id": "split", "type": "fork"},
        {"id": "dangling", "type": "transform", "data": {"output": 1}},
    ]
    definition["edges"] += [
        {"source": "split", "target": target},
        {"source": "split", "target": "dangling"},
    ]
    [problem] = problems_of(definition)
    assert problem.path == f"$.nodes[{len(definition['nodes']) - 1}]"
    assert problem.node_id == "dangling"
    assert "has no outgoing edge" in problem.message


@settings(max_examples=60, deadline=None)
@given(workflows(), st.data())
def test_an_injected_bad_handle_is_the_only_problem(
    definition: Definition, data: st.DataObject
) -> None:
    index = data.draw(st.integers(0, len(definition["edges"]) - 1))
    edge = definition["edges"][index]
    edge["sourceHandle"] = "maybe" if "sourceHandle" in edge else "true"
    [problem] = problems_of(definition)
    assert problem.path == f"$.edges[{index}].sourceHandle"
    assert problem.edge == index and problem.node_id == edge["source"]


@settings(max_examples=60, deadline=None)
@given(workflows(), st.data())
def test_an_injected_bad_expression_is_the_only_problem(
    definition: Definition, data: st.DataObject
) -> None:
    candidates = [n for n in definition["nodes"] if n["type"] in ("end", "condition")]
    node = data.draw(st.sampled_from(candidates))
    if node["type"] == "condition":
        node["data"] = {"expression": "input.flag =="}
        expected = "data.expression"
    else:
        node["data"] = {"output": {"x": ["{{ input. }}"]}}
        expected = "data.output.x[0]"
    [problem] = problems_of(definition)
    assert problem.path == f"$.nodes[{index_of(definition, node['id'])}].{expected}"
    assert problem.node_id == node["id"]


json_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | st.text(max_size=6),
    lambda inner: (
        st.lists(inner, max_size=3)
        | st.dictionaries(
            st.sampled_from(["id", "type", "data", "source", "target", "sourceHandle", "x"]),
            inner,
            max_size=3,
        )
    ),
    max_leaves=8,
)


@settings(max_examples=150, deadline=None)
@given(st.data())
def test_garbage_anywhere_gives_problems(data: st.DataObject) -> None:
    """Replace a random part of the example by random JSON: never a traceback."""
    definition: Any = example()["definition"]
    parent = definition
    key: Any = data.draw(st.sampled_from(["nodes", "edges"]))
    while isinstance(parent[key], dict | list) and data.draw(st.booleans()):
        parent = parent[key]
        keys = list(parent) if isinstance(parent, dict) else list(range(len(parent)))
        if not keys:
            break
        key = data.draw(st.sampled_from(keys))
    parent[key] = data.draw(json_values)
    try:
        validate_definition(definition)
    except DefinitionInvalid as exc:
        assert exc.details
        assert all(isinstance(p.path, str) and p.path.startswith("$") for p in exc.details)


# --- what a node's expressions may read of the other steps -------------------------------


def _with_data(node_id: str, data: dict[str, Any]) -> Definition:
    definition: Definition = example()["definition"]
    [node] = [n for n in definition["nodes"] if n["id"] == node_id]
    node["data"] = {**(node.get("data") or {}), **data}
    return definition


@pytest.mark.parametrize(
    ("node_id", "data", "path", "fragment"),
    [
        # Found by QA: each of these was saved, and what the expression saw depended on
        # timing (or was always missing).
        ("crm", {"body": {"order": "{{ steps.fecth.output.body.id }}"}},
         "$.nodes[5].data.body.order", "steps.fecth names no node of this workflow"),
        ("crm", {"body": {"seen": "{{ steps.crm.output }}"}},
         "$.nodes[5].data.body.seen", "steps.crm is this node's own step"),
        ("crm", {"body": {"sibling": "x {{ steps.mail.output.status }} y"}},
         "$.nodes[5].data.body.sibling", "steps.mail is not upstream of 'crm'"),
        ("paid", {"expression": "steps.shape.output.orderId == 'x'"},
         "$.nodes[2].data.expression", "steps.shape is not upstream of 'paid'"),
    ],
)  # fmt: skip
def test_a_step_read_must_be_upstream(
    node_id: str, data: dict[str, Any], path: str, fragment: str
) -> None:
    [problem] = problems_of(_with_data(node_id, data))
    assert problem.path == path and problem.node_id == node_id
    assert fragment in problem.message, problem.message


def test_steps_upstream_are_read_from_anywhere_below_them() -> None:
    # After the join both branches are upstream; after the condition's merge into `end`,
    # so is each side (a skipped one reads as absent: `has()`).
    definition = _with_data(
        "shape", {"output": {"both": "{{ [steps.crm.output, steps.mail.output] }}",
                             "early": "{{ has(steps.cool_off.status) }}"}},
    )  # fmt: skip
    validate_definition(definition)
    # `steps[...]` may read any step: it cannot be checked, and is left as it was.
    validate_definition(_with_data("crm", {"body": {"any": "{{ steps['mail'] }}"}}))


@pytest.mark.parametrize("key", ["config", "parameters", "settings"])
def test_settings_outside_data_are_refused_not_dropped(key: str) -> None:
    # Found by QA: {"type": "delay", "config": {"seconds": 30}} was saved as a delay
    # without its settings (other tools keep them there).
    definition = example()["definition"]
    definition["nodes"][3][key] = {"seconds": 30}
    [problem] = problems_of(definition)
    assert problem.path == f"$.nodes[3].{key}" and problem.node_id == "cool_off"
    assert "settings go in `data`" in problem.message
