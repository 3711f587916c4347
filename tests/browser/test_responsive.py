"""Every page of the dashboard, with real data, on a phone (390x844) and on a desktop:
the document never scrolls sideways, the navigation fits, and what is wider than the
screen (a table, the runs list) scrolls inside its own box. Screenshots of each page go
to test-artifacts/ (`<viewport>-<page>.png`) for a person to look at."""

from __future__ import annotations

from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import ARTIFACTS, Console, FlowSync, csp_violations, sign_in
from tests.browser.ui import sample_data

pytestmark = pytest.mark.slow

VIEWPORTS = {"phone": {"width": 390, "height": 844}, "desktop": {"width": 1400, "height": 900}}
# What each run of the page tour looks at: a phone in both themes, a desktop.
LOOKS = {
    "phone": ("phone", "light"),
    "phone-dark": ("phone", "dark"),
    "desktop": ("desktop", "light"),
}

# Elements inside <main> or the header that reach past the right edge of the window
# without a box of their own that scrolls (or clips) them: what makes a phone's page
# scroll sideways, or would if the document hid its overflow.
STICKING_OUT = """
() => {
  const width = document.documentElement.clientWidth;
  const clipped = (el) => {
    for (let a = el.parentElement; a && a !== document.body; a = a.parentElement) {
      const ox = getComputedStyle(a).overflowX;
      if (ox === "clip" || ox === "hidden") return true;
      if (ox !== "visible" && a.getBoundingClientRect().right <= width + 1) return true;
    }
    return false;
  };
  const out = [];
  for (const el of document.querySelectorAll("header *, main *")) {
    const r = el.getBoundingClientRect();
    if (r.width === 0 || r.right <= width + 1) continue;
    if (el.closest(".react-flow")) continue;  // the canvas's own viewport clips it
    if (clipped(el)) continue;
    const cls = typeof el.className === "string" && el.className ? "." + el.className : "";
    const text = (el.textContent || "").trim().slice(0, 40);
    out.push(`${el.tagName.toLowerCase()}${cls} right=${Math.round(r.right)} (${text})`);
  }
  return out.slice(0, 10);
}
"""


async def data(flowsync: FlowSync) -> dict[str, str]:
    """A workflow with a long name, a finished run, a failed run with a long error (and
    so a dead letter), and a webhook trigger (its long URL)."""
    return await sample_data(
        flowsync.url, flowsync.key, "nightly-report-for-the-regional-warehouses"
    )


def pages(made: dict[str, str]) -> dict[str, str]:
    return {
        "overview": "",
        "workflows": "workflows",
        "workflow": f"workflows/{made['workflow']}",
        "runs": "runs",
        "run": f"runs/{made['failed']}",
        "run-step": f"runs/{made['failed']}?step=call",
        "timeline": f"runs/{made['done']}?tab=timeline",
        "events": f"runs/{made['done']}?tab=events",
        "dead-letters": "dead-letters",
        "audit": "audit",
        "api-keys": "settings",
        "editor": f"workflows/{made['workflow']}/edit",
        "new-workflow": "workflows/new",
    }


async def check(page: Page, name: str, viewport: str) -> list[str]:
    """What is wrong with the page as shown now; saves its screenshot."""
    await expect(page.locator("main h1, main h2").first).to_be_visible()
    await page.wait_for_load_state("networkidle")
    await page.wait_for_timeout(300)  # a graph's fitView
    await page.screenshot(path=str(ARTIFACTS / f"{viewport}-{name}.png"), full_page=True)
    problems: list[str] = []
    sizes = await page.evaluate(
        "({ scroll: document.documentElement.scrollWidth,"
        " client: document.documentElement.clientWidth,"
        " htmlX: getComputedStyle(document.documentElement).overflowX,"
        " bodyX: getComputedStyle(document.body).overflowX })"
    )
    if sizes["scroll"] > sizes["client"]:
        problems.append(f"the document scrolls sideways: {sizes['scroll']} > {sizes['client']}")
    # Hiding the document's overflow would only hide the fault.
    if sizes["htmlX"] != "visible" or sizes["bodyX"] != "visible":
        problems.append(f"the document hides its overflow ({sizes})")
    out: list[str] = await page.evaluate(STICKING_OUT)
    problems += [f"sticks out: {o}" for o in out]
    # Every link of the navigation is on screen.
    for link in await page.get_by_role("navigation", name="Main").get_by_role("link").all():
        box = await link.bounding_box()
        assert box is not None
        if box["x"] < 0 or box["x"] + box["width"] > sizes["client"]:
            problems.append(f"navigation link {await link.text_content()} is off screen: {box}")
    return problems


