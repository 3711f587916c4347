"""GraphiQL's page as a browser gets it from a running server: every file it loads comes
from FlowSync (no CDN), under a Content-Security-Policy that allows no inline script and
no other origin; GraphiQL is told to keep nothing in localStorage and no headers at all,
and starts with the Authorization header ready. The vendored files are the published ones
and are shipped as package data. In Debian's Chromium, under the page's own CSP: a query
and a subscription run, and no key is left in the browser's storage."""

from __future__ import annotations

import asyncio
import fnmatch
import hashlib
import json
import re
import tomllib
from html.parser import HTMLParser
from pathlib import Path
from urllib.parse import urljoin, urlsplit

import httpx
import pytest

from flowsync.schema import graphiql
from tests.conftest import REQUIRE_BROWSER
from tests.graphql.conftest import Api, serve

ROOT = Path(__file__).resolve().parents[2]
CSP = (
    "default-src 'self'; style-src 'self' 'unsafe-inline'; img-src 'self' data:; "
    "connect-src 'self'; frame-ancestors 'none'"
)
HTML = {"Accept": "text/html"}


class Page(HTMLParser):
    """The URLs a page loads, and whatever it would run inline."""

    def __init__(self) -> None:
        super().__init__()
        self.scripts: list[str] = []
        self.styles: list[str] = []
        self.other_urls: list[str] = []
        self.inline: list[str] = []
        self._in_script = False

    def handle_starttag(self, tag: str, attrs: list[tuple[str, str | None]]) -> None:
        values = {k: v or "" for k, v in attrs}
        self.inline += [f"{tag} {k}" for k in values if k.startswith("on")]
        if tag == "script":
            self._in_script = True
            if "src" in values:
                self.scripts.append(values["src"])
            else:
                self.inline.append("script without src")
        elif tag == "link" and values.get("rel") == "stylesheet":
            self.styles.append(values["href"])
        else:
            self.other_urls += [values[k] for k in ("href", "src", "action") if k in values]

    def handle_endtag(self, tag: str) -> None:
        if tag == "script":
            self._in_script = False

    def handle_data(self, data: str) -> None:
        if self._in_script and data.strip():
            self.inline.append(f"script body {data.strip()[:40]!r}")


def same_origin(url: str) -> bool:
    parts = urlsplit(url)
    return not parts.scheme and not parts.netloc


async def parsed_page(client: httpx.AsyncClient, api: Api) -> tuple[httpx.Response, Page]:
    reply = await client.get(api.http_url, headers=HTML)
    page = Page()
    page.feed(reply.text)
    return reply, page


async def test_the_page_is_served_under_its_csp_and_runs_no_inline_script(api: Api) -> None:
    async with httpx.AsyncClient() as client:
        reply, page = await parsed_page(client, api)
    assert reply.status_code == 200
    assert reply.headers["content-type"].startswith("text/html")
    assert reply.headers["content-security-policy"] == CSP
    assert reply.headers["x-content-type-options"] == "nosniff"
    assert not page.inline, page.inline
    assert page.scripts and page.styles
    # The page's own links: same origin, or the empty data: icon (img-src allows data:).
    for url in page.scripts + page.styles + page.other_urls:
        assert same_origin(url) or url == "data:,", url


async def test_every_file_the_page_loads_is_served_by_flowsync(api: Api) -> None:
    async with httpx.AsyncClient() as client:
        _, page = await parsed_page(client, api)
        for url in page.scripts:
            assert same_origin(url), url
            reply = await client.get(urljoin(api.http_url, url))
            assert reply.status_code == 200, url
            assert "javascript" in reply.headers["content-type"], url
            assert not re.search(r"^\s*import\s", reply.text, re.M), url  # no modules
        for url in page.styles:
            assert same_origin(url), url
            reply = await client.get(urljoin(api.http_url, url))
            assert reply.status_code == 200, url
            assert reply.headers["content-type"].startswith("text/css"), url
            # What a stylesheet loads must pass the CSP too: files of this origin, or
            # data: images (img-src); fonts fall back to default-src 'self'.
            for ref in re.findall(r"url\(\s*['\"]?([^'\")]+)", reply.text):
                if ref.startswith("data:"):
                    assert ref.startswith("data:image/"), (url, ref[:40])
                    continue
                assert same_origin(ref), (url, ref)
                loaded = await client.get(urljoin(urljoin(api.http_url, url), ref))
                assert loaded.status_code == 200, (url, ref)
                if ref.endswith((".woff", ".woff2")):
                    assert loaded.headers["content-type"].startswith("font/"), ref
                    assert loaded.content[:4] in (b"wOFF", b"wOF2"), ref


