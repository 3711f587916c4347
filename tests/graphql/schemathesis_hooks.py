"""schemathesis hooks for the GraphQL fuzz test (loaded by the CLI through
SCHEMATHESIS_HOOKS): strategies for the JSON scalar and for the built-in ones that mix in
values at the edge of what FlowSync accepts (tests/support/edges.py: NUL, extreme
cursors and times, numbers past 64 bits), and FlowSync's own verdict on a reply in place
of schemathesis's `not_a_server_error`.

schemathesis takes an error with a `path` and an unknown `extensions.code` for a server
failure; FlowSync answers a refused argument exactly so (`invalid_input`, `not_found`,
... in lower case). What FlowSync promises instead: no 5xx, no "Unexpected error." (the
mask over every exception that is not a FlowSync error), and every error raised while
resolving a field carries an `extensions.code`."""

from __future__ import annotations

from typing import Any

import graphql
import schemathesis
from hypothesis import strategies as st
from schemathesis.graphql import nodes

from tests.support import edges

_NAMES = st.from_regex(r"\A[_A-Za-z][_0-9A-Za-z]{0,8}\Z")
_TEXT = st.one_of(st.text(max_size=20), st.sampled_from(edges.STRINGS))
# Numbers at and past the edges FlowSync decides on: 2^53, 64 bits, a double's range.
_INTS = st.one_of(
    st.integers(-(2**70), 2**70),
    st.sampled_from([2**53, 2**53 + 1, 2**63, 2**64, -(2**63) - 1, 10**20, 10**400]),
)
_FLOATS = st.one_of(
    st.floats(allow_nan=False, allow_infinity=False),
    st.sampled_from([1e20, 1e308, -1e308, 5e-324]),
).map(lambda f: graphql.FloatValueNode(value=repr(f)))
_SCALARS: st.SearchStrategy[graphql.ValueNode] = st.one_of(
    st.just(graphql.NullValueNode()),
    st.booleans().map(nodes.Boolean),
    _INTS.map(nodes.Int),
    _FLOATS,
    _TEXT.map(nodes.String),
)


def _object(values: st.SearchStrategy[graphql.ValueNode]) -> st.SearchStrategy[graphql.ValueNode]:
    fields = st.dictionaries(_NAMES, values, max_size=4).map(
        lambda d: [
            graphql.ObjectFieldNode(name=graphql.NameNode(value=k), value=v) for k, v in d.items()
        ]
    )
    return fields.map(nodes.Object)


schemathesis.graphql.scalar(
    "JSON",
    st.recursive(
        _SCALARS,
        lambda inner: st.one_of(st.lists(inner, max_size=4).map(nodes.List), _object(inner)),
        max_leaves=12,
    ),
)
# The built-in scalars too, each with the edge values mixed in (Int past 32 bits, too).
schemathesis.graphql.scalar("String", _TEXT.map(nodes.String))
schemathesis.graphql.scalar("ID", st.one_of(_TEXT, st.uuids().map(str)).map(nodes.String))
schemathesis.graphql.scalar(
    "Int",
    st.one_of(
        st.integers(-(2**31), 2**31 - 1),
        st.sampled_from([0, -1, 2**31, -(2**31) - 1, 2**63, 2**97]),
    ).map(nodes.Int),
)
schemathesis.graphql.scalar("Float", _FLOATS)
schemathesis.graphql.scalar(
    "DateTime",
    st.one_of(
        st.datetimes(timezones=st.timezones()).map(lambda t: t.isoformat()),
        st.sampled_from(edges.STRINGS),
    ).map(nodes.String),
)


@schemathesis.check
def flowsync_graphql_reply(ctx: Any, response: Any, case: Any) -> bool:
    """No 5xx, no "Unexpected error.", and a code on every error of a field."""
    if response.status_code >= 500:
        raise AssertionError(f"{response.status_code}: {response.text[:500]}")
    if "Unexpected error" in response.text:
        raise AssertionError(f"an unexpected error: {response.text[:500]}")
    try:
        body = response.json()
    except ValueError:
        return True  # a transport-level refusal (400 for a malformed request)
    for error in (body.get("errors") or []) if isinstance(body, dict) else []:
        code = (error.get("extensions") or {}).get("code")
        if "path" in error and not code:
            raise AssertionError(f"a field's error without a code: {error}")
    return True
