"""Validation of workflow definitions: every rule of the spec, every problem at once.

`validate_definition` takes any parsed JSON value and either returns a `CompiledWorkflow`
(the graph indexed for the engine, every template and expression compiled) or raises
`DefinitionInvalid` whose `details` lists every problem found, each a `Problem` with the
JSON path (`$.nodes[3].data.expression`, `$.edges[5].sourceHandle`) and the node id or
edge index it concerns. Bad input of any shape gives problems, never a traceback.

Pure: no I/O and no clock. Deterministic: the same definition always compiles to an
equivalent workflow, so the engine may compile a stored version once and cache it.
"""

from __future__ import annotations

import copy
import difflib
import json
import re
from collections.abc import Mapping
from dataclasses import dataclass, field

from pydantic import JsonValue, ValidationError

from flowsync.engine.definition import (
    DATA_MODELS,
    TEMPLATE_FIELDS,
    Edge,
    Node,
    NodeData,
    NodeType,
)
from flowsync.engine.depth import too_deep
from flowsync.engine.expressions import Expression, compile_expression
from flowsync.engine.fairness import Fairness, check_fairness
from flowsync.engine.problems import ProblemCollector, kind_of, translate_errors, within
from flowsync.engine.reply_headers import header_problem, is_header_name
from flowsync.engine.structure import CONNECTIONS, CompiledEdge, check_structure
from flowsync.engine.templates import Template, compile_template, json_path, to_text
from flowsync.errors import (
    DefinitionInvalid,
    ExpressionSyntaxError,
    InvalidInput,
    PayloadTooLarge,
    Problem,
    shown,
)

__all__ = [
    "MAX_DEFINITION_BYTES",
    "MAX_DEPTH",
    "MAX_EDGES",
    "MAX_NODES",
    "NODE_ID",
    "CompiledEdge",
    "CompiledNode",
    "CompiledWorkflow",
    "WorkflowDocument",
    "parse_definition_bytes",
    "validate_definition",
    "validate_workflow_document",
]

MAX_NODES = 500
MAX_EDGES = 2_000
MAX_DEFINITION_BYTES = 1 << 20
MAX_DEPTH = 64  # nesting of the definition's JSON; keeps recursive walks far from limits
NAME_MAX = 200
DESCRIPTION_MAX = 2_000
NODE_ID = re.compile(r"[A-Za-z_][A-Za-z0-9_-]{0,63}")
# The fields of an action where `{{ secrets.NAME }}` may appear: what makes its request.
SECRET_FIELDS = ("url", "headers", "body")


@dataclass(frozen=True, slots=True, eq=False)
class CompiledNode:
    """A node with its typed `data` and the compiled parts its handler needs.

    Which fields are set depends on `type`: `condition` (condition); `output` (transform,
    always; end, when it has one); `url`, `headers`, `query`, `body` (action; `body` only
    when given); `headers`, `body` (webhook_response); `until` (delay with `until`);
    `input` (workflow, when given).
    """

    index: int
    id: str
    type: NodeType
    data: NodeData | None
    condition: Expression | None = None
    output: Template | None = None
    url: Template | None = None
    headers: Template | None = None
    query: Template | None = None
    body: Template | None = None
    until: Template | None = None
    input: Template | None = None

    @property
    def expressions(self) -> tuple[Expression, ...]:
        """Every compiled expression of the node, templates' included."""
        found: list[Expression] = [self.condition] if self.condition else []
        templates = (self.output, self.url, self.headers, self.query, self.body, self.until,
                     self.input)  # fmt: skip
        for template in templates:
            if template is not None:
                found.extend(template.expressions)
        return tuple(found)

    @property
    def steps_read(self) -> frozenset[str] | None:
        """The node ids whose steps the node's expressions read, or None for any."""
        found: set[str] = set()
        for expression in self.expressions:
            ids = expression.steps_read
            if ids is None:
                return None
            found |= ids
        return frozenset(found)

    @property
    def secret_uses(self) -> tuple[tuple[str, str], ...]:
        """Each `{{ secrets.NAME }}` of the node as (NAME, JSON path); only an action's
        url, headers and body may hold one."""
        parts = (self.url, self.headers, self.body)
        return tuple(use for part in parts if part is not None for use in part.secret_uses)

    @property
    def secret_names(self) -> frozenset[str]:
        """The names of the secrets the node reads."""
        return frozenset(name for name, _ in self.secret_uses)


