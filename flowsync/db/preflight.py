"""The check `flowsync serve` and `flowsync worker` make before they start: the configured
database answers and its schema is the one this release's code expects.

Each failure is one `ConfigurationError` naming the setting and the fix, raised at once:
a process that cannot start says why and exits non-zero (its supervisor restarts it),
instead of retrying in silence. Retrying with backoff is for a database that was
reachable and went away later, which the pools and listeners do themselves.
"""

from __future__ import annotations

import asyncio
import socket

import asyncpg
from alembic.script import ScriptDirectory

from flowsync.config import Settings
from flowsync.db.compat import READ_SQL, judge
from flowsync.db.connect import connect
from flowsync.db.migrate import alembic_config
from flowsync.db.pooler import FIX_TRANSACTION, detect
from flowsync.errors import ConfigurationError
from flowsync.runtime import describe_url
from flowsync.secrets_crypto import NoSecretKey, SecretUnreadable, keyring_from_settings

# How long the first connection may take before the database counts as unreachable.
CONNECT_TIMEOUT_SECONDS = 10.0

MIGRATE = "run `flowsync migrate` with the same FLOWSYNC_DATABASE_URL, then start again"


def require_database_url(settings: Settings, command: str) -> str:
    """`FLOWSYNC_DATABASE_URL`, which production commands need: they never start or join an
    embedded database (only `flowsync dev` does)."""
    if not settings.database_url:
        raise ConfigurationError(
            f"FLOWSYNC_DATABASE_URL is not set: `flowsync {command}` needs your PostgreSQL "
            "server's URL (postgresql://user:password@host:5432/flowsync) and never starts "
            "an embedded database (`flowsync dev` does, for development)."
        )
    return settings.database_url


async def _revision(url: str) -> tuple[str | None, str | None]:
    """The schema's revision and its compatibility mark (None, None: never migrated)."""
    # No named statement: it would stay behind on a pooler's server connection.
    conn = await connect(url, timeout=CONNECT_TIMEOUT_SECONDS, statement_cache_size=0)
    try:
        try:
            row = await conn.fetchrow(READ_SQL)
        except asyncpg.UndefinedTableError:
            return None, None
        return (row["version_num"], row["mark"]) if row is not None else (None, None)
    finally:
        await conn.close()


def _unreachable(settings: Settings, exc: BaseException) -> ConfigurationError:
    where = describe_url(settings)
    refused = asyncpg.InvalidPasswordError | asyncpg.InvalidAuthorizationSpecificationError
    if isinstance(exc, refused):
        why = f"the server refused the credentials ({exc})"
    elif isinstance(exc, asyncpg.InvalidCatalogNameError):
        why = f"the server has no such database ({exc})"
    elif isinstance(exc, TimeoutError | asyncio.TimeoutError):
        why = f"no answer within {CONNECT_TIMEOUT_SECONDS:.0f} s"
    elif isinstance(exc, socket.gaierror):
        why = f"the host name does not resolve ({exc})"
    else:
        why = str(exc) or type(exc).__name__
    return ConfigurationError(
        f"Cannot connect to the database of FLOWSYNC_DATABASE_URL ({where}): {why}. Check "
        "the URL (host, port, user, password, database name) and that the server runs."
    )


def check_database(settings: Settings, command: str) -> str:
    """FLOWSYNC_DATABASE_URL, once the database answers and its schema is at this
    release's head; else ConfigurationError, whose message names the setting and the fix."""
    url = require_database_url(settings, command)
    check_schema(settings, url)
    return url


async def _in_recovery(url: str) -> bool:
    try:
        conn = await connect(url, timeout=CONNECT_TIMEOUT_SECONDS, statement_cache_size=0)
    except asyncpg.TargetServerAttributeNotMatched:  # target_session_attrs=read-write
        return True
    try:
        return bool(await conn.fetchval("SELECT pg_is_in_recovery()"))
    finally:
        await conn.close()


def check_writable(settings: Settings, url: str) -> None:
    """Return when the server `url` connects to accepts writes; ConfigurationError for a
    standby given as the only host (or first, without target_session_attrs=read-write)."""
    try:
        standby = asyncio.run(_in_recovery(url))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise _unreachable(settings, exc) from exc
    except ValueError as exc:  # asyncpg's DSN parser
        raise ConfigurationError(
            f"FLOWSYNC_DATABASE_URL is not a valid PostgreSQL URL ({exc}); write it as "
            "postgresql://user:password@host:5432/flowsync."
        ) from exc
    if standby:
        raise ConfigurationError(
            f"The database of FLOWSYNC_DATABASE_URL ({describe_url(settings)}) is a standby "
            "(in recovery, read-only), and FlowSync writes: give the primary's URL, or every "
            "server with target_session_attrs=read-write (postgresql://user:password@"
            "primary:5432,standby:5432/flowsync?target_session_attrs=read-write), which "
            "connects to whichever accepts writes, after a failover too."
        )


