"""Templates: typed whole placeholders, text interpolation, copying, errors."""

from __future__ import annotations

import json
from typing import Any

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st
from pydantic import JsonValue

from flowsync.engine.templates import compile_template, json_path, to_text
from flowsync.errors import ExpressionFailed, ExpressionSyntaxError

CONTEXT: dict[str, object] = {
    "input": {
        "n": 3,
        "x": 1.5,
        "two": 2.0,
        "s": "héllo",
        "none": None,
        "yes": True,
        "no": False,
        "list": [1, "a", None],
        "obj": {"k": [1, 2], "é": "ü"},
    }
}


def render(value: object) -> object:
    return compile_template(value).render(CONTEXT)  # type: ignore[arg-type]


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("{{ input.n }}", 3),
        ("{{input.n}}", 3),
        ("{{   input.x\n}}", 1.5),
        ("{{ input.s }}", "héllo"),
        ("{{ input.none }}", None),
        ("{{ input.yes }}", True),
        ("{{ input.list }}", [1, "a", None]),
        ("{{ input.obj }}", {"k": [1, 2], "é": "ü"}),
        ("{{ size(input.list) }}", 3),
    ],
)
def test_a_whole_placeholder_keeps_the_type(text: str, expected: object) -> None:
    assert render(text) == expected
    assert type(render(text)) is type(expected)


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("n={{ input.n }}", "n=3"),
        ("x={{ input.x }}", "x=1.5"),
        ("two={{ input.two }}", "two=2.0"),
        ("s={{ input.s }}", "s=héllo"),
        ("none=[{{ input.none }}]", "none=[]"),
        ("{{ input.yes }}/{{ input.no }}", "true/false"),
        ("l={{ input.list }}", 'l=[1,"a",null]'),
        ("o={{ input.obj }}", 'o={"k":[1,2],"é":"ü"}'),
        ("o={{ {'b': 1, 'a': 2} }}", 'o={"a":2,"b":1}'),  # keys sorted: CEL maps are unordered
        (" {{ input.n }}", " 3"),  # whitespace outside the braces is text
        ("{{ input.n }}{{ input.n }}", "33"),
    ],
)
def test_placeholders_inside_text_interpolate(text: str, expected: str) -> None:
    assert render(text) == expected


def test_everything_else_is_copied_and_keys_are_not_templated() -> None:
    value = {
        "{{ input.n }}": "{{ input.n }}",
        "plain": "no placeholders } { }}",
        "numbers": [1, 2.5, -0.0, True, None],
        "nested": {"deep": ["{{ input.s }}", {"k": "v={{ input.n }}"}]},
    }
    assert render(value) == {
        "{{ input.n }}": 3,
        "plain": "no placeholders } { }}",
        "numbers": [1, 2.5, -0.0, True, None],
        "nested": {"deep": ["héllo", {"k": "v=3"}]},
    }


def test_braces_inside_an_expression_do_not_close_it() -> None:
    assert render("{{ {'a': {'b': input.n}} }}") == {"a": {"b": 3}}
    assert render("{{ 'x}}y' + input.s }}") == "x}}yhéllo"
    assert render("a{{ {'k': 1}.k }}b") == "a1b"


def test_a_literal_double_brace_is_written_as_an_expression() -> None:
    assert render("{{ '{{' }} name }}") == "{{ name }}"


def test_render_gives_fresh_containers() -> None:
    template = compile_template({"a": [1, {"b": 2}]})
    first = template.render(CONTEXT)
    assert isinstance(first, dict)
    first["a"] = "changed"
    assert template.render(CONTEXT) == {"a": [1, {"b": 2}]}


def test_expressions_are_listed_in_document_order() -> None:
    template = compile_template({"a": "{{ input.n }}", "b": ["x {{ input.s }} {{ input.x }}"]})
    assert [e.source for e in template.expressions] == ["input.n", "input.s", "input.x"]
    assert compile_template({"a": 1}).expressions == ()


