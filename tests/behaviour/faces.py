"""One client abstraction over both API faces, so that one behaviour suite runs the same
operations through REST and GraphQL and expects the same results and errors.

Results are plain dicts with the fields both faces share (GraphQL's names); an expected
failure is `FaceError(code, paths)` whichever face reported it (an envelope for REST, a
typed result or an error's `extensions` for GraphQL); a missing object read is `None`.
"""

from __future__ import annotations

import abc
from dataclasses import dataclass, field
from typing import Any

import httpx

WORKFLOW_FIELDS = ("id", "name", "description", "version", "definition", "createdAt", "updatedAt")
EXECUTION_FIELDS = (
    "id", "workflowId", "workflowVersion", "status", "input", "output", "error", "createdAt",
    "startedAt", "finishedAt", "durationMs", "lastSequence", "retriedFromId", "traceId",
)  # fmt: skip
API_KEY_FIELDS = ("id", "name", "prefix", "createdAt", "revokedAt", "role")
SECRET_FIELDS = ("name", "createdAt", "updatedAt", "setBy")
DEAD_LETTER_FIELDS = (
    "id", "executionId", "nodeId", "attempts", "error", "payload", "createdAt", "redrivenAt",
)  # fmt: skip
WORKER_FIELDS = (
    "id", "hostname", "pid", "concurrency", "running", "heartbeatSeconds", "startedAt",
    "lastHeartbeatAt", "alive",
)  # fmt: skip
NODE_TYPE_FIELDS = (
    "type", "label", "description", "dataSchema", "hasTarget", "hasSource", "sourceHandles",
    "optionalHandles", "minOutgoing", "maxOutgoing", "minIncoming",
)  # fmt: skip
VERSION_FIELDS = ("id", "version", "createdAt", "message", "author")
AUDIT_FIELDS = ("id", "actor", "action", "entityType", "entityId", "data", "at")
SNAPSHOT_SELECTION = (
    "windowSeconds generatedAt sampled executionsTotal executionsByStatus { status count }"
    " stepsCompletedLastMinute stepLatency { nodeType count p50Ms p95Ms p99Ms maxMs"
    " waitP50Ms waitP95Ms waitP99Ms }"
)
SCHEDULER_SELECTION = (
    "running schedulers { id startedAt lastTickAt stalled } enabledTriggers dueTriggers"
    " nextRunAt lastFirings { triggerId workflowId scheduledAt firedAt executionId }"
    " checkedAt"
)
STEP_FIELDS = (
    "id", "nodeId", "nodeType", "status", "attempt", "input", "output", "error", "queuedAt",
    "startedAt", "finishedAt", "durationMs",
)  # fmt: skip


@dataclass
class FaceError(Exception):
    """An expected failure: its stable code, the JSON paths its details name, and its
    message."""

    code: str
    paths: set[str] = field(default_factory=set)
    message: str = ""
    current_version: int | None = None


@dataclass(frozen=True)
class Listing:
    ids: list[str]
    next_cursor: str | None


def pick(row: dict[str, Any], names: tuple[str, ...]) -> dict[str, Any]:
    return {name: row[name] for name in names}


def workflow_of(row: dict[str, Any]) -> dict[str, Any]:
    return pick(row, WORKFLOW_FIELDS)


def execution_of(row: dict[str, Any]) -> dict[str, Any]:
    out = pick(row, EXECUTION_FIELDS)
    if "definition" in row:
        out["definition"] = row["definition"]
    if "steps" in row:
        out["steps"] = [pick(s, STEP_FIELDS) for s in row["steps"]]
    return out