@dataclass(frozen=True, eq=False)
class CompiledWorkflow:
    """A valid workflow, indexed for the engine. Treat every field as read-only.

    `nodes` is in document order; `outgoing` and `incoming` have an entry (maybe empty)
    for every node, edges in document order; `topological_order` lists every node, ties
    broken by document order; `definition` is the normalized JSON to store (keys outside
    the spec dropped, data as written).
    """

    nodes: dict[str, CompiledNode]
    edges: tuple[CompiledEdge, ...]
    outgoing: dict[str, tuple[CompiledEdge, ...]]
    incoming: dict[str, tuple[CompiledEdge, ...]]
    start_id: str
    end_ids: tuple[str, ...]
    topological_order: tuple[str, ...]
    definition: dict[str, JsonValue]
    # The top-level priority, concurrencyKey and concurrencyKeyLimit (engine/fairness.py).
    fairness: Fairness = field(default_factory=Fairness)


@dataclass(frozen=True, slots=True, eq=False)
class WorkflowDocument:
    """A whole workflow as sent by a client: name trimmed, description trimmed or None."""

    name: str
    description: str | None
    workflow: CompiledWorkflow


def parse_definition_bytes(data: bytes | str, max_bytes: int = MAX_DEFINITION_BYTES) -> object:
    """Parse a JSON request body. Raises `PayloadTooLarge` over `max_bytes` (measured in
    UTF-8), and `InvalidInput` for text that is not UTF-8 or not strict JSON (NaN and
    Infinity included); the message gives the line and column."""
    size = len(data) if isinstance(data, bytes) else len(data.encode("utf-8", "surrogatepass"))
    if size > max_bytes:
        raise PayloadTooLarge(f"the body is {size} bytes; the limit is {max_bytes}")
    if isinstance(data, bytes):
        try:
            data = data.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            message = f"the body is not UTF-8 (byte {exc.start + 1})"
            raise InvalidInput(message, [Problem("$", message)]) from None
    try:
        return json.loads(data, parse_constant=_reject_constant)
    except json.JSONDecodeError as exc:
        message = f"not valid JSON: {exc.msg} at line {exc.lineno}, column {exc.colno}"
        raise InvalidInput(message, [Problem("$", message)]) from None
    except ValueError as exc:  # from _reject_constant
        raise InvalidInput(str(exc), [Problem("$", str(exc))]) from None
    except RecursionError:
        message = "not valid JSON: nested too deeply"
        raise InvalidInput(message, [Problem("$", message)]) from None


def _reject_constant(name: str) -> object:
    raise ValueError(f"not valid JSON: {name} is not a JSON number")


def validate_definition(
    raw: object, *, path: str = "$", budget: bool = True, stored: bool = False
) -> CompiledWorkflow:
    """Check a parsed definition against every rule of the spec and compile it.

    Raises `DefinitionInvalid` listing every problem (paths start with `path`), or
    `PayloadTooLarge` when its compact JSON is over `MAX_DEFINITION_BYTES`. An expression
    over the cost budget (engine/budget.py) is a problem unless `budget` is False, which
    is for versions already stored: one saved before the budget existed still runs, its
    costly expressions bounded at run time instead. `stored` (a version already stored,
    compiled to run) leaves out the rules added since versions were first stored, so
    that one saved before them still runs as it did: a step read must be upstream, a
    node's settings go in `data`.
    """
    problems: list[Problem] = []
    workflow = _check_definition(raw, path, problems, budget, stored)
    if problems or workflow is None:
        raise _invalid(problems)
    return workflow


