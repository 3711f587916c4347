"""Apollo's automatic persisted queries (APQ), over GET, POST and websockets, and the
safelist that `FLOWSYNC_GRAPHQL_SAFELIST` turns on.

A client sends `extensions.persistedQuery = {"version": 1, "sha256Hash": <hex>}` without
the document first; on a miss the server answers `PersistedQueryNotFound` (code
`PERSISTED_QUERY_NOT_FOUND`, as Apollo's clients expect) and the client sends the
document with its hash, which registers it. The cache is a bounded LRU per API process
(`FLOWSYNC_PERSISTED_QUERY_CACHE_SIZE` documents). A document whose SHA-256 is not the
hash sent is refused (`invalid_input`), never registered; so is a document that does not
parse (it runs, and answers its syntax error), and one longer than the cache's size in
characters (`MAX_CHARACTERS` in all, the least recently used dropped first: the count
alone let a client fill a process's memory with long comments). Documents known when the API
starts (the dashboard's manifest, see `flowsync.schema.safelist`) are found by hash too,
never dropped.

In safelist mode only the known documents run, whether sent by hash or in full (the
SHA-256 of the document as sent must be a known id); anything else is refused with
`operation_not_allowed` (HTTP 403) and never runs, and nothing is registered.

Strawberry has no such extension (strawberry-graphql/strawberry#1707 is still open, and
a schema extension cannot answer before the document is parsed); this is the small piece
of the view that fills `query` in before Strawberry runs it."""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict
from collections.abc import Mapping
from dataclasses import dataclass

from graphql import GraphQLError, parse
from strawberry.http import GraphQLRequestData
from strawberry.types.execution import ExecutionResult

from flowsync.errors import OperationNotAllowed

NOT_FOUND = "PersistedQueryNotFound"
NOT_ALLOWED = (
    "This operation is not on the server's safelist (FLOWSYNC_GRAPHQL_SAFELIST): register "
    "it with `flowsync graphql register`; it was not run."
)
_HASH = re.compile(r"[0-9a-f]{64}")


@dataclass(frozen=True, slots=True)
class Refusal:
    """What to answer instead of running an operation; `status` the HTTP status (None:
    200, as GraphQL answers errors it found in a well-formed request)."""

    result: ExecutionResult
    status: int | None = None

    @property
    def errors(self) -> list[dict[str, object]]:
        """The errors as a GraphQL response (or a websocket message) holds them."""
        return [dict(e.formatted) for e in self.result.errors or []]


def _refusal(message: str, code: str, status: int | None = None) -> Refusal:
    error = GraphQLError(message, extensions={"code": code})
    return Refusal(ExecutionResult(data=None, errors=[error]), status)


def _not_allowed() -> Refusal:
    return _refusal(NOT_ALLOWED, OperationNotAllowed.code, OperationNotAllowed.status)


class PersistedQueries:
    """The documents known by hash: those given when the API starts (`known`, never
    dropped), then those clients registered, least recently used dropped first, at most
    `size` of them and `characters` characters in all. With `safelist`, only the known
    ones run and clients register nothing."""

    MAX_CHARACTERS = 8 * 1024 * 1024

    def __init__(
        self,
        size: int,
        known: Mapping[str, str] | None = None,
        *,
        safelist: bool = False,
        characters: int = MAX_CHARACTERS,
    ) -> None:
        self.size = size
        self.characters = characters
        self.known = dict(known or {})
        self.safelist = safelist
        self._documents: OrderedDict[str, str] = OrderedDict()
        self._held = 0  # characters of the registered documents

    def __len__(self) -> int:
        return len(self._documents)

    def resolve(self, data: GraphQLRequestData) -> Refusal | None:
        """Fill `data.query` in by its hash, or register the document sent with its
        hash; a refusal to answer instead of running (a miss, a bad hash, in safelist
        mode an operation not on the list). Requests without `extensions.persistedQuery`
        pass untouched, except in safelist mode."""
        extensions = data.extensions or {}
        if "persistedQuery" not in extensions:
            sent = data.query
            if self.safelist and sent is not None and not self._known(sent):
                return _not_allowed()
            return None
        persisted = extensions["persistedQuery"]
        if not isinstance(persisted, dict) or persisted.get("version") != 1:
            return _refusal(
                '`extensions.persistedQuery` must be {"version": 1, "sha256Hash": ...}.',
                "invalid_input",
            )
        digest = persisted.get("sha256Hash")
        if not isinstance(digest, str) or not _HASH.fullmatch(digest):
            return _refusal(
                "`extensions.persistedQuery.sha256Hash` must be 64 lowercase hex digits.",
                "invalid_input",
            )
        if data.query is None:
            found = self.known.get(digest)
            if found is None and not self.safelist:
                found = self._documents.get(digest)
                if found is not None:
                    self._documents.move_to_end(digest)
            if found is None:
                if self.safelist:
                    return _not_allowed()
                return _refusal(NOT_FOUND, "PERSISTED_QUERY_NOT_FOUND")
            data.query = found
            return None
        if not isinstance(data.query, str) or self._digest(data.query) != digest:
            return _refusal(
                "`extensions.persistedQuery.sha256Hash` is not the SHA-256 of `query` "
                "(hex of the UTF-8 document as sent); nothing was registered.",
                "invalid_input",
            )
        if digest in self.known:
            return None
        if self.safelist:
            return _not_allowed()
        if digest not in self._documents and self._registrable(data.query):
            self._documents[digest] = data.query
            self._held += len(data.query)
        elif digest in self._documents:
            self._documents.move_to_end(digest)
        while len(self._documents) > self.size or self._held > self.characters:
            self._held -= len(self._documents.popitem(last=False)[1])
        return None

    def _registrable(self, query: str) -> bool:
        """Short enough to keep, and a document (a syntax error is answered, not kept)."""
        if len(query) > self.characters:
            return False
        try:
            parse(query, no_location=True)
        except GraphQLError:
            return False
        return True

    def _known(self, query: object) -> bool:
        return isinstance(query, str) and self._digest(query) in self.known

    @staticmethod
    def _digest(query: str) -> str:
        # surrogatepass: a lone surrogate (JSON allows its escape) hashes to no known id
        # rather than failing.
        return hashlib.sha256(query.encode("utf-8", "surrogatepass")).hexdigest()
