"""A webhook reply's headers: what validation refuses when the workflow is saved (each
problem at its node and JSON path) and what is dropped from a reply rendered at run time
(`safe_reply_headers`), so that tenant content on FlowSync's origin stays inert."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowsync.engine.reply_headers import GUARD_HEADERS, safe_reply_headers
from flowsync.engine.templates import json_path
from flowsync.engine.validation import validate_definition
from flowsync.errors import DefinitionInvalid, Problem


def reply_workflow(data: dict[str, Any]) -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "reply", "type": "webhook_response", "data": data},
            {"id": "end", "type": "end"},
        ],
        "edges": [{"source": "start", "target": "reply"}, {"source": "reply", "target": "end"}],
    }


def problems(headers: dict[str, Any], **data: Any) -> list[Problem]:
    with pytest.raises(DefinitionInvalid) as info:
        validate_definition(reply_workflow({"headers": headers, **data}))
    return info.value.details


def only_problem(headers: dict[str, Any]) -> Problem:
    [problem] = problems(headers)
    assert problem.node_id == "reply"
    return problem


# --- refused when saved --------------------------------------------------------------------


@pytest.mark.parametrize(
    ("name", "fragment"),
    [
        ("Set-Cookie", "set a cookie"),
        ("set-cookie", "set a cookie"),
        ("Access-Control-Allow-Origin", "CORS"),
        ("Access-Control-Allow-Credentials", "CORS"),
        ("Content-Security-Policy", "security policy"),
        ("Strict-Transport-Security", "security policy"),
        ("Refresh", "security policy"),
        ("Link", "security policy"),
        ("Connection", "connection or the transfer"),
        ("Transfer-Encoding", "connection or the transfer"),
        ("Content-Length", "connection or the transfer"),
        ("Upgrade", "connection or the transfer"),
        ("X-Frame-Options", "security, proxy or FlowSync"),
        ("X-Content-Type-Options", "security, proxy or FlowSync"),
        ("X-Forwarded-For", "security, proxy or FlowSync"),
        ("X-Accel-Redirect", "security, proxy or FlowSync"),
        ("X-Sendfile", "security, proxy or FlowSync"),
        ("X-FlowSync-Execution-Id", "security, proxy or FlowSync"),
        ("Server", "not on the list"),
    ],
)
def test_a_header_a_reply_may_not_set_is_refused_at_its_path(name: str, fragment: str) -> None:
    problem = only_problem({"X-Fine": "1", name: "x"})
    assert problem.path == json_path("$.nodes[1].data.headers", name)
    assert name in problem.message and fragment in problem.message


@pytest.mark.parametrize("value", ["a\r\nSet-Cookie: s=1", "a\nb", "a\rb", "a\x00b", "a\x7f"])
def test_a_value_that_is_not_one_line_is_refused(value: str) -> None:
    problem = only_problem({"X-Order": value})
    assert problem.path == '$.nodes[1].data.headers["X-Order"]'
    assert "one line" in problem.message


def test_a_template_value_with_a_line_break_in_its_text_is_refused() -> None:
    problem = only_problem({"X-Order": "{{ input.id }}\r\nSet-Cookie: s=1"})
    assert "one line" in problem.message


@pytest.mark.parametrize(
    "media",
    [
        "text/html",
        "TEXT/HTML; charset=utf-8",
        "application/xhtml+xml",
        "image/svg+xml",
        "text/xml",
        "application/xml",
        "application/javascript",
        "text/javascript",
        "application/pdf",
        "video/x-unknown",
    ],
)
def test_an_active_or_unknown_content_type_is_refused(media: str) -> None:
    problem = only_problem({"Content-Type": media})
    assert problem.path == '$.nodes[1].data.headers["Content-Type"]'
    assert "active content" in problem.message and "application/json" in problem.message


def test_the_other_value_rules() -> None:
    cases = {
        "Location": ("/api/graphql", "absolute http"),
        "X-City": ("東京", "Latin-1"),
        "Content-Type": ("json", "not a media type"),
    }
    for name, (value, fragment) in cases.items():
        problem = only_problem({name: value})
        assert problem.path == json_path("$.nodes[1].data.headers", name)
        assert fragment in problem.message, problem


def test_a_name_given_twice_in_two_cases_is_refused() -> None:
    problem = only_problem({"X-Order": "1", "x-order": "2"})
    assert problem.path == '$.nodes[1].data.headers["x-order"]'
    assert "also given as 'X-Order'" in problem.message


def test_a_1xx_status_is_not_a_reply() -> None:
    [problem] = problems({}, status=101)
    assert problem.path == "$.nodes[1].data.status" and "200" in problem.message


def test_every_problem_of_a_reply_is_reported_at_once() -> None:
    found = problems({"Set-Cookie": "a=1", "Content-Type": "text/html", "X-A": "a\nb"})
    assert len(found) == 3


def test_safe_headers_validate() -> None:
    headers = {
        "Content-Type": "application/problem+json; charset=utf-8",
        "Cache-Control": "no-store",
        "Location": "https://shop.example/orders/{{ input.id }}",
        "Retry-After": 30,
        "ETag": '"v1"',
        "Content-Disposition": 'attachment; filename="orders.csv"',
        "Content-Language": "de",
        "X-Order": "{{ input.id }}",
        "X-Zurich": "Zürich",
        "X-Tab": "a\tb",
        # A template's value is known at run time only: checked (and maybe dropped) then.
        "X-Any": "{{ input.anything }}",
    }
    validate_definition(reply_workflow({"status": 201, "headers": headers}))
    validate_definition(reply_workflow({"headers": {"Content-Type": "{{ input.type }}"}}))


# --- dropped when sent ---------------------------------------------------------------------


def test_what_a_template_rendered_is_checked_again_when_sent() -> None:
    rendered = {
        "X-Order": "7",
        "Set-Cookie": "session=stolen",
        "X-Split": "a\r\nSet-Cookie: s=1",
        "X-Nul": "a\x00b",
        "X-City": "東京",
        "Content-Type": "text/html; charset=utf-8",
        "Location": "javascript:alert(1)",
        "x-order": "8",
        "Access-Control-Allow-Origin": "*",
        "Content-Length": "3",
        "bad name": "x",
        "Cache-Control": "  no-store ",
    }
    assert safe_reply_headers(rendered) == {"X-Order": "7", "Cache-Control": "no-store"}
    assert safe_reply_headers({"content-type": "text/csv"}) == {"content-type": "text/csv"}


@given(st.dictionaries(st.text(max_size=30), st.text(max_size=60), max_size=8))
def test_whatever_is_rendered_what_is_sent_is_safe(rendered: dict[str, str]) -> None:
    sent = safe_reply_headers(rendered)
    for name, value in sent.items():
        name.encode("ascii")
        value.encode("latin-1")
        assert not any(c in value for c in "\r\n\x00")
        assert value == value.strip(" \t")
        assert name.lower() not in ("set-cookie", "content-length", "connection")
        assert not name.lower().startswith(("access-control-", "x-flowsync-"))
    assert len({n.lower() for n in sent}) == len(sent)
    guarded = {name.lower() for name, _ in GUARD_HEADERS}
    assert not guarded & {n.lower() for n in sent}
