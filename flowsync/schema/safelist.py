"""Safelist mode: the GraphQL operations the API runs when `FLOWSYNC_GRAPHQL_SAFELIST`
is set, kept in Apollo's persisted query manifest format:

    {"format": "apollo-persisted-query-manifest", "version": 1,
     "operations": [{"id": <hex SHA-256 of body>, "name": ..., "type": "query", "body": ...}]}

Two manifests are read once, when the API starts: the dashboard's own
(`flowsync/web/dist/persisted-operations.json`, written by the web build, always loaded so
that the dashboard may send hashes alone) and, in safelist mode, the file the setting
names (written by `flowsync graphql register`). `read_manifest` refuses a manifest whose
ids are not the SHA-256 of their bodies, so a lookup by hash and a check of a document
sent in full agree.

`register` turns `.graphql` files into manifest entries: each named operation with the
fragments it uses (from any of the files), printed as graphql-core prints it (as
graphql-js's `print` does), validated against the schema with the server's own rules."""

from __future__ import annotations

import functools
import hashlib
import json
import os
import tempfile
from collections.abc import Iterable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    OperationDefinitionNode,
    Visitor,
    parse,
    print_ast,
    specified_rules,
    validate,
    visit,
)
from strawberry.extensions import AddValidationRules, MaxTokensLimiter

from flowsync.config import Settings
from flowsync.errors import ConfigurationError

__all__ = [
    "DASHBOARD_MANIFEST",
    "FORMAT",
    "DocumentCheck",
    "Operation",
    "RegisterError",
    "allowed_documents",
    "digest",
    "document_check",
    "empty_manifest",
    "operations_of",
    "read_manifest",
    "write_manifest",
]

FORMAT = "apollo-persisted-query-manifest"
DASHBOARD_MANIFEST = (
    Path(__file__).resolve().parents[1] / "web" / "dist" / ("persisted-operations.json")
)
_TYPES = ("query", "mutation", "subscription")


