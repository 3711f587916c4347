"""The OpenAPI document's part for what the visual editor asks of the server: node types,
the expression check, a definition's validation, and a workflow's versions (merged into
`rest_compat.openapi.document()`)."""

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
    listing,
    nullable,
    obj,
    ref,
)

_BOOL: Json = {"type": "boolean"}
_MESSAGE: Json = nullable(STRING)

SCHEMAS: Json = {
    "NodeType": obj(
        {
            "type": {"type": "string", "description": 'The JSON `type` of such nodes ("action").'},
            "label": STRING,
            "description": STRING,
            "dataSchema": nullable(
                {
                    "type": "object",
                    "description": "The JSON Schema of the node's `data`, from the model that "
                    'validates it; fields holding CEL carry `"x-flowsync": "expression"` or '
                    '`"template"`. Null when the type takes no data.',
                }
            ),
            "hasTarget": {"type": "boolean", "description": "Whether it may have incoming edges."},
            "hasSource": {"type": "boolean", "description": "Whether it may have outgoing edges."},
            "sourceHandles": {
                "type": "array",
                "items": STRING,
                "description": "The sourceHandle each outgoing edge carries, each once.",
            },
            "optionalHandles": {
                "type": "array",
                "items": STRING,
                "description": "Handles an outgoing edge may also carry, at most once each "
                "(a wait's and an approval's \"timeout\").",
            },
            "minOutgoing": INT,
            "maxOutgoing": nullable({"type": "integer", "description": "Null: no upper bound."}),
            "minIncoming": INT,
        }
    ),
    "NodeTypeList": obj(
        {"items": {"type": "array", "items": ref("NodeType")}, "nextCursor": {"type": "null"}}
    ),
    "CheckExpression": obj(
        {
            "expression": {"type": "string", "maxLength": 100_000},
            "kind": {
                "type": "string",
                "enum": ["EXPRESSION", "TEMPLATE"],
                "description": "EXPRESSION: a condition's CEL; TEMPLATE: a template string.",
            },
        }
    ),
    "ExpressionCheck": obj(
        {
            "valid": _BOOL,
            "problems": {
                "type": "array",
                "items": obj(
                    {
                        "message": STRING,
                        "position": nullable(
                            {
                                "type": "integer",
                                "minimum": 0,
                                "description": "A 0-based offset into the text, in "
                                "characters (Unicode code points).",
                            }
                        ),
                    }
                ),
            },
        }
    ),
    "ValidateWorkflow": obj({"definition": {"description": "A workflow graph to check."}}),
    "ValidationResult": obj(
        {
            "valid": _BOOL,
            "problems": {
                "type": "array",
                "items": obj(
                    {
                        "path": STRING,
                        "message": STRING,
                        "nodeId": nullable(STRING),
                        "edge": nullable(INT),
                    }
                ),
            },
        }
    ),
    "WorkflowVersionSummary": obj(
        {
            "id": STRING,
            "version": INT,
            "createdAt": TIME,
            "message": _MESSAGE,
            "author": nullable(
                {
                    "type": "string",
                    "description": "The credential that made it, as the audit log names it.",
                }
            ),
        }
    ),
    "WorkflowVersionList": listing("WorkflowVersionSummary"),
    "WorkflowVersion": obj(
        {
            "id": STRING,
            "version": INT,
            "createdAt": TIME,
            "message": _MESSAGE,
            "author": nullable(STRING),
            "definition": {"description": "The workflow graph of this version."},
        }
    ),
}

_VERSION: Json = {
    "name": "version",
    "in": "path",
    "required": True,
    "schema": {"type": "integer", "minimum": 1},
}

PATHS: Json = {
    "/api/node-types": {
        "get": _operation(
            "listNodeTypes", "The node types, with their data schema and connection rules",
            {"200": _json("Every node type (one page).", "NodeTypeList")}, _AUTHED,
            tag="editor",
            description="The schema is the one that validates a save, and the rules those "
            "the validator applies, so an editor built on them agrees with it.",
        ),
    },
    "/api/expressions/check": {
        "post": _operation(
            "checkExpression", "Compile a condition or template string as a save would",
            {"200": _json("Whether it compiles; each problem with its position.",
                          "ExpressionCheck")},
            [400, *_AUTHED, 413], tag="editor", body="CheckExpression",
            description="Nothing is evaluated. A template string reports its first bad "
            "placeholder.",
        ),
    },
    "/api/workflows/validate": {
        "post": _operation(
            "validateWorkflow", "Check a definition as a save would, storing nothing",
            {"200": _json("Whether it is valid; every problem with its JSON path.",
                          "ValidationResult")},
            [400, *_AUTHED, 413], tag="workflows", body="ValidateWorkflow",
            description="As GraphQL's `validateWorkflow`: an invalid definition is a 200 "
            "with `valid: false`, not a 422.",
        ),
    },
    "/api/workflows/{id}/versions": {
        "parameters": [_ID],
        "get": _operation(
            "listWorkflowVersions", "A workflow's versions, newest first (no definitions)",
            {"200": _json("A page of versions.", "WorkflowVersionList")},
            [400, *_AUTHED, 404], tag="workflows", params=_PAGE,
        ),
    },
    "/api/workflows/{id}/versions/{version}": {
        "parameters": [_ID, _VERSION],
        "get": _operation(
            "getWorkflowVersion", "One version of a workflow, with its definition",
            {"200": _json("The version.", "WorkflowVersion")}, [400, *_AUTHED, 404],
            tag="workflows",
        ),
    },
}  # fmt: skip
