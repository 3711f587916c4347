"""Log lines: the request id of each HTTP request and websocket, uvicorn's access line
as JSON fields, and what a quiet terminal shows."""

from __future__ import annotations

import io
import json
import logging
from pathlib import Path

import httpx
import pytest
from starlette.types import Receive, Scope, Send

from flowsync.config import Settings
from flowsync.logs import (
    JsonFormatter,
    RequestIdMiddleware,
    configure_logging,
    log_context,
    progress,
)


async def _echo_context(scope: Scope, receive: Receive, send: Send) -> None:
    """An ASGI app answering with the log context it sees."""
    body = json.dumps(log_context()).encode()
    await send({"type": "http.response.start", "status": 200, "headers": []})
    await send({"type": "http.response.body", "body": body})


async def _get(headers: dict[str, str]) -> httpx.Response:
    transport = httpx.ASGITransport(app=RequestIdMiddleware(_echo_context))
    async with httpx.AsyncClient(transport=transport, base_url="http://test") as client:
        return await client.get("/", headers=headers)


async def test_a_request_gets_an_id_bound_to_its_log_lines_and_echoed() -> None:
    reply = await _get({})
    request_id = reply.headers["x-request-id"]
    assert len(request_id) == 32 and reply.json() == {"requestId": request_id}
    again = await _get({})
    assert again.headers["x-request-id"] != request_id
    assert log_context() == {}  # nothing leaks out of the request


@pytest.mark.parametrize(
    ("given", "kept"),
    [("abc-123", True), ("trace:01.x_y", True), ("a" * 128, True), ("a" * 129, False),
     ("two words", False), ("", False), ("é", False), ("a\"b", False)],
)  # fmt: skip
async def test_a_clients_request_id_is_kept_when_it_is_a_short_token(
    given: str, kept: bool
) -> None:
    reply = await _get({"X-Request-Id": given} if given.isascii() else {})
    assert (reply.headers["x-request-id"] == given) is kept
    assert reply.json()["requestId"] == reply.headers["x-request-id"]


def test_uvicorns_access_line_is_json_with_its_fields() -> None:
    record = logging.LogRecord(
        "uvicorn.access", logging.INFO, __file__, 1, '%s - "%s %s HTTP/%s" %d',
        ("127.0.0.1:5000", "GET", "/api/health?x=1", "1.1", 200), None,
    )  # fmt: skip
    record.__dict__["color_message"] = "\x1b[1m%s\x1b[0m"
    line = json.loads(JsonFormatter().format(record))
    assert line["message"] == '127.0.0.1:5000 - "GET /api/health?x=1 HTTP/1.1" 200'
    assert (line["method"], line["path"], line["status"]) == ("GET", "/api/health?x=1", 200)
    assert "color_message" not in line


def _quiet_run(tmp_path: Path, log_format: str, verbose: bool) -> tuple[str, str]:
    """What a `dev`-like process shows on its terminal, and what its log file gets."""
    root = logging.getLogger()
    saved = (root.handlers[:], root.level)
    stderr = io.StringIO()
    settings = Settings(_env_file=None, log_format=log_format)  # type: ignore[call-arg]
    try:
        with pytest.MonkeyPatch.context() as patch:
            patch.setattr("sys.stderr", stderr)
            configure_logging(
                settings, console="progress", verbose=verbose, log_file=tmp_path / "x.log"
            )
        progress("Starting the thing in %s", "/data")
        logging.getLogger("pgserver").info("initdb said a lot")
        logging.getLogger("alembic.runtime.plugins").info("setup plugin")
        logging.getLogger("uvicorn.error").info("Uvicorn running")
        logging.getLogger("flowsync.db").warning("something to see")
    finally:
        for handler in root.handlers:
            handler.close()
        root.handlers[:], _ = saved
        root.setLevel(saved[1])
    return stderr.getvalue(), (tmp_path / "x.log").read_text()


def test_a_quiet_terminal_shows_progress_and_warnings_the_file_everything(
    tmp_path: Path,
) -> None:
    shown, kept = _quiet_run(tmp_path, "text", verbose=False)
    lines = shown.splitlines()
    assert lines[0] == "Starting the thing in /data"
    assert len(lines) == 2 and "WARNING flowsync.db something to see" in lines[1]
    for text in ("Starting the thing", "initdb said a lot", "setup plugin", "Uvicorn running",
                 "something to see"):  # fmt: skip
        assert text in kept


def test_verbose_shows_everything_and_json_is_json_everywhere(tmp_path: Path) -> None:
    shown, kept = _quiet_run(tmp_path, "json", verbose=True)
    on_terminal = [json.loads(line) for line in shown.splitlines()]
    assert [line["logger"] for line in on_terminal] == [
        "flowsync", "pgserver", "alembic.runtime.plugins", "uvicorn.error", "flowsync.db",
    ]  # fmt: skip
    assert on_terminal[0]["progress"] is True
    assert len([json.loads(line) for line in kept.splitlines()]) == 5
