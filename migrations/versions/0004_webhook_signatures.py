"""webhook signatures seen, so that a signed delivery is accepted once

Revision ID: 0004
Revises: 0003
Create Date: 2026-12-04 18:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# Written before rolling upgrades were promised (see flowsync.db.compat).
compatible_with_previous: bool = False


def upgrade() -> None:
    op.create_table(
        "webhook_signatures",
        sa.Column("trigger_id", sa.UUID(), nullable=False),
        sa.Column("signature", sa.Text(), nullable=False),
        sa.Column("expires_at", sa.DateTime(timezone=True), nullable=False),
        sa.ForeignKeyConstraint(
            ["trigger_id"], ["triggers.id"],
            name=op.f("fk_webhook_signatures_trigger_id_triggers"), ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("trigger_id", "signature", name=op.f("pk_webhook_signatures")),
    )  # fmt: skip
    op.create_index(
        "ix_webhook_signatures_expires_at", "webhook_signatures", ["expires_at"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_webhook_signatures_expires_at", table_name="webhook_signatures")
    op.drop_table("webhook_signatures")
