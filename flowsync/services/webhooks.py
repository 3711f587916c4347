"""Webhook ingress: a delivery to `/api/webhooks/{triggerId}` starts the trigger's
workflow. The HTTP face only hands over the raw body, the headers and the query; every
rule lives here, in this order:

1. The trigger must exist, be an enabled WEBHOOK trigger of a live workflow: NotFound
   otherwise (the same answer for all of those, and no owner is needed to ask).
2. A body over the trigger's `maxBodyBytes` is refused (PayloadTooLarge) before any other
   work; a face may stop reading after `max_body_bytes + 1` bytes.
3. With `requireSignature`, `X-FlowSync-Signature` must carry a signature made with the
   trigger's secret, with `t` within five minutes of now, either way:
   - `t=<unix>,v1=<hex>`: HMAC-SHA256(secret, f"{t}." + raw body): the body alone;
   - `t=<unix>,h=<name;name...>,v2=<hex>`: HMAC-SHA256 of `v2_message` (the timestamp,
     the raw query string, the Content-Type, the headers named in `h` and the body).
   It is checked on the raw bytes before anything is parsed, with a constant-time
   comparison; several `v1=` or `v2=` values may be sent (any may match).
   Unauthenticated says what is wrong: missing, malformed, stale, in the future, or not
   matching. A signature is accepted once: it is remembered (per trigger, until its
   five minutes are over) in the transaction that starts the run, and a delivery that
   presents it again is refused (Conflict, `webhook_replayed`) and starts nothing. A
   sender that retries signs again.
4. A body with a Content-Encoding (other than identity) is refused, UnsupportedMediaType:
   it is read as sent, never decompressed. The body is parsed by its Content-Type: JSON
   media types (`application/json`, `*/*+json`) strictly (malformed: InvalidInput);
   `application/x-www-form-urlencoded` into an object (a repeated field: a list of its
   values); anything else, or no Content-Type, is kept as text (UTF-8; other bytes:
   InvalidInput). An empty body is null.
5. The run starts with the trigger data `{"type": "WEBHOOK", "headers", "query", "body"}`
   as `trigger`, and as `input` the trigger's `input` template rendered over it (see
   `trigger_input`), by default the body (an empty body: `{}`). A template that fails on
   this delivery refuses it (InvalidInput, 400) and starts nothing. A workflow reads only
   what the signature vouches for: with a v1
   signature `headers` and `query` are empty; with v2 `query` is the signed query string
   and `headers` the headers named in `h` (with `content-type`). Unsigned deliveries
   (no `requireSignature`) pass every header and the query (an object, a repeated
   field as the list of its values, as for a form). Header names are
   lower-cased; Authorization, Proxy-Authorization, Cookie and the signature are never
   passed. An `Idempotency-Key` header dedupes deliveries: a redelivery with the same
   key returns the first run and starts nothing.
6. Asynchronous triggers answer 202 `{"executionId"}` at once. Synchronous ones wait up
   to `syncTimeoutSeconds` for the run's first completed `webhook_response` step and
   answer with its `status`, `headers` and `body`. A run that ends without reaching one
   (it has none, every one was skipped, or it failed first) answers by its status, with
   `{"executionId", "status"}`: 200 COMPLETED; 502 FAILED, adding `error` (the failed
   node's `nodeId`, `message` and `code`; a downstream reply's body never); 409
   CANCELLED, adding `error.message`. A run still going when the bound passes answers
   202 `{"executionId", "status"}` (PENDING or RUNNING): read the run to learn its end.
   The reply's headers are those `engine.reply_headers` allows: validation refuses the
   others when the workflow is saved, and what a template renders at run time that
   breaks the rules (a forbidden name, a line break, an active Content-Type) is dropped
   here, so a reply is always sent.

7. With `signal` in its config (`{"name", "match"}`), a delivery starts nothing: it sends
   signal `name`, with the parsed body as its payload, to the oldest active (PENDING or
   RUNNING) run of the trigger's workflow for which `match` is true: CEL over `trigger`
   (the data above) and `input` (that run's input), e.g. `trigger.body.orderId ==
   input.orderId`; the oldest MAX_MATCH_CANDIDATES runs are tried. It answers 202
   `{"executionId", "signal", "takenBy"}` (`takenBy`: the step that took it, null when it
   is kept for a wait the run has not reached), and the signal's rules apply as for
   `signalExecution` (400 when the run's workflow version waits for no such signal, 409
   when the run ended meanwhile). No run matches: 404, nothing is signalled (400 instead,
   with the first failure, when the match failed on some run it was tried on). The signature is
   remembered in the signal's transaction. An Idempotency-Key is not used here: a
   redelivery signals again (sign deliveries; a signed one is accepted once).

Waiting polls the run's step rows with a backoff from 10 ms to 200 ms: one indexed read
each, no listener connection, no NOTIFY on the engine's hot path.
"""