def validate_workflow_document(raw: object, *, stored: bool = False) -> WorkflowDocument:
    """Check a whole workflow document, `{"name", "description", "definition"}`.

    `name` is required (1 to 200 characters once trimmed), `description` optional (at
    most 2,000), `definition` is checked as by `validate_definition` with paths under
    `$.definition` (`stored`: it is the workflow's current one, unchanged: a rename
    does not fail on a rule added after it was saved). Unknown keys are problems.
    Raises `DefinitionInvalid` listing the problems of all three together.
    """
    problems: list[Problem] = []
    if not isinstance(raw, dict):
        problems.append(
            Problem(
                "$", f"a workflow must be an object with name and definition, not {kind_of(raw)}"
            )
        )
        raise _invalid(problems)
    for key in raw:
        if key not in ("name", "description", "definition"):
            hint = difflib.get_close_matches(str(key), ["name", "description", "definition"], 1)
            more = f" (did you mean {hint[0]!r}?)" if hint else ""
            problems.append(
                Problem(json_path("$", str(key)), f"unknown field {shown(key)!r}{more}")
            )
    name = _text_field(raw, "name", NAME_MAX, problems, required=True)
    description = _text_field(raw, "description", DESCRIPTION_MAX, problems, required=False)
    workflow = None
    if "definition" not in raw:
        problems.append(Problem("$.definition", "is required"))
    else:
        workflow = _check_definition(raw["definition"], "$.definition", problems, True, stored)
    if problems or workflow is None or name is None:
        raise _invalid(problems)
    return WorkflowDocument(name, description or None, workflow)


def _text_field(
    raw: Mapping[str, object], key: str, limit: int, problems: list[Problem], *, required: bool
) -> str | None:
    value = raw.get(key)
    if value is None:
        if required:
            problems.append(Problem(f"$.{key}", "is required"))
        return None
    if not isinstance(value, str):
        problems.append(Problem(f"$.{key}", f"must be a string, not {kind_of(value)}"))
        return None
    value = value.strip()
    if required and not value:
        problems.append(Problem(f"$.{key}", "must not be empty"))
    if len(value) > limit:
        problems.append(Problem(f"$.{key}", f"at most {limit} characters (got {len(value)})"))
    return value


def _invalid(problems: list[Problem]) -> DefinitionInvalid:
    first = problems[0] if problems else Problem("$", "invalid")
    if len(problems) <= 1:
        message = f"the workflow is invalid: {first.path}: {first.message}"
    else:
        message = (
            f"the workflow has {len(problems)} problems; the first: {first.path}: {first.message}"
        )
    return DefinitionInvalid(message, problems)


@dataclass(slots=True)
class _NodeInfo:
    """A node good enough to take part in the graph checks (its id is a unique string)."""

    index: int
    id: str
    type: NodeType | None  # None: an unknown type, already reported
    raw: dict[str, object]
    data: NodeData | None = None
    parts: dict[str, Template] = field(default_factory=dict)
    condition: Expression | None = None
    # The node ids its expressions read as `steps.<id>`, each with its JSON path.
    reads: list[tuple[frozenset[str], str]] = field(default_factory=list)


def _check_definition(
    raw: object, base: str, problems: list[Problem], budget: bool, stored: bool = False
) -> CompiledWorkflow | None:
    check = ProblemCollector(base, problems, budget=budget, stored=stored)
    before = len(problems)
    if not isinstance(raw, dict):
        check.add(base, f"a definition must be an object with nodes and edges, not {kind_of(raw)}")
        return None
    too_deep = _too_deep(raw, base)
    if too_deep is not None:
        check.add(too_deep, f"nested more than {MAX_DEPTH} levels deep")
        return None
    try:
        size = len(json.dumps(raw, separators=(",", ":"), allow_nan=False).encode())
    except (TypeError, ValueError) as exc:
        check.add(base, f"not a JSON value: {exc}")
        return None
    if size > MAX_DEFINITION_BYTES:
        raise PayloadTooLarge(
            f"the definition is {size} bytes of JSON; the limit is {MAX_DEFINITION_BYTES}"
        )
    raw_nodes = _list_field(raw, "nodes", MAX_NODES, check)
    raw_edges = _list_field(raw, "edges", MAX_EDGES, check)
    nodes = _check_nodes(raw_nodes, check) if raw_nodes is not None else {}
    edges = _check_edges(raw_edges, nodes, check) if raw_edges is not None else []
    if raw_nodes is None or raw_edges is None:
        return None
    fairness = check_fairness(raw, check)
    order = check_structure(nodes, edges, check)
    if len(problems) > before or order is None:
        return None
    if not stored:
        _check_step_reads(nodes, edges, order, check)
        if len(problems) > before:
            return None
    return _build(nodes, edges, order, raw_edges, raw, fairness)


