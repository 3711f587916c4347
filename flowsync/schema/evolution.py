"""The rule that keeps the GraphQL schema safe to evolve (docs/graphql-changelog.md):
against the schema of the last release, a breaking change (graphql-core's
`find_breaking_changes`) is allowed only where clients were warned first. The field,
argument, input field or enum value removed or changed must have been deprecated in
that release, with a reason that names the removal's version ("... removal in v0.3"), and
be listed under a "Removed" heading of the changelog. A type may go only when the
changelog lists it and the release reached it only through deprecated fields and
arguments. Any other breaking change (a required argument added, a type's kind changed,
a union member or an interface dropped) is never allowed."""

from __future__ import annotations

import re
from dataclasses import dataclass

from graphql import (
    GraphQLEnumType,
    GraphQLInputObjectType,
    GraphQLInterfaceType,
    GraphQLObjectType,
    GraphQLSchema,
    get_named_type,
)
from graphql.utilities import BreakingChangeType, find_breaking_changes

# The schema coordinate a breaking change is about, from graphql-core's description.
_SUBJECTS = [
    (BreakingChangeType.FIELD_REMOVED, re.compile(r"^Field (\w+\.\w+) was removed\.$")),
    (BreakingChangeType.FIELD_CHANGED_KIND, re.compile(r"^Field (\w+\.\w+) changed type")),
    (BreakingChangeType.ARG_REMOVED, re.compile(r"^Argument (\w+\.\w+\(\w+:\)) was removed\.$")),
    (BreakingChangeType.ARG_CHANGED_KIND, re.compile(r"^Argument (\w+\.\w+\(\w+:\)) has changed")),
    (BreakingChangeType.VALUE_REMOVED_FROM_ENUM, re.compile(r"^Enum value (\w+\.\w+) was ")),
    (BreakingChangeType.TYPE_REMOVED, re.compile(r"^(\w+) was removed\.$")),
]
_REMOVAL = re.compile(r"removal in v\d", re.IGNORECASE)
_HEADING = re.compile(r"^(#+)\s+(.*)$")
_ENTRY = re.compile(r"^\s*[-*]\s+`([^`]+)`")


@dataclass(frozen=True, slots=True)
class Violation:
    """A breaking change the policy does not allow, and why."""

    change: str
    reason: str

    def __str__(self) -> str:
        return f"{self.change} ({self.reason})"


def listed_removals(changelog: str) -> set[str]:
    """The schema coordinates listed for removal: list items opening with a coordinate
    in backticks (`- \\`Query.old\\` ...`) under a heading that starts with "Removed"."""
    found: set[str] = set()
    inside: int | None = None  # the level of the "Removed" heading we are under
    for line in changelog.splitlines():
        heading = _HEADING.match(line)
        if heading is not None:
            level = len(heading.group(1))
            if heading.group(2).strip().lower().startswith("removed"):
                inside = level
            elif inside is not None and level <= inside:
                inside = None
            continue
        entry = _ENTRY.match(line)
        if inside is not None and entry is not None:
            found.add(entry.group(1))
    return found


def deprecation(schema: GraphQLSchema, coordinate: str) -> str | None:
    """The deprecation reason of a field (`Type.field`), an argument
    (`Type.field(arg:)`), an input field or an enum value (`Type.NAME`) in `schema`, or
    None when it is not deprecated (or does not exist)."""
    match = re.fullmatch(r"(\w+)\.(\w+)(?:\((\w+):\))?", coordinate)
    if match is None:
        return None
    type_name, member, argument = match.groups()
    named = schema.type_map.get(type_name)
    if isinstance(named, GraphQLEnumType):
        value = named.values.get(member)
        return value.deprecation_reason if value is not None and not argument else None
    if isinstance(named, GraphQLInputObjectType):
        input_field = named.fields.get(member)
        return input_field.deprecation_reason if input_field and not argument else None
    if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
        field = named.fields.get(member)
        if field is None:
            return None
        if argument is None:
            reason: str | None = field.deprecation_reason
            return reason
        arg = field.args.get(argument)
        return arg.deprecation_reason if arg is not None else None
    return None


def deprecated_coordinates(schema: GraphQLSchema) -> set[str]:
    """Every deprecated field, argument, input field and enum value of `schema`."""
    found: set[str] = set()
    for name, named in schema.type_map.items():
        if name.startswith("__"):
            continue
        if isinstance(named, GraphQLEnumType):
            found |= {f"{name}.{v}" for v, d in named.values.items() if d.deprecation_reason}
        elif isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in named.fields.items():
                if field.deprecation_reason:
                    found.add(f"{name}.{field_name}")
                found |= {
                    f"{name}.{field_name}({a}:)"
                    for a, arg in field.args.items()
                    if arg.deprecation_reason
                }
        elif isinstance(named, GraphQLInputObjectType):
            found |= {
                f"{name}.{f}" for f, field in named.fields.items() if field.deprecation_reason
            }
    return found


def _live_references(schema: GraphQLSchema, type_name: str) -> list[str]:
    """Where `schema` uses the type through something not deprecated."""
    found: list[str] = []
    for name, named in schema.type_map.items():
        if name.startswith("__") or name == type_name:
            continue
        if isinstance(named, GraphQLObjectType | GraphQLInterfaceType):
            for field_name, field in named.fields.items():
                if field.deprecation_reason:
                    continue  # its arguments go with it
                if get_named_type(field.type).name == type_name:
                    found.append(f"{name}.{field_name}")
                found += [
                    f"{name}.{field_name}({a}:)"
                    for a, arg in field.args.items()
                    if not arg.deprecation_reason and get_named_type(arg.type).name == type_name
                ]
        elif isinstance(named, GraphQLInputObjectType):
            found += [
                f"{name}.{f}"
                for f, field in named.fields.items()
                if not field.deprecation_reason and get_named_type(field.type).name == type_name
            ]
    return found


def violations(old: GraphQLSchema, new: GraphQLSchema, changelog: str) -> list[Violation]:
    """The breaking changes from `old` (the last release) to `new` that the policy does
    not allow; empty when `new` may ship."""
    listed = listed_removals(changelog)
    out: list[Violation] = []
    for change in find_breaking_changes(old, new):
        subject = next(
            (m.group(1) for kind, p in _SUBJECTS if kind is change.type
             if (m := p.match(change.description)) is not None),
            None,
        )  # fmt: skip
        if subject is None:
            out.append(Violation(change.description, "never allowed: breaks clients at once"))
            continue
        if change.type is BreakingChangeType.TYPE_REMOVED:
            uses = _live_references(old, subject)
            if uses:
                out.append(
                    Violation(
                        change.description,
                        f"the last release reaches it through {', '.join(uses[:3])}, "
                        "not deprecated",
                    )
                )
            elif subject not in listed:
                out.append(Violation(change.description, f"`{subject}` is not listed"))
            continue
        reason = deprecation(old, subject)
        if reason is None:
            out.append(
                Violation(change.description, f"`{subject}` was not deprecated in the last release")
            )
        elif _REMOVAL.search(reason) is None:
            out.append(
                Violation(
                    change.description,
                    f"the deprecation of `{subject}` does not name the removal's version "
                    '("... removal in vX")',
                )
            )
        elif subject not in listed:
            out.append(
                Violation(
                    change.description,
                    f"`{subject}` is not listed under Removed in docs/graphql-changelog.md",
                )
            )
    return out
