"""The visual editor in a real browser against real processes: build a workflow by
dragging from the palette and connecting handles, fill its fields, save, and check what
the API stored and that it runs; see a cycle refused; undo and redo; compare versions;
a conflict between two editors."""

from __future__ import annotations

import itertools
import json
import re
from typing import Any

import pytest
from playwright.async_api import Browser, Page, expect

from tests.browser.conftest import VIEWPORT, Console, FlowSync, sign_in
from tests.browser.ui import Api
from tests.support.target import running_target

pytestmark = pytest.mark.slow


def node(page: Page, node_id: str) -> Any:
    return page.get_by_test_id(f"rf__node-{node_id}")


async def drop(page: Page, node_type: str, x: int, y: int) -> None:
    """Drag a palette item onto the canvas at (x, y) of the canvas."""
    await page.locator(f'.palette [data-node-type="{node_type}"]').drag_to(
        page.get_by_test_id("editor-canvas"), target_position={"x": x, "y": y}
    )


async def connect(page: Page, source: str, target: str, handle: str | None = None) -> None:
    """Drag from the source node's (named) output handle to the target's input handle."""
    selector = (
        f'.react-flow__handle.source[data-handleid="{handle}"]'
        if handle
        else ".react-flow__handle.source:not([data-handleid])"
    )
    start = await node(page, source).locator(selector).bounding_box()
    end = await node(page, target).locator(".react-flow__handle.target").bounding_box()
    assert start and end
    await page.mouse.move(start["x"] + start["width"] / 2, start["y"] + start["height"] / 2)
    await page.mouse.down()
    await page.mouse.move(end["x"] + end["width"] / 2, end["y"] + end["height"] / 2, steps=8)
    await page.mouse.up()


async def select(page: Page, node_id: str) -> None:
    await node(page, node_id).click()
    await expect(page.get_by_test_id("properties")).to_be_visible()


async def test_build_the_example_by_dragging_save_and_run(
    signed_in_page: Page, flowsync: FlowSync, console: Console
) -> None:
    page = signed_in_page
    await page.goto(flowsync.ui("workflows/new"))
    await expect(node(page, "start")).to_be_visible()
    # The new draft is start → end; the shape goes in between.
    await page.locator(".react-flow__edge").first.click(force=True)
    await page.keyboard.press("Delete")
    await expect(page.locator(".react-flow__edge")).to_have_count(0)
    await page.get_by_role("button", name="Zoom Out").click()
    await page.get_by_role("button", name="Zoom Out").click()
    layout = [
        ("action", 150, 60),
        ("condition", 150, 130),
        ("fork", 150, 200),
        ("action", 60, 270),
        ("action", 240, 270),
        ("join", 150, 340),
        ("transform", 150, 410),
        ("webhook_response", 150, 480),
    ]
    for node_type, x, y in layout:
        await drop(page, node_type, x + 200, y)
    for made in ["action_1", "condition_1", "fork_1", "action_2", "action_3", "join_1"]:
        await expect(node(page, made)).to_be_visible()
    await page.get_by_role("button", name="Fit View").click()
    wiring = [
        ("start", "action_1", None),
        ("action_1", "condition_1", None),
        ("condition_1", "fork_1", "true"),
        ("condition_1", "end", "false"),
        ("fork_1", "action_2", None),
        ("fork_1", "action_3", None),
        ("action_2", "join_1", None),
        ("action_3", "join_1", None),
        ("join_1", "transform_1", None),
        ("transform_1", "webhook_response_1", None),
        ("webhook_response_1", "end", None),
    ]
    for source, target, handle in wiring:
        await connect(page, source, target, handle)
    await expect(page.locator(".react-flow__edge")).to_have_count(len(wiring))
    with running_target() as target:
        for action in ["action_1", "action_2", "action_3"]:
            await select(page, action)
            await page.get_by_label("Method").select_option("GET")
            await page.get_by_label("Url").fill(f"{target.url}/echo")
        await select(page, "condition_1")
        await page.get_by_label("Expression").fill("steps.action_1.output.status == 200")
        await select(page, "transform_1")
        await page.get_by_label("Output").fill('{"ok": true}')
        await page.get_by_role("button", name="Tidy up").click()  # elkjs, loaded on demand
        await page.get_by_label("Workflow name").fill("built-in-the-browser")
        await expect(page.get_by_test_id("editor-state")).to_contain_text("valid")
        await page.get_by_role("button", name="Create workflow").click()
        await page.wait_for_url("**/workflows/*/edit")
        workflow_id = page.url.split("/workflows/")[1].split("/")[0]
        client = Api(flowsync.url, flowsync.key)
        stored = (
            await client(
                "query($id: ID!) { workflow(id: $id) { name version definition } }",
                id=workflow_id,
            )
        )["workflow"]
        assert stored["name"] == "built-in-the-browser"
        definition = stored["definition"]
        assert sorted(n["type"] for n in definition["nodes"]) == sorted(
            [
                *["start", "end", "action", "action", "action", "condition", "fork"],
                *["join", "transform", "webhook_response"],
            ]
        )
        edges = {(e["source"], e["target"], e.get("sourceHandle")) for e in definition["edges"]}
        assert edges == set(wiring)
        assert all("position" in n for n in definition["nodes"])
        run = await client.start(workflow_id)
        done = await client.wait_status(run, {"COMPLETED", "FAILED"}, timeout=20)
        assert done["status"] == "COMPLETED", done
        assert len(target.requests_to("/echo")) == 3
    assert console.errors == []


