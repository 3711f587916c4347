"""Log lines as text or as JSON, with the request, execution and step in context.

The worker binds the job it runs (`bind_step`) in the asyncio task that runs it; every
record logged from that task (and from tasks it starts) then carries `executionId`,
`stepId` and `nodeId`. `RequestIdMiddleware` does the same for each HTTP request and
websocket (`requestId`, also echoed as the reply's `X-Request-Id`).
`configure_logging(settings)` sends every logger's records (uvicorn's too: servers are
built with `log_config=None`) through one handler in the format `FLOWSYNC_LOG_FORMAT`
asks for (`text` by default, `json` for one object per line).

Progress lines (`progress(...)`) are the few lines a person starting FlowSync reads; with
`console="progress"` the terminal shows only them and warnings, and everything else goes
to a log file.
"""

from __future__ import annotations

import contextvars
import logging
import logging.handlers
import re
import sys
import uuid
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

import orjson
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowsync.config import Settings
from flowsync.worker.redaction import SecretLogFilter

__all__ = [
    "JsonFormatter",
    "RequestIdMiddleware",
    "TextFormatter",
    "announce",
    "bind_request",
    "bind_step",
    "configure_logging",
    "log_context",
    "progress",
]

_CONTEXT: contextvars.ContextVar[dict[str, str] | None] = contextvars.ContextVar(
    "flowsync_log_context", default=None
)

# Attributes every LogRecord has; anything else was passed with `extra=` and is logged.
_STANDARD = frozenset(
    logging.LogRecord("", 0, "", 0, "", None, None).__dict__.keys()
    | {"message", "asctime", "taskName", "color_message"}  # uvicorn's message with ANSI colours
)
# Libraries whose INFO records are detail (pgserver's initdb and pg_ctl output, alembic's
# plugin and migration-context lines): the terminal shows them only when verbose.
CHATTY = ("pgserver", "alembic")
# A client's X-Request-Id is kept when it is a short token; anything else is replaced.
_GIVEN_ID = re.compile(r"[A-Za-z0-9._:-]{1,128}")
_progress_log = logging.getLogger("flowsync")


def bind_step(
    execution_id: uuid.UUID, step_id: uuid.UUID, node_id: str, trace_id: str | None = None
) -> None:
    """Put the step being run into the log context of the current task (and of tasks it
    starts from now on), with its run's `traceId` when the run is traced. Each step runs
    in a task of its own, so nothing leaks."""
    bound = {"executionId": str(execution_id), "stepId": str(step_id), "nodeId": node_id}
    if trace_id is not None:
        bound["traceId"] = trace_id
    _CONTEXT.set(bound)


def bind_request(request_id: str) -> contextvars.Token[dict[str, str] | None]:
    """Add `requestId` to the log context of the current task; reset with the token."""
    return _CONTEXT.set({**log_context(), "requestId": request_id})


def log_context() -> dict[str, str]:
    """The context fields bound in the current task (empty when none)."""
    return dict(_CONTEXT.get() or {})


class RequestIdMiddleware:
    """ASGI middleware: each HTTP request and websocket gets a request id, the client's
    `X-Request-Id` when it is a short token (letters, digits, `._:-`, at most 128), else a
    new one. It is bound to every log line of the request (uvicorn's access line too) and
    sent back as `X-Request-Id`."""

    def __init__(self, app: ASGIApp) -> None:
        self.app = app

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] not in ("http", "websocket"):
            await self.app(scope, receive, send)
            return
        given = next((v for k, v in scope.get("headers", ()) if k == b"x-request-id"), b"")
        text = given.decode("latin-1")
        request_id = text if _GIVEN_ID.fullmatch(text) else uuid.uuid4().hex
        header = (b"x-request-id", request_id.encode())

        async def send_with_id(message: Message) -> None:
            if message["type"] in ("http.response.start", "websocket.accept"):
                message = {**message, "headers": [*message.get("headers", ()), header]}
            await send(message)

        token = bind_request(request_id)
        try:
            await self.app(scope, receive, send_with_id)
        finally:
            _CONTEXT.reset(token)


def _access_fields(record: logging.LogRecord) -> dict[str, Any]:
    """uvicorn's access line as fields: its args are (client, method, path, version,
    status)."""
    args = record.args
    if record.name != "uvicorn.access" or not isinstance(args, tuple) or len(args) != 5:
        return {}
    client, method, path, version, status = args
    return {"client": client, "method": method, "path": path, "httpVersion": version,
            "status": status}  # fmt: skip


