"""Start a FlowSync run and follow it live, with gql over GraphQL.

    pip install "gql[httpx,websockets]" pydantic
    python follow_run.py --url http://127.0.0.1:8000 --key fsk_... [--workflow ID]
                         [--input '{"name": "Ada"}']

`--url` and `--key` default to FLOWSYNC_URL and FLOWSYNC_API_KEY. Without `--workflow` it
runs the newest workflow named "follow-run example", creating it first when there is none
(start → wait 1 s → greet → end).

Queries and mutations go over HTTP (POST /graphql), the subscription over a websocket
(graphql-transport-ws, the key in `connection_init`). Every result is validated into a
pydantic model, so the rest of the script works with typed objects, never with dicts.

It prints every event of the run in sequence order: those written before the subscription
began (the snapshot folds them in; they are read from the run's `timeline`), then a line
`following <id> live after sequence <n>`, then each event as it happens.

Exit status: 0 the run completed; 1 it failed or was cancelled; 2 FlowSync refused a
request (a wrong key, an invalid input) or could not be reached.
"""

from __future__ import annotations

import argparse
import asyncio
import json
import os
import sys
from datetime import datetime
from typing import Annotated, Literal

from gql import Client, gql
from gql.client import AsyncClientSession
from gql.transport.exceptions import TransportError, TransportQueryError
from gql.transport.httpx import HTTPXAsyncTransport
from gql.transport.websockets import WebsocketsTransport
from pydantic import BaseModel, ConfigDict, Field, JsonValue, TypeAdapter
from pydantic.alias_generators import to_camel

EXAMPLE_NAME = "follow-run example"
EXAMPLE_DEFINITION = {
    "nodes": [
        {"id": "start", "type": "start"},
        {"id": "wait", "type": "delay", "data": {"seconds": 1}},
        {
            "id": "greet",
            "type": "transform",
            "data": {"output": {"greeting": "Hello, {{ input.name }}!"}},
        },
        {
            "id": "end",
            "type": "end",
            "data": {"output": {"greeting": "{{ steps.greet.output.greeting }}"}},
        },
    ],
    "edges": [
        {"source": "start", "target": "wait"},
        {"source": "wait", "target": "greet"},
        {"source": "greet", "target": "end"},
    ],
}

# --- the operations ---------------------------------------------------------------------

EVENT_FIELDS = "sequence kind status at nodeId attempt"
REFUSAL_FIELDS = """
    ... on UserError { code message }
    ... on ValidationError { problems { path message } }"""

FIND_WORKFLOWS = gql("query FindWorkflows { workflows(first: 100) { edges { node { id name } } } }")
CREATE_WORKFLOW = gql(f"""
mutation CreateWorkflow($input: CreateWorkflowInput!) {{
  createWorkflow(input: $input) {{
    __typename
    ... on WorkflowPayload {{ workflow {{ id name }} }}
    {REFUSAL_FIELDS}
  }}
}}""")
START_EXECUTION = gql(f"""
mutation StartExecution($workflowId: ID!, $input: JSON) {{
  startExecution(workflowId: $workflowId, input: $input) {{
    __typename
    ... on StartExecutionPayload {{ execution {{ id status }} }}
    {REFUSAL_FIELDS}
    ... on BackpressureError {{ retryAfter }}
  }}
}}""")
FOLLOW = gql(f"""
subscription Follow($id: ID!) {{ executionUpdated(id: $id) {{ {EVENT_FIELDS} }} }}""")
HISTORY = gql(f"""
query History($id: ID!) {{ execution(id: $id) {{ timeline {{ {EVENT_FIELDS} }} }} }}""")
OUTCOME = gql("""
query Outcome($id: ID!) { execution(id: $id) { id status output error } }""")

# --- their results, typed ---------------------------------------------------------------


class Model(BaseModel):
    """GraphQL's camelCase fields as snake_case attributes; unknown fields are ignored."""

    model_config = ConfigDict(alias_generator=to_camel, populate_by_name=True, frozen=True)


class Workflow(Model):
    id: str
    name: str


class Problem(Model):
    path: str
    message: str


class Refusal(Model):
    """Any of a mutation's expected failures (the `UserError` types of its union)."""

    typename: Literal["ValidationError", "NotFoundError", "ConflictError", "BackpressureError"] = (
        Field(alias="__typename")
    )
    code: str
    message: str
    problems: list[Problem] = []
    retry_after: float | None = None

    def __str__(self) -> str:
        details = "; ".join(f"{p.path}: {p.message}" for p in self.problems)
        wait = f" (retry after {self.retry_after} s)" if self.retry_after is not None else ""
        return f"{self.code}: {self.message}{wait}" + (f" [{details}]" if details else "")


class WorkflowPayload(Model):
    typename: Literal["WorkflowPayload"] = Field(alias="__typename")
    workflow: Workflow


class StartedExecution(Model):
    id: str
    status: str


class StartExecutionPayload(Model):
    typename: Literal["StartExecutionPayload"] = Field(alias="__typename")
    execution: StartedExecution


class Event(Model):
    sequence: int
    kind: str
    status: str
    at: datetime
    node_id: str | None = None
    attempt: int | None = None


class Timeline(Model):
    timeline: list[Event]


