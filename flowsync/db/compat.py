"""Rolling upgrades: which release's code may run on which schema.

A deployment upgrades by running the new release's `flowsync migrate`, then replacing its
processes one at a time; meanwhile the previous release's processes run on the new schema,
and may restart on it. So each migration declares whether the code of the revision before
it still works on the schema it leaves: `compatible_with_previous = True` only for an
additive change (a new table, a nullable column, an index), never for a rename, a drop or a
constraint that rows written by the older code could break. A removal comes a release
after the code stopped using what it removes.

`flowsync migrate` records, as the comment of the `alembic_version` table, the oldest
revision whose code works on the schema it leaves: the head, lowered past each compatible
migration. A process of an older release accepts a schema at a revision it does not know
when that oldest revision is one it knows (its own head or an earlier one): it was
migrated past by additive changes only.
"""

from __future__ import annotations

from dataclasses import dataclass

from alembic.script import ScriptDirectory
from alembic.util.exc import CommandError

MARK = "flowsync compatible-from: "

# The schema's revision and the compatibility mark, in one statement.
READ_SQL = (
    "SELECT version_num, obj_description('alembic_version'::regclass, 'pg_class') AS mark "
    "FROM alembic_version"
)


def oldest_compatible(scripts: ScriptDirectory, revision: str) -> str:
    """The oldest revision whose code works on the schema at `revision`: it, lowered past
    each migration that declares `compatible_with_previous = True`."""
    while True:
        script = scripts.get_revision(revision)
        assert script is not None
        down = script.down_revision
        if not isinstance(down, str) or not script.module.compatible_with_previous:
            return revision
        revision = down


def mark_for(scripts: ScriptDirectory, revision: str) -> str:
    """The comment `flowsync migrate` leaves on `alembic_version` at `revision`."""
    return MARK + oldest_compatible(scripts, revision)


def parse_mark(comment: str | None) -> str | None:
    """The revision a mark names, or None for no (or a foreign) comment."""
    if comment is None or not comment.startswith(MARK):
        return None
    return comment[len(MARK) :].strip() or None


def _known(scripts: ScriptDirectory, revision: str) -> bool:
    try:
        return scripts.get_revision(revision) is not None
    except CommandError:
        return False


@dataclass(frozen=True, slots=True)
class SchemaState:
    """Where a database's schema stands for this release's code.

    kind: "head" (this release's), "compatible" (newer, migrated past this release by
    additive changes only), "older" (run this release's migrate), "newer" (not
    compatible: run the release that migrated it) or "none" (never migrated)."""

    kind: str
    revision: str | None
    head: str

    @property
    def usable(self) -> bool:
        """Whether this release's code may run on the schema."""
        return self.kind in ("head", "compatible")


def judge(scripts: ScriptDirectory, revision: str | None, comment: str | None) -> SchemaState:
    """The state of a schema at `revision` whose `alembic_version` comment is `comment`."""
    head = scripts.get_current_head()
    assert head is not None
    if revision is None:
        return SchemaState("none", None, head)
    if revision == head:
        return SchemaState("head", revision, head)
    if _known(scripts, revision):
        return SchemaState("older", revision, head)
    oldest = parse_mark(comment)
    if oldest is not None and _known(scripts, oldest):
        return SchemaState("compatible", revision, head)
    return SchemaState("newer", revision, head)
