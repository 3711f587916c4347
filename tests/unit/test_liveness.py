"""The session limits a worker's lease implies (flowsync.worker.liveness)."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from flowsync.worker.liveness import LeaseTimes


def test_the_default_lease_gives_the_documented_limits() -> None:
    assert LeaseTimes().server_settings() == {
        "idle_in_transaction_session_timeout": "10000",
        "lock_timeout": "10000",
        "statement_timeout": "20000",
        "tcp_keepalives_idle": "5",
        "tcp_keepalives_interval": "2",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "11000",
    }


@given(
    lease=st.floats(min_value=2, max_value=3600),
    share=st.floats(min_value=0.01, max_value=0.5),
)
def test_a_lost_session_ends_before_the_lease_it_last_extended(lease: float, share: float) -> None:
    """A host lost just after a heartbeat holds its jobs for a whole lease; lost just
    before one, for lease - heartbeat. Either way its session is ended by then, so the
    reclaim finds the jobs unlocked when their lease runs out."""
    times = LeaseTimes(lease, lease * share)
    assert times.idle_seconds + times.heartbeat_seconds <= lease
    assert times.lock_seconds <= lease
    # Keepalives count in whole seconds (at least 1 s each): about the lease, or 4 s.
    assert times.dead_client_seconds <= max(lease, 4)


def test_a_worker_s_scheduler_and_retention_connections_end_with_a_lost_host() -> None:
    """The cron scheduler's and retention's connections run no step, so they get no
    statement or lock limit; but a host lost from the network must not keep them (and
    the trigger rows or the retention lock they hold) for the system's two hours."""
    from flowsync.config import Settings
    from flowsync.retention.prune import RetentionLoop
    from flowsync.scheduler.scheduler import Scheduler

    limits = LeaseTimes(4, 1).chore_limits()
    assert limits == {
        "idle_in_transaction_session_timeout": "2000",
        "tcp_keepalives_idle": "1",
        "tcp_keepalives_interval": "1",
        "tcp_keepalives_count": "3",
        "tcp_user_timeout": "4000",
    }
    settings = Settings(  # type: ignore[call-arg]
        _env_file=None, lease_seconds=4, heartbeat_seconds=1
    )
    scheduler = Scheduler.from_settings(settings, "postgresql://x@h/db", executions=None)  # type: ignore[arg-type]
    assert scheduler.session_settings == limits
    assert scheduler.retention is not None
    assert scheduler.retention.session_settings == limits
    assert RetentionLoop.from_settings(settings, "postgresql://x@h/db").session_settings == {}
