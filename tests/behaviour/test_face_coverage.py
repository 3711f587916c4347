"""Every operation of the service layer is offered by both faces, GraphQL and REST, or
is marked here as one face's (or neither's) on purpose, with the reason.

`OPERATIONS` is the one table: each public method of a service class (and each public
function of a service module) maps to its GraphQL field (`Type.field`) and its REST
route (`METHOD /path`). The tests fail when a service operation is missing from the
table (a new one must be given its faces), when the table names one that no longer
exists, when a field or route it names does not exist, when a face it names never calls
the operation, or when an operation lacks a face without a reason."""

from __future__ import annotations

import importlib
import inspect
import pkgutil
import re
from dataclasses import dataclass
from pathlib import Path

import pytest
from graphql import GraphQLObjectType
from starlette.routing import Route

import flowsync.services
import rest_compat
from flowsync.config import Settings
from flowsync.schema.schema import build_schema

ROOT = Path(__file__).resolve().parents[2]


@dataclass(frozen=True)
class Faces:
    """Where an operation is offered: its GraphQL field and REST route (None: not
    offered there, and `reason` says why)."""

    graphql: str | None
    rest: str | None
    reason: str = ""


def both(graphql: str, rest: str) -> Faces:
    return Faces(graphql, rest)


def graphql_only(graphql: str, reason: str) -> Faces:
    return Faces(graphql, None, reason)


def rest_only(rest: str, reason: str) -> Faces:
    return Faces(None, rest, reason)


def neither(reason: str) -> Faces:
    return Faces(None, None, reason)


_LOADER = "a DataLoader's batch: "

