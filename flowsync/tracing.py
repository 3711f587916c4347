"""Traces: one OpenTelemetry trace per execution, off unless configured.

A run's trace begins where it is started (an API request, a batch, a webhook, a cron
firing): a span `execution <workflow>`, the child of the caller's `traceparent` when the
request carried a valid one (a malformed one is ignored: a new trace begins). Its context
is stored on the execution (`executions.trace_context`, a W3C traceparent), so that every
worker process continues the same trace: per step a `queue wait <node>` span (from when
the job was due to its claim) and a `step <node>` span (its run), children of the
execution's; an HTTP action's call is a client span under its step's, and the target
receives its `traceparent`. A child workflow's run continues its parent's trace (its
execution span under the parent's). The trace id is on the execution in both APIs
(`traceId`) and in the log lines of its steps.

Configured by the standard OpenTelemetry variables, read here and by the SDK only:
tracing is on when `OTEL_EXPORTER_OTLP_ENDPOINT` or `OTEL_EXPORTER_OTLP_TRACES_ENDPOINT`
is set, or `OTEL_TRACES_EXPORTER` names an exporter (`otlp`, `console`; `none` is off);
`OTEL_SDK_DISABLED=true` turns it off whatever else is set. The SDK reads the rest
(`OTEL_SERVICE_NAME`, `OTEL_RESOURCE_ATTRIBUTES`, `OTEL_TRACES_SAMPLER`, the exporter's
headers and timeouts, `OTEL_BSP_*`). Spans go over OTLP/HTTP (protobuf).

Off, the hot path costs a check of one module global: the SDK is not even imported.
"""

from __future__ import annotations

import contextvars
import logging
import os
import re
import time
from collections.abc import Mapping
from datetime import datetime
from typing import TYPE_CHECKING, Any

from starlette.types import ASGIApp, Receive, Scope, Send

from flowsync.errors import ConfigurationError

if TYPE_CHECKING:
    from opentelemetry.context import Context
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.trace import Span, Tracer

    from flowsync.worker.queue import ClaimedJob

__all__ = [
    "TraceparentMiddleware",
    "configured",
    "enabled",
    "exporter_names",
    "install",
    "parse_traceparent",
    "shutdown",
    "start",
    "trace_id_of",
]

log = logging.getLogger("flowsync.tracing")

# The tracer while tracing is on, else None: the one thing the hot path looks at.
_tracer: Tracer | None = None
_provider: TracerProvider | None = None

# A valid `traceparent` a request carried, for the starts it makes (see the middleware).
_INCOMING: contextvars.ContextVar[str | None] = contextvars.ContextVar(
    "flowsync_incoming_traceparent", default=None
)

# version-traceid-spanid-flags, lower-case hex (W3C Trace Context, level 1). A version
# other than 00 may carry more fields after the flags.
_TRACEPARENT = re.compile(r"([0-9a-f]{2})-([0-9a-f]{32})-([0-9a-f]{16})-([0-9a-f]{2})(-.*)?")
_EXPORTERS = frozenset({"otlp", "console"})


def exporter_names(environ: Mapping[str, str]) -> list[str]:
    """The exporters the environment asks for: `OTEL_TRACES_EXPORTER` (comma-separated;
    `none` alone: none), else `otlp` when an OTLP endpoint is set, else none.
    `OTEL_SDK_DISABLED=true`: none. An unknown name is a ConfigurationError naming it."""
    if environ.get("OTEL_SDK_DISABLED", "").strip().lower() == "true":
        return []
    given = environ.get("OTEL_TRACES_EXPORTER", "").strip().lower()
    if given:
        names = [n.strip() for n in given.split(",") if n.strip()]
        if names == ["none"]:
            return []
        unknown = [n for n in names if n not in _EXPORTERS]
        if unknown:
            raise ConfigurationError(
                f"OTEL_TRACES_EXPORTER names {', '.join(unknown)}; FlowSync exports traces "
                "with otlp (OTLP/HTTP) or console, or none"
            )
        return names
    endpoints = ("OTEL_EXPORTER_OTLP_ENDPOINT", "OTEL_EXPORTER_OTLP_TRACES_ENDPOINT")
    return ["otlp"] if any(environ.get(v, "").strip() for v in endpoints) else []


def configured(environ: Mapping[str, str]) -> bool:
    """Whether the environment turns tracing on (see the module's docstring)."""
    return bool(exporter_names(environ))


def enabled() -> bool:
    """Whether this process records spans."""
    return _tracer is not None


