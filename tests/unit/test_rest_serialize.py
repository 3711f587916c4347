"""REST's execution objects read a row's loaded values directly; a row without some of
them (not loaded) is read through the ORM instead, never with a missing field."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

from flowsync.db.models import Execution
from rest_compat import serialize


def test_a_row_with_columns_not_set_reads_them_as_the_orm_does() -> None:
    at = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)
    row = Execution(
        id=uuid.UUID(int=1), workflow_id=uuid.UUID(int=2), version=3, status="COMPLETED",
        input={"n": 1}, created_at=at, started_at=at, finished_at=at + timedelta(seconds=2),
    )  # fmt: skip
    assert "output" not in row.__dict__  # never set: the fallback's case
    out = serialize.execution(row)
    assert out == {
        "id": str(uuid.UUID(int=1)),
        "workflowId": str(uuid.UUID(int=2)),
        "workflowVersion": 3,
        "status": "COMPLETED",
        "input": {"n": 1},
        "output": None,
        "error": None,
        "createdAt": "2026-12-06T12:00:00+00:00",
        "startedAt": "2026-12-06T12:00:00+00:00",
        "finishedAt": "2026-12-06T12:00:02+00:00",
        "durationMs": 2000,
        "lastSequence": None,
        "retriedFromId": None,
        "parentExecutionId": None,
        "priority": None,
        "concurrencyKey": None,
        "traceId": None,
    }
