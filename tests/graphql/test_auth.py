"""Authentication: API keys and OIDC JWTs (a real JWKS over HTTP), in the service layer,
over HTTP and in the websocket `connection_init` of both protocols; a revoked key or an
expired JWT ends the subscriptions opened with it."""

from __future__ import annotations

import asyncio
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from gql.transport.exceptions import TransportError, TransportQueryError, TransportServerError

from flowsync.errors import Unauthenticated
from flowsync.services.container import Services
from flowsync.services.principal import Principal
from tests.conftest import new_subject
from tests.graphql.conftest import LEGACY_WS, TRANSPORT_WS, Api, close_code, collect, op, serve
from tests.graphql.jwks import AUDIENCE, ISSUER, Provider, jwks_server, rsa_key
from tests.support.graphs import chain

CREATE = """mutation($d: JSON!) { createWorkflow(input: {name: "w", definition: $d}) {
  __typename ... on WorkflowPayload { workflow { id } } } }"""
EVENTS = "subscription { executionEvents { kind sequence executionId } }"
UPDATED = "subscription($id: ID!) { executionUpdated(id: $id) { kind sequence } }"
START = """mutation($w: ID!) { startExecution(workflowId: $w, input: {n: 1}) {
  ... on StartExecutionPayload { execution { id } } } }"""


@pytest.fixture(scope="module")
def provider() -> Iterator[Provider]:
    with jwks_server() as running:
        yield running


@pytest.fixture
async def jwt_api(db_url: str, provider: Provider) -> AsyncIterator[Api]:
    async with serve(
        db_url,
        jwks_url=provider.url,
        jwt_issuer=ISSUER,
        jwt_audience=AUDIENCE,
        jwt_leeway_seconds=0,
    ) as running:
        yield running


def bad_tokens(provider: Provider) -> dict[str, tuple[str | None, str]]:
    """Authorization header values that must be refused, with the message's gist."""
    other = rsa_key()
    return {
        "missing": (None, "Authentication required"),
        "empty": ("", "Authentication required"),
        "basic scheme": ("Basic dXNlcjpwYXNz", "Bearer"),
        "bearer without token": ("Bearer", "Bearer"),
        "garbage": ("Bearer hello", "neither a FlowSync API key nor a JWT"),
        "malformed jwt": ("Bearer a.b.c", "malformed"),
        "unknown api key": ("Bearer fsk_" + "x" * 43, "not valid"),
        "expired": (f"Bearer {provider.token(expires_in=-60)}", "expired"),
        "wrong audience": (f"Bearer {provider.token(aud='someone-else')}", "another audience"),
        "no audience": (f"Bearer {provider.token(aud=None)}", "'aud'"),
        "wrong issuer": (f"Bearer {provider.token(iss='https://evil.test/')}", "another issuer"),
        "unknown kid": (f"Bearer {provider.token(kid='k9')}", "signing key is not known"),
        "bad signature": (f"Bearer {provider.token(key=other)}", "signature does not verify"),
        "hs256": (
            "Bearer "
            + __import__("jwt").encode(
                {"sub": "x", "iss": ISSUER, "aud": AUDIENCE, "exp": 9999999999},
                "secret-secret-secret-secret-secret",
                algorithm="HS256",
            ),
            "algorithm 'HS256' is not accepted",
        ),
    }


async def test_every_bad_token_is_refused_with_a_clear_message(
    jwt_api: Api, provider: Provider
) -> None:
    auth = jwt_api.services.authenticator
    for case, (header, gist) in bad_tokens(provider).items():
        with pytest.raises(Unauthenticated) as caught:
            await auth.authenticate(header)
        assert gist in caught.value.message, case


async def test_a_jwt_owner_is_iss_pipe_sub_created_once_and_the_jwks_is_cached(
    jwt_api: Api, provider: Provider
) -> None:
    auth = jwt_api.services.authenticator
    before = len(provider.requests)
    first = await auth.authenticate(f"Bearer {provider.token('alice')}")
    again = await auth.authenticate(f"bearer {provider.token('alice')}")
    bob = await auth.authenticate(f"Bearer {provider.token('bob')}")
    assert first.principal.owner_id == again.principal.owner_id != bob.principal.owner_id
    assert first.principal.actor == "jwt:alice"
    expected = await jwt_api.services.api_keys.ensure_owner(f"{ISSUER}|alice")
    assert first.principal.owner_id == expected
    assert len(provider.requests) - before <= 1
    assert first.expires_at is not None


async def test_a_revoked_key_stops_authenticating(api: Api) -> None:
    a = await api.owner()
    credential = await api.services.authenticator.authenticate(f"Bearer {a.key}")
    assert await api.services.authenticator.still_valid(credential)
    keys = await api.services.api_keys.list(a.principal)
    await api.services.api_keys.revoke(a.principal, keys[0].id)
    with pytest.raises(Unauthenticated, match="revoked"):
        await api.services.authenticator.authenticate(f"Bearer {a.key}")
    await asyncio.sleep(api.services.settings.credential_check_seconds / 2 + 0.05)
    assert not await api.services.authenticator.still_valid(credential)


async def test_http_refuses_bad_credentials_with_401(jwt_api: Api, provider: Provider) -> None:
    async with httpx.AsyncClient() as client:
        for case, (header, gist) in bad_tokens(provider).items():
            headers = {"Authorization": header} if header is not None else {}
            reply = await client.post(
                jwt_api.http_url, json={"query": "{ health { status } }"}, headers=headers
            )
            assert reply.status_code == 401, case
            assert reply.headers["www-authenticate"].startswith("Bearer")
            error = reply.json()["errors"][0]
            assert error["extensions"]["code"] == "unauthenticated"
            assert gist in error["message"], case
        # Queries sent with GET need a credential too; only GraphiQL's page does not.
        reply = await client.get(jwt_api.http_url, params={"query": "{ health { status } }"})
        assert reply.status_code == 401


