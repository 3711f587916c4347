"""Plain fields completed without graphql-core's per-field machinery.

A field that is a plain attribute of its object (a Strawberry field without a resolver,
arguments, extensions or error handlers) needs none of what graphql-core builds for a
field: no resolve info (the attribute is read without it), no argument values, no path,
no walk through complete_value's cases. graphql-core builds all of it anyway, and that
is most of the cost of a long list of small objects: a batch start's 1,000 results
spent more CPU in completing their 4,000 fields than in starting the runs.

Two shortcuts, both falling back to graphql-core's own path whenever anything is not
plain (a null where the type forbids one, an exception, an awaitable, a value the type
refuses, `@defer`/`@stream`, a field with a resolver or arguments, an abstract type, a
list), so that results, errors and their paths are exactly as before:
- a plain leaf field (scalar or enum) is read and completed as a leaf directly;
- a list of objects whose selection holds only plain leaves and plain objects of the
  same kind is completed by a plan made once per list: each item is one dict built by
  reading attributes. An item the plan cannot complete sends the whole list back to
  graphql-core (reading an attribute twice is harmless: plain fields have no effects).
A plan reads a field as an attribute (as Strawberry's resolver for a plain field does)
and completes a leaf with its type's own `coerce_output_value` (an enum's by a table of
its members' names). Every leaf is still measured for the result budget
(flowsync/schema/budget.py): in `complete_leaf_value` on the general path, by
`_leaf_cost` as a plan completes it, checked after each item; once the result is
abandoned (`_over`) the general path takes over and resolves nothing more."""

from __future__ import annotations

import operator
from collections.abc import Callable
from typing import Any, ClassVar, cast

from graphql import (
    GraphQLField,
    GraphQLLeafType,
    GraphQLNonNull,
    GraphQLObjectType,
    GraphQLOutputType,
    is_leaf_type,
    is_object_type,
)
from graphql.pyutils import Undefined
from graphql.type.introspection import TypeNameMetaFieldDef
from strawberry.schema.schema import StrawberryGraphQLCoreExecutionContext
from strawberry.schema.schema_converter import CustomGraphQLEnumType, GraphQLCoreConverter

# The resolver Strawberry gives a field that is a plain attribute: it reads the
# attribute, ignoring its info and arguments (strawberry/schema/schema_converter.py).
_BASIC_RESOLVER = "_get_basic_result"
# Per field definition: (how to read it, its leaf type), or None for the general path.
_PLAN = "_flowsync_plain_leaf"
_TYPENAME_LEAF: Any = cast(Any, TypeNameMetaFieldDef.type).of_type  # String, of String!


class _Irregular(Exception):
    """An item a list plan cannot complete: graphql-core completes the list instead."""


_IRREGULAR = _Irregular()


def _plain_resolver(field: GraphQLField) -> Callable[..., Any] | None:
    resolve = field.resolve
    if field.args or resolve is None or getattr(resolve, "__name__", "") != _BASIC_RESOLVER:
        return None
    return resolve


def _reader(field: GraphQLField) -> Callable[[Any], Any] | None:
    """How to read a plain field from its object (None: not plain): the attribute, as
    Strawberry's resolver does (StrawberryField.get_result reads it with the schema's
    default resolver, getattr) but without its two calls."""
    resolve = _plain_resolver(field)
    if resolve is None:
        return None
    definition = field.extensions.get(GraphQLCoreConverter.DEFINITION_BACKREF)
    if (
        definition is not None
        and getattr(definition, "base_resolver", True) is None
        and getattr(definition, "default_resolver", None) is getattr
    ):
        return operator.attrgetter(definition.python_name)
    return lambda source: resolve(source, None)


def _serializer(kind: GraphQLLeafType) -> Callable[[Any], Any]:
    """`kind.coerce_output_value`, as graphql-core completes a leaf with (it is an error
    when that gives null or Undefined); for a Strawberry enum, each member's name looked
    up, where its own compares the value with each of the enum's values in turn."""
    coerce = kind.coerce_output_value
    if not isinstance(kind, CustomGraphQLEnumType):
        return coerce
    members: Any = kind.wrapped_cls
    names = {member: coerce(member) for member in members}

    def name_of(value: Any) -> Any:
        return names[value] if type(value) is members else coerce(value)

    return name_of


def _leaf_plan(field: GraphQLField) -> tuple[Any, GraphQLLeafType] | None:
    read = _reader(field)
    kind = field.type.of_type if isinstance(field.type, GraphQLNonNull) else field.type
    return (read, kind) if read is not None and is_leaf_type(kind) else None


# One field of an object plan: response name, how to read it from the object (None:
# __typename), whether it is non-null, how to complete its leaf value (None for an
# object), and the object's plan.
_Entry = tuple[str, Any, bool, Any, "_ObjectPlan | None"]


class _ObjectPlan:
    """How to complete objects of one type for one selection."""

    __slots__ = ("entries", "is_type_of", "type")

    def __init__(self, kind: GraphQLObjectType, entries: list[_Entry]) -> None:
        self.type = kind
        self.is_type_of = kind.is_type_of
        self.entries = entries


