"""Apollo's automatic persisted queries (APQ), over GET and POST.

A client sends `extensions.persistedQuery = {"version": 1, "sha256Hash": <hex>}` without
the document first; on a miss the server answers `PersistedQueryNotFound` (code
`PERSISTED_QUERY_NOT_FOUND`, as Apollo's clients expect) and the client sends the
document with its hash, which registers it. The cache is a bounded LRU per API process
(`FLOWSYNC_PERSISTED_QUERY_CACHE_SIZE` documents). A document whose SHA-256 is not the
hash sent is refused (`invalid_input`), never registered.

Strawberry has no such extension (strawberry-graphql/strawberry#1707 is still open, and
a schema extension cannot answer before the document is parsed); this is the small piece
of the view that fills `query` in before Strawberry runs it."""

from __future__ import annotations

import hashlib
import re
from collections import OrderedDict

from graphql import GraphQLError
from strawberry.http import GraphQLRequestData
from strawberry.types.execution import ExecutionResult

NOT_FOUND = "PersistedQueryNotFound"
_HASH = re.compile(r"[0-9a-f]{64}")


def _refusal(message: str, code: str) -> ExecutionResult:
    return ExecutionResult(data=None, errors=[GraphQLError(message, extensions={"code": code})])


class PersistedQueries:
    """The documents registered by hash, least recently used dropped first."""

    def __init__(self, size: int) -> None:
        self.size = size
        self._documents: OrderedDict[str, str] = OrderedDict()

    def __len__(self) -> int:
        return len(self._documents)

    def resolve(self, data: GraphQLRequestData) -> ExecutionResult | None:
        """Fill `data.query` in from the cache, or register the document sent with its
        hash; a result to answer instead of running (a miss, a bad hash). Requests
        without `extensions.persistedQuery` pass untouched."""
        extensions = data.extensions or {}
        if "persistedQuery" not in extensions:
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
            found = self._documents.get(digest)
            if found is None:
                return _refusal(NOT_FOUND, "PERSISTED_QUERY_NOT_FOUND")
            self._documents.move_to_end(digest)
            data.query = found
            return None
        if hashlib.sha256(data.query.encode()).hexdigest() != digest:
            return _refusal(
                "`extensions.persistedQuery.sha256Hash` is not the SHA-256 of `query` "
                "(hex of the UTF-8 document as sent); nothing was registered.",
                "invalid_input",
            )
        self._documents[digest] = data.query
        self._documents.move_to_end(digest)
        while len(self._documents) > self.size:
            self._documents.popitem(last=False)
        return None
