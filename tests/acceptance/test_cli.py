"""The `flowsync` command line, run as a user runs it: a real process."""

from __future__ import annotations

import copy
import json
import re
import shutil
import socket
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

import httpx
import pytest

from flowsync.errors import Unauthenticated
from flowsync.services.container import Services
from tests.support.processes import ROOT, Process, flowsync_env

EXAMPLE_FILE = ROOT / "tests" / "fixtures" / "order-sync.json"
EXAMPLE = json.loads(EXAMPLE_FILE.read_text())


def flowsync(*args: str, env: dict[str, str] | None = None) -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowsync", *args],
        env=env or flowsync_env("postgresql://unused/unused"),
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
    )


def test_validate_accepts_the_spec_example() -> None:
    result = flowsync("validate", str(EXAMPLE_FILE))
    assert result.returncode == 0, result.stderr
    assert "valid" in result.stdout


def _broken(change: Any) -> dict[str, Any]:
    doc = copy.deepcopy(EXAMPLE)
    change(doc["definition"])
    return doc


BROKEN = {
    "cycle": (
        lambda d: d["edges"].append({"source": "merge", "target": "split"}),
        "cycle",
    ),
    "bad expression": (
        lambda d: d["nodes"][2]["data"].update(expression="steps.fetch.output.status =="),
        "$.definition.nodes[2].data.expression",
    ),
    "unknown type": (
        lambda d: d["nodes"][4].update(type="teleport"),
        "$.definition.nodes[4].type",
    ),
    "bad handle": (
        lambda d: d["edges"][2].update(sourceHandle="maybe"),
        "$.definition.edges[2].sourceHandle",
    ),
}


@pytest.mark.parametrize("name", sorted(BROKEN))
def test_validate_rejects_broken_variants_with_their_path(tmp_path: Path, name: str) -> None:
    change, expected = BROKEN[name]
    path = tmp_path / "wf.json"
    path.write_text(json.dumps(_broken(change)))
    result = flowsync("validate", str(path))
    assert result.returncode == 1
    assert expected in result.stderr
    assert "Traceback" not in result.stderr


def test_validate_reports_every_problem_at_once(tmp_path: Path) -> None:
    def several(d: dict[str, Any]) -> None:
        d["nodes"][4]["type"] = "teleport"
        d["edges"][2]["sourceHandle"] = "maybe"

    path = tmp_path / "wf.json"
    path.write_text(json.dumps(_broken(several)))
    result = flowsync("validate", str(path))
    assert result.returncode == 1
    assert "$.definition.nodes[4].type" in result.stderr
    assert "$.definition.edges[2].sourceHandle" in result.stderr


def test_validate_names_the_node_or_edge_of_each_problem(tmp_path: Path) -> None:
    # The contract: every error names the node or edge, as the API's nodeId and edge do.
    def several(d: dict[str, Any]) -> None:
        d["nodes"][4]["type"] = "teleport"
        d["edges"][2]["sourceHandle"] = "maybe"
        d["edges"].append({"source": "merge", "target": "nowhere"})

    path = tmp_path / "wf.json"
    path.write_text(json.dumps(_broken(several)))
    result = flowsync("validate", str(path))
    assert result.returncode == 1
    lines = result.stderr.splitlines()
    assert any(line.startswith("  $.definition.nodes[4].type (node split): ") for line in lines)
    edge = "  $.definition.edges[2].sourceHandle (node paid, edge 2): "
    assert any(line.startswith(edge) for line in lines), result.stderr
    assert any(line.startswith("  $.definition.edges[12].target (edge 12): ") for line in lines)


def test_validate_not_json_and_missing_file(tmp_path: Path) -> None:
    path = tmp_path / "wf.json"
    path.write_text('{"name": "x", "definition": {')
    result = flowsync("validate", str(path))
    assert result.returncode == 1
    assert "JSON" in result.stderr and "Traceback" not in result.stderr
    missing = flowsync("validate", str(tmp_path / "nope.json"))
    assert missing.returncode == 2 and "cannot read" in missing.stderr


def test_migrate_then_api_keys_create_list_revoke(db_url: str) -> None:
    env = flowsync_env(db_url)
    assert flowsync("migrate", env=env).returncode == 0
    created = flowsync("api-keys", "create", "--owner", "alice", "--name", "ci", env=env)
    assert created.returncode == 0, created.stderr
    fields = dict(line.split(":", 1) for line in created.stdout.strip().splitlines())
    key_id, secret = fields["id"].strip(), fields["key"].strip()
    assert secret.startswith("fsk_")
    listed = flowsync("api-keys", "list", "--owner", "alice", env=env)
    assert key_id in listed.stdout and "active" in listed.stdout and secret not in listed.stdout
    assert flowsync("api-keys", "list", "--owner", "bob", env=env).stdout.strip() == ""
    # Bob cannot revoke Alice's key: it is not found for him.
    assert flowsync("api-keys", "revoke", "--owner", "bob", key_id, env=env).returncode == 1
    revoked = flowsync("api-keys", "revoke", "--owner", "alice", key_id, env=env)
    assert revoked.returncode == 0
    assert "revoked" in flowsync("api-keys", "list", "--owner", "alice", env=env).stdout


