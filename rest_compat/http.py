"""The plumbing every REST route shares: one route per path with a handler per method,
errors turned into the envelope, authentication and rate limits, bounded body reading,
JSON bodies checked against a model, and query parameters parsed into 400s, never 500s.

Handlers are thin: parse with these helpers, call one service, serialize.
"""

from __future__ import annotations

import logging
import re
import uuid
from collections.abc import Awaitable, Callable, Mapping
from dataclasses import replace
from datetime import UTC, datetime
from typing import Annotated, Any, Protocol, TypeVar

import orjson
from pydantic import AfterValidator, BaseModel, BeforeValidator, ConfigDict, ValidationError
from pydantic.alias_generators import to_camel
from starlette.requests import ClientDisconnect, Request
from starlette.responses import Response
from starlette.routing import Match, Route
from starlette.types import Receive, Scope, Send

from flowsync import codec
from flowsync.db.outage import as_unavailable
from flowsync.db.timeouts import as_timeout
from flowsync.errors import (
    FlowSyncError,
    InvalidInput,
    PayloadTooLarge,
    Problem,
    UnsupportedMediaType,
    shown,
)
from flowsync.services.auth import Credential
from flowsync.services.container import Services
from flowsync.services.inputs import json_depth_ok
from flowsync.services.observability import ObservabilityService
from flowsync.services.principal import Principal
from rest_compat.errors import error_response, method_not_allowed, unexpected

__all__ = [
    "ApiRoute",
    "Body",
    "BodyId",
    "Handler",
    "JsonInt",
    "RateLimiter",
    "authenticate",
    "check_depth",
    "check_nul",
    "from_header",
    "json_body",
    "observability",
    "paging",
    "query_datetime",
    "query_int",
    "query_str",
    "read_body",
    "refuse_nulls",
    "services",
    "workflow_filter",
]

log = logging.getLogger("flowsync.rest")

Handler = Callable[[Request], Awaitable[Response]]
M = TypeVar("M", bound=BaseModel)

MAX_QUERY_STRING = 1000
_WHOLE_NUMBER = re.compile(r"-?[0-9]{1,11}")
# The deepest nesting of arrays and objects a JSON body may have (orjson writes 254 at most).
MAX_JSON_DEPTH = 100


class RateLimiter(Protocol):
    """What the app's rate limits offer (flowsync.app.RateLimits): each call counts one
    request and raises RateLimited when over the limit."""

    async def ip(self, address: str) -> None: ...

    async def principal(self, credential: Credential) -> object: ...


class Body(BaseModel):
    """Base of request bodies: camelCase keys, no unknown keys, JSON types as they are
    (no coercion of "1" into 1)."""

    model_config = ConfigDict(
        alias_generator=to_camel,
        validate_by_alias=True,
        validate_by_name=False,
        extra="forbid",
        strict=True,
        frozen=True,
    )


def services(request: Request) -> Services:
    """The service layer the app was built over."""
    found: Services = request.app.state.services
    return found


def observability(request: Request) -> ObservabilityService:
    """The observability service (stateless; made once per app on first use)."""
    state = request.app.state
    found: ObservabilityService | None = getattr(state, "observability", None)
    if found is None:
        found = ObservabilityService.of(services(request))
        state.observability = found
    return found


def _limiter(request: Request) -> RateLimiter | None:
    found: RateLimiter | None = getattr(request.app.state, "rate_limits", None)
    return found


async def authenticate(request: Request) -> Principal:
    """The caller: `Authorization: Bearer <API key or JWT>` (401 otherwise), counted
    against the per-principal rate limit (429)."""
    credential = await services(request).authenticator.authenticate(
        request.headers.get("authorization")
    )
    limiter = _limiter(request)
    if limiter is not None:
        await limiter.principal(credential)
    return credential.principal


