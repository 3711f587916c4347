"""Keyset pagination: opaque cursors over (created_at, id), newest first."""

from __future__ import annotations

import base64
import binascii
import json
import uuid
from dataclasses import dataclass
from datetime import datetime
from typing import Generic, TypeVar

from flowsync.errors import InvalidInput, Problem

T = TypeVar("T")

MAX_PAGE_SIZE = 200
DEFAULT_PAGE_SIZE = 50


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
    try:
        padded = cursor + "=" * (-len(cursor) % 4)
        created, id_ = json.loads(base64.urlsafe_b64decode(padded.encode()))
        return Cursor(datetime.fromisoformat(created), str(uuid.UUID(str(id_))))
    except (ValueError, TypeError, binascii.Error, json.JSONDecodeError) as exc:
        raise InvalidInput(
            "The cursor is not valid; use a cursor from a previous page.",
            [Problem(path, "not a cursor returned by this API")],
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
