"""What the browser tests do besides the browser: call FlowSync's GraphQL API as a client
would, build small workflows, and watch a page's run graph from inside the page."""

from __future__ import annotations

import asyncio
from typing import Any

import httpx

from tests.support.target import running_target


class Api:
    """A GraphQL client with one owner's key (HTTP, as any integration would call it)."""

    def __init__(self, base_url: str, key: str) -> None:
        self.base_url = base_url
        self.key = key

    async def __call__(self, query: str, **variables: Any) -> dict[str, Any]:
        async with httpx.AsyncClient(timeout=30) as client:
            reply = await client.post(
                f"{self.base_url}/graphql",
                json={"query": query, "variables": variables},
                headers={"Authorization": f"Bearer {self.key}"},
            )
        body = reply.json()
        assert reply.status_code == 200 and "errors" not in body, (reply.status_code, body)
        data: dict[str, Any] = body["data"]
        return data

    async def create_workflow(self, name: str, definition: dict[str, Any]) -> str:
        reply = await self(
            """mutation($i: CreateWorkflowInput!) { createWorkflow(input: $i) {
                 __typename ... on WorkflowPayload { workflow { id } }
                 ... on ValidationError { problems { path message } } } }""",
            i={"name": name, "definition": definition},
        )
        data = reply["createWorkflow"]
        assert data["__typename"] == "WorkflowPayload", data
        return str(data["workflow"]["id"])

    async def start(self, workflow_id: str, input: Any = None) -> str:
        reply = await self(
            """mutation($w: ID!, $in: JSON) { startExecution(workflowId: $w, input: $in) {
                 __typename ... on StartExecutionPayload { execution { id } } } }""",
            w=workflow_id,
            **{"in": input},
        )
        data = reply["startExecution"]
        assert data["__typename"] == "StartExecutionPayload", data
        return str(data["execution"]["id"])

    async def redrive_dead_letter_of(self, execution_id: str) -> None:
        """Redrive the execution's one dead letter."""
        letters = await self(
            "query($e: ID) { deadLetters(executionId: $e) { edges { node { id } } } }",
            e=execution_id,
        )
        (edge,) = letters["deadLetters"]["edges"]
        await self(
            "mutation($id: ID!) { redriveDeadLetter(id: $id) { __typename } }",
            id=edge["node"]["id"],
        )

    async def execution(self, execution_id: str) -> dict[str, Any]:
        reply = await self(
            """query($id: ID!) { execution(id: $id) {
                 id status lastSequence retriedFromId
                 steps { nodeId status attempt finishedAt } } }""",
            id=execution_id,
        )
        data: dict[str, Any] | None = reply["execution"]
        assert data is not None, f"no execution {execution_id}"
        return data

    async def wait_status(
        self, execution_id: str, statuses: set[str], timeout: float
    ) -> dict[str, Any]:
        """Poll until the run is in one of `statuses` (bounded by `timeout`)."""
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        while True:
            run = await self.execution(execution_id)
            if run["status"] in statuses:
                return run
            assert loop.time() < deadline, f"run {execution_id} still {run['status']}"
            await asyncio.sleep(0.1)


def short(run: object) -> str:
    """The name the dashboard shows an id by: its last 8 hex digits (web/src/lib/ids.ts).
    Run ids are UUID v7, whose first digits are the time they were made."""
    return str(run)[-8:]


def delays(*seconds: float) -> dict[str, Any]:
    """start → d1 → d2 → … → end, each a delay step of the given seconds."""
    nodes: list[dict[str, Any]] = [{"id": "start", "type": "start"}]
    edges: list[dict[str, Any]] = []
    prev = "start"
    for i, s in enumerate(seconds, 1):
        nodes.append({"id": f"d{i}", "type": "delay", "data": {"seconds": s}})
        edges.append({"source": prev, "target": f"d{i}"})
        prev = f"d{i}"
    nodes.append({"id": "end", "type": "end"})
    edges.append({"source": prev, "target": "end"})
    return {"nodes": nodes, "edges": edges}


def call(url: str) -> dict[str, Any]:
    """start → prepare → call (one attempt) → end: `call` fails for good on a 4xx."""
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {"id": "prepare", "type": "transform", "data": {"output": {"ok": True}}},
            {"id": "call", "type": "action", "data": {"method": "POST", "url": url}},
            {"id": "end", "type": "end"},
        ],
        "edges": [
            {"source": "start", "target": "prepare"},
            {"source": "prepare", "target": "call"},
            {"source": "call", "target": "end"},
        ],
    }


# Installed before the app loads: records, for every run-graph node, each status it shows
# and when (epoch ms), and counts page loads, so a test can tell a live change from a reload.
WATCH_NODES = """
(() => {
  window.__statusLog = window.__statusLog || [];
  // Nodes hidden again after they were shown (React Flow hides a node it must measure).
  window.__hiddenAgain = window.__hiddenAgain || [];
  const seen = new Map();
  const shown = new Set();
  const record = (el) => {
    const id = el.getAttribute('data-id');
    const status = el.getAttribute('data-status');
    if (id && el.style.visibility === 'hidden') {
      if (shown.has(id)) window.__hiddenAgain.push({ id, status });
    } else if (id) {
      shown.add(id);
    }
    if (!id || !status || seen.get(id) === status) return;
    seen.set(id, status);
    window.__statusLog.push({ id, status, at: performance.timeOrigin + performance.now() });
  };
  const scan = (root) => {
    if (root.nodeType !== 1) return;
    if (root.matches('.react-flow__node[data-status]')) record(root);
    root.querySelectorAll?.('.react-flow__node[data-status]').forEach(record);
  };
  new MutationObserver((mutations) => {
    for (const m of mutations) {
      if (m.type === 'attributes') scan(m.target);
      else m.addedNodes.forEach(scan);
    }
  }).observe(document, {
    subtree: true, childList: true, attributes: true, attributeFilter: ['data-status', 'style'],
  });
})();
"""


async def sample_data(url: str, key: str, name: str = "nightly-report") -> dict[str, str]:
    """What every page shows something of: a workflow `name` with a finished run, a
    failed run (and so a dead letter) of another workflow, and a webhook trigger."""
    client = Api(url, key)
    ok = await client.create_workflow(name, delays(0.1, 0.1))
    done = await client.start(ok)
    with running_target() as target:
        bad = await client.create_workflow("push-crm", call(f"{target.url}/status/400"))
        failed = await client.start(bad)
        await client.wait_status(failed, {"FAILED"}, timeout=15)
    await client.wait_status(done, {"COMPLETED"}, timeout=15)
    await client(
        "mutation($w: ID!) { createTrigger(workflowId: $w, type: WEBHOOK) { __typename } }", w=ok
    )
    return {"workflow": ok, "done": done, "failed": failed}