async def test_a_cycle_is_refused_when_drawn_and_pinned_when_imported(
    signed_in_page: Page, flowsync: FlowSync
) -> None:
    """Drawing the edge that closes a loop is refused at once, with a message naming the
    loop's nodes (it used to be accepted and only flagged afterwards); a cycle that comes
    in another way (an imported file) is pinned on its nodes and not saved."""
    page = signed_in_page
    client = Api(flowsync.url, flowsync.key)
    definition = {
        "nodes": [
            {"id": "start", "type": "start", "position": {"x": 0, "y": 0}},
            {"id": "a", "type": "fork", "position": {"x": 0, "y": 120}},
            {
                "id": "b",
                "type": "transform",
                "position": {"x": -150, "y": 240},
                "data": {"output": 1},
            },
            {
                "id": "c",
                "type": "transform",
                "position": {"x": 150, "y": 240},
                "data": {"output": 2},
            },
            {"id": "end", "type": "end", "position": {"x": 0, "y": 360}},
        ],
        "edges": [
            {"source": "start", "target": "a"},
            {"source": "a", "target": "b"},
            {"source": "a", "target": "c"},
            {"source": "b", "target": "end"},
            {"source": "c", "target": "end"},
        ],
    }
    workflow_id = await client.create_workflow("cycle", definition)
    await page.goto(flowsync.ui(f"workflows/{workflow_id}/edit"))
    await expect(page.get_by_test_id("editor-state")).to_contain_text("valid")
    # c → a closes a loop (a fork may have many outgoing edges, so c's one edge moves).
    await node(page, "c").click()
    await page.locator('.react-flow__edge[data-testid="rf__edge-c->end"]').click(force=True)
    await page.keyboard.press("Delete")
    await expect(page.get_by_test_id("rf__edge-c->end")).to_have_count(0)
    await connect(page, "c", "a")
    await expect(page.get_by_test_id("editor-message")).to_have_text(
        "Connecting c to a would make a cycle: a → c → a."
    )
    await expect(page.get_by_test_id("rf__edge-c->a")).to_have_count(0)
    await expect(page.locator(".react-flow__edge")).to_have_count(4)
    # The same loop in an imported file: pinned on its nodes, and nothing invalid is saved.
    looped = {**definition, "edges": [*definition["edges"][:4], {"source": "c", "target": "a"}]}
    await page.locator('input[type="file"]').set_input_files(
        files=[
            {
                "name": "looped.json",
                "mimeType": "application/json",
                "buffer": json.dumps({"definition": looped}).encode(),
            }
        ]
    )
    await expect(page.get_by_test_id("rf__edge-c->a")).to_have_count(1)
    problems = page.get_by_test_id("problems")
    await expect(problems).to_contain_text("cycle")
    await expect(node(page, "a").locator(".ed-node")).to_have_attribute("data-invalid", "true")
    # Clicking the problem selects a node it names.
    await problems.get_by_role("button").first.click()
    await expect(page.get_by_test_id("properties")).to_be_visible()
    await page.get_by_role("button", name="Save version").click()
    await expect(page.get_by_role("alert")).to_contain_text("nothing invalid is saved")
    stored = await client("query($id: ID!) { workflow(id: $id) { version } }", id=workflow_id)
    assert stored["workflow"]["version"] == 1


