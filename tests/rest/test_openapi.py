"""The OpenAPI document against the app: every route documented and every documented
operation served; the document is valid OpenAPI 3.1; the docs page and its assets load
from this server alone (no CDN)."""

from __future__ import annotations

import re
from typing import Any

from starlette.routing import Mount, Route

import rest_compat
from flowsync.app import create_app
from flowsync.services.container import Services
from rest_compat.openapi import ASSETS, document
from tests.rest.server import Server

HTTP_METHODS = {"get", "put", "post", "delete", "patch", "options", "head", "trace"}


def documented() -> set[tuple[str, str]]:
    return {
        (path, method.upper())
        for path, item in document()["paths"].items()
        for method in item
        if method in HTTP_METHODS
    }


def served(routes: list[Any]) -> set[tuple[str, str]]:
    out: set[tuple[str, str]] = set()
    for route in routes:
        if isinstance(route, Route) and route.methods is not None:
            # OpenAPI has no convertors: `{subject:path}` is documented as `{subject}`.
            path = re.sub(r":\w+}", "}", route.path)
            out |= {(path, m) for m in route.methods if m != "HEAD"}
    return out


async def test_every_rest_route_is_documented_and_every_operation_served(
    services: Services,
) -> None:
    app = create_app(services, live_events=False)
    app_routes = served(app.routes)
    rest_routes = served(rest_compat.routes())
    # Every REST route is in the app, and documented; nothing documented is missing.
    assert rest_routes <= app_routes
    assert rest_routes == documented()
    # The app's other routes are the GraphQL face's, documented by its own schema, and the
    # dashboard's (`/` and `/ui` redirect to it; it is served under the /ui mount).
    assert {path for path, _ in app_routes - rest_routes} <= {"/graphql", "/", "/ui"}
    mounts = [r for r in app.routes if isinstance(r, Mount)]
    assert sorted(m.path for m in mounts) == sorted([ASSETS, "/ui"])


def test_the_document_is_valid_openapi_3_1_and_every_reference_resolves() -> None:
    import schemathesis
    from openapi_spec_validator import validate

    doc = document()
    assert doc["openapi"] == "3.1.0"
    validate(doc)  # the OpenAPI 3.1 meta-schema, references included
    for name, schema in doc["components"]["schemas"].items():
        assert schema.get("additionalProperties") is False, name  # replies are exact
    schema = schemathesis.openapi.from_dict(doc)
    operations = [op.ok() for op in schema.get_all_operations()]
    assert len(operations) == len(documented())
    ids = {op.definition.raw.get("operationId") for op in operations}
    assert {"listWorkflows", "startExecution", "receiveWebhook", "getPrometheusMetrics"} <= ids


async def test_the_document_is_served_without_credentials(server: Server) -> None:
    reply = await server.client().get("/api/openapi.json")
    assert reply.status_code == 200
    assert reply.json() == document()


async def test_the_docs_page_loads_its_assets_from_this_server(server: Server) -> None:
    browser = server.client()
    page = await browser.get("/api/docs")
    assert page.status_code == 200 and page.headers["content-type"].startswith("text/html")
    html = page.text
    assert "https://" not in html and "http://" not in html  # nothing from a CDN
    assets = re.findall(r'(?:src|href)="([^"]+)"', html)
    assert {a.rsplit("/", 1)[1] for a in assets} == {
        "favicon-32x32.png", "swagger-ui.css", "swagger-ui-bundle.js", "flowsync-init.js",
    }  # fmt: skip
    kinds = {"css": "text/css", "js": "javascript", "png": "image/png"}
    for asset in assets:
        reply = await browser.get(asset)
        assert reply.status_code == 200, asset
        assert kinds[asset.rsplit(".", 1)[1]] in reply.headers["content-type"]
        assert len(reply.content) > 300
    assert 'data-openapi="/api/openapi.json"' in html
    bundle = (await browser.get(f"{ASSETS}/swagger-ui-bundle.js")).text
    assert "SwaggerUIBundle" in bundle
    assert (await browser.get(f"{ASSETS}/nothing.js")).status_code == 404
