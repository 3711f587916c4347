"""FLOWSYNC_WEBHOOK_BASE_URL: read as an absolute http(s) URL without a trailing slash;
anything else is refused when the settings are read, not when a trigger is shown."""

from __future__ import annotations

import pytest
from pydantic import ValidationError

from flowsync.config import Settings


def base_url(value: str) -> str | None:
    settings = Settings(_env_file=None, webhook_base_url=value)  # type: ignore[call-arg]
    return settings.webhook_base_url


def test_the_base_url_is_kept_without_its_trailing_slash() -> None:
    assert base_url("https://hooks.example.com/") == "https://hooks.example.com"
    assert base_url(" http://hooks.test:8080/in ") == "http://hooks.test:8080/in"
    assert base_url("") is None
    assert Settings(_env_file=None).webhook_base_url is None  # type: ignore[call-arg]


def test_the_environment_variable_is_read(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("FLOWSYNC_WEBHOOK_BASE_URL", "https://hooks.example.com")
    assert Settings(_env_file=None).webhook_base_url == "https://hooks.example.com"  # type: ignore[call-arg]


@pytest.mark.parametrize(
    ("value", "fragment"),
    [
        ("hooks.example.com", "absolute http"),
        ("ftp://hooks.example.com", "absolute http"),
        ("https://", "absolute http"),
        ("https://hooks.example.com/?a=1", "no query or fragment"),
        ("https://hooks.example.com/#x", "no query or fragment"),
    ],
)
def test_a_base_url_that_is_not_an_origin_is_refused(value: str, fragment: str) -> None:
    with pytest.raises(ValidationError) as info:
        base_url(value)
    assert fragment in str(info.value)
