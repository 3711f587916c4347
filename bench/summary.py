"""A benchmark run's figures as one table, each beside its ceiling from the same run, and
as JSON (what `bench/compare.py` reads to compare two runs).

    {"benchmark": "engine", "at": "...", "commit": "...", "cpus": 2, "command": "...",
     "figures": [{"name": "10-step chain, 1 worker", "value": 2290.0, "unit": "steps/s",
                  "better": "higher", "ceiling": 5250.0,
                  "ceiling_name": "pgbench bare queue step, 8 clients"}, ...]}

A figure without a ceiling measured in the run has `ceiling` null.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from dataclasses import asdict, dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

ROOT = Path(__file__).resolve().parents[1]


@dataclass(frozen=True)
class Figure:
    """One measured figure; `better` says which way is an improvement."""

    name: str
    value: float
    unit: str
    better: str = "higher"
    ceiling: float | None = None
    ceiling_name: str = ""

    def share(self) -> float | None:
        """The figure as a fraction of its ceiling (for "higher" figures only)."""
        if self.ceiling is None or not self.ceiling or self.better != "higher":
            return None
        return self.value / self.ceiling


def number(value: float) -> str:
    if abs(value) >= 100:
        return f"{value:,.0f}"
    return f"{value:.2f}"


def table(figures: list[Figure]) -> str:
    """The figures as a fixed-width table: value, ceiling, share of the ceiling."""
    head = ("figure", "value", "unit", "ceiling", "of ceiling", "ceiling is")
    rows = [
        (
            f.name,
            number(f.value),
            f.unit,
            "-" if f.ceiling is None else number(f.ceiling),
            "-" if f.share() is None else f"{f.share():.0%}",
            f.ceiling_name or "-",
        )
        for f in figures
    ]
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    right = {1, 3, 4}

    def line(row: tuple[str, ...]) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
                 enumerate(zip(row, widths, strict=True))]  # fmt: skip
        return "  ".join(cells).rstrip()

    return "\n".join([line(head), line(tuple("-" * w for w in widths)), *map(line, rows)])


def _commit() -> str | None:
    try:
        out = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=ROOT, capture_output=True, text=True
        )
    except OSError:
        return None
    return out.stdout.strip() or None


def document(benchmark: str, figures: list[Figure]) -> dict[str, Any]:
    """The JSON form of a run."""
    return {
        "benchmark": benchmark,
        "at": datetime.now(UTC).isoformat(timespec="seconds"),
        "commit": _commit(),
        "cpus": os.cpu_count(),
        "command": " ".join(sys.argv),
        "figures": [asdict(f) for f in figures],
    }


def write(path: Path, benchmark: str, figures: list[Figure]) -> None:
    """Write the run's JSON to `path`."""
    path.write_text(json.dumps(document(benchmark, figures), indent=2) + "\n")


def load(path: Path) -> tuple[dict[str, Any], list[Figure]]:
    """A run written by `write`: its header fields and its figures."""
    raw = json.loads(path.read_text())
    return raw, [Figure(**f) for f in raw["figures"]]
