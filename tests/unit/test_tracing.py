"""Traces' pure parts: which OTEL_* settings turn tracing on, W3C traceparent parsing
(a malformed one is ignored, never an error), and the trace id in a step's log lines."""

from __future__ import annotations

import asyncio
import json
import logging
import uuid

import pytest

from flowsync import tracing
from flowsync.errors import ConfigurationError
from flowsync.logs import JsonFormatter, TextFormatter, bind_step, log_context

TRACE = "4bf92f3577b34da6a3ce929d0e0e4736"
SPAN = "00f067aa0ba902b7"


@pytest.mark.parametrize(
    ("environ", "names"),
    [
        ({}, []),
        ({"OTEL_SERVICE_NAME": "x"}, []),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "http://collector:4318"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_TRACES_ENDPOINT": "http://c:4318/v1/traces"}, ["otlp"]),
        ({"OTEL_EXPORTER_OTLP_ENDPOINT": "  "}, []),
        ({"OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"]),
        ({"OTEL_TRACES_EXPORTER": "console"}, ["console"]),
        ({"OTEL_TRACES_EXPORTER": "OTLP, console"}, ["otlp", "console"]),
        ({"OTEL_TRACES_EXPORTER": "none", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, []),
        ({"OTEL_SDK_DISABLED": "true", "OTEL_EXPORTER_OTLP_ENDPOINT": "http://c"}, []),
        ({"OTEL_SDK_DISABLED": "TRUE", "OTEL_TRACES_EXPORTER": "otlp"}, []),
        ({"OTEL_SDK_DISABLED": "false", "OTEL_TRACES_EXPORTER": "otlp"}, ["otlp"]),
    ],
)
def test_tracing_is_on_only_when_the_environment_configures_it(
    environ: dict[str, str], names: list[str]
) -> None:
    assert tracing.exporter_names(environ) == names
    assert tracing.configured(environ) is bool(names)


def test_an_unknown_exporter_is_refused_by_name() -> None:
    with pytest.raises(ConfigurationError, match="OTEL_TRACES_EXPORTER names jaeger"):
        tracing.exporter_names({"OTEL_TRACES_EXPORTER": "otlp,jaeger"})


def test_off_by_default_start_does_nothing() -> None:
    assert tracing.start({}) is False
    assert not tracing.enabled()
    assert tracing.start_time() is None
    assert tracing.execution_started(None, "wf", uuid.uuid4(), uuid.uuid4(), "MANUAL") is None


@pytest.mark.parametrize(
    ("given", "parsed"),
    [
        (f"00-{TRACE}-{SPAN}-01", (TRACE, SPAN, 1)),
        (f"00-{TRACE}-{SPAN}-00", (TRACE, SPAN, 0)),
        (f"00-{TRACE}-{SPAN}-03", (TRACE, SPAN, 3)),
        (f" 00-{TRACE}-{SPAN}-01 ", (TRACE, SPAN, 1)),
        # A later version may add fields; its first four are read.
        (f"01-{TRACE}-{SPAN}-01-extra", (TRACE, SPAN, 1)),
        (None, None),
        ("", None),
        ("garbage", None),
        (f"00-{TRACE}-{SPAN}", None),
        (f"00-{TRACE}-{SPAN}-01-extra", None),
        (f"ff-{TRACE}-{SPAN}-01", None),
        (f"00-{'0' * 32}-{SPAN}-01", None),
        (f"00-{TRACE}-{'0' * 16}-01", None),
        (f"00-{TRACE.upper()}-{SPAN}-01", None),
        (f"00-{TRACE[:-1]}-{SPAN}-01", None),
        (f"00-{TRACE}x-{SPAN}-01", None),
        (f"0-{TRACE}-{SPAN}-01", None),
        (f"00-{TRACE}-{SPAN}-1", None),
        (f"00_{TRACE}_{SPAN}_01", None),
        (f"00-{TRACE}-{SPAN}-01" + "-x" * 300, None),
    ],
)
def test_a_traceparent_is_parsed_or_ignored(
    given: str | None, parsed: tuple[str, str, int] | None
) -> None:
    assert tracing.parse_traceparent(given) == parsed
    assert tracing.trace_id_of(given) == (parsed[0] if parsed else None)


def _record() -> logging.LogRecord:
    return logging.LogRecord("flowsync.worker", logging.INFO, __file__, 0, "ran", None, None)


def test_a_traced_steps_log_lines_carry_its_trace_id() -> None:
    async def step(trace_id: str | None) -> tuple[dict[str, str], str, str]:
        bind_step(uuid.uuid4(), uuid.uuid4(), "call", trace_id)
        return log_context(), JsonFormatter().format(_record()), TextFormatter().format(_record())

    bound, as_json, as_text = asyncio.run(step(TRACE))
    assert bound["traceId"] == TRACE and json.loads(as_json)["traceId"] == TRACE
    assert f"traceId={TRACE}" in as_text
    bound, as_json, _ = asyncio.run(step(None))
    assert "traceId" not in bound and "traceId" not in json.loads(as_json)