def _check_step_reads(
    nodes: Mapping[str, _NodeInfo],
    edges: list[CompiledEdge],
    order: tuple[str, ...],
    check: ProblemCollector,
) -> None:
    """Every `steps.<id>` a node's expressions read names a node upstream of it (on a
    path from start to it): only those have run, or been skipped, when it runs. Found by
    QA: an unknown id, the node itself or a node on a parallel branch was accepted, and
    what the expression saw then depended on timing (or was always missing)."""
    if not any(info.reads for info in nodes.values()):
        return
    sources: dict[str, list[str]] = {node_id: [] for node_id in nodes}
    for edge in edges:
        sources[edge.target].append(edge.source)
    upstream: dict[str, set[str]] = {}
    for node_id in order:  # sources before targets: each one's set is complete in time
        found = upstream[node_id] = set(sources[node_id])
        for source in sources[node_id]:
            found |= upstream[source]
    for info in nodes.values():
        for ids, path in info.reads:
            for read in sorted(ids):
                if read == info.id:
                    message = (
                        f"steps.{read} is this node's own step, which has no output while it runs"
                    )
                elif read not in nodes:
                    message = f"steps.{read} names no node of this workflow"
                elif read not in upstream[info.id]:
                    message = (
                        f"steps.{read} is not upstream of {info.id!r} (on no path from "
                        "start to it): whether it has run when this node runs depends on "
                        "timing"
                    )
                else:
                    continue
                check.add(path, message, info.id)


def _list_field(
    raw: Mapping[str, object], key: str, limit: int, check: ProblemCollector
) -> list[object] | None:
    path = f"{check.base}.{key}"
    value = raw.get(key)
    if value is None:
        check.add(path, "is required")
        return None
    if not isinstance(value, list):
        check.add(path, f"must be a list, not {kind_of(value)}")
        return None
    if len(value) > limit:
        # Stop here: checking every item of an oversized list is wasted work.
        check.add(path, f"at most {limit} {key} (got {len(value)})")
        return None
    return value


# Node fields that other tools keep a node's settings in. Other fields than the spec's
# (ReactFlow's `selected`, `measured`...) are dropped when a definition is saved; these
# are refused instead (found by QA: `config` was dropped, and the node ran without it).
_SETTINGS_ELSEWHERE = frozenset({"config", "parameters", "settings"})


def _check_nodes(raw_nodes: list[object], check: ProblemCollector) -> dict[str, _NodeInfo]:
    nodes: dict[str, _NodeInfo] = {}
    for index, item in enumerate(raw_nodes):
        path = check.node_path(index)
        if not isinstance(item, dict):
            check.add(path, f"a node must be an object, not {kind_of(item)}")
            continue
        node_id = item["id"] if isinstance(item.get("id"), str) else None
        try:
            Node.model_validate(item)
        except ValidationError as exc:
            check.problems.extend(translate_errors(exc, path, node_id=node_id))
        node_type = _node_type(item.get("type"), path, node_id, check)
        for key in [] if check.stored else sorted(_SETTINGS_ELSEWHERE.intersection(item)):
            check.add(
                f"{path}.{key}",
                f"not a node field: a node's settings go in `data` (`{key}` would be ignored)",
                node_id,
            )
        raw_data = item.get("data")
        info = None
        if node_id is not None:
            if not NODE_ID.fullmatch(node_id):
                check.add(
                    f"{path}.id",
                    f"{shown(node_id)!r} is not a valid node id: a letter or _ first, then "
                    "letters, digits, _ or -, at most 64 characters",
                    shown(node_id),
                )
            if node_id in nodes:
                first = check.node_path(nodes[node_id].index)
                check.add(
                    f"{path}.id", f"duplicate node id {shown(node_id)!r} (also {first})", node_id
                )
            else:
                info = nodes[node_id] = _NodeInfo(index, node_id, node_type, item)
        if node_type is not None and (raw_data is None or isinstance(raw_data, dict)):
            _check_data(node_type, raw_data or {}, f"{path}.data", node_id, check, info)
    return nodes


