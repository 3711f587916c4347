"""Log lines as text or as JSON, with the execution and step being worked on in context.

The worker binds the job it runs (`bind_step`) in the asyncio task that runs it; every
record logged from that task (and from tasks it starts) then carries `executionId`,
`stepId` and `nodeId`. `configure_logging(settings)` installs the formatter that
`FLOWSYNC_LOG_FORMAT` asks for (`text` by default, `json` for one object per line).
"""

from __future__ import annotations

import contextvars
import logging
import sys
import uuid
from datetime import UTC, datetime
from typing import Any

import orjson

from flowsync.config import Settings

__all__ = ["JsonFormatter", "TextFormatter", "bind_step", "configure_logging", "log_context"]

_CONTEXT: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "flowsync_log_context", default=None
)

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName"}
)


def bind_step(execution_id: uuid.UUID, step_id: uuid.UUID, node_id: str) -> None:
    """Put the step being run into the log context of the current task (and of tasks it
    starts from now on). Each step runs in a task of its own, so nothing leaks."""
    _CONTEXT.set({"executionId": str(execution_id), "stepId": str(step_id), "nodeId": node_id})


def log_context() -> dict[str, str]:
    """The context fields bound in the current task (empty when none)."""
    return dict(_CONTEXT.get() or {})


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO-8601), level, logger, message, the bound
    context (executionId, stepId, nodeId), fields passed with `extra=`, and the traceback
    as `exception` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(log_context())
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                line.setdefault(key, value)
        if record.exc_info:
            line["exception"] = self.formatException(record.exc_info)
        elif record.exc_text:
            line["exception"] = record.exc_text
        return orjson.dumps(line, default=str).decode()


class TextFormatter(logging.Formatter):
    """The classic line, with the bound context appended as key=value pairs."""

    def __init__(self) -> None:
        super().__init__("%(asctime)s %(levelname)s %(name)s %(message)s")

    def format(self, record: logging.LogRecord) -> str:
        text = super().format(record)
        context = log_context()
        if not context:
            return text
        head, sep, tail = text.partition("\n")
        pairs = " ".join(f"{k}={v}" for k, v in context.items())
        return f"{head} [{pairs}]{sep}{tail}"


def configure_logging(settings: Settings) -> None:
    """Send FlowSync's (and every library's) records to stderr in the configured format,
    at the configured level. Replaces the root logger's handlers."""
    handler = logging.StreamHandler(sys.stderr)
    handler.setFormatter(JsonFormatter() if settings.log_format == "json" else TextFormatter())
    root = logging.getLogger()
    root.handlers[:] = [handler]
    root.setLevel(settings.log_level.upper())