async def test_a_jwt_works_over_http_and_websockets(jwt_api: Api, provider: Provider) -> None:
    token = provider.token("carol")
    async with jwt_api.http(token) as session:
        created = await session.execute(op(CREATE, d=chain(1)))
        wid = created["createWorkflow"]["workflow"]["id"]
        started = await session.execute(op(START, w=wid))
        eid = started["startExecution"]["execution"]["id"]
    owner = await jwt_api.services.api_keys.ensure_owner(f"{ISSUER}|carol")
    workflow = await jwt_api.services.workflows.get(Principal(owner, "t"), wid)
    assert workflow.name == "w"
    for protocol in (TRANSPORT_WS, LEGACY_WS):
        async with jwt_api.ws(token, protocol) as session:
            one = op("query($id: ID!) { workflow(id: $id) { id } }", id=wid)
            if protocol == TRANSPORT_WS:
                assert (await session.execute(one))["workflow"]["id"] == wid
            else:  # the legacy protocol carries subscriptions only: a clear error
                with pytest.raises(TransportQueryError, match="carries subscriptions only"):
                    await session.execute(one)
            first = await collect(
                session.subscribe(op(UPDATED, id=eid)), lambda got: len(got) == 1, timeout=5
            )
            assert first[0]["executionUpdated"]["kind"] == "snapshot"


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_websockets_refuse_bad_credentials(
    jwt_api: Api, provider: Provider, protocol: str
) -> None:
    cases = bad_tokens(provider)
    for case in ("missing", "garbage", "expired", "wrong audience", "unknown api key"):
        header, gist = cases[case]
        token = header.removeprefix("Bearer ") if header else None
        with pytest.raises(TransportError) as caught:
            async with jwt_api.ws(token, protocol) as session:
                await session.execute(op(EVENTS))
        if protocol == LEGACY_WS:  # connection_error carries the reason
            assert isinstance(caught.value, TransportServerError), case
            assert "unauthenticated" in str(caught.value) and gist in str(caught.value), case
        else:  # graphql-transport-ws closes with 4403 Forbidden
            assert close_code(caught.value) == 4403, case


async def _subscription_ends(api: Api, token: str, protocol: str) -> BaseException:
    """Open an owner-wide subscription and return the error that ends it."""
    async with api.ws(token, protocol) as session:
        with pytest.raises(TransportQueryError) as caught:
            async for _ in session.subscribe(op(EVENTS)):
                pass
    return caught.value


@pytest.mark.parametrize("protocol", [TRANSPORT_WS, LEGACY_WS])
async def test_revoking_a_key_ends_its_open_subscriptions(api: Api, protocol: str) -> None:
    a = await api.owner()
    spare = await api.services.api_keys.create(a.principal, "spare")
    ending = asyncio.create_task(_subscription_ends(api, a.key, protocol))
    for _ in range(200):  # subscribed: its owner's watcher row exists
        if await api.services.pool.fetchval(
            "SELECT count(*) FROM event_watchers WHERE owner_id = $1", a.principal.owner_id
        ):
            break
        await asyncio.sleep(0.025)
    assert not ending.done()
    keys = {k.name: k for k in await api.services.api_keys.list(a.principal)}
    async with api.http(spare.secret) as session:
        revoked = await session.execute(
            op(
                "mutation($id: ID!) { revokeApiKey(id: $id) { __typename } }",
                id=str(keys["test"].id),
            )
        )
    assert revoked["revokeApiKey"]["__typename"] == "ApiKeyPayload"
    error = await asyncio.wait_for(ending, 10)
    assert "revoked" in str(error)


async def test_an_expiring_jwt_ends_its_subscriptions(jwt_api: Api, provider: Provider) -> None:
    error = await asyncio.wait_for(
        _subscription_ends(jwt_api, provider.token("dave", expires_in=2), TRANSPORT_WS), 10
    )
    assert "expired" in str(error)


async def test_without_a_jwks_url_jwts_are_refused_clearly(services: Services) -> None:
    token = Provider(rsa_key(), "http://unused", []).token()
    with pytest.raises(Unauthenticated, match="API keys only"):
        await services.authenticator.authenticate(f"Bearer {token}")
    owner = await services.api_keys.ensure_owner(new_subject())
    issued = await services.api_keys.create(Principal(owner, "t"), "k")
    assert (
        await services.authenticator.authenticate(f"Bearer {issued.secret}")
    ).key_id == issued.key.id


async def test_keys_remembered_for_re_checks_stay_bounded(
    api: Api, monkeypatch: pytest.MonkeyPatch
) -> None:
    """Every key that authenticates is remembered for the batched re-checks of long-lived
    connections; keys used over HTTP only must not pile up without bound."""
    from flowsync.services import auth

    monkeypatch.setattr(auth, "_OWNER_CACHE_SIZE", 4)
    authenticator = api.services.authenticator
    owners = [await api.owner() for _ in range(10)]
    for owner in owners:
        credential = await authenticator.authenticate(f"Bearer {owner.key}")
        assert await authenticator.still_valid(credential)
    assert len(authenticator._asked) <= 4
    newest = await authenticator.authenticate(f"Bearer {owners[-1].key}")
    assert newest.key_id in authenticator._asked
