"""Real `flowsync worker` processes in the workers table: each is listed from its start
with its pid and heartbeats; SIGTERM removes it; after SIGKILL it stays, listed dead
once three heartbeats are missed."""

from __future__ import annotations

from collections.abc import Awaitable, Callable

import pytest

from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.support.processes import Process
from tests.support.workers import wait_until

pytestmark = pytest.mark.slow

Listed = dict[int, tuple[int, bool]]  # pid: (concurrency, alive)


async def test_sigterm_leaves_the_list_and_sigkill_is_listed_dead(
    services: Services, me: Principal, workers: Callable[..., Process]
) -> None:
    calm = workers(concurrency=2, heartbeat_seconds=0.2)
    doomed = workers(concurrency=3, heartbeat_seconds=0.2)

    def showing(check: Callable[[Listed], bool]) -> Callable[[], Awaitable[bool]]:
        async def probe() -> bool:
            found = await services.workers.list(me)
            return check({w.pid: (w.concurrency, w.alive) for w in found})

        return probe

    both = {calm.proc.pid: (2, True), doomed.proc.pid: (3, True)}
    await wait_until(showing(lambda w: w == both), 20, "both workers listed alive")
    assert calm.terminate() == 0, calm.output()
    await wait_until(showing(lambda w: calm.proc.pid not in w), 10, "calm to leave")
    doomed.kill()
    # Three missed heartbeats (0.6 s) later it is dead, and still listed.
    dead = {doomed.proc.pid: (3, False)}
    await wait_until(showing(lambda w: w == dead), 10, "doomed listed dead")
