"""A minimal, real OpenID Connect provider for tests, served on 127.0.0.1 by uvicorn:
discovery, an authorization endpoint that approves at once (redirecting back with a
code), a token endpoint that checks the PKCE code_verifier against the code_challenge
(S256) and answers RS256-signed tokens, and the JWKS that verifies them.

What a test can set on the running provider:
- `register(redirect_uri)`: the redirect URIs the client may use (and, for CORS, their
  origins: the browser calls the token endpoint from the dashboard's page);
- `hold`: the authorization endpoint answers a page with an *Approve* link instead of
  redirecting, so that a test can look at (or alter) the redirect before following it;
- `deny`: the authorization endpoint redirects back with `error=<deny>`;
- `lifetime`: the seconds the tokens it issues are valid;
- `challenge_methods`: the PKCE methods the discovery document says it supports;
- `token_host`: the host name the discovery document gives the token endpoint (e.g.
  `localhost`, another origin than the issuer's on the same server).
Every token request and its outcome is kept in `token_requests`.
"""

from __future__ import annotations

import base64
import hashlib
import html
import secrets
import socket
import threading
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from typing import Any
from urllib.parse import parse_qsl, urlencode, urlsplit

import jwt
import uvicorn
from cryptography.hazmat.primitives.asymmetric import rsa
from starlette.applications import Starlette
from starlette.requests import Request
from starlette.responses import HTMLResponse, JSONResponse, RedirectResponse, Response
from starlette.routing import Route

CLIENT_ID = "flowsync-dashboard"
KEY_ID = "test-key-1"


def s256(verifier: str) -> str:
    """The PKCE S256 challenge of a verifier: base64url(sha256(verifier)), unpadded."""
    digest = hashlib.sha256(verifier.encode("ascii")).digest()
    return base64.urlsafe_b64encode(digest).rstrip(b"=").decode("ascii")


@dataclass
class Grant:
    """What an issued code stands for."""

    client_id: str
    redirect_uri: str
    challenge: str
    nonce: str | None
    scope: str


@dataclass
class TokenRequest:
    """One call to the token endpoint: its form and what the provider answered."""

    form: dict[str, str]
    status: int
    error: str | None


@dataclass
class OidcProvider:
    """The provider's state; `issuer` once it is served."""

    port: int = 0
    client_id: str = CLIENT_ID
    subject: str = "alice"
    name: str = "Alice Example"
    lifetime: float = 300.0
    hold: bool = False
    deny: str | None = None
    token_host: str = "127.0.0.1"
    challenge_methods: list[str] = field(default_factory=lambda: ["S256"])
    redirect_uris: set[str] = field(default_factory=set)
    grants: dict[str, Grant] = field(default_factory=dict)
    token_requests: list[TokenRequest] = field(default_factory=list)
    key: rsa.RSAPrivateKey = field(
        default_factory=lambda: rsa.generate_private_key(public_exponent=65537, key_size=2048)
    )

    @property
    def issuer(self) -> str:
        return f"http://127.0.0.1:{self.port}"

    @property
    def jwks_url(self) -> str:
        return f"{self.issuer}/jwks"

    @property
    def token_endpoint(self) -> str:
        return f"http://{self.token_host}:{self.port}/token"

    def register(self, redirect_uri: str) -> None:
        self.redirect_uris.add(redirect_uri)

    def origins(self) -> set[str]:
        return {f"{urlsplit(u).scheme}://{urlsplit(u).netloc}" for u in self.redirect_uris}

    def sign(self, claims: dict[str, Any]) -> str:
        return jwt.encode(claims, self.key, algorithm="RS256", headers={"kid": KEY_ID})

    def settings(self) -> dict[str, object]:
        """The FlowSync settings that sign in with this provider (FLOWSYNC_* names)."""
        return {
            "jwks_url": self.jwks_url,
            "jwt_issuer": self.issuer,
            "jwt_audience": self.client_id,
            "oidc_client_id": self.client_id,
            "oidc_provider_name": "Test IdP",
        }