def digest(body: str) -> str:
    """An operation's id: the hex SHA-256 of its body's UTF-8, as APQ's `sha256Hash`."""
    return hashlib.sha256(body.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class Operation:
    """One entry of a manifest."""

    id: str
    name: str
    type: str
    body: str

    def as_dict(self) -> dict[str, str]:
        return {"id": self.id, "name": self.name, "type": self.type, "body": self.body}


def empty_manifest() -> dict[str, Any]:
    """A manifest with no operation."""
    return {"format": FORMAT, "version": 1, "operations": []}


# The largest safelist read: some 10,000 operations of a few KiB each.
MAX_MANIFEST_BYTES = 64 * 1024 * 1024


def read_manifest(path: Path) -> list[Operation]:
    """The operations of the manifest at `path`; `ConfigurationError` saying what is
    wrong when it cannot be read or is not a manifest whose ids are their bodies'
    SHA-256."""
    try:
        with path.open("rb") as file:
            # Read no further than the limit: `--safelist /dev/zero` grew until the
            # kernel killed it (found by QA).
            data = file.read(MAX_MANIFEST_BYTES + 1)
    except OSError as exc:
        raise ConfigurationError(f"{path}: cannot read the safelist: {exc.strerror}") from exc
    if len(data) > MAX_MANIFEST_BYTES:
        raise ConfigurationError(
            f"{path}: the safelist is over the limit of {MAX_MANIFEST_BYTES} bytes"
        )
    try:
        raw = json.loads(data)
    except ValueError as exc:
        raise ConfigurationError(f"{path}: the safelist is not JSON: {exc}") from exc
    if (
        not isinstance(raw, dict)
        or raw.get("format") != FORMAT
        or raw.get("version") != 1
        or not isinstance(raw.get("operations"), list)
    ):
        raise ConfigurationError(
            f'{path}: not a persisted query manifest ({{"format": "{FORMAT}", '
            '"version": 1, "operations": [...]})'
        )
    found: list[Operation] = []
    for n, entry in enumerate(raw["operations"]):
        fields = entry if isinstance(entry, dict) else {}
        values = [fields.get(k) for k in ("id", "name", "type", "body")]
        if not all(isinstance(v, str) for v in values) or fields.get("type") not in _TYPES:
            raise ConfigurationError(
                f"{path}: operations[{n}] needs the strings id, name, type (query, mutation "
                "or subscription) and body"
            )
        operation = Operation(*values)  # type: ignore[arg-type]
        if digest(operation.body) != operation.id:
            raise ConfigurationError(
                f"{path}: operations[{n}] ({operation.name}): id is not the SHA-256 of body"
            )
        found.append(operation)
    return found


def write_manifest(path: Path, operations: Iterable[Operation]) -> None:
    """Write a manifest atomically (a reader sees the old file or the new one)."""
    manifest = empty_manifest()
    manifest["operations"] = [op.as_dict() for op in operations]
    text = json.dumps(manifest, indent=2, ensure_ascii=False) + "\n"
    path.parent.mkdir(parents=True, exist_ok=True)
    handle, temporary = tempfile.mkstemp(dir=path.parent, prefix=f".{path.name}.")
    try:
        with os.fdopen(handle, "w", encoding="utf-8") as out:
            out.write(text)
        os.replace(temporary, path)
    except BaseException:
        Path(temporary).unlink(missing_ok=True)
        raise


def allowed_documents(settings: Settings, dashboard: Path = DASHBOARD_MANIFEST) -> dict[str, str]:
    """The documents known by hash when the API starts: the dashboard's (when built),
    and in safelist mode those of `settings.graphql_safelist` (`ConfigurationError`
    when that file is missing or malformed)."""
    known: dict[str, str] = {}
    if dashboard.is_file():
        known.update((op.id, op.body) for op in read_manifest(dashboard))
    path = settings.graphql_safelist
    if path is not None:
        if not path.is_file():
            raise ConfigurationError(
                f"FLOWSYNC_GRAPHQL_SAFELIST={path}: no such file. Create it with "
                "`flowsync graphql register FILE...`, or write an empty list: "
                f'{{"format": "{FORMAT}", "version": 1, "operations": []}}'
            )
        known.update((op.id, op.body) for op in read_manifest(path))
    return known


class RegisterError(Exception):
    """Why `.graphql` files cannot be registered: one line per problem, each naming its
    file."""

    def __init__(self, problems: Sequence[str]) -> None:
        super().__init__("\n".join(problems))
        self.problems = list(problems)


def _spreads(node: OperationDefinitionNode | FragmentDefinitionNode) -> list[str]:
    names: list[str] = []

    class Spreads(Visitor):
        def enter_fragment_spread(self, spread: FragmentSpreadNode, *_: Any) -> None:
            names.append(spread.name.value)

    visit(node, Spreads())
    return names


def _used(
    op: OperationDefinitionNode, fragments: dict[str, FragmentDefinitionNode]
) -> list[FragmentDefinitionNode]:
    """The fragments an operation uses, directly or through others, in first-use order."""
    found: dict[str, FragmentDefinitionNode] = {}
    waiting = _spreads(op)
    while waiting:
        name = waiting.pop(0)
        if name in fragments and name not in found:
            found[name] = fragments[name]
            waiting.extend(_spreads(fragments[name]))
    return list(found.values())


class DocumentCheck:
    """The server's validation of a document, without running it: graphql-core's rules,
    then those the schema's extensions add (depth, aliases, introspection when off), and
    the token limit when parsing."""

    def __init__(self, settings: Settings) -> None:
        from flowsync.schema.schema import build_schema

        schema = build_schema(settings)
        self.schema = schema._schema
        self.rules: list[type[ASTValidationRule]] = list(specified_rules)
        self.max_tokens: int | None = None
        for made in schema.extensions:
            extension = made() if callable(made) else made
            if isinstance(extension, AddValidationRules):
                self.rules.extend(extension.validation_rules)
            if isinstance(extension, MaxTokensLimiter):
                self.max_tokens = extension.max_token_count

    def parse(self, text: str) -> DocumentNode:
        """The document; `GraphQLError` when it does not parse or has too many tokens."""
        return parse(text, max_tokens=self.max_tokens)

    def problems(self, document: DocumentNode) -> list[GraphQLError]:
        """Why the server would refuse the document (empty: it would run it)."""
        # The server's own rules assume a document graphql-core's rules accept (the depth
        # limiter fails on an unknown fragment), so they run only then.
        return validate(self.schema, document, specified_rules) or validate(
            self.schema, document, self.rules
        )


@functools.lru_cache(maxsize=4)
def document_check(settings: Settings) -> DocumentCheck:
    """The check for these settings (building the schema once)."""
    return DocumentCheck(settings)


def operations_of(files: Sequence[Path], settings: Settings) -> list[Operation]:
    """Every named operation of `files`, each with the fragments it uses (fragments may
    live in any of the files), validated against the schema as the server validates
    what it runs. `RegisterError` listing every problem (a file that cannot be read or
    parsed, an anonymous or repeated operation, a repeated fragment, a document the
    schema refuses) when any: then nothing is to be registered."""
    check = document_check(settings)
    problems: list[str] = []
    parsed: dict[Path, DocumentNode] = {}
    # A document larger than a request body could never be sent; reading no further
    # keeps a huge file (or /dev/zero) from being loaded whole (found by QA).
    limit = settings.max_body_bytes
    for path in files:
        try:
            with path.open("rb") as file:
                raw = file.read(limit + 1)
            text = raw.decode("utf-8")
        except (OSError, UnicodeDecodeError) as exc:
            reason = exc.strerror if isinstance(exc, OSError) else "not UTF-8 text"
            problems.append(f"{path}: cannot read: {reason}")
            continue
        if len(raw) > limit:
            problems.append(f"{path}: over the limit of {limit} bytes (FLOWSYNC_MAX_BODY_BYTES)")
            continue
        try:
            parsed[path] = check.parse(text)
        except GraphQLError as exc:
            problems.append(f"{path}: {_where(exc)}{exc.message}")
    fragments: dict[str, FragmentDefinitionNode] = {}
    operations: list[tuple[Path, OperationDefinitionNode]] = []
    seen: dict[str, Path] = {}
    for path, document in parsed.items():
        for definition in document.definitions:
            if isinstance(definition, FragmentDefinitionNode):
                name = definition.name.value
                if name in fragments:
                    problems.append(f"{path}: fragment {name} is defined more than once")
                fragments[name] = definition
            elif isinstance(definition, OperationDefinitionNode):
                if definition.name is None:
                    problems.append(
                        f"{path}: {_where_node(definition)}every operation needs a name "
                        "(a manifest lists operations by name)"
                    )
                    continue
                name = definition.name.value
                if name in seen:
                    problems.append(f"{path}: operation {name} is also defined in {seen[name]}")
                    continue
                seen[name] = path
                operations.append((path, definition))
            else:
                problems.append(f"{path}: only operations and fragments can be registered")
    if not operations and not problems:
        problems.append(", ".join(str(p) for p in files) + ": no operation to register")
    found: list[Operation] = []
    for path, op in operations:
        assert op.name is not None
        document = DocumentNode(definitions=(op, *_used(op, fragments)))
        errors = check.problems(document)
        for error in errors:
            problems.append(f"{path}: {op.name.value}: {_where(error)}{error.message}")
        if not errors:
            body = print_ast(document)
            found.append(Operation(digest(body), op.name.value, op.operation.value, body))
    if problems:
        raise RegisterError(problems)
    return found


def _where(error: GraphQLError) -> str:
    if error.locations:
        # Fragments from other files print their own file's lines; good enough to find it.
        first = error.locations[0]
        return f"line {first.line}, column {first.column}: "
    return ""


def _where_node(node: OperationDefinitionNode) -> str:
    if node.loc is None:
        return ""
    location = node.loc.source.get_location(node.loc.start)
    return f"line {location.line}, column {location.column}: "
