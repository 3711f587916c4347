"""schemathesis in its GraphQL mode (hypothesis-graphql builds the documents) against a
real server on a free port, with an API key and the rate limits raised: every query and
mutation field is sent many generated documents, each with generated arguments. No reply
may be a 5xx, no error may be "Unexpected error." (the server logs each of those at
ERROR level, and no ERROR line may be logged), and every reply must conform to the
schema (no null where the schema promises a value).

As for REST, `positive_data_acceptance` is left out: a document that fits the schema can
be refused by design (a definition that is not a valid graph, an unknown id). The CLI
runs in a subprocess, as the server runs on this test's event loop."""

from __future__ import annotations

import asyncio
import logging
import os
import re
import sys
from pathlib import Path

import pytest

from tests.graphql.conftest import op, serve
from tests.support.graphs import chain

ROOT = Path(__file__).resolve().parents[2]
HOOKS = "tests.graphql.schemathesis_hooks"
# FlowSync's own (a masked error logs one) and uvicorn's (an exception out of the app).
LOGGERS = ("flowsync", "uvicorn.error")


class Errors(logging.Handler):
    """Records the server's ERROR log lines (an unexpected exception logs one)."""

    def __init__(self) -> None:
        super().__init__(logging.ERROR)
        self.lines: list[str] = []

    def emit(self, record: logging.LogRecord) -> None:
        self.lines.append(self.format(record))


CREATE = """mutation($input: CreateWorkflowInput!) {
  createWorkflow(input: $input) { ... on WorkflowPayload { workflow { id } } }
}"""


@pytest.mark.slow
async def test_schemathesis_graphql_finds_no_failure(db_url: str, tmp_path: Path) -> None:
    errors = Errors()
    for name in LOGGERS:
        logging.getLogger(name).addHandler(errors)
    try:
        async with serve(db_url) as api:
            me = await api.owner()
            async with api.http(me.key) as session:
                await session.execute(op(CREATE, input={"name": "st", "definition": chain(1)}))
            command = [
                sys.executable, "-m", "schemathesis.cli", "run", api.http_url,
                "--header", f"Authorization: Bearer {me.key}",
                "--checks", "all",
                "--exclude-checks", "positive_data_acceptance,not_a_server_error",
                "--max-examples", "60",
                "--seed", "20240501",
                "--workers", "1",
                "--request-timeout", "10",
                "--suppress-health-check", "all",
            ]  # fmt: skip
            process = await asyncio.create_subprocess_exec(
                *command,
                cwd=tmp_path,
                env=os.environ | {"SCHEMATHESIS_HOOKS": HOOKS, "PYTHONPATH": str(ROOT)},
                stdout=asyncio.subprocess.PIPE,
                stderr=asyncio.subprocess.STDOUT,
            )
            output, _ = await asyncio.wait_for(process.communicate(), 280)
    finally:
        for name in LOGGERS:
            logging.getLogger(name).removeHandler(errors)
    report = output.decode(errors="replace")
    assert process.returncode == 0, report
    assert "Unexpected error" not in report, report
    selected = re.search(r"Selected: (\d+)/(\d+)", report)
    tested = re.search(r"Tested: (\d+)", report)
    generated = re.search(r"(\d+) generated", report)
    assert selected is not None and tested is not None and generated is not None, report
    # Every query and mutation field was sent documents, well over a thousand in all.
    assert int(tested[1]) == int(selected[1]) == int(selected[2]), report
    assert int(generated[1]) >= 1000, report
    assert errors.lines == [], errors.lines