def test_members_and_key_roles_from_the_cli(db_url: str) -> None:
    env = flowsync_env(db_url)
    ann, ben = "jwt:https://issuer.test/|ann", "jwt:https://issuer.test/|ben"
    team = ("--owner", "crew")
    assert flowsync("members", "add", *team, ann, "admin", env=env).returncode == 0
    added = flowsync("members", "add", *team, ben, "viewer", env=env)
    assert added.returncode == 0 and f"{ben}: viewer" in added.stdout
    # Refusals say why, exit 1 and change nothing.
    unknown = flowsync("members", "set", *team, ben, "owner", env=env)
    assert unknown.returncode == 1 and "viewer, operator, editor, admin" in unknown.stderr
    last = flowsync("members", "remove", *team, ann, env=env)
    assert last.returncode == 1 and "last admin" in last.stderr
    listed = flowsync("members", "list", *team, env=env).stdout.splitlines()
    assert [line.split()[:2] for line in listed] == [["admin", ann], ["viewer", ben]]
    created = flowsync("api-keys", "create", *team, "--role", "operator", env=env)
    assert created.returncode == 0 and "role:   operator" in created.stdout
    assert "operator" in flowsync("api-keys", "list", *team, env=env).stdout


async def test_a_revoked_key_no_longer_authenticates(services: Services) -> None:
    from flowsync.services.principal import Principal

    owner = await services.api_keys.ensure_owner("local:carol")
    issued = await services.api_keys.create(Principal(owner, "cli"), "k")
    assert (await services.api_keys.authenticate(issued.secret)).owner_id == owner
    stored = await services.pool.fetchval("SELECT key_hash FROM api_keys")
    assert issued.secret not in stored
    await services.api_keys.revoke(Principal(owner, "cli"), issued.key.id)
    with pytest.raises(Unauthenticated):
        await services.api_keys.authenticate(issued.secret)


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def assert_dashboard_link(output: str, port: int) -> None:
    """dev prints a sign-in link with its key in the URL fragment (which a browser never
    sends), and the key appears in no line but the banner's own."""
    found = re.search(r"^API key \(owner local:dev\): (fsk_\S+)$", output, re.MULTILINE)
    assert found, output
    key = found.group(1)
    link = f"Dashboard: http://127.0.0.1:{port}/ui/#key={key}"
    assert link in output.splitlines(), output
    banner = {found.group(0), f'  header: {{"Authorization": "Bearer {key}"}}', link}
    assert [line for line in output.splitlines() if key in line and line not in banner] == []


def _serving(proc: Process, port: int) -> None:
    """Wait until dev answers its health check (60 s at most)."""
    deadline = time.monotonic() + 60
    while time.monotonic() < deadline:
        try:
            reply = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
        except httpx.TransportError:
            assert proc.proc.poll() is None, proc.output()
            time.sleep(0.2)
            continue
        assert reply.status_code == 200, reply.text
        assert reply.json()["checks"] == {"database": "ok", "migrations": "ok"}, reply.text
        return
    raise AssertionError(f"dev did not serve within 60 s:\n{proc.output()}")


def _data_dir() -> Path:
    # Under /tmp: the embedded server's socket lives in it, and sun_path is short.
    data = Path(tempfile.mkdtemp(prefix="flowsync-dev-", dir="/tmp"))
    data.chmod(0o755)
    return data


def _embedded_env(data: Path, **settings: object) -> dict[str, str]:
    env = flowsync_env("unused", data_dir=data, **settings)
    del env["FLOWSYNC_DATABASE_URL"]
    return env


def _before_banner(output: str) -> tuple[list[str], list[str]]:
    """The lines before dev's banner, and the banner's (up to the end of the output)."""
    lines = output.splitlines()
    start = lines.index("FlowSync is ready. Ctrl-C stops it.")
    before = lines[:start]
    while before and not before[-1].strip():
        before.pop()
    return before, lines[start:]


