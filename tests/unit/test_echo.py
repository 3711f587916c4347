"""flowsync.echo: what an error message echoes of an input is bounded."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from flowsync.echo import ECHO_CHARS, MESSAGE_CHARS, bounded


def test_a_long_quoted_value_keeps_its_first_characters_and_an_ellipsis() -> None:
    value = "v" * 10_000
    assert bounded(f"Value '{value}' does not exist in 'Status' enum.") == (
        f"Value '{'v' * ECHO_CHARS}…' does not exist in 'Status' enum."
    )
    assert bounded(f'not an Int: "{value}"') == f'not an Int: "{"v" * ECHO_CHARS}…"'
    assert bounded("a short 'value' stays") == "a short 'value' stays"


@given(st.text(max_size=3000))
def test_any_message_is_bounded_and_bounding_twice_changes_nothing(message: str) -> None:
    once = bounded(message)
    assert len(once) <= MESSAGE_CHARS + 1
    assert bounded(once) == once
