"""An action reply's `Content-Encoding` undone a piece at a time, under a size limit.

httpx decodes each network chunk in one call with no bound on what it produces: 64 KiB of
gzip may inflate to 64 MiB before any limit is checked, and a reply of a few KiB marked
`Content-Encoding: gzip, gzip` inflated to gigabytes in one call (a worker killed for its
memory, then every worker that claimed the step after it). Here every stage inflates at
most `_PIECE` bytes per call, and each stage's output is counted against the limit as it
is produced, so a reply never holds more than about the limit in memory.

What callers may rely on: `gzip` (and `x-gzip`) and `deflate` (zlib-wrapped or raw, as
httpx reads it) are undone, in reverse order of the header; `identity` and any other
token are passed through as httpx passes them. More than the limit from any stage raises
`ResponseTooLarge`; corrupt data raises `httpx.DecodingError`.
"""

from __future__ import annotations

import zlib
from collections.abc import Iterator

import httpx

from flowsync.errors import ResponseTooLarge

__all__ = ["ACCEPT_ENCODING", "BoundedDecoder"]

# What actions ask for: only the codings decoded here, whatever httpx could decode.
ACCEPT_ENCODING = "gzip, deflate"

_PIECE = 64 * 1024
_GZIP = zlib.MAX_WBITS | 16


class _Inflater:
    def __init__(self, name: str) -> None:
        self.name = name
        self._raw_fallback = name == "deflate"  # some servers send deflate without zlib's header
        self._z = zlib.decompressobj(_GZIP if name != "deflate" else zlib.MAX_WBITS)

    def pieces(self, data: bytes) -> Iterator[bytes]:
        try:
            while True:
                try:
                    out = self._z.decompress(data, _PIECE)
                except zlib.error:
                    if not self._raw_fallback:
                        raise
                    self._raw_fallback = False
                    self._z = zlib.decompressobj(-zlib.MAX_WBITS)
                    continue
                self._raw_fallback = False
                if out:
                    yield out
                data = self._z.unconsumed_tail
                if not data and len(out) < _PIECE:
                    return
        except zlib.error as exc:
            raise httpx.DecodingError(f"the {self.name} content is corrupt: {exc}") from exc

    def flush(self) -> bytes:
        try:
            return self._z.flush()
        except zlib.error as exc:  # pragma: no cover - zlib's flush does not raise in practice
            raise httpx.DecodingError(f"the {self.name} content is corrupt: {exc}") from exc


class BoundedDecoder:
    """Undoes `content_encoding` (the reply's header, or None) on raw body chunks."""

    def __init__(self, content_encoding: str | None, max_bytes: int) -> None:
        names = [n.strip().lower() for n in (content_encoding or "").split(",")]
        codings = ["gzip" if n == "x-gzip" else n for n in names]
        self._stages = [_Inflater(n) for n in reversed(codings) if n in ("gzip", "deflate")]
        self._produced = [0] * len(self._stages)
        self._max_bytes = max_bytes

    def feed(self, chunk: bytes) -> list[bytes]:
        """The decoded bytes of the next raw chunk."""
        return list(self._through(0, chunk))

    def finish(self) -> list[bytes]:
        """What the stages still hold once the raw body has ended."""
        out: list[bytes] = []
        for index, stage in enumerate(self._stages):  # in order: a flush feeds the next
            rest = stage.flush()
            if rest:
                self._count(index, len(rest))
                out.extend(self._through(index + 1, rest))
        return out

    def _through(self, index: int, data: bytes) -> Iterator[bytes]:
        if index == len(self._stages):
            if data:
                yield data
            return
        for piece in self._stages[index].pieces(data):
            self._count(index, len(piece))
            yield from self._through(index + 1, piece)

    def _count(self, index: int, size: int) -> None:
        self._produced[index] += size
        if self._produced[index] > self._max_bytes:
            raise ResponseTooLarge(
                f"the reply body is larger than the limit of {self._max_bytes} bytes"
            )
