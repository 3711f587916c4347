"""The command line given what a careless user gives it (found by QA): a database that is
not there, arguments that are not usable. Each command prints one clear `error:` line
naming what is wrong and exits non-zero, never a traceback, and changes nothing."""

from __future__ import annotations

import asyncio
import resource
import socket
import subprocess
import sys
from pathlib import Path

import asyncpg
import pytest

from flowsync.config import to_asyncpg_dsn
from tests.support.processes import ROOT, flowsync_env


def flowsync(
    *args: str | bytes, env: dict[str, str], timeout: float = 120
) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowsync", *args],
        env=env,
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
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


USAGE = [
    # 0 silently meant the default (16); a negative number ran a worker that never ran a step.
    (["worker", "--concurrency", "0"], "--concurrency: '0' is not a number of steps"),
    (["worker", "--concurrency", "-5"], "--concurrency: '-5' is not a number of steps"),
    (["dev", "--port", "99999"], "--port: '99999' is not a port"),
    # An owner with no name was created (`local:`), and a key issued for it.
    (["api-keys", "create", "--owner", ""], "--owner: '' names no owner"),
    (["api-keys", "create", "--owner", "local:"], "--owner: 'local:' names no owner"),
    (["secrets", "list", "--owner", " "], "--owner: ' ' names no owner"),
    # An owner of any length, or with a line break or an escape sequence, was created.
    (["api-keys", "create", "--owner", "o" * 501], "is 501 characters; an owner is at most 500"),
    (["api-keys", "create", "--owner", "a\nb"], "--owner: 'a\\nb' holds a control character"),
    (["members", "list", "--owner", "a\x1b[2Jb"], "holds a control character"),
]


def owners_in(db_url: str) -> list[str]:
    """The owners the test's database holds (none is made by a refused command)."""

    async def read() -> list[str]:
        conn = await asyncpg.connect(to_asyncpg_dsn(db_url))
        try:
            return [r["subject"] for r in await conn.fetch("SELECT subject FROM owners")]
        finally:
            await conn.close()

    return asyncio.run(read())


@pytest.mark.parametrize(
    ("args", "expected"), USAGE, ids=[" ".join(args)[:50] for args, _ in USAGE]
)
def test_unusable_arguments_are_refused_before_anything_runs(
    db_url: str, args: list[str], expected: str
) -> None:
    env = flowsync_env(db_url)
    try:
        result = flowsync(*args, env=env, timeout=30)
    except subprocess.TimeoutExpired:
        pytest.fail(f"`flowsync {' '.join(args)}` ran instead of refusing its arguments")
    assert result.returncode == 2, result.stdout + result.stderr
    assert expected in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr and result.stdout == ""
    owners = owners_in(db_url)
    assert owners == [], owners


@pytest.mark.parametrize(
    "args",
    [
        ["api-keys", "create", "--owner", b"caf\xe9"],
        ["members", "add", "--owner", "crew", b"jwt:https://issuer.test/|\xff", "admin"],
        ["secrets", "set", b"token\xff"],
    ],
    ids=["owner", "member", "secret name"],
)
def test_arguments_that_are_not_utf8_are_named(db_url: str, args: list[str | bytes]) -> None:
    # A byte that is not UTF-8 reached the database driver, whose traceback was the answer.
    result = flowsync(*args, env=flowsync_env(db_url))
    assert result.returncode == 2, result.stdout + result.stderr
    assert "is not UTF-8 text" in result.stderr.splitlines()[-1]
    assert "\\x" in result.stderr.splitlines()[-1]
    assert "Traceback" not in result.stderr


def _capped(*args: str, stdin: int | None = None) -> subprocess.CompletedProcess[str]:
    """`flowsync` with 2 GB of address space (so that a command that reads without end
    fails here rather than take the machine's memory) and a minute."""

    def cap() -> None:
        resource.setrlimit(resource.RLIMIT_AS, (2 << 30, 2 << 30))

    return subprocess.run(
        [sys.executable, "-m", "flowsync", *args],
        env=flowsync_env("postgresql://unused/unused"),
        cwd=ROOT,
        stdin=stdin,
        capture_output=True,
        text=True,
        timeout=60,
        preexec_fn=cap,
    )


@pytest.mark.parametrize(
    ("args", "expected"),
    [
        (["validate", "/dev/zero"], "the file is over the limit of 1048576 bytes"),
        (["secrets", "set", "token", "--value-file", "/dev/zero"], "over the limit of 65,536"),
        (["graphql", "register", "/dev/zero", "--safelist", "-"], "over the limit of 2097152"),
    ],
    ids=["validate", "secrets set --value-file", "graphql register"],
)
def test_a_file_without_end_is_refused_at_the_limit(args: list[str], expected: str) -> None:
    # Found by QA: each read the whole file first (MemoryError's traceback, or the
    # machine's memory); a file is now read no further than its limit.
    result = _capped(*args)
    assert result.returncode == 1, result.stdout + result.stderr
    assert expected in result.stderr and "Traceback" not in result.stderr


def test_a_secret_from_standard_input_without_end_is_refused_at_the_limit() -> None:
    with open("/dev/zero", "rb") as zero:
        result = _capped("secrets", "set", "token", stdin=zero.fileno())
    assert result.returncode == 1, result.stdout + result.stderr
    assert "standard input: the value is over the limit of 65,536 bytes" in result.stderr
    assert "Traceback" not in result.stderr


def test_a_safelist_without_end_is_refused_at_the_limit(tmp_path: Path) -> None:
    # Found by QA: the manifest was read whole; `--safelist /dev/zero` grew until the
    # kernel's OOM killer ended it.
    document = tmp_path / "health.graphql"
    document.write_text("query Health { health { status } }\n")
    result = _capped("graphql", "register", str(document), "--safelist", "/dev/zero")
    assert result.returncode == 1, result.stdout + result.stderr
    assert "/dev/zero: the safelist is over the limit of 67108864 bytes" in result.stderr
    assert "Traceback" not in result.stderr
