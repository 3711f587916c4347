"""The REST error envelope, mapped from FlowSync's exception tree in this one place.

    {"error": {"code": "...", "message": "...", "details": [{"path", "message", "nodeId"?}]}}

A stale `expectedVersion` (409 conflict) adds `"currentVersion"`: the version the
workflow is at now.

The status is `flowsync.errors.http_status` (400 malformed, 401, 404, 409, 413, 422 invalid
definition or trigger, 429, 503 backpressure or no database). 429 and 503 carry `Retry-After` (whole
seconds), 401 carries `WWW-Authenticate`. Anything that is not a FlowSyncError is logged
with its traceback and answered as a bare 500 `internal_error`: no SQL, no traceback.
"""

from __future__ import annotations

import logging
import math

from starlette.responses import Response

from flowsync.errors import (
    Backpressure,
    DatabaseUnavailable,
    FlowSyncError,
    Problem,
    RateLimited,
    Unauthenticated,
    VersionConflict,
    http_status,
    shown,
)
from rest_compat.responses import json_response

__all__ = ["envelope", "error_response", "method_not_allowed", "route_not_found", "unexpected"]

log = logging.getLogger("flowsync.rest")


def envelope(
    code: str,
    message: str,
    details: list[Problem] | None = None,
    extra: dict[str, object] | None = None,
) -> dict[str, object]:
    """The error body of api.md (with `extra` fields beside `details`)."""
    return {
        "error": {
            "code": code,
            "message": message,
            "details": [p.as_dict() for p in details or []],
            **(extra or {}),
        }
    }


def error_response(error: FlowSyncError) -> Response:
    """The reply for an error of FlowSync's tree (server-side ones are logged)."""
    status = http_status(error)
    headers: dict[str, str] = {}
    if isinstance(error, RateLimited | Backpressure | DatabaseUnavailable):
        headers["Retry-After"] = str(max(1, math.ceil(error.retry_after)))
    if isinstance(error, Unauthenticated):
        headers["WWW-Authenticate"] = 'Bearer realm="flowsync"'
    if isinstance(error, DatabaseUnavailable):  # one line each, not a traceback
        log.warning("%s: %s (%s)", error.code, error.message, error.__cause__)
    elif status >= 500 and not isinstance(error, Backpressure):
        log.error("%s: %s", error.code, error.message, exc_info=error)
    # A stale update: the version the workflow is at, to fetch and compare with one's own.
    extra: dict[str, object] | None = None
    if isinstance(error, VersionConflict):
        extra = {"currentVersion": error.current_version}
    return json_response(envelope(error.code, error.message, error.details, extra), status, headers)


def unexpected(error: BaseException) -> Response:
    """A bug: logged with its traceback, answered without any of it."""
    log.error("unexpected error in a REST route", exc_info=error)
    return json_response(envelope("internal_error", "Unexpected error."), 500)


def method_not_allowed(allowed: list[str]) -> Response:
    """405 with the methods the route does allow."""
    return json_response(
        envelope("method_not_allowed", f"This route allows {', '.join(allowed)} only."),
        405,
        {"Allow": ", ".join(allowed)},
    )


def route_not_found(path: str) -> Response:
    """404 for a path under /api that no route serves."""
    return json_response(envelope("not_found", f"No route at {shown(path)}."), 404)