def check_schema(settings: Settings, url: str) -> None:
    """Return when the database at `url` answers, accepts writes, and its schema is at
    this release's head, or newer and compatible with it (a rolling upgrade, see
    flowsync.db.compat); else ConfigurationError, whose message names the setting and
    the fix."""
    check_writable(settings, url)
    try:
        revision, mark = asyncio.run(_revision(url))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise _unreachable(settings, exc) from exc
    except ValueError as exc:  # asyncpg's DSN parser
        raise ConfigurationError(
            f"FLOWSYNC_DATABASE_URL is not a valid PostgreSQL URL ({exc}); write it as "
            "postgresql://user:password@host:5432/flowsync."
        ) from exc
    check_pooler(settings, url)
    state = judge(ScriptDirectory.from_config(alembic_config(url)), revision, mark)
    if state.usable:
        check_secret_key(settings, url)
        return
    where = describe_url(settings)
    head = state.head
    if state.kind == "none":
        raise ConfigurationError(
            f"The database of FLOWSYNC_DATABASE_URL ({where}) has no FlowSync schema yet: "
            f"{MIGRATE}."
        )
    if state.kind == "older":
        raise ConfigurationError(
            f"The database of FLOWSYNC_DATABASE_URL ({where}) is at schema revision "
            f"{revision}, older than this release's {head}: {MIGRATE}."
        )
    raise ConfigurationError(
        f"The database of FLOWSYNC_DATABASE_URL ({where}) is at schema revision {revision}, "
        f"which this release of FlowSync does not know (its newest is {head}): the schema "
        "is newer than this code and not compatible with it. Run the FlowSync release "
        "that migrated it (or a newer one); `flowsync migrate` of this release cannot "
        "downgrade it."
    )


def check_pooler(settings: Settings, url: str) -> None:
    """Return when what `url` goes through is what FLOWSYNC_DATABASE_POOLER says (as far
    as two or three sessions can tell: see `flowsync.db.pooler.detect`), and the LISTEN
    URL, if any, is PostgreSQL itself; else ConfigurationError naming the setting and
    the fix."""
    try:
        found = asyncio.run(detect(url, CONNECT_TIMEOUT_SECONDS))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise _unreachable(settings, exc) from exc
    where = describe_url(settings, url)
    declared = settings.database_pooler
    if found == "transaction" and declared != "transaction":
        raise ConfigurationError(
            f"FLOWSYNC_DATABASE_URL ({where}) goes through a pooler in transaction mode (two "
            f"sessions ran on one server connection), but FLOWSYNC_DATABASE_POOLER is "
            f"{declared!r}: {FIX_TRANSACTION}."
        )
    if found == "session" and declared == "none":
        raise ConfigurationError(
            f"FLOWSYNC_DATABASE_URL ({where}) goes through a pooler in session mode, where "
            "each of FlowSync's long-lived connections holds a server connection for good "
            "and those past the pool's size wait without an error: set the pooler's "
            "pool_mode = transaction for this database with FLOWSYNC_DATABASE_POOLER="
            "transaction, or point FLOWSYNC_DATABASE_URL at PostgreSQL itself "
            "(FLOWSYNC_DATABASE_POOLER=session accepts it as it is)."
        )
    listen = settings.listen_database_url
    if listen is None:
        return
    try:
        found = asyncio.run(detect(listen, CONNECT_TIMEOUT_SECONDS))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise ConfigurationError(
            f"Cannot connect to the database of FLOWSYNC_LISTEN_DATABASE_URL "
            f"({describe_url(settings, listen)}): {exc or type(exc).__name__}. Check the URL "
            "and that the server runs."
        ) from exc
    if found != "none":
        raise ConfigurationError(
            f"FLOWSYNC_LISTEN_DATABASE_URL ({describe_url(settings, listen)}) goes through a "
            f"pooler ({found} mode), where LISTEN loses notifications or its settings: point "
            "it at the PostgreSQL server itself."
        )


_KEY_SAMPLES_SQL = """
SELECT DISTINCT ON (key_id) owner_id, name, ciphertext, key_id
  FROM secrets ORDER BY key_id, updated_at DESC
"""


async def _secret_samples(url: str) -> list[asyncpg.Record]:
    conn = await connect(url, timeout=CONNECT_TIMEOUT_SECONDS, statement_cache_size=0)
    try:
        try:
            return list(await conn.fetch(_KEY_SAMPLES_SQL))
        except asyncpg.UndefinedTableError:
            return []
    finally:
        await conn.close()


def check_secret_key(settings: Settings, url: str) -> None:
    """Return when the configured secret keys are well formed and decrypt a stored secret
    of each key id found (see flowsync/secrets_crypto.py); else ConfigurationError in one
    line: a process that cannot read the secrets its steps need does not start. With no
    secret stored, no key is needed."""
    keyring = keyring_from_settings(settings)
    try:
        samples = asyncio.run(_secret_samples(url))
    except (OSError, asyncpg.PostgresError, asyncpg.InterfaceError, TimeoutError) as exc:
        raise _unreachable(settings, exc) from exc
    for row in samples:
        if keyring.current is None:
            raise NoSecretKey(
                "The database holds secrets and no secret key is configured: set "
                "FLOWSYNC_SECRET_KEY (or FLOWSYNC_SECRET_KEY_FILE) to the key that encrypted "
                f"them (key id {row['key_id']})."
            )
        if row["key_id"] not in keyring.key_ids:
            raise SecretUnreadable(
                f"FLOWSYNC_SECRET_KEY is not the key the stored secrets were encrypted with "
                f"(theirs has id {row['key_id']}, the configured one {keyring.current.id}): "
                "set the key that encrypted them, or keep it as FLOWSYNC_SECRET_PREVIOUS_KEY "
                "and run `flowsync secrets rotate-key`."
            )
        keyring.decrypt(row["owner_id"], row["name"], bytes(row["ciphertext"]), row["key_id"])
