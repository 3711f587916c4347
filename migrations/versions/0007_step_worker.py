"""the worker that ran each step: step_executions.worker_id and worker_host

Revision ID: 0007
Revises: 0006
Create Date: 2026-12-04 21:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0007"
down_revision: str | None = "0006"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Two nullable columns: the previous release's code neither reads nor needs them.
compatible_with_previous: bool = True


def upgrade() -> None:
    # Nullable, no default: adding them rewrites nothing (a catalog change only).
    op.add_column("step_executions", sa.Column("worker_id", sa.Text(), nullable=True))
    op.add_column("step_executions", sa.Column("worker_host", sa.Text(), nullable=True))


def downgrade() -> None:
    op.drop_column("step_executions", "worker_host")
    op.drop_column("step_executions", "worker_id")
