"""Browser tests of the dashboard: Debian's Chromium driven by Playwright (Python) against
real FlowSync processes on the test's own database.

- `flowsync`: the API (`flowsync dev`, its worker off) on a free 127.0.0.1 port and two
  `flowsync worker` processes, all on this test's database; an owner with an API key, and
  the service layer in this process for arranging data (`flowsync.services`, `.me`).
- `page`: a new browser context per test (1400x900); `console` gathers the page's console
  errors, uncaught exceptions and CSP violations. `signed_in_page` has opened
  `/ui/#key=<key>` and waited for the app to take the key out of the address bar.
- A failed test leaves a screenshot of its page in `test-artifacts/`.

Chromium is never downloaded: the tests skip, saying why, where /usr/bin/chromium is
missing, and fail instead when FLOWSYNC_REQUIRE_BROWSER=1 (CI sets it).
"""

from __future__ import annotations

import asyncio
import contextlib
import importlib.metadata
import re
import socket
import subprocess
from collections.abc import AsyncIterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, NoReturn

import httpx
import pytest

from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.conftest import REQUIRE_BROWSER, new_subject
from tests.support.processes import ROOT, Process, flowsync_env

if TYPE_CHECKING:
    from playwright.async_api import Browser, BrowserContext, ConsoleMessage, Page

CHROMIUM = Path("/usr/bin/chromium")
CHROMIUM_ARGS = [
    "--no-sandbox",
    "--disable-gpu",
    "--disable-background-networking",
    "--disable-component-update",
    "--disable-sync",
    "--no-first-run",
]
ARTIFACTS = ROOT / "test-artifacts"
VIEWPORT = {"width": 1400, "height": 900}

# The processes' settings: quick polling and leases so that pages see progress within a
# second, rate limits out of the way (a page makes many requests), no GraphiQL or
# introspection (the UI must not rely on them), and a transform that can be made slow
# (tests.support.handlers.SlowTransform: input {"sleep": seconds}).
API_SETTINGS: dict[str, object] = {
    "dev_worker": "false",
    "graphiql": "false",
    "introspection": "false",
    "rate_limit_per_ip": "100000/minute",
    "rate_limit_per_principal": "100000/minute",
    "subscription_poll_seconds": 0.5,
    # A revoked key ends its open websockets within a second.
    "credential_check_seconds": 1,
}
WORKER_SETTINGS: dict[str, object] = {
    "lease_seconds": 2,
    "heartbeat_seconds": 0.5,
    "reclaim_seconds": 0.5,
    "poll_seconds": 0.5,
    "extra_handlers": "transform=tests.support.handlers:SlowTransform",
    # Actions call the tests' own HTTP servers on loopback.
    "allow_networks": "127.0.0.1/32",
}


def missing(reason: str) -> NoReturn:
    """Skip for a tool this machine lacks; fail instead where FLOWSYNC_REQUIRE_BROWSER=1."""
    if REQUIRE_BROWSER:
        pytest.fail(f"{reason} (FLOWSYNC_REQUIRE_BROWSER=1: the browser tests must run)")
    pytest.skip(reason)


_REPORTS = pytest.StashKey[dict[str, pytest.TestReport]]()


@pytest.hookimpl(wrapper=True)
def pytest_runtest_makereport(item: pytest.Item, call: pytest.CallInfo[None]) -> Any:
    # Each phase's report on the item, for fixtures that act on a failure at teardown.
    report = yield
    item.stash.setdefault(_REPORTS, {})[report.when] = report
    return report


def failed(item: pytest.Item) -> bool:
    reports = item.stash.get(_REPORTS, {})
    return any(r.failed for r in reports.values())


# --- the browser ------------------------------------------------------------------------


def _chromium_version() -> str:
    try:
        found = subprocess.run(
            [str(CHROMIUM), "--version"], capture_output=True, text=True, timeout=30
        ).stdout.strip()
    except (OSError, subprocess.SubprocessError) as exc:
        return f"unknown ({exc})"
    return found or "unknown"


@pytest.fixture(scope="session")
async def browser(request: pytest.FixtureRequest) -> AsyncIterator[Browser]:
    """Debian's Chromium, headless, once for the session."""
    if not CHROMIUM.exists():  # noqa: ASYNC240 (once per session)
        missing(f"{CHROMIUM} is missing (apt-get install chromium)")
    try:
        from playwright.async_api import async_playwright
    except ImportError:
        missing("playwright is not installed (pip install -e '.[dev]')")
    async with async_playwright() as playwright:
        launched = await playwright.chromium.launch(
            executable_path=str(CHROMIUM), args=CHROMIUM_ARGS, headless=True
        )
        # Playwright is built against a newer Chromium than Debian's: say which is which.
        reporter = request.config.pluginmanager.get_plugin("terminalreporter")
        line = (
            f"browser tests: {_chromium_version()} (protocol {launched.version}) at {CHROMIUM}, "
            f"driven by Playwright {importlib.metadata.version('playwright')}"
        )
        if reporter is not None:
            reporter.write_line(f"\n{line}")
        try:
            yield launched
        finally:
            await launched.close()


@dataclass
class Console:
    """What went wrong inside the page: console errors (CSP refusals among them) and
    uncaught exceptions."""

    errors: list[str] = field(default_factory=list)

    def on_message(self, message: ConsoleMessage) -> None:
        if message.type == "error":
            self.errors.append(f"console: {message.text} ({message.location.get('url', '')})")

    def on_error(self, error: Exception) -> None:
        self.errors.append(f"uncaught: {error}")


@pytest.fixture
def console() -> Console:
    return Console()


