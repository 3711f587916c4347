"""Secrets at the service level and from the command line: stored encrypted, scoped to
their owner, audited without values; a run whose secret was deleted since the save fails
naming it; `secrets rotate-key` encrypts every row again (or, with a key that cannot read
them, changes nothing); `serve` and `worker` with a wrong, malformed or missing key exit 1
with one line and start nothing."""

from __future__ import annotations

import asyncio
import subprocess
import sys
from collections.abc import AsyncIterator
from pathlib import Path

import pytest

from flowsync.config import Settings
from flowsync.errors import InvalidInput, NotFound
from flowsync.secrets_crypto import SecretUnreadable, new_key_text
from flowsync.services.container import Services, build_services
from flowsync.services.principal import Principal
from flowsync.worker.netguard import NetworkPolicy
from flowsync.worker.registry import default_registry
from tests.conftest import new_subject
from tests.rest.server import worker
from tests.support.processes import ROOT, flowsync_env
from tests.support.target import action, running_target
from tests.support.workers import finished

KEY = new_key_text()
VALUE = "v4lue-of-the-secret"


@pytest.fixture
def settings(db_url: str) -> Settings:
    return Settings(database_url=db_url, secret_key=KEY, _env_file=None)  # type: ignore[call-arg]


async def owner(services: Services) -> Principal:
    return Principal(await services.api_keys.ensure_owner(new_subject()), "test")


async def test_stored_encrypted_scoped_to_the_owner_and_audited_without_the_value(
    services: Services,
) -> None:
    me, other = await owner(services), await owner(services)
    made = await services.secrets.set(me, "TOKEN", VALUE)
    assert (made.name, made.set_by) == ("TOKEN", "test")
    row = await services.pool.fetchrow("SELECT * FROM secrets WHERE owner_id = $1", me.owner_id)
    assert VALUE.encode() not in bytes(row["ciphertext"])
    assert row["key_id"] == services.secrets.keyring.require().id
    assert await services.secrets.list(other) == []
    with pytest.raises(NotFound):
        await services.secrets.delete(other, "TOKEN")
    with pytest.raises(InvalidInput) as bad:
        await services.secrets.set(me, "TOKEN", "x" * (64 * 1024 + 1))
    assert [p.path for p in bad.value.details] == ["value"]
    assert [s.name for s in await services.secrets.list(me)] == ["TOKEN"]
    await services.secrets.delete(me, "TOKEN")
    audit = await services.pool.fetch(
        "SELECT action, entity_id, data::text AS data FROM audit_log WHERE owner_id = $1 "
        "ORDER BY id", me.owner_id,
    )  # fmt: skip
    assert [(a["action"], a["entity_id"]) for a in audit] == [
        ("secret.set", "TOKEN"), ("secret.deleted", "TOKEN"),
    ]  # fmt: skip
    assert all(VALUE not in a["data"] for a in audit)


async def test_a_run_whose_secret_was_deleted_since_the_save_fails_naming_it(
    services: Services,
) -> None:
    me = await owner(services)
    await services.secrets.set(me, "TOKEN", VALUE)
    with running_target() as target:
        definition = action(f"{target.url}/echo", headers={"X-T": "{{ secrets.TOKEN }}"})
        wf = await services.workflows.create(me, "w", None, definition)
        await services.secrets.delete(me, "TOKEN")
        run = (await services.executions.start(me, wf.id, {})).execution.id
        async with worker(services, default_registry(NetworkPolicy(["127.0.0.1/32"]))):
            ended = await finished(services, me, run, 20)
        assert target.requests_to("/echo") == []
    assert ended.status == "FAILED"
    step = await services.pool.fetchrow(
        "SELECT error::text AS error FROM step_executions WHERE execution_id = $1 "
        "AND node_id = 'call'", run,
    )  # fmt: skip
    assert "secrets that are not set: TOKEN" in step["error"]


@pytest.fixture
async def rotated(db_url: str) -> AsyncIterator[tuple[Services, str]]:
    """Services under a new key with KEY as the previous one, and the new key."""
    new = new_key_text()
    built = await build_services(
        Settings(database_url=db_url, secret_key=new, secret_previous_key=KEY, _env_file=None),  # type: ignore[call-arg]
        db_url,
    )
    try:
        yield built, new
    finally:
        await built.close()


