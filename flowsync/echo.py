"""Bounds on what an error message echoes of a caller's input.

A message names the value it refuses (`Int cannot represent non-integer value: "…"`,
`unknown node type '…'`), and a caller's value may be a megabyte: echoed whole, it made
every refusal as large as the request. Each quoted value of more than `ECHO_CHARS`
characters keeps its first `ECHO_CHARS` and an ellipsis, and a message stops at
`MESSAGE_CHARS` whatever it holds."""

from __future__ import annotations

import re

__all__ = ["ECHO_CHARS", "MESSAGE_CHARS", "bounded", "shown"]

ECHO_CHARS = 64
MESSAGE_CHARS = 1000
ELLIPSIS = "…"
# A run inside single or double quotes (never across a quote or a line: linear time).
_LONG = ECHO_CHARS + 1
_QUOTED = re.compile(rf"""'([^'\n]{{{_LONG},}})'|"([^"\n]{{{_LONG},}})\"""")


def shown(value: object) -> str:
    """A value a caller sent, as an error message may echo it: its text, cut to its first
    ECHO_CHARS characters and "…" when longer, so that an error never sends back a huge
    id, name or parameter whole (QA found a 100 KB id echoed in a 404). Format it with
    `!r` where the message quotes it."""
    text = value if isinstance(value, str) else str(value)
    return text if len(text) <= ECHO_CHARS else text[:ECHO_CHARS] + ELLIPSIS


def _cut(match: re.Match[str]) -> str:
    quote = match.group(0)[0]
    inner = match.group(1) if match.group(1) is not None else match.group(2)
    return f"{quote}{shown(inner)}{quote}"


def bounded(message: str) -> str:
    """`message` with each quoted value cut to ECHO_CHARS characters (and "…"), and at
    most MESSAGE_CHARS characters in all; a message within both is returned as it is."""
    if len(message) <= ECHO_CHARS:
        return message
    short = _QUOTED.sub(_cut, message)
    if len(short) > MESSAGE_CHARS:
        short = short[:MESSAGE_CHARS] + ELLIPSIS
    return short
