"""FLOWSYNC_OIDC_*: provider sign-in needs what verifies the provider's tokens; settings
that could never sign anyone in are refused when they are read, naming what to set."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flowsync.config import Settings

ON = {
    "oidc_client_id": "dashboard",
    "jwt_issuer": "https://id.example.com",
    "jwks_url": "https://id.example.com/jwks",
}


def read(**values: object) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[arg-type]


def refusal(**values: object) -> str:
    with pytest.raises(ValidationError) as info:
        read(**values)
    return str(info.value)


def test_off_by_default_and_a_blank_client_id_is_unset() -> None:
    assert read().oidc_client_id is None
    assert read(oidc_client_id="  ").oidc_client_id is None
    on = read(**ON)
    assert (on.oidc_client_id, on.oidc_scopes, on.oidc_bearer) == (
        "dashboard",
        "openid profile email",
        "id_token",
    )


def test_the_environment_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    for name, value in ON.items():
        monkeypatch.setenv(f"FLOWSYNC_{name.upper()}", value)
    monkeypatch.setenv("FLOWSYNC_OIDC_SCOPES", "openid,email openid")
    monkeypatch.setenv("FLOWSYNC_OIDC_PROVIDER_NAME", "Example ID")
    settings = Settings(_env_file=None)  # type: ignore[call-arg]
    assert settings.oidc_client_id == "dashboard"
    assert settings.oidc_scopes == "openid email"
    assert settings.oidc_provider_name == "Example ID"


@pytest.mark.parametrize(
    ("missing", "named"),
    [
        ("jwt_issuer", "FLOWSYNC_OIDC_CLIENT_ID needs FLOWSYNC_JWT_ISSUER:"),
        ("jwks_url", "FLOWSYNC_OIDC_CLIENT_ID needs FLOWSYNC_JWKS_URL:"),
    ],
)
def test_a_client_id_without_issuer_or_jwks_is_refused(missing: str, named: str) -> None:
    values = {k: v for k, v in ON.items() if k != missing}
    assert named in refusal(**values)


def test_an_issuer_that_is_no_url_is_refused() -> None:
    assert "must be an absolute http:// or https:// URL" in refusal(**{**ON, "jwt_issuer": "me"})


def test_scopes_must_ask_for_openid() -> None:
    assert "must hold 'openid'" in refusal(**ON, oidc_scopes="profile email")


def test_an_audience_an_id_token_cannot_carry_is_refused() -> None:
    message = refusal(**ON, jwt_audience="flowsync-api")
    assert "FLOWSYNC_JWT_AUDIENCE is 'flowsync-api'" in message
    assert "client id 'dashboard'" in message
    # The client id itself, or access tokens (whose audience the provider decides), pass.
    assert read(**ON, jwt_audience="dashboard").jwt_audience == "dashboard"
    assert read(**ON, jwt_audience="api", oidc_bearer="access_token").oidc_bearer == "access_token"
    assert "oidc_bearer" in refusal(**ON, oidc_bearer="refresh_token")
