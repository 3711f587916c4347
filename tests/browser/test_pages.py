"""The dashboard's pages in a real browser against real API and worker processes: what a
person watching runs relies on. Runs are started and checked through the GraphQL API,
as any client would; the page is only looked at and clicked."""

from __future__ import annotations

import asyncio
import re
from datetime import datetime

import httpx
import pytest
from playwright.async_api import BrowserContext, Dialog, Page, expect

from tests.browser.conftest import Console, FlowSync, csp_violations, sign_in
from tests.browser.ui import WATCH_NODES, Api, call, delays, short
from tests.support.target import running_target

pytestmark = pytest.mark.slow


def api(flowsync: FlowSync) -> Api:
    return Api(flowsync.url, flowsync.key)


async def failing_run(client: Api, target_url: str) -> str:
    """A run whose one action is answered 400 (not retried: a dead letter) until the
    target is made healthy."""
    return await client.start(
        await client.create_workflow("dead", call(f"{target_url}/until-healthy?code=400"))
    )


async def test_run_graph_turns_each_node_green_live(
    context: BrowserContext, page: Page, console: Console, flowsync: FlowSync
) -> None:
    client = api(flowsync)
    with running_target() as target:
        # d1 runs until the page is open (however slow the machine), then d2..d4 follow
        # while it watches.
        definition = delays(0.4, 0.4, 0.4, 0.4)
        definition["nodes"][1] = {
            "id": "d1",
            "type": "action",
            "data": {"method": "POST", "url": f"{target.url}/gate"},
        }
        workflow = await client.create_workflow("live", definition)
        run = await client.start(workflow)
        await context.add_init_script(WATCH_NODES)
        await sign_in(page, flowsync)
        await page.evaluate("window.__loadedOnce = true")
        await page.get_by_role("link", name="Runs").click()
        await page.get_by_role("link", name=short(run)).click()
        await expect(page.get_by_test_id("rf__node-d1")).to_have_attribute("data-status", "RUNNING")
        await expect(page.get_by_test_id("rf__node-d2")).to_have_attribute("data-status", "PENDING")
        target.gate.set()
        await expect(page.get_by_test_id("execution-status")).to_have_attribute(
            "data-status", "COMPLETED", timeout=15_000
        )
    for node in ["start", "d1", "d2", "d3", "d4", "end"]:
        await expect(page.get_by_test_id(f"rf__node-{node}")).to_have_attribute(
            "data-status", "COMPLETED"
        )
    # No reload: the page that was opened is the page that changed.
    assert await page.evaluate("window.__loadedOnce === true")
    # A node that changes status stays in view: it is not hidden to be measured again.
    assert await page.evaluate("window.__hiddenAgain") == []
    log: list[dict[str, object]] = await page.evaluate("window.__statusLog")
    finished = {
        s["nodeId"]: datetime.fromisoformat(s["finishedAt"]).timestamp() * 1000
        for s in (await client.execution(run))["steps"]
    }
    lags = []
    for node in ["d1", "d2", "d3", "d4"]:
        statuses = [e["status"] for e in log if e["id"] == node]
        # Each step was seen waiting or running before it was seen done: it changed on
        # the open page, live.
        assert statuses[-1] == "COMPLETED" and len(statuses) >= 2, (node, statuses)
        seen = next(e["at"] for e in log if e["id"] == node and e["status"] == "COMPLETED")
        lags.append(float(seen) - finished[node])  # type: ignore[arg-type]
    # How soon is a benchmark's to say (bench/dashboard_bench.py, part 3), not a test's.
    print(f"colour change after the step finished (ms): {[round(x) for x in lags]}")
    assert await csp_violations(page) == []
    assert console.errors == []


