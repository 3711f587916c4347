"""What a caller has left of its request budget, in every result's `extensions.rateLimit`
and in the `rateLimit` query field (as GitHub's and Shopify's GraphQL APIs report it)."""

from __future__ import annotations

from collections.abc import Iterator
from datetime import datetime

import strawberry
from strawberry.extensions import SchemaExtension

from flowsync.rate_limits import RateBudget


@strawberry.type(name="RateLimit")
class RateLimitType:
    """The caller's request budget once this operation was counted, and the cost of this
    operation. Every request counts one against `limit` per window (the per-owner rate
    limit, `FLOWSYNC_RATE_LIMIT_PER_PRINCIPAL`); an operation may cost at most `maxCost`
    objects (`FLOWSYNC_MAX_QUERY_COST`)."""

    limit: int = strawberry.field(description="Requests the owner may send per window.")
    remaining: int = strawberry.field(description="Requests left in the current window.")
    used: int = strawberry.field(description="Requests counted in the current window.")
    reset_at: datetime = strawberry.field(
        description="When the window next gives requests back (it slides: requests "
        "counted a window ago stop counting a few at a time)."
    )
    cost: int = strawberry.field(
        description="The cost of this operation: the objects it can return."
    )
    max_cost: int = strawberry.field(description="The most one operation may cost.")

    @classmethod
    def of(cls, budget: RateBudget, cost: int, max_cost: int) -> RateLimitType:
        return cls(
            limit=budget.limit, remaining=budget.remaining, used=budget.used,
            reset_at=budget.reset_time(), cost=cost, max_cost=max_cost,
        )  # fmt: skip


class RateLimitReport(SchemaExtension):
    """Puts the caller's budget (`flowsync.resolvers.context.Context.rate_budget`) in
    `extensions.rateLimit` of the operation's results: `{limit, remaining, used,
    resetAt}`."""

    def on_operation(self) -> Iterator[None]:
        context = self.execution_context
        budget = getattr(context.context, "rate_budget", None)
        if isinstance(budget, RateBudget):
            context.extensions_results["rateLimit"] = budget.as_json()
        yield