class ApiRoute(Route):
    """A path with one handler per method. Every reply to a FlowSync error is the
    envelope; an unknown method answers 405 with `Allow`; a bug answers a bare 500.
    With `limit_ip`, each request counts against the per-IP rate limit first."""

    def __init__(
        self, path: str, handlers: Mapping[str, Handler], *, name: str, limit_ip: bool = True
    ) -> None:
        self.handlers = dict(handlers)
        if "GET" in self.handlers:
            self.handlers.setdefault("HEAD", self.handlers["GET"])
        self.limit_ip = limit_ip
        super().__init__(path, self._dispatch, methods=list(self.handlers), name=name)

    def matches(self, scope: Scope) -> tuple[Match, Scope]:
        match, child = super().matches(scope)
        if match is Match.PARTIAL and not self.param_convertors:
            # A fixed path is this route's whatever the method (405 for another one), so
            # that a route with a parameter after it does not take it: PUT
            # /api/workflows/validate is a 405, not /api/workflows/{id} with a bad id.
            return Match.FULL, child
        return match, child

    async def handle(self, scope: Scope, receive: Receive, send: Send) -> None:
        if self.methods and scope["method"] not in self.methods:
            await method_not_allowed(sorted(self.methods))(scope, receive, send)
            return
        await super().handle(scope, receive, send)

    async def _dispatch(self, request: Request) -> Response:
        try:
            limiter = _limiter(request)
            if self.limit_ip and limiter is not None:
                await limiter.ip(request.client.host if request.client else "unknown")
            return await self.handlers[request.method](request)
        except FlowSyncError as exc:
            return error_response(located(request, exc))
        except ClientDisconnect:
            return Response(status_code=400)  # nobody is left to read it
        except Exception as exc:  # a bug: logged in full, answered without details
            known = as_timeout(exc) or as_unavailable(exc) or codec.unstorable(exc)
            return error_response(known) if known is not None else unexpected(exc)


def located(request: Request, error: FlowSyncError) -> FlowSyncError:
    """`error` with its details' paths as REST names them: the services name a field by
    its argument's name (`priority`, GraphQL's), REST by where it was sent: `$.priority`
    for a field of the JSON body, `headers.idempotency-key` for a header
    (`from_header`); a query or path parameter keeps its plain name."""
    fields: set[str] = getattr(request.state, "body_fields", set())
    headers: dict[str, str] = getattr(request.state, "header_fields", {})
    params = {*request.path_params, *request.query_params}

    def where(path: str) -> str:
        head = re.split(r"[.\[]", path, maxsplit=1)[0]
        if head in headers:
            return headers[head] + path[len(head) :]
        if head in fields and head not in params:
            return "$." + path
        return path

    error.details = [replace(p, path=where(p.path)) for p in error.details]
    return error


def from_header(request: Request, field: str, header: str) -> None:
    """Record that the value a service names `field` came from header `header`."""
    found: dict[str, str] = getattr(request.state, "header_fields", {})
    request.state.header_fields = {**found, field: f"headers.{header}"}


async def read_body(request: Request, limit: int, *, truncate: bool = False) -> bytes:
    """The raw body, at most `limit` bytes: 413 past it (also before reading when
    Content-Length announces more), or with `truncate` its first `limit` bytes, read no
    further (for a service that decides about the size itself)."""
    too_large = PayloadTooLarge(
        f"The request body is over the limit of {limit} bytes.",
        [Problem("$", f"more than {limit} bytes")],
    )
    length = request.headers.get("content-length") or ""
    if not truncate and length.isascii() and length.isdigit() and int(length) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        chunks.append(chunk)
        if size > limit:
            if truncate:
                return b"".join(chunks)[:limit]
            raise too_large
    return b"".join(chunks)


def _path(loc: tuple[int | str, ...]) -> str:
    # A key the caller sent (an unknown field's) is shown bounded, as values are.
    return "$" + "".join(f"[{p}]" if isinstance(p, int) else f".{shown(p)}" for p in loc)


def _problems(error: ValidationError) -> list[Problem]:
    out: list[Problem] = []
    for item in error.errors(include_url=False):
        kind = item["type"]
        if kind == "missing":
            message = "is required"
        elif kind == "extra_forbidden":
            message = "is not a known field"
        else:
            message = item["msg"]
        problem = Problem(_path(item["loc"]), message)
        if problem not in out:
            out.append(problem)
    return out