async def test_graphiql_keeps_no_headers_and_nothing_in_local_storage(api: Api) -> None:
    async with httpx.AsyncClient() as client:
        _, page = await parsed_page(client, api)
        ours = [u for u in page.scripts if u.endswith("/flowsync-graphiql.js")]
        assert ours and page.scripts[-1] == ours[0]  # configures GraphiQL, after it loads
        config = (await client.get(urljoin(api.http_url, ours[0]))).text
    code = re.sub(r"^\s*//.*$", "", config, flags=re.M)  # comments may name it
    assert "localStorage" not in code
    assert "window.sessionStorage" in code
    assert re.search(r"storage:\s*storage\b", code)  # GraphiQL's default is localStorage
    assert re.search(r"shouldPersistHeaders:\s*false\b", code)
    assert """'{"Authorization": "Bearer "}'""" in code
    assert re.search(r"headers:\s*AUTHORIZATION_TEMPLATE\b", code)
    assert 'if (name === "headers") node[name] = null;' in code  # stripped from history too


async def test_without_graphiql_there_is_no_page_and_no_files(db_url: str) -> None:
    async with serve(db_url, graphiql=False) as api, httpx.AsyncClient() as client:
        page = await client.get(api.http_url, headers=HTML)
        assert page.status_code == 404
        script = await client.get(urljoin(api.http_url, f"{graphiql.ASSETS}/graphiql.min.js"))
        assert script.status_code == 404


def vendored() -> dict[str, str]:
    """file name → sha256, from VENDORED.md's table."""
    text = (graphiql.STATIC.parent / "VENDORED.md").read_text()
    return dict(re.findall(r"^\| `([^`]+)` \|.*\| `([0-9a-f]{64})` \|$", text, re.M))


def test_the_vendored_files_are_the_published_ones_with_their_licenses() -> None:
    table = vendored()
    assert {"graphiql.min.js", "react.production.min.js", "react-dom.production.min.js",
            "graphiql.min.css", "LICENSE.graphiql", "LICENSE.react"} <= set(table)  # fmt: skip
    for name, digest in table.items():
        data = (graphiql.STATIC / name).read_bytes()
        assert hashlib.sha256(data).hexdigest() == digest, f"{name} is not the published file"
    own = {"flowsync-graphiql.js", "flowsync-graphiql.css"}
    assert {p.name for p in graphiql.STATIC.iterdir()} == set(table) | own


def test_the_files_are_package_data() -> None:
    config = tomllib.loads((ROOT / "pyproject.toml").read_text())
    patterns = config["tool"]["setuptools"]["package-data"]["flowsync"]
    package = ROOT / "flowsync"
    for path in graphiql.STATIC.iterdir():
        relative = path.relative_to(package).as_posix()
        assert any(fnmatch.fnmatch(relative, p) for p in patterns), f"{relative} is not shipped"


@pytest.mark.parametrize("root_path", ["", "/flowsync"])
def test_the_page_finds_its_files_under_the_app_mount_point(root_path: str) -> None:
    body = bytes(graphiql.page(root_path).body).decode()
    assert f'src="{root_path}{graphiql.ASSETS}/graphiql.min.js"' in body


# --- in a real browser ------------------------------------------------------------------