async def test_a_wait_gets_its_timeout_edge_by_dragging_and_a_run_takes_it(
    signed_in_page: Page, flowsync: FlowSync, console: Console
) -> None:
    """A wait node shows its plain output and a "timeout" one; both are drawn, each once,
    saved with their handles, and a run that no signal reaches leaves by the timeout."""
    page = signed_in_page
    await page.goto(flowsync.ui("workflows/new"))
    await expect(node(page, "start")).to_be_visible()
    await page.locator(".react-flow__edge").first.click(force=True)
    await page.keyboard.press("Delete")
    await expect(page.locator(".react-flow__edge")).to_have_count(0)
    await drop(page, "wait", 350, 150)
    await drop(page, "transform", 250, 280)
    await expect(node(page, "wait_1")).to_be_visible()
    await expect(node(page, "wait_1").locator('[data-handleid="timeout"]')).to_contain_text(
        "timeout"
    )
    await page.get_by_role("button", name="Fit View").click()
    wiring = [
        ("start", "wait_1", None),
        ("wait_1", "transform_1", None),
        ("wait_1", "end", "timeout"),
        ("transform_1", "end", None),
    ]
    for source, target, handle in wiring:
        await connect(page, source, target, handle)
    await expect(page.locator(".react-flow__edge")).to_have_count(len(wiring))
    # A second timeout edge is refused while drawing: the count stays.
    await connect(page, "wait_1", "transform_1", "timeout")
    await expect(page.locator(".react-flow__edge")).to_have_count(len(wiring))
    await select(page, "wait_1")
    await page.get_by_label("Signal").fill("go")
    await page.get_by_label("Timeout seconds").fill("1")
    await select(page, "transform_1")
    await page.get_by_label("Output").fill('{"signalled": true}')
    await page.get_by_label("Workflow name").fill("wait-with-timeout")
    await expect(page.get_by_test_id("editor-state")).to_contain_text("valid")
    await page.get_by_role("button", name="Create workflow").click()
    await page.wait_for_url("**/workflows/*/edit")
    workflow_id = page.url.split("/workflows/")[1].split("/")[0]
    client = Api(flowsync.url, flowsync.key)
    stored = (await client("query($id: ID!) { workflow(id: $id) { definition } }", id=workflow_id))[
        "workflow"
    ]["definition"]
    edges = {(e["source"], e["target"], e.get("sourceHandle")) for e in stored["edges"]}
    assert edges == set(wiring)
    wait = next(n for n in stored["nodes"] if n["id"] == "wait_1")
    assert wait["data"] == {"signal": "go", "timeoutSeconds": 1}
    run = await client.start(workflow_id)
    done = await client.wait_status(run, {"COMPLETED", "FAILED"}, timeout=20)
    assert done["status"] == "COMPLETED", done
    ran = {s["nodeId"]: s["status"] for s in done["steps"]}
    assert ran["wait_1"] == "COMPLETED" and ran.get("transform_1") in (None, "SKIPPED"), ran
    assert console.errors == []


async def test_undo_redo_and_compare_versions(signed_in_page: Page, flowsync: FlowSync) -> None:
    page = signed_in_page
    client = Api(flowsync.url, flowsync.key)
    workflow_id = await client.create_workflow(
        "versions",
        {
            "nodes": [
                {"id": "start", "type": "start", "position": {"x": 0, "y": 0}},
                {"id": "end", "type": "end", "position": {"x": 0, "y": 300}},
            ],
            "edges": [{"source": "start", "target": "end"}],
        },
    )
    await page.goto(flowsync.ui(f"workflows/{workflow_id}/edit"))
    await expect(node(page, "start")).to_be_visible()
    await page.locator('[data-node-type="transform"]').click()  # added without a mouse too
    await expect(node(page, "transform_1")).to_be_visible()
    await page.locator(".react-flow__pane").click()
    await page.keyboard.press("Control+z")
    await expect(node(page, "transform_1")).to_have_count(0)
    await page.keyboard.press("Control+Shift+z")
    await select(page, "transform_1")
    await page.get_by_label("Output").fill('"hello"')
    # Wire it in and save version 2.
    await page.locator(".react-flow__edge").first.click(force=True)
    await page.keyboard.press("Delete")
    await connect(page, "start", "transform_1")
    await connect(page, "transform_1", "end")
    await expect(page.get_by_test_id("editor-state")).to_contain_text("valid")
    await page.get_by_label("Version message").fill("adds a transform")
    await page.get_by_role("button", name="Save version").click()
    await expect(page.get_by_test_id("editor-message")).to_contain_text("Saved as version 2")
    await page.locator(".react-flow__pane").click()
    # The history names each version's author and message.
    await expect(page.get_by_label("Versions")).to_contain_text("adds a transform")
    await expect(page.get_by_label("Versions")).to_contain_text("by apikey:")
    await page.get_by_label("Compare with").select_option("1")
    await expect(page.get_by_test_id("compare-summary")).to_contain_text("added transform_1")
    await expect(node(page, "transform_1").locator(".ed-node")).to_have_attribute(
        "data-diff", "added"
    )


