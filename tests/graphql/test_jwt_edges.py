"""JWTs at the edges answer 401 with a clear message, never 500: the HS256 confusion (an
HS256 token "signed" with the JWKS's public key) while HS256 is an accepted algorithm,
an `exp` no double holds, and a NUL in a claim the owner is stored by. Over both faces."""

from __future__ import annotations

import base64
import hashlib
import hmac
import json
import time
from collections.abc import AsyncIterator, Iterator

import httpx
import pytest
from cryptography.hazmat.primitives import serialization

from tests.graphql.conftest import Api, serve
from tests.graphql.jwks import AUDIENCE, ISSUER, Provider, jwks_server


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
        jwt_algorithms="RS256,HS256",
    ) as running:
        yield running


def _b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def confused(provider: Provider) -> str:
    """An HS256 token whose HMAC key is the provider's public key (PEM), kid k1."""
    pem = provider.key.public_key().public_bytes(
        serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo
    )
    claims = {"sub": "mallory", "iss": ISSUER, "aud": AUDIENCE, "exp": int(time.time()) + 300}
    head = _b64(json.dumps({"alg": "HS256", "kid": "k1", "typ": "JWT"}).encode())
    body = _b64(json.dumps(claims).encode())
    signature = hmac.new(pem, f"{head}.{body}".encode(), hashlib.sha256).digest()
    return f"{head}.{body}.{_b64(signature)}"


async def test_jwt_edge_cases_answer_401_on_both_faces(jwt_api: Api, provider: Provider) -> None:
    cases = {
        "hs256 confusion": (confused(provider), "does not fit its signing key"),
        "exp 10^400": (provider.token(exp=10**400), "'exp' claim is not a time"),
        "nul in sub": (provider.token("a\x00b"), "'sub' claim holds a NUL"),
        "nul in name": (provider.token("carol", name="Car\x00ol"), "'name' claim holds a NUL"),
    }
    rest = jwt_api.http_url.removesuffix("/graphql") + "/api/workflows"
    async with httpx.AsyncClient(timeout=30) as client:
        for case, (token, gist) in cases.items():
            headers = {"Authorization": f"Bearer {token}"}
            reply = await client.post(
                jwt_api.http_url, json={"query": "{ health { status } }"}, headers=headers
            )
            assert reply.status_code == 401, (case, reply.text)
            error = reply.json()["errors"][0]
            assert error["extensions"]["code"] == "unauthenticated", case
            assert gist in error["message"], (case, error)
            reply = await client.get(rest, headers=headers)
            assert reply.status_code == 401, (case, reply.text)
            assert gist in reply.json()["error"]["message"], case
        # The same provider's honest tokens still authenticate.
        good = {"Authorization": f"Bearer {provider.token('carol', name='Carol')}"}
        assert (await client.get(rest, headers=good)).status_code == 200
