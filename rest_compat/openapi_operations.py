"""The OpenAPI document's part for the operators' routes: API keys, secrets, dead letters,
workers and the metrics series (merged into `rest_compat.openapi.document()`)."""

from __future__ import annotations

from rest_compat.openapi import (
    _AUTHED,
    _ID,
    _PAGE,
    INT,
    STRING,
    TIME,
    Json,
    _json,
    _operation,
    _query,
    listing,
    nullable,
    obj,
    ref,
)

ROLE: Json = {
    "type": "string",
    "enum": ["viewer", "operator", "editor", "admin"],
    "description": "What a team member or key may do: viewer reads and subscribes; "
    "operator also starts, cancels, retries, signals and redrives runs; editor also "
    "changes workflows and triggers; admin also members and API keys.",
}

SCHEMAS: Json = {
    "ApiKey": obj(
        {
            "id": STRING,
            "name": STRING,
            "prefix": {"type": "string", "description": "The key's first characters."},
            "createdAt": TIME,
            "revokedAt": nullable(TIME),
            "role": ROLE,
            "secret": {
                "type": "string",
                "description": "The key itself: only in the reply that issues it.",
            },
        },
        ["id", "name", "prefix", "createdAt", "revokedAt", "role"],
    ),
    "ApiKeyList": listing("ApiKey"),
    "CreateApiKey": obj(
        {
            "name": {
                "type": "string",
                "description": "1 to 200 characters once surrounding spaces are removed.",
            },
            "role": {
                **ROLE,
                "description": "At most the caller's own role, which is the default; "
                "above it: 403.",
            },
        },
        ["name"],
    ),
    "Member": obj(
        {
            "subject": {"type": "string", "description": "`jwt:<issuer>|<sub>`."},
            "role": ROLE,
            "createdAt": TIME,
            "addedBy": STRING,
        }
    ),
    "MemberList": obj(
        {"items": {"type": "array", "items": ref("Member")}, "nextCursor": {"type": "null"}}
    ),
    "AddMember": obj(
        {"subject": {"type": "string", "description": "`jwt:<issuer>|<sub>`."}, "role": ROLE}
    ),
    "SetMemberRole": obj({"role": ROLE}),
    "Secret": obj(
        {
            "name": STRING,
            "createdAt": TIME,
            "updatedAt": TIME,
            "setBy": {"type": "string", "description": "The actor that last set the value."},
        }
    ),
    "SecretList": obj({"items": {"type": "array", "items": ref("Secret")}}),
    "SetSecret": obj(
        {
            "value": {
                "type": "string",
                "minLength": 1,
                "description": "The value: at most 64 KiB of UTF-8. Encrypted at rest and "
                "never returned; templates read it as {{ secrets.NAME }} in an action's url, "
                "headers and body.",
            }
        },
        ["value"],
    ),
    "DeadLetter": obj(
        {
            "id": STRING,
            "executionId": STRING,
            "nodeId": STRING,
            "attempts": INT,
            "error": {"type": "object"},
            "payload": {"type": "object"},
            "createdAt": TIME,
            "redrivenAt": nullable(TIME),
        }
    ),
    "DeadLetterList": listing("DeadLetter"),
    "Worker": obj(
        {
            "id": STRING,
            "hostname": STRING,
            "pid": INT,
            "concurrency": INT,
            "running": {"type": "integer", "description": "Steps in flight at its last heartbeat."},
            "heartbeatSeconds": {"type": "number"},
            "startedAt": TIME,
            "lastHeartbeatAt": TIME,
            "alive": {"type": "boolean", "description": "False once it missed 3 heartbeats."},
        }
    ),
    "MetricsSeries": obj(
        {
            "windowSeconds": INT,
            "bucketSeconds": INT,
            "generatedAt": TIME,
            "sampled": {"type": "boolean"},
            "buckets": {
                "type": "array",
                "maxItems": 500,
                "items": obj(
                    {
                        "start": TIME,
                        "executionsStarted": INT,
                        "executionsCompleted": INT,
                        "executionsFailed": INT,
                        "stepsCompleted": INT,
                        "stepDurationP50Ms": nullable({"type": "number"}),
                        "stepDurationP95Ms": nullable({"type": "number"}),
                    }
                ),
            },
        }
    ),
    "WorkerList": obj(
        {"items": {"type": "array", "items": ref("Worker")}, "nextCursor": {"type": "null"}}
    ),
}

_SUBJECT: Json = {
    "name": "subject", "in": "path", "required": True,
    "description": "The member's subject, `jwt:<issuer>|<sub>` (slashes may stay as they are).",
    "schema": {"type": "string"},
}  # fmt: skip

