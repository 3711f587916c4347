"""Which headers a workflow's `webhook_response` may put on its HTTP reply.

A synchronous webhook answers on FlowSync's own origin (unless ingress is given an origin
of its own, FLOWSYNC_WEBHOOK_BASE_URL), where the API's pages keep bearer keys in the
browser. So a reply may carry only headers that describe its content, never ones that
set cookies, relax CORS or the security policy, steer a proxy or the connection:

- `Content-Type`, with a passive media type only (`SAFE_MEDIA_TYPES`, and `*/*+json`):
  HTML, XML, SVG, JavaScript and every type not on the list are active or unknown;
- `Location`, an absolute http(s) URL;
- `Cache-Control`, `Content-Disposition`, `Content-Language`, `ETag`, `Expires`,
  `Last-Modified`, `Pragma`, `Retry-After`, `Vary`;
- any `X-*` name except the security-relevant ones (`X-Frame-Options`, `X-Forwarded-*`,
  `X-Accel-*`, `X-FlowSync-*`, ...: `_FORBIDDEN_X`).

A value is one line of Latin-1 text: no CR, LF, NUL or other control character.

The same rules hold twice: `header_problem` refuses a header when the workflow is saved
(a template's value is checked for what is known then), and `safe_reply_headers` drops
what a template produced at run time that breaks them, so a reply never fails (or cuts
the connection) on a header. Every reply also carries `GUARD_HEADERS`, which a workflow
cannot set. Pure: no I/O.
"""

from __future__ import annotations

import re
from collections.abc import Mapping
from urllib.parse import urlsplit

__all__ = [
    "ALLOWED_HEADERS",
    "GUARD_HEADERS",
    "SAFE_MEDIA_TYPES",
    "header_problem",
    "is_header_name",
    "name_problem",
    "safe_reply_headers",
    "value_problem",
]

GUARD_HEADERS: tuple[tuple[str, str], ...] = (
    ("X-Content-Type-Options", "nosniff"),
    ("Content-Security-Policy", "sandbox; default-src 'none'"),
)
"""On every webhook reply (the workflow's, 202 and errors): no sniffing a passive type
into an active one, and a document that runs no script, on an opaque origin, should a
browser render it anyway."""

ALLOWED_HEADERS = (
    "Content-Type",
    "Location",
    "Cache-Control",
    "Content-Disposition",
    "Content-Language",
    "ETag",
    "Expires",
    "Last-Modified",
    "Pragma",
    "Retry-After",
    "Vary",
)
"""The names a reply may set besides `X-*` ones (compared without case)."""
_ALLOWED = frozenset(name.lower() for name in ALLOWED_HEADERS)

SAFE_MEDIA_TYPES = (
    "application/json",
    "application/x-ndjson",
    "application/x-www-form-urlencoded",
    "application/octet-stream",
    "text/plain",
    "text/csv",
    "text/markdown",
)
"""The media types a reply may declare, besides `application/<anything>+json`."""
_SAFE_MEDIA = frozenset(SAFE_MEDIA_TYPES)

_FORBIDDEN_X = frozenset(
    {
        "x-content-type-options",
        "x-frame-options",
        "x-xss-protection",
        "x-content-security-policy",
        "x-webkit-csp",
        "x-permitted-cross-domain-policies",
        "x-download-options",
        "x-dns-prefetch-control",
        "x-ua-compatible",
        "x-real-ip",
        "x-lighttpd-send-file",
    }
)
_FORBIDDEN_X_PREFIXES = ("x-forwarded-", "x-flowsync-", "x-accel-", "x-sendfile")
_HOP_BY_HOP = frozenset(
    {
        "connection",
        "keep-alive",
        "transfer-encoding",
        "te",
        "trailer",
        "upgrade",
        "content-length",
        "content-encoding",
        "proxy-connection",
        "proxy-authenticate",
        "alt-svc",
    }
)
_SECURITY = frozenset(
    {
        "content-security-policy",
        "content-security-policy-report-only",
        "strict-transport-security",
        "permissions-policy",
        "referrer-policy",
        "cross-origin-opener-policy",
        "cross-origin-embedder-policy",
        "cross-origin-resource-policy",
        "clear-site-data",
        "service-worker-allowed",
        "refresh",
        "link",
    }
)
_TOKEN = re.compile(r"[!#$%&'*+\-.^_`|~0-9A-Za-z]+")
_MEDIA_TYPE = re.compile(r"[A-Za-z0-9!#$&^_.+-]+/[A-Za-z0-9!#$&^_.+-]+")
# A field value (RFC 9110): visible characters, spaces, tabs and obs-text (0x80-0xFF).
_BAD_CHAR = re.compile(r"[\x00-\x08\x0a-\x1f\x7f]")