async def test_two_editors_saving_the_same_version_conflict(
    browser: Browser, flowsync: FlowSync
) -> None:
    client = Api(flowsync.url, flowsync.key)
    workflow_id = await client.create_workflow(
        "shared",
        {
            "nodes": [
                {"id": "start", "type": "start", "position": {"x": 0, "y": 0}},
                {"id": "end", "type": "end", "position": {"x": 0, "y": 300}},
            ],
            "edges": [{"source": "start", "target": "end"}],
        },
    )
    pages = []
    for _ in range(2):
        context = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
        page = await context.new_page()
        await sign_in(page, flowsync)
        await page.goto(flowsync.ui(f"workflows/{workflow_id}/edit"))
        await expect(node(page, "start")).to_be_visible()
        pages.append(page)
    try:
        for i, page in enumerate(pages):
            await page.get_by_label("Description").fill(f"editor {i}")
            # A layout change is a change of the definition.
            box = await node(page, "end").bounding_box()
            assert box
            await page.mouse.move(box["x"] + 40, box["y"] + 20)
            await page.mouse.down()
            await page.mouse.move(box["x"] + 40 + 60 * (i + 1), box["y"] + 20, steps=5)
            await page.mouse.up()
            await expect(page.get_by_test_id("editor-state")).to_contain_text("unsaved")
        await pages[0].get_by_role("button", name="Save version").click()
        await expect(pages[0].get_by_test_id("editor-message")).to_contain_text("version 2")
        await pages[1].get_by_role("button", name="Save version").click()
        await expect(pages[1].get_by_role("alert")).to_contain_text("version")
        await pages[1].locator(".react-flow__pane").click()
        await pages[1].get_by_role("button", name="Compare with the newest version").click()
        await expect(pages[1].get_by_test_id("compare-summary")).to_contain_text("version 2")
        stored = await client("query($id: ID!) { workflow(id: $id) { version } }", id=workflow_id)
        assert stored["workflow"]["version"] == 2
    finally:
        for page in pages:
            await page.context.close()


async def test_a_test_run_from_the_editor_colours_the_canvas(
    signed_in_page: Page, flowsync: FlowSync
) -> None:
    page = signed_in_page
    client = Api(flowsync.url, flowsync.key)
    workflow_id = await client.create_workflow(
        "try-me",
        {
            "nodes": [
                {"id": "start", "type": "start", "position": {"x": 0, "y": 0}},
                {
                    "id": "wait",
                    "type": "delay",
                    "data": {"seconds": 0.5},
                    "position": {"x": 0, "y": 150},
                },
                {"id": "end", "type": "end", "position": {"x": 0, "y": 300}},
            ],
            "edges": [{"source": "start", "target": "wait"}, {"source": "wait", "target": "end"}],
        },
    )
    await page.goto(flowsync.ui(f"workflows/{workflow_id}/edit"))
    await page.get_by_label("Input (JSON)").fill('{"n": 1}')
    await page.get_by_role("button", name="Start test run").click()
    await expect(page.get_by_test_id("test-run-status")).to_have_attribute(
        "data-status", "COMPLETED", timeout=15_000
    )
    for step in ["start", "wait", "end"]:
        await expect(node(page, step).locator(".ed-node")).to_have_attribute(
            "data-status", "COMPLETED"
        )


async def update_workflow(client: Api, workflow_id: str, definition: dict[str, Any]) -> int:
    reply = await client(
        """mutation($id: ID!, $i: UpdateWorkflowInput!) { updateWorkflow(id: $id, input: $i) {
             __typename ... on WorkflowPayload { workflow { version } } } }""",
        id=workflow_id,
        i={"definition": definition},
    )
    assert reply["updateWorkflow"]["__typename"] == "WorkflowPayload", reply
    return int(reply["updateWorkflow"]["workflow"]["version"])


def chain(*nodes: dict[str, Any]) -> dict[str, Any]:
    """start → nodes... → end, placed one under another."""
    every = [
        {"id": "start", "type": "start"},
        *nodes,
        {"id": "end", "type": "end"},
    ]
    for i, n in enumerate(every):
        n.setdefault("position", {"x": 0, "y": 130 * i})
    ids = [n["id"] for n in every]
    return {
        "nodes": every,
        "edges": [{"source": a, "target": b} for a, b in itertools.pairwise(ids)],
    }


async def diff_marks(page: Page, kind: str = "node") -> dict[str, str]:
    """Each drawn node's (or edge's) data-diff, by id."""
    marks: dict[str, str] = await page.evaluate(
        """kind => Object.fromEntries([...document.querySelectorAll(
             `.react-flow__${kind}[data-diff]`)].map(e => [e.dataset.id, e.dataset.diff]))""",
        kind,
    )
    return marks


