"""The committed UI build and what it was made from, checked without Node: the build is
fresh for web/'s sources, web/schema.graphql is the server's schema, and every operation
the UI sends is valid and within the server's limits."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from graphql import (
    ASTValidationRule,
    DocumentNode,
    FragmentDefinitionNode,
    FragmentSpreadNode,
    GraphQLError,
    IntValueNode,
    OperationDefinitionNode,
    Visitor,
    parse,
    print_ast,
    specified_rules,
    validate,
    visit,
)
from strawberry.extensions import AddValidationRules, MaxTokensLimiter, SchemaExtension

from flowsync.config import Settings
from flowsync.schema.cost import QueryCostLimiter, query_cost
from flowsync.schema.schema import build_schema
from flowsync.services.pagination import MAX_PAGE_SIZE
from flowsync.web import DIST
from flowsync.web.build_info import check, inputs_hash, write
from tests.support.processes import ROOT

WEB = ROOT / "web"
REGENERATE_SCHEMA = (
    ".venv/bin/python -c 'from flowsync.config import Settings; "
    "from flowsync.schema.schema import build_schema; "
    "print(build_schema(Settings(_env_file=None)).as_str())' > web/schema.graphql"
)


def web_dir() -> Path:
    assert (WEB / "package.json").is_file(), f"{WEB} (the dashboard's sources) is missing"
    return WEB


def test_build_is_fresh() -> None:
    problems = check(web_dir(), DIST)
    assert not problems, "the UI build is stale: run ./run build-web\n" + "\n".join(problems)


def test_schema_file_matches_server() -> None:
    printed = build_schema(Settings(_env_file=None)).as_str() + "\n"  # type: ignore[call-arg]
    committed = (web_dir() / "schema.graphql").read_text()
    assert committed == printed, (
        f"web/schema.graphql is not the server's schema; regenerate it:\n  {REGENERATE_SCHEMA}\n"
        "then rebuild the UI (./run build-web) and fix what its type check finds"
    )


# --- every operation the UI sends -----------------------------------------------------


def _extensions(settings: Settings) -> list[SchemaExtension]:
    """The schema's extensions, made as the server makes them for an operation."""
    made = []
    for extension in build_schema(settings).extensions:
        made.append(extension() if callable(extension) else extension)
    return made


def _used_fragments(
    node: OperationDefinitionNode | FragmentDefinitionNode,
    fragments: dict[str, FragmentDefinitionNode],
    found: dict[str, FragmentDefinitionNode],
) -> None:
    names: list[str] = []

    class Spreads(Visitor):
        def enter_fragment_spread(self, spread: FragmentSpreadNode, *_: Any) -> None:
            names.append(spread.name.value)

    visit(node, Spreads())
    for name in names:
        if name in fragments and name not in found:
            found[name] = fragments[name]
            _used_fragments(fragments[name], fragments, found)


def ui_operations(web: Path, pattern: str = "src/**/*.graphql") -> dict[str, str]:
    """Each operation of web/src/**/*.graphql (or of `pattern` under `web`) as the UI
    sends it (with the fragments it uses, from any file), keyed by `file: name`."""
    files = sorted(web.glob(pattern))
    assert files, f"no .graphql documents match {web / pattern}"
    parsed: dict[Path, DocumentNode] = {}
    for path in files:
        try:
            parsed[path] = parse(path.read_text())
        except GraphQLError as exc:
            raise AssertionError(f"{path.relative_to(web)}: {exc}") from None
    fragments = {
        d.name.value: d
        for doc in parsed.values()
        for d in doc.definitions
        if isinstance(d, FragmentDefinitionNode)
    }
    sent: dict[str, str] = {}
    for path, doc in parsed.items():
        for op in doc.definitions:
            if isinstance(op, OperationDefinitionNode):
                assert op.name is not None, f"{path}: every operation needs a name"
                used: dict[str, FragmentDefinitionNode] = {}
                _used_fragments(op, fragments, used)
                document = DocumentNode(definitions=(op, *used.values()))
                sent[f"{path.relative_to(web)}: {op.name.value}"] = print_ast(document)
    return sent


def _worst_variables(op: OperationDefinitionNode) -> dict[str, Any]:
    """Variables as large as the API accepts: a page size without a default is the
    largest page the server hands out."""
    variables: dict[str, Any] = {}
    for definition in op.variable_definitions or ():
        name = definition.variable.name.value
        if isinstance(definition.default_value, IntValueNode):
            variables[name] = int(definition.default_value.value)
        else:
            variables[name] = MAX_PAGE_SIZE
    return variables


