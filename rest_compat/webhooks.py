"""`POST /api/webhooks/{triggerId}`: webhook ingress. No bearer token: the trigger id and,
where the trigger requires it, the `X-FlowSync-Signature` are the credentials. The raw
body (read up to one byte past the server's limit, so that an oversized delivery is
refused without being buffered whole), the headers and the raw query string (a v2
signature signs it as sent) go to WebhookService,
which applies every rule; this module only turns its result into a reply:

- 202 `{"executionId": ...}` when the run was accepted (asynchronous triggers; a
  synchronous one past its bound adds the run's `status`);
- the workflow's `webhook_response` (status, headers, body) for synchronous triggers;
- for a synchronous run that ended without one: 200 `{"executionId", "status":
  "COMPLETED"}`, 502 `{..., "status": "FAILED", "error"}`, 409 `{..., "status":
  "CANCELLED", "error"}` (see `flowsync.services.webhooks`).

Every such reply carries `X-FlowSync-Execution-Id`; a redelivery (a repeated
`Idempotency-Key`) also `Idempotent-Replayed: true`. Every reply of the route, errors and
405s included, carries `X-Content-Type-Options: nosniff` and `Content-Security-Policy:
sandbox; default-src 'none'` (`reply_headers.GUARD_HEADERS`): a workflow's reply is
content a tenant wrote, served on an origin that may also serve FlowSync's pages.
"""

from __future__ import annotations

from starlette.requests import Request
from starlette.responses import Response
from starlette.types import Message, Receive, Scope, Send

from flowsync.engine.reply_headers import GUARD_HEADERS
from flowsync.errors import InvalidInput, Problem
from flowsync.services.webhooks import SIGNATURE_HEADER, WebhookResult
from rest_compat.http import ApiRoute, read_body, services
from rest_compat.responses import dumps

_GUARD = [(name.lower().encode(), value.encode()) for name, value in GUARD_HEADERS]
_GUARDED = frozenset(name for name, _ in _GUARD)
_NO_BODY = frozenset({204, 205, 304})


class WebhookRoute(ApiRoute):
    """The ingress route: every reply it sends, whichever path made it, carries the
    guard headers (and no other value of them)."""

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        async def guarded(message: Message) -> None:
            if message["type"] == "http.response.start":
                kept = [h for h in message.get("headers", ()) if h[0].lower() not in _GUARDED]
                message = {**message, "headers": [*kept, *_GUARD]}
            await send(message)

        await super().handle(scope, receive, guarded)


def reply(result: WebhookResult) -> Response:
    """The HTTP reply for a delivery's result (whose headers the service has already
    limited to those a reply may carry). A string body with no Content-Type among the
    workflow's headers is sent as text; any other body as JSON, unless the workflow set a
    (passive) Content-Type, in which case a string body is sent as it is. A 204, 205 or
    304 has no body."""
    headers = dict(result.headers)
    named = {k.lower(): k for k in headers}
    headers["X-FlowSync-Execution-Id"] = str(result.execution_id)
    if not result.created:
        headers["Idempotent-Replayed"] = "true"
    if result.responded and (result.body is None or result.status in _NO_BODY):
        return Response(b"", result.status, headers)
    if isinstance(result.body, str):
        if "content-type" not in named:
            headers["Content-Type"] = "text/plain; charset=utf-8"
        return Response(result.body.encode(), result.status, headers)
    if "content-type" not in named:
        headers["Content-Type"] = "application/json"
    return Response(dumps(result.body), result.status, headers)


# Headers whose value decides how a delivery is read, checked or deduplicated: sent
# twice, which one counts is a guess (a proxy in front may take the other), so the
# delivery is refused.
_SINGLE = ("content-type", "idempotency-key", SIGNATURE_HEADER)


def _headers(request: Request) -> dict[str, str]:
    """The delivery's headers by lower-case name, each with its first value (as every
    other route reads a header); 400 for a second value of one in _SINGLE."""
    for name in _SINGLE:
        if len(request.headers.getlist(name)) > 1:
            raise InvalidInput(
                f"The delivery has more than one {name} header; send it once.",
                [Problem(f"headers.{name}", "sent more than once")],
            )
    first: dict[str, str] = {}
    for name, value in request.headers.items():
        first.setdefault(name.lower(), value)
    return first


async def receive(request: Request) -> Response:
    svc = services(request)
    headers = _headers(request)
    # One byte past the limit is enough for the service to refuse with 413.
    raw = await read_body(request, svc.settings.max_body_bytes + 1, truncate=True)
    result = await svc.webhooks.receive(
        request.path_params["triggerId"], raw, headers, request.url.query
    )
    return reply(result)


def routes() -> list[ApiRoute]:
    """The webhook ingress route."""
    return [WebhookRoute("/api/webhooks/{triggerId}", {"POST": receive}, name="webhook")]
