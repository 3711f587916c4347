"""The OpenAPI document's part for the operators' routes: API keys, dead letters,
workers and the metrics series (merged into `rest_compat.openapi.document()`)."""

from __future__ import annotations

from rest_compat.openapi import (
    _AUTHED,
    _ID,
    _PAGE,
    STRING,
    TIME,
    Json,
    _json,
    _operation,
    listing,
    nullable,
    obj,
)

SCHEMAS: Json = {
    "ApiKey": obj(
        {
            "id": STRING,
            "name": STRING,
            "prefix": {"type": "string", "description": "The key's first characters."},
            "createdAt": TIME,
            "revokedAt": nullable(TIME),
            "secret": {
                "type": "string",
                "description": "The key itself: only in the reply that issues it.",
            },
        },
        ["id", "name", "prefix", "createdAt", "revokedAt"],
    ),
    "ApiKeyList": listing("ApiKey"),
    "CreateApiKey": obj({"name": {"type": "string", "minLength": 1, "maxLength": 200}}),
}

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
}  # fmt: skip
