"""The command line given what a careless user gives it (found by QA): a database that is
not there, arguments that are not usable. Each command prints one clear `error:` line
naming what is wrong and exits non-zero, never a traceback, and changes nothing."""

from __future__ import annotations

import socket
import subprocess
import sys

import pytest

from tests.support.processes import ROOT, flowsync_env


def flowsync(*args: str, env: dict[str, str]) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowsync", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def _closed_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        port: int = sock.getsockname()[1]
    return port


def _errors(result: subprocess.CompletedProcess[str]) -> list[str]:
    return [line for line in result.stderr.splitlines() if line.startswith("error:")]


COMMANDS = [
    ["migrate"],
    ["api-keys", "list"],
    ["api-keys", "create"],
    ["members", "list", "--owner", "crew"],
    ["secrets", "list"],
]


@pytest.mark.parametrize("args", COMMANDS, ids=" ".join)
@pytest.mark.parametrize("url", ["closed port", "not a URL"])
def test_commands_name_a_database_they_cannot_reach(args: list[str], url: str) -> None:
    # These commands migrate first; the migration tool's traceback used to be all they said.
    given = (
        f"postgresql://postgres@127.0.0.1:{_closed_port()}/flowsync"
        if url == "closed port"
        else "notaurl"
    )
    result = flowsync(*args, env=flowsync_env(given))
    assert result.returncode == 1, result.stdout + result.stderr
    assert "Traceback" not in result.stderr
    [error] = _errors(result)
    assert "FLOWSYNC_DATABASE_URL" in error
    assert ("Connect call failed" in error) if url == "closed port" else ("DSN" in error)