async def test_comparing_versions_draws_both_on_the_canvas(
    signed_in_page: Page, flowsync: FlowSync, console: Console
) -> None:
    page = signed_in_page
    client = Api(flowsync.url, flowsync.key)
    workflow_id = await client.create_workflow(
        "compare-me",
        chain(
            {"id": "shape", "type": "transform", "data": {"output": 1}},
            {"id": "old", "type": "transform", "data": {"output": "bye"}},
        ),
    )
    # Version 2: `old` removed, `new` added, `shape`'s output changed.
    await update_workflow(
        client,
        workflow_id,
        chain(
            {"id": "shape", "type": "transform", "data": {"output": 2}},
            {"id": "new", "type": "delay", "data": {"seconds": 1}},
        ),
    )
    await page.goto(flowsync.ui(f"workflows/{workflow_id}/edit"))
    await expect(node(page, "start")).to_be_visible()
    assert await diff_marks(page) == {}  # nothing is marked until one compares
    await page.get_by_label("Compare with").select_option("1")
    # The draft (version 2) against version 1: the removed node is drawn as it was.
    await expect(node(page, "old")).to_have_attribute("data-diff", "removed")
    await expect(node(page, "old")).to_be_visible()
    assert await diff_marks(page) == {
        "start": "same",
        "shape": "changed",
        "new": "added",
        "end": "same",
        "old": "removed",
    }
    assert await diff_marks(page, "edge") == {
        "start->shape": "same",
        "shape->new": "added",
        "new->end": "added",
        "removed:shape->old": "removed",
        "removed:old->end": "removed",
    }
    await expect(page.get_by_test_id("diff-legend")).to_contain_text("removed")
    changes = page.get_by_test_id("compare-changes")
    await expect(changes).to_contain_text("shape data.output: 1 → 2")
    await expect(page.get_by_test_id("compare-summary")).to_contain_text("removed old")
    # A removed node is only drawn: it cannot be selected, and it is not in the draft.
    await node(page, "old").click(force=True)
    await expect(page.get_by_test_id("properties")).to_have_count(0)
    await expect(page.get_by_test_id("editor-state")).to_contain_text("saved · valid")
    # The draft stays editable while compared: a node added now is marked added.
    await page.locator('.palette [data-node-type="transform"]').click()
    await expect(node(page, "transform_1")).to_have_attribute("data-diff", "added")
    await page.keyboard.press("Control+z")
    await expect(node(page, "transform_1")).to_have_count(0)

    # Two saved versions: version 1 against version 2, the same marks, read-only.
    await page.locator(".react-flow__pane").click()
    await page.get_by_label("Compare against").select_option("2")
    await expect(page.get_by_test_id("compare-summary")).to_contain_text(
        "Version 2 against version 1"
    )
    await expect(page.get_by_test_id("diff-legend")).to_contain_text("read-only")
    await expect(node(page, "old")).to_have_attribute("data-diff", "removed")
    assert (await diff_marks(page))["shape"] == "changed"
    await expect(page.get_by_role("button", name="Save version")).to_be_disabled()
    await expect(page.locator('.palette [data-node-type="transform"]')).to_be_disabled()

    async def offset() -> float:
        new, start = (
            await node(page, "new").bounding_box(),
            await node(page, "start").bounding_box(),
        )
        assert new and start
        return new["x"] - start["x"]

    apart = await offset()
    box = await node(page, "new").bounding_box()
    assert box
    await page.mouse.move(box["x"] + 40, box["y"] + 20)
    await page.mouse.down()
    await page.mouse.move(box["x"] + 140, box["y"] + 20, steps=5)
    await page.mouse.up()
    assert await offset() == apart  # a drag pans the view; no node moves
    await page.get_by_role("button", name="Stop comparing").click()
    assert await diff_marks(page) == {}
    await expect(node(page, "old")).to_have_count(0)
    await expect(page.get_by_test_id("editor-state")).to_contain_text("saved · valid")
    assert console.errors == []