def _node_type(
    value: object, path: str, node_id: str | None, check: ProblemCollector
) -> NodeType | None:
    if not isinstance(value, str):
        return None  # the Node model reported it
    try:
        return NodeType(value)
    except ValueError:
        known = ", ".join(t.value for t in NodeType)
        hint = difflib.get_close_matches(value, [t.value for t in NodeType], 1)
        more = f"did you mean {hint[0]!r}? " if hint else ""
        check.add(
            f"{path}.type", f"unknown node type {shown(value)!r} ({more}known: {known})", node_id
        )
        return None


def _check_data(
    node_type: NodeType,
    raw: dict[str, object],
    path: str,
    node_id: str | None,
    check: ProblemCollector,
    info: _NodeInfo | None,
) -> None:
    model = DATA_MODELS[node_type]
    if model is None:
        if raw:
            check.add(path, f"a {node_type} node takes no data", node_id)
        return
    bad: list[Problem] = []
    data = None
    try:
        data = model.model_validate(raw)
    except ValidationError as exc:
        bad = translate_errors(exc, path, node_id=node_id)
        check.problems.extend(bad)
    if info is not None:
        info.data = data
    # Templates are compiled even when other fields are wrong, so that all is reported at
    # once; a field that already has a problem is not compiled again.
    if node_type is NodeType.CONDITION:
        source = raw.get("expression")
        where = f"{path}.expression"
        if isinstance(source, str) and not any(within(p.path, where) for p in bad):
            try:
                expression = compile_expression(source, budget=check.budget)
            except ExpressionSyntaxError as exc:
                check.add(where, exc.message, node_id)
            else:
                if info is not None:
                    info.condition = expression
                    if expression.steps_read:
                        info.reads.append((expression.steps_read, where))
    if node_type is NodeType.WEBHOOK_RESPONSE:
        _check_reply_headers(raw.get("headers"), json_path(path, "headers"), node_id, check)
    for key in TEMPLATE_FIELDS.get(node_type, ()):
        where = json_path(path, key)
        if key not in raw or any(within(p.path, where) for p in bad):
            continue
        try:
            template = compile_template(
                _as_json(raw[key]), path=where, budget=check.budget,
                secrets=node_type is NodeType.ACTION and key in SECRET_FIELDS,
            )  # fmt: skip
        except ExpressionSyntaxError as exc:
            check.problems.extend(Problem(p.path, p.message, node_id) for p in exc.details)
        else:
            if info is not None:
                info.parts[key] = template
                info.reads.extend(template.step_reads)


def _check_reply_headers(
    headers: object, path: str, node_id: str | None, check: ProblemCollector
) -> None:
    """A webhook reply's headers: names a reply may set, once each; one-line values; a
    passive Content-Type (see `reply_headers`). A value with a placeholder is checked for
    its characters only; what it renders to is checked again when the reply is sent."""
    if not isinstance(headers, dict):
        return  # the data model reported it
    seen: dict[str, str] = {}
    for name, value in headers.items():
        if not isinstance(name, str) or not is_header_name(name):
            continue  # the data model reported it
        where = json_path(path, name)
        first = seen.setdefault(name.lower(), name)
        if first != name:
            check.add(where, f"the header {name} is also given as {first!r}", node_id)
            continue
        if value is None or isinstance(value, list | dict):
            continue  # the data model reported it
        text = to_text(value)
        problem = header_problem(name, text, known="{{" not in text)
        if problem is not None:
            check.add(where, problem, node_id)


