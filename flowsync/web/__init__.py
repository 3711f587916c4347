"""The dashboard: the built files of `web/` (in `dist/`, committed and shipped as package
data) served at `/ui/`.

- `/` and `/ui` redirect to `/ui/`.
- A file that exists is served (gzip when the client accepts it). Hashed files under
  `assets/` may be cached for good; everything else, `index.html` first, is revalidated.
- Any other path under `/ui/` whose last segment has no dot is one of the app's own
  routes (`/ui/runs/<id>`): it gets `index.html`. A missing file (`/ui/assets/x.js`,
  `/ui/favicon.ico`) is a real 404, so that a stale page never runs HTML as a script.
- Every answer under `/ui` carries the Content-Security-Policy and two hardening headers.
  With provider sign-in on (`flowsync.web.oidc`), the policy's connect-src also names the
  provider's token endpoint, where the page exchanges its code for tokens.
- `/ui/oidc.json` tells the sign-in page which provider to offer (see `flowsync.web.oidc`);
  it needs no credential and holds nothing secret.
- Without `dist/index.html` (a checkout where the UI was never built) `/ui/` answers 503
  and says how to build it.
"""

from __future__ import annotations

import os
from pathlib import Path

from starlette.applications import Starlette
from starlette.datastructures import URL, MutableHeaders
from starlette.exceptions import HTTPException
from starlette.middleware.gzip import GZipMiddleware
from starlette.requests import Request
from starlette.responses import JSONResponse, PlainTextResponse, RedirectResponse, Response
from starlette.routing import Mount, Route, Router
from starlette.staticfiles import StaticFiles
from starlette.types import ASGIApp, Message, Receive, Scope, Send

from flowsync.errors import ProviderUnavailable
from flowsync.web.oidc import OidcSignIn

__all__ = ["DIST", "SECURITY_HEADERS", "content_security_policy", "mount", "ui_app"]

DIST = Path(__file__).resolve().parent / "dist"


def content_security_policy(connect: list[str] | None = None) -> str:
    """The dashboard's policy; `connect` adds origins the page may fetch from (the OIDC
    provider's token endpoint)."""
    # xyflow positions nodes with inline styles, hence 'unsafe-inline' for styles only.
    sources = " ".join(["'self'", *(connect or [])])
    return (
        f"default-src 'self'; connect-src {sources}; style-src 'self' 'unsafe-inline'; "
        "img-src 'self' data:; frame-ancestors 'none'"
    )


CONTENT_SECURITY_POLICY = content_security_policy()
SECURITY_HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Content-Type-Options": "nosniff",
    "Referrer-Policy": "no-referrer",
}
IMMUTABLE = "public, max-age=31536000, immutable"
REVALIDATE = "no-cache"
NOT_BUILT = (
    "The dashboard is not built in this checkout (flowsync/web/dist/index.html is missing).\n"
    "Run ./run build-web (needs Node.js 20.19 or newer), then reload this page.\n"
)

# With X-Content-Type-Options: nosniff a script or style sent with the wrong type is not
# run; the platform's mimetypes table differs between machines, so these are fixed here.
MEDIA_TYPES = {
    ".js": "text/javascript; charset=utf-8",
    ".mjs": "text/javascript; charset=utf-8",
    ".css": "text/css; charset=utf-8",
    ".html": "text/html; charset=utf-8",
    ".json": "application/json",
    ".map": "application/json",
    ".svg": "image/svg+xml",
    ".woff2": "font/woff2",
    ".wasm": "application/wasm",
}


class _SecurityHeaders:
    """Adds SECURITY_HEADERS to every HTTP response of the wrapped app; with provider
    sign-in, a policy whose connect-src names the provider's token endpoint."""

    def __init__(self, app: ASGIApp, oidc: OidcSignIn | None = None) -> None:
        self.app = app
        self.oidc = oidc

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        secured = SECURITY_HEADERS
        if self.oidc is not None and scope["type"] == "http":
            connect = await self.oidc.connect_sources()
            secured = {
                **SECURITY_HEADERS,
                "Content-Security-Policy": content_security_policy(connect),
            }

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                headers = MutableHeaders(scope=message)
                for name, value in secured.items():
                    headers[name] = value
            await send(message)

        await self.app(scope, receive, sending)


