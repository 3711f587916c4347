"""schemathesis over `/api/openapi.json`, against a real server on a free port: no 5xx,
no reply that breaks the document (status codes, content types, headers, bodies), bad
input refused, missing credentials refused, deleted objects gone.

The CLI runs in a subprocess (it is synchronous; the server runs on this test's event
loop). Every check runs except `positive_data_acceptance`: a request can fit the schema
and still be refused by design (a definition that is not a valid graph is 422, a cron
expression that does not parse is 422, an Idempotency-Key header that differs from the
body's key is 400), and a JSON Schema cannot say what a valid workflow graph is. Bounded:
a fixed seed, 20 examples per operation, one worker; about 30 s."""

from __future__ import annotations

import asyncio
import logging
import re
import sys
from pathlib import Path

import pytest

from rest_compat.openapi import document
from tests.rest.server import serve
from tests.support.graphs import chain


class Errors(logging.Handler):
    """Records the server's ERROR log lines (an unexpected exception logs one)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


@pytest.mark.slow
async def test_schemathesis_finds_no_failure(db_url: str, tmp_path: Path) -> None:
    errors = Errors()
    logging.getLogger("flowsync").addHandler(errors)
    try:
        async with serve(db_url) as server:
            me = await server.owner()
            wf = await me.http.post("/api/workflows", json={"name": "st", "definition": chain(1)})
            assert wf.status_code == 201
            command = [
                sys.executable, "-m", "schemathesis.cli", "run",
                f"{server.url}/api/openapi.json",
                "--header", f"Authorization: Bearer {me.key}",
                "--checks", "all",
                "--exclude-checks", "positive_data_acceptance",
                "--max-examples", "20",
                "--seed", "20240501",
                # One worker: with two threads, hypothesis's lambda descriptions call
                # ast.parse concurrently, and CPython 3.11 keeps the AST constructor's
                # recursion depth per interpreter: "SystemError: AST constructor
                # recursion depth mismatch" (cpython gh-106905) failed a CI run.
                "--workers", "1",
                "--request-timeout", "10",
                "--suppress-health-check", "all",
            ]  # fmt: skip
            process = await asyncio.create_subprocess_exec(
                *command,
                cwd=tmp_path,
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            output, _ = await asyncio.wait_for(process.communicate(), 240)
    finally:
        logging.getLogger("flowsync").removeHandler(errors)
    report = output.decode(errors="replace")
    assert process.returncode == 0, report
    operations = sum(
        1 for item in document()["paths"].values() for method in item if method != "parameters"
    )
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    assert selected is not None and tested is not None, report
    # Every operation ran but the document's own (schemathesis leaves its source out).
    assert int(tested[1]) == int(selected[1]) == int(selected[2]) == operations - 1, report
    assert errors.lines == [], errors.lines
