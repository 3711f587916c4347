"""Keyset pagination: opaque cursors over (created_at, id), newest first."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Generic, TypeVar

import orjson

from flowsync.errors import InvalidInput, Problem

T = TypeVar("T")

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50
# Far longer than any cursor this API makes (about 90 characters).
MAX_CURSOR_LENGTH = 512


@dataclass(frozen=True, slots=True)
class Page(Generic[T]):
    """One page of a list; `next_cursor` is None on the last page."""

    items: list[T]
    next_cursor: str | None


@dataclass(frozen=True, slots=True)
class Cursor:
    """The position after which a page starts."""

    created_at: datetime
    id: str


def encode_cursor(created_at: datetime, id_: object) -> str:
    """An opaque cursor for the row (created_at, id)."""
    raw = json.dumps([created_at.isoformat(), str(id_)]).encode()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def decode_cursor(cursor: str, *, path: str = "cursor") -> Cursor:
    """Parse a cursor from `encode_cursor`; anything else is a clear 400, never a 500."""
    items = cursor_items(cursor, path=path)
    try:
        created, id_ = items
        if not isinstance(created, str) or not isinstance(id_, str):
            raise TypeError(items)
        at = datetime.fromisoformat(created)
        if at.tzinfo is None:
            raise ValueError(created)
        return Cursor(utc_time(at, path=path), str(uuid.UUID(id_)))
    except (ValueError, TypeError) as exc:
        raise _bad_cursor(path) from exc


def cursor_items(cursor: str, *, path: str = "cursor") -> list[object]:
    """The JSON array inside an opaque cursor; InvalidInput for anything else (too long,
    not base64, not JSON, nested beyond orjson's limit, not an array)."""
    try:
        if len(cursor) > MAX_CURSOR_LENGTH:
            raise ValueError("too long")
        padded = cursor + "=" * (-len(cursor) % 4)
        items = orjson.loads(base64.urlsafe_b64decode(padded.encode()))
    except (ValueError, TypeError, binascii.Error) as exc:  # JSONDecodeError is a ValueError
        raise _bad_cursor(path) from exc
    if not isinstance(items, list):
        raise _bad_cursor(path)
    return items


def _bad_cursor(path: str) -> InvalidInput:
    return InvalidInput(
        "The cursor is not valid; use a cursor from a previous page.",
        [Problem(path, "not a cursor returned by this API")],
    )


def utc_time(instant: datetime, *, path: str) -> datetime:
    """A time a caller sent, in UTC as the database compares it. InvalidInput naming
    `path` when it has no offset (`2024-05-01T12:00:00` is a different instant in every
    zone: refused, as a backfill's range is, rather than guessed) or when UTC cannot hold
    it (year 1 at +01:00 is year 0, 9999-12-31T23:00-02:00 is year 10000)."""
    if instant.tzinfo is None or instant.utcoffset() is None:
        raise InvalidInput(
            f"The time {path} has no UTC offset.",
            [Problem(path, "must include its offset or Z, such as 2024-05-01T12:00:00Z")],
        )
    try:
        return instant.astimezone(UTC)
    except OverflowError as exc:
        raise InvalidInput(
            f"The time {path} is out of range.",
            [Problem(path, f"{instant.isoformat()} is before year 1 or after 9999 in UTC")],
        ) from exc


def page_size(limit: int | None, *, path: str = "limit") -> int:
    """The page size asked for, checked: 1 to MAX_PAGE_SIZE, default DEFAULT_PAGE_SIZE."""
    if limit is None:
        return DEFAULT_PAGE_SIZE
    if not 1 <= limit <= MAX_PAGE_SIZE:
        raise InvalidInput(
            f"The page size must be between 1 and {MAX_PAGE_SIZE}.",
            [Problem(path, f"must be between 1 and {MAX_PAGE_SIZE}, got {limit}")],
        )
    return limit