def _check_edges(
    raw_edges: list[object], nodes: Mapping[str, _NodeInfo], check: ProblemCollector
) -> list[CompiledEdge]:
    edges: list[CompiledEdge] = []
    seen: dict[tuple[str, str, str | None], int] = {}
    for index, item in enumerate(raw_edges):
        path = check.edge_path(index)
        if not isinstance(item, dict):
            check.add(path, f"an edge must be an object, not {kind_of(item)}", edge=index)
            continue
        try:
            edge = Edge.model_validate(item)
        except ValidationError as exc:
            check.problems.extend(translate_errors(exc, path, edge=index))
            continue
        source, target, handle = edge.source, edge.target, edge.source_handle
        missing = False
        for end, node_id in (("source", source), ("target", target)):
            if node_id not in nodes:
                check.add(f"{path}.{end}", f"no node has the id {shown(node_id)!r}", edge=index)
                missing = True
        if missing:
            continue
        if source == target:
            check.add(
                path, f"a self-loop on node {shown(source)!r} (an edge to itself)", source, index
            )
            continue
        key = (source, target, handle)
        if key in seen:
            first = check.edge_path(seen[key])
            check.add(path, f"duplicate edge {source} → {target} (also {first})", source, index)
            continue
        seen[key] = index
        source_type = nodes[source].type
        if source_type is NodeType.CONDITION:
            if handle not in ("true", "false"):
                got = "none" if handle is None else repr(handle)
                check.add(
                    f"{path}.sourceHandle",
                    f'an edge from condition {source!r} needs sourceHandle "true" or "false" '
                    f"(got {got})",
                    source,
                    index,
                )
        elif source_type in (NodeType.WAIT, NodeType.APPROVAL):
            _wait_edge(source, source_type, target, handle, nodes, path, index, check)
        elif handle is not None and source_type is not None:
            check.add(
                f"{path}.sourceHandle",
                f"only a condition's edges have a sourceHandle; {source!r} is a {source_type}",
                source,
                index,
            )
        edges.append(CompiledEdge(index, source, target, handle))
    return edges


def _wait_edge(
    source: str,
    source_type: NodeType,
    target: str,
    handle: str | None,
    nodes: Mapping[str, _NodeInfo],
    path: str,
    index: int,
    check: ProblemCollector,
) -> None:
    """An edge from a wait or an approval: its handle names one of the node's outcomes,
    and it does not lead straight into a join (a join's output names the taken incoming
    nodes, which it reads from their outputs; a wait's outcome is not in its output)."""
    rule = CONNECTIONS[source_type]
    allowed: tuple[str | None, ...] = (*rule.source_handles, *rule.optional_handles)
    if not rule.source_handles:
        allowed = (None, *allowed)
    if handle not in allowed:
        names = " or ".join("none" if h is None else f'"{h}"' for h in allowed)
        got = "none" if handle is None else repr(handle)
        check.add(
            f"{path}.sourceHandle",
            f"an edge from {source_type} {source!r} needs sourceHandle {names} (got {got})",
            source,
            index,
        )
        return
    if nodes[target].type is NodeType.JOIN:
        check.add(
            f"{path}.target",
            f"an edge from {source_type} {source!r} cannot go straight into join {target!r}; "
            "put a step (a transform) between them",
            source,
            index,
        )