async def test_an_expression_completes_names_from_the_keyboard(
    signed_in_page: Page, flowsync: FlowSync, console: Console
) -> None:
    page = signed_in_page
    client = Api(flowsync.url, flowsync.key)
    definition = chain(
        {"id": "fetch", "type": "transform", "data": {"output": 1}},
        {"id": "shape", "type": "transform", "data": {"output": 2}},
        {"id": "check", "type": "condition", "data": {"expression": "true"}},
    )
    definition["edges"][-1]["sourceHandle"] = "true"
    definition["edges"].append({"source": "check", "target": "end", "sourceHandle": "false"})
    workflow_id = await client.create_workflow("complete-me", definition)
    await page.goto(flowsync.ui(f"workflows/{workflow_id}/edit"))
    await select(page, "check")
    field = page.get_by_role("combobox", name="Expression")
    names = page.get_by_role("listbox", name="Names")
    await field.fill("")
    await field.press_sequentially("st")
    await expect(field).to_have_attribute("aria-expanded", "true")
    await expect(names.get_by_role("option")).to_have_text([re.compile("^steps")])
    await field.press("Enter")
    await expect(field).to_have_value("steps.")
    # The steps upstream of `check`, in the definition's order.
    await expect(names.get_by_role("option")).to_have_text(
        [re.compile("^fetch"), re.compile("^shape")]
    )
    await field.press("ArrowDown")
    active = await field.get_attribute("aria-activedescendant")
    await expect(page.locator(f"#{active}")).to_contain_text("shape")
    await expect(page.locator(f"#{active}")).to_have_attribute("aria-selected", "true")
    await field.press("Tab")
    await expect(field).to_have_value("steps.shape.")
    await expect(names.get_by_role("option")).to_have_text(
        [re.compile("^output"), re.compile("^status")]
    )
    await field.press_sequentially("st")
    await field.press("Enter")
    await expect(field).to_have_value("steps.shape.status")
    await expect(field).to_have_attribute("aria-expanded", "false")
    await field.press_sequentially(' == "COMPLETED" && in')
    await expect(field).to_have_attribute("aria-expanded", "true")
    await field.press("Escape")  # closes the list, and only the list
    await expect(field).to_have_attribute("aria-expanded", "false")
    await expect(page.get_by_test_id("properties")).to_be_visible()
    await field.press("Control+Space")
    await field.press("Enter")
    await expect(field).to_have_value('steps.shape.status == "COMPLETED" && input')
    await field.press_sequentially(".ok")
    # A template of any JSON (a transform's output) is edited as JSON, its current value
    # shown, and completes inside {{ }} in its strings.
    await select(page, "shape")
    output = page.get_by_role("combobox", name="Output")
    await expect(output).to_have_value("2")
    await output.fill('{"n": "{{ ')
    await output.press_sequentially("st")
    await output.press("Enter")
    await expect(names.get_by_role("option")).to_have_text([re.compile("^fetch")])
    await output.press("Enter")
    await output.press_sequentially("o")
    await output.press("Tab")
    await output.press_sequentially(' }}"}')
    await expect(output).to_have_value('{"n": "{{ steps.fetch.output }}"}')
    await expect(page.get_by_test_id("editor-state")).to_contain_text("unsaved changes · valid")
    await page.get_by_role("button", name="Save version").click()
    await expect(page.get_by_test_id("editor-message")).to_contain_text("version 2")
    stored = await client("query($id: ID!) { workflow(id: $id) { definition } }", id=workflow_id)
    by_id = {n["id"]: n for n in stored["workflow"]["definition"]["nodes"]}
    assert by_id["check"]["data"]["expression"] == 'steps.shape.status == "COMPLETED" && input.ok'
    assert by_id["shape"]["data"]["output"] == {"n": "{{ steps.fetch.output }}"}
    assert console.errors == []


async def stored_position(client: Api, workflow_id: str, node_id: str) -> dict[str, int]:
    stored = await client("query($id: ID!) { workflow(id: $id) { definition } }", id=workflow_id)
    found = next(n for n in stored["workflow"]["definition"]["nodes"] if n["id"] == node_id)
    position: dict[str, int] = found["position"]
    return position


async def test_arrow_keys_move_the_selected_node_and_undo_puts_it_back(
    signed_in_page: Page, flowsync: FlowSync
) -> None:
    page = signed_in_page
    client = Api(flowsync.url, flowsync.key)
    workflow_id = await client.create_workflow(
        "move-me", chain({"id": "shape", "type": "transform", "data": {"output": 1}})
    )
    await page.goto(flowsync.ui(f"workflows/{workflow_id}/edit"))
    await select(page, "shape")
    before = await node(page, "shape").bounding_box()
    assert before
    # Held down (three key repeats, one release): one move, one undo step.
    await page.keyboard.down("ArrowRight")
    await page.keyboard.down("ArrowRight")
    await page.keyboard.down("ArrowRight")
    await page.keyboard.up("ArrowRight")
    await expect(page.get_by_test_id("editor-state")).to_contain_text("unsaved changes")
    moved = await node(page, "shape").bounding_box()
    assert moved and moved["x"] > before["x"] and moved["y"] == before["y"]
    await page.keyboard.press("Control+z")
    await expect(page.get_by_test_id("editor-state")).to_contain_text("· saved ·")
    assert await node(page, "shape").bounding_box() == before
    # With the focus off the node (here: on the properties panel), the keys still move
    # the selection; Shift moves it farther.
    await page.get_by_test_id("properties").get_by_role("heading").click()
    await page.keyboard.press("Shift+ArrowDown")
    await page.keyboard.press("ArrowLeft")
    await page.keyboard.press("Control+s")
    await expect(page.get_by_test_id("editor-message")).to_contain_text("version 2")
    assert await stored_position(client, workflow_id, "shape") == {"x": -5, "y": 130 + 20}
    # Two presses were two steps: undo takes back the last one only.
    await page.keyboard.press("Control+z")
    await page.keyboard.press("Control+s")
    await expect(page.get_by_test_id("editor-message")).to_contain_text("version 3")
    assert await stored_position(client, workflow_id, "shape") == {"x": 0, "y": 130 + 20}