async def test_runs_list_gains_a_new_run_live(
    signed_in_page: Page, console: Console, flowsync: FlowSync
) -> None:
    page = signed_in_page
    client = api(flowsync)
    workflow = await client.create_workflow("listed", delays(0.2))
    first = await client.start(workflow)
    await page.get_by_role("link", name="Runs").click()
    await expect(page.locator(f'[data-run-id="{first}"]')).to_be_visible()
    await expect(page.get_by_test_id("link-state")).to_have_attribute("data-state", "connected")
    second = await client.start(workflow)
    row = page.locator(f'[data-run-id="{second}"]')
    await expect(row).to_be_visible()
    await expect(row).to_have_attribute("data-status", "COMPLETED", timeout=15_000)
    assert console.errors == []


async def test_runs_ticked_in_the_list_are_cancelled_together(
    signed_in_page: Page, flowsync: FlowSync
) -> None:
    page = signed_in_page
    client = api(flowsync)
    workflow = await client.create_workflow("ticked", delays(60))
    runs = [await client.start(workflow) for _ in range(3)]
    await page.get_by_role("link", name="Runs").click()
    for run in runs[:2]:
        await page.get_by_role("checkbox", name=f"Select run {short(run)}").check()
    await expect(page.get_by_text("2 selected")).to_be_visible()
    await page.get_by_role("checkbox", name=f"Select run {short(runs[1])}").uncheck()
    await page.get_by_role("checkbox", name=f"Select run {short(runs[2])}").check()
    asked: list[str] = []

    async def accept(dialog: Dialog) -> None:
        asked.append(dialog.message)
        await dialog.accept()

    page.once("dialog", accept)
    await page.get_by_role("button", name="Cancel selected").click()
    await expect(page.get_by_text("Cancelled 2 of 2.")).to_be_visible()
    assert asked == ["Cancel 2 runs? Their running steps are stopped."]
    statuses = [(await client.execution(run))["status"] for run in runs]
    assert statuses == ["CANCELLED", "RUNNING", "CANCELLED"]
    await expect(page.locator(f'[data-run-id="{runs[0]}"]')).to_have_attribute(
        "data-status", "CANCELLED"
    )
    await client("mutation($id: ID!) { cancelExecution(id: $id) { __typename } }", id=runs[1])


async def test_cancel_from_the_run_page_stops_the_run(
    signed_in_page: Page, flowsync: FlowSync
) -> None:
    page = signed_in_page
    client = api(flowsync)
    run = await client.start(await client.create_workflow("long", delays(60, 1)))
    await page.goto(flowsync.ui(f"runs/{run}"))
    await expect(page.get_by_test_id("rf__node-d1")).to_have_attribute("data-status", "WAITING")
    # Asked first: said no to, nothing is cancelled.
    page.once("dialog", lambda dialog: dialog.dismiss())
    await page.get_by_role("button", name="Cancel run").click()
    await expect(page.get_by_role("button", name="Cancel run")).to_be_enabled()
    assert (await client.execution(run))["status"] == "RUNNING"
    page.once("dialog", lambda dialog: dialog.accept())
    await page.get_by_role("button", name="Cancel run").click()
    await expect(page.get_by_test_id("execution-status")).to_have_attribute(
        "data-status", "CANCELLED"
    )
    stored = await client.execution(run)
    assert stored["status"] == "CANCELLED"
    assert {s["nodeId"]: s["status"] for s in stored["steps"]}["d1"] == "CANCELLED"
    await expect(page.get_by_role("button", name="Cancel run")).to_have_count(0)
    # A cancelled run says so (not "failed"), and offers a retry from where it stopped.
    await expect(page.get_by_test_id("run-outcome")).to_contain_text("Run cancelled: cancelled by")
    await expect(page.get_by_role("button", name="Retry from where it stopped")).to_be_visible()


