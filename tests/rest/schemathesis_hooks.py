"""schemathesis hooks for the REST fuzz test (loaded by the CLI through
SCHEMATHESIS_HOOKS): every generated query and body is also sent with one of its leaves
replaced by a value at the edge of what FlowSync accepts (tests/support/edges.py);
so is every generated path parameter."""

from __future__ import annotations

from typing import Any

import schemathesis
from hypothesis import strategies as st

from tests.support.edges import with_an_edge


@schemathesis.hook
def flatmap_query(context: Any, query: Any) -> st.SearchStrategy[Any]:
    return with_an_edge(query)


@schemathesis.hook
def flatmap_body(context: Any, body: Any) -> st.SearchStrategy[Any]:
    return with_an_edge(body, strings=False)


@schemathesis.hook
def flatmap_path_parameters(context: Any, path_parameters: Any) -> st.SearchStrategy[Any]:
    return with_an_edge(path_parameters)