@pytest.mark.slow
def test_dev_starts_embedded_postgres_serves_health_and_stops_cleanly() -> None:
    # A fresh data folder, as a new user has: no FLOWSYNC_DATABASE_URL at all.
    data = _data_dir()
    port = _free_port()
    env = _embedded_env(data, port=port)
    try:
        for run in range(2):  # the second start finds the data left by the first
            proc = Process(["dev"], env, data / f"dev-{run}.out")
            try:
                _serving(proc, port)
                time.sleep(0.5)
                # A few progress lines, then the banner, last: the detail is in logs/dev.log.
                before, banner = _before_banner(proc.output())
                assert len(before) < 15, proc.output()
                assert banner[-2:] == [
                    f"Log: {data / 'logs' / 'dev.log'} (`flowsync dev --verbose` shows it here)",
                    "",
                ], proc.output()
                assert "pgserver" not in proc.output() and "alembic" not in proc.output()
                assert proc.terminate() == 0, proc.output()
                assert "stopped" in proc.output()
                assert_dashboard_link(proc.output(), port)
            finally:
                proc.close()
        log = (data / "logs" / "dev.log").read_text()
        assert "pgserver" in log and "alembic" in log and "Uvicorn running" in log
        assert "fsk_" not in log  # the banner's key goes to the terminal only
        assert (data / "postgres" / "pgdata" / "PG_VERSION").exists()
        assert not (data / "postgres" / "pgdata" / "postmaster.pid").exists()
    finally:
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.parametrize(
    "args", [["migrate"], ["api-keys", "create"], ["api-keys", "list"], ["worker"]]
)
def test_commands_other_than_dev_never_create_a_database(args: list[str]) -> None:
    # The data folder of no running `flowsync dev`: nothing is created there, and the
    # command says which database it would use and how to point it at the right one.
    data = _data_dir()
    try:
        result = flowsync(*args, env=_embedded_env(data))
        assert result.returncode == 1, result.stdout + result.stderr
        message = result.stderr
        assert str(data / "postgres") in message and "FLOWSYNC_DATABASE_URL" in message
        assert "FLOWSYNC_DATA_DIR" in message and "flowsync dev" in message
        assert "Traceback" not in message and result.stdout == ""
        assert list(data.iterdir()) == []
    finally:
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.slow
def test_commands_join_the_running_dev_and_its_owner_is_the_banners() -> None:
    data = _data_dir()
    port = _free_port()
    env = _embedded_env(data, port=port)
    try:
        proc = Process(["dev"], env, data / "dev.out")
        try:
            _serving(proc, port)
            banner_key = re.search(r"owner local:dev\): (fsk_\S+)", proc.output())
            assert banner_key, proc.output()
            # Either spelling of the owner names the banner's owner, local:dev.
            for owner in ("dev", "local:dev"):
                created = flowsync("api-keys", "create", "--owner", owner, env=env)
                assert created.returncode == 0, created.stderr
                assert "owner:  local:dev" in created.stdout.splitlines()
                assert f"embedded PostgreSQL of `flowsync dev` in {data / 'postgres'}" in (
                    created.stderr
                )
            listed = flowsync("api-keys", "list", env=env)  # the default owner: dev
            assert listed.returncode == 0, listed.stderr
            assert banner_key.group(1)[:10] in listed.stdout, listed.stdout
            assert len(listed.stdout.splitlines()) == 3  # dev's own key and the two above
            key = created.stdout.split("key:")[1].strip()
            reply = httpx.get(
                f"http://127.0.0.1:{port}/api/workflows",
                headers={"Authorization": f"Bearer {key}"},
            )
            assert reply.status_code == 200, reply.text
            assert flowsync("migrate", env=env).returncode == 0
            assert proc.terminate() == 0, proc.output()
        finally:
            proc.close()
        # The commands left the server to dev, which stopped it on its way out.
        assert not (data / "postgres" / "pgdata" / "postmaster.pid").exists()
    finally:
        shutil.rmtree(data, ignore_errors=True)


@pytest.mark.slow
def test_dev_with_json_logs_prints_only_json_lines() -> None:
    data = _data_dir()
    port = _free_port()
    env = _embedded_env(data, port=port, log_format="json")
    try:
        proc = Process(["dev", "--verbose"], env, data / "dev.out")
        try:
            _serving(proc, port)
            given = httpx.get(
                f"http://127.0.0.1:{port}/api/health", headers={"X-Request-Id": "check-42"}
            )
            assert given.headers["x-request-id"] == "check-42"
            made = httpx.get(f"http://127.0.0.1:{port}/api/workflows")  # 401, logged
            made_id = made.headers["x-request-id"]
            assert re.fullmatch(r"[0-9a-f]{32}", made_id)
            odd = httpx.get(f"http://127.0.0.1:{port}/api/health", headers={"X-Request-Id": "a b"})
            assert odd.headers["x-request-id"] != "a b"
            time.sleep(0.5)
            assert proc.terminate() == 0, proc.output()
        finally:
            proc.close()
        lines = [json.loads(line) for line in proc.log.read_text().splitlines()]  # every one parses
        access = {
            line.get("requestId"): line for line in lines if line["logger"] == "uvicorn.access"
        }
        assert access["check-42"]["path"] == "/api/health" and access["check-42"]["status"] == 200
        assert access[made_id]["status"] == 401
        loggers = {line["logger"] for line in lines}
        assert {"uvicorn.error", "uvicorn.access", "pgserver", "flowsync"} <= loggers
        [ready] = [line for line in lines if line["message"] == "FlowSync is ready"]
        assert ready["dashboard"] == f"http://127.0.0.1:{port}/ui/#key={ready['apiKey']}"
        for line in (data / "logs" / "dev.log").read_text().splitlines():  # the file too
            json.loads(line)
    finally:
        shutil.rmtree(data, ignore_errors=True)