async def test_every_listed_shortcut_does_what_the_list_says(
    signed_in_page: Page, flowsync: FlowSync, console: Console
) -> None:
    page = signed_in_page
    client = Api(flowsync.url, flowsync.key)
    definition = chain(
        {"id": "a", "type": "transform", "data": {"output": 1}},
        {"id": "b", "type": "condition", "data": {"expression": "true"}},
    )
    definition["edges"][-1]["sourceHandle"] = "true"
    definition["edges"].append({"source": "b", "target": "end", "sourceHandle": "false"})
    definition["nodes"][-1]["position"] = {"x": 500, "y": 120}  # for tidy-up to move
    workflow_id = await client.create_workflow("shortcuts", definition)
    await page.goto(flowsync.ui(f"workflows/{workflow_id}/edit"))
    await expect(node(page, "start")).to_be_visible()
    await page.get_by_text("Keyboard shortcuts").click()
    listed = await page.locator(".shortcuts dt").all_inner_texts()
    tried: set[str] = set()
    selected = page.locator(".react-flow__node.selected")
    state = page.get_by_test_id("editor-state")

    tried.add("Delete / Backspace")
    for key in ["Delete", "Backspace"]:
        await select(page, "a")
        await page.keyboard.press(key)
        await expect(node(page, "a")).to_have_count(0)
        await page.keyboard.press("Control+z")
        await expect(node(page, "a")).to_be_visible()

    tried.add("Arrow keys, Shift+arrow")  # more in the test above
    await select(page, "a")
    before = await node(page, "a").bounding_box()
    await page.keyboard.press("ArrowUp")
    await page.keyboard.press("Shift+ArrowRight")
    after = await node(page, "a").bounding_box()
    assert before and after and after["y"] < before["y"] and after["x"] > before["x"]

    tried.add("Ctrl+Z, Ctrl+Shift+Z")
    await page.keyboard.press("Control+z")
    await page.keyboard.press("Control+z")
    assert await node(page, "a").bounding_box() == before
    await page.keyboard.press("Control+Shift+z")
    await page.keyboard.press("Control+Shift+z")
    assert await node(page, "a").bounding_box() == after
    await page.keyboard.press("Control+z")
    await page.keyboard.press("Control+z")
    await expect(state).to_contain_text("· saved ·")

    tried.add("Ctrl+C, Ctrl+V, Ctrl+D")
    await select(page, "a")
    await page.keyboard.press("Control+c")
    await page.keyboard.press("Control+v")
    nodes = page.locator(".react-flow__node")
    await expect(nodes).to_have_count(5)
    await expect(selected).to_have_count(1)  # the pasted copy
    await expect(selected).not_to_have_attribute("data-id", "a")
    await page.keyboard.press("Control+d")
    await expect(nodes).to_have_count(6)
    await page.keyboard.press("Control+z")
    await page.keyboard.press("Control+z")
    await expect(nodes).to_have_count(4)
    await expect(state).to_contain_text("· saved ·")

    tried.add("Ctrl+A")
    await page.locator(".react-flow__pane").click()
    await page.keyboard.press("Control+a")
    await expect(selected).to_have_count(4)

    tried.add("Shift+drag, Shift+click")
    await page.locator(".react-flow__pane").click()
    await expect(selected).to_have_count(0)
    await node(page, "a").click()
    await node(page, "end").click(modifiers=["Shift"])
    await expect(selected).to_have_count(2)
    await page.locator(".react-flow__pane").click()
    start_box = await node(page, "start").bounding_box()
    a_box = await node(page, "a").bounding_box()
    assert start_box and a_box
    await page.keyboard.down("Shift")
    await page.mouse.move(start_box["x"] - 20, start_box["y"] - 20)
    await page.mouse.down()
    await page.mouse.move(
        a_box["x"] + a_box["width"] + 20, a_box["y"] + a_box["height"] + 20, steps=8
    )
    await page.mouse.up()
    await page.keyboard.up("Shift")
    await expect(selected).to_have_count(2)
    await expect(node(page, "start")).to_have_class(re.compile("selected"))
    await expect(node(page, "a")).to_have_class(re.compile("selected"))

    tried.add("F, L")
    await page.locator(".react-flow__pane").click()
    viewport = page.locator(".react-flow__viewport")
    fitted = await viewport.get_attribute("style")
    await page.get_by_role("button", name="Zoom Out").click()
    await expect(viewport).not_to_have_attribute("style", fitted or "")
    await page.keyboard.press("f")
    await expect(viewport).to_have_attribute("style", fitted or "")
    end_before = await node(page, "end").bounding_box()
    await page.keyboard.press("l")
    await expect(state).to_contain_text("unsaved changes")
    assert await node(page, "end").bounding_box() != end_before
    await page.keyboard.press("Control+z")
    await expect(state).to_contain_text("· saved ·")

    tried.add("Ctrl+S")
    await select(page, "a")
    await page.get_by_label("Label").fill("Shape it")
    await page.keyboard.press("Control+s")  # from inside the field
    await expect(page.get_by_test_id("editor-message")).to_contain_text("version 2")

    tried.add("Ctrl+Space")
    await select(page, "b")
    field = page.get_by_role("combobox", name="Expression")
    await field.fill("")
    await field.press("Control+Space")
    await expect(page.get_by_role("listbox", name="Names").get_by_role("option")).to_have_count(4)

    assert set(listed) == tried, "the shortcuts list and this test disagree"
    assert console.errors == []


