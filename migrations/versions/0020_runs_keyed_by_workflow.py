"""a run's owner and version are held by its workflow's key, not keys of their own

Revision ID: 0020_runs_keyed_by_workflow
Revises: 0019_time_ordered_run_ids
Create Date: 2026-12-06 20:40:00.000000

Every execution is inserted with the owner and the current version of the workflow it
names, read in the same statement or transaction from that workflow (filtered by the
owner: `w.owner_id = $2`), and a workflow never changes owner; versions are never deleted
but with their workflow. So the key executions.workflow_id (kept, ON DELETE CASCADE)
already implies the other two: the workflow exists, so do its owner and versions, and an
owner's deletion still takes its runs, through its workflows' cascade. The two keys only
cost a check per run started: 7 of a batch start's ~62 ms per 1,000 runs (auto_explain).
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0020_runs_keyed_by_workflow"
down_revision: str | None = "0019_time_ordered_run_ids"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# The previous release writes runs as this one does; it relies on neither key.
compatible_with_previous: bool = True

KEYS = (
    ("fk_executions_owner_id_owners", "owner_id", "owners", "CASCADE"),
    ("fk_executions_workflow_version_id_workflow_versions", "workflow_version_id",
     "workflow_versions", None),
)  # fmt: skip


def upgrade() -> None:
    for name, _, _, _ in KEYS:
        op.drop_constraint(name, "executions", type_="foreignkey")


def downgrade() -> None:
    for name, column, target, ondelete in KEYS:
        op.create_foreign_key(name, "executions", target, [column], ["id"], ondelete=ondelete)
