"""Event objects shared by subscribers.

One event row of the log is delivered to every subscriber of its owner that follows its
execution. Rendering it once per subscriber (a GraphQL execution each) is most of the
cost of a live subscription; so every subscriber gets the same `ExecutionEventType` for
the same row, and the schema's executor renders it once per distinct document."""

from __future__ import annotations

from weakref import WeakKeyDictionary

from flowsync.db.models import ExecutionEvent
from flowsync.resolvers.loaders import Loaders
from flowsync.schema.types import ExecutionEventType
from flowsync.services.container import Services
from flowsync.services.principal import Principal


class SharedEvents:
    """`ExecutionEventType`s by event row, for as long as someone holds the row (the
    event log's cache, or a subscriber delivering it)."""

    def __init__(self) -> None:
        self._objects: WeakKeyDictionary[ExecutionEvent, ExecutionEventType] = WeakKeyDictionary()

    def get(
        self, row: ExecutionEvent, services: Services, principal: Principal
    ) -> ExecutionEventType:
        """The shared object of `row`; its nested fields read as `principal` (rows are
        shared only within one owner, so every subscriber reads the same)."""
        found = self._objects.get(row)
        if found is None:
            found = ExecutionEventType.of(row, Loaders(services, principal))
            found.renders = {}
            self._objects[row] = found
        return found
