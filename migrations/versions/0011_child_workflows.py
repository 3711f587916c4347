"""child workflows: executions.parent_execution_id, parent_step_id and workflow_depth

Revision ID: 0011
Revises: 0010
Create Date: 2026-12-05 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0011"
down_revision: str | None = "0010"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Nullable columns and one with a default (no table rewrite), and an index: the previous
# release's code neither reads nor writes them. Its workers do not run `workflow` nodes,
# though; save workflows that use them once every process runs this release.
compatible_with_previous: bool = True


def upgrade() -> None:
    op.add_column(
        "executions",
        sa.Column(
            "parent_execution_id",
            sa.UUID(),
            sa.ForeignKey(
                "executions.id",
                name=op.f("fk_executions_parent_execution_id_executions"),
                ondelete="SET NULL",
            ),
            nullable=True,
        ),
    )
    op.add_column("executions", sa.Column("parent_step_id", sa.UUID(), nullable=True))
    op.add_column(
        "executions",
        sa.Column("workflow_depth", sa.Integer(), server_default=sa.text("0"), nullable=False),
    )
    # A run's children, found by a cancel and by the APIs' childExecutions.
    op.create_index(
        "ix_executions_parent",
        "executions",
        ["parent_execution_id"],
        unique=False,
        postgresql_where=sa.text("parent_execution_id IS NOT NULL"),
    )


def downgrade() -> None:
    op.drop_index("ix_executions_parent", table_name="executions")
    op.drop_column("executions", "workflow_depth")
    op.drop_column("executions", "parent_step_id")
    op.drop_column("executions", "parent_execution_id")
