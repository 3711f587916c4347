"""Which release's code may run on which schema (flowsync.db.compat), over the real
migration scripts: what a rolling upgrade relies on."""

from __future__ import annotations

import pytest

from flowsync.db.compat import MARK, judge, oldest_compatible, parse_mark
from flowsync.db.migrate import script_directory


def test_every_migration_says_whether_the_previous_release_can_run_on_it() -> None:
    scripts = script_directory()
    for script in scripts.walk_revisions():
        flag = getattr(script.module, "compatible_with_previous", None)
        assert isinstance(flag, bool), (
            f"{script.path}: declare `compatible_with_previous: bool` (True only for an "
            "additive change; see flowsync.db.compat)"
        )


def test_the_oldest_compatible_revision_stops_at_the_first_incompatible_migration() -> None:
    scripts = script_directory()
    head = scripts.get_current_head()
    assert head is not None
    oldest = oldest_compatible(scripts, head)
    # Every migration after the oldest compatible revision is additive, and the one that
    # made it is not (or it is the first).
    revision = head
    while revision != oldest:
        script = scripts.get_revision(revision)
        assert script is not None and script.module.compatible_with_previous is True
        assert isinstance(script.down_revision, str)
        revision = script.down_revision
    first = scripts.get_revision(oldest)
    assert first is not None
    assert first.down_revision is None or first.module.compatible_with_previous is False


def test_a_schema_is_judged_by_its_revision_and_its_mark() -> None:
    scripts = script_directory()
    head = scripts.get_current_head()
    assert head is not None
    base = scripts.get_base()
    assert base is not None and base != head
    assert judge(scripts, head, None).kind == "head"
    assert judge(scripts, base, MARK + base).kind == "older"  # an older schema: migrate
    assert judge(scripts, None, None).kind == "none"
    # Newer than this release: usable only when its mark names a revision this one knows.
    assert judge(scripts, "f" * 12, MARK + head).kind == "compatible"
    assert judge(scripts, "f" * 12, MARK + base).kind == "compatible"
    assert judge(scripts, "f" * 12, MARK + "e" * 12).kind == "newer"
    assert judge(scripts, "f" * 12, None).kind == "newer"
    assert judge(scripts, "f" * 12, "a comment of someone else").kind == "newer"
    assert [judge(scripts, r, None).usable for r in (head, None, "f" * 12)] == [
        True,
        False,
        False,
    ]


@pytest.mark.parametrize(
    ("comment", "revision"),
    [(None, None), ("", None), (MARK, None), (MARK + "0042", "0042"), ("other", None)],
)
def test_marks_are_read_strictly(comment: str | None, revision: str | None) -> None:
    assert parse_mark(comment) == revision
