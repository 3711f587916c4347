"""Sign-in with an OIDC provider, in a real browser: FlowSync's API process configured
with FLOWSYNC_OIDC_CLIENT_ID and the JWT settings of a real minimal provider that this
test serves on 127.0.0.1 (tests.support.oidc_provider). The page runs the Authorization
Code flow with PKCE itself and sends the provider's ID token as its bearer JWT.

The provider's token endpoint is given as http://localhost:<port>, another origin than
the issuer's and FlowSync's: the page reaches it only because FlowSync's CSP names the
token endpoint found by discovery (and the provider answers CORS for the page's origin).
"""

from __future__ import annotations

from collections.abc import Iterator
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import pytest
from playwright.async_api import BrowserContext, Page, expect

from tests.browser.conftest import ARTIFACTS, Console, FlowSync, csp_violations
from tests.browser.test_quality import axe_violations
from tests.browser.ui import Api, delays
from tests.support.oidc_provider import OidcProvider, running_provider

pytestmark = pytest.mark.slow

CREDENTIAL = "flowsync.credential"
PENDING = "flowsync.oidc.pending"


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    with running_provider() as served:
        served.token_host = "localhost"
        yield served


@pytest.fixture
def api_extra_settings(provider: OidcProvider) -> dict[str, object]:
    return provider.settings()


@pytest.fixture
def oidc(provider: OidcProvider, flowsync: FlowSync) -> OidcProvider:
    """The provider, with FlowSync's callback registered as the client's redirect URI."""
    provider.register(flowsync.ui("auth/callback"))
    return provider


async def storage(page: Page, which: str) -> dict[str, str]:
    found: dict[str, str] = await page.evaluate(f"Object.fromEntries(Object.entries({which}))")
    return found


async def start_sign_in(page: Page, flowsync: FlowSync, path: str = "") -> None:
    await page.goto(flowsync.ui(path))
    await page.get_by_role("button", name="Sign in with Test IdP").click()


async def held_answer(page: Page, oidc: OidcProvider) -> str:
    """With `hold` set: the redirect back to FlowSync that the provider would have sent."""
    approve = page.locator("#approve")
    await expect(approve).to_be_visible()
    assert page.url.startswith(f"{oidc.issuer}/authorize?")
    href = await approve.get_attribute("href")
    assert href is not None
    return href


async def refused_with(page: Page, *fragments: str) -> None:
    """Back on the sign-in page, saying why, signed out, with nothing pending."""
    reason = page.get_by_test_id("signin-reason")
    await expect(reason).to_be_visible()
    for fragment in fragments:
        await expect(reason).to_contain_text(fragment)
    assert urlsplit(page.url).path == "/ui/"  # the code and state left the address bar
    assert urlsplit(page.url).query == ""
    session = await storage(page, "sessionStorage")
    assert CREDENTIAL not in session and PENDING not in session, session


async def test_sign_in_with_the_provider_lands_on_the_overview_with_live_data(
    page: Page, console: Console, flowsync: FlowSync, oidc: OidcProvider
) -> None:
    await start_sign_in(page, flowsync)
    await expect(page.get_by_test_id("health")).to_be_visible()
    assert page.url == flowsync.ui()  # no code or state left in the address bar
    await expect(page.get_by_test_id("link-state")).to_have_attribute("data-state", "connected")

    # The tab keeps the provider's ID token in sessionStorage, and nothing in localStorage.
    session = await storage(page, "sessionStorage")
    assert PENDING not in session, session  # the verifier and state are gone
    token = session[CREDENTIAL]
    claims = jwt.decode(token, options={"verify_signature": False})
    assert (claims["iss"], claims["aud"], claims["sub"]) == (oidc.issuer, oidc.client_id, "alice")
    assert await storage(page, "localStorage") == {}
    # The code was exchanged once, with a verifier (checked against its challenge).
    assert [(r.status, r.error) for r in oidc.token_requests] == [(200, None)]
    assert oidc.token_requests[0].form["code_verifier"]

    # The token is the tab's credential: the data is its owner's, and arrives live.
    client = Api(flowsync.url, token)
    workflow = await client.create_workflow("signed in with OIDC", delays(0.2))
    first = await client.start(workflow)
    await client.wait_status(first, {"COMPLETED"}, timeout=15)
    completed = page.locator('a[href="/ui/runs?status=COMPLETED"]')
    await expect(completed).to_contain_text("1", timeout=20_000)  # the overview refreshes
    await page.get_by_role("link", name="Runs").click()
    await expect(page.locator(f'[data-run-id="{first}"]')).to_be_visible()
    second = await client.start(workflow)
    row = page.locator(f'[data-run-id="{second}"]')
    await expect(row).to_have_attribute("data-status", "COMPLETED", timeout=15_000)
    assert await csp_violations(page) == []
    assert console.errors == []


