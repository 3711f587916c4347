"""Where the database is: the configured server, or the embedded one started on demand."""

from __future__ import annotations

import logging
from collections.abc import Iterator
from contextlib import contextmanager
from typing import TYPE_CHECKING

from flowsync.config import Settings

if TYPE_CHECKING:
    from flowsync.db.embedded import EmbeddedPostgres

log = logging.getLogger("flowsync")


@contextmanager
def database_url(settings: Settings) -> Iterator[str]:
    """The database URL to use. With `FLOWSYNC_DATABASE_URL` unset, an embedded PostgreSQL
    in `settings.data_dir` is started for the duration of the block and stopped after it,
    also when the block ends by an exception (SIGINT and SIGTERM end servers that way)."""
    with database(settings) as (url, _):
        yield url


@contextmanager
def database(settings: Settings) -> Iterator[tuple[str, EmbeddedPostgres | None]]:
    """As `database_url`, with the embedded server's handle (None for a configured
    server), so that its process can watch it (see `flowsync.server`)."""
    if settings.database_url:
        yield settings.database_url, None
        return
    from flowsync.db.embedded import start_embedded

    server = start_embedded(settings.data_dir / "postgres")
    try:
        yield server.url, server
    finally:
        server.stop()
