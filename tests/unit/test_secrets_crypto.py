"""Secrets' pure parts: AES-GCM sealing bound to its row, keys from settings (well formed
or refused in one line), the dev key file, `{{ secrets.NAME }}` in templates and
validation, and redaction of values (and their encoded forms) from outcomes and logs."""

from __future__ import annotations

import base64
import logging
import os
import stat
import uuid
from pathlib import Path
from typing import Any

import pytest
from hypothesis import given
from hypothesis import strategies as st

from flowsync.config import Settings
from flowsync.engine.templates import compile_template
from flowsync.engine.validation import validate_definition
from flowsync.errors import ConfigurationError, DefinitionInvalid, ExpressionSyntaxError
from flowsync.secrets_crypto import (
    DEV_SECRET_KEY_FILE,
    Key,
    Keyring,
    NoSecretKey,
    SecretUnreadable,
    ensure_dev_secret_key,
    keyring_from_settings,
    new_key_text,
)
from flowsync.worker.handlers import Completed, Failed
from flowsync.worker.redaction import LIVE, Redactor, SecretLogFilter
from flowsync.worker.runner import redacted

OWNER = uuid.uuid4()


def settings(**values: Any) -> Settings:
    return Settings(_env_file=None, **values)  # type: ignore[call-arg]


def ring() -> Keyring:
    return keyring_from_settings(settings(secret_key=new_key_text()))


def test_a_value_round_trips_and_each_sealing_differs() -> None:
    keys = ring()
    one, key_id = keys.encrypt(OWNER, "TOKEN", "hunter2")
    two, _ = keys.encrypt(OWNER, "TOKEN", "hunter2")
    assert one != two and b"hunter2" not in one  # a fresh nonce each time
    assert key_id == keys.require().id and len(key_id) == 16
    assert keys.decrypt(OWNER, "TOKEN", one, key_id) == "hunter2"


@given(st.text(min_size=1, max_size=200))
def test_any_text_round_trips(value: str) -> None:
    keys = Keyring(Key.of(b"k" * 32))
    sealed, key_id = keys.encrypt(OWNER, "N", value)
    assert keys.decrypt(OWNER, "N", sealed, key_id) == value


def test_a_ciphertext_moved_to_another_row_or_key_does_not_decrypt() -> None:
    keys = ring()
    sealed, key_id = keys.encrypt(OWNER, "TOKEN", "hunter2")
    with pytest.raises(SecretUnreadable, match="'OTHER'"):
        keys.decrypt(OWNER, "OTHER", sealed, key_id)
    with pytest.raises(SecretUnreadable):
        keys.decrypt(uuid.uuid4(), "TOKEN", sealed, key_id)
    tampered = sealed[:-1] + bytes([sealed[-1] ^ 1])
    with pytest.raises(SecretUnreadable):
        keys.decrypt(OWNER, "TOKEN", tampered, key_id)
    with pytest.raises(SecretUnreadable) as wrong:
        ring().decrypt(OWNER, "TOKEN", sealed, key_id)
    assert "hunter2" not in wrong.value.message and key_id in wrong.value.message


def test_the_previous_key_still_decrypts_during_a_rotation() -> None:
    old, new = new_key_text(), new_key_text()
    before = keyring_from_settings(settings(secret_key=old))
    sealed, key_id = before.encrypt(OWNER, "T", "v")
    during = keyring_from_settings(settings(secret_key=new, secret_previous_key=old))
    assert during.decrypt(OWNER, "T", sealed, key_id) == "v"
    assert during.encrypt(OWNER, "T", "v")[1] == during.require().id != key_id


def test_keys_in_both_base64_alphabets_and_from_a_file(tmp_path: Path) -> None:
    raw = os.urandom(32)
    standard = base64.b64encode(raw).decode()
    urlsafe = base64.urlsafe_b64encode(raw).decode().rstrip("=")
    path = tmp_path / "key"
    path.write_text(standard + "\n")
    ids = {
        keyring_from_settings(settings(secret_key=standard)).require().id,
        keyring_from_settings(settings(secret_key=urlsafe)).require().id,
        keyring_from_settings(settings(secret_key_file=path)).require().id,
    }
    assert ids == {Key.of(raw).id}
    assert repr(Key.of(raw)) == f"Key(id={Key.of(raw).id!r})"  # never the material


@pytest.mark.parametrize(
    ("values", "named"),
    [
        ({"secret_key": "too-short"}, "FLOWSYNC_SECRET_KEY is not a secret key"),
        ({"secret_key": base64.b64encode(b"x" * 31).decode()}, "FLOWSYNC_SECRET_KEY"),
        ({"secret_key_file": "/nonexistent/key"}, "cannot be read"),
        ({"secret_key": new_key_text(), "secret_key_file": "/k"}, "Both"),
        ({"secret_previous_key": new_key_text()}, "without a current key"),
        ({"secret_key": new_key_text(), "secret_previous_key": "x"}, "PREVIOUS_KEY"),
    ],
)
def test_a_malformed_key_setting_is_one_line_naming_it(values: dict[str, Any], named: str) -> None:
    with pytest.raises(ConfigurationError) as refused:
        keyring_from_settings(settings(**values))
    assert named in refused.value.message and "\n" not in refused.value.message