class Face(abc.ABC):
    """The operations both faces offer."""

    name: str

    def __init__(self, http: httpx.AsyncClient) -> None:
        self.http = http

    @abc.abstractmethod
    async def create_workflow(
        self, name: str, definition: Any, description: str | None = None, **fields: Any
    ) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def get_workflow(self, workflow_id: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    async def list_workflows(self, limit: int, cursor: str | None = None) -> Listing: ...

    @abc.abstractmethod
    async def update_workflow(self, workflow_id: str, **fields: Any) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def delete_workflow(self, workflow_id: str) -> None: ...

    @abc.abstractmethod
    async def start_execution(
        self, workflow_id: str, input: Any = None, key: str | None = None
    ) -> tuple[dict[str, Any], bool]: ...

    @abc.abstractmethod
    async def start_executions(
        self, workflow_id: str, items: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], bool]]:
        """A batch start: each item `{"input"?, "idempotencyKey"?}`; (execution, created)
        per item, in order."""

    @abc.abstractmethod
    async def get_execution(self, execution_id: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    async def list_executions(
        self, *, workflow_id: str | None = None, status: str | None = None, limit: int = 50,
        trigger_id: str | None = None,
    ) -> Listing: ...  # fmt: skip

    @abc.abstractmethod
    async def audit_log(
        self, *, actor: str | None = None, limit: int = 50, since: str | None = None,
        until: str | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        """A page of audit entries (AUDIT_FIELDS), newest first, from `since` (inclusive)
        to `until` (exclusive), ISO-8601 times as sent."""

    @abc.abstractmethod
    async def cancel_execution(self, execution_id: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def retry_execution(self, execution_id: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def signal_execution(
        self, execution_id: str, name: str, payload: Any = None
    ) -> tuple[dict[str, Any], str | None]:
        """The execution and the node id of the step that took the signal (None: kept)."""

    @abc.abstractmethod
    async def create_api_key(self, name: str) -> tuple[dict[str, Any], str]:
        """The key and its secret."""

    @abc.abstractmethod
    async def list_api_keys(self, limit: int = 50, cursor: str | None = None) -> Listing: ...

    @abc.abstractmethod
    async def revoke_api_key(self, key_id: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def set_secret(self, name: str, value: Any) -> dict[str, Any]:
        """The secret as listed (never its value)."""

    @abc.abstractmethod
    async def list_secrets(self) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def delete_secret(self, name: str) -> None: ...

    @abc.abstractmethod
    async def list_dead_letters(
        self, *, execution_id: str | None = None, include_redriven: bool = False,
        limit: int = 50, cursor: str | None = None,
    ) -> Listing: ...  # fmt: skip

    @abc.abstractmethod
    async def get_dead_letter(self, letter_id: str) -> dict[str, Any] | None: ...

    @abc.abstractmethod
    async def redrive_dead_letter(self, letter_id: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def list_workers(self) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def metrics_series(
        self, window: int | None = None, bucket: int | None = None
    ) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def validate_workflow(self, definition: Any) -> dict[str, Any]:
        """`{valid, problems: [{path, message, nodeId, edge}]}`."""

    @abc.abstractmethod
    async def metrics_snapshot(self, window: int | None = None) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def scheduler_status(self) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def node_types(self) -> list[dict[str, Any]]: ...

    @abc.abstractmethod
    async def check_expression(self, expression: str, kind: str) -> dict[str, Any]: ...

    @abc.abstractmethod
    async def list_versions(
        self, workflow_id: str, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None] | None:
        """A page of versions without definitions, or None for a missing workflow."""

    @abc.abstractmethod
    async def get_version(self, workflow_id: str, version: int) -> dict[str, Any] | None:
        """One version with its definition, or None."""


class RestFace(Face):
    """The REST face: routes, statuses and the error envelope."""

    name = "rest"

    @staticmethod
    def _check(reply: httpx.Response, *ok: int) -> Any:
        if reply.status_code in ok:
            return reply.json() if reply.content else None
        error = reply.json()["error"]
        raise FaceError(
            error["code"], {d["path"] for d in error["details"]}, error["message"],
            error.get("currentVersion"),
        )  # fmt: skip

    async def create_workflow(
        self, name: str, definition: Any, description: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        body = {"name": name, "definition": definition, "description": description, **fields}
        return workflow_of(self._check(await self.http.post("/api/workflows", json=body), 201))

    async def get_workflow(self, workflow_id: str) -> dict[str, Any] | None:
        reply = await self.http.get(f"/api/workflows/{workflow_id}")
        if reply.status_code == 404:
            return None
        return workflow_of(self._check(reply, 200))

    async def list_workflows(self, limit: int, cursor: str | None = None) -> Listing:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        body = self._check(await self.http.get("/api/workflows", params=params), 200)
        return Listing([w["id"] for w in body["items"]], body["nextCursor"])

    async def update_workflow(self, workflow_id: str, **fields: Any) -> dict[str, Any]:
        reply = await self.http.put(f"/api/workflows/{workflow_id}", json=fields)
        return workflow_of(self._check(reply, 200))

    async def delete_workflow(self, workflow_id: str) -> None:
        self._check(await self.http.delete(f"/api/workflows/{workflow_id}"), 204)

    async def start_execution(
        self, workflow_id: str, input: Any = None, key: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        headers = {"Idempotency-Key": key} if key is not None else {}
        reply = await self.http.post(
            "/api/executions", json={"workflowId": workflow_id, "input": input}, headers=headers
        )
        return execution_of(self._check(reply, 200, 201)), reply.status_code == 201

    async def start_executions(
        self, workflow_id: str, items: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], bool]]:
        reply = await self.http.post(
            f"/api/workflows/{workflow_id}/executions:batch", json={"inputs": items}
        )
        results = self._check(reply, 200, 201)["results"]
        created = [bool(r["created"]) for r in results]
        assert reply.status_code == (201 if any(created) else 200)
        assert (reply.headers.get("Idempotent-Replayed") == "true") == (not any(created))
        return [(execution_of(r["execution"]), c) for r, c in zip(results, created, strict=True)]

    async def get_execution(self, execution_id: str) -> dict[str, Any] | None:
        reply = await self.http.get(f"/api/executions/{execution_id}")
        if reply.status_code == 404:
            return None
        return execution_of(self._check(reply, 200))

    async def list_executions(
        self, *, workflow_id: str | None = None, status: str | None = None, limit: int = 50,
        trigger_id: str | None = None,
    ) -> Listing:  # fmt: skip
        params: dict[str, Any] = {"limit": limit}
        if workflow_id is not None:
            params["workflowId"] = workflow_id
        if status is not None:
            params["status"] = status
        if trigger_id is not None:
            params["triggerId"] = trigger_id
        body = self._check(await self.http.get("/api/executions", params=params), 200)
        return Listing([e["id"] for e in body["items"]], body["nextCursor"])

    async def audit_log(
        self, *, actor: str | None = None, limit: int = 50, since: str | None = None,
        until: str | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        given = {"actor": actor, "since": since, "until": until}
        params: dict[str, Any] = {"limit": limit, **{k: v for k, v in given.items() if v}}
        body = self._check(await self.http.get("/api/observability/audit", params=params), 200)
        assert all(set(e) == set(AUDIT_FIELDS) for e in body["items"]), body
        items: list[dict[str, Any]] = body["items"]
        return items

    async def cancel_execution(self, execution_id: str) -> dict[str, Any]:
        reply = await self.http.post(f"/api/executions/{execution_id}/cancel")
        return execution_of(self._check(reply, 200))

    async def retry_execution(self, execution_id: str) -> dict[str, Any]:
        reply = await self.http.post(f"/api/executions/{execution_id}/retry")
        return execution_of(self._check(reply, 201))

    async def signal_execution(
        self, execution_id: str, name: str, payload: Any = None
    ) -> tuple[dict[str, Any], str | None]:
        body = {} if payload is None else {"payload": payload}
        reply = await self.http.post(f"/api/executions/{execution_id}/signals/{name}", json=body)
        found = self._check(reply, 200)
        return execution_of(found["execution"]), found["takenBy"]

    async def create_api_key(self, name: str) -> tuple[dict[str, Any], str]:
        body = self._check(await self.http.post("/api/api-keys", json={"name": name}), 201)
        return pick(body, API_KEY_FIELDS), body["secret"]

    async def list_api_keys(self, limit: int = 50, cursor: str | None = None) -> Listing:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        body = self._check(await self.http.get("/api/api-keys", params=params), 200)
        assert all(set(k) == set(API_KEY_FIELDS) for k in body["items"]), body
        return Listing([k["id"] for k in body["items"]], body["nextCursor"])

    async def revoke_api_key(self, key_id: str) -> dict[str, Any]:
        reply = await self.http.post(f"/api/api-keys/{key_id}/revoke")
        return pick(self._check(reply, 200), API_KEY_FIELDS)

    async def set_secret(self, name: str, value: Any) -> dict[str, Any]:
        reply = await self.http.put(f"/api/secrets/{name}", json={"value": value})
        found = self._check(reply, 200)
        assert set(found) == set(SECRET_FIELDS), found
        return dict(found)

    async def list_secrets(self) -> list[dict[str, Any]]:
        body = self._check(await self.http.get("/api/secrets"), 200)
        assert all(set(k) == set(SECRET_FIELDS) for k in body["items"]), body
        return list(body["items"])

    async def delete_secret(self, name: str) -> None:
        self._check(await self.http.delete(f"/api/secrets/{name}"), 204)

    async def list_dead_letters(
        self, *, execution_id: str | None = None, include_redriven: bool = False,
        limit: int = 50, cursor: str | None = None,
    ) -> Listing:  # fmt: skip
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        if execution_id is not None:
            params["executionId"] = execution_id
        if include_redriven:
            params["includeRedriven"] = "true"
        body = self._check(await self.http.get("/api/dead-letters", params=params), 200)
        assert all(set(d) == set(DEAD_LETTER_FIELDS) for d in body["items"]), body
        return Listing([d["id"] for d in body["items"]], body["nextCursor"])

    async def get_dead_letter(self, letter_id: str) -> dict[str, Any] | None:
        reply = await self.http.get(f"/api/dead-letters/{letter_id}")
        if reply.status_code == 404:
            return None
        return pick(self._check(reply, 200), DEAD_LETTER_FIELDS)

    async def redrive_dead_letter(self, letter_id: str) -> dict[str, Any]:
        reply = await self.http.post(f"/api/dead-letters/{letter_id}/redrive")
        return pick(self._check(reply, 200), DEAD_LETTER_FIELDS)

    async def list_workers(self) -> list[dict[str, Any]]:
        body = self._check(await self.http.get("/api/workers"), 200)
        assert body["nextCursor"] is None
        assert all(set(w) == set(WORKER_FIELDS) for w in body["items"]), body
        items: list[dict[str, Any]] = body["items"]
        return items

    async def metrics_series(
        self, window: int | None = None, bucket: int | None = None
    ) -> dict[str, Any]:
        params = {"windowSeconds": window, "bucketSeconds": bucket}
        given = {k: v for k, v in params.items() if v is not None}
        reply = await self.http.get("/api/observability/metrics/series", params=given)
        found: dict[str, Any] = self._check(reply, 200)
        return found

    async def validate_workflow(self, definition: Any) -> dict[str, Any]:
        reply = await self.http.post("/api/workflows/validate", json={"definition": definition})
        found: dict[str, Any] = self._check(reply, 200)
        return found

    async def metrics_snapshot(self, window: int | None = None) -> dict[str, Any]:
        params = {} if window is None else {"windowSeconds": window}
        reply = await self.http.get("/api/observability/metrics", params=params)
        found: dict[str, Any] = self._check(reply, 200)
        return found

    async def scheduler_status(self) -> dict[str, Any]:
        found: dict[str, Any] = self._check(await self.http.get("/api/scheduler/status"), 200)
        return found

    async def node_types(self) -> list[dict[str, Any]]:
        body = self._check(await self.http.get("/api/node-types"), 200)
        assert body["nextCursor"] is None
        assert all(set(t) == set(NODE_TYPE_FIELDS) for t in body["items"]), body
        items: list[dict[str, Any]] = body["items"]
        return items

    async def check_expression(self, expression: str, kind: str) -> dict[str, Any]:
        reply = await self.http.post(
            "/api/expressions/check", json={"expression": expression, "kind": kind}
        )
        found: dict[str, Any] = self._check(reply, 200)
        return found

    async def list_versions(
        self, workflow_id: str, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None] | None:
        params: dict[str, Any] = {"limit": limit, **({"cursor": cursor} if cursor else {})}
        reply = await self.http.get(f"/api/workflows/{workflow_id}/versions", params=params)
        if reply.status_code == 404:
            return None
        body = self._check(reply, 200)
        assert all(set(v) == set(VERSION_FIELDS) for v in body["items"]), body
        return body["items"], body["nextCursor"]

    async def get_version(self, workflow_id: str, version: int) -> dict[str, Any] | None:
        reply = await self.http.get(f"/api/workflows/{workflow_id}/versions/{version}")
        if reply.status_code == 404:
            return None
        found: dict[str, Any] = self._check(reply, 200)
        assert set(found) == {*VERSION_FIELDS, "definition"}, found
        return found


_W = "fragment W on Workflow { id name description version definition createdAt updatedAt }"
_S = (
    "fragment S on StepExecution { id nodeId nodeType status attempt input output error "
    "queuedAt startedAt finishedAt durationMs }"
)
_E = (
    "fragment E on Execution { id workflowId workflowVersion status input output error "
    "createdAt startedAt finishedAt durationMs lastSequence retriedFromId traceId }"
)
_K = " ".join(API_KEY_FIELDS)


def _rest_role(key: dict[str, Any]) -> dict[str, Any]:
    """A key as REST spells it: GraphQL's Role enum (`ADMIN`) is REST's `admin`."""
    return {**key, "role": key["role"].lower()}


_D = " ".join(DEAD_LETTER_FIELDS)
_ERRORS = "... on UserError { code message }"
_CONFLICT = "... on ConflictError { currentVersion }"
_PROBLEMS = "... on ValidationError { problems { path } }"


class GraphQLFace(Face):
    """The GraphQL face: queries, mutations with typed results, error extensions."""

    name = "graphql"

    async def _run(self, document: str, **variables: Any) -> dict[str, Any]:
        reply = await self.http.post("/graphql", json={"query": document, "variables": variables})
        body = reply.json()
        if body.get("errors"):
            error = body["errors"][0]
            extensions = error.get("extensions") or {}
            raise FaceError(
                extensions.get("code", "graphql_error"),
                {p["path"] for p in extensions.get("problems", [])},
                error.get("message", ""),
            )
        assert reply.status_code == 200, reply.text
        data: dict[str, Any] = body["data"]
        return data

    @staticmethod
    def _result(result: dict[str, Any], payload: str) -> dict[str, Any]:
        if "code" in result:
            problems = {p["path"] for p in result.get("problems", [])}
            raise FaceError(
                result["code"], problems, result.get("message", ""), result.get("currentVersion")
            )
        found: dict[str, Any] = result[payload]
        return found

    async def create_workflow(
        self, name: str, definition: Any, description: str | None = None, **fields: Any
    ) -> dict[str, Any]:
        data = await self._run(
            "mutation($input: CreateWorkflowInput!) { createWorkflow(input: $input) {"
            f" ... on WorkflowPayload {{ workflow {{ ...W }} }} {_ERRORS} {_PROBLEMS} }} }} {_W}",
            input={"name": name, "definition": definition, "description": description, **fields},
        )
        return workflow_of(self._result(data["createWorkflow"], "workflow"))

    async def get_workflow(self, workflow_id: str) -> dict[str, Any] | None:
        data = await self._run(
            f"query($id: ID!) {{ workflow(id: $id) {{ ...W }} }} {_W}", id=workflow_id
        )
        return workflow_of(data["workflow"]) if data["workflow"] is not None else None

    async def list_workflows(self, limit: int, cursor: str | None = None) -> Listing:
        data = await self._run(
            "query($first: Int, $after: String) { workflows(first: $first, after: $after) {"
            " edges { node { id } } pageInfo { hasNextPage endCursor } } }",
            first=limit,
            after=cursor,
        )
        page = data["workflows"]
        info = page["pageInfo"]
        return Listing(
            [e["node"]["id"] for e in page["edges"]],
            info["endCursor"] if info["hasNextPage"] else None,
        )

    async def update_workflow(self, workflow_id: str, **fields: Any) -> dict[str, Any]:
        data = await self._run(
            "mutation($id: ID!, $input: UpdateWorkflowInput!) { updateWorkflow(id: $id,"
            f" input: $input) {{ ... on WorkflowPayload {{ workflow {{ ...W }} }} {_ERRORS}"
            f" {_PROBLEMS} {_CONFLICT} }} }}"
            f" {_W}",
            id=workflow_id,
            input=fields,
        )
        return workflow_of(self._result(data["updateWorkflow"], "workflow"))

    async def delete_workflow(self, workflow_id: str) -> None:
        data = await self._run(
            "mutation($id: ID!) { deleteWorkflow(id: $id) {"
            f" ... on DeletedPayload {{ id }} {_ERRORS} }} }}",
            id=workflow_id,
        )
        self._result(data["deleteWorkflow"], "id")

    async def start_execution(
        self, workflow_id: str, input: Any = None, key: str | None = None
    ) -> tuple[dict[str, Any], bool]:
        data = await self._run(
            "mutation($wid: ID!, $input: JSON, $key: String) { startExecution(workflowId: $wid,"
            " input: $input, idempotencyKey: $key) { ... on StartExecutionPayload {"
            f" execution {{ ...E }} created }} {_ERRORS} {_PROBLEMS} }} }} {_E}",
            wid=workflow_id,
            input=input,
            key=key,
        )
        result = data["startExecution"]
        return execution_of(self._result(result, "execution")), bool(result["created"])

    async def start_executions(
        self, workflow_id: str, items: list[dict[str, Any]]
    ) -> list[tuple[dict[str, Any], bool]]:
        data = await self._run(
            "mutation($wid: ID!, $inputs: [StartExecutionItem!]!) { startExecutions("
            "workflowId: $wid, inputs: $inputs) { ... on StartExecutionsPayload {"
            f" results {{ execution {{ ...E }} created }} }} {_ERRORS} {_PROBLEMS} }} }} {_E}",
            wid=workflow_id,
            inputs=items,
        )
        result = data["startExecutions"]
        self._result(result, "results")  # an expected failure raises FaceError
        results: list[dict[str, Any]] = result["results"]
        return [(execution_of(r["execution"]), bool(r["created"])) for r in results]

    async def get_execution(self, execution_id: str) -> dict[str, Any] | None:
        data = await self._run(
            "query($id: ID!) { execution(id: $id) { ...E definition steps { ...S } } }"
            f" {_E} {_S}",
            id=execution_id,
        )
        return execution_of(data["execution"]) if data["execution"] is not None else None

    async def list_executions(
        self, *, workflow_id: str | None = None, status: str | None = None, limit: int = 50,
        trigger_id: str | None = None,
    ) -> Listing:  # fmt: skip
        data = await self._run(
            "query($wid: ID, $status: ExecutionStatus, $first: Int, $tid: ID) {"
            " executions(workflowId: $wid, status: $status, first: $first, triggerId: $tid) {"
            " edges { node { id } } pageInfo { hasNextPage endCursor } } }",
            wid=workflow_id,
            status=status,
            first=limit,
            tid=trigger_id,
        )
        page = data["executions"]
        info = page["pageInfo"]
        return Listing(
            [e["node"]["id"] for e in page["edges"]],
            info["endCursor"] if info["hasNextPage"] else None,
        )

    async def audit_log(
        self, *, actor: str | None = None, limit: int = 50, since: str | None = None,
        until: str | None = None,
    ) -> list[dict[str, Any]]:  # fmt: skip
        data = await self._run(
            "query($actor: String, $first: Int, $since: DateTime, $until: DateTime) {"
            " auditLog(actor: $actor, first: $first, since: $since, until: $until) {"
            f" edges {{ node {{ {' '.join(AUDIT_FIELDS)} }} }} }} }}",
            actor=actor,
            first=limit,
            since=since,
            until=until,
        )
        return [e["node"] for e in data["auditLog"]["edges"]]

    async def cancel_execution(self, execution_id: str) -> dict[str, Any]:
        data = await self._run(
            "mutation($id: ID!) { cancelExecution(id: $id) { ... on ExecutionPayload {"
            f" execution {{ ...E }} }} {_ERRORS} }} }} {_E}",
            id=execution_id,
        )
        return execution_of(self._result(data["cancelExecution"], "execution"))

    async def retry_execution(self, execution_id: str) -> dict[str, Any]:
        data = await self._run(
            "mutation($id: ID!) { retryExecution(id: $id) { ... on StartExecutionPayload {"
            f" execution {{ ...E }} }} {_ERRORS} {_PROBLEMS} }} }} {_E}",
            id=execution_id,
        )
        return execution_of(self._result(data["retryExecution"], "execution"))

    async def signal_execution(
        self, execution_id: str, name: str, payload: Any = None
    ) -> tuple[dict[str, Any], str | None]:
        data = await self._run(
            "mutation($id: ID!, $name: String!, $payload: JSON) {"
            " signalExecution(id: $id, name: $name, payload: $payload) {"
            " ... on SignalExecutionPayload { takenBy execution { ...E } }"
            f" {_ERRORS} {_PROBLEMS} }} }} {_E}",
            id=execution_id, name=name, payload=payload,
        )  # fmt: skip
        result = data["signalExecution"]
        execution = self._result(result, "execution")
        return execution_of(execution), result["takenBy"]

    async def create_api_key(self, name: str) -> tuple[dict[str, Any], str]:
        data = await self._run(
            "mutation($name: String!) { createApiKey(name: $name) { ... on CreateApiKeyPayload"
            f" {{ secret apiKey {{ {_K} }} }} {_ERRORS} {_PROBLEMS} }} }}",
            name=name,
        )
        result = data["createApiKey"]
        return _rest_role(self._result(result, "apiKey")), result["secret"]

    async def list_api_keys(self, limit: int = 50, cursor: str | None = None) -> Listing:
        data = await self._run(
            "query($first: Int, $after: String) { apiKeys(first: $first, after: $after) {"
            " edges { node { id } } pageInfo { hasNextPage endCursor } } }",
            first=limit,
            after=cursor,
        )
        return _listing(data["apiKeys"])

    async def revoke_api_key(self, key_id: str) -> dict[str, Any]:
        data = await self._run(
            "mutation($id: ID!) { revokeApiKey(id: $id) { ... on ApiKeyPayload {"
            f" apiKey {{ {_K} }} }} {_ERRORS} }} }}",
            id=key_id,
        )
        return _rest_role(self._result(data["revokeApiKey"], "apiKey"))

    async def set_secret(self, name: str, value: Any) -> dict[str, Any]:
        data = await self._run(
            "mutation($name: String!, $value: String!) { setSecret(name: $name, value: $value)"
            f" {{ ... on SecretPayload {{ secret {{ {' '.join(SECRET_FIELDS)} }} }}"
            f" {_ERRORS} {_PROBLEMS} }} }}",
            name=name, value=value,
        )  # fmt: skip
        return self._result(data["setSecret"], "secret")

    async def list_secrets(self) -> list[dict[str, Any]]:
        data = await self._run(f"{{ secrets {{ {' '.join(SECRET_FIELDS)} }} }}")
        return list(data["secrets"])

    async def delete_secret(self, name: str) -> None:
        data = await self._run(
            "mutation($name: String!) { deleteSecret(name: $name) {"
            f" ... on SecretPayload {{ secret {{ name }} }} {_ERRORS} }} }}",
            name=name,
        )
        self._result(data["deleteSecret"], "secret")

    async def list_dead_letters(
        self, *, execution_id: str | None = None, include_redriven: bool = False,
        limit: int = 50, cursor: str | None = None,
    ) -> Listing:  # fmt: skip
        data = await self._run(
            "query($e: ID, $all: Boolean!, $first: Int, $after: String) { deadLetters("
            "executionId: $e, includeRedriven: $all, first: $first, after: $after) {"
            " edges { node { id } } pageInfo { hasNextPage endCursor } } }",
            e=execution_id, all=include_redriven, first=limit, after=cursor,
        )  # fmt: skip
        return _listing(data["deadLetters"])

    async def get_dead_letter(self, letter_id: str) -> dict[str, Any] | None:
        data = await self._run(
            f"query($id: ID!) {{ deadLetter(id: $id) {{ {_D} }} }}", id=letter_id
        )
        found: dict[str, Any] | None = data["deadLetter"]
        return found

    async def redrive_dead_letter(self, letter_id: str) -> dict[str, Any]:
        data = await self._run(
            "mutation($id: ID!) { redriveDeadLetter(id: $id) { ... on DeadLetterPayload {"
            f" deadLetter {{ {_D} }} }} {_ERRORS} }} }}",
            id=letter_id,
        )
        return self._result(data["redriveDeadLetter"], "deadLetter")

    async def list_workers(self) -> list[dict[str, Any]]:
        data = await self._run(f"{{ workers {{ {' '.join(WORKER_FIELDS)} }} }}")
        found: list[dict[str, Any]] = data["workers"]
        return found

    async def metrics_series(
        self, window: int | None = None, bucket: int | None = None
    ) -> dict[str, Any]:
        data = await self._run(
            "query($w: Int, $b: Int) { metricsSeries(windowSeconds: $w, bucketSeconds: $b) {"
            " windowSeconds bucketSeconds generatedAt sampled buckets { start"
            " executionsStarted executionsCompleted executionsFailed stepsCompleted"
            " stepDurationP50Ms stepDurationP95Ms } } }",
            w=window,
            b=bucket,
        )
        found: dict[str, Any] = data["metricsSeries"]
        return found

    async def validate_workflow(self, definition: Any) -> dict[str, Any]:
        data = await self._run(
            "query($d: JSON!) { validateWorkflow(definition: $d) { valid"
            " problems { path message nodeId edge } } }",
            d=definition,
        )
        found: dict[str, Any] = data["validateWorkflow"]
        return found

    async def metrics_snapshot(self, window: int | None = None) -> dict[str, Any]:
        data = await self._run(
            f"query($w: Int) {{ metrics(windowSeconds: $w) {{ {SNAPSHOT_SELECTION} }} }}", w=window
        )
        found: dict[str, Any] = data["metrics"]
        return found

    async def scheduler_status(self) -> dict[str, Any]:
        data = await self._run(f"{{ schedulerStatus {{ {SCHEDULER_SELECTION} }} }}")
        found: dict[str, Any] = data["schedulerStatus"]
        return found

    async def node_types(self) -> list[dict[str, Any]]:
        data = await self._run(f"{{ nodeTypes {{ {' '.join(NODE_TYPE_FIELDS)} }} }}")
        found: list[dict[str, Any]] = data["nodeTypes"]
        return found

    async def check_expression(self, expression: str, kind: str) -> dict[str, Any]:
        data = await self._run(
            "query($e: String!, $k: ExpressionKind!) { checkExpression(expression: $e,"
            " kind: $k) { valid problems { message position } } }",
            e=expression,
            k=kind,
        )
        found: dict[str, Any] = data["checkExpression"]
        return found

    async def list_versions(
        self, workflow_id: str, limit: int = 50, cursor: str | None = None
    ) -> tuple[list[dict[str, Any]], str | None] | None:
        data = await self._run(
            "query($id: ID!, $first: Int, $after: String) { workflowVersions(workflowId: $id,"
            f" first: $first, after: $after) {{ edges {{ node {{ {' '.join(VERSION_FIELDS)} }} }}"
            " pageInfo { hasNextPage endCursor } } }",
            id=workflow_id,
            first=limit,
            after=cursor,
        )
        page = data["workflowVersions"]
        if page is None:
            return None
        info = page["pageInfo"]
        nodes = [e["node"] for e in page["edges"]]
        return nodes, info["endCursor"] if info["hasNextPage"] else None

    async def get_version(self, workflow_id: str, version: int) -> dict[str, Any] | None:
        data = await self._run(
            "query($id: ID!, $v: Int!) { workflowVersion(workflowId: $id, version: $v) {"
            f" {' '.join(VERSION_FIELDS)} definition }} }}",
            id=workflow_id,
            v=version,
        )
        found: dict[str, Any] | None = data["workflowVersion"]
        return found


def _listing(page: dict[str, Any]) -> Listing:
    info = page["pageInfo"]
    return Listing(
        [e["node"]["id"] for e in page["edges"]],
        info["endCursor"] if info["hasNextPage"] else None,
    )


FACES: dict[str, type[Face]] = {"rest": RestFace, "graphql": GraphQLFace}

MALFORMED_ID = "not-a-uuid"


def field_path(face: Face, name: str) -> str:
    """How a face's problems name an input field the services name `name`: REST by
    where it sits in the JSON body (`$.priority`), GraphQL by the argument (`priority`)."""
    return f"$.{name}" if face.name == "rest" else name


def not_found_ids(face: Face, *ids: str) -> tuple[str, ...]:
    """`ids`, and a malformed id where the face answers one as a missing object: GraphQL
    does (null, NotFoundError); REST refuses one in the path, 400 naming the parameter
    (tests/rest/test_path_ids.py)."""
    return ids if face.name == "rest" else (*ids, MALFORMED_ID)
