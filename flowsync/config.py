"""Settings, read once from `FLOWSYNC_*` environment variables (and a `.env` file) into one
object that callers pass on explicitly. Nothing else in FlowSync reads the environment."""

from __future__ import annotations

import os
from pathlib import Path
from typing import Literal
from urllib.parse import parse_qsl, quote, unquote, urlencode, urlsplit, urlunsplit

import platformdirs
from pydantic import Field, SecretStr, ValidationError, field_validator, model_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

from flowsync.roles import ROLE_NAMES, Role


def parse_role_map(text: str) -> dict[str, Role]:
    """`value=role,value=role` as a mapping, where each role name also maps to itself;
    ValueError naming the pair that is not `value=role` or the role that does not exist."""
    mapping = {role.value: role for role in Role}
    for pair in text.split(","):
        if not pair.strip():
            continue
        value, eq, role = pair.rpartition("=")
        if not eq or not value.strip():
            raise ValueError(f"{pair.strip()!r} is not claim-value=role")
        if role.strip().lower() not in ROLE_NAMES:
            raise ValueError(
                f"{role.strip()!r} (for {value.strip()!r}) is not a role; the roles are "
                f"{', '.join(ROLE_NAMES)}"
            )
        mapping[value.strip()] = Role(role.strip().lower())
    return mapping


def default_data_dir() -> Path:
    """Where the embedded database lives when no `FLOWSYNC_DATA_DIR` is given.

    The user's data directory, except for root: pgserver opens the permissions of every
    parent folder of its data directory, which must never reach root's home."""
    if hasattr(os, "geteuid") and os.geteuid() == 0:
        return Path("/var/lib/flowsync")
    return Path(platformdirs.user_data_dir("flowsync", appauthor=False))


