"""signals: what is sent to an execution for its wait and approval steps

Revision ID: 0010
Revises: 0009
Create Date: 2026-12-05 17:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision: str = "0010"
down_revision: str | None = "0009"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# A new table the previous release neither reads nor writes. Its workers do not know the
# wait and approval node types, so a workflow using them should be saved only once every
# process runs this release (an older worker fails such a step as an unknown type).
compatible_with_previous: bool = True


def upgrade() -> None:
    op.create_table(
        "signals",
        sa.Column("id", sa.BigInteger(), autoincrement=True, nullable=False),
        sa.Column("execution_id", sa.UUID(), nullable=False),
        sa.Column("name", sa.Text(), nullable=False),
        sa.Column(
            "payload",
            postgresql.JSONB(astext_type=sa.Text()),
            server_default=sa.text("'{}'::jsonb"),
            nullable=False,
        ),
        sa.Column("actor", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("taken_at", sa.DateTime(timezone=True), nullable=True),
        sa.Column("node_id", sa.Text(), nullable=True),
        sa.ForeignKeyConstraint(
            ["execution_id"],
            ["executions.id"],
            name=op.f("fk_signals_execution_id_executions"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_signals")),
    )
    op.create_index(
        "ix_signals_kept",
        "signals",
        ["execution_id", "name", "id"],
        unique=False,
        postgresql_where=sa.text("taken_at IS NULL"),
    )
    op.create_index("ix_signals_execution", "signals", ["execution_id", "id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_signals_execution", table_name="signals")
    op.drop_index("ix_signals_kept", table_name="signals")
    op.drop_table("signals")
