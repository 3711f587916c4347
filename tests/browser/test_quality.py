"""Every page, with real data, in both themes: no serious or critical axe-core
violation, usable by keyboard, and at 1280 px wide. The run page also saves the
screenshots people look at (and that the README shows) under test-artifacts/."""

from __future__ import annotations

import json
import os
import shutil
from pathlib import Path
from typing import Any

import axe_playwright_python
import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.conftest import ARTIFACTS, ROOT, Console, FlowSync, csp_violations, sign_in
from tests.browser.ui import Api, delays, sample_data
from tests.support.target import running_target

pytestmark = pytest.mark.slow

AXE = (Path(axe_playwright_python.__file__).parent / "axe.min.js").read_text()
# `UI_SCREENSHOT_DIR=docs/images ./run test tests/browser -k screenshots` refreshes the
# README's picture; by default screenshots stay in test-artifacts/.
SCREENSHOT_DIR = os.environ.get("UI_SCREENSHOT_DIR")


async def axe_violations(page: Page) -> list[str]:
    """axe-core's serious and critical violations on the page as it is now. (Evaluated
    through the devtools protocol, which the page's CSP does not govern.)"""
    result: dict[str, Any] = await page.evaluate(
        AXE + "\n;axe.run(document, { resultTypes: ['violations'] })"
    )
    return [
        f"{v['id']} ({v['impact']}): {v['help']} at "
        + ", ".join(str(n["target"]) for n in v["nodes"][:5])
        for v in result["violations"]
        if v["impact"] in ("serious", "critical")
    ]


async def data(flowsync: FlowSync) -> dict[str, str]:
    """A workflow with a finished run, a failed run (and so a dead letter), a trigger."""
    return await sample_data(flowsync.url, flowsync.key)


@pytest.mark.parametrize("theme", ["light", "dark"])
async def test_every_page_passes_axe(
    browser: Any, flowsync: FlowSync, theme: str, console: Console
) -> None:
    made = await data(flowsync)
    context: BrowserContext = await browser.new_context(
        viewport={"width": 1280, "height": 800}, color_scheme=theme
    )
    try:
        page = await context.new_page()
        page.on("console", console.on_message)
        await sign_in(page, flowsync)
        pages = {
            "overview": "",
            "workflows": "workflows",
            "workflow": f"workflows/{made['workflow']}",
            "runs": "runs",
            "run": f"runs/{made['failed']}?step=call",
            "timeline": f"runs/{made['done']}?tab=timeline",
            "events": f"runs/{made['done']}?tab=events",
            "dead letters": "dead-letters",
            "audit": "audit",
            "keys": "settings",
            "editor": f"workflows/{made['workflow']}/edit",
        }
        problems: dict[str, list[str]] = {}
        for name, path in pages.items():
            await page.goto(flowsync.ui(path))
            await expect(page.locator("main h1, main h2").first).to_be_visible()
            await page.wait_for_load_state("networkidle")
            assert await page.evaluate("document.documentElement.dataset.theme") == theme
            # Nothing is wider than the window at 1280 px.
            assert await page.evaluate(
                "document.documentElement.scrollWidth <= window.innerWidth"
            ), name
            found = await axe_violations(page)
            if found:
                problems[name] = found
        await page.goto(flowsync.ui())
        await page.get_by_role("button", name="Sign out").click()
        await expect(page.get_by_test_id("signin")).to_be_visible()
        found = await axe_violations(page)
        if found:
            problems["sign in"] = found
        assert problems == {}
        assert console.errors == []
    finally:
        await context.close()


async def test_the_run_page_is_usable_by_keyboard(signed_in_page: Page, flowsync: FlowSync) -> None:
    page = signed_in_page
    client = Api(flowsync.url, flowsync.key)
    run = await client.start(await client.create_workflow("keys", delays(0.1)))
    await client.wait_status(run, {"COMPLETED"}, timeout=15)
    await page.goto(flowsync.ui(f"runs/{run}"))
    await expect(page.get_by_test_id("rf__node-d1")).to_have_attribute("data-status", "COMPLETED")
    # A graph node takes focus and opens its step's panel with Enter.
    await page.get_by_test_id("rf__node-d1").focus()
    await page.keyboard.press("Enter")
    await expect(page.get_by_test_id("step-panel")).to_contain_text("d1")
    # The tabs are reachable and work from the keyboard; focus is visible.
    timeline = page.get_by_role("tab", name="Timeline")
    await timeline.focus()
    await page.keyboard.press("Enter")
    await expect(timeline).to_have_attribute("aria-selected", "true")
    outline = await timeline.evaluate("e => getComputedStyle(e).outlineStyle")
    assert outline != "none"