class Settings(BaseSettings):
    """Every setting of FlowSync. Each field is read from `FLOWSYNC_<NAME>`."""

    model_config = SettingsConfigDict(
        env_prefix="FLOWSYNC_", env_file=".env", extra="ignore", frozen=True
    )

    database_url: str | None = Field(
        default=None,
        description="PostgreSQL URL. Unset: an embedded PostgreSQL in data_dir is started.",
    )
    database_pooler: Literal["none", "session", "transaction"] = Field(
        default="none",
        description="What FLOWSYNC_DATABASE_URL goes through: 'none' (PostgreSQL itself), "
        "'transaction' (PgBouncer in transaction mode: no named prepared statements, no "
        "startup parameters, LISTEN on FLOWSYNC_LISTEN_DATABASE_URL) or 'session' (a "
        "session-mode pooler, accepted knowingly). Checked at start (see flowsync/db/pooler.py).",
    )
    listen_database_url: str | None = Field(
        default=None,
        description="A direct PostgreSQL URL for LISTEN (never a transaction pooler). Unset: "
        "FLOWSYNC_DATABASE_URL, or, under FLOWSYNC_DATABASE_POOLER=transaction, polling.",
    )
    data_dir: Path = Field(default_factory=default_data_dir)
    host: str = "127.0.0.1"
    port: int = Field(default=8000, ge=0, le=65535)
    log_level: str = "info"

    # Database pool
    pool_size: int = Field(default=10, ge=1)
    max_overflow: int = Field(default=10, ge=0)
    statement_timeout_seconds: float = Field(
        default=10.0,
        gt=0,
        le=3600,
        description="The longest one SQL statement of an API request may run before the "
        "database cancels it (the API's connections only; workers and LISTEN have none).",
    )

    # Limits on workflow definitions and request bodies
    max_definition_bytes: int = Field(default=1024 * 1024, ge=1)
    max_body_bytes: int = Field(default=2 * 1024 * 1024, ge=1)
    body_read_timeout_seconds: float = Field(
        default=30.0,
        gt=0,
        le=3600,
        description="The longest a request's whole body may take to arrive once the server "
        "reads it: past it, 408 and the connection is closed (a slow client held a request, "
        "and its connection, forever).",
    )

    # Queue and workers
    worker_concurrency: int = Field(default=16, ge=1, le=1000)
    # A dead worker's jobs return to the queue within lease + reclaim seconds (≤ 25 s).
    lease_seconds: float = Field(default=20.0, gt=0)
    heartbeat_seconds: float = Field(default=5.0, gt=0)
    poll_seconds: float = Field(default=2.0, gt=0)
    reclaim_seconds: float = Field(default=5.0, gt=0)
    step_start_seconds: float = Field(
        default=0.05,
        ge=0,
        description="A claimed step still running after this long has its start (RUNNING, "
        "step.started) written at once; a quicker one's is written with its outcome.",
    )
    worker_backlog: int | None = Field(
        default=None,
        ge=0,
        le=100_000,
        description="At most how many of a fork's other branches the worker that takes one "
        "keeps leased to itself, to run before it claims anything (fewer for slow steps: "
        "what its slots start within 0.1 s, at least one per slot; unset: eight per slot "
        "of its concurrency; 0: none, every branch is queued for any worker).",
    )
    worker_backlog_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How long a step kept in a worker's backlog waits for a free slot "
        "before it goes back to the queue for any worker.",
    )
    # HTTP actions
    allow_networks: str = Field(
        default="",
        description="Hosts or networks (CIDR) that actions may call although they are not "
        "globally routable, comma-separated, e.g. '127.0.0.1/32,intranet.example'.",
    )
    max_response_bytes: int = Field(default=10 * 1024 * 1024, ge=1)
    # Expressions and step outputs (see flowsync/worker/evaluation.py)
    expression_timeout_seconds: float = Field(
        default=1.0,
        gt=0,
        description="How long a costly expression (one that iterates a list from data, "
        "or whose estimate is high) may run, in a process of its own, before its step "
        "fails.",
    )
    max_step_output_bytes: int = Field(
        default=4 * 1024 * 1024,
        ge=1,
        description="The largest step output (its JSON); a larger one fails its step, and "
        "a template fails as soon as what it renders grows past it.",
    )
    # Webhook ingress
    webhook_base_url: str | None = Field(
        default=None,
        description="Where webhook deliveries are received, e.g. 'https://hooks.example.com': "
        "triggers report `<this>/api/webhooks/<id>` as their webhookUrl. Give ingress a host "
        "name of its own, so that a workflow's reply is never served on the origin of "
        "FlowSync's pages. Unset: the path alone, on the API's origin.",
    )
    shutdown_grace_seconds: float = Field(default=10.0, ge=0)
    dev_worker: bool = True
    event_loop: Literal["uvloop", "asyncio"] = Field(
        default="uvloop",
        description="The event loop of `flowsync dev` and `flowsync worker`: uvloop (where "
        "it is installed; not on Windows) or the standard library's.",
    )
    extra_handlers: str = Field(
        default="",
        description="Extra or replacement step handlers: 'type=module:attr,...' (plugins, tests).",
    )
    max_queue_depth: int = Field(default=100_000, ge=1)
    max_workflow_depth: int = Field(
        default=10,
        ge=1,
        le=1000,
        description="How deep child workflows (`workflow` nodes) may nest under their root "
        "execution; a step that would start a child deeper fails instead.",
    )
    max_batch_starts: int = Field(
        default=1000,
        ge=1,
        le=100_000,
        description="The most executions one batch start (startExecutions, POST "
        "/api/workflows/{id}/executions:batch) may start; a larger batch is refused whole.",
    )

    # Cron scheduler (runs in every worker and in `flowsync dev`)
    scheduler_enabled: bool = Field(
        default=True, description="Run the cron scheduler in this worker or dev process."
    )
    scheduler_tick_seconds: float = Field(default=1.0, gt=0, le=1.0)
    # A firing at most this late is on time; later ones are misfires (the trigger's policy).
    scheduler_misfire_grace_seconds: float = Field(default=60.0, gt=0, le=3600)
    # How long firing records are kept (the history behind scheduler status).
    scheduler_history_hours: float = Field(default=168.0, gt=0)
    backfill_max_ticks: int = Field(
        default=10_000,
        ge=1,
        le=1_000_000,
        description="The most fire times one backfill of a cron trigger may start; a longer "
        "range is refused (split it).",
    )

    # Retention (see flowsync/retention): history older than these windows is deleted in
    # small batches by one process at a time. 0 (the default): kept forever.
    retain_executions_days: int = Field(
        default=0,
        description="Finished runs (COMPLETED, FAILED, CANCELLED), with their steps, events "
        "and dead letters, are deleted this many days after they finished; 0: kept forever.",
    )
    retain_dead_letters_days: int = Field(
        default=0,
        description="Dead letters are deleted this many days after they were made; 0: kept "
        "forever. A run is kept while it has a dead letter this keeps.",
    )
    retain_audit_days: int = Field(
        default=0,
        description="Audit entries are deleted this many days after they were written; 0: "
        "kept forever.",
    )
    retention_interval_seconds: float = Field(
        default=600.0,
        gt=0,
        description="How often each worker (and `flowsync dev`) runs retention, beside its "
        "cron scheduler; one process prunes at a time.",
    )
    queue_vacuum_interval_seconds: float = Field(
        default=60.0,
        ge=0,
        description="How often the process running retention checks the queue's and the run "
        "history's tables and vacuums each when dead rows pile up and no vacuum ran on it "
        "within this interval (whatever autovacuum does; see flowsync/retention/upkeep.py); "
        "0: never.",
    )

    # Authentication: OIDC JWTs (any provider) besides FlowSync's own API keys.
    jwks_url: str | None = Field(
        default=None, description="JWKS URL of the OIDC provider; unset: JWTs are refused."
    )
    jwt_issuer: str | None = None
    jwt_audience: str | None = None
    jwt_algorithms: str = Field(default="RS256", description="Comma-separated, e.g. RS256,ES256.")
    jwt_leeway_seconds: float = Field(default=10.0, ge=0)
    jwks_cache_seconds: int = Field(default=300, ge=1)
    # Teams from JWT claims (docs/sign-in.md). The defaults read Clerk's organisation
    # claims, so that a team moving from the original FlowSync keeps its sign-in.
    jwt_team_claim: str = Field(
        default="org_id",
        description="The claim naming the caller's team; a JWT without it signs in to its "
        "subject's personal team. Empty: teams come from the members table only.",
    )
    jwt_role_claim: str = Field(
        default="org_role", description="The claim holding the caller's role in that team."
    )
    jwt_role_map: str = Field(
        default="org:admin=admin,org:member=operator",
        description="Comma-separated claim value=role pairs; the role names themselves "
        "(viewer, operator, editor, admin) always map to themselves. A missing or "
        "unmapped role claim is viewer.",
    )
    # The dashboard's "Sign in with <provider>" (OIDC Authorization Code flow with PKCE, run
    # by the browser as a public client: no client secret). The provider is jwt_issuer,
    # found through its discovery document; the tokens it issues are verified as above.
    oidc_client_id: str | None = Field(
        default=None,
        description="The dashboard's client id at the OIDC provider (FLOWSYNC_JWT_ISSUER); "
        "unset: no provider sign-in, keys and tokens are pasted.",
    )
    oidc_provider_name: str | None = Field(
        default=None, description="Shown as 'Sign in with <this>'; unset: the issuer's host."
    )
    oidc_scopes: str = Field(
        default="openid profile email",
        description="The scopes the dashboard asks for, space-separated; must hold 'openid'.",
    )
    oidc_bearer: Literal["id_token", "access_token"] = Field(
        default="id_token",
        description="Which token of the provider's reply the dashboard sends as its bearer "
        "JWT: the ID token (its audience is the client id), or an access token that is a JWT.",
    )

    # The GraphQL face
    graphiql: bool = Field(default=False, description="GraphiQL at GET /graphql (on in dev).")
    introspection: bool = Field(default=False, description="Schema introspection (on in dev).")
    max_query_depth: int = Field(default=12, ge=1)
    max_introspection_depth: int = Field(
        default=15,
        ge=1,
        description="How deep an introspection selection (under __schema or __type) may "
        "nest; the standard introspection query (GraphiQL's, graphql-codegen's) is 14.",
    )
    max_query_aliases: int = Field(default=30, ge=1)
    max_query_tokens: int = Field(default=2000, ge=1)
    max_query_cost: int = Field(
        default=50_000, ge=1, description="Objects one query may ask for (see schema/cost.py)."
    )
    graphql_max_response_bytes: int = Field(
        default=32 * 1024 * 1024,
        ge=1024,
        description="The most one GraphQL result may hold, in bytes of JSON (see "
        "schema/budget.py); past it the result is the error response_too_large.",
    )
    persisted_query_cache_size: int = Field(
        default=1000, ge=1,
        description="Documents kept for automatic persisted queries (LRU, per API process).",
    )  # fmt: skip
    graphql_safelist: Path | None = Field(
        default=None,
        description="Safelist mode: a persisted query manifest (`flowsync graphql register`); "
        "only its operations and the dashboard's run, over every transport. Unset: any "
        "valid operation runs.",
    )
    max_subscriptions_per_connection: int = Field(default=100, ge=1)
    ws_init_timeout_seconds: float = Field(default=10.0, gt=0)
    ws_allowed_origins: str = Field(
        default="", description="Comma-separated origins allowed to open cross-origin websockets."
    )
    # Rate limits in the `limits` notation ("600/minute"; several: "20/second;600/minute").
    rate_limit_per_ip: str = "1200/minute"
    rate_limit_per_principal: str = "600/minute"
    rate_limit_storage: str = Field(
        default="memory://",
        description="A `limits` storage URI; memory:// counts per API process.",
    )

    # Live subscriptions
    subscription_poll_seconds: float = Field(default=2.0, gt=0)
    watcher_refresh_seconds: float = Field(default=10.0, gt=0)
    watcher_ttl_seconds: float = Field(default=30.0, gt=0)
    credential_check_seconds: float = Field(default=5.0, gt=0)
    max_subscriber_backlog: int = Field(default=10_000, ge=1)
    send_timeout_seconds: float = Field(
        default=30.0, gt=0,
        description="How long one write to a client (a response's chunk, a subscription's "
        "event, a websocket message) may wait for the client to read; past it the client "
        "is taken as gone: its connection, and every subscription on it, ends.",
    )  # fmt: skip

    # Observability (REST face, /metrics, logs)
    log_format: Literal["text", "json"] = Field(
        default="text", description="Log lines as text, or as one JSON object per line."
    )
    metrics_token: SecretStr | None = Field(
        default=None,
        description="/metrics requires `Authorization: Bearer <this token>`; unset: /metrics "
        "answers 404 (except under `metrics_open`).",
    )
    metrics_open: bool = Field(
        default=False,
        description="/metrics without a token while no token is set (on in `dev` listening "
        "on a loopback address; never set it where anyone but you reaches the port).",
    )
    worker_metrics_port: int | None = Field(
        default=None,
        ge=0,
        le=65535,
        description="`flowsync worker` serves its own metrics at http://<host>:<this>/metrics "
        "(0: a free port, logged); unset: none. Needs metrics_token, as /metrics does.",
    )
    worker_metrics_host: str = Field(
        default="127.0.0.1", description="The address the worker's metrics port listens on."
    )

    # Secrets (flowsync/secrets_crypto.py): AES-256-GCM at rest.
    secret_key: SecretStr | None = Field(
        default=None,
        description="The key that encrypts secrets: 32 random bytes in base64. Or "
        "secret_key_file. Unset in `dev`: a key file made in data_dir.",
    )
    secret_key_file: Path | None = Field(
        default=None, description="A file holding the secret key (base64), instead of secret_key."
    )
    secret_previous_key: SecretStr | None = Field(
        default=None,
        description="The key being rotated away from: secrets it encrypted still decrypt "
        "until `flowsync secrets rotate-key` encrypts them with the current key.",
    )

    @field_validator("webhook_base_url")
    @classmethod
    def _base_url(cls, value: str | None) -> str | None:
        if value is None or not value.strip():
            return None
        value = value.strip().rstrip("/")
        parts = urlsplit(value)
        if parts.scheme not in ("http", "https") or not parts.netloc:
            raise ValueError("must be an absolute http:// or https:// URL")
        if parts.query or parts.fragment:
            raise ValueError("must have no query or fragment")
        return value

    @field_validator("jwt_role_map")
    @classmethod
    def _role_map(cls, value: str) -> str:
        parse_role_map(value)
        return value

    def role_map(self) -> dict[str, Role]:
        """FLOWSYNC_JWT_ROLE_MAP as claim value → role, the role names included."""
        return parse_role_map(self.jwt_role_map)

    @field_validator(
        "graphql_safelist", "secret_key", "secret_key_file", "secret_previous_key", mode="before"
    )
    @classmethod
    def _blank_path(cls, value: object) -> object:
        """A blank value is unset (safelist mode off, no secret key)."""
        if isinstance(value, str) and not value.strip():
            return None
        return value

    @field_validator(
        "retain_executions_days", "retain_dead_letters_days", "retain_audit_days", mode="before"
    )
    @classmethod
    def _days(cls, value: object) -> object:
        """A whole number of days, 0 or more; blank is 0 (kept forever)."""
        if isinstance(value, str):
            value = value.strip() or "0"
            if not value.isascii() or not value.isdigit():
                raise ValueError("must be a whole number of days, 0 or more (0: kept forever)")
            return int(value)
        if isinstance(value, bool) or not isinstance(value, int) or value < 0:
            raise ValueError("must be a whole number of days, 0 or more (0: kept forever)")
        return value

    @field_validator("oidc_client_id", "oidc_provider_name", "listen_database_url")
    @classmethod
    def _blank_is_unset(cls, value: str | None) -> str | None:
        if value is None:
            return None
        return value.strip() or None

    @field_validator("oidc_scopes")
    @classmethod
    def _scopes(cls, value: str) -> str:
        scopes = value.replace(",", " ").split()
        if "openid" not in scopes:
            raise ValueError("must hold 'openid' (an OIDC sign-in asks for it)")
        return " ".join(dict.fromkeys(scopes))

    @model_validator(mode="after")
    def _oidc_sign_in(self) -> Settings:
        """Provider sign-in needs what verifies its tokens: refused when they are missing
        or when an ID token could never pass the audience check."""
        if self.oidc_client_id is None:
            return self
        missing = [
            f"FLOWSYNC_{name.upper()}"
            for name in ("jwt_issuer", "jwks_url")
            if not getattr(self, name)
        ]
        if missing:
            raise ValueError(
                f"FLOWSYNC_OIDC_CLIENT_ID needs {' and '.join(missing)}: the provider is "
                "found at the issuer, and its tokens are verified with the JWKS"
            )
        issuer = urlsplit(self.jwt_issuer or "")
        if issuer.scheme not in ("http", "https") or not issuer.netloc:
            raise ValueError(
                "FLOWSYNC_JWT_ISSUER must be an absolute http:// or https:// URL for "
                "FLOWSYNC_OIDC_CLIENT_ID (its discovery document is read there)"
            )
        if (
            self.oidc_bearer == "id_token"
            and self.jwt_audience is not None
            and self.jwt_audience != self.oidc_client_id
        ):
            raise ValueError(
                f"FLOWSYNC_JWT_AUDIENCE is {self.jwt_audience!r}, but the dashboard sends ID "
                f"tokens, whose audience is the client id {self.oidc_client_id!r}: set "
                "FLOWSYNC_JWT_AUDIENCE to the client id, or FLOWSYNC_OIDC_BEARER=access_token"
            )
        return self

    def sqlalchemy_url(self) -> str:
        """The database URL in the form SQLAlchemy's asyncpg dialect expects."""
        if self.database_url is None:
            raise ValueError("database_url is not resolved yet")
        return to_sqlalchemy_url(self.database_url)


