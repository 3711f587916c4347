"""traces: executions.trace_context

Revision ID: 0016_trace_context
Revises: 0015_teams
Create Date: 2026-12-05 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0016_trace_context"
down_revision: str | None = "0015_teams"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# One nullable column (no table rewrite): the previous release's code neither reads nor
# writes it; its workers leave the steps of traced runs untraced, nothing worse.
compatible_with_previous: bool = True


def upgrade() -> None:
    # The W3C traceparent of the run's execution span; NULL: started with tracing off.
    op.add_column("executions", sa.Column("trace_context", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("executions", "trace_context")