# The page records every CSP violation where a test can read it (csp_violations below).
_CSP_WATCH = """
document.addEventListener("securitypolicyviolation", (e) => {
  (window.__cspViolations = window.__cspViolations || []).push(
    `${e.violatedDirective} blocked ${e.blockedURI || "inline"} at ${e.sourceFile}:${e.lineNumber}`
  );
});
"""


async def csp_violations(page: Page) -> list[str]:
    """The CSP violations the page has seen since it was loaded."""
    found: list[str] = await page.evaluate("window.__cspViolations || []")
    return found


def _artifact_name(item: pytest.Item) -> str:
    return re.sub(r"[^A-Za-z0-9_.-]+", "_", item.nodeid).strip("_")[:150]


@pytest.fixture
async def context(browser: Browser) -> AsyncIterator[BrowserContext]:
    made = await browser.new_context(viewport=VIEWPORT)  # type: ignore[arg-type]
    await made.add_init_script(_CSP_WATCH)
    try:
        yield made
    finally:
        await made.close()


@pytest.fixture
async def page(
    context: BrowserContext, console: Console, request: pytest.FixtureRequest
) -> AsyncIterator[Page]:
    """A page of a fresh context; a screenshot in test-artifacts/ when the test fails."""
    opened = await context.new_page()
    opened.on("console", console.on_message)
    opened.on("pageerror", console.on_error)
    opened.set_default_timeout(10_000)
    try:
        yield opened
    finally:
        if failed(request.node):
            ARTIFACTS.mkdir(exist_ok=True)
            shot = ARTIFACTS / f"{_artifact_name(request.node)}.png"
            try:
                await opened.screenshot(path=str(shot), full_page=True)
            except Exception as exc:  # a crashed page must not hide the test's own failure
                print(f"no screenshot of {request.node.nodeid}: {exc}")
            else:
                print(f"screenshot of the failed page: {shot}")


# --- FlowSync ---------------------------------------------------------------------------


@dataclass
class FlowSync:
    """The running API and workers of a test, and an owner to act as."""

    url: str
    key: str
    me: Principal
    services: Services
    api: Process
    workers: list[Process]
    api_args: list[str] = field(default_factory=list)
    api_env: dict[str, str] = field(default_factory=dict)
    restarts: int = 0

    def ui(self, path: str = "") -> str:
        """The dashboard's URL for `path` (relative to /ui/)."""
        return f"{self.url}/ui/{path.lstrip('/')}"

    async def kill_api(self) -> None:
        """SIGKILL the API process: every open websocket drops at once."""
        await asyncio.to_thread(self.api.kill)

    async def start_api(self) -> None:
        """Start the API process again on the same port; return once it is healthy."""
        self.restarts += 1
        self.api.close()
        self.api = Process(
            self.api_args, self.api_env, self.api.log.with_name(f"api-{self.restarts}.log")
        )
        await _until_healthy(self.api, self.url)

    def logs(self) -> str:
        """The last lines of every process's output, for a failure message."""
        return "\n".join(
            f"--- {p.log.name}\n{p.output()[-3000:]}" for p in [self.api, *self.workers]
        )


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


async def _until_healthy(api: Process, url: str, timeout: float = 60) -> None:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    async with httpx.AsyncClient(timeout=2) as client:
        while loop.time() < deadline:
            assert api.proc.poll() is None, f"the API exited:\n{api.output()[-5000:]}"
            try:
                if (await client.get(f"{url}/api/health")).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            await asyncio.sleep(0.1)
    raise AssertionError(f"the API did not answer within {timeout}s:\n{api.output()[-5000:]}")


@pytest.fixture
def api_extra_settings() -> dict[str, object]:
    """Settings a test module adds to the API process's (override this fixture there)."""
    return {}


@pytest.fixture
async def flowsync(
    db_url: str,
    services: Services,
    tmp_path: Path,
    request: pytest.FixtureRequest,
    api_extra_settings: dict[str, object],
) -> AsyncIterator[FlowSync]:
    """`flowsync dev` (API only) and two `flowsync worker` processes on this test's
    database, and a fresh owner with an API key."""
    port = _free_port()
    url = f"http://127.0.0.1:{port}"
    api_args = ["dev", "--port", str(port)]
    settings = {**API_SETTINGS, **api_extra_settings}
    api_env = flowsync_env(db_url, data_dir=tmp_path / "dev", **settings)
    api = Process(api_args, api_env, tmp_path / "api.log")
    workers = [
        Process(
            ["worker", "--concurrency", "4"],
            flowsync_env(db_url, data_dir=tmp_path / "dev", **WORKER_SETTINGS),
            tmp_path / f"worker-{n}.log",
        )
        for n in range(2)
    ]
    started: FlowSync | None = None
    try:
        owner = await services.api_keys.ensure_owner(new_subject())
        me = Principal(owner, "test")
        key = (await services.api_keys.create(me, "browser tests")).secret
        await _until_healthy(api, url)
        started = FlowSync(url, key, me, services, api, workers, api_args, api_env)
        yield started
        if failed(request.node):
            print(started.logs())
    finally:
        for proc in [started.api if started else api, *workers]:
            if proc.proc.poll() is None:
                with contextlib.suppress(subprocess.TimeoutExpired):
                    await asyncio.to_thread(proc.terminate, 15)
            proc.close()  # SIGKILL if still running


async def sign_in(page: Page, flowsync: FlowSync) -> None:
    """Open the sign-in link `flowsync dev` prints; return once the app has moved the
    key out of the address bar."""
    await page.goto(flowsync.ui(f"#key={flowsync.key}"))
    await page.wait_for_function("!location.hash.includes('key=')")


@pytest.fixture
async def signed_in_page(page: Page, flowsync: FlowSync) -> Page:
    await sign_in(page, flowsync)
    return page