def _build(
    nodes: Mapping[str, _NodeInfo],
    edges: list[CompiledEdge],
    order: tuple[str, ...],
    raw_edges: list[object],
    raw: Mapping[str, object],
    fairness: Fairness,
) -> CompiledWorkflow:
    compiled = {
        info.id: CompiledNode(
            index=info.index,
            id=info.id,
            type=_known(info.type),
            data=info.data,
            condition=info.condition,
            output=info.parts.get("output"),
            url=info.parts.get("url"),
            headers=_default_template(info, "headers"),
            query=_default_template(info, "query"),
            body=None if _raw_data(info).get("body") is None else info.parts.get("body"),
            until=info.parts.get("until"),
            input=info.parts.get("input"),
        )
        for info in nodes.values()
    }
    outgoing: dict[str, list[CompiledEdge]] = {node_id: [] for node_id in nodes}
    incoming: dict[str, list[CompiledEdge]] = {node_id: [] for node_id in nodes}
    for edge in edges:
        outgoing[edge.source].append(edge)
        incoming[edge.target].append(edge)
    node_types = {info.id: info.type for info in nodes.values()}
    return CompiledWorkflow(
        nodes=compiled,
        edges=tuple(edges),
        outgoing={k: tuple(v) for k, v in outgoing.items()},
        incoming={k: tuple(v) for k, v in incoming.items()},
        start_id=next(k for k, t in node_types.items() if t is NodeType.START),
        end_ids=tuple(k for k, t in node_types.items() if t is NodeType.END),
        topological_order=order,
        definition=_normalized(nodes, edges, raw_edges, raw),
        fairness=fairness,
    )


def _known(node_type: NodeType | None) -> NodeType:
    assert node_type is not None, "a valid workflow has no unknown node types"
    return node_type


def _raw_data(info: _NodeInfo) -> dict[str, object]:
    data = info.raw.get("data")
    return data if isinstance(data, dict) else {}


def _default_template(info: _NodeInfo, key: str) -> Template | None:
    """Headers and query are always there for the types that have them, `{}` by default."""
    if key not in TEMPLATE_FIELDS.get(_known(info.type), ()):
        return None
    return info.parts.get(key) or compile_template({})


def _normalized(
    nodes: Mapping[str, _NodeInfo],
    edges: list[CompiledEdge],
    raw_edges: list[object],
    top: Mapping[str, object],
) -> dict[str, JsonValue]:
    """The definition to store: spec keys only, `data` exactly as written (a deep copy);
    the top-level fairness fields when given (already checked)."""
    out_nodes: list[JsonValue] = []
    for info in nodes.values():
        node: dict[str, JsonValue] = {"id": info.id, "type": _known(info.type).value}
        data = _raw_data(info)
        if data and DATA_MODELS[_known(info.type)] is not None:
            node["data"] = _as_json(copy.deepcopy(data))
        position = info.raw.get("position")
        if isinstance(position, dict):
            node["position"] = {"x": _as_json(position["x"]), "y": _as_json(position["y"])}
        if isinstance(info.raw.get("label"), str):
            node["label"] = _as_json(info.raw["label"])
        out_nodes.append(node)
    out_edges: list[JsonValue] = []
    for edge in edges:
        raw = raw_edges[edge.index]
        item: dict[str, JsonValue] = {}
        if isinstance(raw, dict) and isinstance(raw.get("id"), str):
            item["id"] = raw["id"]
        item["source"] = edge.source
        item["target"] = edge.target
        if edge.handle is not None:
            item["sourceHandle"] = edge.handle
        out_edges.append(item)
    out: dict[str, JsonValue] = {"nodes": out_nodes, "edges": out_edges}
    for key in ("priority", "concurrencyKey", "concurrencyKeyLimit"):
        if top.get(key) is not None:
            out[key] = _as_json(top[key])
    return out


def _as_json(value: object) -> JsonValue:
    """`value`, already known to be JSON (the definition passed json.dumps), typed so."""
    return value  # type: ignore[return-value]


def _too_deep(value: object, base: str) -> str | None:
    """The path of a container nested deeper than MAX_DEPTH, if any (no path is built
    unless there is one: this walks every value of a definition of up to 1 MiB)."""
    return _deep_path(value, base, 0) if too_deep(value, MAX_DEPTH) else None


def _deep_path(value: object, path: str, depth: int) -> str | None:
    # Recursion is bounded: it stops at MAX_DEPTH.
    if isinstance(value, dict):
        items = [(json_path(path, str(k)), v) for k, v in value.items()]
    elif isinstance(value, list):
        items = [(json_path(path, i), v) for i, v in enumerate(value)]
    else:
        return None
    if depth >= MAX_DEPTH:
        return path
    for child_path, child in items:
        found = _deep_path(child, child_path, depth + 1)
        if found is not None:
            return found
    return None
