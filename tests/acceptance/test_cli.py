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


@pytest.mark.slow
def test_dev_starts_embedded_postgres_serves_health_and_stops_cleanly() -> None:
    # A fresh data folder, as a new user has: no FLOWSYNC_DATABASE_URL at all.
    data = Path(tempfile.mkdtemp(prefix="flowsync-dev-", dir="/tmp"))
    data.chmod(0o755)
    port = _free_port()
    env = flowsync_env("unused", data_dir=data, port=port)
    del env["FLOWSYNC_DATABASE_URL"]
    try:
        for run in range(2):  # the second start finds the data left by the first
            proc = Process(["dev"], env, data / f"dev-{run}.log")
            try:
                deadline = time.monotonic() + 60
                reply = None
                while time.monotonic() < deadline:
                    try:
                        reply = httpx.get(f"http://127.0.0.1:{port}/api/health", timeout=2)
                        break
                    except httpx.TransportError:
                        time.sleep(0.2)
                assert reply is not None, proc.output()
                assert reply.status_code == 200
                assert reply.json()["checks"] == {"database": "ok", "migrations": "ok"}
                assert proc.terminate() == 0, proc.output()
                assert "stopped" in proc.output()
                assert_dashboard_link(proc.output(), port)
            finally:
                proc.close()
        assert (data / "postgres" / "pgdata" / "PG_VERSION").exists()
        assert not (data / "postgres" / "pgdata" / "postmaster.pid").exists()
    finally:
        shutil.rmtree(data, ignore_errors=True)
