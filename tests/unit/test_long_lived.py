"""The API keeps its connections' objects out of full collections (flowsync.eventloop.
LongLived): frozen in batches as connections open, so a full collection walks few of
them; and what closed connections leave in reference cycles is freed once enough closed,
so memory stays bounded under churn."""

from __future__ import annotations

import gc
import weakref
from collections.abc import Iterator

import pytest

from flowsync.eventloop import LongLived


class Connection:
    """Stands for a connection's objects: in a reference cycle, as a handler and its
    tasks are, so only the collector frees it."""

    def __init__(self) -> None:
        self.me = self


def tracked(obj: object) -> bool:
    """Whether a full collection would walk `obj` (frozen objects are not listed)."""
    return any(o is obj for o in gc.get_objects())


@pytest.fixture
def heap() -> Iterator[LongLived]:
    gc.collect()
    assert gc.get_freeze_count() == 0  # this process froze nothing before
    heap = LongLived(batch=10)
    heap.enabled = True
    try:
        yield heap
    finally:
        gc.unfreeze()
        gc.collect()


def test_connections_are_frozen_in_batches(heap: LongLived) -> None:
    opened = []
    for _ in range(9):
        opened.append(Connection())
        heap.opened()
    assert gc.get_freeze_count() == 0 and tracked(opened[0])
    garbage = Connection()  # young cyclic garbage: collected, not frozen
    gone = weakref.ref(garbage)
    del garbage
    opened.append(Connection())
    heap.opened()  # the tenth
    assert gone() is None
    assert gc.get_freeze_count() > 0
    assert not any(tracked(c) for c in opened)
    later = Connection()
    heap.opened()
    assert tracked(later)  # until the next batch


def test_what_closed_connections_leave_is_freed_after_enough_closed(heap: LongLived) -> None:
    opened = [Connection() for _ in range(40)]
    for _ in opened:
        heap.opened()
    refs = [weakref.ref(c) for c in opened]
    assert gc.get_freeze_count() > 0
    for _ in range(12):  # 12 closed, fewer than half of the 28 open: frozen, kept
        opened.pop()
        heap.closed()
    gc.collect()
    assert sum(r() is not None for r in refs) == 40
    opened.pop()
    heap.closed()  # 13 closed, half of the 27 open: everything unfrozen
    assert gc.get_freeze_count() == 0
    newer = [Connection() for _ in range(10)]
    for _ in newer:
        heap.opened()
    # Nothing is frozen again before a full collection has freed the closed ones' garbage
    # (CPython's own rule makes it; here, gc.collect).
    assert gc.get_freeze_count() == 0
    gc.collect()
    assert sum(r() is not None for r in refs) == 27
    opened.append(Connection())
    heap.opened()  # a batch was reached meanwhile: frozen at the next connection
    assert gc.get_freeze_count() > 0
    assert not any(tracked(c) for c in opened + newer)


def test_under_churn_what_closed_connections_leave_stays_bounded(heap: LongLived) -> None:
    """Connections come and go while as many stay: each batch of new ones is frozen, and
    the ones that went are still given back once half as many as stay have gone."""
    staying = [Connection() for _ in range(40)]
    for _ in staying:
        heap.opened()
    gone: list[weakref.ref[Connection]] = []
    most_kept = 0
    for _ in range(12):  # cycles of 10 opened and closed
        coming = [Connection() for _ in range(10)]
        for _ in coming:
            heap.opened()
        gone += [weakref.ref(c) for c in coming]
        for _ in range(10):
            coming.pop()
            heap.closed()
        gc.collect()  # what CPython's rule would do in its time
        most_kept = max(most_kept, sum(r() is not None for r in gone))
    assert most_kept <= 20  # half of the 40 that stay
    assert all(r() is None for r in gone[:-20])
    later = [Connection() for _ in range(10)]
    for _ in later:
        heap.opened()
    assert not any(tracked(c) for c in staying + later)  # frozen again


def test_off_until_a_serving_process_turns_it_on() -> None:
    heap = LongLived(batch=1)
    heap.opened()
    heap.closed()
    assert gc.get_freeze_count() == 0
