"""Keeping secrets' values out of what a step leaves behind.

A step that reads `{{ secrets.NAME }}` gets the value only to render its request. Its
outcome (output, error) is what the engine stores in steps, events, dead letters and
hands to later steps, subscriptions and logs: every occurrence of a value in it becomes
`[secret:NAME]` before it leaves the worker, wherever the value turns up (a target that
echoes the request back, an error quoting the URL). The forms a value takes on its way
back are covered too: as it is, JSON-escaped, and percent-encoded.
"""

from __future__ import annotations

import contextlib
import json
import logging
import threading
from collections.abc import Iterable, Iterator, Mapping
from typing import Any
from urllib.parse import quote, quote_plus

__all__ = ["LIVE", "Redactor", "SecretLogFilter"]


class Redactor:
    """Replaces secrets' values (and their encoded forms) in text and JSON values."""

    __slots__ = ("_pairs",)

    def __init__(self, values: Mapping[str, str] | Iterable[tuple[str, str]]) -> None:
        pairs: dict[str, str] = {}
        items = values.items() if isinstance(values, Mapping) else values
        for name, value in items:
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


class _Live:
    """The values of the secrets this process's steps hold now, so that a log line written
    meanwhile (a library's, such as an HTTP client's request line) is redacted too."""

    def __init__(self) -> None:
        self._lock = threading.Lock()
        self._counts: dict[tuple[str, str], int] = {}
        self._redactor = Redactor({})

    def redactor(self) -> Redactor:
        """A redactor of every value in use now."""
        return self._redactor

    @contextlib.contextmanager
    def using(self, values: Mapping[str, str]) -> Iterator[None]:
        """Count `values` as in use for the block."""
        pairs = list(values.items())
        self._change(pairs, 1)
        try:
            yield
        finally:
            self._change(pairs, -1)

    def _change(self, pairs: list[tuple[str, str]], by: int) -> None:
        if not pairs:
            return
        with self._lock:
            for pair in pairs:
                count = self._counts.get(pair, 0) + by
                if count > 0:
                    self._counts[pair] = count
                else:
                    self._counts.pop(pair, None)
            self._redactor = Redactor(list(self._counts))


LIVE = _Live()


class SecretLogFilter(logging.Filter):
    """A handler's filter that redacts the values of the secrets in use (`LIVE`) from a
    record's message and traceback before any formatter sees them."""

    def filter(self, record: logging.LogRecord) -> bool:
        redactor = LIVE.redactor()
        if not redactor:
            return True
        message = record.getMessage()
        redacted = redactor.text(message)
        if redacted != message:
            record.msg, record.args = redacted, None
        if record.exc_info and not record.exc_text:
            record.exc_text = logging.Formatter().formatException(record.exc_info)
        if record.exc_text:
            record.exc_text = redactor.text(record.exc_text)
        if record.stack_info:
            record.stack_info = redactor.text(record.stack_info)
        return True