def check_depth(value: object, limit: int = MAX_JSON_DEPTH) -> None:
    """InvalidInput when a JSON value nests arrays and objects more than `limit` deep: the
    engine stores and re-encodes JSON with bounded recursion, so deeper values are
    refused here, up front, instead of failing somewhere inside."""
    if not json_depth_ok(value, limit):
        raise InvalidInput(
            f"The JSON is nested more than {limit} levels deep.",
            [Problem("$", f"nested more than {limit} levels deep")],
        )


def check_nul(value: object, root: str = "$") -> None:
    """InvalidInput naming the field when a string or key in a JSON value a caller sent
    holds NUL (U+0000), which PostgreSQL cannot store (see flowsync.codec)."""
    where = codec.nul_path(value, root)
    if where is not None:
        raise InvalidInput(
            f"The field {where} holds a NUL character (\\u0000), which FlowSync cannot store.",
            [Problem(where, "holds a NUL character (\\u0000)")],
        )


def is_json(content_type: str | None) -> bool:
    """Whether a Content-Type declares JSON: application/json or application/*+json,
    with any parameters (charset)."""
    kind = (content_type or "").split(";", 1)[0].strip().lower()
    return kind == "application/json" or (
        kind.startswith("application/") and kind.endswith("+json")
    )


async def json_body(request: Request, model: type[M], *, optional: bool = False) -> M:
    """The JSON object body checked against `model` (400 naming each bad field by its
    JSON path). With `optional`, an empty body is an empty object. A body that is not
    declared as JSON (text/plain, a form, no Content-Type) is 415, never read as JSON."""
    raw = await read_body(request, services(request).settings.max_body_bytes)
    if not raw.strip() and optional:
        raw = b"{}"
    elif raw and not is_json(request.headers.get("content-type")):
        sent = request.headers.get("content-type")
        raise UnsupportedMediaType(
            "The request body must be JSON, sent with Content-Type: application/json"
            + (f"; it was sent as {shown(sent)!r}." if sent else "; it was sent without one."),
            [Problem("headers.content-type", "must be application/json")],
        )
    try:
        value: Any = codec.loads(raw)
    except orjson.JSONDecodeError as exc:
        message = "is empty" if not raw.strip() else f"is not valid JSON ({exc})"
        raise InvalidInput(f"The request body {message}.", [Problem("$", message)]) from exc
    if not isinstance(value, dict):
        raise InvalidInput(
            "The request body must be a JSON object.", [Problem("$", "must be an object")]
        )
    check_depth(value)
    if codec.NUL_ESCAPE in raw:  # JSON can hold NUL only escaped: otherwise there is none
        check_nul(value)
    # The fields a service may name by their plain names (see `located`).
    request.state.body_fields = {info.alias or name for name, info in model.model_fields.items()}
    try:
        return model.model_validate(value)
    except ValidationError as exc:
        raise InvalidInput(
            "The request body is not of the expected shape.", _problems(exc)
        ) from exc


def refuse_nulls(body: Body, *names: str) -> None:
    """InvalidInput naming each of the fields `names` (snake_case) that the body sets to
    null. In a PUT a field left out stays as it is and null clears a field to its default
    (README, REST API); these fields have no default to clear to."""
    nulls = [n for n in names if n in body.model_fields_set and getattr(body, n) is None]
    if nulls:
        paths = [f"$.{to_camel(n)}" for n in nulls]
        raise InvalidInput(
            f"{', '.join(paths)} cannot be null: leave a field out to keep it as it is.",
            [Problem(p, "cannot be null (it has no default; leave it out to keep it)")
             for p in paths],
        )  # fmt: skip


