"""Traces through both faces of one real server, tracing on (in memory): a run's
`traceId` is in the start's reply and in the execution read back, and a request's
traceparent is continued by the run it starts (its trace id is the caller's), over
GraphQL as over REST; with tracing off it is null."""

from __future__ import annotations

import re
from collections.abc import AsyncIterator

import pytest
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from tests.behaviour.faces import FACES
from tests.rest.server import Server, serve
from tests.support.graphs import fan

CALLER = "0af7651916cd43dd8448eb211c80319c"


@pytest.fixture
async def server(db_url: str) -> AsyncIterator[Server]:
    async with serve(db_url) as running:
        yield running


@pytest.mark.parametrize("face_name", sorted(FACES))
async def test_the_trace_id_is_on_the_execution_in_both_faces(
    server: Server, spans: InMemorySpanExporter, face_name: str
) -> None:
    owner = await server.owner()
    face = FACES[face_name](owner.http)
    wf = await face.create_workflow("traced", fan(2))
    started, _ = await face.start_execution(wf["id"], {})
    trace_id = started["traceId"]
    assert isinstance(trace_id, str) and re.fullmatch(r"[0-9a-f]{32}", trace_id)
    read = await face.get_execution(started["id"])
    assert read is not None and read["traceId"] == trace_id
    (root,) = spans.get_finished_spans()
    assert f"{root.context.trace_id:032x}" == trace_id

    # A caller's traceparent is continued: the run's trace is the caller's.
    calling = FACES[face_name](
        server.client(owner.key, traceparent=f"00-{CALLER}-b7ad6b7169203331-01")
    )
    continued, _ = await calling.start_execution(wf["id"], {})
    assert continued["traceId"] == CALLER


@pytest.mark.parametrize("face_name", sorted(FACES))
async def test_untraced_runs_have_no_trace_id(server: Server, face_name: str) -> None:
    owner = await server.owner()
    face = FACES[face_name](owner.http)
    wf = await face.create_workflow("untraced", fan(2))
    started, _ = await face.start_execution(wf["id"], {})
    assert started["traceId"] is None
