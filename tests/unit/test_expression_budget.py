"""The static cost of expressions: the estimate, refusal at save with node and path, what
runs off the event loop, and templates that stop growing at their size limit."""

from __future__ import annotations

import itertools
import math
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from flowsync.engine.budget import (
    DATA_ITEMS,
    INLINE_READS,
    ITEM_ITEMS,
    MAX_COST,
    MAX_NESTING,
    Cost,
    estimate,
)
from flowsync.engine.expressions import compile_expression, scan
from flowsync.engine.templates import compile_template
from flowsync.engine.validation import validate_definition
from flowsync.errors import DefinitionInvalid, ExpressionFailed, ExpressionSyntaxError

TEN = "[0,1,2,3,4,5,6,7,8,9]"


def cost(source: str) -> Cost:
    return estimate(list(scan(source)))


def nested(levels: int, items: str = TEN, macro: str = "all") -> str:
    """The issue's shape: `[0..9].all(a, [0..9].all(b, ... a + b + ... >= 0))`."""
    names = [chr(ord("a") + k) for k in range(levels)]
    body = " + ".join(names) + " >= 0"
    for name in reversed(names):
        body = f"{items}.{macro}({name}, {body})"
    return body


# The issue's report: a 214-character condition of this shape froze the process for 33 s.
ISSUE_EXAMPLE = nested(6)


# --- the estimate ------------------------------------------------------------------------


def test_the_issues_example_is_about_214_characters_and_nests_six_deep() -> None:
    assert 190 <= len(ISSUE_EXAMPLE) <= 230
    found = cost(ISSUE_EXAMPLE)
    assert found.nesting == 6
    assert found.units > 10**6 * 10  # a million runs of a body of more than ten tokens
    assert not found.unknown_sizes


def test_each_level_over_a_literal_list_multiplies_by_its_size() -> None:
    source, units = "true", []
    for level in range(5):
        source = f"{TEN}.all(v{level}, {source})"
        units.append(cost(source).units)
    for smaller, larger in itertools.pairwise(units):
        assert 10 * smaller < larger < 10 * smaller + 100


@pytest.mark.parametrize(
    ("receiver", "size"),
    [
        ("[1, 2, 3]", 3),
        ("[1, 2, 3,]", 3),  # a trailing comma adds no item
        ("[[1, 2], [3, 4]]", 2),
        ("{'a': 1, 'b': [1, 2]}", 2),
        ("[]", 0),
        ("[1, 2, 3].map(x, x * 2)", 3),  # a map's result has as many items
        ("[1, 2, 3].filter(x, x > 1)", 3),  # a filter's at most as many
    ],
)
def test_a_literal_receiver_counts_its_items_exactly(receiver: str, size: int) -> None:
    inner = cost(f"{TEN}.all(y, true)").units
    found = cost(f"{receiver}.all(x, {TEN}.all(y, true))")
    assert not found.unknown_sizes
    assert size * inner <= found.units < size * (inner + 10) + 60


def test_an_index_is_not_a_list_literal() -> None:
    found = cost("input.lists[0].all(x, x > 0)")
    assert found.unknown_sizes


def test_lists_from_data_count_as_a_nominal_size() -> None:
    one = cost("input.items.all(i, i.ok)")
    assert one.unknown_sizes and one.nesting == 1
    assert DATA_ITEMS * 5 <= one.units < DATA_ITEMS * 10
    two = cost("input.a.all(x, input.b.all(y, x == y))")
    assert two.units > DATA_ITEMS * one.units // 2


