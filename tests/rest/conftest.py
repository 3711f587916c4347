"""Fixtures of the REST tests: a real server on a free port, owners with API keys."""

from __future__ import annotations

from collections.abc import AsyncIterator

import pytest

from tests.rest.server import Owner, Server, serve


@pytest.fixture
async def server(db_url: str) -> AsyncIterator[Server]:
    async with serve(db_url) as running:
        yield running


@pytest.fixture
async def me(server: Server) -> Owner:
    return await server.owner()