@pytest.mark.parametrize("look", list(LOOKS))
async def test_every_page_fits_the_window(
    browser: Browser, flowsync: FlowSync, look: str, console: Console
) -> None:
    made = await data(flowsync)
    viewport = look  # the screenshots' prefix
    size: Any = VIEWPORTS[LOOKS[look][0]]
    context = await browser.new_context(
        viewport=size, is_mobile=LOOKS[look][0] == "phone", color_scheme=LOOKS[look][1]
    )
    ARTIFACTS.mkdir(exist_ok=True)
    try:
        page = await context.new_page()
        page.on("console", console.on_message)
        await sign_in(page, flowsync)
        problems: dict[str, list[str]] = {}
        for name, path in pages(made).items():
            await page.goto(flowsync.ui(path))
            found = await check(page, name, viewport)
            if found:
                problems[name] = found
        # The workflow page's other tabs: the triggers table holds a long webhook URL.
        await page.goto(flowsync.ui(f"workflows/{made['workflow']}"))
        for tab in ["Graph", "Versions", "Triggers"]:
            await page.get_by_role("tab", name=tab).click()
            found = await check(page, f"workflow-{tab.lower()}", viewport)
            if found:
                problems[f"workflow {tab}"] = found
        # The editor with a node selected: its properties form.
        await page.goto(flowsync.ui(f"workflows/{made['workflow']}/edit"))
        await page.get_by_test_id("rf__node-d1").click()
        await expect(page.get_by_test_id("properties")).to_be_visible()
        found = await check(page, "editor-properties", viewport)
        if found:
            problems["editor properties"] = found
        assert problems == {}
        assert await csp_violations(page) == []
        assert console.errors == []
    finally:
        await context.close()


# Every id shown in a table or the runs list: its text, title, and whether it takes
# more than one line.
IDS = """
() => [...document.querySelectorAll("main table .id, main .vrow .id")].map((el) => {
  const lineHeight = parseFloat(getComputedStyle(el).lineHeight);
  return {
    text: el.textContent,
    title: el.title,
    oneLine: el.getBoundingClientRect().height < lineHeight * 1.5,
    cut: el.scrollWidth > el.clientWidth,
  };
})
"""


async def test_ids_in_tables_stay_on_one_line(
    browser: Browser, flowsync: FlowSync, console: Console
) -> None:
    """On a phone, where columns are narrow, an id in a table is never broken across
    lines (they broke mid-word): it keeps one line, cut with an ellipsis where needed,
    the full id in its title."""
    made = await data(flowsync)
    context = await browser.new_context(viewport=VIEWPORTS["phone"], is_mobile=True)  # type: ignore[arg-type]
    try:
        page = await context.new_page()
        page.on("console", console.on_message)
        await sign_in(page, flowsync)
        seen: dict[str, list[dict[str, Any]]] = {}
        for name, path in [
            ("audit", "audit"),
            ("dead-letters", "dead-letters"),
            ("overview", ""),
            ("runs", "runs"),
            ("events", f"runs/{made['failed']}?tab=events"),
        ]:
            await page.goto(flowsync.ui(path))
            await expect(page.locator("main table .id, main .vrow .id").first).to_be_visible()
            ids: list[dict[str, Any]] = await page.evaluate(IDS)
            seen[name] = ids
            broken = [i for i in ids if not i["oneLine"] or not i["title"]]
            assert broken == [], (name, broken)
        # The dead letter's run: its short name shown, the whole id in the title.
        assert {"text": made["failed"][-8:], "title": made["failed"]} in [
            {"text": i["text"], "title": i["title"]} for i in seen["dead-letters"]
        ]
        # The audit log's actors (apikey:<uuid>) are cut with an ellipsis, not wrapped.
        actors = [i for i in seen["audit"] if i["title"].startswith("apikey:")]
        assert actors and all(i["cut"] and i["text"] == i["title"] for i in actors), actors
        # Its entries' data stays on one line too, all of it in the title: a long one
        # made its row a screen tall in the narrow column left to it (found by QA).
        await page.goto(flowsync.ui("audit"))
        data_cells = page.locator("main table td.audit-data")
        await expect(data_cells.first).to_be_visible()
        cells: list[dict[str, Any]] = await data_cells.evaluate_all(
            """cells => cells.map(td => ({
                height: td.getBoundingClientRect().height,
                line: parseFloat(getComputedStyle(td).lineHeight) || 16,
                text: td.textContent.trim(), title: td.title,
            }))"""
        )
        assert len(cells) >= 3, cells
        assert all(c["height"] < c["line"] * 2.5 for c in cells), cells
        assert all(c["title"].startswith(c["text"][:20]) for c in cells), cells
        assert max(len(c["title"]) for c in cells) > 60, cells  # a long one was there
        assert console.errors == []
    finally:
        await context.close()