def test_no_key_is_refused_only_when_one_is_needed() -> None:
    keys = keyring_from_settings(settings())
    assert keys.current is None and keys.key_ids == frozenset()
    with pytest.raises(NoSecretKey, match="FLOWSYNC_SECRET_KEY"):
        keys.encrypt(OWNER, "T", "v")


def test_dev_makes_a_private_key_file_once_and_keeps_it(tmp_path: Path) -> None:
    first = ensure_dev_secret_key(settings(data_dir=tmp_path))
    assert first.secret_key_file == tmp_path / DEV_SECRET_KEY_FILE
    assert stat.S_IMODE(os.stat(tmp_path / DEV_SECRET_KEY_FILE).st_mode) == 0o600
    again = ensure_dev_secret_key(settings(data_dir=tmp_path))
    assert keyring_from_settings(first).require().id == keyring_from_settings(again).require().id
    configured = settings(data_dir=tmp_path / "x", secret_key=new_key_text())
    assert ensure_dev_secret_key(configured) is configured
    assert not (tmp_path / "x").exists()


def test_templates_read_a_secret_only_where_allowed_and_only_alone() -> None:
    template = compile_template(
        {"u": "https://x/{{ secrets.A }}", "h": ["{{ secrets.B }}"]}, secrets=True
    )
    assert template.secret_uses == (("A", "$.u"), ("B", "$.h[0]"))
    assert template.render({"secrets": {"A": "1", "B": "2"}}) == {"u": "https://x/1", "h": ["2"]}
    for source, message in [
        ("{{ secrets.A }}", "only in an action's url, headers and body"),
        ("{{ secrets.A + 'x' }}", "only in an action's url, headers and body"),
    ]:
        with pytest.raises(ExpressionSyntaxError, match=message):
            compile_template(source)
    for source in ("{{ secrets.A + 'x' }}", "{{ secrets }}", "{{ size(secrets.A) }}"):
        with pytest.raises(ExpressionSyntaxError, match="alone in its placeholder"):
            compile_template(source, secrets=True)


def _action(**data: Any) -> dict[str, Any]:
    return {
        "nodes": [
            {"id": "start", "type": "start"},
            {
                "id": "call",
                "type": "action",
                "data": {"method": "POST", "url": "https://x/", **data},
            },
            {"id": "end", "type": "end", "data": {"output": "{{ steps.call.output }}"}},
        ],
        "edges": [{"source": "start", "target": "call"}, {"source": "call", "target": "end"}],
    }


def test_validation_allows_secrets_in_url_headers_body_and_refuses_them_elsewhere() -> None:
    ok = validate_definition(
        _action(url="https://x/{{ secrets.U }}", headers={"A": "{{ secrets.H }}"},
                body={"b": "{{ secrets.B }}"})
    )  # fmt: skip
    assert ok.nodes["call"].secret_names == {"U", "H", "B"}
    bad = _action(query={"k": "{{ secrets.Q }}"})
    bad["nodes"][2]["data"]["output"] = "{{ secrets.E }}"
    with pytest.raises(DefinitionInvalid) as refused:
        validate_definition(bad)
    found = {(p.path, p.node_id) for p in refused.value.details}
    assert found == {("$.nodes[1].data.query.k", "call"), ("$.nodes[2].data.output", "end")}


def test_redaction_replaces_every_form_of_a_value_and_keys_too() -> None:
    value = 'a/b c+"d'
    redactor = Redactor({"T": value, "EMPTY": ""})
    found = redactor.value(
        {
            "raw": f"x{value}y",
            "url": "https://h/?k=a%2Fb%20c%2B%22d",
            "plus": "k=a%2Fb+c%2B%22d",
            "json": 'x"a/b c+\\"d"',
            value: [value, 1, None],
        }
    )
    assert found == {
        "raw": "x[secret:T]y",
        "url": "https://h/?k=[secret:T]",
        "plus": "k=[secret:T]",
        "json": 'x"[secret:T]"',
        "[secret:T]": ["[secret:T]", 1, None],
    }
    assert not Redactor({}) and Redactor({}).value({"a": value}) == {"a": value}


def test_outcomes_are_redacted_and_log_lines_while_a_value_is_in_use() -> None:
    redactor = Redactor({"T": "hunter2"})
    assert redacted(Completed({"b": "hunter2"}), redactor) == Completed({"b": "[secret:T]"})
    failed = redacted(Failed({"message": "GET /?k=hunter2"}, retryable=True), redactor)
    assert isinstance(failed, Failed) and failed.error == {"message": "GET /?k=[secret:T]"}
    assert failed.retryable
    record = logging.LogRecord("x", logging.INFO, "f", 1, "got %s", ("hunter2",), None)
    with LIVE.using({"T": "hunter2"}):
        SecretLogFilter().filter(record)
    assert record.getMessage() == "got [secret:T]"
    after = logging.LogRecord("x", logging.INFO, "f", 1, "got %s", ("hunter2",), None)
    SecretLogFilter().filter(after)
    assert after.getMessage() == "got hunter2"  # no longer in use


def test_the_editor_check_of_a_template_accepts_a_secret_but_not_a_computed_one() -> None:
    from flowsync.services.expression_check import check_expression

    assert check_expression("Bearer {{ secrets.TOKEN }}", "TEMPLATE") == []
    [problem] = check_expression("{{ secrets.TOKEN + 'x' }}", "TEMPLATE")
    assert "alone in its placeholder" in problem.message