OPERATIONS: dict[str, Faces] = {
    # -- workflows
    "WorkflowService.create": both("Mutation.createWorkflow", "POST /api/workflows"),
    "WorkflowService.get": both("Query.workflow", "GET /api/workflows/{id}"),
    "WorkflowService.list": both("Query.workflows", "GET /api/workflows"),
    "WorkflowService.update": both("Mutation.updateWorkflow", "PUT /api/workflows/{id}"),
    "WorkflowService.delete": both("Mutation.deleteWorkflow", "DELETE /api/workflows/{id}"),
    "WorkflowService.validate": both("Query.validateWorkflow", "POST /api/workflows/validate"),
    "WorkflowService.versions_page": both(
        "Query.workflowVersions", "GET /api/workflows/{id}/versions"
    ),
    "WorkflowService.get_definition": both(
        "Query.workflowVersion", "GET /api/workflows/{id}/versions/{version}"
    ),
    "WorkflowService.definitions": both("Workflow.definition", "GET /api/workflows"),
    "WorkflowService.versions_by_id": both("Execution.definition", "GET /api/executions/{id}"),
    "WorkflowService.get_many": graphql_only(
        "Trigger.workflow",
        _LOADER + "the workflows of a page of triggers or executions; REST answers "
        "workflowId and reads a workflow by id (WorkflowService.get).",
    ),
    "child_workflows.check_children": neither(
        "part of every save: WorkflowService.create and update call it (both faces)."
    ),
    "child_workflows.child_refs": neither(
        "a pure helper of check_children: the workflow nodes of a definition."
    ),
    "WorkflowService.versions": neither(
        "every version at once, for tests; both faces page them (versions_page)."
    ),
    # -- executions
    "ExecutionService.start": both("Mutation.startExecution", "POST /api/executions"),
    "ExecutionService.start_many": both(
        "Mutation.startExecutions", "POST /api/workflows/{id}/executions:batch"
    ),
    "ExecutionService.get": both("Query.execution", "GET /api/executions/{id}"),
    "ExecutionService.children": both(
        "Execution.childExecutions", "GET /api/executions/{id}/children"
    ),
    "ExecutionService.list": both("Query.executions", "GET /api/executions"),
    "ExecutionService.cancel": both("Mutation.cancelExecution", "POST /api/executions/{id}/cancel"),
    "ExecutionService.retry": both("Mutation.retryExecution", "POST /api/executions/{id}/retry"),
    "ExecutionService.signal_execution": both(
        "Mutation.signalExecution", "POST /api/executions/{id}/signals/{name}"
    ),
    "ExecutionService.snapshot": both("Subscription.executionUpdated", "GET /api/executions/{id}"),
    "ExecutionService.steps": graphql_only(
        "Execution.steps",
        _LOADER + "the steps of a page of runs; REST returns a run's steps inside "
        "GET /api/executions/{id} (ExecutionService.snapshot).",
    ),
    "ExecutionService.first_pages": graphql_only(
        "Workflow.executions",
        _LOADER + "a page of runs for each of a page of workflows; REST lists one "
        "workflow's with GET /api/executions?workflowId= (ExecutionService.list).",
    ),
    "ExecutionService.get_many": graphql_only(
        "DeadLetter.execution",
        _LOADER + "the runs of a page of dead letters or events; REST answers "
        "executionId and reads a run by id (ExecutionService.get).",
    ),
    "ExecutionService.steps_by_id": graphql_only(
        "ExecutionEvent.step",
        _LOADER + "an event's step; events are delivered on the live feed only.",
    ),
    "ExecutionService.timelines": graphql_only(
        "Execution.timeline",
        _LOADER + "a run's event log. REST has no event log: its /timeline is the steps' "
        "times (ObservabilityService.timeline), which GraphQL's Execution.steps carry.",
    ),
    "ExecutionService.events_after": graphql_only(
        "Subscription.executionEvents",
        "live events need a socket (websocket subscriptions); REST clients poll "
        "GET /api/executions/{id}.",
    ),
    "ExecutionService.watch_state": graphql_only(
        "Subscription.executionEvents",
        "where a live feed of every run starts; REST has no streaming.",
    ),
    "ExecutionService.events": neither(
        "a run's whole event log at once, for tests; GraphQL pages it (timelines)."
    ),
    "ExecutionService.start_in": neither(
        "a start inside a caller's own transaction: the cron scheduler's and a signed "
        "webhook delivery's (WebhookService.receive)."
    ),
    "ExecutionService.check_backpressure": neither(
        "part of every start (startExecution, retryExecution, webhook deliveries)."
    ),
    "ExecutionService.admitted": neither(
        "the exact admission rule of every start, applied inside a caller's transaction "
        "(a signed webhook delivery's, WebhookService.receive)."
    ),
    # -- triggers and webhooks
    "TriggerService.create": both("Mutation.createTrigger", "POST /api/triggers"),
    "TriggerService.get": both("Query.trigger", "GET /api/triggers/{id}"),
    "TriggerService.list": both("Query.triggers", "GET /api/triggers"),
    "TriggerService.update": both("Mutation.updateTrigger", "PUT /api/triggers/{id}"),
    "TriggerService.delete": both("Mutation.deleteTrigger", "DELETE /api/triggers/{id}"),
    "TriggerService.rotate_secret": both(
        "Mutation.rotateTriggerSecret", "POST /api/triggers/{id}/rotate-secret"
    ),
    "BackfillService.backfill": both(
        "Mutation.backfillTrigger", "POST /api/triggers/{id}/backfill"
    ),
    "TriggerService.scheduler_status": both("Query.schedulerStatus", "GET /api/scheduler/status"),
    "TriggerService.webhook_url": both("Trigger.webhookUrl", "GET /api/triggers/{id}"),
    "TriggerService.next_fire_times": both("Trigger.nextFireTimes", "GET /api/triggers/{id}"),
    "TriggerService.of_workflows": graphql_only(
        "Workflow.triggers",
        _LOADER + "the triggers of a page of workflows; REST lists one workflow's with "
        "GET /api/triggers?workflowId= (TriggerService.list).",
    ),
    "TriggerService.reveal_secret": neither(
        "no face hands a secret out again: it is shown once, when made and when rotated "
        "(a lost secret is rotated)."
    ),
    "WebhookService.receive": rest_only(
        "POST /api/webhooks/{triggerId}",
        "ingress for senders: a plain HTTP POST, signed over its raw bytes; there is no "
        "GraphQL form of a delivery.",
    ),
    # -- API keys and credentials
    "ApiKeyService.create": both("Mutation.createApiKey", "POST /api/api-keys"),
    "ApiKeyService.page": both("Query.apiKeys", "GET /api/api-keys"),
    "ApiKeyService.revoke": both("Mutation.revokeApiKey", "POST /api/api-keys/{id}/revoke"),
    "ApiKeyService.list": neither(
        "every key of an owner at once, for the CLI's `api-keys list`; the faces page."
    ),
    "ApiKeyService.ensure_owner": neither(
        "owners are made by the CLI and `flowsync dev`, and a JWT's on first use."
    ),
    "ApiKeyService.authenticate": neither("the Authenticator's key check."),
    "ApiKeyService.get_many": graphql_only(
        "Query.nodes",
        "Relay's node/nodes: objects by global id (the same UUID REST uses); REST reads "
        "each kind by its own route"
        " (GET /api/api-keys).",
    ),
    # -- secrets
    "SecretService.list": both("Query.secrets", "GET /api/secrets"),
    "SecretService.set": both("Mutation.setSecret", "PUT /api/secrets/{name}"),
    "SecretService.delete": both("Mutation.deleteSecret", "DELETE /api/secrets/{name}"),
    "SecretService.rotate_key": neither(
        "the CLI's `secrets rotate-key`: an operator's change of the key over every "
        "owner's secrets, not an owner's operation."
    ),
    "secrets.check_secrets_known": neither(
        "part of a workflow save (create and update): unknown secret names are refused then."
    ),
    "secrets.read_secret_values": neither(
        "the worker's read of the values a step renders into its request; no face reads one."
    ),
    "TriggerService.get_many": graphql_only(
        "Query.nodes",
        "Relay's node/nodes: objects by global id (the same UUID REST uses); REST reads "
        "each kind by its own route"
        " (GET /api/triggers/{id}).",
    ),
    "DeadLetterService.get_many": graphql_only(
        "Query.nodes",
        "Relay's node/nodes: objects by global id (the same UUID REST uses); REST reads "
        "each kind by its own route"
        " (GET /api/dead-letters/{id}).",
    ),
    "ObservabilityService.audit_entries": graphql_only(
        "Query.nodes",
        "Relay's node/nodes: objects by global id (the same UUID REST uses); REST reads "
        "each kind by its own route"
        " (GET /api/observability/audit).",
    ),
    "MemberService.list": both("Query.members", "GET /api/members"),
    "MemberService.add": both("Mutation.addMember", "POST /api/members"),
    "MemberService.set_role": both("Mutation.setMemberRole", "PUT /api/members/{subject:path}"),
    "MemberService.remove": both("Mutation.removeMember", "DELETE /api/members/{subject:path}"),
    "MemberService.role_of": neither("the Authenticator's role check for a JWT subject."),
    "Authenticator.authenticate": neither(
        "every request's credential check in both faces, not an operation."
    ),
    "Authenticator.guard": neither("a websocket's credential, re-checked while it is open."),
    "Authenticator.still_valid": neither("an operation's credential re-check on a websocket."),
    "Authenticator.refresh": neither("the credential watch's check of many keys at once."),
    "Authenticator.watch": neither("a websocket's or stream's credential, watched while open."),
    "Authenticator.close": neither("stops the credential watch when the process stops."),
    # -- dead letters, workers, the queue, observability
    "DeadLetterService.list": both("Query.deadLetters", "GET /api/dead-letters"),
    "DeadLetterService.get": both("Query.deadLetter", "GET /api/dead-letters/{id}"),
    "DeadLetterService.redrive": both(
        "Mutation.redriveDeadLetter", "POST /api/dead-letters/{id}/redrive"
    ),
    "DeadLetterService.queue_stats": neither(
        "part of ObservabilityService.queue (queueStats, /api/queue)."
    ),
    "WorkerService.list": both("Query.workers", "GET /api/workers"),
    "ObservabilityService.queue": both("Query.queueStats", "GET /api/queue"),
    "ObservabilityService.metrics": both("Query.metrics", "GET /api/observability/metrics"),
    "ObservabilityService.metrics_series": both(
        "Query.metricsSeries", "GET /api/observability/metrics/series"
    ),
    "ObservabilityService.audit_log": both("Query.auditLog", "GET /api/observability/audit"),
    "ObservabilityService.health": both("Query.health", "GET /api/health"),
    "ObservabilityService.timeline": rest_only(
        "GET /api/executions/{id}/timeline",
        "the steps' times with waitMs; GraphQL's Execution.steps carry the same times "
        "(queuedAt, startedAt, finishedAt, durationMs).",
    ),
    "ObservabilityService.of": neither("builds the service over the service layer."),
    # -- the editor's reads
    "node_types.node_types": both("Query.nodeTypes", "GET /api/node-types"),
    "expression_check.check_expression": both(
        "Query.checkExpression", "POST /api/expressions/check"
    ),
    # -- helpers that are no operation
    "triggers.webhook_url": neither("the rule behind TriggerService.webhook_url."),
    "backfill.fire_times": neither("the rule behind BackfillService.backfill's range."),
    "trigger_input.check_input": neither(
        "part of saving a trigger (createTrigger, updateTrigger and their routes)."
    ),
    "trigger_input.render_input": neither(
        "part of starting a run from a trigger (webhook deliveries, cron firings)."
    ),
    "webhooks.sign": neither("what a sender computes (the README, tests)."),
    "webhooks.sign_v2": neither("what a sender computes (the README, tests)."),
    "webhooks.v2_message": neither("what a v2 signature signs (the README, tests)."),
}


