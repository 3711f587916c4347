"""The dashboard's own unit and component tests (Vitest), run from pytest so that
`./run test` covers them wherever Node is installed."""

from __future__ import annotations

import os
import re
import shutil
import subprocess

from tests.browser.conftest import missing
from tests.support.processes import ROOT

WEB = ROOT / "web"
NODE_AT_LEAST = (20, 19)  # Vite 8's floor


def _node_version() -> tuple[int, int] | None:
    found = re.match(r"v(\d+)\.(\d+)", subprocess.run(
        ["node", "--version"], capture_output=True, text=True, timeout=30
    ).stdout)  # fmt: skip
    return (int(found.group(1)), int(found.group(2))) if found else None


def test_vitest_suite_passes() -> None:
    assert (WEB / "package.json").is_file(), f"{WEB} (the dashboard's sources) is missing"
    for tool in ("node", "npm"):
        if shutil.which(tool) is None:
            missing(f"{tool} is not on PATH: the dashboard's Vitest suite needs Node.js")
    version = _node_version()
    if version is None or version < NODE_AT_LEAST:
        missing(f"Node.js {version} is older than {NODE_AT_LEAST}, which Vite needs")
    env = {**os.environ, "CI": "true"}
    if not (WEB / "node_modules").is_dir():
        installed = subprocess.run(
            ["npm", "ci", "--no-audit", "--no-fund"],
            cwd=WEB, env=env, capture_output=True, text=True, timeout=600,
        )  # fmt: skip
        assert installed.returncode == 0, installed.stdout[-3000:] + installed.stderr[-3000:]
    result = subprocess.run(
        ["npm", "test"], cwd=WEB, env=env, capture_output=True, text=True, timeout=600
    )
    assert result.returncode == 0, result.stdout[-6000:] + result.stderr[-3000:]
