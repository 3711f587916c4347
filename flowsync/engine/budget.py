"""What an expression may cost: a static estimate from its tokens, checked at save.

CEL has no loops, but its comprehension macros (`all`, `exists`, `exists_one`, `map`,
`filter`) run their body once per item of a list (or key of a map), and they nest: seven
levels over a ten-item list run the innermost body ten million times, and the Rust runtime
has no cost limit of its own. So every expression gets an estimate in *units* (about one
per syntax node evaluated, the way cel-go and Kubernetes count) before it is accepted:

- each token is one unit, a string literal one more per 10 characters;
- a comprehension's arguments count once per item of its list: the exact count for a list
  or map literal (`[1, 2, 3].all(...)`), the same bound as its receiver for a `map` or
  `filter` result, and otherwise a nominal size, `DATA_ITEMS` for a list read from data
  and `ITEM_ITEMS` for a list inside an item that an enclosing comprehension iterates
  (`orders.map(o, o.lines.map(...))` walks each order's own lines);
- nesting multiplies;
- `map` and `filter` also count n(n-1)/2 for a list of n: this runtime copies what they
  built so far at every item (measured: `map` over 4,000 items took 0.47 s, over
  2,000 0.11 s, while `all` over 4,000 took 1.6 ms).

An expression over `MAX_COST` units, or whose comprehensions nest deeper than
`MAX_NESTING`, is refused when the workflow is saved. The estimate cannot know how long a
list from data is, nor how big a value read from data is: an expression that iterates such
a list, costs over `OFFLOAD_COST`, or reads data more than `INLINE_READS` times (`a + a +
a...` copies a big `a` again at each `+`) is evaluated away from the event loop under a
time limit (see flowsync/worker/evaluation.py).

Pure: tokens in, numbers out.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Protocol

__all__ = [
    "DATA_ITEMS",
    "INLINE_READS",
    "ITEM_ITEMS",
    "MACROS",
    "MAX_COST",
    "MAX_NESTING",
    "OFFLOAD_COST",
    "Cost",
    "estimate",
]

MACROS = frozenset({"all", "exists", "exists_one", "map", "filter"})
"""The comprehension macros: each runs its arguments once per item of its receiver."""

MAX_COST = 1_000_000
"""The most units an expression may cost (about 0.1 to 1 s of evaluation at the most)."""

MAX_NESTING = 4
"""The deepest comprehensions may nest."""

DATA_ITEMS = 100
"""The items a list read from data is assumed to have."""

ITEM_ITEMS = 10
"""The items a list inside an iterated item is assumed to have."""

OFFLOAD_COST = 1_000
"""Above this many units, an expression is evaluated away from the event loop."""

INLINE_READS = 8
"""Reading data more often than this, an expression is evaluated away from the event loop."""

_VARIABLES = frozenset({"input", "steps", "execution", "trigger"})
_ACCUMULATING = frozenset({"map", "filter"})
_OPENING = {"(": ")", "[": "]", "{": "}"}
_CLOSING = frozenset(_OPENING.values())


class _Token(Protocol):
    @property
    def kind(self) -> str: ...
    @property
    def text(self) -> str: ...


@dataclass(frozen=True, slots=True)
class Cost:
    """The static estimate of one expression."""

    units: int
    """Estimated evaluation steps, nominal sizes standing for lists from data."""
    nesting: int
    """How deeply its comprehensions nest (0: none)."""
    unknown_sizes: bool
    """Whether some comprehension iterates a list whose size only data tells."""
    reads: int
    """How many times it names `input`, `steps`, `execution` or `trigger`."""

    @property
    def offloaded(self) -> bool:
        """Whether evaluating it may take long enough to keep it off the event loop."""
        return self.unknown_sizes or self.units > OFFLOAD_COST or self.reads > INLINE_READS

    def problem(self) -> str | None:
        """Why the expression is over budget, or None when it is within it."""
        if self.nesting > MAX_NESTING:
            return (
                f"comprehensions (all, exists, exists_one, map, filter) are nested "
                f"{self.nesting} deep; at most {MAX_NESTING}: each level repeats the ones "
                "inside it for every item"
            )
        if self.units > MAX_COST:
            return (
                f"too costly to evaluate: about {self.units:,} steps, at most {MAX_COST:,} "
                "(each comprehension repeats its body for every item of its list, nesting "
                f"multiplies, and a list read from data counts as {DATA_ITEMS} items); "
                "iterate fewer or shorter lists, or split the work across steps"
            )
        return None


@dataclass(frozen=True, slots=True)
class _Loop:
    paren: int  # index of the macro's `(`
    stop: int  # index of its `)`
    size: int
    known: bool
    variable: str
    accumulates: bool  # map or filter


def estimate(tokens: Sequence[_Token]) -> Cost:
    """The cost of an expression from its tokens (as `expressions.scan` gives them).

    Meant for source that compiles; any other token list still gets an answer. Linear in
    the number of tokens times the nesting depth.
    """
    closing = _pairs(tokens)
    loops: list[_Loop] = []
    by_paren: dict[int, _Loop] = {}
    for i in range(1, len(tokens) - 4):
        dot, macro, paren, name, comma = tokens[i : i + 5]
        if not (
            dot.text == "."
            and macro.kind == "ident"
            and macro.text in MACROS
            and paren.text == "("
            and name.kind == "ident"
            and comma.text == ","
        ):
            continue
        enclosing = [loop for loop in loops if loop.paren < i < loop.stop]
        size, known = _receiver_size(tokens, i - 1, closing, by_paren, enclosing)
        accumulates = macro.text in _ACCUMULATING
        loop = _Loop(i + 2, closing.get(i + 2, len(tokens)), size, known, name.text, accumulates)
        loops.append(loop)
        by_paren[loop.paren] = loop
    units = 0
    nesting = 0
    for i, token in enumerate(tokens):
        multiplier, depth = 1, 0
        for loop in loops:
            if loop.paren < i < loop.stop:
                multiplier *= loop.size
                depth += 1
            elif loop.paren == i and loop.accumulates:
                # Item k copies the k built before it; `multiplier`: the loops around it.
                units += loop.size * (loop.size - 1) // 2 * multiplier
        nesting = max(nesting, depth)
        units += (1 + len(token.text) // 10 if token.kind == "string" else 1) * multiplier
    reads = sum(1 for i in range(len(tokens)) if _reads_data(tokens, i))
    return Cost(units, nesting, any(not loop.known for loop in loops), reads)


def _reads_data(tokens: Sequence[_Token], i: int) -> bool:
    token = tokens[i]
    return (
        token.kind == "ident"
        and token.text in _VARIABLES
        and not (i > 0 and tokens[i - 1].text == ".")  # a field of that name
        and not (i + 1 < len(tokens) and tokens[i + 1].text == "(")  # a function
    )


def _pairs(tokens: Sequence[_Token]) -> dict[int, int]:
    """Index of each opening bracket → index of its closing one."""
    closing: dict[int, int] = {}
    opened: list[int] = []
    for i, token in enumerate(tokens):
        if token.kind != "punct":
            continue
        if token.text in _OPENING:
            opened.append(i)
        elif token.text in _CLOSING and opened:
            closing[opened.pop()] = i
    return closing


def _receiver_size(
    tokens: Sequence[_Token],
    end: int,
    closing: dict[int, int],
    by_paren: dict[int, _Loop],
    enclosing: list[_Loop],
) -> tuple[int, bool]:
    """How many items the receiver that ends at token `end` has, and whether that is
    known (a literal, or a comprehension over one) rather than nominal."""
    opening = {stop: start for start, stop in closing.items()}
    last = tokens[end].text
    start = opening.get(end)
    if start is not None and last in ("]", "}") and _starts_literal(tokens, start):
        return _items(tokens, start, end, closing), True
    if start is not None and last == ")" and start in by_paren:
        inner = by_paren[start]  # `list.map(...).filter(...)`: at most as many items
        return inner.size, inner.known
    # A chain such as `steps.fetch.output.items` or `o.lines`: find the name it starts at.
    j = end
    while j >= 0:
        text = tokens[j].text
        if text in (")", "]") and j in opening:
            j = opening[j] - 1
        elif tokens[j].kind == "ident" and j > 0 and tokens[j - 1].text == ".":
            j -= 2
        else:
            break
    root = tokens[j].text if j >= 0 and tokens[j].kind == "ident" else None
    if root is not None and any(loop.variable == root for loop in enclosing):
        return ITEM_ITEMS, False
    return DATA_ITEMS, False


def _starts_literal(tokens: Sequence[_Token], start: int) -> bool:
    """Whether the bracket at `start` opens a list or map literal (not an index)."""
    if start == 0:
        return True
    before = tokens[start - 1]
    if before.kind == "punct":
        return before.text not in (")", "]", "}", ".")
    return before.kind == "ident" and before.text == "in"


def _items(tokens: Sequence[_Token], start: int, end: int, closing: dict[int, int]) -> int:
    """The number of items (or map entries) of the literal between `start` and `end`."""
    if end == start + 1:
        return 0
    count = 1
    i = start + 1
    while i < end:
        if i in closing:
            i = closing[i] + 1
            continue
        if tokens[i].text == "," and i + 1 < end:  # a trailing comma adds no item
            count += 1
        i += 1
    return count
