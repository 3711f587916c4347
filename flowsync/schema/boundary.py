"""What a GraphQL operation's inputs must be before any of it runs (the rules of
`flowsync.codec`): no string holds NUL (U+0000), in a variable or in a literal of the
document, and no number in a literal is one that no double holds (`1e400`; in variables,
where orjson reads numbers, it is refused before this). Anything else is refused with an
`invalid_input` error that names the variable's path (`$input.name`) or the argument's
(`createWorkflow.input.name`), the same in every transport."""

from __future__ import annotations

import math
from collections import OrderedDict
from collections.abc import Iterator, Mapping
from typing import Any

from graphql import (
    ArgumentNode,
    DirectiveNode,
    DocumentNode,
    FieldNode,
    FloatValueNode,
    GraphQLError,
    IntValueNode,
    ListValueNode,
    Node,
    ObjectFieldNode,
    StringValueNode,
    VariableDefinitionNode,
)
from strawberry.extensions import SchemaExtension

from flowsync import codec
from flowsync.errors import InvalidInput, Problem
from flowsync.resolvers.errors import extensions

_NUL = "holds a NUL character (\\u0000), which FlowSync cannot store"
_NO_DOUBLE = "is a number that no double holds"

# A literal's fault: its path and what is wrong (None: the document has none).
Fault = tuple[str, str, Node] | None


class InputBoundary(SchemaExtension):
    """Refuses an operation whose variables or literals hold NUL or a number no double
    holds. Documents repeat (every subscriber of a dashboard sends the same one): the
    verdict on a document's literals is kept for the last 256 documents."""

    _verdicts: OrderedDict[str, Fault] = OrderedDict()

    def on_validate(self) -> Iterator[None]:
        # Before validation, as the cost limit: the error set here is the answer.
        self._check()
        yield

    def _check(self) -> None:
        context = self.execution_context
        document = context.graphql_document
        if context.pre_execution_errors or document is None:
            return
        variable = _variable_fault(context.variables or {})
        if variable is not None:
            path = variable
            context.pre_execution_errors = [_error(f"The variable {path} {_NUL}.", path, None)]
            return
        query = context.query
        fault = self._literal_fault(query, document) if query else literal_fault(document)
        if fault is not None:
            path, what, node = fault
            context.pre_execution_errors = [_error(f"The argument {path} {what}.", path, node)]

    def _literal_fault(self, query: str, document: DocumentNode) -> Fault:
        verdicts = InputBoundary._verdicts
        if query in verdicts:
            verdicts.move_to_end(query)
            return verdicts[query]
        fault = literal_fault(document)
        verdicts[query] = fault
        while len(verdicts) > 256:
            verdicts.popitem(last=False)
        return fault


def _variable_fault(variables: Mapping[str, Any]) -> str | None:
    try:
        if codec.NUL_ESCAPE not in codec.dumps(variables):
            # JSON writes NUL only as this escape, so the variables hold none: one encoding
            # (~0.05 ms for a 1,000-item batch start) instead of a walk (~1.3 ms).
            return None
    except TypeError:  # not JSON (orjson's error is one): walked below
        pass
    for name, value in variables.items():
        where = codec.nul_path(value, f"${name}")
        if where is not None:
            return where
    return None


def _error(message: str, path: str, node: Node | None) -> GraphQLError:
    problem = Problem(path, message.removeprefix("The variable ").removeprefix("The argument "))
    return GraphQLError(message, node, extensions=extensions(InvalidInput(message, [problem])))


def literal_fault(document: DocumentNode) -> Fault:
    """The first literal in `document` that holds NUL or a number no double holds, with
    its path (field, argument and object field names; list indexes), or None.
    Iterative: a document nested to any depth is walked without recursion."""
    stack: list[tuple[Node, str]] = [(document, "")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, StringValueNode):
            if "\x00" in node.value:
                return path, _NUL, node
            continue
        if isinstance(node, IntValueNode | FloatValueNode):
            if math.isinf(float(node.value)):
                return path, _NO_DOUBLE, node
            continue
        for key in reversed(node.keys):
            child = getattr(node, key, None)
            if isinstance(child, Node):
                stack.append((child, _named(child, path)))
            elif isinstance(child, list | tuple):
                for index in range(len(child) - 1, -1, -1):
                    item = child[index]
                    if isinstance(item, Node):
                        inside = (
                            f"{path}[{index}]"
                            if isinstance(node, ListValueNode)
                            else _named(item, path)
                        )
                        stack.append((item, inside))
    return None


def _named(node: Node, path: str) -> str:
    """The path of `node` inside `path`: a field by its alias or name, an argument or
    object field by its name, a variable's default by `$name`, a directive by `@name`."""
    label: str | None = None
    if isinstance(node, FieldNode):
        label = (node.alias or node.name).value
    elif isinstance(node, ArgumentNode | ObjectFieldNode):
        label = node.name.value
    elif isinstance(node, VariableDefinitionNode):
        return f"${node.variable.name.value}"
    elif isinstance(node, DirectiveNode):
        label = f"@{node.name.value}"
    if label is None:
        return path
    return f"{path}.{label}" if path else label
