"""The dashboard on an API locked to a safelist with no operation of its own
(FLOWSYNC_GRAPHQL_SAFELIST): the dashboard's shipped operations still run, queries and
mutations by hash over HTTP and its subscriptions over the websocket, while a document of
anyone else is refused."""

from __future__ import annotations

from pathlib import Path

import httpx
import pytest
from playwright.async_api import Page, expect

from flowsync.schema.safelist import write_manifest
from tests.browser.conftest import Console, FlowSync, csp_violations, sign_in
from tests.browser.ui import delays, short

pytestmark = pytest.mark.slow


@pytest.fixture
def api_extra_settings(tmp_path: Path) -> dict[str, object]:
    locked = tmp_path / "safelist.json"
    write_manifest(locked, [])
    return {"graphql_safelist": str(locked)}


async def test_the_dashboard_runs_in_safelist_mode(
    page: Page, console: Console, flowsync: FlowSync
) -> None:
    async with httpx.AsyncClient() as client:
        other = await client.post(
            f"{flowsync.url}/graphql",
            json={"query": "{ workflows(first: 1) { edges { cursor } } }"},
            headers={"Authorization": f"Bearer {flowsync.key}"},
        )
    assert other.status_code == 403, other.text
    services = flowsync.services
    workflow = await services.workflows.create(flowsync.me, "locked", None, delays(1, 0.3))
    run = (await services.executions.start(flowsync.me, workflow.id, {})).execution.id
    await sign_in(page, flowsync)
    await page.get_by_role("link", name="Runs").click()
    await page.get_by_role("link", name=short(run)).click()
    # The status changes on the open page: the run's subscription runs too.
    await expect(page.get_by_test_id("execution-status")).to_have_attribute(
        "data-status", "COMPLETED", timeout=15_000
    )
    await expect(page.get_by_test_id("rf__node-d2")).to_have_attribute("data-status", "COMPLETED")
    assert await csp_violations(page) == []
    assert console.errors == []