async def test_a_failed_run_retried_from_its_page_completes(
    signed_in_page: Page, flowsync: FlowSync
) -> None:
    page = signed_in_page
    client = api(flowsync)
    with running_target() as target:
        # 400 (not retried) until the target is made healthy.
        workflow = await client.create_workflow(
            "flaky", call(f"{target.url}/until-healthy?code=400")
        )
        run = await client.start(workflow)
        await page.goto(flowsync.ui(f"runs/{run}"))
        await expect(page.get_by_test_id("execution-status")).to_have_attribute(
            "data-status", "FAILED", timeout=15_000
        )
        node = page.get_by_test_id("rf__node-call")
        await expect(node).to_have_attribute("data-status", "FAILED")
        await node.click()
        await expect(page.get_by_test_id("step-panel")).to_contain_text("400")
        target.healthy = True
        await page.get_by_role("button", name="Retry from failed step").click()
        await page.wait_for_url(lambda url: run not in url and "/ui/runs/" in url)
        retried = page.url.rsplit("/", 1)[-1].split("?")[0]
        await expect(page.get_by_test_id("execution-status")).to_have_attribute(
            "data-status", "COMPLETED", timeout=15_000
        )
        stored = await client.execution(retried)
        assert stored["status"] == "COMPLETED"
        assert stored["retriedFromId"] == run
        # The step that had completed was reused, not run again.
        assert len(target.requests_to("/until-healthy")) == 2


async def test_a_dead_letter_redriven_from_its_page_runs_again(
    signed_in_page: Page, flowsync: FlowSync
) -> None:
    page = signed_in_page
    client = api(flowsync)
    with running_target() as target:
        run = await failing_run(client, target.url)
        await client.wait_status(run, {"FAILED"}, timeout=15)
        target.healthy = True
        await page.get_by_role("link", name="Dead letters").click()
        row = page.locator("tr[data-dead-letter-id]").filter(has_text=short(run))
        await expect(row).to_have_attribute("data-redriven", "false")
        await row.get_by_role("button", name="Redrive").click()
        await expect(page.get_by_test_id("redrive-message")).to_have_text("Redrove 1 of 1.")
        # Redriven letters leave the default list, and show as redriven when asked for.
        await expect(row).to_have_count(0)
        await page.get_by_label("Show redriven ones too").check()
        await expect(row).to_have_attribute("data-redriven", "true")
        done = await client.wait_status(run, {"COMPLETED"}, timeout=15)
        assert {s["nodeId"]: s["status"] for s in done["steps"]}["call"] == "COMPLETED"
        assert len(target.requests_to("/until-healthy")) == 2


async def test_an_open_run_page_follows_its_run_when_redriven_elsewhere(
    signed_in_page: Page, flowsync: FlowSync
) -> None:
    page = signed_in_page
    client = api(flowsync)
    with running_target() as target:
        run = await failing_run(client, target.url)
        await page.goto(flowsync.ui(f"runs/{run}"))
        await page.evaluate("window.__loadedOnce = true")
        status = page.get_by_test_id("execution-status")
        await expect(status).to_have_attribute("data-status", "FAILED", timeout=15_000)
        await expect(page.get_by_test_id("rf__node-call")).to_have_attribute(
            "data-status", "FAILED"
        )
        # Redriven by someone else (another tab, a script): the open page sees it go on.
        target.healthy = True
        await client.redrive_dead_letter_of(run)
        await expect(status).to_have_attribute("data-status", "COMPLETED", timeout=15_000)
        await expect(page.get_by_test_id("rf__node-call")).to_have_attribute(
            "data-status", "COMPLETED"
        )
    assert await page.evaluate("window.__loadedOnce === true")  # no reload


async def test_a_revoked_key_is_sent_back_to_sign_in(
    signed_in_page: Page, flowsync: FlowSync
) -> None:
    page = signed_in_page
    client = api(flowsync)
    run = await client.start(await client.create_workflow("watched", delays(60)))
    await page.goto(flowsync.ui(f"runs/{run}"))
    await expect(page.get_by_test_id("link-state")).to_have_attribute("data-state", "connected")
    # Revoke the page's own key with another key of the same owner.
    other = (await flowsync.services.api_keys.create(flowsync.me, "admin")).secret
    keys = await Api(flowsync.url, other)("{ apiKeys(first: 50) { edges { node { id name } } } }")
    edges = keys["apiKeys"]["edges"]
    mine = next(e["node"]["id"] for e in edges if e["node"]["name"] == "browser tests")
    revoked = await Api(flowsync.url, other)(
        "mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }", id=mine
    )
    assert revoked["revokeApiKey"]["__typename"] == "ApiKeyPayload"
    # The open websocket is closed by the server; the page forgets the key and says why.
    await expect(page.get_by_test_id("signin")).to_be_visible(timeout=10_000)
    await expect(page.get_by_test_id("signin-reason")).to_be_visible()
    assert flowsync.key not in await page.evaluate("Object.values(sessionStorage)")