def service_operations() -> set[str]:
    """`Class.method` for every public method of the service classes (`*Service` and
    the Authenticator), and `module.function` for every public function a service
    module exports."""
    found: set[str] = set()
    for info in pkgutil.iter_modules(flowsync.services.__path__):
        module = importlib.import_module(f"flowsync.services.{info.name}")
        for name, cls in inspect.getmembers(module, inspect.isclass):
            if cls.__module__ != module.__name__:
                continue
            if not (name.endswith("Service") or name == "Authenticator"):
                continue
            for method, member in vars(cls).items():
                if method.startswith("_"):
                    continue
                if isinstance(member, staticmethod | classmethod) or inspect.isfunction(member):
                    found.add(f"{name}.{method}")
        for name in getattr(module, "__all__", ()):
            member = getattr(module, name)
            if callable(member) and not inspect.isclass(member):
                found.add(f"{info.name}.{name}")
    return found


def test_every_service_operation_is_in_the_table() -> None:
    found = service_operations()
    missing = sorted(found - set(OPERATIONS))
    stale = sorted(set(OPERATIONS) - found)
    assert not missing, f"service operations with no faces decided (add them here): {missing}"
    assert not stale, f"the table names operations the services no longer have: {stale}"


def test_an_operation_one_face_lacks_says_why() -> None:
    for operation, faces in OPERATIONS.items():
        if faces.graphql is None or faces.rest is None:
            assert len(faces.reason) > 20, f"{operation}: which face lacks it, and why?"
        else:
            assert not faces.reason, f"{operation} is in both faces: no reason needed"


