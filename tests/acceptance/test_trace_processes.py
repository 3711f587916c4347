"""Traces across real worker processes: two `flowsync worker` processes export their
spans over OTLP/HTTP to a receiver this test runs on 127.0.0.1 (decoding the protobuf
ExportTraceServiceRequest), and a fork/join run's steps, run by both of them, are one
trace: a queue-wait and a run span per step, each the child of the execution's span
that the start (in this process, in memory) recorded."""

from __future__ import annotations

import gzip
import threading
from collections.abc import Iterator
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path
from typing import Any

import pytest
from opentelemetry.proto.collector.trace.v1.trace_service_pb2 import (
    ExportTraceServiceRequest,
    ExportTraceServiceResponse,
)
from opentelemetry.sdk.trace.export.in_memory_span_exporter import InMemorySpanExporter

from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.support.graphs import fan
from tests.support.processes import Process, flowsync_env
from tests.support.workers import FAST, finished, wait_until

pytestmark = pytest.mark.slow


class Receiver:
    """An OTLP/HTTP trace receiver: every span received, with its service's name."""

    def __init__(self) -> None:
        self.spans: list[tuple[str, Any]] = []
        self.lock = threading.Lock()
        receiver = self

        class Handler(BaseHTTPRequestHandler):
            def do_POST(self) -> None:
                body = self.rfile.read(int(self.headers.get("Content-Length", 0)))
                if self.headers.get("Content-Encoding") == "gzip":
                    body = gzip.decompress(body)
                request = ExportTraceServiceRequest.FromString(body)
                with receiver.lock:
                    for resource_spans in request.resource_spans:
                        attributes = {
                            a.key: a.value.string_value for a in resource_spans.resource.attributes
                        }
                        service = attributes.get("service.name", "")
                        for scope_spans in resource_spans.scope_spans:
                            receiver.spans += [(service, s) for s in scope_spans.spans]
                reply = ExportTraceServiceResponse().SerializeToString()
                self.send_response(200)
                self.send_header("Content-Type", "application/x-protobuf")
                self.send_header("Content-Length", str(len(reply)))
                self.end_headers()
                self.wfile.write(reply)

            def log_message(self, format: str, *args: Any) -> None:
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server.server_address[1]}/v1/traces"


@pytest.fixture
def receiver() -> Iterator[Receiver]:
    running = Receiver()
    thread = threading.Thread(target=running.server.serve_forever, daemon=True)
    thread.start()
    try:
        yield running
    finally:
        running.server.shutdown()
        running.server.server_close()


async def test_a_fork_join_run_across_two_workers_is_one_trace(
    services: Services,
    me: Principal,
    db_url: str,
    tmp_path: Path,
    receiver: Receiver,
    spans: InMemorySpanExporter,
) -> None:
    procs: list[Process] = []
    try:
        for i in range(2):
            env = flowsync_env(db_url, **FAST) | {
                "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": receiver.url,
                "OTEL_SERVICE_NAME": f"worker-{i}",
                "OTEL_BSP_SCHEDULE_DELAY": "100",
            }
            procs.append(
                Process(["worker", "--concurrency", "2"], env, tmp_path / f"worker-{i}.log")
            )

        async def both_joined() -> bool:
            count = await services.pool.fetchval("SELECT count(*) FROM workers")
            return bool(count == 2)

        await wait_until(both_joined, 30, "both workers to join")
        # Six branches that take 0.3 s each, two at a time per worker: both take part.
        wf = await services.workflows.create(me, "fanned", None, fan(6))
        eid = (await services.executions.start(me, wf.id, {"sleep": 0.3})).execution.id
        execution = await finished(services, me, eid, 60)
        assert execution.status == "COMPLETED", [p.output()[-2000:] for p in procs]
        for proc in procs:
            assert proc.terminate() == 0  # flushes the spans still buffered
    finally:
        for proc in procs:
            proc.close()

    (root,) = spans.get_finished_spans()  # the run is started in this process
    assert root.name == "execution fanned"
    steps = await services.executions.steps(me, [eid])
    worked = {s.node_id: s for s in steps[eid] if s.worker_id is not None}
    assert {f"b{i}" for i in range(6)} | {"merge"} <= set(worked)
    received = receiver.spans
    names = sorted(s.name for _, s in received)
    expected = sorted([*(f"queue wait {n}" for n in worked), *(f"step {n}" for n in worked)])
    assert names == expected, [p.output()[-2000:] for p in procs]
    for _service, span in received:
        assert span.trace_id.hex() == f"{root.context.trace_id:032x}"
        assert span.parent_span_id.hex() == f"{root.context.span_id:016x}"
        node = span.name.rsplit(" ", 1)[1]
        attributes = {a.key: a.value for a in span.attributes}
        assert attributes["flowsync.step_id"].string_value == str(worked[node].id)
        assert span.start_time_unix_nano <= span.end_time_unix_nano
    # Each step's spans came from the worker that ran it, and both workers ran steps.
    services_by_node = {
        span.name.rsplit(" ", 1)[1]: service
        for service, span in received
        if span.name[:4] == "step"
    }
    assert set(services_by_node.values()) == {"worker-0", "worker-1"}
    ran_by = {}
    for node, step in worked.items():
        ran_by.setdefault(step.worker_id, set()).add(services_by_node[node])
    assert all(len(found) == 1 for found in ran_by.values()), ran_by