async def test_the_run_page_resyncs_after_a_lost_connection(
    signed_in_page: Page, flowsync: FlowSync
) -> None:
    page = signed_in_page
    client = api(flowsync)
    run = await client.start(await client.create_workflow("outage", delays(2, *[0.4] * 7)))
    await page.goto(flowsync.ui(f"runs/{run}"))
    await expect(page.get_by_test_id("link-state")).to_have_attribute("data-state", "connected")
    await expect(page.get_by_test_id("rf__node-d1")).to_have_attribute("data-status", "WAITING")
    # The API process dies with the page's websocket open; the workers go on meanwhile.
    await flowsync.kill_api()
    await expect(page.get_by_test_id("reconnecting")).to_be_visible()
    await asyncio.sleep(2)  # the run moves on with no API process up: workers need none
    await flowsync.start_api()
    await expect(page.get_by_test_id("execution-status")).to_have_attribute(
        "data-status", "COMPLETED", timeout=20_000
    )
    await expect(page.get_by_test_id("reconnecting")).to_have_count(0)
    stored = await client.execution(run)
    sequence = page.get_by_test_id("run-sequence")
    await expect(sequence).to_have_attribute("data-sequence", str(stored["lastSequence"]))
    for node in ["d1", "d4", "d8", "end"]:
        await expect(page.get_by_test_id(f"rf__node-{node}")).to_have_attribute(
            "data-status", "COMPLETED"
        )
    # The event log shows every event once, in order: no gap, no duplicate.
    await page.get_by_role("tab", name="Events").click()
    shown = await page.locator("tr[data-sequence]").evaluate_all(
        "rows => rows.map(r => Number(r.dataset.sequence))"
    )
    assert shown == list(range(1, stored["lastSequence"] + 1))


async def test_filters_take_every_keystroke_and_land_in_the_url(
    signed_in_page: Page, flowsync: FlowSync
) -> None:
    """A filter follows the URL, which the router updates a moment after the event: typing
    fast must lose no character, and a checkbox must change on its click."""
    page = signed_in_page
    client = api(flowsync)
    await client.create_workflow("invoice-sync", delays(0))
    await client.create_workflow("payroll", delays(0))
    await page.get_by_role("link", name="Workflows").click()
    search = page.get_by_role("searchbox", name="Search")
    await search.press_sequentially("invoice-sync", delay=0)
    await expect(search).to_have_value("invoice-sync")
    await expect(page).to_have_url(flowsync.ui("workflows?q=invoice-sync"))
    await expect(page.get_by_role("link", name="payroll")).to_have_count(0)
    await expect(page.get_by_role("link", name="invoice-sync")).to_be_visible()
    # Back on the list with no filter when the URL changes from elsewhere.
    await page.goto(flowsync.ui("workflows"))
    await expect(page.get_by_role("searchbox", name="Search")).to_have_value("")
    await page.get_by_role("link", name="Dead letters").click()
    box = page.get_by_label("Show redriven ones too")
    for _ in range(3):
        await box.check()
        await expect(page).to_have_url(flowsync.ui("dead-letters?redriven=1"))
        await box.uncheck()
        await expect(page).to_have_url(flowsync.ui("dead-letters"))