def _schema_fields() -> set[str]:
    schema = build_schema(Settings(_env_file=None))._schema  # type: ignore[call-arg]
    return {
        f"{name}.{field}"
        for name, kind in schema.type_map.items()
        if isinstance(kind, GraphQLObjectType) and not name.startswith("__")
        for field in kind.fields
    }


def _rest_routes() -> set[str]:
    return {
        f"{method} {route.path}"
        for route in rest_compat.routes()
        if isinstance(route, Route)
        for method in route.methods or ()
    }


@pytest.mark.parametrize("face", ["graphql", "rest"])
def test_every_field_and_route_the_table_names_exists(face: str) -> None:
    known = _schema_fields() if face == "graphql" else _rest_routes()
    named = {getattr(f, face) for f in OPERATIONS.values()} - {None}
    assert not sorted(named - known), f"the {face} face has no {sorted(named - known)}"


def _sources(*folders: str, files: tuple[str, ...] = ()) -> str:
    paths = [p for folder in folders for p in sorted((ROOT / folder).glob("*.py"))]
    return "\n".join(p.read_text() for p in [*paths, *(ROOT / f for f in files)])


@pytest.mark.parametrize("face", ["graphql", "rest"])
def test_each_face_calls_the_operations_the_table_gives_it(face: str) -> None:
    # Where each face's code lives: GraphQL's resolvers, types and live feed (and the
    # app's guard, which authenticates its requests); REST's routes.
    if face == "graphql":
        source = _sources("flowsync/resolvers", "flowsync/schema", "flowsync/events",
                          files=("flowsync/app.py",))  # fmt: skip
    else:
        source = _sources("rest_compat")
    for operation, faces in OPERATIONS.items():
        if getattr(faces, face) is None:
            continue
        name = operation.split(".")[-1]
        assert re.search(rf"\b{name}\(", source), f"the {face} face never calls {operation}"
