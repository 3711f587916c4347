"""The pure rules of priorities and concurrency keys (flowsync/engine/fairness.py): the
priority a run gets, what its jobs store, the definition's fields checked with their
paths, and a key evaluated (or failing with an error that names concurrencyKey)."""

from __future__ import annotations

from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowsync.engine.fairness import (
    KeyFailed,
    check_fairness,
    checked_priority,
    chosen_priority,
    evaluate_key,
    job_priority,
)
from flowsync.engine.problems import ProblemCollector
from flowsync.engine.templates import compile_template
from flowsync.errors import InvalidInput, Problem

PRIORITIES = st.integers(-100, 100)


@given(st.none() | PRIORITIES, st.none() | PRIORITIES, PRIORITIES)
def test_the_start_beats_the_trigger_which_beats_the_definition(
    start: int | None, trigger: int | None, default: int
) -> None:
    got = chosen_priority(start, trigger, default)
    if start is not None:
        assert got == start
    elif trigger is not None:
        assert got == trigger
    else:
        assert got == default


@given(PRIORITIES, PRIORITIES)
def test_a_higher_priority_is_claimed_first(a: int, b: int) -> None:
    # The claim takes the lowest jobs.priority first.
    assert (a > b) == (job_priority(a) < job_priority(b))


@pytest.mark.parametrize("bad", [101, -101, 1.5, True, "5", [], {}])
def test_a_start_priority_out_of_range_names_priority_and_the_range(bad: object) -> None:
    with pytest.raises(InvalidInput) as caught:
        checked_priority(bad)
    assert caught.value.details[0].path == "priority"
    assert "-100 to 100" in caught.value.message


def test_a_start_priority_in_range_or_none_passes() -> None:
    assert checked_priority(None) is None
    assert [checked_priority(p) for p in (-100, 0, 100)] == [-100, 0, 100]


def problems_of(raw: dict[str, Any]) -> tuple[Any, list[Problem]]:
    problems: list[Problem] = []
    fairness = check_fairness(raw, ProblemCollector("$", problems))
    return fairness, problems


def test_the_definitions_fields_compile() -> None:
    fairness, problems = problems_of(
        {"priority": -3, "concurrencyKey": "{{ input.c }}", "concurrencyKeyLimit": 4}
    )
    assert problems == []
    assert (fairness.priority, fairness.concurrency_key_limit) == (-3, 4)
    assert fairness.concurrency_key is not None
    assert problems_of({})[0].priority == 0


@pytest.mark.parametrize(
    ("raw", "paths"),
    [
        ({"priority": 101}, {"$.priority"}),
        ({"priority": None}, {"$.priority"}),
        ({"concurrencyKey": "{{ input.c }}"}, {"$.concurrencyKey"}),
        ({"concurrencyKeyLimit": 2}, {"$.concurrencyKeyLimit"}),
        ({"concurrencyKey": "x", "concurrencyKeyLimit": True}, {"$.concurrencyKeyLimit"}),
        ({"concurrencyKey": "  ", "concurrencyKeyLimit": 1}, {"$.concurrencyKey"}),
        ({"concurrencyKey": "{{ input.( }}", "concurrencyKeyLimit": 1}, {"$.concurrencyKey"}),
        ({"concurrencyKey": "{{ execution.id }}", "concurrencyKeyLimit": 1}, {"$.concurrencyKey"}),
    ],
)
def test_each_bad_field_is_named(raw: dict[str, Any], paths: set[str]) -> None:
    fairness, problems = problems_of(raw)
    assert {p.path for p in problems} == paths, problems
    assert fairness.concurrency_key is None or not problems


@pytest.mark.parametrize(
    ("input", "key"),
    [({"c": "acme"}, "acme"), ({"c": 42}, "42"), ({"c": True}, "true"), ({"c": 1.5}, "1.5")],
)
def test_a_key_is_its_value_as_text(input: Any, key: str) -> None:
    assert evaluate_key(compile_template("{{ input.c }}"), input, {"type": "MANUAL"}) == key


def test_a_key_may_read_the_trigger_and_mix_text() -> None:
    template = compile_template("{{ trigger.type }}/{{ input.c }}")
    assert evaluate_key(template, {"c": "x"}, {"type": "WEBHOOK"}) == "WEBHOOK/x"


@pytest.mark.parametrize(
    ("input", "said"),
    [
        ({}, "concurrencyKey failed"),
        ({"c": None}, "concurrencyKey gave null"),
        ({"c": {"a": 1}}, "concurrencyKey gave an object"),
        ({"c": [1]}, "concurrencyKey gave a list"),
        ({"c": "x" * 256}, "256 characters"),
        ({"c": ""}, "0 characters"),
    ],
)
def test_a_failing_key_names_concurrency_key(input: Any, said: str) -> None:
    with pytest.raises(KeyFailed) as caught:
        evaluate_key(compile_template("{{ input.c }}"), input, {"type": "MANUAL"})
    assert said in str(caught.value.error["message"])
    assert caught.value.error["path"] == "$.concurrencyKey"