class JsonFormatter(logging.Formatter):
    """One JSON object per line: time (UTC, ISO-8601), level, logger, message, the bound
    context (requestId, executionId, stepId, nodeId, traceId), fields passed with `extra=`
    (uvicorn's access lines: client, method, path, httpVersion, status), and the
    traceback as `exception` when there is one."""

    def format(self, record: logging.LogRecord) -> str:
        line: dict[str, Any] = {
            "time": datetime.fromtimestamp(record.created, UTC).isoformat(timespec="milliseconds"),
            "level": record.levelname.lower(),
            "logger": record.name,
            "message": record.getMessage(),
        }
        line.update(log_context())
        line.update(_access_fields(record))
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


class _ProgressText(TextFormatter):
    """The terminal of a quiet process: a progress line is its message alone."""

    def format(self, record: logging.LogRecord) -> str:
        if getattr(record, "progress", False):
            return record.getMessage()
        return super().format(record)


class _Console(logging.Filter):
    """What the terminal shows: with `only_progress`, progress lines and warnings; else
    everything but the chatty libraries' detail (unless `verbose`)."""

    def __init__(self, only_progress: bool, verbose: bool) -> None:
        super().__init__()
        self.only_progress, self.verbose = only_progress, verbose

    def filter(self, record: logging.LogRecord) -> bool:
        if record.levelno >= logging.WARNING or getattr(record, "progress", False):
            return True
        if self.only_progress:
            return False
        return self.verbose or not record.name.startswith(CHATTY)


def progress(message: str, *args: object) -> None:
    """Log one progress line (INFO, logger `flowsync`): what a person starting FlowSync
    sees even when the terminal is quiet."""
    _progress_log.info(message, *args, extra={"progress": True})


def announce(settings: Settings, text: str, summary: str, **fields: object) -> None:
    """Print `text` on stdout; under the JSON format, one JSON object instead whose
    message is `summary`, with `fields`. It goes to no log file: a banner may hold a
    secret, such as the dev API key."""
    if settings.log_format == "json":
        record = logging.LogRecord("flowsync", logging.INFO, __file__, 0, summary, None, None)
        record.__dict__.update(fields)
        print(JsonFormatter().format(record), flush=True)
    else:
        print(text, flush=True)


def configure_logging(
    settings: Settings,
    *,
    console: Literal["all", "progress"] = "all",
    verbose: bool = False,
    log_file: Path | None = None,
) -> None:
    """Send every logger's records (FlowSync's, uvicorn's, every library's, and Python
    warnings) to stderr in the configured format, at the configured level; replaces the
    root logger's handlers. `console="progress"`: stderr shows only progress lines and
    warnings unless `verbose`. `log_file`: every record is also appended there (rotated
    at 10 MB)."""
    json_format = settings.log_format == "json"
    only_progress = console == "progress" and not verbose
    handler = logging.StreamHandler(sys.stderr)
    if json_format:
        handler.setFormatter(JsonFormatter())
    else:
        handler.setFormatter(_ProgressText() if only_progress else TextFormatter())
    handler.addFilter(_Console(only_progress, verbose))
    handler.addFilter(SecretLogFilter())
    handlers: list[logging.Handler] = [handler]
    unwritable: OSError | None = None
    if log_file is not None:
        try:
            log_file.parent.mkdir(parents=True, exist_ok=True)
            to_file = logging.handlers.RotatingFileHandler(
                log_file, maxBytes=10 * 1024 * 1024, backupCount=3, encoding="utf-8"
            )
        except OSError as exc:
            unwritable = exc
        else:
            to_file.setFormatter(JsonFormatter() if json_format else TextFormatter())
            to_file.addFilter(SecretLogFilter())
            handlers.append(to_file)
    root = logging.getLogger()
    for old in root.handlers:
        if isinstance(old, logging.FileHandler):
            old.close()
    root.handlers[:] = handlers
    root.setLevel(settings.log_level.upper())
    # uvicorn's loggers send their records to the root's handlers, like every other, at
    # the root's level (a uvicorn.Config made earlier in the process may have set theirs).
    for name in ("uvicorn", "uvicorn.error", "uvicorn.access", "uvicorn.asgi"):
        logger = logging.getLogger(name)
        logger.handlers[:] = []
        logger.propagate = True
        logger.setLevel(logging.NOTSET)
        logger.disabled = False
    logging.captureWarnings(True)
    if unwritable is not None:
        _progress_log.warning("cannot write the log file %s: %s", log_file, unwritable)
