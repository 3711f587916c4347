"""Where the database is: the configured server, or the embedded one.

Only `flowsync dev` starts the embedded PostgreSQL (and creates it on first use). Every
other command with no `FLOWSYNC_DATABASE_URL` joins the one `flowsync dev` runs in
`FLOWSYNC_DATA_DIR`, and refuses, saying so, when none runs there: a command run with
another data folder must never make a second, empty database and write into it.
"""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from sqlalchemy.engine import make_url
from sqlalchemy.exc import ArgumentError

from flowsync.config import Settings, to_sqlalchemy_url
from flowsync.errors import ConfigurationError
from flowsync.logs import progress

if TYPE_CHECKING:
    from flowsync.db.embedded import EmbeddedPostgres

log = logging.getLogger("flowsync")


@contextmanager
def database_url(settings: Settings, *, start: bool = False) -> Iterator[str]:
    """The database URL to use, as `database` finds it."""
    with database(settings, start=start) as (url, _):
        yield url


@contextmanager
def database(
    settings: Settings, *, start: bool = False
) -> Iterator[tuple[str, EmbeddedPostgres | None]]:
    """The database URL and, for the embedded server, its handle (None for a configured
    server), so that its process can watch it (see `flowsync.server`).

    With `FLOWSYNC_DATABASE_URL` unset: `start=True` (`flowsync dev`) starts the embedded
    PostgreSQL in `settings.data_dir`, creating it on first use; otherwise the block joins
    the one running there, and `ConfigurationError` (naming the folder and the settings)
    is raised when none runs. The handle is dropped when the block ends, also by an
    exception (SIGINT and SIGTERM end servers that way); the server stops with its last
    handle."""
    if settings.database_url:
        progress("Using the database of FLOWSYNC_DATABASE_URL (%s)", describe_url(settings))
        yield settings.database_url, None
        return
    from flowsync.db.embedded import join_embedded, start_embedded

    folder = (settings.data_dir / "postgres").expanduser()
    if start:
        first = not (folder / "pgdata" / "PG_VERSION").exists()
        how = "Creating the embedded PostgreSQL (first start, up to a minute)" if first else (
            "Starting the embedded PostgreSQL"
        )  # fmt: skip
        progress("%s in %s", how, folder)
        server = start_embedded(folder)
    elif (joined := join_embedded(folder)) is not None:
        progress("Using the embedded PostgreSQL of `flowsync dev` in %s", folder)
        server = joined
    else:
        raise ConfigurationError(not_running_message(settings))
    try:
        yield server.url, server
    finally:
        server.stop()


def not_running_message(settings: Settings) -> str:
    """Why a command other than `dev` will not use an embedded database, and what to do."""
    folder = (settings.data_dir / "postgres").expanduser()
    return (
        f"No FlowSync database is running in {folder}, and only `flowsync dev` starts one "
        "(so that no second, empty database is made by mistake). FLOWSYNC_DATABASE_URL is "
        f"unset and FLOWSYNC_DATA_DIR is {settings.data_dir}. Start `flowsync dev` with "
        "this FLOWSYNC_DATA_DIR, set FLOWSYNC_DATA_DIR to the folder of the `flowsync dev` "
        "that runs, or set FLOWSYNC_DATABASE_URL to your server's URL "
        "(postgresql://user:password@host:5432/flowsync)."
    )


def describe_url(settings: Settings, given: str | None = None) -> str:
    """The configured database (or the URL `given`) as `host:port/name`, without its
    user or password."""
    try:
        url = make_url(to_sqlalchemy_url(given or settings.database_url or ""))
    except ArgumentError:
        return "an unparsable URL"
    if url.host:
        hosts = url.host + (f":{url.port}" if url.port else "")
    else:  # a socket folder, or several servers (`host=` once per server)
        named = url.query.get("host") or "local socket"
        hosts = named if isinstance(named, str) else ",".join(named)
    return f"{hosts}/{url.database or ''}"