from __future__ import annotations

import asyncio
import hashlib
import hmac
import uuid
from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from typing import Any
from urllib.parse import parse_qsl

import asyncpg
import orjson

from flowsync.engine.reply_headers import safe_reply_headers
from flowsync.errors import (
    ExpressionFailed,
    InvalidInput,
    NotFound,
    PayloadTooLarge,
    Problem,
    Unauthenticated,
    UnsupportedMediaType,
    WebhookReplayed,
    shown,
)
from flowsync.services.executions import MAX_KEY_LENGTH, ExecutionService
from flowsync.services.inputs import MAX_DEPTH, json_depth_ok, parse_id
from flowsync.services.principal import Principal
from flowsync.services.trigger_input import compiled_match, render_input
from flowsync.services.triggers import WebhookConfig
from flowsync.worker.queue import Connection

__all__ = [
    "SIGNATURE_HEADER",
    "TOLERANCE_SECONDS",
    "WebhookResult",
    "WebhookService",
    "sign",
    "sign_v2",
    "v2_message",
]

SIGNATURE_HEADER = "x-flowsync-signature"
TOLERANCE_SECONDS = 300
DROPPED_HEADERS = frozenset({"authorization", "proxy-authorization", "cookie", SIGNATURE_HEADER})
_POLL_FIRST, _POLL_MAX = 0.01, 0.2

_LOOKUP_SQL = """
SELECT t.owner_id, t.workflow_id, t.config, t.secret
  FROM triggers t
  JOIN workflows w ON w.id = t.workflow_id AND w.deleted_at IS NULL
 WHERE t.id = $1 AND t.type = 'WEBHOOK' AND t.enabled
"""
_FIRED_SQL = "UPDATE triggers SET last_fired_at = now() WHERE id = $1"
# A signalling webhook's candidates: its workflow's active runs, oldest first.
_CANDIDATES_SQL = """
SELECT id, input FROM executions
 WHERE workflow_id = $1 AND status IN ('PENDING', 'RUNNING')
 ORDER BY created_at, id
 LIMIT $2
"""
# How many active runs a signalling webhook's match is tried on, oldest first.
MAX_MATCH_CANDIDATES = 1000
# A signature is remembered until it would be stale anyway; the primary key refuses a
# second use, also of two deliveries racing with it.
_REMEMBER_SQL = """
INSERT INTO webhook_signatures (trigger_id, signature, expires_at) VALUES ($1, $2, $3)
ON CONFLICT DO NOTHING RETURNING 1
"""
_REPLAYED = (
    "This signature was accepted before: a signed delivery is accepted once. To send it "
    "again, sign it again (a new `t`); add an Idempotency-Key header so that a redelivery "
    "starts no second run."
)
_SEEN_SQL = "SELECT true FROM webhook_signatures WHERE trigger_id = $1 AND signature = $2"
_PURGE_SQL = "DELETE FROM webhook_signatures WHERE expires_at < $1"
# How often (seconds) a process deletes the signatures that expired.
PURGE_SECONDS = 60.0
# The most headers a v2 signature may name.
MAX_SIGNED_HEADERS = 32
# The run's state for a synchronous reply: its status and error, and the output of its
# first completed webhook_response step.
_REPLY_SQL = """
SELECT e.status, e.error,
       (SELECT s.output FROM step_executions s
         WHERE s.execution_id = e.id AND s.node_type = 'webhook_response'
           AND s.status = 'COMPLETED'
         ORDER BY s.finished_at LIMIT 1) AS response
  FROM executions e
 WHERE e.id = $1
"""
# A synchronous reply for a run that ended without a webhook_response: by its status.
ENDED_STATUS = {"COMPLETED": 200, "FAILED": 502, "CANCELLED": 409}
# What of a run's error a synchronous reply passes on (never a downstream reply's body).
_ERROR_KEYS = ("nodeId", "message", "code")


