"""a workflow's runs and an owner's audit entries go with them through triggers, not keys

Revision ID: 0021_runs_and_audit_by_trigger
Revises: 0020_runs_keyed_by_workflow
Create Date: 2026-12-06 22:30:00.000000

Two foreign keys were checked once per row inserted, always against the same parent row:
executions.workflow_id (every run started) and audit_log.owner_id (every audit entry, one
per run started). Each check is a query of its own that locks the parent row FOR KEY
SHARE; with two batch starts in flight, both lock the same workflow and owner rows
thousands of times. perf over a batch-start benchmark put the after-row triggers that do
it at 14 % of the database server's CPU. What the keys also did, deleting a workflow's runs
and an owner's entries with them, statement-level triggers now do, once per DELETE, as
migration 0018 does for a run's children.

What the checks guaranteed, that no run names a workflow a concurrent deletion removes, a
start now takes itself: it reads its workflow FOR KEY SHARE (once per start or batch, not
per run), so a deletion of that workflow waits for it and its trigger then sees the runs
it committed. Audit entries are written in the transaction of the change they describe,
which writes or locks a row of the owner's in the same way (its runs' workflow, a trigger,
a key). Nothing in FlowSync deletes a workflow or an owner row (workflows are deleted by
marking them); an operator's DELETE is what these triggers serve.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0021_runs_and_audit_by_trigger"
down_revision: str | None = "0020_runs_keyed_by_workflow"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# The previous release relies on the two keys only for their cascades, which the triggers
# keep; it inserts runs and entries as this one does.
compatible_with_previous: bool = True

KEYS = (
    ("executions", "fk_executions_workflow_id_workflows", "workflow_id", "workflows"),
    ("audit_log", "fk_audit_log_owner_id_owners", "owner_id", "owners"),
)  # fmt: skip


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION flowsync_workflow_runs_gone() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            -- Their steps, events and jobs follow (trigger executions_children_gone).
            DELETE FROM executions WHERE workflow_id IN (SELECT id FROM gone);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER workflows_runs_gone AFTER DELETE ON workflows
            REFERENCING OLD TABLE AS gone
            FOR EACH STATEMENT EXECUTE FUNCTION flowsync_workflow_runs_gone()
        """
    )
    op.execute(
        """
        CREATE FUNCTION flowsync_owner_audit_gone() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            DELETE FROM audit_log WHERE owner_id IN (SELECT id FROM gone);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER owners_audit_gone AFTER DELETE ON owners
            REFERENCING OLD TABLE AS gone
            FOR EACH STATEMENT EXECUTE FUNCTION flowsync_owner_audit_gone()
        """
    )
    for table, name, _, _ in KEYS:
        op.drop_constraint(name, table, type_="foreignkey")


def downgrade() -> None:
    # Rows of workflows and owners deleted while there was no key went with them (the
    # triggers took them), so the keys validate.
    for table, name, column, target in KEYS:
        op.create_foreign_key(name, table, target, [column], ["id"], ondelete="CASCADE")
    op.execute("DROP TRIGGER owners_audit_gone ON owners")
    op.execute("DROP FUNCTION flowsync_owner_audit_gone()")
    op.execute("DROP TRIGGER workflows_runs_gone ON workflows")
    op.execute("DROP FUNCTION flowsync_workflow_runs_gone()")
