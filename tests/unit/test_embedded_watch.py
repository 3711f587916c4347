"""`flowsync dev`'s watch over its embedded PostgreSQL: a dead server is started again,
failed restarts are retried with a growing delay and logged, and after REVIVE_ATTEMPTS
failures in a row dev gives up (and exits 1, so that a supervisor restarts it). The
real server's death and restart are in tests/acceptance/test_embedded_recovery.py."""

from __future__ import annotations

import asyncio
import logging
from typing import Any

import pytest

from flowsync import server
from flowsync.errors import ConfigurationError


class FakeEmbedded:
    """Answers `revive` from a script: True (restarted), False (running), or raises."""

    def __init__(self, script: list[bool | None]) -> None:
        self.script = script
        self.calls = 0

    def revive(self) -> bool:
        self.calls += 1
        step = self.script.pop(0) if self.script else False
        if step is None:
            raise ConfigurationError("could not start")
        return step


async def test_failed_restarts_back_off_then_give_up(
    monkeypatch: pytest.MonkeyPatch, caplog: pytest.LogCaptureFixture
) -> None:
    monkeypatch.setattr(server, "REVIVE_CHECK_SECONDS", 0.001)
    monkeypatch.setattr(server, "REVIVE_MAX_DELAY", 0.01)
    delays: list[float] = []
    sleep = asyncio.sleep

    async def recorded(seconds: float, *args: Any) -> None:
        delays.append(seconds)
        await sleep(0)

    monkeypatch.setattr(asyncio, "sleep", recorded)
    fake = FakeEmbedded([False, True, None, None, True] + [None] * server.REVIVE_ATTEMPTS)
    gave_up = asyncio.Event()
    with caplog.at_level(logging.WARNING, "flowsync"):
        await asyncio.wait_for(server.watch_embedded(fake, gave_up.set), 5)  # type: ignore[arg-type]
    assert gave_up.is_set()
    assert fake.calls == 5 + server.REVIVE_ATTEMPTS
    messages = [r.getMessage() for r in caplog.records]
    assert sum("restarted it" in m for m in messages) == 2
    assert any("exiting with status 1" in m for m in messages)
    # Two failures, then a success resets the delay; then failures double it up to the cap.
    assert delays[:5] == [0.001, 0.001, 0.001, 0.002, 0.004]
    assert max(delays) == 0.01
