"""REST's and GraphQL's execution objects read a row's loaded values directly
(models.loaded_values); a row without some of them (not loaded) is read through the ORM
instead, never with a missing field."""

from __future__ import annotations

import dataclasses
import uuid
from datetime import UTC, datetime, timedelta, timezone
from typing import cast

import orjson
import pytest

from flowsync.db.models import Execution, loaded_values
from flowsync.resolvers.loaders import Loaders
from flowsync.schema.types import ExecutionStatus, ExecutionType
from rest_compat import serialize
from rest_compat.responses import dumps

AT = datetime(2026, 12, 6, 12, 0, tzinfo=UTC)


def partly_set() -> Execution:
    return Execution(
        id=uuid.UUID(int=1), workflow_id=uuid.UUID(int=2), version=3, status="COMPLETED",
        input={"n": 1}, created_at=AT, started_at=AT, finished_at=AT + timedelta(seconds=2),
    )  # fmt: skip


def test_a_row_with_columns_not_set_reads_them_as_the_orm_does() -> None:
    row = partly_set()
    assert "output" not in row.__dict__  # never set: the fallback's case
    out = orjson.loads(dumps(serialize.execution(row)))  # as the client reads it
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


def test_times_are_written_as_isoformat_whatever_their_zone() -> None:
    """Times in UTC are left to the encoder (orjson), others are written by isoformat:
    the reply's text is isoformat's either way, microseconds and all."""
    zones = [UTC, timezone(timedelta(hours=5, minutes=30)), timezone(timedelta(seconds=3661))]
    for zone in zones:
        for at in (AT, AT.replace(microsecond=7), datetime(1, 1, 1, tzinfo=UTC)):
            when = at.astimezone(zone) if at.year > 1 else at
            row = partly_set()
            row.created_at = when
            out = orjson.loads(dumps(serialize.execution(row)))
            assert out["createdAt"] == when.isoformat()


def test_graphqls_execution_reads_unset_columns_as_null_too() -> None:
    row = partly_set()
    run = ExecutionType.of(row, cast(Loaders, None))
    assert (run.id, run.workflow_id, run.workflow_version) == (
        str(uuid.UUID(int=1)), str(uuid.UUID(int=2)), 3,
    )  # fmt: skip
    assert run.status is ExecutionStatus.COMPLETED and run.duration_ms == 2000
    assert (run.output, run.error, run.last_sequence) == (None, None, None)


def test_loaded_values_are_the_rows_own_when_all_are_loaded() -> None:
    row = partly_set()
    row.output = None
    assert loaded_values(row, frozenset({"id", "output"})) is row.__dict__
    assert dict(loaded_values(row, frozenset({"id", "error"}))) == {
        "id": uuid.UUID(int=1), "error": None,
    }  # fmt: skip


def test_graphqls_execution_is_what_its_constructor_makes() -> None:
    """ExecutionType.of sets its fields without the dataclass's __init__: every field,
    each as the constructor would hold it (an unknown status is still refused)."""
    row = partly_set()
    row.status = "RUNNING"
    loaders = cast(Loaders, object())
    made = ExecutionType.of(row, loaders)
    names = [f.name for f in dataclasses.fields(ExecutionType) if f.init]
    assert list(vars(made)) == names
    built = ExecutionType(**vars(made))
    assert vars(built) == vars(made) and made == built
    assert made.row is row and made.loaders is loaders
    assert made.status is ExecutionStatus.RUNNING
    row.status = "LOST"
    with pytest.raises(ValueError, match="LOST"):
        ExecutionType.of(row, loaders)