async def test_screenshots_of_the_run_page(
    context: BrowserContext, flowsync: FlowSync, console: Console
) -> None:
    """A run with a fan-out, a failed step with a long error, in both themes: the
    pictures a person checks before calling the page done."""
    client = Api(flowsync.url, flowsync.key)
    nodes: list[dict[str, Any]] = [
        {"id": "start", "type": "start"},
        {"id": "fetch_orders", "type": "transform", "data": {"output": {"orders": 3}}},
        {"id": "split", "type": "fork"},
        {"id": "merge", "type": "join"},
        {"id": "end", "type": "end"},
    ]
    edges = [
        {"source": "start", "target": "fetch_orders"},
        {"source": "fetch_orders", "target": "split"},
        {"source": "merge", "target": "end"},
    ]
    with running_target() as target:
        for i in range(6):
            branch = f"sync_region_{i}"
            url = f"{target.url}/status/{422 if i == 4 else 200}"
            nodes.append({"id": branch, "type": "action", "data": {"method": "POST", "url": url}})
            edges += [
                {"source": "split", "target": branch},
                {"source": branch, "target": "merge"},
            ]
        run = await client.start(
            await client.create_workflow("regional-sync", {"nodes": nodes, "edges": edges})
        )
        await client.wait_status(run, {"FAILED"}, timeout=20)
    page = await context.new_page()
    page.on("console", console.on_message)
    await sign_in(page, flowsync)
    ARTIFACTS.mkdir(exist_ok=True)
    for theme in ["light", "dark"]:
        await page.emulate_media(color_scheme=theme)
        await page.evaluate(f"sessionStorage.setItem('flowsync.theme', '{theme}')")
        await page.goto(flowsync.ui(f"runs/{run}?step=sync_region_4"))
        await expect(page.get_by_test_id("execution-status")).to_have_attribute(
            "data-status", "FAILED"
        )
        await expect(page.get_by_test_id("step-panel")).to_contain_text("422")
        await page.wait_for_timeout(300)  # the graph's fitView animation
        shot = ARTIFACTS / f"run-page-{theme}.png"
        await page.screenshot(path=str(shot))
        if SCREENSHOT_DIR:
            shutil.copy(shot, Path(SCREENSHOT_DIR) / shot.name)
    assert await csp_violations(page) == []
    assert console.errors == []


async def test_screenshot_of_the_editor(
    context: BrowserContext, flowsync: FlowSync, console: Console
) -> None:
    """The editor with the seed's example shape, a node selected and one problem pinned."""
    client = Api(flowsync.url, flowsync.key)
    example = json.loads((ROOT / "docs" / "examples" / "order-sync.json").read_text())
    workflow = await client.create_workflow("order-sync", example["definition"])
    page = await context.new_page()
    page.on("console", console.on_message)
    await sign_in(page, flowsync)
    await page.goto(flowsync.ui(f"workflows/{workflow}/edit"))
    await expect(page.get_by_test_id("editor-state")).to_contain_text("valid")
    await page.get_by_test_id("rf__node-paid").click()
    await page.get_by_label("Expression").fill("steps.fetch.output.status == ")
    await expect(page.get_by_test_id("editor-state")).to_contain_text("1 problem")
    # The field's own syntax check, as you type.
    await expect(page.get_by_test_id("syntax-problem")).to_contain_text("Syntax error")
    await page.wait_for_timeout(300)
    ARTIFACTS.mkdir(exist_ok=True)
    shot = ARTIFACTS / "editor.png"
    await page.screenshot(path=str(shot))
    if SCREENSHOT_DIR:
        shutil.copy(shot, Path(SCREENSHOT_DIR) / shot.name)
    assert console.errors == []