def _app(state: OidcProvider) -> Starlette:
    async def discovery(request: Request) -> Response:
        return JSONResponse(
            {
                "issuer": state.issuer,
                "authorization_endpoint": f"{state.issuer}/authorize",
                "token_endpoint": state.token_endpoint,
                "jwks_uri": state.jwks_url,
                "response_types_supported": ["code"],
                "subject_types_supported": ["public"],
                "id_token_signing_alg_values_supported": ["RS256"],
                "code_challenge_methods_supported": state.challenge_methods,
                "grant_types_supported": ["authorization_code"],
                "token_endpoint_auth_methods_supported": ["none"],
            }
        )

    async def jwks(request: Request) -> Response:
        key = jwt.algorithms.RSAAlgorithm.to_jwk(state.key.public_key(), as_dict=True)
        return JSONResponse({"keys": [{**key, "kid": KEY_ID, "use": "sig", "alg": "RS256"}]})

    async def authorize(request: Request) -> Response:
        q = request.query_params
        redirect_uri = q.get("redirect_uri", "")
        if q.get("client_id") != state.client_id or redirect_uri not in state.redirect_uris:
            # Never redirect to a URI the client did not register (RFC 6749, 4.1.2.1).
            return HTMLResponse("unknown client or redirect_uri", status_code=400)
        back: dict[str, str] = {"state": q.get("state", "")}
        if state.deny is not None:
            back |= {"error": state.deny, "error_description": "The user said no."}
        elif q.get("response_type") != "code":
            back |= {"error": "unsupported_response_type"}
        elif q.get("code_challenge_method") != "S256" or not q.get("code_challenge"):
            back |= {"error": "invalid_request", "error_description": "PKCE S256 is required."}
        else:
            code = secrets.token_urlsafe(24)
            state.grants[code] = Grant(
                q["client_id"],
                redirect_uri,
                q["code_challenge"],
                q.get("nonce"),
                q.get("scope", ""),
            )
            back = {"code": code, **back}
        target = f"{redirect_uri}?{urlencode(back)}"
        if state.hold:
            link = html.escape(target, quote=True)
            return HTMLResponse(f'<!doctype html><a id="approve" href="{link}">Approve</a>')
        return RedirectResponse(target, status_code=302)

    def cors(request: Request) -> dict[str, str]:
        origin = request.headers.get("origin")
        if origin is None or origin not in state.origins():
            return {}
        return {"Access-Control-Allow-Origin": origin, "Vary": "Origin"}

    async def token(request: Request) -> Response:
        headers = {**cors(request), "Cache-Control": "no-store"}
        if request.method == "OPTIONS":
            headers |= {
                "Access-Control-Allow-Methods": "POST",
                "Access-Control-Allow-Headers": "Content-Type, Accept",
            }
            return Response(status_code=204, headers=headers)
        # application/x-www-form-urlencoded, read as the spec says (no multipart here).
        form = dict(parse_qsl((await request.body()).decode("utf-8"), keep_blank_values=True))

        def refuse(error: str, description: str, status: int = 400) -> Response:
            state.token_requests.append(TokenRequest(form, status, error))
            body = {"error": error, "error_description": description}
            return JSONResponse(body, status_code=status, headers=headers)

        if form.get("grant_type") != "authorization_code":
            return refuse("unsupported_grant_type", "Only authorization_code is supported.")
        grant = state.grants.pop(form.get("code", ""), None)  # a code is good once
        if grant is None:
            return refuse("invalid_grant", "The code is unknown or was used already.")
        if form.get("client_id") != grant.client_id:
            return refuse("invalid_grant", "The code was issued to another client.")
        if form.get("redirect_uri") != grant.redirect_uri:
            return refuse("invalid_grant", "The redirect_uri differs from the authorization's.")
        verifier = form.get("code_verifier", "")
        if not verifier or s256(verifier) != grant.challenge:
            return refuse(
                "invalid_grant", "PKCE verification failed: the code_verifier does not match."
            )
        now = int(time.time())
        exp = now + int(state.lifetime)
        common = {"iss": state.issuer, "sub": state.subject, "iat": now, "exp": exp}
        id_claims = {**common, "aud": grant.client_id, "name": state.name}
        if grant.nonce is not None:
            id_claims["nonce"] = grant.nonce
        state.token_requests.append(TokenRequest(form, 200, None))
        return JSONResponse(
            {
                "access_token": state.sign({**common, "aud": "api", "scope": grant.scope}),
                "id_token": state.sign(id_claims),
                "token_type": "Bearer",
                "expires_in": int(state.lifetime),
                "scope": grant.scope,
            },
            headers=headers,
        )

    return Starlette(
        routes=[
            Route("/.well-known/openid-configuration", discovery),
            Route("/jwks", jwks),
            Route("/authorize", authorize),
            Route("/token", token, methods=["POST", "OPTIONS"]),
        ]
    )


@contextmanager
def running_provider() -> Iterator[OidcProvider]:
    """Serve an OidcProvider on a free 127.0.0.1 port for the duration of the block."""
    state = OidcProvider()
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    state.port = sock.getsockname()[1]
    config = uvicorn.Config(_app(state), log_level="warning", lifespan="off")
    server = uvicorn.Server(config)
    thread = threading.Thread(target=server.run, kwargs={"sockets": [sock]}, daemon=True)
    thread.start()
    deadline = time.monotonic() + 10
    while not server.started and time.monotonic() < deadline:
        time.sleep(0.01)
    try:
        yield state
    finally:
        server.should_exit = True
        thread.join(10)
        sock.close()
