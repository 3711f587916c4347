"""The editor's expression check says what saving would say, at the place it concerns:
its verdict and message are those of validation for the same text in a condition or a
template field, and each problem points into the text where CEL, the unknown name or
the bad placeholder is."""

from __future__ import annotations

from typing import Any

import pytest

from flowsync.engine.validation import validate_definition
from flowsync.errors import DefinitionInvalid, InvalidInput
from flowsync.services.expression_check import (
    MAX_CHECK_CHARS,
    ExpressionProblem,
    check_expression,
)

EXPRESSIONS = [
    "input.ok == true",
    "steps.fetch.output.status == 200 && size(input.items) > 0",
    "input.items.exists(i, i.qty > 1)",
    "input.a ==",
    "input.a &&\n  (input.b",
    "foo.bar == 1",
    "input.x.exists(y, y > 1) && zed",
    "size(input) > 2 && frobnicate(1)",
    "{{ input.ok }}",
    "   ",
    "'unterminated",
    "x" * 10_001,
]
TEMPLATES = [
    "plain text",
    "https://shop.example/orders/{{ input.orderId }}",
    "{{ steps.fetch.output.body }}",
    "a {{ input.a }} b {{ input.b ==  }}",
    "x {{ bogus }}",
    "open {{ input.a",
    "empty {{ }} here",
    "{{ {'a': {'b': 1}} }} and {{ 'x}}y' }}",
]


def _saved(node: dict[str, Any]) -> list[str]:
    """The messages validation gives for `node`'s data when a workflow holding it is saved
    (after a step `fetch`, which the texts read: what a node may read of the graph is
    validation's alone, the text's check does not know the graph)."""
    fetch = {"id": "fetch", "type": "transform", "data": {"output": {}}}
    definition = {
        "nodes": [{"id": "start", "type": "start"}, fetch, node, {"id": "end", "type": "end"}],
        "edges": [
            {"source": "start", "target": "fetch"},
            {"source": "fetch", "target": "n"},
            {"source": "n", "target": "end"},
        ],
    }
    if node["type"] == "condition":
        definition["edges"] = [
            {"source": "start", "target": "fetch"},
            {"source": "fetch", "target": "n"},
            {"source": "n", "target": "end", "sourceHandle": "true"},
            {"source": "n", "target": "end", "sourceHandle": "false"},
        ]
    try:
        validate_definition(definition)
    except DefinitionInvalid as exc:
        return [p.message for p in exc.details if p.path.startswith("$.nodes[2].data")]
    return []


@pytest.mark.parametrize("text", EXPRESSIONS, ids=lambda t: t[:30])
def test_an_expression_is_judged_as_a_condition_is_when_saved(text: str) -> None:
    found = check_expression(text, "EXPRESSION")
    saved = _saved({"id": "n", "type": "condition", "data": {"expression": text}})
    assert [p.message for p in found] == saved


@pytest.mark.parametrize("text", TEMPLATES, ids=lambda t: t[:30])
def test_a_template_string_is_judged_as_a_template_field_is_when_saved(text: str) -> None:
    found = check_expression(text, "TEMPLATE")
    saved = _saved({"id": "n", "type": "transform", "data": {"output": text}})
    assert [p.message for p in found] == saved


@pytest.mark.parametrize(
    ("text", "kind", "position"),
    [
        ("input.a ==", "EXPRESSION", 10),  # the end, where CEL wanted more
        ("input.a &&\n  (input.b", "EXPRESSION", 21),  # line 2
        ("'é😀' + input.a ) ", "EXPRESSION", 15),  # counted in characters
        ("foo.bar == 1", "EXPRESSION", 0),
        ("input.zed == zed", "EXPRESSION", 13),  # the variable, not the field
        ("input.x.exists(y, y > 1) && zed", "EXPRESSION", 28),
        ("size(input) > 2 && frobnicate(1)", "EXPRESSION", 19),
        ("{{ input.ok }}", "EXPRESSION", None),
        ("a {{ input.a }} b {{  input.b ==  }}", "TEMPLATE", 32),
        ("x {{ bogus }}", "TEMPLATE", 5),
        ("open {{ input.a", "TEMPLATE", 5),
        ("empty {{ }} here", "TEMPLATE", 6),
        ("{{ input.steps == 1 }} then {{ input.ok.exists(i, j) }}", "TEMPLATE", 50),
    ],
)
def test_each_problem_points_where_it_is(text: str, kind: str, position: int | None) -> None:
    [problem] = check_expression(text, kind)
    assert problem.position == position, problem.message


def test_what_compiles_has_no_problem() -> None:
    assert check_expression("input.n + 1 > 2", "EXPRESSION") == []
    assert check_expression("n = {{ input.n + 1 }}", "TEMPLATE") == []
    # The kinds differ: a placeholder is no condition, and text is a fine template.
    assert check_expression("{{ input.ok }}", "TEMPLATE") == []
    assert check_expression("just words", "TEMPLATE") == []
    assert check_expression("just words", "EXPRESSION") != []


def test_the_cost_budget_of_saving_applies() -> None:
    nested = "input.a.all(x, x.all(y, y.all(z, z.all(w, w.all(v, v > 0)))))"
    [problem] = check_expression(nested, "EXPRESSION")
    assert problem == ExpressionProblem(problem.message, None)
    assert problem.message in _saved(
        {"id": "n", "type": "condition", "data": {"expression": nested}}
    )


def test_what_cannot_be_checked_is_refused_naming_it() -> None:
    with pytest.raises(InvalidInput) as long:
        check_expression("x" * (MAX_CHECK_CHARS + 1), "TEMPLATE")
    assert [p.path for p in long.value.details] == ["expression"]
    with pytest.raises(InvalidInput) as kind:
        check_expression("input.a", "JINJA")
    assert [p.path for p in kind.value.details] == ["kind"]
    with pytest.raises(InvalidInput):
        check_expression(3, "EXPRESSION")
