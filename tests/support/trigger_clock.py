"""A trigger service whose clock stands still, in a running server: both faces read
`services.triggers` per request, so replacing it is enough (the real service, built with
its `clock` argument; nothing patched)."""

from __future__ import annotations

from datetime import datetime

from flowsync.services.container import Services
from flowsync.services.triggers import TriggerService


def stop_trigger_clock(services: Services, now: datetime) -> None:
    """From now on, the trigger service reads `now` as the time."""
    services.triggers = TriggerService(
        services.sessions,
        services.pool,
        max_body_bytes=services.settings.max_body_bytes,
        webhook_base_url=services.settings.webhook_base_url,
        clock=lambda: now,
    )