# A URL may name several servers, for a highly available PostgreSQL: libpq's spelling
# `postgresql://user@h1:5432,h2:5432/db?target_session_attrs=read-write`, which asyncpg
# reads, or SQLAlchemy's `postgresql+asyncpg://user@/db?host=h1:5432&host=h2:5432&...`,
# whose URL parser takes one host in the authority. Either is accepted; each consumer gets
# its own. Every connection asyncpg opens tries the hosts in order and, with
# target_session_attrs=read-write, keeps the first that accepts writes: after a failover,
# reconnecting finds the promoted standby.


def _split_authority(netloc: str) -> tuple[str, str]:
    """(`user:password@` or "", the host list) of a URL's authority."""
    auth, at, hosts = netloc.rpartition("@")
    return (auth + at, hosts)


def _has_port(host: str) -> bool:
    name, colon, port = host.rpartition(":")
    return bool(colon) and port.isdigit() and (not name.startswith("[") or name.endswith("]"))


def to_sqlalchemy_url(url: str) -> str:
    """`postgresql://…` or `postgres://…` → `postgresql+asyncpg://…`; several hosts in
    the authority move to repeated `host=` query parameters, as SQLAlchemy reads them."""
    for prefix in ("postgresql+asyncpg://", "postgresql://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql+asyncpg://" + url[len(prefix) :]
            break
    else:
        return url
    parts = urlsplit(url)
    auth, hosts = _split_authority(parts.netloc)
    if "," not in hosts:
        return url
    # SQLAlchemy wants every host's port when there are several; libpq's default is 5432.
    named = [unquote(h) for h in hosts.split(",") if h]
    query = [("host", h if _has_port(h) else f"{h}:5432") for h in named]
    query += [(k, v) for k, v in parse_qsl(parts.query, keep_blank_values=True) if k != "host"]
    return urlunsplit(parts._replace(netloc=auth, query=urlencode(query, safe=":,[]")))


def to_asyncpg_dsn(url: str) -> str:
    """Any of our URL spellings → the plain `postgresql://…` DSN asyncpg.connect takes;
    repeated `host=` query parameters (SQLAlchemy's spelling of several hosts) move into
    the authority as `h1:p1,h2:p2`, since asyncpg would keep only the last."""
    for prefix in ("postgresql+asyncpg://", "postgres://"):
        if url.startswith(prefix):
            url = "postgresql://" + url[len(prefix) :]
            break
    parts = urlsplit(url)
    if parts.scheme != "postgresql":
        return url
    pairs = parse_qsl(parts.query, keep_blank_values=True)
    hosts = [v for k, v in pairs if k == "host"]
    auth, authority_hosts = _split_authority(parts.netloc)
    if len(hosts) < 2 or authority_hosts:
        return url
    netloc = auth + ",".join(quote(h, safe=":[]") for h in hosts)  # a socket folder's /
    query = urlencode([(k, v) for k, v in pairs if k != "host"])
    return urlunsplit(parts._replace(netloc=netloc, query=query))


def describe_invalid(exc: ValidationError) -> list[str]:
    """One line per invalid setting, naming its variable and the value given, e.g.
    `FLOWSYNC_RETAIN_AUDIT_DAYS='-1': must be a whole number of days, ...`."""
    lines = []
    for error in exc.errors():
        message = str(error["msg"]).removeprefix("Value error, ")
        if not error["loc"]:
            lines.append(message)
            continue
        name = "FLOWSYNC_" + "_".join(str(part) for part in error["loc"]).upper()
        given = error.get("input")
        # Values of settings that may hold credentials are never echoed.
        quiet = any(word in name for word in ("TOKEN", "SECRET", "URL", "PASSWORD"))
        shown = f"={given!r}" if isinstance(given, str | int | float) and not quiet else ""
        lines.append(f"{name}{shown}: {message}")
    return lines