CHROMIUM = Path("/usr/bin/chromium")
CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (e) => {
  (window.__csp = window.__csp || []).push(`${e.violatedDirective} ${e.blockedURI}`);
});
"""
EDITOR = "document.querySelector({!r}).CodeMirror"
HEADERS = EDITOR.format(".graphiql-editor-tool .graphiql-editor:not(.hidden) .CodeMirror")
QUERY = EDITOR.format(".graphiql-query-editor .CodeMirror")
RESULT = EDITOR.format(".result-window .CodeMirror")


async def test_in_chromium_a_query_and_a_subscription_run_and_no_key_is_kept(api: Api) -> None:
    if not CHROMIUM.exists():  # noqa: ASYNC240 (once)
        missing = f"{CHROMIUM} is missing (apt-get install chromium)"
        if REQUIRE_BROWSER:
            pytest.fail(missing)
        pytest.skip(missing)
    from playwright.async_api import async_playwright

    owner = await api.owner()
    origin = api.http_url.removesuffix("/graphql")
    async with async_playwright() as playwright:
        browser = await playwright.chromium.launch(
            executable_path=str(CHROMIUM),
            args=["--no-sandbox", "--disable-gpu", "--disable-background-networking"],
        )
        try:
            context = await browser.new_context(viewport={"width": 1400, "height": 900})
            await context.add_init_script(CSP_WATCH)
            page = await context.new_page()
            page.set_default_timeout(10_000)
            problems: list[str] = []
            page.on("pageerror", lambda error: problems.append(f"uncaught: {error}"))
            requested: list[str] = []
            page.on("request", lambda request: requested.append(request.url))

            async def until(expression: str) -> None:
                # Polled from here: wait_for_function evaluates in the page, which its
                # CSP (no 'unsafe-eval') refuses.
                probe = (
                    f"(() => {{ try {{ return {expression}; }} catch (e) {{ return false; }} }})()"
                )
                for _ in range(100):
                    if await page.evaluate(probe):
                        return
                    await asyncio.sleep(0.1)
                raise TimeoutError(expression)

            async def result_has(text: str) -> None:
                try:
                    await until(f"{RESULT}.getValue().includes({text!r})")
                except TimeoutError:
                    shown = await page.evaluate(f"{RESULT}.getValue()")
                    raise AssertionError(f"{text!r} not in the result: {shown}") from None

            await page.goto(api.http_url)
            await until(f"{HEADERS}.getValue().includes('Bearer')")
            assert await page.evaluate(f"{HEADERS}.getValue()") == '{"Authorization": "Bearer "}'
            await result_has("Put your API key")  # nothing was sent without a token
            filled = json.dumps({"Authorization": f"Bearer {owner.key}"})
            await page.evaluate(f"{HEADERS}.setValue({filled!r})")
            # Once the header is left alone a moment, the schema is fetched with the key.
            await page.click('button[aria-label="Show Documentation Explorer"]')
            await until(
                "document.querySelector('.graphiql-doc-explorer').innerText"
                ".includes('subscription: Subscription')"
            )
            await page.click(".graphiql-execute-button")
            await result_has('"status": "ok"')
            subscription = "subscription { queueStatsUpdated { __typename } }"
            await page.evaluate(f"{QUERY}.setValue({subscription!r})")
            await page.wait_for_timeout(1000)  # GraphiQL parses the edited document
            await page.click(".graphiql-execute-button")
            await result_has('"__typename": "QueueStats"')  # over the websocket

            stored = await page.evaluate(
                "[localStorage.length, JSON.stringify(Object.assign({}, sessionStorage))]"
            )
            assert stored[0] == 0, "GraphiQL wrote to localStorage"
            assert owner.key not in stored[1] and "queueStatsUpdated" in stored[1]
            await page.reload()
            await until(f"{HEADERS}.getValue().includes('Bearer')")
            assert await page.evaluate(f"{HEADERS}.getValue()") == '{"Authorization": "Bearer "}'

            assert await page.evaluate("window.__csp || []") == []
            assert not problems
            assert all(u.startswith((origin, "data:")) for u in requested), requested
        finally:
            await browser.close()