class PlainLeaves(StrawberryGraphQLCoreExecutionContext):
    """An executor that completes plain fields directly (see the module)."""

    # Set once the result is abandoned (see budget.BoundedResults).
    _over = False
    # How much a completed leaf adds to the result's measure, and the measure so far,
    # where a subclass bounds results (budget.BoundedResults); None: nothing measured.
    _leaf_cost: ClassVar[Callable[[Any], int] | None] = None
    _used = 0

    def execute_field(
        self,
        parent_type: GraphQLObjectType,
        source: Any,
        field_details_list: Any,
        path: Any,
        position_context: Any,
    ) -> Any:
        node = field_details_list[0].node
        if len(field_details_list) == 1 and not node.arguments and self._no_middleware():
            name = node.name.value
            if name == "__typename":
                return self.complete_leaf_value(_TYPENAME_LEAF, parent_type.name)
            field = parent_type.fields.get(name)
            if field is not None:
                plan = field.__dict__.get(_PLAN, False)
                if plan is False:
                    plan = field.__dict__[_PLAN] = _leaf_plan(field)
                if plan is not None:
                    try:
                        value = plan[0](source)
                        if not (
                            value is None
                            or isinstance(value, Exception)
                            or self.is_awaitable(value)
                        ):
                            return self.complete_leaf_value(plan[1], value)
                    except Exception:  # noqa: S110 (graphql-core's path reports it)
                        pass
        return super().execute_field(
            parent_type, source, field_details_list, path, position_context
        )

    def complete_iterable_value(
        self,
        item_type: GraphQLOutputType,
        field_details_list: Any,
        info: Any,
        path: Any,
        items: Any,
        position_context: Any,
    ) -> Any:
        if (
            position_context is None
            and isinstance(items, list | tuple)
            and not any(details.node.directives for details in field_details_list)
        ):
            non_null = isinstance(item_type, GraphQLNonNull)
            kind = cast(Any, item_type).of_type if non_null else item_type
            plan = self._object_plan(kind, field_details_list) if is_object_type(kind) else None
            if plan is not None:
                completed: list[dict[str, Any] | None] = []
                mark = self._measured()
                cost = type(self)._leaf_cost
                try:
                    for item in items:
                        if item is None:
                            if non_null:
                                raise _IRREGULAR
                            completed.append(None)
                        else:
                            completed.append(self._complete_plain(plan, item, info, cost))
                        if cost is not None:
                            self._check_measure()
                            if self._over:
                                raise _IRREGULAR
                except Exception:  # graphql-core's path reports it
                    self._measured(mark)  # it measures these leaves again
                else:
                    return completed
        return super().complete_iterable_value(
            item_type, field_details_list, info, path, items, position_context
        )

    def _complete_plain(
        self, plan: _ObjectPlan, item: Any, info: Any, cost: Callable[[Any], int] | None
    ) -> dict[str, Any]:
        """One item as graphql-core completes it; each leaf measured by `cost` (None:
        not measured)."""
        if plan.is_type_of is not None:
            fits = plan.is_type_of(item, info)
            if fits is not True:  # False, or an awaitable
                raise _IRREGULAR
        out: dict[str, Any] = {}
        for name, read, non_null, complete, sub in plan.entries:
            if read is None:
                done: Any = plan.type.name
            else:
                value = read(item)
                if value is None:
                    if non_null:
                        raise _IRREGULAR
                    out[name] = None
                    continue
                if isinstance(value, Exception) or self.is_awaitable(value):
                    raise _IRREGULAR
                if sub is not None:
                    out[name] = self._complete_plain(sub, value, info, cost)
                    continue
                done = complete(value)
                if done is None or done is Undefined:  # graphql-core's error
                    raise _IRREGULAR
            out[name] = done
            if cost is not None:
                self._used += cost(done)
        return out

    def _object_plan(self, kind: GraphQLObjectType, field_details_list: Any) -> _ObjectPlan | None:
        """The plan for objects of `kind` under these field nodes, made once per
        execution (None: not plain)."""
        plans: dict[Any, Any] = self.__dict__.setdefault("_plain_plans", {})
        key = (kind, id(field_details_list))
        if key not in plans:  # the list is kept, so that its id is not reused
            plans[key] = (field_details_list, self._make_plan(kind, field_details_list))
        return plans[key][1]  # type: ignore[no-any-return]

    def _make_plan(self, kind: GraphQLObjectType, field_details_list: Any) -> _ObjectPlan | None:
        if not self._no_middleware():
            return None
        grouped, deferred, _forbidden = self.collect_subfields(kind, field_details_list)
        if deferred:
            return None
        entries: list[_Entry] = []
        for name, details in grouped.items():
            if any(d.node.directives for d in details):
                return None
            field_name = details[0].node.name.value
            if field_name == "__typename":
                entries.append((name, None, True, None, None))
                continue
            field = kind.fields.get(field_name)
            read = _reader(field) if field is not None else None
            if field is None or read is None:
                return None
            non_null = isinstance(field.type, GraphQLNonNull)
            inner = field.type.of_type if non_null else field.type
            if is_leaf_type(inner):
                entries.append((name, read, non_null, _serializer(inner), None))
            elif is_object_type(inner):
                sub = self._object_plan(inner, details)
                if sub is None:
                    return None
                entries.append((name, read, non_null, None, sub))
            else:  # a list, an interface, a union
                return None
        return _ObjectPlan(kind, entries)

    def _measured(self, back_to: int | None = None) -> int:
        """How much of the result is measured so far (see budget.BoundedResults), after
        setting it `back_to` that when given. Nothing is measured here."""
        return 0

    def _check_measure(self) -> None:
        """After a list item's leaves were measured (`_leaf_cost`): abandon the result
        when it is over its bound (see budget.BoundedResults)."""

    def _no_middleware(self) -> bool:
        middleware = self.middleware_manager
        return middleware is None or not middleware.middlewares
