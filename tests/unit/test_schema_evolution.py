"""The schema evolves safely (docs/graphql-changelog.md): the server's schema against the
last release's, and the rule itself on small schemas, case by case."""

from __future__ import annotations

from graphql import build_schema as from_sdl

from flowsync.config import Settings
from flowsync.schema.evolution import deprecated_coordinates, listed_removals, violations
from flowsync.schema.schema import build_schema
from tests.support.processes import ROOT

BASELINE = ROOT / "docs" / "graphql-baseline.graphql"
CHANGELOG = ROOT / "docs" / "graphql-changelog.md"


def test_the_server_schema_breaks_nothing_the_last_release_promised() -> None:
    live = build_schema(Settings(_env_file=None)).as_str()  # type: ignore[call-arg]
    problems = violations(from_sdl(BASELINE.read_text()), from_sdl(live), CHANGELOG.read_text())
    assert not problems, (
        "breaking changes against docs/graphql-baseline.graphql that the policy in "
        "docs/graphql-changelog.md does not allow:\n" + "\n".join(f"- {p}" for p in problems)
    )


def test_every_deprecation_is_in_the_changelog() -> None:
    live = from_sdl(build_schema(Settings(_env_file=None)).as_str())  # type: ignore[call-arg]
    changelog = CHANGELOG.read_text()
    missing = sorted(c for c in deprecated_coordinates(live) if f"`{c}`" not in changelog)
    assert not missing, f"deprecated but not in docs/graphql-changelog.md: {missing}"


OLD = """
type Query {
  workflow(id: ID!, legacy: Boolean @deprecated(reason: "Unused; removal in v0.3.")): Workflow
  old: String @deprecated(reason: "Use `name`; removal in v0.3.")
  hushed: String @deprecated(reason: "Use `name`.")
  kept: String
  legacyThing: Legacy @deprecated(reason: "Gone; removal in v0.3.")
  status: Status
}
type Workflow { id: ID! }
type Legacy { id: ID! }
enum Status { RUNNING DONE @deprecated(reason: "Use COMPLETED; removal in v0.3.") COMPLETED }
"""

CHANGELOG_TEXT = """# GraphQL changelog
## 0.3.0
### Deprecated
- `Query.notRemoved` stays for now.
### Removed
- `Query.old` (use `name`)
- `Query.workflow(legacy:)`
- `Status.DONE`
- `Query.legacyThing`
- `Legacy`
## 0.2.0
- `Query.hushed` is mentioned, not under Removed.
"""


def _check(new: str, changelog: str = CHANGELOG_TEXT) -> list[str]:
    return [str(v) for v in violations(from_sdl(OLD), from_sdl(new), changelog)]


def test_removals_deprecated_with_a_version_and_listed_are_allowed() -> None:
    new = """
    type Query { workflow(id: ID!): Workflow  hushed: String  kept: String  status: Status }
    type Workflow { id: ID! }
    enum Status { RUNNING COMPLETED }
    """
    assert _check(new) == []
    assert listed_removals(CHANGELOG_TEXT) == {
        "Query.old", "Query.workflow(legacy:)", "Status.DONE", "Query.legacyThing", "Legacy",
    }  # fmt: skip


def test_a_removal_without_deprecation_is_refused() -> None:
    new = OLD.replace("  kept: String\n", "")
    assert _check(new) == [
        "Field Query.kept was removed. (`Query.kept` was not deprecated in the last release)"
    ]
    # A changed type is a removal of the old one.
    assert _check(OLD.replace("kept: String", "kept: Int")) == [
        "Field Query.kept changed type from String to Int. "
        "(`Query.kept` was not deprecated in the last release)"
    ]


def test_a_deprecation_must_name_the_removal_and_be_listed() -> None:
    unnamed = OLD.replace("  hushed: String @deprecated", "  #")
    assert _check(unnamed) == [
        "Field Query.hushed was removed. (the deprecation of `Query.hushed` does not name "
        'the removal\'s version ("... removal in vX"))'
    ]
    unlisted = CHANGELOG_TEXT.replace("- `Query.old` (use `name`)\n", "")
    assert _check(OLD.replace("  old: String @deprecated", "  #"), unlisted) == [
        "Field Query.old was removed. (`Query.old` is not listed under Removed in "
        "docs/graphql-changelog.md)"
    ]
    # Listed elsewhere than under Removed does not count.
    assert "Query.hushed" not in listed_removals(CHANGELOG_TEXT)
    assert "Query.notRemoved" not in listed_removals(CHANGELOG_TEXT)


def test_arguments_and_enum_values_follow_the_same_rule() -> None:
    assert (
        _check(OLD.replace('legacy: Boolean @deprecated(reason: "Unused; removal in v0.3.")', ""))
        == []
    )
    assert _check(OLD.replace("id: ID!, ", "")) == [
        "Argument Query.workflow(id:) was removed. "
        "(`Query.workflow(id:)` was not deprecated in the last release)"
    ]
    assert (
        _check(OLD.replace(' DONE @deprecated(reason: "Use COMPLETED; removal in v0.3.")', ""))
        == []
    )
    assert _check(OLD.replace(" RUNNING", "")) == [
        "Enum value Status.RUNNING was removed. "
        "(`Status.RUNNING` was not deprecated in the last release)"
    ]


def test_a_type_goes_only_when_reached_through_deprecated_fields_alone() -> None:
    gone = OLD.replace("  legacyThing: Legacy", "  #").replace("type Legacy { id: ID! }", "")
    assert _check(gone) == []
    assert _check(gone, CHANGELOG_TEXT.replace("- `Legacy`\n", "")) == [
        "Legacy was removed. (`Legacy` is not listed)"
    ]
    no_workflow = OLD.replace("type Workflow { id: ID! }", "").replace("): Workflow", "): Legacy")
    problems = _check(no_workflow)
    assert (
        "Workflow was removed. (the last release reaches it through Query.workflow, "
        "not deprecated)" in problems
    )


def test_other_breaking_changes_are_never_allowed() -> None:
    required = OLD.replace("workflow(id: ID!,", "workflow(id: ID!, must: Int!,")
    assert _check(required) == [
        "A required argument Query.workflow(must:) was added. (never allowed: breaks "
        "clients at once)"
    ]
