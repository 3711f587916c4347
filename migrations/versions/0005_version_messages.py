"""a workflow version's message and author, for the editor's history

Revision ID: 0005
Revises: 0004
Create Date: 2026-12-10 12:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0005"
down_revision: str | None = "0004"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Written before rolling upgrades were promised (see flowsync.db.compat).
compatible_with_previous: bool = False


def upgrade() -> None:
    # Nullable, no default: existing versions have neither, and adding them rewrites nothing.
    op.add_column("workflow_versions", sa.Column("message", sa.Text(), nullable=True))
    op.add_column("workflow_versions", sa.Column("author", sa.Text(), nullable=True))
    op.create_check_constraint(
        op.f("ck_workflow_versions_message_length"),
        "workflow_versions",
        "char_length(message) <= 500",
    )


def downgrade() -> None:
    op.drop_constraint(
        op.f("ck_workflow_versions_message_length"), "workflow_versions", type_="check"
    )
    op.drop_column("workflow_versions", "author")
    op.drop_column("workflow_versions", "message")
