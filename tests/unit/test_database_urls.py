"""Database URLs with several hosts (a primary and its standbys): libpq's spelling and
SQLAlchemy's each turn into the form the other consumer reads, and back, losing nothing;
a URL of one host passes through as it was."""

from __future__ import annotations

import asyncpg
import pytest
from sqlalchemy.engine import make_url

from flowsync.config import Settings, to_asyncpg_dsn, to_sqlalchemy_url
from flowsync.db.outage import as_unavailable
from flowsync.runtime import describe_url

LIBPQ = "postgresql://u:p%40ss@h1:5432,h2:5433/flowsync?target_session_attrs=read-write"
SQLALCHEMY = (
    "postgresql+asyncpg://u:p%40ss@/flowsync?host=h1:5432&host=h2:5433"
    "&target_session_attrs=read-write"
)


def test_several_hosts_move_between_the_authority_and_the_query() -> None:
    assert to_sqlalchemy_url(LIBPQ) == SQLALCHEMY
    assert to_asyncpg_dsn(SQLALCHEMY) == LIBPQ
    assert to_asyncpg_dsn(LIBPQ) == LIBPQ
    assert to_sqlalchemy_url(SQLALCHEMY) == SQLALCHEMY


def test_a_host_without_port_gets_libpqs_default_for_sqlalchemy() -> None:
    url = to_sqlalchemy_url("postgresql://u@h1,[::1],h3:6543/db")
    assert make_url(url).query["host"] == ("h1:5432", "[::1]:5432", "h3:6543")


def test_sqlalchemy_reads_every_host_and_the_session_attribute() -> None:
    url = make_url(to_sqlalchemy_url(LIBPQ))
    assert url.query["host"] == ("h1:5432", "h2:5433")
    assert url.query["target_session_attrs"] == "read-write"
    assert url.password == "p@ss"
    assert describe_url(Settings(_env_file=None, database_url=LIBPQ)) == "h1:5432,h2:5433/flowsync"


@pytest.mark.parametrize(
    "url",
    [
        "postgresql://u:p@h:5432/db?sslmode=require",
        "postgresql://u@/db?host=/var/run/postgresql",
        "postgresql://u@h/db",
    ],
)
def test_one_host_passes_through(url: str) -> None:
    assert to_asyncpg_dsn(url) == url
    assert to_sqlalchemy_url(url) == url.replace("postgresql://", "postgresql+asyncpg://")


def test_a_lost_connection_is_unavailable_and_a_bug_is_not() -> None:
    refused = ConnectionRefusedError(111, "Connection refused")
    wrapped = RuntimeError("while starting")
    wrapped.__cause__ = refused
    found = as_unavailable(wrapped)
    assert found is not None and found.status == 503 and found.__cause__ is refused
    assert as_unavailable(ValueError("a bug")) is None
    # A server out of connections (max_connections) is as unavailable, for a moment.
    full = asyncpg.exceptions.TooManyConnectionsError("sorry, too many clients already")
    assert (found := as_unavailable(full)) is not None and found.status == 503