@dataclass(frozen=True, slots=True)
class WebhookResult:
    """What to answer a delivery with: 202, the run was accepted (`body` is
    `{"executionId": ...}`, with its `status` after a synchronous wait); 200, 502 or 409
    for a synchronous run that ended without a `webhook_response` (see the module's
    docstring); otherwise the workflow's `webhook_response` (`responded`).
    `body` is any JSON value; a string with no Content-Type header is meant as text.
    `created` is False when the Idempotency-Key was seen before (no new run)."""

    status: int
    execution_id: uuid.UUID
    created: bool
    body: Any = None
    headers: dict[str, str] = field(default_factory=dict)
    responded: bool = False


def sign(secret: str, body: bytes, timestamp: int) -> str:
    """The `X-FlowSync-Signature` value for `body` sent at `timestamp` (unix seconds):
    what a sender computes; the key is the whole secret string, UTF-8."""
    digest = hmac.new(secret.encode(), f"{timestamp}.".encode() + body, hashlib.sha256)
    return f"t={timestamp},v1={digest.hexdigest()}"


def v2_message(
    timestamp: int, body: bytes, query: str, headers: Mapping[str, str], names: list[str]
) -> bytes:
    """What a v2 signature signs: lines of `v2`, the timestamp, the raw query string
    (after `?`, exactly as sent; empty when none), the Content-Type (empty when none),
    then `name:value` for each header named in `h`, in that order (names lower-case,
    values as sent, empty when absent), an empty line, and the raw body."""
    lowered = {k.lower(): v for k, v in headers.items()}
    lines = ["v2", str(timestamp), query, lowered.get("content-type", "")]
    lines += [f"{name}:{lowered.get(name, '')}" for name in names]
    return ("\n".join(lines) + "\n\n").encode() + body


def sign_v2(
    secret: str,
    body: bytes,
    timestamp: int,
    *,
    query: str = "",
    headers: Mapping[str, str] | None = None,
) -> str:
    """The v2 `X-FlowSync-Signature` value: signs the body, the query string, the
    Content-Type and each of `headers` (sent as they are given here)."""
    given = dict(headers or {})
    names = [k.lower() for k in given if k.lower() != "content-type"]
    message = v2_message(timestamp, body, query, given, names)
    digest = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
    return f"t={timestamp},h={';'.join(names)},v2={digest}"


@dataclass(frozen=True, slots=True)
class _Signature:
    """A verified signature: its digest (what is remembered), its time, and the header
    names it covers (None: v1, which covers the body alone)."""

    digest: str
    timestamp: int
    headers: list[str] | None


def _utcnow() -> datetime:
    return datetime.now(UTC)


