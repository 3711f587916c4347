"""The one nesting check every JSON entry point uses."""

from __future__ import annotations

from types import MappingProxyType

from flowsync.engine.depth import too_deep


def nested(levels: int) -> object:
    value: object = 1
    for i in range(levels):
        value = [value] if i % 2 else {"k": value}
    return value


def test_a_value_nested_exactly_to_the_limit_passes_and_one_more_level_does_not() -> None:
    assert not too_deep(nested(3), 3)
    assert too_deep(nested(4), 3)
    assert not too_deep("text", 0) and not too_deep(None, 0)
    assert too_deep([], 0) and not too_deep([], 1)


def test_tuples_and_read_only_mappings_count_as_containers() -> None:
    assert too_deep(((1,),), 1)
    assert too_deep(MappingProxyType({"a": {"b": 1}}), 1)


def test_any_depth_is_answered_without_recursion() -> None:
    assert too_deep(nested(200_000), 64)
    assert not too_deep([[1] * 10_000] * 10, 64)
