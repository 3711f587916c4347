"""The Starlette application: one process serves the API faces over the service layer."""

from __future__ import annotations

import contextlib
import logging
from collections.abc import AsyncIterator

from sqlalchemy import text
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import JSONResponse
from starlette.routing import Route

from flowsync.db.migrate import head_revision
from flowsync.services.container import Services

log = logging.getLogger("flowsync.app")


async def health(request: Request) -> JSONResponse:
    """Liveness and readiness: the database answers and its schema is at head."""
    services: Services = request.app.state.services
    checks: dict[str, str] = {}
    try:
        async with services.engine.connect() as conn:
            await conn.execute(text("SELECT 1"))
        checks["database"] = "ok"
        async with services.engine.connect() as conn:
            current = (await conn.execute(text("SELECT version_num FROM alembic_version"))).scalar()
        checks["migrations"] = "ok" if current == head_revision() else f"at {current}"
    except Exception as exc:  # health reports any failure; it never raises
        log.warning("health check failed: %s", exc)
        checks.setdefault("database", "unreachable")
    ok = all(v == "ok" for v in checks.values())
    return JSONResponse(
        {"status": "ok" if ok else "unavailable", "checks": checks}, status_code=200 if ok else 503
    )


def create_app(services: Services) -> Starlette:
    """The ASGI app over already-built services; the caller owns their lifetime."""

    @contextlib.asynccontextmanager
    async def lifespan(app: Starlette) -> AsyncIterator[None]:
        yield

    app = Starlette(routes=[Route("/api/health", health, methods=["GET"])], lifespan=lifespan)
    app.state.services = services
    return app