class WebhookService:
    """Receives webhook deliveries (unauthenticated: the trigger id and, where required,
    the signature are the credentials)."""

    def __init__(
        self,
        pool: asyncpg.Pool,
        executions: ExecutionService,
        *,
        max_body_bytes: int,
        clock: Callable[[], datetime] = _utcnow,
    ):
        self._pool = pool
        self._executions = executions
        self._max_body_bytes = max_body_bytes
        self._clock = clock
        self._purged_at = float("-inf")

    async def receive(
        self,
        trigger_id: object,
        raw_body: bytes,
        headers: Mapping[str, str],
        query: str,
    ) -> WebhookResult:
        """Handle one delivery (see the module's docstring for every rule); `query` is
        the raw query string, without `?`."""
        tid = parse_id(trigger_id, "webhook trigger")
        row = await self._pool.fetchrow(_LOOKUP_SQL, tid)
        if row is None:
            raise NotFound(f"No webhook trigger with id {trigger_id}.")
        config = WebhookConfig.model_validate(row["config"] or {})
        limit = min(config.max_body_bytes or self._max_body_bytes, self._max_body_bytes)
        if len(raw_body) > limit:
            raise PayloadTooLarge(
                f"The body is over this webhook's limit of {limit} bytes.",
                [Problem("body", f"more than {limit} bytes")],
            )
        lowered = {name.lower(): value for name, value in headers.items()}
        signature: _Signature | None = None
        if config.require_signature:
            signature = self._verify(row["secret"], raw_body, lowered, query)
        _check_encoding(lowered.get("content-encoding"))
        body = parse_body(raw_body, lowered.get("content-type"))
        key = (lowered.get("idempotency-key") or "").strip() or None
        data = {
            "type": "WEBHOOK",
            "headers": _readable_headers(lowered, signature),
            "query": {} if signature is not None and signature.headers is None else
                     fold_fields(query),
            "body": body,
        }  # fmt: skip
        principal = Principal(owner_id=row["owner_id"], actor=f"webhook:{tid}")
        if config.signal is not None:
            return await self._signal(tid, row["workflow_id"], principal, config, data, signature)
        # The run's input: the trigger's template over this data, else the body.
        input = render_input(row["config"] or {}, data, body)
        scoped_key = None if key is None else idempotency_key(tid, key)
        if signature is None:
            started = await self._executions.start(
                principal, row["workflow_id"], input, idempotency_key=scoped_key,
                trigger_id=tid, trigger_type="WEBHOOK", trigger_data=data,
            )  # fmt: skip
            execution_id, created = started.execution.id, started.created
            if created:
                await self._pool.execute(_FIRED_SQL, tid)
        else:
            verified = signature

            async def start() -> tuple[uuid.UUID, bool]:
                # Admitted by the exact rule as its jobs are queued, as every start is; a
                # refusal rolls back the signature too, so a resend may still be accepted.
                async with self._pool.acquire() as conn, conn.transaction():
                    await self._remember(conn, tid, verified)
                    started = await self._executions.start_in(
                        conn, principal, row["workflow_id"], input, idempotency_key=scoped_key,
                        trigger_id=tid, trigger_type="WEBHOOK", trigger_data=data,
                        backpressure=True,
                    )  # fmt: skip
                    if started[1]:
                        await conn.execute(_FIRED_SQL, tid)
                return started

            execution_id, created = await self._executions.admitted(start, principal, scoped_key)
            await self._purge()
        if config.mode == "sync":
            return await self._reply(execution_id, created, config.sync_timeout_seconds)
        return _accepted(execution_id, created)

    async def _signal(
        self,
        tid: uuid.UUID,
        workflow_id: uuid.UUID,
        principal: Principal,
        config: WebhookConfig,
        data: dict[str, Any],
        signature: _Signature | None,
    ) -> WebhookResult:
        """A signalling webhook's delivery (see the module's docstring, 7.)."""
        assert config.signal is not None
        name, match = config.signal.name, compiled_match(config.signal.match)
        if signature is not None and await self._pool.fetchval(_SEEN_SQL, tid, signature.digest):
            # A replay is one whatever the runs are now (two racing deliveries are told
            # apart below, in the signal's transaction).
            raise WebhookReplayed(_REPLAYED)
        candidates = await self._pool.fetch(_CANDIDATES_SQL, workflow_id, MAX_MATCH_CANDIDATES)
        chosen: uuid.UUID | None = None
        failure: ExpressionFailed | None = None
        for candidate in candidates:
            try:
                if match.evaluate_bool({"trigger": data, "input": candidate["input"]}):
                    chosen = candidate["id"]
                    break
            except ExpressionFailed as exc:
                failure = failure or exc
        if chosen is None:
            if failure is not None:
                raise InvalidInput(
                    f"No run matched this delivery, and the match failed: {failure.message}",
                    [Problem("$.config.signal.match", failure.message)],
                ) from failure
            raise NotFound(
                f"No active run of this webhook's workflow matches this delivery "
                f"(signal {name!r}, match {match.quoted()}); nothing was signalled."
            )
        verified = signature

        async def remember(conn: Connection) -> None:
            if verified is not None:
                await self._remember(conn, tid, verified)

        _, sent = await self._executions.signal_execution(
            principal, chosen, name, data["body"], first=remember
        )
        if verified is not None:
            await self._purge()
        await self._pool.execute(_FIRED_SQL, tid)
        body = {"executionId": str(chosen), "signal": name, "takenBy": sent.node_id}
        return WebhookResult(202, chosen, True, body)

    async def _remember(
        self, conn: Connection, trigger_id: uuid.UUID, signature: _Signature
    ) -> None:
        expires = datetime.fromtimestamp(signature.timestamp + TOLERANCE_SECONDS, UTC)
        if await conn.fetchval(_REMEMBER_SQL, trigger_id, signature.digest, expires) is None:
            raise WebhookReplayed(_REPLAYED)

    async def _purge(self) -> None:
        """Delete expired signatures, at most once a minute per process."""
        loop = asyncio.get_running_loop()
        if loop.time() - self._purged_at < PURGE_SECONDS:
            return
        self._purged_at = loop.time()
        await self._pool.execute(_PURGE_SQL, self._clock())

    def _verify(
        self, secret: str | None, raw_body: bytes, headers: Mapping[str, str], query: str
    ) -> _Signature:
        header = headers.get(SIGNATURE_HEADER)
        if header is None or not header.strip():
            raise Unauthenticated(
                "This webhook requires a signature: send X-FlowSync-Signature: "
                "t=<unix time>,v1=<hex HMAC-SHA256 of '<t>.<body>' with the trigger's secret> "
                "(or v2, which also signs the query and headers: see the README)."
            )
        timestamp, names, candidates = _parse_signature(header)
        skew = int(self._clock().timestamp()) - timestamp
        if skew > TOLERANCE_SECONDS:
            raise Unauthenticated(
                f"The signature's timestamp is {skew} seconds old; signatures are accepted "
                f"for {TOLERANCE_SECONDS} seconds. Sign the delivery again."
            )
        if -skew > TOLERANCE_SECONDS:
            raise Unauthenticated(
                f"The signature's timestamp is {-skew} seconds in the future; at most "
                f"{TOLERANCE_SECONDS} seconds of clock difference are accepted."
            )
        if secret is None:
            raise Unauthenticated("This webhook has no secret; rotate it to get one.")
        if names is None:
            message = f"{timestamp}.".encode() + raw_body
        else:
            message = v2_message(timestamp, raw_body, query, headers, names)
        expected = hmac.new(secret.encode(), message, hashlib.sha256).hexdigest()
        matched = False
        for candidate in candidates:
            # Every candidate is compared, in constant time each.
            matched |= hmac.compare_digest(expected.encode(), candidate.lower().encode())
        if not matched:
            raise Unauthenticated(
                "The signature does not match the body: sign the raw body, exactly as "
                "sent, as '<t>.<body>' with the trigger's current secret."
                if names is None else
                "The v2 signature does not match: sign the timestamp, the raw query string, "
                "the Content-Type, the headers named in h (as sent) and the raw body with "
                "the trigger's current secret."
            )  # fmt: skip
        return _Signature(expected, timestamp, names)

    async def _reply(self, execution_id: uuid.UUID, created: bool, timeout: float) -> WebhookResult:
        loop = asyncio.get_running_loop()
        deadline = loop.time() + timeout
        delay = _POLL_FIRST
        while True:
            row = await self._pool.fetchrow(_REPLY_SQL, execution_id)
            if row is None:  # deleted with its workflow meanwhile: nothing more to say
                return _accepted(execution_id, created)
            if row["response"] is not None:
                return _responded(execution_id, created, row["response"])
            if row["status"] in ENDED_STATUS:
                return _ended(execution_id, created, row["status"], row["error"])
            left = deadline - loop.time()
            if left <= 0:
                return _accepted(execution_id, created, row["status"])
            await asyncio.sleep(min(delay, left))
            delay = min(delay * 2, _POLL_MAX)


