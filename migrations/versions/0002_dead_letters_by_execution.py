"""dead letters by execution

Revision ID: 0002
Revises: 0001
Create Date: 2026-12-01 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0002"
down_revision: str | None = "0001"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Written before rolling upgrades were promised (see flowsync.db.compat).
compatible_with_previous: bool = False


def upgrade() -> None:
    # An execution's dead letters, newest first (the `executionId` filter; it also keeps
    # deleting an execution from scanning every dead letter for its foreign key).
    op.create_index(
        "ix_dead_letters_execution",
        "dead_letters",
        ["execution_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_dead_letters_execution", table_name="dead_letters")
