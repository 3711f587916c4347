"""The one exception tree of FlowSync.

    FlowSyncError
    ├── InvalidInput                 400  the request is malformed (not JSON, wrong shape)
    │   ├── DefinitionInvalid        422  a workflow definition breaks the spec's rules
    │   │   └── TriggerInvalid       422  a trigger's type or config breaks its rules
    │   ├── ExpressionSyntaxError    400  a CEL expression or template does not compile
    │   └── UnstorableValue          400  a JSON value holds what PostgreSQL cannot store
    ├── PayloadTooLarge              413  a body or definition is over its size limit
    ├── ResultTooLarge               413  a GraphQL result is over its size limit
    ├── UnsupportedMediaType         415  a body that is not declared as the type expected
    ├── Unauthenticated              401  no credentials, or credentials that do not verify
    ├── OperationNotAllowed          403  a GraphQL operation that is not on the safelist
    ├── Forbidden                    403  a team member whose role is below the operation's
    ├── RequestTimeout               408  a request's body did not arrive in time
    ├── NotFound                     404  missing, or owned by someone else (never 403)
    ├── Conflict                     409  the change clashes with the current state
    │   ├── VersionConflict          409  an update from a version that is not the current one
    │   └── WebhookReplayed          409  a signed webhook delivery's signature was used
    ├── RateLimited                  429  too many requests; retry after `retry_after`
    ├── TooManySubscriptions         429  a websocket already runs as many operations as allowed
    ├── Backpressure                 503  the queue sheds load; retry after `retry_after`
    ├── QueryTimeout                 503  a request's statement ran past the timeout
    ├── DatabaseUnavailable          503  no database connection (a restart, a failover)
    ├── ProviderUnavailable          503  the OIDC provider's discovery cannot be read or used
    ├── ConfigurationError               FlowSync cannot start as configured
    └── StepFailed                       a step failed; the engine records it on the step
        ├── ExpressionFailed             a CEL expression or template could not be evaluated
        ├── UrlRefused                   the SSRF guard refused an action's URL or address
        └── ResponseTooLarge             an action's reply body is over its size limit

Each error carries a stable `code` (used by both API faces) and, where useful, a list of
`details` (each a `Problem` naming a JSON path). `http_status()` is the single mapping to
HTTP statuses; the GraphQL face maps the same classes to its typed results.
"""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import ClassVar

from flowsync.echo import ECHO_CHARS
from flowsync.echo import shown as shown  # with the errors whose messages quote a value


@dataclass(frozen=True, slots=True)
class Problem:
    """One thing wrong with an input: where (a JSON path such as `$.nodes[2].data.url`)
    and what. `node_id` or `edge` name the graph element when there is one."""

    path: str
    message: str
    node_id: str | None = None
    edge: int | None = None

    def as_dict(self) -> dict[str, object]:
        """The problem as a JSON object with camelCase keys, omitting empty fields."""
        raw = asdict(self)
        out: dict[str, object] = {"path": raw["path"], "message": raw["message"]}
        if self.node_id is not None:
            out["nodeId"] = self.node_id
        if self.edge is not None:
            out["edge"] = self.edge
        return out