def parse_traceparent(value: str | None) -> tuple[str, str, int] | None:
    """(trace id, span id, flags) of a valid W3C `traceparent`, else None (absent,
    malformed, version ff, or an all-zero id): a caller's bad header is ignored."""
    if not value or len(value) > 512:
        return None
    found = _TRACEPARENT.fullmatch(value.strip())
    if found is None:
        return None
    version, trace_id, span_id, flags, rest = found.groups()
    if version == "ff" or (version == "00" and rest):
        return None
    if trace_id == "0" * 32 or span_id == "0" * 16:
        return None
    return trace_id, span_id, int(flags, 16)


def trace_id_of(traceparent: str | None) -> str | None:
    """The trace id (32 hex) of a stored trace context, or None."""
    if traceparent is None:
        return None
    parsed = parse_traceparent(traceparent)
    return parsed[0] if parsed is not None else None


def start(environ: Mapping[str, str] | None = None) -> bool:
    """Turn tracing on in this process when the environment asks for it (at most once;
    `shutdown` flushes and turns it off). Returns whether it is on."""
    environ = os.environ if environ is None else environ
    if _tracer is not None:
        return True
    names = exporter_names(environ)
    if not names:
        return False
    from opentelemetry.sdk.resources import Resource
    from opentelemetry.sdk.trace import TracerProvider
    from opentelemetry.sdk.trace.export import (
        BatchSpanProcessor,
        ConsoleSpanExporter,
        SpanExporter,
    )

    # Resource.create reads OTEL_SERVICE_NAME and OTEL_RESOURCE_ATTRIBUTES; the provider
    # reads OTEL_TRACES_SAMPLER; the exporter its endpoint, headers and timeout.
    resource = Resource.create({"service.name": environ.get("OTEL_SERVICE_NAME", "flowsync")})
    provider = TracerProvider(resource=resource)
    for name in names:
        exporter: SpanExporter
        if name == "otlp":
            from opentelemetry.exporter.otlp.proto.http.trace_exporter import OTLPSpanExporter

            exporter = OTLPSpanExporter()
        else:
            exporter = ConsoleSpanExporter()
        provider.add_span_processor(BatchSpanProcessor(exporter))
    install(provider)
    log.info("traces on: exporting with %s", ", ".join(names))
    return True


def install(provider: TracerProvider) -> None:
    """Record spans with `provider` from now on (tests give one with an in-memory
    exporter). The provider is FlowSync's own, not OpenTelemetry's global one."""
    global _tracer, _provider
    _provider = provider
    _tracer = provider.get_tracer("flowsync")


def shutdown() -> None:
    """Flush the spans still buffered and turn tracing off."""
    global _tracer, _provider
    provider, _provider, _tracer = _provider, None, None
    if provider is not None:
        provider.shutdown()


def _context_of(traceparent: str | None) -> Context | None:
    """The context whose span is the one `traceparent` names (remote), or None."""
    parsed = parse_traceparent(traceparent)
    if parsed is None:
        return None
    from opentelemetry import trace
    from opentelemetry.trace import NonRecordingSpan, SpanContext, TraceFlags

    trace_id, span_id, flags = parsed
    parent = SpanContext(
        int(trace_id, 16), int(span_id, 16), is_remote=True, trace_flags=TraceFlags(flags & 1)
    )
    return trace.set_span_in_context(NonRecordingSpan(parent))


def _traceparent(span: Span) -> str:
    ctx = span.get_span_context()
    return f"00-{ctx.trace_id:032x}-{ctx.span_id:016x}-{int(ctx.trace_flags):02x}"


