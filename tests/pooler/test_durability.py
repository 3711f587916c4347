"""The durability suite of real worker processes (tests/acceptance/test_worker_processes.py)
run again through PgBouncer in transaction mode: the workers, and the service layer that
starts and reads the runs, connect through it with FLOWSYNC_DATABASE_POOLER=transaction
and LISTEN on the direct URL (see conftest.py). A focused subset, to keep this under a
minute: SIGKILL mid-step (every step completes once), SIGTERM giving back a step that
outlasts the grace period, and a durable delay across a worker restart.

Not repeated here: SIGTERM letting steps finish (the drain path the give-back test also
takes), and the test that kills server connections by application_name (through a
pooler, an idle server connection carries the name of whichever client used it last)."""

from __future__ import annotations

import pytest

from tests.acceptance.test_worker_processes import (
    test_a_durable_delay_survives_a_worker_restart,
    test_sigkill_mid_step_another_worker_finishes_and_nothing_completes_twice,
    test_sigterm_gives_back_a_step_that_outlasts_the_grace_period,
)

pytestmark = [pytest.mark.pooler, pytest.mark.slow]

__all__ = [
    "test_a_durable_delay_survives_a_worker_restart",
    "test_sigkill_mid_step_another_worker_finishes_and_nothing_completes_twice",
    "test_sigterm_gives_back_a_step_that_outlasts_the_grace_period",
]