def test_a_list_inside_an_iterated_item_counts_as_a_small_one() -> None:
    """`orders.map(o, o.lines.map(...))` walks each order's own lines: linear in the data,
    not a product of two independent lists."""
    inner = cost("input.orders.all(o, o.lines.all(l, l.qty > 0))")
    independent = cost("input.orders.all(o, input.lines.all(l, l.qty > 0))")
    assert inner.units < independent.units
    assert inner.units >= DATA_ITEMS * ITEM_ITEMS
    # Three levels of that are fine; three independent data lists are refused.
    assert cost("input.o.map(o, o.lines.map(l, l.taxes.map(t, t.amount)))").problem() is None
    assert cost("input.a.all(x, input.b.all(y, input.c.all(z, x + y + z > 0)))").problem()


def test_map_and_filter_count_the_copies_this_runtime_makes() -> None:
    assert cost("input.items.map(i, i)").units > cost("input.items.all(i, i)").units + 4000


def test_string_literals_weigh_by_their_length() -> None:
    short = cost(f"{TEN}.map(a, 'x')")
    long = cost(f"{TEN}.map(a, '{'x' * 1000}')")
    assert long.units - short.units >= 10 * 99


def test_reads_are_counted() -> None:
    assert cost("input.a + steps.b.output.c + execution.id + trigger.type").reads == 4
    assert cost("{'input': 1}.input + size(input)").reads == 1  # a field and a function


@given(st.lists(st.integers(min_value=0, max_value=6), min_size=1, max_size=4))
@settings(max_examples=60, deadline=None)
def test_the_estimate_is_at_least_the_iterations_of_literal_lists(sizes: list[int]) -> None:
    names = [f"v{k}" for k in range(len(sizes))]
    body = "true"
    for name, size in reversed(list(zip(names, sizes, strict=True))):
        body = f"[{', '.join(['0'] * size)}].all({name}, {body})"
    found = cost(body)
    assert found.units >= math.prod(sizes)
    assert found.nesting == len(sizes)
    assert not found.unknown_sizes


@given(st.text(max_size=200))
@settings(max_examples=200, deadline=None)
def test_any_text_gets_an_estimate(text: str) -> None:
    found = cost(text)
    assert found.units >= 0 and found.nesting >= 0


# --- what runs off the event loop ---------------------------------------------------------


@pytest.mark.parametrize(
    "source",
    [
        "steps.fetch.output.status == 200",
        "[200, 201, 204].exists(s, s == steps.fetch.output.status)",
        "has(input.email) && input.email.endsWith('@example.com')",
        "input.count + 1",
    ],
)
def test_cheap_expressions_stay_on_the_event_loop(source: str) -> None:
    assert not compile_expression(source).cost.offloaded


@pytest.mark.parametrize(
    "source",
    [
        "input.items.map(i, i.id)",  # a list from data: its size is not known
        nested(3),  # a literal product of 1,000 runs
        " + ".join(["input.s"] * (INLINE_READS + 1)),  # each + copies a big value again
    ],
)
def test_costly_expressions_run_off_the_event_loop(source: str) -> None:
    assert compile_expression(source).cost.offloaded


def test_a_template_lists_its_offloaded_expressions() -> None:
    template = compile_template({"a": "{{ input.a }}", "b": "{{ input.items.map(i, i.id) }}"})
    assert [e.source for e in template.offloaded] == ["input.items.map(i, i.id)"]


# --- refused at save ----------------------------------------------------------------------


def test_the_issues_example_is_refused_when_compiled() -> None:
    with pytest.raises(ExpressionSyntaxError, match=f"nested 6 deep; at most {MAX_NESTING}"):
        compile_expression(ISSUE_EXAMPLE)


def test_a_wide_product_is_refused_for_its_cost() -> None:
    twenty = "[" + ", ".join(str(i) for i in range(20)) + "]"
    source = nested(4, twenty)
    with pytest.raises(ExpressionSyntaxError, match=f"at most {MAX_COST:,}") as info:
        compile_expression(source)
    assert "too costly" in info.value.message


def test_within_budget_compiles_and_evaluates() -> None:
    assert compile_expression(nested(3)).evaluate({}) is True


def test_without_budget_a_stored_expression_still_compiles() -> None:
    assert compile_expression(ISSUE_EXAMPLE, budget=False).cost.nesting == 6


