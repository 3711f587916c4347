"""The `action` and `webhook_response` step handlers.

`action` makes one HTTP call per attempt through the SSRF-guarded client. The header
`Idempotency-Key: <executionId>:<nodeId>` is the same on every attempt and after a crash,
so a target can drop repeats. A reply is a success when its status is in
`successStatuses`; 408, 429, 5xx, timeouts and network errors are retried with backoff
(honouring `Retry-After` on 429 and 503) while attempts last; anything else, a refused URL
or an oversize reply fails the step at once.
"""

from __future__ import annotations

import json
import random
import re
import time
from collections.abc import Callable
from datetime import timedelta
from typing import Any

from flowsync import codec
from flowsync.engine.definition import ActionData
from flowsync.engine.expressions import SECRETS
from flowsync.engine.validation import CompiledNode
from flowsync.errors import ExpressionFailed, StepFailed
from flowsync.worker.evaluation import Evaluator, default_evaluator
from flowsync.worker.handlers import Completed, Failed, Outcome, StepContext
from flowsync.worker.http_client import GuardedClient, HttpRequest, send
from flowsync.worker.netguard import NetworkPolicy
from flowsync.worker.redaction import Redactor
from flowsync.worker.retry import classify, next_delay, retry_after_for

# Characters PostgreSQL cannot store: NUL, and surrogates (only ever lone in a str).
_UNSTORABLE = re.compile("[\x00\ud800-\udfff]")

# How much of a failed reply's body an error keeps.
ERROR_BODY_CHARS = 500


def _text_map(value: Any, what: str) -> dict[str, str]:
    if value is None:
        return {}
    if not isinstance(value, dict):
        raise ExpressionFailed(f"the action's {what} gave {type(value).__name__}, not an object")
    return {str(k): v if isinstance(v, str) else _scalar(v) for k, v in value.items()}


