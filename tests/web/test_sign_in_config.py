"""What the sign-in page learns from `/ui/oidc.json`, and the dashboard's CSP with provider
sign-in on: the dashboard's mount over httpx's ASGI transport, reading the discovery
document of a real provider served on 127.0.0.1 (tests.support.oidc_provider)."""

from __future__ import annotations

from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from starlette.applications import Starlette

from flowsync.config import Settings
from flowsync.web import SECURITY_HEADERS, mount
from flowsync.web.oidc import OidcSignIn
from tests.support.oidc_provider import OidcProvider, running_provider


def settings(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


@pytest.fixture
def provider() -> Iterator[OidcProvider]:
    with running_provider() as served:
        yield served


async def client_for(oidc: OidcSignIn | None) -> AsyncIterator[httpx.AsyncClient]:
    app = Starlette()
    mount(app, oidc=oidc)
    transport = httpx.ASGITransport(app=app)
    async with httpx.AsyncClient(transport=transport, base_url="http://testserver") as made:
        yield made


def connect_src(reply: httpx.Response) -> list[str]:
    policy = reply.headers["content-security-policy"]
    directive = next(d.strip() for d in policy.split(";") if d.strip().startswith("connect-src"))
    return directive.split()[1:]


async def test_without_a_client_id_the_page_offers_no_provider() -> None:
    assert OidcSignIn.from_settings(settings()) is None
    async for client in client_for(None):
        reply = await client.get("/ui/oidc.json")
        assert reply.status_code == 200
        assert reply.json() == {"oidc": None}
        assert reply.headers["cache-control"] == "no-store"
        assert (
            reply.headers["content-security-policy"] == SECURITY_HEADERS["Content-Security-Policy"]
        )
        assert connect_src(reply) == ["'self'"]


async def test_the_page_learns_the_provider_and_may_reach_its_token_endpoint(
    provider: OidcProvider,
) -> None:
    # The token endpoint on another origin than the issuer's: the CSP names the former.
    provider.token_host = "localhost"
    oidc = OidcSignIn.from_settings(settings(**provider.settings()))
    assert oidc is not None
    async for client in client_for(oidc):
        reply = await client.get("/ui/oidc.json")
        assert reply.status_code == 200, reply.text
        assert reply.json() == {
            "oidc": {
                "provider": "Test IdP",
                "issuer": provider.issuer,
                "clientId": provider.client_id,
                "scopes": "openid profile email",
                "bearer": "id_token",
                "authorizationEndpoint": f"{provider.issuer}/authorize",
                "tokenEndpoint": f"http://localhost:{provider.port}/token",
            }
        }
        assert reply.headers["cache-control"] == "no-store"
        for path in ("/ui/", "/ui/auth/callback", "/ui/oidc.json"):
            page = await client.get(path)
            assert connect_src(page) == ["'self'", f"http://localhost:{provider.port}"], path
            # Only connect-src changes: no other origin may serve scripts or frames.
            policy = page.headers["content-security-policy"]
            assert policy == SECURITY_HEADERS["Content-Security-Policy"].replace(
                "connect-src 'self'", f"connect-src 'self' http://localhost:{provider.port}"
            )


async def test_the_provider_name_defaults_to_the_issuers_host(provider: OidcProvider) -> None:
    values = {**provider.settings(), "oidc_provider_name": ""}
    oidc = OidcSignIn.from_settings(settings(**values))
    assert oidc is not None
    assert (await oidc.provider()).name == "127.0.0.1"


async def test_an_unreachable_provider_is_named_and_the_page_still_loads() -> None:
    with running_provider() as gone:
        values = gone.settings()
    oidc = OidcSignIn.from_settings(settings(**values))
    assert oidc is not None
    async for client in client_for(oidc):
        reply = await client.get("/ui/oidc.json")
        assert reply.status_code == 503
        body = reply.json()
        assert body["oidc"] is None
        assert body["error"]["code"] == "provider_unavailable"
        message = body["error"]["message"]
        assert message.startswith("Sign-in with Test IdP is unavailable:"), message
        assert f"{values['jwt_issuer']}/.well-known/openid-configuration" in message
        # The pages are still served; their policy allows the issuer's origin only.
        page = await client.get("/ui/")
        assert page.status_code in (200, 503)
        assert connect_src(page) == ["'self'", str(values["jwt_issuer"])]


async def test_a_document_for_another_issuer_is_refused(provider: OidcProvider) -> None:
    # The same server under another name: its document names 127.0.0.1 as the issuer.
    values = {**provider.settings(), "jwt_issuer": f"http://localhost:{provider.port}"}
    oidc = OidcSignIn.from_settings(settings(**values))
    assert oidc is not None
    async for client in client_for(oidc):
        reply = await client.get("/ui/oidc.json")
        assert reply.status_code == 503
        message = reply.json()["error"]["message"]
        assert f"names the issuer '{provider.issuer}'" in message, message
        assert f"not FLOWSYNC_JWT_ISSUER 'http://localhost:{provider.port}'" in message


async def test_a_provider_without_s256_is_refused(provider: OidcProvider) -> None:
    provider.challenge_methods = ["plain"]
    oidc = OidcSignIn.from_settings(settings(**provider.settings()))
    assert oidc is not None
    async for client in client_for(oidc):
        reply = await client.get("/ui/oidc.json")
        assert reply.status_code == 503
        message = reply.json()["error"]["message"]
        assert "does not offer 'S256' in 'code_challenge_methods_supported'" in message


async def test_a_document_read_once_is_kept_while_the_provider_is_down() -> None:
    with running_provider() as served:
        oidc = OidcSignIn(settings(**served.settings()), ttl=0, retry_after=0)
        first = await oidc.provider()
    # Expired (ttl 0) and the provider gone: the last good document is served on.
    assert await oidc.provider() == first
    assert await oidc.connect_sources() == [served.issuer]