def query_str(request: Request, name: str) -> str | None:
    """A query parameter as given (400 when it is absurdly long)."""
    value = request.query_params.get(name)
    if value is not None and len(value) > MAX_QUERY_STRING:
        raise InvalidInput(
            f"The query parameter {name} is too long.",
            [Problem(name, f"at most {MAX_QUERY_STRING} characters")],
        )
    if value is not None and "\x00" in value:
        raise InvalidInput(
            f"The query parameter {name} holds a NUL character (%00), which FlowSync cannot store.",
            [Problem(name, "holds a NUL character (%00)")],
        )
    return value


def query_int(request: Request, name: str) -> int | None:
    """An integer query parameter (400 when it is not one); its range is the service's."""
    value = query_str(request, name)
    if value is None:
        return None
    text = value.strip()
    # ASCII digits only: str.isdigit accepts "²", which int() refuses.
    if _WHOLE_NUMBER.fullmatch(text) is None:
        raise InvalidInput(
            f"The query parameter {name} must be a whole number.",
            [Problem(name, f"must be a whole number, not {shown(value)!r}")],
        )
    return int(text)


def query_datetime(request: Request, name: str) -> datetime | None:
    """An ISO-8601 time query parameter; one without an offset is passed on as it is,
    for the service to refuse naming it, as it does GraphQL's."""
    value = query_str(request, name)
    if value is None:
        return None
    try:
        parsed = datetime.fromisoformat(value.strip().replace("Z", "+00:00"))
        if parsed.tzinfo is None:
            return parsed
        # In UTC, as the database compares it; out of range there (year 0 or 10000) is bad.
        return parsed.astimezone(UTC)
    except (ValueError, OverflowError) as exc:
        raise InvalidInput(
            f"The query parameter {name} must be an ISO-8601 time.",
            [
                Problem(
                    name,
                    f"must be an ISO-8601 time such as 2024-05-01T12:00:00Z, not {shown(value)!r}",
                )
            ],
        ) from exc


def paging(request: Request) -> dict[str, Any]:
    """`limit` and `cursor` as the services take them; an empty cursor is no cursor (the
    first page), as a client that fills in `nextCursor` blindly sends it."""
    return {"limit": query_int(request, "limit"), "cursor": query_str(request, "cursor") or None}


def integral(value: object) -> object:
    """A JSON number with no fraction (`3.0`) as the integer it is; anything else as it is
    (so that a string stays a string and is refused)."""
    if isinstance(value, float) and value.is_integer():
        return int(value)
    return value


# An integer in a JSON body: 3 and 3.0 (JSON Schema's "integer" admits both), not "3".
JsonInt = Annotated[int, BeforeValidator(integral)]


def _uuid_text(value: str) -> str:
    try:
        uuid.UUID(value)
    except ValueError:
        raise ValueError(f"must be a UUID, not {shown(value)!r}") from None
    return value


# An id in a JSON body (`workflowId`): 400 naming the field when it is not a UUID, as an
# id in the path is (found by QA: it was a 404, "No workflow with id ..."). Whether it
# exists, and whose it is, is the services' (404 alike).
BodyId = Annotated[str, AfterValidator(_uuid_text)]


def path_id(request: Request, name: str = "id") -> str:
    """An id in the path: 400 naming the parameter when it is not a UUID (nothing can
    have it; found by QA, it was a 404 echoing the id whole). Which objects exist, and
    whose, is the services' (404 alike for a missing one and another owner's)."""
    value: str = request.path_params[name]
    try:
        uuid.UUID(value)
    except ValueError:
        raise InvalidInput(
            f"The path parameter {name} is not a valid id.",
            [Problem(name, f"must be a UUID, not {shown(value)!r}")],
        ) from None
    return value


def workflow_filter(request: Request) -> str | None:
    """The `workflowId` filter of a list. A malformed id, like another owner's, has nothing
    to list: it becomes the nil UUID, which no workflow has, so that the other parameters
    are still checked and the page is empty (as in the GraphQL face)."""
    value = query_str(request, "workflowId")
    if value is None:
        return None
    try:
        return str(uuid.UUID(value))
    except ValueError:
        return str(uuid.UUID(int=0))