async def test_rotate_key_encrypts_every_row_again_and_a_wrong_key_changes_nothing(
    services: Services, rotated: tuple[Services, str], db_url: str
) -> None:
    a, b = await owner(services), await owner(services)
    await services.secrets.set(a, "ONE", "1")
    await services.secrets.set(b, "TWO", "2")
    before = await services.pool.fetch("SELECT name, ciphertext FROM secrets ORDER BY name")
    stranger = await build_services(
        Settings(database_url=db_url, secret_key=new_key_text(), _env_file=None),  # type: ignore[call-arg]
        db_url,
    )
    try:
        with pytest.raises(SecretUnreadable):
            await stranger.secrets.rotate_key()
    finally:
        await stranger.close()
    assert await services.pool.fetch("SELECT name, ciphertext FROM secrets ORDER BY name") == before
    new_services, _ = rotated
    assert await new_services.secrets.rotate_key() == 2
    assert await new_services.secrets.rotate_key() == 0  # nothing left under the old key
    ids = {r["key_id"] for r in await services.pool.fetch("SELECT key_id FROM secrets")}
    assert ids == {new_services.secrets.keyring.require().id}
    keyring = new_services.secrets.keyring
    rows = await services.pool.fetch("SELECT * FROM secrets ORDER BY name")
    assert [keyring.decrypt(r["owner_id"], r["name"], bytes(r["ciphertext"]), r["key_id"])
            for r in rows] == ["1", "2"]  # fmt: skip


def run_cli(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return subprocess.run(
        [sys.executable, "-m", "flowsync", *args], env=env, cwd=ROOT, input=stdin,
        capture_output=True, text=True, timeout=120,
    )  # fmt: skip


async def cli(*args: str, env: dict[str, str], stdin: str = "") -> subprocess.CompletedProcess[str]:
    return await asyncio.to_thread(run_cli, *args, env=env, stdin=stdin)


async def test_the_cli_sets_lists_deletes_and_rotates(
    services: Services, db_url: str, tmp_path: Path
) -> None:
    env = flowsync_env(db_url, secret_key=KEY, data_dir=tmp_path)
    made = await cli("secrets", "set", "API_TOKEN", "--owner", "ops", env=env, stdin=VALUE + "\n")
    assert made.returncode == 0, made.stderr
    value_file = tmp_path / "value"
    value_file.write_text("from-a-file")
    made = await cli("secrets", "set", "OTHER", "--owner", "ops", "--value-file", str(value_file),
                     env=env)  # fmt: skip
    assert made.returncode == 0, made.stderr
    bad = await cli("secrets", "set", "not-a-name", "--owner", "ops", env=env, stdin="x")
    assert bad.returncode == 1 and "not a secret name" in bad.stderr
    listed = await cli("secrets", "list", "--owner", "ops", env=env)
    assert listed.returncode == 0, listed.stderr
    assert [line.split()[0] for line in listed.stdout.splitlines()] == ["API_TOKEN", "OTHER"]
    assert "by cli" in listed.stdout and VALUE not in listed.stdout + listed.stderr
    rows = await services.pool.fetch("SELECT * FROM secrets ORDER BY name")
    keyring = services.secrets.keyring
    assert [keyring.decrypt(r["owner_id"], r["name"], bytes(r["ciphertext"]), r["key_id"])
            for r in rows] == [VALUE, "from-a-file"]  # fmt: skip
    gone = await cli("secrets", "delete", "OTHER", "--owner", "ops", env=env)
    assert gone.returncode == 0 and "deleted OTHER" in gone.stdout
    new = new_key_text()
    rotating = flowsync_env(db_url, secret_key=new, secret_previous_key=KEY, data_dir=tmp_path)
    done = await cli("secrets", "rotate-key", env=rotating)
    assert done.returncode == 0, done.stderr
    assert done.stdout.startswith("1 secret(s) encrypted again")


@pytest.mark.parametrize(
    ("command", "key", "expected"),
    [
        ("worker", "wrong", "is not the key the stored secrets were encrypted with"),
        ("serve", "malformed", "FLOWSYNC_SECRET_KEY is not a secret key"),
        ("worker", None, "holds secrets and no secret key is configured"),
    ],
)
async def test_a_wrong_malformed_or_missing_key_stops_the_start_in_one_line(
    services: Services, db_url: str, tmp_path: Path, command: str, key: str | None,
    expected: str,
) -> None:  # fmt: skip
    await services.secrets.set(await owner(services), "TOKEN", VALUE)
    values: dict[str, object] = {"data_dir": tmp_path, "port": 0}
    if key == "wrong":
        values["secret_key"] = new_key_text()
    elif key == "malformed":
        values["secret_key"] = "not-base64-at-all"
    started = await cli(command, env=flowsync_env(db_url, **values))
    assert started.returncode == 1, started.stdout + started.stderr
    errors = [line for line in started.stderr.splitlines() if "error" in line.lower()]
    assert len(errors) == 1 and expected in errors[0], started.stderr
