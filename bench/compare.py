"""Compare two benchmark runs written with `--json` (bench/engine_bench.py): each figure
of the new run against the old one's, as a ratio, with each run's share of its own
ceiling (which corrects for a machine that was faster or slower that day).

    .venv/bin/python bench/compare.py OLD.json NEW.json

`new/old` is the new figure over the old; `change` says whether that is better or worse
for the figure (a latency is better lower). Figures in only one of the runs are listed
with a dash. Nothing is asserted.
"""

from __future__ import annotations

import argparse
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from bench.summary import Figure, load, number  # noqa: E402

# A ratio this close to 1 is noise, not a change.
SAME = 0.03


def verdict(old: Figure, new: Figure) -> str:
    """ "better", "worse" or "same" for the change from `old` to `new`."""
    if not old.value:
        return "same" if not new.value else "-"
    ratio = new.value / old.value
    if abs(ratio - 1) <= SAME:
        return "same"
    improved = ratio > 1 if new.better == "higher" else ratio < 1
    return "better" if improved else "worse"


def _share(figure: Figure | None) -> str:
    share = figure.share() if figure is not None else None
    return "-" if share is None else f"{share:.0%}"


def ratios(old: list[Figure], new: list[Figure]) -> str:
    """The comparison table: one row per figure of either run, the old run's order
    first."""
    before = {f.name: f for f in old}
    after = {f.name: f for f in new}
    names = [f.name for f in old] + [f.name for f in new if f.name not in before]
    head = ("figure", "old", "new", "unit", "new/old", "change", "old of ceiling",
            "new of ceiling")  # fmt: skip
    rows = []
    for name in names:
        o, n = before.get(name), after.get(name)
        either = n if n is not None else o
        assert either is not None
        ratio = "-"
        change = "-"
        if o is not None and n is not None and o.value:
            ratio = f"{n.value / o.value:.2f}x"
            change = verdict(o, n)
        rows.append((
            name,
            "-" if o is None else number(o.value),
            "-" if n is None else number(n.value),
            either.unit,
            ratio,
            change,
            _share(o),
            _share(n),
        ))  # fmt: skip
    widths = [max(len(r[i]) for r in [head, *rows]) for i in range(len(head))]
    right = {1, 2, 4, 6, 7}

    def line(row: tuple[str, ...]) -> str:
        cells = [c.rjust(w) if i in right else c.ljust(w) for i, (c, w) in
                 enumerate(zip(row, widths, strict=True))]  # fmt: skip
        return "  ".join(cells).rstrip()

    return "\n".join([line(head), line(tuple("-" * w for w in widths)), *map(line, rows)])


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("old", type=Path)
    parser.add_argument("new", type=Path)
    args = parser.parse_args()
    old_head, old = load(args.old)
    new_head, new = load(args.new)
    for label, head in (("old", old_head), ("new", new_head)):
        print(f"{label}: {head.get('benchmark')} at {head.get('at')}, commit "
              f"{head.get('commit')}, {head.get('cpus')} cores")  # fmt: skip
    print()
    print(ratios(old, new))


if __name__ == "__main__":
    main()
