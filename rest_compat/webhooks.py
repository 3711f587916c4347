"""`POST /api/webhooks/{triggerId}`: webhook ingress. No bearer token: the trigger id and,
where the trigger requires it, the `X-FlowSync-Signature` are the credentials. The raw
body (read up to one byte past the server's limit, so that an oversized delivery is
refused without being buffered whole), the headers and the query go to WebhookService,
which applies every rule; this module only turns its result into a reply:

- 202 `{"executionId": ...}` when the run was accepted (asynchronous triggers, or a
  synchronous one past its bound);
- the workflow's `webhook_response` (status, headers, body) for synchronous triggers.

Either reply carries `X-FlowSync-Execution-Id`; a redelivery (a repeated
`Idempotency-Key`) also `Idempotent-Replayed: true`.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response

from flowsync.errors import InvalidInput, Problem
from flowsync.services.webhooks import WebhookResult
from rest_compat.http import MAX_JSON_DEPTH, ApiRoute, path_id, read_body, services, too_deep
from rest_compat.responses import dumps


def reply(result: WebhookResult) -> Response:
    """The HTTP reply for a delivery's result. A string body with no Content-Type among
    the workflow's headers is sent as text; any other body as JSON, unless the workflow
    set a Content-Type, in which case a string body is sent as it is."""
    headers = dict(result.headers)
    named = {k.lower(): k for k in headers}
    headers["X-FlowSync-Execution-Id"] = str(result.execution_id)
    if not result.created:
        headers["Idempotent-Replayed"] = "true"
    if result.body is None and result.responded:
        return Response(b"", result.status, headers)
    if isinstance(result.body, str):
        if "content-type" not in named:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        return Response(result.body.encode(), result.status, headers)
    if "content-type" not in named:
        headers["Content-Type"] = "application/json"
    return Response(dumps(result.body), result.status, headers)


async def receive(request: Request) -> Response:
    svc = services(request)
    # One byte past the limit is enough for the service to refuse with 413.
    raw = await read_body(request, svc.settings.max_body_bytes + 1, truncate=True)
    media = (request.headers.get("content-type") or "").split(";")[0].strip().lower()
    is_json = media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    )
    if is_json and too_deep(raw):
        raise InvalidInput(
            f"The body is JSON nested more than {MAX_JSON_DEPTH} levels deep.",
            [Problem("body", f"nested more than {MAX_JSON_DEPTH} levels deep")],
        )
    result = await svc.webhooks.receive(
        path_id(request, "triggerId"),
        raw,
        dict(request.headers.items()),
        dict(request.query_params.items()),
    )
    return reply(result)


def routes() -> list[ApiRoute]:
    """The webhook ingress route."""
    return [ApiRoute("/api/webhooks/{triggerId}", {"POST": receive}, name="webhook")]
