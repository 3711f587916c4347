"""indexes for retention: the age scans, and the foreign keys a deleted run clears

Revision ID: 0008
Revises: 0007
Create Date: 2026-12-04 21:40:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0008"
down_revision: str | None = "0007"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Indexes only.
compatible_with_previous: bool = True


def upgrade() -> None:
    # Retention's scans, oldest first: finished runs, dead letters, audit entries.
    op.create_index(
        "ix_executions_finished",
        "executions",
        ["finished_at"],
        unique=False,
        postgresql_where=sa.text("status IN ('COMPLETED', 'FAILED', 'CANCELLED')"),
    )
    op.create_index("ix_dead_letters_created", "dead_letters", ["created_at"], unique=False)
    op.create_index("ix_audit_log_at", "audit_log", ["at"], unique=False)
    # Deleting a run fires its foreign keys' actions once per deleted row; without these
    # each would scan a whole table (retries of the run, steps that reused its steps,
    # cron firings that started it, dead letters of its steps).
    op.create_index(
        "ix_executions_retry_of",
        "executions",
        ["retry_of_id"],
        unique=False,
        postgresql_where=sa.text("retry_of_id IS NOT NULL"),
    )
    op.create_index(
        "ix_step_executions_reused_from",
        "step_executions",
        ["reused_from_id"],
        unique=False,
        postgresql_where=sa.text("reused_from_id IS NOT NULL"),
    )
    op.create_index(
        "ix_trigger_firings_execution",
        "trigger_firings",
        ["execution_id"],
        unique=False,
        postgresql_where=sa.text("execution_id IS NOT NULL"),
    )
    op.create_index("ix_dead_letters_step", "dead_letters", ["step_id"], unique=False)


def downgrade() -> None:
    op.drop_index("ix_dead_letters_step", table_name="dead_letters")
    op.drop_index("ix_trigger_firings_execution", table_name="trigger_firings")
    op.drop_index("ix_step_executions_reused_from", table_name="step_executions")
    op.drop_index("ix_executions_retry_of", table_name="executions")
    op.drop_index("ix_audit_log_at", table_name="audit_log")
    op.drop_index("ix_dead_letters_created", table_name="dead_letters")
    op.drop_index("ix_executions_finished", table_name="executions")