def idempotency_key(trigger_id: uuid.UUID, key: str) -> str:
    """The execution idempotency key of a delivery: scoped to the trigger; a long header
    value is hashed so that any key fits."""
    scoped = f"webhook:{trigger_id}:{key}"
    if len(scoped) <= MAX_KEY_LENGTH and key:
        return scoped
    return f"webhook:{trigger_id}:sha256:{hashlib.sha256(key.encode()).hexdigest()}"


def _readable_headers(headers: Mapping[str, str], signature: _Signature | None) -> dict[str, str]:
    """The headers a workflow may read: all but credentials when nothing is signed, none
    under v1, the signed ones (and Content-Type) under v2."""
    if signature is None:
        return {k: v for k, v in headers.items() if k not in DROPPED_HEADERS}
    if signature.headers is None:
        return {}
    names = ["content-type", *signature.headers]
    return {n: headers[n] for n in names if n in headers and n not in DROPPED_HEADERS}


def _parse_signature(header: str) -> tuple[int, list[str] | None, list[str]]:
    """(t, the header names of a v2 signature or None for v1, the candidate digests)."""
    timestamp: int | None = None
    v1: list[str] = []
    v2: list[str] = []
    names: list[str] | None = None
    for part in header.split(","):
        name, _, value = part.strip().partition("=")
        if name == "t" and value.isascii() and value.isdigit() and len(value) <= 12:
            timestamp = int(value)
        elif name == "v1" and value:
            v1.append(value)
        elif name == "v2" and value:
            v2.append(value)
        elif name == "h":
            names = [n.strip().lower() for n in value.split(";") if n.strip()]
    if timestamp is None or not (v1 or v2) or (v1 and v2):
        raise Unauthenticated(
            "The X-FlowSync-Signature header is malformed; expected t=<unix time>,v1=<hex> "
            "or t=<unix time>,h=<header;names>,v2=<hex>."
        )
    if v1:
        return timestamp, None, v1
    names = names or []
    if len(names) > MAX_SIGNED_HEADERS:
        raise Unauthenticated(
            f"The signature names {len(names)} headers; at most {MAX_SIGNED_HEADERS} may be signed."
        )
    return timestamp, names, v2