def test_a_template_reports_the_path_of_an_over_budget_expression() -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        compile_template({"ok": "{{ input.a }}", "deep": ["x {{ " + ISSUE_EXAMPLE + " }}"]})
    [problem] = info.value.details
    assert problem.path == "$.deep[0]"
    assert "nested 6 deep" in problem.message


def definition(data_by_type: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "check", "type": "condition", "data": data_by_type["condition"]},
            {"id": "shape", "type": "transform", "data": data_by_type["transform"]},
            {"id": "end", "type": "end", "data": data_by_type["end"]},
        ],
        "edges": [
            {"source": "start", "target": "check"},
            {"source": "check", "target": "shape", "sourceHandle": "true"},
            {"source": "check", "target": "end", "sourceHandle": "false"},
            {"source": "shape", "target": "end"},
        ],
    }


def test_validation_refuses_over_budget_expressions_with_node_and_path() -> None:
    raw = definition(
        {
            "condition": {"expression": ISSUE_EXAMPLE},
            "transform": {"output": {"rows": [f"{{{{ {ISSUE_EXAMPLE} }}}}"]}},
            "end": {"output": "{{ input.a }}"},
        }
    )
    with pytest.raises(DefinitionInvalid) as info:
        validate_definition(raw)
    found = {(p.path, p.node_id) for p in info.value.details}
    assert found == {
        ("$.nodes[1].data.expression", "check"),
        ("$.nodes[2].data.output.rows[0]", "shape"),
    }
    assert all("nested 6 deep" in p.message for p in info.value.details)
    assert "nested 6 deep" in info.value.message


def test_a_stored_version_compiles_without_the_budget() -> None:
    raw = definition(
        {
            "condition": {"expression": ISSUE_EXAMPLE},
            "transform": {"output": {}},
            "end": {},
        }
    )
    workflow = validate_definition(raw, budget=False)
    condition = workflow.nodes["check"].condition
    assert condition is not None and condition.cost.offloaded


# --- templates stop growing at their limit --------------------------------------------------


def test_a_template_repeating_a_big_string_stops_at_the_limit() -> None:
    big = {"input": {"s": "x" * 10_000}}
    template = compile_template("{{ input.s }}" * 1_000)  # would be 10 MB
    assert len(template.render(big, limit=None)) == 10_000_000  # type: ignore[arg-type]
    with pytest.raises(ExpressionFailed, match=r"template at \$: its value grew over 50,000"):
        template.render(big, limit=50_000)


def test_a_template_of_many_whole_values_stops_at_the_limit() -> None:
    big = {"input": {"s": "x" * 10_000, "l": list(range(3_000))}}
    with pytest.raises(ExpressionFailed, match=r"template at \$\[4\]: its value grew over"):
        compile_template(["{{ input.s }}"] * 100).render(big, limit=50_000)
    with pytest.raises(ExpressionFailed, match=r"template at \$\.b: its value grew over"):
        compile_template({"a": "{{ input.l }}", "b": "{{ input.l }}"}).render(big, limit=20_000)


def test_a_template_within_the_limit_renders_as_before() -> None:
    context = {"input": {"s": "héllo", "n": 3}}
    template = compile_template({"t": "{{ input.s }} and {{ input.n }}", "n": "{{ input.n }}"})
    assert template.render(context, limit=40) == {"t": "héllo and 3", "n": 3}


def test_values_computed_elsewhere_are_used_and_their_failures_raised_in_place() -> None:
    template = compile_template({"a": "{{ input.a }}", "b": "n={{ input.b }}"})
    a, b = template.expressions
    assert template.render({}, computed={a: 1, b: 2}) == {"a": 1, "b": "n=2"}
    with pytest.raises(ExpressionFailed, match=r"template at \$\.b: boom"):
        template.render({"input": {"a": 1}}, computed={b: ExpressionFailed("boom")})
