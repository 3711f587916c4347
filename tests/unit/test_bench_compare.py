"""bench/compare.py: two runs' JSON (as bench/summary.py writes it) compared figure by
figure, each ratio new/old, better or worse by the figure's direction, and each run's
share of its own ceiling."""

from __future__ import annotations

import re
from pathlib import Path

from bench.compare import ratios
from bench.summary import Figure, load, table, write

OLD = [
    Figure("chain, 1 worker: steps/s", 2000.0, "steps/s", "higher", 5000.0, "pgbench"),
    Figure("hop latency p50", 1.0, "ms", "lower"),
    Figure("retired figure", 10.0, "runs/s"),
]
NEW = [
    Figure("chain, 1 worker: steps/s", 3000.0, "steps/s", "higher", 6000.0, "pgbench"),
    Figure("hop latency p50", 1.5, "ms", "lower"),
    Figure("bulk starts", 20000.0, "runs/s", "higher", 100000.0, "bare INSERT"),
]


def rows(text: str) -> dict[str, list[str]]:
    """The table's rows by figure name, each as its cells (split on 2+ spaces)."""
    lines = text.splitlines()[2:]
    return {cells[0]: cells for cells in (re.split(r"\s{2,}", line) for line in lines)}


def test_the_json_round_trips_and_compares_as_ratios(tmp_path: Path) -> None:
    old_path, new_path = tmp_path / "old.json", tmp_path / "new.json"
    write(old_path, "engine", OLD)
    write(new_path, "engine", NEW)
    head, old = load(old_path)
    assert head["benchmark"] == "engine" and old == OLD
    found = rows(ratios(old, load(new_path)[1]))
    assert found["chain, 1 worker: steps/s"] == [
        "chain, 1 worker: steps/s", "2,000", "3,000", "steps/s", "1.50x", "better", "40%", "50%",
    ]  # fmt: skip
    # Lower is better for a latency: 1.5x is worse.
    assert found["hop latency p50"][4:6] == ["1.50x", "worse"]
    # A figure in one run only has no ratio.
    assert found["retired figure"][1:3] == ["10.00", "-"]
    assert found["bulk starts"][1:3] == ["-", "20,000"] and found["bulk starts"][-1] == "20%"
    assert list(found) == ["chain, 1 worker: steps/s", "hop latency p50", "retired figure",
                           "bulk starts"]  # fmt: skip


def test_a_ratio_within_three_percent_is_the_same() -> None:
    old = [Figure("x", 100.0, "steps/s")]
    assert rows(ratios(old, [Figure("x", 102.0, "steps/s")]))["x"][4:6] == ["1.02x", "same"]


def test_the_summary_table_puts_each_figure_beside_its_ceiling() -> None:
    found = rows(table(NEW))
    assert found["chain, 1 worker: steps/s"][1:] == ["3,000", "steps/s", "6,000", "50%", "pgbench"]
    assert found["hop latency p50"][1:] == ["1.50", "ms", "-", "-", "-"]