def _check_encoding(encoding: str | None) -> None:
    """UnsupportedMediaType for a compressed body (any Content-Encoding but identity):
    it used to be parsed as it came, so a gzipped JSON delivery was a 400 "not valid
    JSON" (or "not UTF-8") that named neither the header nor the fix (found by QA)."""
    if encoding is None or encoding.strip().lower() in ("", "identity"):
        return
    raise UnsupportedMediaType(
        f"The body is sent with Content-Encoding {shown(encoding)!r}; webhook ingress reads "
        "bodies as they are sent: send it uncompressed.",
        [Problem("headers.content-encoding", "must be absent or identity")],
    )


def parse_body(raw: bytes, content_type: str | None) -> Any:
    """A delivery's body as a JSON value, by its Content-Type (see the module docstring)."""
    if not raw:
        return None
    media = (content_type or "").split(";")[0].strip().lower()
    if media == "application/json" or (
        media.startswith("application/") and media.endswith("+json")
    ):
        try:
            value = orjson.loads(raw)
        except orjson.JSONDecodeError as exc:
            raise InvalidInput(
                f"The body is not valid JSON: {exc}.", [Problem("body", "not valid JSON")]
            ) from exc
        if not json_depth_ok(value):
            raise InvalidInput(
                f"The body is JSON nested more than {MAX_DEPTH} levels deep.",
                [Problem("body", f"nested more than {MAX_DEPTH} levels deep")],
            )
        return value
    try:
        text = raw.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise InvalidInput(
            "The body is not UTF-8 text; send JSON, a form or text.",
            [Problem("body", "not UTF-8 text")],
        ) from exc
    if media == "application/x-www-form-urlencoded":
        return fold_fields(text)
    return text


def fold_fields(text: str) -> dict[str, Any]:
    """A query string or a form as an object: each field's value, or the list of its
    values when it is repeated (`a=1&a=2`: `{"a": ["1", "2"]}`). A repeated query field
    used to keep only its last value, silently (found by QA)."""
    fields: dict[str, Any] = {}
    for name, value in parse_qsl(text, keep_blank_values=True):
        if name not in fields:
            fields[name] = value
        elif isinstance(fields[name], list):
            fields[name].append(value)
        else:
            fields[name] = [fields[name], value]
    return fields


def _accepted(execution_id: uuid.UUID, created: bool, status: str | None = None) -> WebhookResult:
    """202: the run was accepted (with its status when a synchronous wait ran out)."""
    body: dict[str, Any] = {"executionId": str(execution_id)}
    if status is not None:
        body["status"] = status
    return WebhookResult(202, execution_id, created, body)


def _ended(execution_id: uuid.UUID, created: bool, status: str, error: Any) -> WebhookResult:
    """A synchronous reply for a run that ended without reaching a webhook_response:
    200 COMPLETED, 502 FAILED, 409 CANCELLED, with the run's id and status, and for a
    failure its error's node, message and code (not a downstream reply's body)."""
    body: dict[str, Any] = {"executionId": str(execution_id), "status": status}
    if status != "COMPLETED" and isinstance(error, dict):
        body["error"] = {k: error[k] for k in _ERROR_KEYS if error.get(k) is not None}
    return WebhookResult(ENDED_STATUS[status], execution_id, created, body)


def _responded(execution_id: uuid.UUID, created: bool, output: Any) -> WebhookResult:
    """The reply a `webhook_response` step's output `{"status", "headers", "body"}`
    describes, with only the headers a reply may carry; odd values fall back to 200, no
    headers, the output as the body."""
    if not isinstance(output, dict):
        return WebhookResult(200, execution_id, created, output, responded=True)
    status = output.get("status")
    if not (isinstance(status, int) and not isinstance(status, bool) and 200 <= status <= 599):
        status = 200
    raw_headers = output.get("headers")
    headers = safe_reply_headers(
        {
            str(k): str(v)
            for k, v in (raw_headers.items() if isinstance(raw_headers, dict) else ())
            if v is not None
        }
    )
    return WebhookResult(status, execution_id, created, output.get("body"), headers, True)
