"""The dashboard loads in a real browser under its CSP, and the sign-in link of
`flowsync dev` signs the tab in without leaving the key in the address bar."""

from __future__ import annotations

import pytest
from playwright.async_api import Page, expect

from tests.browser.conftest import Console, FlowSync, csp_violations

pytestmark = pytest.mark.slow


async def test_sign_in_page_loads_cleanly(page: Page, console: Console, flowsync: FlowSync) -> None:
    await page.goto(flowsync.ui())
    await expect(page.get_by_role("heading", name="Sign in to FlowSync")).to_be_visible()
    await page.wait_for_load_state("networkidle")
    assert await csp_violations(page) == []
    assert console.errors == []


async def test_the_sign_in_link_signs_in_and_clears_the_fragment(
    page: Page, console: Console, flowsync: FlowSync
) -> None:
    await page.goto(flowsync.ui(f"#key={flowsync.key}"))
    await page.wait_for_function("!location.hash.includes('key=')")
    assert page.url == flowsync.ui()
    await expect(page.get_by_role("heading", name="Sign in to FlowSync")).to_have_count(0)
    # The key went to this tab's sessionStorage, and the API accepted it.
    stored = await page.evaluate("Object.values(sessionStorage)")
    assert flowsync.key in stored
    await expect(page.get_by_test_id("health")).to_be_visible()
    assert await csp_violations(page) == []
    assert console.errors == []
