"""What a worker reads from a jobs-channel notification: due now, or in some seconds."""

from __future__ import annotations

import pytest

from flowsync.worker.runner import due_in


@pytest.mark.parametrize(
    ("payload", "seconds"),
    [("", None), ("0", 0.0), ("0.300125", 0.300125), ("12", 12.0), ("nan", None),
     ("inf", None), ("-inf", None), ("soon", None), ("1e400", None)],
)  # fmt: skip
def test_a_payload_is_a_finite_number_of_seconds_or_due_now(
    payload: str, seconds: float | None
) -> None:
    assert due_in(payload) == seconds