class TraceparentMiddleware:
    """ASGI middleware: while tracing is on, a request's valid `traceparent` header is
    kept for the executions it starts (their traces continue the caller's); a
    malformed one is ignored. Off, it passes requests through untouched."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if _tracer is None or scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope.get("headers", ()) if k == b"traceparent"), None)
        text = given.decode("latin-1") if given is not None else None
        if parse_traceparent(text) is None:
            await self.app(scope, receive, send)
            return
        token = _INCOMING.set(text)
        try:
            await self.app(scope, receive, send)
        finally:
            _INCOMING.reset(token)


def start_time() -> int | None:
    """Now in ns when tracing is on (the start of an execution's span), else None."""
    return time.time_ns() if _tracer is not None else None


def execution_started(
    started_ns: int | None,
    workflow_name: str,
    execution_id: object,
    workflow_id: object,
    trigger_type: str,
    parent: str | None = None,
    retry_of: str | None = None,
) -> str | None:
    """Record the span of a run's start (from `started_ns` to now), under `parent` (a
    traceparent: a child workflow's parent run's), else under the caller's if the
    request carried one; returns its context as a traceparent to store on the
    execution, or None when tracing is off. `retry_of`: the trace context of the run
    this one retries, linked from the new span."""
    tracer = _tracer
    if tracer is None or started_ns is None:
        return None
    from opentelemetry import trace
    from opentelemetry.trace import Link, SpanKind

    links = []
    origin = _context_of(retry_of)
    if origin is not None:
        links.append(Link(trace.get_current_span(origin).get_span_context()))

    span = tracer.start_span(
        f"execution {workflow_name}",
        context=_context_of(parent or _INCOMING.get()),
        kind=SpanKind.SERVER,
        start_time=started_ns,
        links=links,
        attributes={
            "flowsync.execution_id": str(execution_id),
            "flowsync.workflow_id": str(workflow_id),
            "flowsync.workflow": workflow_name,
            "flowsync.trigger": trigger_type,
        },
    )
    span.end()
    return _traceparent(span)


def _ns(at: datetime) -> int:
    return int(at.timestamp() * 1_000_000) * 1000


class StepSpan:
    """A step's run span while its handler runs; `attach` makes it the parent of what
    the handler does (its HTTP call), in tasks created meanwhile."""

    __slots__ = ("_token", "span")

    def __init__(self, span: Span) -> None:
        self.span = span
        self._token: object = None

    def attach(self) -> None:
        from opentelemetry import context, trace

        self._token = context.attach(trace.set_span_in_context(self.span))

    def detach(self) -> None:
        from opentelemetry import context

        if self._token is not None:
            context.detach(self._token)  # type: ignore[arg-type]
            self._token = None

    def end(self, error: str | None) -> None:
        """End the run span; `error`: the step failed (or was stopped) with it."""
        if error is not None:
            from opentelemetry.trace import Status, StatusCode

            self.span.set_status(Status(StatusCode.ERROR, error))
        self.span.end()


def step_started(job: ClaimedJob) -> StepSpan | None:
    """Record the queue wait of a claimed step of a traced run (from when its job was
    due to its claim, both by the database's clock; a step handed over by the worker
    that finished the previous one waited for nothing) and begin its run span. None
    when tracing is off or the run has no trace."""
    tracer = _tracer
    if tracer is None:
        return None
    parent = _context_of(job.trace_context)
    if parent is None:
        return None
    attributes: dict[str, Any] = {
        "flowsync.execution_id": str(job.execution_id),
        "flowsync.step_id": str(job.step_id),
        "flowsync.node_id": job.node_id,
        "flowsync.node_type": job.node_type,
        "flowsync.attempt": job.attempts,
    }
    now = time.time_ns()
    if job.claimed_at is not None and job.available_at is not None:
        waited_from, claimed = _ns(job.available_at), _ns(job.claimed_at)
        handed_over = False
    else:
        waited_from = claimed = now
        handed_over = True
    wait = tracer.start_span(
        f"queue wait {job.node_id}",
        context=parent,
        start_time=min(waited_from, claimed),
        attributes={**attributes, "flowsync.handed_over": handed_over},
    )
    wait.end(end_time=claimed)
    run = tracer.start_span(f"step {job.node_id}", context=parent, attributes=attributes)
    return StepSpan(run)


class ClientSpan:
    """An HTTP action's call: a client span under the step's run span."""

    __slots__ = ("span",)

    def __init__(self, span: Span) -> None:
        self.span = span

    def traceparent(self) -> str:
        return _traceparent(self.span)

    def end(self, status: int | None, error: str | None) -> None:
        if status is not None:
            self.span.set_attribute("http.response.status_code", status)
        if error is not None or (status is not None and status >= 500):
            from opentelemetry.trace import Status, StatusCode

            from flowsync.worker.redaction import LIVE

            message = LIVE.redactor().text(error) if error else f"HTTP {status}"
            self.span.set_status(Status(StatusCode.ERROR, message))
        self.span.end()


def http_call(method: str, url: str) -> ClientSpan | None:
    """Begin the client span of an HTTP call made while a step's run span is current;
    None when tracing is off or no step is traced here."""
    tracer = _tracer
    if tracer is None:
        return None
    from opentelemetry import trace
    from opentelemetry.trace import SpanKind

    if not trace.get_current_span().get_span_context().is_valid:
        return None
    # The url as sent may hold a secret's value ({{ secrets.NAME }}): spans get it marked.
    from flowsync.worker.redaction import LIVE

    span = tracer.start_span(
        f"HTTP {method}",
        kind=SpanKind.CLIENT,
        attributes={"http.request.method": method, "url.full": LIVE.redactor().text(url)},
    )
    return ClientSpan(span)
