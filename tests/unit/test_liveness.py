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