PATHS: Json = {
    "/api/api-keys": {
        "get": _operation(
            "listApiKeys", "The caller owner's API keys, newest first, revoked ones included",
            {"200": _json("A page of keys (never their secrets).", "ApiKeyList")},
            [400, *_AUTHED], tag="api-keys", params=_PAGE,
        ),
        "post": _operation(
            "createApiKey", "Issue an API key for the caller's owner",
            {"201": _json("The key with its `secret`, shown this once.", "ApiKey")},
            [400, *_AUTHED, 413], tag="api-keys", body="CreateApiKey",
        ),
    },
    "/api/api-keys/{id}/revoke": {
        "parameters": [_ID],
        "post": _operation(
            "revokeApiKey", "Revoke a key: it stops authenticating at once",
            {"200": _json("The key with its `revokedAt` (revoking twice changes nothing).",
                          "ApiKey")},
            [*_AUTHED, 404], tag="api-keys",
        ),
    },
    "/api/members": {
        "get": _operation(
            "listMembers", "The caller's team's members (JWT subjects), admins first",
            {"200": _json("Every member (one page).", "MemberList")}, _AUTHED, tag="members",
        ),
        "post": _operation(
            "addMember", "Add a JWT subject to the caller's team with a role (admin only)",
            {"201": _json("The member.", "Member")},
            [400, *_AUTHED, 403, 409, 413], tag="members", body="AddMember",
        ),
    },
    "/api/members/{subject}": {
        "parameters": [_SUBJECT],
        "put": _operation(
            "setMemberRole", "Change a member's role (admin only); the last admin stays",
            {"200": _json("The member with its new role.", "Member")},
            [400, *_AUTHED, 403, 404, 409, 413], tag="members", body="SetMemberRole",
        ),
        "delete": _operation(
            "removeMember", "Remove a member (admin only); the last admin stays",
            {"200": _json("The member removed.", "Member")},
            [400, *_AUTHED, 403, 404, 409], tag="members",
        ),
    },
    "/api/secrets": {
        "get": _operation(
            "listSecrets", "The caller owner's secrets by name: names, times, who set each",
            {"200": _json("The secrets (never their values).", "SecretList")},
            [*_AUTHED], tag="secrets",
        ),
    },
    "/api/secrets/{name}": {
        "parameters": [
            {"name": "name", "in": "path", "required": True,
             "schema": {"type": "string", "pattern": "^[A-Za-z_][A-Za-z0-9_]{0,63}$"},
             "description": "The secret's name."},
        ],
        "put": _operation(
            "setSecret", "Set a secret's value (create it, or replace its value)",
            {"200": _json("The secret, without its value.", "Secret")},
            [400, *_AUTHED, 409, 413], tag="secrets", body="SetSecret",
            description="400: the name is not an identifier, or the value is empty or over "
            "64 KiB; 409 (secret_key_missing): the server has no secret key configured; "
            "nothing changes either way. The audit log records the name and the actor.",
        ),
        "delete": _operation(
            "deleteSecret", "Delete a secret (runs that read it fail their step, naming it)",
            {"204": {"description": "Deleted."}}, [*_AUTHED, 404], tag="secrets",
        ),
    },
    "/api/dead-letters": {
        "get": _operation(
            "listDeadLetters", "The caller's dead letters, newest first",
            {"200": _json("A page of dead letters.", "DeadLetterList")}, [400, *_AUTHED],
            tag="dead-letters",
            params=[
                _query("executionId", STRING, "Only this execution's (none for another "
                       "owner's or a malformed id)."),
                _query("includeRedriven", {"type": "string", "enum": ["true", "false"]},
                       "true: redriven ones too (default false: those still to handle)."),
                *_PAGE,
            ],
        ),
    },
    "/api/dead-letters/{id}": {
        "parameters": [_ID],
        "get": _operation(
            "getDeadLetter", "One dead letter", {"200": _json("The dead letter.", "DeadLetter")},
            [*_AUTHED, 404], tag="dead-letters",
        ),
    },
    "/api/dead-letters/{id}/redrive": {
        "parameters": [_ID],
        "post": _operation(
            "redriveDeadLetter", "Resume its execution from the failed step",
            {"200": _json("The dead letter with its redrivenAt.", "DeadLetter")},
            [*_AUTHED, 404, 409], tag="dead-letters",
            description="409 when it was redriven already, its execution is no longer "
            "failed, or its execution was retried (its retry runs it again: redrive or "
            "retry that one).",
        ),
    },
    "/api/observability/metrics/series": {
        "get": _operation(
            "getMetricsSeries", "The caller's executions and steps in time buckets",
            {"200": _json("The series, oldest bucket first.", "MetricsSeries")},
            [400, *_AUTHED], tag="observability",
            params=[
                _query("windowSeconds", {"type": "integer", "minimum": 60, "maximum": 604800},
                       "The window, in seconds (default 3600)."),
                _query("bucketSeconds", {"type": "integer", "minimum": 1},
                       "The bucket, in seconds (default 60); at most 500 buckets."),
            ],
            description="Buckets are aligned to multiples of bucketSeconds (UTC); the last "
            "holds generatedAt. Over the executions created in the span (newest 10,000) and "
            "their completed steps (50,000): `sampled` says a bound was reached.",
        ),
    },
    "/api/workers": {
        "get": _operation(
            "listWorkers", "Worker processes alive, and those dead for under ten minutes",
            {"200": _json("Every worker (one page).", "WorkerList")}, _AUTHED, tag="workers",
            description="Workers belong to no tenant: any authenticated caller sees the "
            "same list (hostnames and pids, never what they run for whom).",
        ),
    },
}  # fmt: skip