def refused_operations(web: Path, pattern: str = "src/**/*.graphql") -> list[str]:
    """Why the server would refuse each operation of the UI in `web` that it refuses:
    graphql-core's rules and those the schema's extensions add (depth, aliases,
    introspection), the token limit and the cost limit, as the server applies them."""
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    schema = build_schema(settings)
    extensions = _extensions(settings)
    rules: list[type[ASTValidationRule]] = list(specified_rules)
    for extension in extensions:
        if isinstance(extension, AddValidationRules):
            rules.extend(extension.validation_rules)
    [tokens] = [e.max_token_count for e in extensions if isinstance(e, MaxTokensLimiter)]
    [cost_limit] = [e.max_cost for e in extensions if isinstance(e, QueryCostLimiter)]
    problems: list[str] = []
    for name, text in ui_operations(web, pattern).items():
        try:
            document = parse(text, max_tokens=tokens)
        except GraphQLError as exc:
            problems.append(f"{name}: {exc.message}")
            continue
        errors = validate(schema._schema, document, rules)
        problems.extend(f"{name}: {e.message}" for e in errors)
        [op] = [d for d in document.definitions if isinstance(d, OperationDefinitionNode)]
        fragments = {
            d.name.value: d for d in document.definitions if isinstance(d, FragmentDefinitionNode)
        }
        root = schema._schema.get_root_type(op.operation)
        cost = query_cost(op.selection_set, fragments, _worst_variables(op), schema._schema, root)
        if cost > cost_limit:
            problems.append(
                f"{name}: could return {cost} objects with the largest pages, over the "
                f"server's limit of {cost_limit}"
            )
    return problems


def test_ui_documents_are_valid() -> None:
    problems = refused_operations(web_dir())
    assert not problems, "UI operations the server would refuse:\n" + "\n".join(problems)


def test_client_example_documents_are_valid() -> None:
    # docs/clients/typescript's operations, held to the same rules as the UI's.
    problems = refused_operations(ROOT / "docs" / "clients" / "typescript", "*.graphql")
    assert not problems, "client example operations the server would refuse:\n" + "\n".join(
        problems
    )


def test_an_operation_the_server_refuses_is_reported(tmp_path: Path) -> None:
    # The check above can fail: an unknown field, a query too deep or too costly.
    web = tmp_path / "web"
    (web / "src" / "graphql").mkdir(parents=True)
    # 4 x 4 levels (executions, edges, node, workflow): deeper than the server allows.
    deep = "{ executions { edges { node { workflow " * 4 + "{ id }" + " } } } }" * 4
    (web / "src" / "graphql" / "bad.graphql").write_text(
        f"query Unknown {{ noSuchField }}\nquery Deep {deep}\n"
        # Cheap with 10 per page, over the cost limit with the largest pages.
        "query Costly($first: Int) { workflows(first: $first) { edges { node {"
        " executions(first: $first) { edges { node { id } } } } } } }\n"
        "query Cheap($first: Int = 10) { workflows(first: $first) { edges { node {"
        " executions(first: $first) { edges { node { id } } } } } } }\n"
    )
    problems = "\n".join(refused_operations(web))
    assert "bad.graphql: Costly: could return" in problems
    assert "Cheap" not in problems
    assert "bad.graphql: Unknown: Cannot query field 'noSuchField'" in problems
    assert "bad.graphql: Deep:" in problems


# --- the inputs' hash -----------------------------------------------------------------


TREE = {
    "package.json": b"{}",
    "src/main.tsx": b"export {};",
    "node_modules/react/index.js": b"x",
    "dist/index.html": b"<html>",
    "coverage/lcov.info": b"",
    "tsconfig.tsbuildinfo": b"{}",
}


def _write_tree(root: Path, files: dict[str, bytes]) -> Path:
    for name, content in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_bytes(content)
    return root


def test_inputs_hash_covers_sources_only(tmp_path: Path) -> None:
    web = _write_tree(tmp_path / "a", TREE)
    base = inputs_hash(web)
    assert base == inputs_hash(_write_tree(tmp_path / "b", TREE))
    for ignored in ("node_modules/react/index.js", "dist/x.js", "a.tsbuildinfo", "coverage/x"):
        _write_tree(web, {ignored: b"changed"})
        assert inputs_hash(web) == base, ignored
    _write_tree(web, {"src/main.tsx": b"export {}; "})
    assert inputs_hash(web) != base
    renamed = _write_tree(tmp_path / "c", {**TREE, "src/app.tsx": b"export {};"})
    (renamed / "src" / "main.tsx").unlink()
    assert inputs_hash(renamed) != base


def test_build_info_written_then_checked(tmp_path: Path) -> None:
    web = _write_tree(tmp_path / "web", TREE)
    dist = _write_tree(tmp_path / "dist", {"index.html": b"<html>", "assets/a-1.js": b"1"})
    info = write(web, dist)
    assert info["files"] == ["assets/a-1.js", "index.html"]
    assert check(web, dist) == []
    _write_tree(web, {"src/main.tsx": b"changed"})
    (dist / "assets" / "a-1.js").unlink()
    _write_tree(dist, {"assets/a-2.js": b"2"})
    problems = "\n".join(check(web, dist))
    assert "web/ has changed since the build" in problems
    assert "missing" in problems and "assets/a-1.js" in problems
    assert "did not write" in problems and "assets/a-2.js" in problems