async def test_a_wrong_verifier_or_a_tampered_state_is_refused(
    page: Page, flowsync: FlowSync, oidc: OidcProvider
) -> None:
    oidc.hold = True
    # A verifier other than the one whose challenge was sent: the provider refuses it.
    await start_sign_in(page, flowsync)
    answer = await held_answer(page, oidc)
    await page.goto(flowsync.ui())
    await page.evaluate(
        f"""() => {{
          const pending = JSON.parse(sessionStorage.getItem("{PENDING}"));
          pending.verifier = "x".repeat(43);
          sessionStorage.setItem("{PENDING}", JSON.stringify(pending));
        }}"""
    )
    await page.goto(answer)
    await refused_with(
        page,
        "Test IdP refused to exchange the sign-in's code for tokens (HTTP 400)",
        "invalid_grant",
        "PKCE verification failed",
    )
    assert [(r.status, r.error) for r in oidc.token_requests] == [(400, "invalid_grant")]
    assert oidc.token_requests[0].form["code_verifier"] == "x" * 43

    # An answer whose state is not the one this tab sent: refused before any exchange.
    await page.get_by_role("button", name="Sign in with Test IdP").click()
    answer = await held_answer(page, oidc)
    parts = urlsplit(answer)
    query = dict(parse_qsl(parts.query))
    query["state"] = "forged-" + query["state"]
    await page.goto(parts._replace(query=urlencode(query)).geturl())
    await refused_with(page, "its state does not match", "refused")
    assert len(oidc.token_requests) == 1  # the code was never sent to the provider


async def test_a_provider_refusal_and_an_expired_token_come_back_to_sign_in_with_the_reason(
    page: Page, flowsync: FlowSync, oidc: OidcProvider
) -> None:
    oidc.deny = "access_denied"
    await start_sign_in(page, flowsync)
    await refused_with(page, "Test IdP did not sign you in: access_denied (The user said no.).")
    assert oidc.token_requests == []

    # Signed in from the runs page (and back there), until the token expires.
    oidc.deny = None
    oidc.lifetime = 8
    await start_sign_in(page, flowsync, "runs")
    await page.wait_for_url(flowsync.ui("runs"))
    assert [(r.status, r.error) for r in oidc.token_requests] == [(200, None)]
    reason = page.get_by_test_id("signin-reason")
    await expect(reason).to_contain_text("Your sign-in expired at", timeout=30_000)
    assert CREDENTIAL not in await storage(page, "sessionStorage")


@pytest.mark.parametrize("theme", ["light", "dark"])
async def test_the_sign_in_page_with_a_provider_passes_axe(
    browser: Any, flowsync: FlowSync, oidc: OidcProvider, theme: str, console: Console
) -> None:
    context: BrowserContext = await browser.new_context(
        viewport={"width": 1280, "height": 800}, color_scheme=theme
    )
    try:
        page = await context.new_page()
        page.on("console", console.on_message)
        oidc.deny = "access_denied"  # the page then shows the provider's refusal too
        await start_sign_in(page, flowsync)
        await refused_with(page, "access_denied")
        await expect(page.get_by_role("button", name="Sign in with Test IdP")).to_be_visible()
        assert await page.evaluate("document.documentElement.dataset.theme") == theme
        assert await axe_violations(page) == []
        ARTIFACTS.mkdir(exist_ok=True)
        await page.screenshot(path=str(ARTIFACTS / f"sign-in-provider-{theme}.png"))
        assert console.errors == []
    finally:
        await context.close()


async def test_a_provider_that_cannot_be_used_is_named_and_keys_still_sign_in(
    page: Page, flowsync: FlowSync, oidc: OidcProvider
) -> None:
    # A provider without PKCE S256: FlowSync's discovery refuses it, and the page says so.
    oidc.challenge_methods = ["plain"]
    await page.goto(flowsync.ui())
    note = page.get_by_test_id("signin-provider-error")
    await expect(note).to_contain_text("Sign-in with Test IdP is unavailable")
    await expect(note).to_contain_text("does not offer 'S256'")
    await expect(page.get_by_role("button", name="Sign in with Test IdP")).to_have_count(0)
    await page.get_by_label("API key or token").fill(flowsync.key)
    await page.get_by_role("button", name="Sign in", exact=True).click()
    await expect(page.get_by_test_id("health")).to_be_visible()