class FlowSyncError(Exception):
    """Root of every error FlowSync raises on purpose."""

    code: ClassVar[str] = "internal_error"
    status: ClassVar[int] = 500

    def __init__(self, message: str, details: list[Problem] | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.details: list[Problem] = list(details or [])

    def as_dict(self) -> dict[str, object]:
        """The error envelope body of api.md: code, message and details."""
        return {
            "code": self.code,
            "message": self.message,
            "details": [p.as_dict() for p in self.details],
        }


class InvalidInput(FlowSyncError):
    """The input is malformed: not JSON, or not of the expected shape."""

    code = "invalid_input"
    status = 400


class DefinitionInvalid(InvalidInput):
    """A workflow definition breaks one or more rules; `details` lists every problem."""

    code = "invalid_definition"
    status = 422


class TriggerInvalid(DefinitionInvalid):
    """A trigger's type or config breaks its rules: a bad cron expression or time zone, an
    unknown misfire policy, a webhook timeout over its bound. `details` names each field
    (`$.config.expression`, `$.config.timezone`, ...)."""

    code = "invalid_trigger"


class ExpressionSyntaxError(InvalidInput):
    """A CEL expression or a template does not compile: bad syntax, an unknown variable or
    function, or one over the size limits. For a template, `details` holds one `Problem`
    per bad string, each at its JSON path inside the template."""

    code = "expression_syntax_error"


class UnstorableValue(InvalidInput):
    """A JSON value about to be stored holds a NUL character (U+0000), which PostgreSQL's
    jsonb cannot store (see `flowsync.codec`); `details` names where. Inputs are refused
    before this, naming their field; a step's output that holds one fails its step."""

    code = "invalid_input"


class PayloadTooLarge(FlowSyncError):
    """A request body or definition is larger than its limit."""

    code = "payload_too_large"
    status = 413


class ResultTooLarge(FlowSyncError):
    """A GraphQL result grew past FLOWSYNC_GRAPHQL_MAX_RESPONSE_BYTES; none of it is sent."""

    code = "response_too_large"
    status = 413


class UnsupportedMediaType(FlowSyncError):
    """A request body whose Content-Type is not the one the route reads (JSON, for the
    REST routes that take a body); it was not read as anything. `details` names the
    header and the type expected."""

    code = "unsupported_media_type"
    status = 415


class Unauthenticated(FlowSyncError):
    """The caller sent no credentials, or credentials that do not verify."""

    code = "unauthenticated"
    status = 401


class OperationNotAllowed(FlowSyncError):
    """A GraphQL operation that is not registered while the API runs in safelist mode
    (`FLOWSYNC_GRAPHQL_SAFELIST`): it was not run. The caller may be allowed everything
    else; it is the document that is refused, hence 403 rather than 401."""

    code = "operation_not_allowed"
    status = 403


class Forbidden(FlowSyncError):
    """A member of the owning team called an operation that needs a higher role than
    theirs (see `flowsync.roles`): nothing was done. The message names the operation, the
    role it needs and the caller's. Anyone outside the team gets `NotFound` as before."""

    code = "forbidden"
    status = 403


class RequestTimeout(FlowSyncError):
    """A request's body did not arrive within FLOWSYNC_BODY_READ_TIMEOUT_SECONDS of the
    server asking for it (a client that sends its headers, then its body slowly or not
    at all): nothing was done, and the connection is closed."""

    code = "request_timeout"
    status = 408


class NotFound(FlowSyncError):
    """The object does not exist, or belongs to another owner (the two look the same)."""

    code = "not_found"
    status = 404


class Conflict(FlowSyncError):
    """The requested change clashes with the object's current state."""

    code = "conflict"
    status = 409


class VersionConflict(Conflict):
    """An update named the version its caller read (`expectedVersion`), and the workflow
    is at another one now: nothing changed. `current_version` is the version it is at,
    for the caller to fetch and compare."""

    def __init__(
        self, message: str, current_version: int, details: list[Problem] | None = None
    ) -> None:
        super().__init__(message, details)
        self.current_version = current_version


class WebhookReplayed(Conflict):
    """A signed webhook delivery presented a signature that was accepted before (a
    replay): it starts nothing. A sender that retries signs the delivery again."""

    code = "webhook_replayed"


class RateLimited(FlowSyncError):
    """The caller sent too many requests; it may retry after `retry_after` seconds."""

    code = "rate_limited"
    status = 429

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class TooManySubscriptions(FlowSyncError):
    """A websocket already runs FLOWSYNC_MAX_SUBSCRIPTIONS_PER_CONNECTION operations: the
    new one is refused (the others run on); end one, or open another socket."""

    code = "too_many_subscriptions"
    status = 429


class Backpressure(FlowSyncError):
    """The queue is deeper than its limit, so new executions are refused for now."""

    code = "backpressure"
    status = 503

    def __init__(self, message: str, retry_after: float) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class QueryTimeout(FlowSyncError):
    """A statement of the request ran past FLOWSYNC_STATEMENT_TIMEOUT_SECONDS and the
    database cancelled it: the request asked for too much at once (see
    `flowsync.db.timeouts`)."""

    code = "statement_timeout"
    status = 503


class DatabaseUnavailable(FlowSyncError):
    """The request could not reach a database that accepts writes (connection refused or
    lost, a server in recovery or shutting down), as during a restart or a failover:
    nothing was changed, unless the loss came after the commit, which a retry with the
    same idempotency key finds out. Retry after `retry_after` seconds."""

    code = "database_unavailable"
    status = 503

    def __init__(self, message: str, retry_after: float = 1.0) -> None:
        super().__init__(message)
        self.retry_after = retry_after


class ProviderUnavailable(FlowSyncError):
    """The dashboard's OIDC provider cannot be used now: its discovery document could not
    be read, or does not describe a provider the dashboard can sign in with. The message
    says which; it holds nothing secret (the dashboard shows it before sign-in)."""

    code = "provider_unavailable"
    status = 503


class ConfigurationError(FlowSyncError):
    """FlowSync cannot start as configured; the message says what to change."""

    code = "configuration_error"
    status = 500


class StepFailed(FlowSyncError):
    """A step failed. `retryable` tells the engine whether another attempt may succeed."""

    code = "step_failed"
    status = 500

    def __init__(self, message: str, *, retryable: bool = False) -> None:
        super().__init__(message)
        self.retryable = retryable


class ExpressionFailed(StepFailed):
    """A CEL expression or a template could not be evaluated against the step's context."""

    code = "expression_failed"


# How much of a value a caller sent an error message echoes (see `shown`).
ECHO_LIMIT = ECHO_CHARS


def http_status(error: FlowSyncError) -> int:
    """The HTTP status for an error: the one mapping both faces use."""
    return error.status


class LeaseLost(Conflict):
    """A worker tried to finish a job whose lease it no longer holds (the lease expired and
    another worker took the job over, or the execution was cancelled); nothing is written."""

    code = "lease_lost"


class UrlRefused(StepFailed):
    """The SSRF guard refused an `action` URL: a scheme other than http/https, a localhost
    name, or a host that is (or resolves to) an address that is not globally routable and
    not in the network allow list. The message says why; retrying cannot help."""

    code = "url_refused"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)


class ResponseTooLarge(StepFailed):
    """An `action` reply body was larger than the size limit; reading stopped there.
    The same request would get the same reply, so this is not retryable."""

    code = "response_too_large"

    def __init__(self, message: str) -> None:
        super().__init__(message, retryable=False)