def _scalar(value: Any) -> str:
    """A header's or query parameter's value as text, as a template interpolates it
    anywhere else: a list or an object as its JSON."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if value is None:
        return ""
    if isinstance(value, dict | list):
        return codec.dumps(value).decode()
    return str(value)


def _error_body(body: Any) -> dict[str, Any]:
    """A failed reply's body as its error keeps it, always a JSON value: the decoded JSON
    itself when its text fits in ERROR_BODY_CHARS, else its JSON text (or the reply's text)
    cut there, with `bodyTruncated`."""
    if not isinstance(body, str):
        text = json.dumps(body, ensure_ascii=False, separators=(",", ":"))
        if len(text) <= ERROR_BODY_CHARS and _storable(text):
            return {"body": body}
        body = text
    # Text PostgreSQL cannot store (NUL, a lone surrogate) is replaced: found by QA, a
    # 503 whose body held one was recorded as output_unstorable, and not retried.
    body = _UNSTORABLE.sub("\ufffd", body)
    if len(body) <= ERROR_BODY_CHARS:
        return {"body": body}
    return {"body": body[:ERROR_BODY_CHARS], "bodyTruncated": True}


def _storable(json_text: str) -> bool:
    """Whether the value whose JSON this is has no NUL (escaped as \\u0000 in JSON) and
    no lone surrogate (kept as it is by ensure_ascii=False)."""
    if "\\u0000" in json_text:
        return False
    try:
        json_text.encode()
    except UnicodeEncodeError:
        return False
    return True


class ActionHandler:
    """HTTP calls, one per attempt. One guarded client per worker: connections are
    pooled per host, and each new connection's address is checked."""

    def __init__(
        self,
        policy: NetworkPolicy,
        *,
        max_response_bytes: int = 10 * 1024 * 1024,
        rand: Callable[[], float] = random.random,
        evaluator: Evaluator | None = None,
    ):
        self.policy = policy
        self.max_response_bytes = max_response_bytes
        self.rand = rand
        self.evaluator = evaluator or default_evaluator()
        self._client: GuardedClient | None = None

    def needs_steps(self, node: CompiledNode) -> bool:
        parts = (node.url, node.headers, node.query, node.body)
        return any("steps" in e.variables for p in parts if p for e in p.expressions)

    def _client_for(self) -> GuardedClient:
        if self._client is None:
            self._client = GuardedClient(self.policy)
        return self._client

    async def close(self) -> None:
        """Close pooled connections and stop the evaluator's processes."""
        if self._client is not None:
            await self._client.aclose()
            self._client = None
        await self.evaluator.close()

    def _retry_at(self, ctx: StepContext, began: float, retry_after: float | None) -> Any:
        """When to try again: the backoff (or the reply's Retry-After) counted from now,
        the failure, not from the attempt's start (`ctx.now`, at time.monotonic()
        `began`): an attempt that took longer than its backoff is still waited for."""
        data = ctx.node.data
        assert isinstance(data, ActionData)
        delay = next_delay(data.retry, ctx.job.attempts, retry_after=retry_after, rand=self.rand)
        return ctx.now + timedelta(seconds=time.monotonic() - began + delay)

    async def run(self, ctx: StepContext) -> Outcome:
        began = time.monotonic()
        data = ctx.node.data
        assert isinstance(data, ActionData)
        render = self.evaluator.render
        v, node_id = ctx.variables, ctx.node.id
        url = await render(ctx.node.url, v, node_id) if ctx.node.url else data.url
        if not isinstance(url, str):
            raise ExpressionFailed(f"the action's url gave {type(url).__name__}, not text")
        headers = await render(ctx.node.headers, v, node_id) if ctx.node.headers else {}
        query = await render(ctx.node.query, v, node_id) if ctx.node.query else {}
        request = HttpRequest(
            method=data.method,
            url=url,
            headers=_text_map(headers, "headers"),
            query=dict(_text_map(query, "query")),
            body=await render(ctx.node.body, v, node_id) if ctx.node.body else data.body,
            idempotency_key=f"{ctx.job.execution_id}:{ctx.node.id}",
            max_json_bytes=self.evaluator.max_output_bytes,
        )
        try:
            reply = await send(
                request,
                policy=self.policy,
                client=self._client_for(),
                max_response_bytes=self.max_response_bytes,
                timeout=data.timeout_seconds,
            )
        except StepFailed as exc:
            failure: dict[str, Any] = {"message": exc.message, "code": exc.code}
            if exc.retryable:
                return Failed(failure, retryable=True, retry_at=self._retry_at(ctx, began, None))
            return Failed(failure)
        if data.accepts(reply.status):
            return Completed(self.evaluator.output(reply.as_output(), ctx.node.id))
        # A reply that echoes a secret is redacted before its body is cut to size, so
        # that no part of a value survives the cut (the worker redacts the rest).
        redactor = Redactor(ctx.variables.get(SECRETS) or {})
        error = {
            "message": f"{data.method} {reply.url or url} answered {reply.status}",
            "code": "http_status",
            "status": reply.status,
            **_error_body(redactor.value(reply.body)),
        }
        if classify(reply.status, ()) == "retry":
            wait = retry_after_for(reply.status, reply.retry_after_seconds)
            return Failed(error, retryable=True, retry_at=self._retry_at(ctx, began, wait))
        return Failed(error)


class WebhookResponseHandler:
    """`webhook_response`: `{"status", "headers", "body"}` from its templates; a webhook
    call waiting in synchronous mode answers with it."""

    def __init__(self, evaluator: Evaluator | None = None) -> None:
        self.evaluator = evaluator or default_evaluator()

    async def close(self) -> None:
        """Stop the evaluator's processes."""
        await self.evaluator.close()

    def needs_steps(self, node: CompiledNode) -> bool:
        parts = (node.headers, node.body)
        return any("steps" in e.variables for p in parts if p for e in p.expressions)

    async def run(self, ctx: StepContext) -> Outcome:
        data = ctx.node.data
        status = getattr(data, "status", 200)
        render, v, node_id = self.evaluator.render, ctx.variables, ctx.node.id
        headers = _text_map(await render(ctx.node.headers, v, node_id) if ctx.node.headers else {},
                            "headers")  # fmt: skip
        body = (
            await render(ctx.node.body, v, node_id)
            if ctx.node.body
            else getattr(data, "body", None)
        )
        reply = {"status": status, "headers": headers, "body": body}
        return Completed(self.evaluator.output(reply, node_id))