async def test_audit_filters_apply_as_one_types(signed_in_page: Page, flowsync: FlowSync) -> None:
    """The audit log's filters apply once typing pauses (they waited for Enter or a blur);
    Enter still applies at once."""
    page = signed_in_page
    client = api(flowsync)
    workflow = await client.create_workflow("audited", delays(0))
    await client.start(workflow)
    await page.get_by_role("link", name="Audit log").click()
    table = page.get_by_role("table", name="Audit log")
    actions = table.locator("tbody tr td:nth-child(3)")
    await expect(actions.filter(has_text="execution.started")).to_have_count(1)
    action = page.get_by_label("Action")
    await action.press_sequentially("workflow.created", delay=20)
    # No Enter, no blur: the focus stays in the field, and the filter applies.
    await expect(page).to_have_url(re.compile(r"action=workflow\.created"))
    await expect(actions).to_have_text(["workflow.created"])
    await expect(action).to_be_focused()
    await expect(action).to_have_value("workflow.created")
    # Enter applies at once.
    kind = page.get_by_label("Object type")
    await kind.fill("execution")
    await kind.press("Enter")
    await expect(page).to_have_url(re.compile(r"entityType=execution"))
    await expect(page.get_by_text("No audit entries match.")).to_be_visible()
    # Emptied, a filter goes from the URL too.
    await kind.fill("")
    await action.fill("")
    await expect(page).to_have_url(flowsync.ui("audit"))
    await expect(actions.filter(has_text="execution.started")).to_have_count(1)


async def test_runs_hidden_by_filters_are_not_called_none(
    signed_in_page: Page, flowsync: FlowSync
) -> None:
    """A filter that hides every run says so and offers to clear the filters (the list
    said "No runs yet" while there were runs)."""
    page = signed_in_page
    client = api(flowsync)
    run = await client.start(await client.create_workflow("finished", delays(0)))
    await client.wait_status(run, {"COMPLETED"}, timeout=15)
    await page.goto(flowsync.ui("runs?status=FAILED"))
    empty = page.get_by_test_id("runs-empty")
    await expect(empty).to_have_text("No run matches these filters.")
    await page.get_by_label("Status").select_option("CANCELLED")
    await expect(page).to_have_url(flowsync.ui("runs?status=CANCELLED"))
    await expect(empty).to_have_text("No run matches these filters.")
    await page.get_by_role("button", name="Clear filters").click()
    await expect(page).to_have_url(flowsync.ui("runs"))
    await expect(page.get_by_label("Status")).to_have_value("")
    await expect(page.locator(f'[data-run-id="{run}"]')).to_be_visible()


async def test_an_api_key_is_created_with_the_role_chosen(
    signed_in_page: Page, flowsync: FlowSync
) -> None:
    """The API keys page offers createApiKey's role (it offered none, so every key got
    its creator's role), and lists each key's role."""
    page = signed_in_page
    await page.get_by_role("link", name="API keys").click()
    await page.get_by_label("Name").fill("dashboard-viewer")
    role = page.get_by_label("Role")
    await expect(role).to_have_value("")  # the default: the creator's own role
    await role.select_option("VIEWER")
    await page.get_by_role("button", name="Create key").click()
    await expect(page.get_by_test_id("new-key")).to_contain_text("fsk_")
    secret = (await page.get_by_test_id("new-key").locator("code").text_content()) or ""
    keys = await api(flowsync)("{ apiKeys(first: 50) { edges { node { name role } } } }")
    roles = {e["node"]["name"]: e["node"]["role"] for e in keys["apiKeys"]["edges"]}
    assert roles["dashboard-viewer"] == "VIEWER"
    row = page.get_by_role("row").filter(has_text="dashboard-viewer")
    await expect(row.get_by_role("cell").nth(2)).to_have_text("viewer")
    # The key is a viewer's indeed: it reads, and may not create a workflow.
    viewer = Api(flowsync.url, secret)
    assert "workflows" in await viewer("{ workflows(first: 1) { edges { node { id } } } }")
    async with httpx.AsyncClient() as http:
        reply = await http.post(
            f"{flowsync.url}/graphql",
            json={
                "query": "mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) "
                "{ __typename } }",
                "variables": {"i": {"name": "nope", "definition": delays(0)}},
            },
            headers={"Authorization": f"Bearer {secret}"},
        )
    assert reply.json()["errors"][0]["extensions"]["code"] == "forbidden", reply.text
