"""executions by trigger and audit entries by actor, for the dashboard's filters

Revision ID: 0006
Revises: 0005
Create Date: 2026-12-12 10:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0006"
down_revision: str | None = "0005"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Written before rolling upgrades were promised (see flowsync.db.compat).
compatible_with_previous: bool = False


def upgrade() -> None:
    # A trigger's runs, newest first: the `triggerId` filter of executions. Also keeps
    # deleting a trigger (ON DELETE SET NULL) from scanning every execution.
    op.create_index(
        "ix_executions_trigger_page",
        "executions",
        ["trigger_id", sa.literal_column("created_at DESC"), sa.literal_column("id DESC")],
        unique=False,
        postgresql_where=sa.text("trigger_id IS NOT NULL"),
    )
    # One actor's audit entries, newest first: the `actor` filter.
    op.create_index(
        "ix_audit_log_actor",
        "audit_log",
        ["owner_id", "actor", sa.literal_column("id DESC")],
        unique=False,
    )


def downgrade() -> None:
    op.drop_index("ix_audit_log_actor", table_name="audit_log")
    op.drop_index("ix_executions_trigger_page", table_name="executions")
