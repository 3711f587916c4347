"""Time-ordered ids (UUID version 7, RFC 9562) for runs and their steps.

A run's id is the key of its row, of its steps' unique index and of its events' primary
key. Random (version 4) ids put each new row on a random leaf page of those indexes; a
batch of 1,000 starts dirtied some 9,000 pages across them. A version 7 id begins with the
millisecond it was made in, so new rows land on the indexes' last pages, as a sequence's
would, and a batch start measured 8 % faster (bench/bulk_start_bench.py). The 74 bits
after the timestamp stay random: ids still cannot be guessed, and two made in one
millisecond differ where the dashboard names them (their last 8 hex digits).

The server makes the same ids for rows it inserts itself: `flowsync_uuid7()`
(migration 0019), the default of executions.id and step_executions.id.
"""

from __future__ import annotations

import os
import time
import uuid

# asyncpg's UUID, a subclass of uuid.UUID made from 16 bytes in C: what asyncpg returns
# for a uuid column, and sends without a conversion. uuid.UUID(int=...) took ~1.9 µs an
# id, a tenth of the API's CPU in a batch start; this takes ~0.5.
from asyncpg.pgproto.pgproto import UUID as _UUID

# The version (7) over the high half of byte 6, the variant (0b10) over the top of byte 8.
_VERSION = bytes(0x70 | (b & 0x0F) for b in range(256))
_VARIANT = bytes(0x80 | (b & 0x3F) for b in range(256))


def uuid7s(count: int) -> list[uuid.UUID]:
    """`count` version 7 ids of this millisecond, each with 74 random bits."""
    made = bytearray(16 * count)
    for k, byte in enumerate((time.time_ns() // 1_000_000).to_bytes(6)):
        made[k::16] = bytes((byte,)) * count
    raw = os.urandom(10 * count)
    for k in range(10):
        made[6 + k :: 16] = raw[k::10]
    made[6::16] = made[6::16].translate(_VERSION)
    made[8::16] = made[8::16].translate(_VARIANT)
    data = bytes(made)
    return [_UUID(data[i : i + 16]) for i in range(0, 16 * count, 16)]
