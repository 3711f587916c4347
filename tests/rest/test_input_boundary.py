"""What enters through REST is decided at the boundary with a 400 naming the parameter or
field, never a 500: extreme cursors and times, digits that are not ASCII, NUL characters
and numbers beyond 64 bits."""

from __future__ import annotations

import base64
import json
import uuid

from tests.rest.server import Owner, Server


def cursor(*items: object) -> str:
    return base64.urlsafe_b64encode(json.dumps(list(items)).encode()).decode().rstrip("=")


def nested_cursor(depth: int) -> str:
    return base64.urlsafe_b64encode(b"[" * depth + b"]" * depth).decode().rstrip("=")


EXTREME_CURSORS = {
    "nested": nested_cursor(5000),
    "nested, short": nested_cursor(300),
    "year 1 east of UTC": cursor("0001-01-01T00:30:00+05:00", str(uuid.uuid4())),
    "year 9999 west of UTC": cursor("9999-12-31T23:30:00-05:00", str(uuid.uuid4())),
    "no offset": cursor("2024-01-01T00:00:00", str(uuid.uuid4())),
    "a number for a time": cursor(1, str(uuid.uuid4())),
    "audit id past bigint": cursor("a", 2**70),
    "audit id nested": cursor("a", [[[[1]]]]),
}
LISTS = [
    "/api/workflows",
    "/api/executions",
    "/api/triggers",
    "/api/api-keys",
    "/api/dead-letters",
    "/api/observability/audit",
]


async def test_extreme_cursors_are_400_naming_the_cursor(server: Server, me: Owner) -> None:
    for path in LISTS:
        for case, value in EXTREME_CURSORS.items():
            reply = await me.http.get(path, params={"cursor": value})
            assert reply.status_code == 400, (path, case, reply.text)
            assert reply.json()["error"]["details"][0]["path"] == "cursor", (path, case)


async def test_extreme_audit_times_and_unicode_digits_are_400(server: Server, me: Owner) -> None:
    audit = "/api/observability/audit"
    for name in ("since", "until"):
        for value in ("0001-01-01T00:00:00+05:00", "9999-12-31T23:59:59-05:00"):
            reply = await me.http.get(audit, params={name: value})
            assert reply.status_code == 400, (name, value, reply.text)
            assert reply.json()["error"]["details"][0]["path"] == name
    for path in LISTS:
        for value in ("²", "١٢", "1e3", "9" * 30):
            reply = await me.http.get(path, params={"limit": value})
            assert reply.status_code == 400, (path, value, reply.text)
            assert reply.json()["error"]["details"][0]["path"] == "limit"