DUPLICATE_IDS = """
() => {
  const seen = new Map();
  for (const el of document.querySelectorAll("[id]")) seen.set(el.id, (seen.get(el.id) || 0) + 1);
  return [...seen].filter(([, n]) => n > 1).map(([id]) => id);
}
"""


async def test_a_field_problem_is_attached_to_its_input(
    signed_in_page: Page, flowsync: FlowSync
) -> None:
    """A required field left empty: the server's "is required" shows under that field and
    is its input's description (aria-invalid, aria-describedby); every id on the page is
    unique, with several expression and template fields in the form."""
    page = signed_in_page
    client = Api(flowsync.url, flowsync.key)
    workflow_id = await client.create_workflow(
        "required",
        chain({"id": "call", "type": "action", "data": {"method": "GET", "url": "http://x/"}}),
    )
    await page.goto(flowsync.ui(f"workflows/{workflow_id}/edit"))
    await expect(page.get_by_test_id("editor-state")).to_contain_text("valid")
    await select(page, "call")
    url = page.get_by_label("Url")
    await url.fill("")
    await expect(page.get_by_test_id("editor-state")).to_contain_text("1 problem")
    problem = page.get_by_test_id("properties").get_by_test_id("field-problem")
    await expect(problem).to_have_text("Url is required")
    await expect(url).to_have_attribute("aria-invalid", "true")
    described = (await url.get_attribute("aria-describedby") or "").split()
    assert await problem.get_attribute("id") in described
    # Not also listed apart, unattached, at the top of the form.
    await expect(page.get_by_test_id("properties").locator("ul.problems")).to_have_count(0)
    assert await page.evaluate(DUPLICATE_IDS) == []
    # Fixed: the message goes, and the input is valid again.
    await url.fill("http://example.test/")
    await expect(page.get_by_test_id("editor-state")).to_contain_text("valid")
    await expect(problem).to_have_count(0)
    assert await url.get_attribute("aria-invalid") in (None, "false")


async def test_renaming_to_a_taken_id_says_so_and_keeps_the_typing(
    signed_in_page: Page, flowsync: FlowSync
) -> None:
    """A rename to another node's id is refused with a message naming the clash, shown as
    one types; what was typed stays (it was put back silently on blur) until it is fixed,
    and a free id is applied with Enter."""
    page = signed_in_page
    client = Api(flowsync.url, flowsync.key)
    workflow_id = await client.create_workflow(
        "renames",
        chain(
            {"id": "fetch", "type": "transform", "data": {"output": 1}},
            {"id": "store", "type": "transform", "data": {"output": 2}},
        ),
    )
    await page.goto(flowsync.ui(f"workflows/{workflow_id}/edit"))
    await expect(page.get_by_test_id("editor-state")).to_contain_text("valid")
    await select(page, "store")
    id_input = page.get_by_label("Id", exact=True)
    await id_input.fill("fetch")
    error = page.get_by_test_id("node-id-error")
    await expect(error).to_contain_text("Another node already has the id fetch")
    await expect(id_input).to_have_attribute("aria-invalid", "true")
    await expect(id_input).to_have_attribute("aria-describedby", "node-id-error")
    # Leaving the field keeps the typing and the message; both nodes keep their ids.
    await page.get_by_label("Label").focus()
    await expect(id_input).to_have_value("fetch")
    await expect(error).to_be_visible()
    await expect(node(page, "store")).to_have_count(1)
    await expect(node(page, "fetch")).to_have_count(1)
    # Fixed: applied with Enter, the message goes.
    await id_input.fill("store_orders")
    await expect(error).to_have_count(0)
    await id_input.press("Enter")
    await expect(node(page, "store_orders")).to_be_visible()
    await expect(node(page, "store")).to_have_count(0)
    await expect(page.get_by_test_id("rf__edge-fetch->store_orders")).to_have_count(1)
