"""a trigger's concurrency limit: triggers.max_concurrent_runs, and an index of its
active runs

Revision ID: 0009
Revises: 0008
Create Date: 2026-12-05 09:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0009"
down_revision: str | None = "0008"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# A nullable column (its check passes the NULL every older row and older write has) and
# an index: the previous release's code neither reads nor writes them. Its processes do
# not honour a limit, though (their starts and ends ignore it); set maxConcurrentRuns once
# every process runs this release.
compatible_with_previous: bool = True


def upgrade() -> None:
    op.add_column("triggers", sa.Column("max_concurrent_runs", sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f("ck_triggers_max_concurrent_runs"),
        "triggers",
        "max_concurrent_runs IS NULL OR max_concurrent_runs > 0",
    )
    # A limited trigger's running runs are counted, and its oldest waiting run found
    # (a backfill's, made in one transaction, by fire time), by these at every start and
    # end of its runs.
    op.create_index(
        "ix_executions_trigger_running",
        "executions",
        ["trigger_id"],
        unique=False,
        postgresql_where=sa.text("trigger_id IS NOT NULL AND status = 'RUNNING'"),
    )
    op.create_index(
        "ix_executions_trigger_pending",
        "executions",
        ["trigger_id", "created_at", sa.text("(trigger_data ->> 'scheduledAt')"), "id"],
        unique=False,
        postgresql_where=sa.text("trigger_id IS NOT NULL AND status = 'PENDING'"),
    )


def downgrade() -> None:
    op.drop_index("ix_executions_trigger_pending", table_name="executions")
    op.drop_index("ix_executions_trigger_running", table_name="executions")
    op.drop_constraint(op.f("ck_triggers_max_concurrent_runs"), "triggers", type_="check")
    op.drop_column("triggers", "max_concurrent_runs")