_ALLOWED_LIST = ", ".join(ALLOWED_HEADERS) + " and X-* names"
_SAFE_LIST = ", ".join(SAFE_MEDIA_TYPES) + " or application/*+json"


def is_header_name(name: str) -> bool:
    """Whether `name` is an HTTP field name (a token: no spaces, colons or controls)."""
    return _TOKEN.fullmatch(name) is not None


def name_problem(name: str) -> str | None:
    """Why a reply may not set header `name`, or None when it may."""
    lowered = name.lower()
    if lowered in _ALLOWED:
        return None
    if lowered.startswith("x-"):
        if lowered in _FORBIDDEN_X or lowered.startswith(_FORBIDDEN_X_PREFIXES):
            return (
                f"{name} may not be set by a webhook reply: it is a security, proxy or "
                "FlowSync header"
            )
        return None
    if lowered in ("set-cookie", "set-cookie2"):
        why = "it would set a cookie on FlowSync's origin"
    elif lowered.startswith("access-control-") or lowered == "timing-allow-origin":
        why = "CORS is FlowSync's to decide"
    elif lowered in _SECURITY:
        why = "it is a security policy header"
    elif lowered in _HOP_BY_HOP or lowered.startswith("proxy-"):
        why = "it describes the connection or the transfer, which the server sets"
    else:
        why = "it is not on the list a reply may set"
    return f"{name} may not be set by a webhook reply: {why} (allowed: {_ALLOWED_LIST})"


def value_problem(name: str, value: str, *, known: bool = True) -> str | None:
    """Why `value` may not be sent as header `name`, or None when it may. With `known`
    False (a template's text, whose placeholders are filled in at run time) only the
    characters are checked."""
    if _BAD_CHAR.search(value):
        return (
            "a header value is one line: no CR, LF, NUL or other control characters "
            "(a template's text and placeholders included)"
        )
    if not known:
        return None
    if any(ord(c) > 0xFF for c in value):
        return "a header value is Latin-1 text; percent-encode other characters"
    lowered = name.lower()
    if lowered == "content-type":
        media = value.split(";", 1)[0].strip().lower()
        if not _MEDIA_TYPE.fullmatch(media):
            return f"{value!r} is not a media type such as application/json"
        if not _passive(media):
            return (
                f"{media} may not be served by a webhook reply: it is active content (a "
                f"page or a script) or a type FlowSync does not know (allowed: {_SAFE_LIST})"
            )
    elif lowered == "location":
        parts = urlsplit(value.strip())
        if parts.scheme.lower() not in ("http", "https") or not parts.netloc:
            return "a Location is an absolute http:// or https:// URL"
    return None


def header_problem(name: str, value: str, *, known: bool = True) -> str | None:
    """Why a reply may not carry `name: value`, or None (see `value_problem`)."""
    return name_problem(name) or value_problem(name, value, known=known)


def safe_reply_headers(headers: Mapping[str, str]) -> dict[str, str]:
    """The headers of a rendered reply that may be sent, values trimmed; every other one
    is dropped (a dropped Content-Type leaves the body to be sent as if none was given),
    and of two names that differ only in case the first is kept."""
    out: dict[str, str] = {}
    seen: set[str] = set()
    for name, raw in headers.items():
        value = raw.strip(" \t")
        if not is_header_name(name) or name.lower() in seen or header_problem(name, value):
            continue
        seen.add(name.lower())
        out[name] = value
    return out


def _passive(media: str) -> bool:
    return media in _SAFE_MEDIA or (media.startswith("application/") and media.endswith("+json"))
