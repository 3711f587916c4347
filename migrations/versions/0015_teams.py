"""teams: members (a JWT subject's role in an owner's team) and api_keys.role

Revision ID: 0015_teams
Revises: 0012_priorities
Create Date: 2026-12-05 22:00:00.000000
"""

from collections.abc import Sequence

import sqlalchemy as sa
from alembic import op

revision: str = "0015_teams"
down_revision: str | None = "0012_priorities"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# A new table and a column with a default (no table rewrite): the previous release's code
# neither reads them nor breaks them (a key it creates is admin, as every key was). It does
# not enforce roles, though: a key or member given a lower role is refused what its role
# does not allow only by processes of this release, so give lower roles once every
# process runs it.
compatible_with_previous: bool = True

_ROLES = "role IN ('viewer', 'operator', 'editor', 'admin')"


def upgrade() -> None:
    op.add_column(
        "api_keys",
        sa.Column("role", sa.Text(), server_default=sa.text("'admin'"), nullable=False),
    )
    op.create_check_constraint(op.f("ck_api_keys_role"), "api_keys", _ROLES)
    op.create_table(
        "members",
        sa.Column("id", sa.UUID(), server_default=sa.text("gen_random_uuid()"), nullable=False),
        sa.Column("owner_id", sa.UUID(), nullable=False),
        sa.Column("subject", sa.Text(), nullable=False),
        sa.Column("role", sa.Text(), nullable=False),
        sa.Column(
            "created_at",
            sa.DateTime(timezone=True),
            server_default=sa.text("now()"),
            nullable=False,
        ),
        sa.Column("added_by", sa.Text(), nullable=False),
        sa.CheckConstraint(_ROLES, name=op.f("ck_members_role")),
        sa.ForeignKeyConstraint(
            ["owner_id"],
            ["owners.id"],
            name=op.f("fk_members_owner_id_owners"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_members")),
        sa.UniqueConstraint("owner_id", "subject", name="uq_members_owner_subject"),
    )
    # Every owner becomes a one-member team: an owner made for a JWT subject
    # (`<issuer>|<sub>`) gets that subject as its admin; the CLI's owners (`local:<name>`)
    # have keys only, and their keys (all admin, by the default above) stay admin.
    op.execute(
        "INSERT INTO members (owner_id, subject, role, added_by) "
        "SELECT id, 'jwt:' || subject, 'admin', 'migration' FROM owners "
        "WHERE subject NOT LIKE 'local:%' AND position('|' in subject) > 0"
    )


def downgrade() -> None:
    op.drop_table("members")
    op.drop_constraint(op.f("ck_api_keys_role"), "api_keys", type_="check")
    op.drop_column("api_keys", "role")
