"""GraphiQL at `GET /graphql` (with `FLOWSYNC_GRAPHIQL`, on in `flowsync dev`), served by
FlowSync itself: the page and every file it loads come from this process (no CDN, so it
works offline), under a Content-Security-Policy that allows no inline script and no other
origin. The page starts with the Authorization header ready to fill in, and GraphiQL keeps
nothing in localStorage and never the headers (see static/flowsync-graphiql.js). The
vendored files and where they come from: VENDORED.md."""

from __future__ import annotations

import base64
import functools
import hashlib
import os
import re
from os import PathLike
from pathlib import Path

from starlette.requests import Request
from starlette.responses import HTMLResponse, PlainTextResponse, Response
from starlette.routing import Mount, Route
from starlette.staticfiles import StaticFiles
from starlette.types import Scope

__all__ = ["ASSETS", "CONTENT_SECURITY_POLICY", "STATIC", "assets", "page"]

STATIC = Path(__file__).resolve().parent / "static"
ASSETS = "/graphql/graphiql"

# Styles inline for React's style attributes; data: images for GraphiQL's icons.
CONTENT_SECURITY_POLICY = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)
_PAGE_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
    "Cache-Control": "no-store",
}

_PAGE = """<!doctype html>
<html lang="en">
<head>
<meta charset="utf-8">
<title>FlowSync GraphiQL</title>
<link rel="icon" href="data:,">
<link rel="stylesheet" href="{assets}/graphiql.min.css">
<link rel="stylesheet" href="{assets}/flowsync-graphiql.css">
</head>
<body>
<div id="graphiql">Loading GraphiQL…</div>
<script src="{assets}/react.production.min.js"></script>
<script src="{assets}/react-dom.production.min.js"></script>
<script src="{assets}/graphiql.min.js"></script>
<script src="{assets}/flowsync-graphiql.js"></script>
</body>
</html>
"""


def page(root_path: str) -> Response:
    """GraphiQL's page, its files under `root_path` (the app's mount point)."""
    assets = root_path.rstrip("/") + ASSETS
    return HTMLResponse(_PAGE.format(assets=assets), headers=_PAGE_HEADERS)


class _Files(StaticFiles):
    """The vendored files, revalidated on each load (their names carry no version, and
    an upgrade of FlowSync must not leave a browser on the old ones)."""

    def file_response(
        self,
        full_path: PathLike[str] | str,
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        response.headers.update(_FILE_HEADERS)
        return response


_FILE_HEADERS = {"Cache-Control": "no-cache", "X-Content-Type-Options": "nosniff"}
_DATA_FONT = re.compile(rb"url\(data:font/(woff2?);base64,([A-Za-z0-9+/=]+)\)")


@functools.cache
def _stylesheet() -> tuple[bytes, dict[str, bytes]]:
    """GraphiQL's stylesheet with its fonts as files: it embeds them as data: URLs, which
    the page's CSP refuses (fonts fall back to `default-src 'self'`). The vendored file
    stays as published; the fonts are cut out of it here, once."""
    fonts: dict[str, bytes] = {}

    def as_file(match: re.Match[bytes]) -> bytes:
        data = base64.b64decode(match[2])
        name = f"{hashlib.sha256(data).hexdigest()[:16]}.{match[1].decode()}"
        fonts[name] = data
        return f"url(fonts/{name})".encode()

    css = _DATA_FONT.sub(as_file, (STATIC / "graphiql.min.css").read_bytes())
    return css, fonts


async def _css(request: Request) -> Response:
    return Response(_stylesheet()[0], media_type="text/css", headers=_FILE_HEADERS)


async def _font(request: Request) -> Response:
    name = request.path_params["name"]
    data = _stylesheet()[1].get(name)
    if data is None:
        return PlainTextResponse("Not Found", status_code=404)
    media = "font/woff2" if name.endswith(".woff2") else "font/woff"
    return Response(data, media_type=media, headers=_FILE_HEADERS)


def assets() -> Mount:
    """The route that serves the page's scripts, styles and fonts."""
    return Mount(
        ASSETS,
        routes=[
            Route("/graphiql.min.css", _css),
            Route("/fonts/{name}", _font),
            Mount("/", app=_Files(directory=STATIC)),
        ],
        name="graphiql-assets",
    )