@pytest.mark.parametrize(
    ("value", "path", "fragment"),
    [
        ("{{ input.n", "$", "has no matching `}}`"),
        ("ok {{ input.n }} then {{ oops", "$", "at character 23 has no matching"),
        ("{{ 'open }}", "$", "has no matching"),
        ("{{ }}", "$", "is empty"),
        ({"a": ["x", "{{ 1 + }}"]}, "$.a[1]", "line 1, column 4"),
        ({"X-Id": "{{ inptu.n }}"}, '$["X-Id"]', "did you mean 'input'?"),
    ],
)
def test_syntax_errors_name_the_path(value: object, path: str, fragment: str) -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        compile_template(value)  # type: ignore[arg-type]
    assert [p.path for p in info.value.details] == [path]
    assert fragment in info.value.details[0].message


def test_every_bad_string_is_reported_under_the_given_path() -> None:
    with pytest.raises(ExpressionSyntaxError) as info:
        compile_template({"a": "{{ x", "b": {"c": "{{ y }}"}, "ok": "{{ input }}"}, path="$.body")
    assert [p.path for p in info.value.details] == ["$.body.a", "$.body.b.c"]
    assert info.value.message == "2 problems"


def test_a_render_error_names_the_path_and_the_expression() -> None:
    template = compile_template({"to": "mail: {{ input.email }}"}, path="$.nodes[4].data.body")
    with pytest.raises(ExpressionFailed) as info:
        template.render(CONTEXT)
    message = info.value.message
    assert message.startswith("template at $.nodes[4].data.body.to: expression `input.email`")
    assert "no such key 'email'" in message


def test_json_path_quotes_keys_that_are_not_identifiers() -> None:
    assert json_path("$", "a") == "$.a"
    assert json_path("$", 3) == "$[3]"
    assert json_path("$.h", "X-Id") == '$.h["X-Id"]'
    assert json_path("$", 'say "hi"') == '$["say \\"hi\\""]'


def test_to_text() -> None:
    values: list[JsonValue] = [None, True, False, 3, 1.5, 2.0, "é", [1, None], {"a": "b"}]
    assert [to_text(v) for v in values] == [
        "",
        "true",
        "false",
        "3",
        "1.5",
        "2.0",
        "é",
        "[1,null]",
        '{"a":"b"}',
    ]


# --- properties -----------------------------------------------------------------------

brace_free_text = st.text(
    alphabet=st.characters(exclude_categories=["Cs"], exclude_characters="{"), max_size=8
)
json_values = st.recursive(
    st.none()
    | st.booleans()
    | st.integers(min_value=-(2**63), max_value=2**63 - 1)
    | st.floats(allow_nan=False, allow_infinity=False)
    | st.text(alphabet=st.characters(exclude_categories=["Cs"]), max_size=8),
    lambda inner: st.lists(inner, max_size=3) | st.dictionaries(brace_free_text, inner, max_size=3),
    max_leaves=10,
)
literal_values = st.recursive(
    st.none() | st.booleans() | st.integers() | st.floats(allow_nan=False) | brace_free_text,
    lambda inner: (
        st.lists(inner, max_size=3) | st.dictionaries(st.text(max_size=5), inner, max_size=3)
    ),
    max_leaves=10,
)


@settings(max_examples=100, deadline=None)
@given(literal_values)
def test_a_value_without_placeholders_renders_to_itself(value: object) -> None:
    template = compile_template(value)  # type: ignore[arg-type]
    assert template.expressions == ()
    assert template.render({}) == value


def _sorted(value: object) -> Any:
    if isinstance(value, dict):
        return {k: _sorted(value[k]) for k in sorted(value)}
    if isinstance(value, list):
        return [_sorted(v) for v in value]
    return value


@settings(max_examples=100, deadline=None)
@given(json_values, brace_free_text, brace_free_text)
def test_placeholders_round_trip_values(value: object, before: str, after: str) -> None:
    context = {"input": {"v": value}}
    assert compile_template("{{ input.v }}").render(context) == value
    if before or after:
        text = compile_template(f"{before}{{{{ input.v }}}}{after}").render(context)
        assert text == before + to_text(_sorted(value)) + after
    if not isinstance(value, str):
        assert json.loads(to_text(_sorted(value)) or "null") == value
