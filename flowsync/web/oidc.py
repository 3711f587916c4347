"""The dashboard's sign-in with an OIDC provider.

The browser runs the Authorization Code flow with PKCE (S256) itself, as a public client:
there is no client secret anywhere. The server only tells the page what to use, from
the settings and from the provider's discovery document at
`<FLOWSYNC_JWT_ISSUER>/.well-known/openid-configuration`:

- `GET /ui/oidc.json` (no credential) answers `{"oidc": null}` when provider sign-in is
  off, `{"oidc": {...}}` (see `Provider.public`) when it is on, and 503
  `{"oidc": null, "error": {"code", "message"}}` when the provider cannot be used now.
- The dashboard's Content-Security-Policy lets the page connect to the provider's token
  endpoint (`connect_sources`), where the browser exchanges the code for tokens.

The document is fetched on first need and kept for `ttl` seconds; after a failure the
next attempt waits `retry_after` seconds, and a document that was read once is served
on while a refresh fails. The tokens the provider issues are verified as every JWT is
(`flowsync.services.auth`), against FLOWSYNC_JWKS_URL, _JWT_ISSUER and _JWT_AUDIENCE.
"""

from __future__ import annotations

import asyncio
import json
import logging
import time
from dataclasses import dataclass
from typing import Any
from urllib.parse import urlsplit

import httpx

from flowsync.config import Settings
from flowsync.errors import ProviderUnavailable

__all__ = ["DISCOVERY_PATH", "OidcSignIn", "Provider", "origin"]

log = logging.getLogger("flowsync.web.oidc")

DISCOVERY_PATH = "/.well-known/openid-configuration"
_MAX_DOCUMENT_BYTES = 256 * 1024


def origin(url: str) -> str:
    """`scheme://host[:port]` of an absolute URL (what a CSP source names)."""
    parts = urlsplit(url)
    return f"{parts.scheme}://{parts.netloc}"


@dataclass(frozen=True, slots=True)
class Provider:
    """What the dashboard needs to sign in with the provider. All of it is public: the
    client id of a public client, the scopes, and the provider's own endpoints."""

    name: str
    issuer: str
    client_id: str
    scopes: str
    bearer: str
    authorization_endpoint: str
    token_endpoint: str

    def public(self) -> dict[str, str]:
        """The JSON object `/ui/oidc.json` serves under `oidc`."""
        return {
            "provider": self.name,
            "issuer": self.issuer,
            "clientId": self.client_id,
            "scopes": self.scopes,
            "bearer": self.bearer,
            "authorizationEndpoint": self.authorization_endpoint,
            "tokenEndpoint": self.token_endpoint,
        }


def _endpoint(document: dict[str, Any], name: str, where: str) -> str:
    value = document.get(name)
    if not isinstance(value, str) or not value:
        raise ProviderUnavailable(f"The discovery document at {where} has no {name!r}.")
    parts = urlsplit(value)
    if parts.scheme not in ("http", "https") or not parts.netloc or parts.fragment:
        raise ProviderUnavailable(
            f"The discovery document at {where} gives {name!r} as {value!r}, which is not "
            "an absolute http(s) URL without a fragment."
        )
    return value


def _supports(document: dict[str, Any], name: str, wanted: str, where: str) -> None:
    """A list the provider publishes must hold `wanted`; one it leaves out is no refusal."""
    offered = document.get(name)
    if isinstance(offered, list) and wanted not in offered:
        raise ProviderUnavailable(
            f"The provider does not offer {wanted!r} in {name!r} ({where}): the dashboard "
            f"signs in with the code flow and PKCE (S256) only; it offers {offered!r}."
        )


