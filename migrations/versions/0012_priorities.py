"""priorities and fairness: executions.priority, concurrency_key and its limit;
triggers.priority

Revision ID: 0012_priorities
Revises: 0011
Create Date: 2026-12-05 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0012_priorities"
down_revision: str | None = "0011"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Nullable columns and one with a default (no table rewrite), and partial indexes: the
# previous release's code neither reads nor writes them (its jobs keep priority 0, and
# its starts leave concurrency_key NULL). Save workflows with a concurrencyKey once every
# process runs this release: an older process would start such runs unkeyed.
compatible_with_previous: bool = True


def upgrade() -> None:
    op.add_column(
        "executions",
        sa.Column("priority", sa.SmallInteger(), server_default=sa.text("0"), nullable=False),
    )
    op.add_column("executions", sa.Column("concurrency_key", sa.Text(), nullable=True))
    op.add_column("executions", sa.Column("concurrency_key_limit", sa.Integer(), nullable=True))
    op.create_check_constraint(
        op.f("ck_executions_priority"), "executions", "priority BETWEEN -100 AND 100"
    )
    op.add_column("triggers", sa.Column("priority", sa.SmallInteger(), nullable=True))
    op.create_check_constraint(
        op.f("ck_triggers_priority"),
        "triggers",
        "priority IS NULL OR priority BETWEEN -100 AND 100",
    )
    # A key's running runs counted, and its oldest waiting run found, per workflow.
    op.create_index(
        "ix_executions_key_running",
        "executions",
        ["workflow_id", "concurrency_key"],
        unique=False,
        postgresql_where=sa.text("concurrency_key IS NOT NULL AND status = 'RUNNING'"),
    )
    op.create_index(
        "ix_executions_key_pending",
        "executions",
        ["workflow_id", "concurrency_key", "created_at", "id"],
        unique=False,
        postgresql_where=sa.text("concurrency_key IS NOT NULL AND status = 'PENDING'"),
    )


def downgrade() -> None:
    op.drop_index("ix_executions_key_pending", table_name="executions")
    op.drop_index("ix_executions_key_running", table_name="executions")
    op.drop_constraint(op.f("ck_triggers_priority"), "triggers", type_="check")
    op.drop_column("triggers", "priority")
    op.drop_constraint(op.f("ck_executions_priority"), "executions", type_="check")
    op.drop_column("executions", "concurrency_key_limit")
    op.drop_column("executions", "concurrency_key")
    op.drop_column("executions", "priority")
