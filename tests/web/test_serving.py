"""The dashboard as the app serves it (create_app over httpx's ASGI transport): redirects,
the client-side routes, cache headers, the security headers, gzip and real 404s."""

from __future__ import annotations

import gzip
import re
from collections.abc import AsyncIterator
from pathlib import Path

import httpx
import pytest
from starlette.applications import Starlette

from flowsync.app import create_app
from flowsync.services.container import Services
from flowsync.web import DIST, SECURITY_HEADERS, mount

IMMUTABLE = "public, max-age=31536000, immutable"


@pytest.fixture
async def client(services: Services) -> AsyncIterator[httpx.AsyncClient]:
    app = create_app(services, live_events=False)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as made:
        yield made


def built_assets() -> list[Path]:
    assets = sorted((DIST / "assets").glob("*"))
    assert (DIST / "index.html").is_file() and assets, (
        f"{DIST} holds no built dashboard: run ./run build-web"
    )
    return assets


def assert_secured(reply: httpx.Response) -> None:
    for name, value in SECURITY_HEADERS.items():
        assert reply.headers.get(name) == value, (reply.request.url, name, reply.headers)


async def test_root_and_ui_redirect_to_ui_slash(client: httpx.AsyncClient) -> None:
    for path, target in (("/", "/ui/"), ("/ui", "/ui/"), ("/ui?theme=dark", "/ui/?theme=dark")):
        reply = await client.get(path)
        assert reply.status_code == 307, path
        assert reply.headers["location"] == target
        assert_secured(reply)


@pytest.mark.parametrize(
    "path",
    [
        "/ui/",
        "/ui/runs",
        "/ui/runs/3f2b8c1e-0d4a-4e6b-9a7c-5d1e2f3a4b5c",
        "/ui/workflows/new",
        "/ui/index.html",
    ],
)
async def test_pages_and_client_routes_serve_index_html(
    client: httpx.AsyncClient, path: str
) -> None:
    built_assets()
    reply = await client.get(path)
    assert reply.status_code == 200
    assert reply.content == (DIST / "index.html").read_bytes()
    assert reply.headers["content-type"] == "text/html; charset=utf-8"
    assert reply.headers["cache-control"] == "no-cache"
    assert_secured(reply)


async def test_index_html_loads_only_assets_that_are_served_for_good(
    client: httpx.AsyncClient,
) -> None:
    built_assets()
    index = (DIST / "index.html").read_text()
    referenced = re.findall(r'(?:src|href)="(/ui/assets/[^"]+)"', index)
    assert referenced, f"index.html names no /ui/assets/ file (vite's base must be /ui/): {index}"
    for path in referenced:
        reply = await client.get(path)
        assert reply.status_code == 200, path
        assert reply.headers["cache-control"] == IMMUTABLE
        assert_secured(reply)


async def test_every_asset_is_immutable_with_its_media_type(client: httpx.AsyncClient) -> None:
    types = {".js": "text/javascript; charset=utf-8", ".css": "text/css; charset=utf-8"}
    for asset in built_assets():
        reply = await client.get(f"/ui/assets/{asset.name}", headers={"accept-encoding": "gzip"})
        assert reply.status_code == 200, asset.name
        assert reply.content == asset.read_bytes()
        assert reply.headers["cache-control"] == IMMUTABLE
        if asset.suffix in types:
            assert reply.headers["content-type"] == types[asset.suffix]
        assert_secured(reply)


async def test_a_missing_file_is_a_real_404(client: httpx.AsyncClient) -> None:
    built_assets()
    for path in ("/ui/assets/index-00000000.js", "/ui/assets/nothing", "/ui/favicon-none.ico"):
        reply = await client.get(path)
        assert reply.status_code == 404, path
        assert "text/html" not in reply.headers["content-type"]
        assert_secured(reply)


async def test_other_methods_are_refused_with_the_headers(client: httpx.AsyncClient) -> None:
    built_assets()
    reply = await client.post("/ui/runs", content=b"{}")
    assert reply.status_code == 405
    assert reply.headers["allow"] == "GET, HEAD"
    assert_secured(reply)


async def test_assets_are_gzipped_for_clients_that_accept_it(client: httpx.AsyncClient) -> None:
    largest = max(built_assets(), key=lambda p: p.stat().st_size)
    raw = largest.read_bytes()
    path = f"/ui/assets/{largest.name}"
    async with client.stream("GET", path, headers={"accept-encoding": "gzip"}) as reply:
        body = b"".join([chunk async for chunk in reply.aiter_raw()])
    assert reply.headers["content-encoding"] == "gzip"
    assert "accept-encoding" in reply.headers["vary"].lower()
    assert gzip.decompress(body) == raw and len(body) < len(raw)
    plain = await client.get(path, headers={"accept-encoding": "identity"})
    assert "content-encoding" not in plain.headers
    assert plain.content == raw


async def test_a_revalidated_asset_keeps_its_headers(client: httpx.AsyncClient) -> None:
    asset = built_assets()[0]
    first = await client.get(f"/ui/assets/{asset.name}")
    again = await client.get(
        f"/ui/assets/{asset.name}", headers={"if-none-match": first.headers["etag"]}
    )
    assert again.status_code == 304
    assert again.headers["cache-control"] == IMMUTABLE
    assert_secured(again)


async def test_the_api_is_not_shadowed(client: httpx.AsyncClient) -> None:
    assert (await client.get("/api/nothing")).headers["content-type"] == "application/json"
    assert "content-security-policy" not in (await client.get("/api/nothing")).headers


async def test_an_unbuilt_checkout_says_how_to_build(tmp_path: Path) -> None:
    app = Starlette()
    mount(app, tmp_path / "dist")
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as client:
        for path in ("/ui/", "/ui/runs/1", "/ui/assets/index.js"):
            reply = await client.get(path)
            assert reply.status_code == 503
            assert "./run build-web" in reply.text
            assert reply.headers["cache-control"] == "no-store"
            assert_secured(reply)