class OidcSignIn:
    """The provider sign-in of one API process: the settings and the discovery document
    they point at, fetched when first needed and cached."""

    def __init__(
        self,
        settings: Settings,
        *,
        ttl: float = 3600.0,
        retry_after: float = 30.0,
        timeout: float = 5.0,
    ) -> None:
        if settings.oidc_client_id is None or settings.jwt_issuer is None:
            raise ValueError("provider sign-in is off (FLOWSYNC_OIDC_CLIENT_ID is unset)")
        self.issuer = settings.jwt_issuer
        self.client_id = settings.oidc_client_id
        self.name = settings.oidc_provider_name or urlsplit(self.issuer).hostname or self.issuer
        self.scopes = settings.oidc_scopes
        self.bearer = settings.oidc_bearer
        self.jwks_url = settings.jwks_url
        self.url = self.issuer.rstrip("/") + DISCOVERY_PATH
        self.ttl = ttl
        self.retry_after = retry_after
        self.timeout = timeout
        self._provider: Provider | None = None
        self._fetched_at = 0.0
        self._failure: ProviderUnavailable | None = None
        self._failed_at = 0.0
        self._lock = asyncio.Lock()

    @classmethod
    def from_settings(cls, settings: Settings) -> OidcSignIn | None:
        """The sign-in the settings configure; None when FLOWSYNC_OIDC_CLIENT_ID is unset."""
        return cls(settings) if settings.oidc_client_id is not None else None

    def _fresh(self, now: float) -> Provider | None:
        if self._provider is not None and now - self._fetched_at < self.ttl:
            return self._provider
        return None

    async def provider(self) -> Provider:
        """What the dashboard signs in with; ProviderUnavailable (saying why) when the
        discovery document cannot be read or used and none was read before."""
        found = self._fresh(time.monotonic())
        if found is not None:
            return found
        async with self._lock:
            now = time.monotonic()
            found = self._fresh(now)
            if found is not None:
                return found
            if self._failure is not None and now - self._failed_at < self.retry_after:
                if self._provider is not None:
                    return self._provider
                raise self._failure
            try:
                self._provider = await self._discover()
            except ProviderUnavailable as exc:
                self._failure, self._failed_at = exc, time.monotonic()
                if self._provider is not None:
                    log.warning("%s; using the document read before", exc.message)
                    return self._provider
                log.warning("%s", exc.message)
                raise
            self._fetched_at, self._failure = time.monotonic(), None
            return self._provider

    async def connect_sources(self) -> list[str]:
        """The origins besides 'self' the dashboard's pages may connect to: the token
        endpoint's (the issuer's while the document cannot be read)."""
        try:
            provider = await self.provider()
        except ProviderUnavailable:
            return [origin(self.issuer)]
        return [origin(provider.token_endpoint)]

    async def _discover(self) -> Provider:
        where = self.url
        try:
            async with (
                httpx.AsyncClient(timeout=self.timeout) as client,
                client.stream("GET", self.url, headers={"Accept": "application/json"}) as reply,
            ):
                body = b""
                async for chunk in reply.aiter_bytes():
                    body += chunk
                    if len(body) > _MAX_DOCUMENT_BYTES:
                        raise ProviderUnavailable(
                            f"The discovery document at {where} is larger than "
                            f"{_MAX_DOCUMENT_BYTES} bytes."
                        )
        except httpx.HTTPError as exc:
            raise ProviderUnavailable(
                f"The provider's discovery document at {where} could not be read: "
                f"{type(exc).__name__}: {exc}"
            ) from exc
        if reply.status_code != 200:
            raise ProviderUnavailable(
                f"The provider's discovery document at {where} answered HTTP {reply.status_code}."
            )
        try:
            document = json.loads(body)
        except ValueError as exc:
            raise ProviderUnavailable(
                f"The provider's discovery document at {where} is not JSON."
            ) from exc
        if not isinstance(document, dict):
            raise ProviderUnavailable(
                f"The provider's discovery document at {where} is not a JSON object."
            )
        if document.get("issuer") != self.issuer:
            # OpenID Connect Discovery 1.0, 4.3: the issuers must be identical.
            raise ProviderUnavailable(
                f"The discovery document at {where} names the issuer "
                f"{document.get('issuer')!r}, not FLOWSYNC_JWT_ISSUER {self.issuer!r}."
            )
        _supports(document, "response_types_supported", "code", where)
        _supports(document, "code_challenge_methods_supported", "S256", where)
        jwks_uri = document.get("jwks_uri")
        if isinstance(jwks_uri, str) and jwks_uri != self.jwks_url:
            log.warning(
                "the provider publishes its keys at %s, FLOWSYNC_JWKS_URL is %s: tokens "
                "are verified with the latter",
                jwks_uri,
                self.jwks_url,
            )
        return Provider(
            name=self.name,
            issuer=self.issuer,
            client_id=self.client_id,
            scopes=self.scopes,
            bearer=self.bearer,
            authorization_endpoint=_endpoint(document, "authorization_endpoint", where),
            token_endpoint=_endpoint(document, "token_endpoint", where),
        )
