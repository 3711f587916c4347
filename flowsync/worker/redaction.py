"""Keeping secrets' values out of what a step leaves behind.

A step that reads `{{ secrets.NAME }}` gets the value only to render its request. Its
outcome (output, error) is what the engine stores in steps, events, dead letters and
hands to later steps, subscriptions and logs: every occurrence of a value in it becomes
`[secret:NAME]` before it leaves the worker, wherever the value turns up (a target that
echoes the request back, an error quoting the URL). The forms a value takes on its way
back are covered too: as it is, JSON-escaped, and percent-encoded.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["Redactor"]


class Redactor:
    """Replaces secrets' values (and their encoded forms) in text and JSON values."""

    __slots__ = ("_pairs",)

    def __init__(self, values: Mapping[str, str]) -> None:
        pairs: dict[str, str] = {}
        for name, value in values.items():
            if not value:
                continue
            mark = f"[secret:{name}]"
            for form in _forms(value):
                # A longer form first, so that a value's encoded form is not cut by a
                # shorter one's replacement.
                pairs.setdefault(form, mark)
        self._pairs = sorted(pairs.items(), key=lambda kv: len(kv[0]), reverse=True)

    def __bool__(self) -> bool:
        return bool(self._pairs)

    def text(self, text: str) -> str:
        """`text` with every value replaced by its mark."""
        for form, mark in self._pairs:
            if form in text:
                text = text.replace(form, mark)
        return text

    def value(self, value: Any) -> Any:
        """A JSON value (or any mix of dicts, lists and scalars) with every string, keys
        included, redacted; a new value, the argument left as it was."""
        if not self._pairs:
            return value
        if isinstance(value, str):
            return self.text(value)
        if isinstance(value, dict):
            return {self.text(k) if isinstance(k, str) else k: self.value(v)
                    for k, v in value.items()}  # fmt: skip
        if isinstance(value, list | tuple):
            return [self.value(v) for v in value]
        return value


def _forms(value: str) -> set[str]:
    escaped = json.dumps(value)[1:-1]
    return {
        value,
        escaped,
        json.dumps(value, ensure_ascii=False)[1:-1],
        quote(value, safe=""),
        quote(value),
        quote_plus(value),
        escaped.replace("/", "\\/"),
    }
