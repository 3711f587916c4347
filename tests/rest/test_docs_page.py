"""The Swagger UI page at /api/docs keeps no key where another script could read it: it
does not persist the authorization in localStorage, runs no inline script, and its CSP
allows scripts from this origin only."""

from __future__ import annotations

import re

from rest_compat.openapi import ASSETS, INIT_SCRIPT
from tests.rest.server import Server


def directives(policy: str) -> dict[str, list[str]]:
    out: dict[str, list[str]] = {}
    for part in policy.split(";"):
        name, *values = part.split()
        out[name] = values
    return out


async def test_the_docs_page_runs_no_inline_script_under_a_strict_csp(server: Server) -> None:
    page = await server.client().get("/api/docs")
    assert page.status_code == 200
    assert page.headers["x-content-type-options"] == "nosniff"
    csp = directives(page.headers["content-security-policy"])
    assert csp["default-src"] == ["'none'"]
    assert csp["script-src"] == ["'self'"]  # no 'unsafe-inline', no 'unsafe-eval'
    assert csp["frame-ancestors"] == ["'none'"] and csp["base-uri"] == ["'none'"]
    scripts = re.findall(r"<script([^>]*)>(.*?)</script>", page.text, re.S)
    assert len(scripts) == 2
    for attributes, body in scripts:
        assert "src=" in attributes and not body.strip()  # every script is a file
    assert "onload=" not in page.text and "javascript:" not in page.text


async def test_swagger_ui_does_not_persist_the_authorization(server: Server) -> None:
    script = await server.client().get(f"{ASSETS}/{INIT_SCRIPT}")
    assert script.status_code == 200
    assert script.headers["content-type"].startswith("text/javascript")
    assert script.headers["x-content-type-options"] == "nosniff"
    code = script.text
    assert "SwaggerUIBundle(" in code
    assert re.search(r"persistAuthorization:\s*false", code)
    assert "setItem" not in code and "sessionStorage" not in code
    # A key that an earlier version of the page persisted is removed.
    assert 'localStorage.removeItem("authorized")' in code
