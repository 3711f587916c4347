"""docs/deploy.md's "The commands, as the cluster test runs them" says what the cluster
test does: every option and setting the test gives a host is written there."""

from __future__ import annotations

import ipaddress

from tests.cluster.conftest import (
    API_PORT,
    API_SETTINGS,
    HOSTS,
    INITDB_OPTIONS,
    POSTGRES_OPTIONS,
    SUBNETS,
    WORKER_CONCURRENCY,
    WORKER_SETTINGS,
)
from tests.cluster.netns import HOST_SHELL, PREFIX
from tests.support.processes import ROOT

HEADING = "## The commands, as the cluster test runs them"


def _section() -> str:
    text = (ROOT / "docs" / "deploy.md").read_text()
    assert HEADING in text
    section = text.split(HEADING, 1)[1]
    return section.split("\n## ", 1)[0]


def test_the_deploy_guide_lists_each_host_s_command_and_settings_as_the_test_runs_them() -> None:
    section = _section()
    # Shell lines continued with a backslash read as one.
    joined = section.replace("\\\n", " ")
    subnet = ipaddress.IPv4Network(SUBNETS[0])
    for host, octet in HOSTS.items():
        assert f"`{host}`" in section, host
        assert str(subnet.network_address + octet).rsplit(".", 1)[1] in section
    assert f"host all all {subnet} trust" in section
    assert f"initdb -D $PGDATA {' '.join(INITDB_OPTIONS)}" in joined
    pg = str(subnet.network_address + HOSTS["pg"])
    assert f"-c listen_addresses={pg}" in joined
    assert " ".join(POSTGRES_OPTIONS) in " ".join(joined.split())
    assert f"FLOWSYNC_DATABASE_URL=postgresql://postgres@{pg}:5432/flowsync" in section
    for api in ("api1", "api2"):
        address = subnet.network_address + HOSTS[api]
        assert f"--host {address} --port {API_PORT}" in joined, api
    for key, value in API_SETTINGS.items():
        assert f"FLOWSYNC_{key.upper()}={value}" in section, key
    for key, value in WORKER_SETTINGS.items():
        assert f"FLOWSYNC_{key.upper()}={value}" in section, key
    assert f"flowsync worker --concurrency {WORKER_CONCURRENCY}" in joined
    assert f"ip netns exec {PREFIX}<pid>-<host> unshare --uts -- sh -c '{HOST_SHELL}'" in section
    for command in ("flowsync migrate", "flowsync api-keys create --owner cluster"):
        assert command in section