def _is_route(path: str) -> bool:
    """Whether a path (relative to /ui) names a page of the app rather than a file."""
    parts = [p for p in path.split(os.sep) if p not in ("", ".")]
    if parts and parts[0] == "assets":
        return False
    return not parts or "." not in parts[-1]


class _Files(StaticFiles):
    """StaticFiles with the SPA fallback, the cache headers and fixed media types."""

    def __init__(self, directory: Path) -> None:
        super().__init__(directory=directory, check_dir=False)
        self.dist = directory

    async def check_config(self) -> None:
        # A missing dist/ is the unbuilt checkout that get_response answers with 503.
        return

    async def get_response(self, path: str, scope: Scope) -> Response:
        if not (self.dist / "index.html").is_file():
            return PlainTextResponse(
                NOT_BUILT, status_code=503, headers={"Cache-Control": "no-store"}
            )
        index = False
        try:
            if _is_route(path) and not (self.dist / path).is_file():
                index = True
                response = await super().get_response("index.html", scope)
            else:
                index = path == "index.html"
                response = await super().get_response(path, scope)
        except HTTPException as exc:
            # Answered here rather than by the app's handler, so that the headers of this
            # mount (security, gzip) apply to errors too.
            return PlainTextResponse(exc.detail, status_code=exc.status_code, headers=exc.headers)
        if response.status_code in (200, 304):
            hashed = not index and path.split(os.sep, 1)[0] == "assets"
            response.headers["Cache-Control"] = IMMUTABLE if hashed else REVALIDATE
        return response

    def file_response(
        self,
        full_path: str | os.PathLike[str],
        stat_result: os.stat_result,
        scope: Scope,
        status_code: int = 200,
    ) -> Response:
        response = super().file_response(full_path, stat_result, scope, status_code)
        media_type = MEDIA_TYPES.get(Path(full_path).suffix)
        if media_type is not None and response.status_code == 200:
            response.headers["Content-Type"] = media_type
        return response


def _redirect_to_ui(request: Request) -> Response:
    url = URL("/ui/")
    if request.url.query:
        url = url.replace(query=request.url.query)
    return RedirectResponse(url, status_code=307, headers=SECURITY_HEADERS)


def _sign_in_config(oidc: OidcSignIn | None) -> Route:
    """`GET /ui/oidc.json`: the provider the sign-in page offers (see flowsync.web.oidc)."""

    async def config(request: Request) -> Response:
        headers = {"Cache-Control": "no-store"}
        if oidc is None:
            return JSONResponse({"oidc": None}, headers=headers)
        try:
            provider = await oidc.provider()
        except ProviderUnavailable as exc:
            error = {
                "code": exc.code,
                "message": f"Sign-in with {oidc.name} is unavailable: {exc.message}",
            }
            return JSONResponse(
                {"oidc": None, "error": error}, status_code=exc.status, headers=headers
            )
        return JSONResponse({"oidc": provider.public()}, headers=headers)

    return Route("/oidc.json", config, methods=["GET"])


def ui_app(dist: Path = DIST, oidc: OidcSignIn | None = None) -> ASGIApp:
    """The ASGI app serving `dist` and the sign-in page's `oidc.json` (mounted at /ui)."""
    app = Router(routes=[_sign_in_config(oidc), Mount("", app=_Files(dist))])
    # Compressed per response: the bundle is a few hundred KB and level 6 takes a few ms.
    return _SecurityHeaders(GZipMiddleware(app, minimum_size=500, compresslevel=6), oidc)


def mount(app: Starlette, dist: Path = DIST, oidc: OidcSignIn | None = None) -> None:
    """Serve the dashboard at /ui/ (and redirect / and /ui to it). Call it from the app
    factory, after the routes it must not shadow; it adds routes for `/`, `/ui` and
    `/ui/...` only. `oidc`: the provider sign-in, when FLOWSYNC_OIDC_CLIENT_ID is set."""
    app.router.routes.extend(
        [
            Route("/", _redirect_to_ui, methods=["GET"]),
            Route("/ui", _redirect_to_ui, methods=["GET"]),
            Mount("/ui", app=ui_app(dist, oidc), name="ui"),
        ]
    )