class Outcome(Model):
    id: str
    status: Literal["PENDING", "RUNNING", "COMPLETED", "FAILED", "CANCELLED"]
    output: JsonValue = None
    error: JsonValue = None


CreateWorkflowResult = TypeAdapter(
    Annotated[WorkflowPayload | Refusal, Field(discriminator="typename")]
)
StartExecutionResult = TypeAdapter(
    Annotated[StartExecutionPayload | Refusal, Field(discriminator="typename")]
)
Workflows = TypeAdapter(list[Workflow])

# --- the run ----------------------------------------------------------------------------


class Refused(Exception):
    """FlowSync answered, but not with what was asked: the message says why."""


def show(event: Event) -> None:
    when = event.at.strftime("%H:%M:%S.%f")[:-3]
    node = event.node_id or ""
    print(f"{event.sequence:>5}  {when}  {event.kind:<20} {event.status:<10} {node}".rstrip())


async def pick_workflow(session: AsyncClientSession, workflow_id: str | None) -> str:
    """The workflow to run: the one asked for, else the example's (created if missing)."""
    if workflow_id is not None:
        return workflow_id
    found = await session.execute(FIND_WORKFLOWS)
    for workflow in Workflows.validate_python([e["node"] for e in found["workflows"]["edges"]]):
        if workflow.name == EXAMPLE_NAME:  # the newest comes first
            print(f"workflow {workflow.id} ({workflow.name})")
            return workflow.id
    reply = await session.execute(
        CREATE_WORKFLOW,
        variable_values={"input": {"name": EXAMPLE_NAME, "definition": EXAMPLE_DEFINITION}},
    )
    created = CreateWorkflowResult.validate_python(reply["createWorkflow"])
    if isinstance(created, Refusal):
        raise Refused(f"FlowSync did not create the workflow: {created}")
    print(f"workflow {created.workflow.id} ({created.workflow.name}, created)")
    return created.workflow.id


async def follow(base: str, key: str, workflow_id: str | None, run_input: JsonValue) -> int:
    """Start a run, print its events until it ends; the exit status."""
    headers = {"Authorization": f"Bearer {key}"}
    http = Client(transport=HTTPXAsyncTransport(url=f"{base}/graphql", headers=headers))
    ws = Client(
        transport=WebsocketsTransport(
            url="ws" + base.removeprefix("http") + "/graphql", init_payload=headers
        )
    )
    async with http as session:
        wid = await pick_workflow(session, workflow_id)
        reply = await session.execute(
            START_EXECUTION, variable_values={"workflowId": wid, "input": run_input}
        )
        started = StartExecutionResult.validate_python(reply["startExecution"])
        if isinstance(started, Refusal):
            raise Refused(f"FlowSync did not start the run: {started}")
        eid = started.execution.id
        print(f"execution {eid} started")

        async with ws as live:
            async for message in live.subscribe(FOLLOW, variable_values={"id": eid}):
                event = Event.model_validate(message["executionUpdated"])
                if event.kind != "snapshot":
                    show(event)
                    continue
                # The snapshot stands for every event up to its sequence: print those from
                # the run's timeline (its first 1000 events), then what comes after, live.
                history = await session.execute(HISTORY, variable_values={"id": eid})
                for past in Timeline.model_validate(history["execution"]).timeline:
                    if past.sequence <= event.sequence:
                        show(past)
                print(f"following {eid} live after sequence {event.sequence}")
        # executionUpdated completes after the run's final event.
        reply = await session.execute(OUTCOME, variable_values={"id": eid})
    outcome = Outcome.model_validate(reply["execution"])
    if outcome.status == "COMPLETED":
        print(f"execution {eid} COMPLETED, output: {json.dumps(outcome.output)}")
        return 0
    print(f"execution {eid} {outcome.status}: {json.dumps(outcome.error)}", file=sys.stderr)
    return 1


def explain(error: TransportQueryError) -> str:
    """A GraphQL error as one line, naming a refused key as such."""
    first = (error.errors or [{}])[0]
    message = str(first.get("message", error))
    code = (first.get("extensions") or {}).get("code")
    if code == "unauthenticated":
        return f"FlowSync refused the API key: {message}"
    return f"FlowSync answered with an error{f' ({code})' if code else ''}: {message}"


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description="Start a FlowSync run and follow it live.")
    parser.add_argument("--url", default=os.environ.get("FLOWSYNC_URL"), help="FlowSync's URL")
    parser.add_argument("--key", default=os.environ.get("FLOWSYNC_API_KEY"), help="an API key")
    parser.add_argument("--workflow", help="the id of the workflow to run")
    parser.add_argument(
        "--input", type=json.loads, default={"name": "FlowSync"}, help="the run's input (JSON)"
    )
    args = parser.parse_args(argv)
    if not args.url or not args.key:
        parser.error("give --url and --key (or FLOWSYNC_URL and FLOWSYNC_API_KEY)")
    base = args.url.rstrip("/").removesuffix("/graphql")
    sys.stdout.reconfigure(line_buffering=True)  # type: ignore[union-attr]
    try:
        return asyncio.run(follow(base, args.key, args.workflow, args.input))
    except Refused as refused:
        print(refused, file=sys.stderr)
    except TransportQueryError as error:
        print(explain(error), file=sys.stderr)
    except (TransportError, OSError) as error:
        print(f"FlowSync at {base} could not be reached: {error!r}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
