"""a run's steps, events and jobs go with it through one trigger, not four foreign keys

Revision ID: 0018_children_by_trigger
Revises: 0017_secrets
Create Date: 2026-12-06 17:40:00.000000

step_executions, execution_events and jobs are written only by the engine, and only in a
transaction that inserts their execution or holds its row locked (every transition locks
it to bump `last_sequence`): a deleted run can get no new child. Their foreign keys to
executions (and jobs' to step_executions) therefore only cost: one key check per row
inserted, about 40 % of a batch start's statement (9,000 checks per 1,000 runs) and one to
three per step. What the keys also did, deleting a run's children with it (retention, an
owner's deletion), is done by one statement-level trigger on executions, which sees the
deleted runs as a transition table: once per DELETE, whatever its size, as the cascade
did, and before the deleting statement returns.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0018_children_by_trigger"
down_revision: str | None = "0017_secrets"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# The previous release's code relies on the keys only for the cascade, which the trigger
# keeps; it writes children as this release does.
compatible_with_previous: bool = True

KEYS = (
    ("step_executions", "fk_step_executions_execution_id_executions", "execution_id",
     "executions"),
    ("execution_events", "fk_execution_events_execution_id_executions", "execution_id",
     "executions"),
    ("jobs", "fk_jobs_execution_id_executions", "execution_id", "executions"),
    ("jobs", "fk_jobs_step_id_step_executions", "step_id", "step_executions"),
)  # fmt: skip


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION flowsync_execution_children_gone() RETURNS trigger
        LANGUAGE plpgsql AS $$
        BEGIN
            -- Jobs first: the order a cancel and a completion lock them in (by id).
            DELETE FROM jobs
             WHERE id IN (SELECT j.id FROM jobs j JOIN gone g ON g.id = j.execution_id
                           ORDER BY j.id FOR UPDATE OF j);
            DELETE FROM execution_events WHERE execution_id IN (SELECT id FROM gone);
            DELETE FROM step_executions WHERE execution_id IN (SELECT id FROM gone);
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        """
        CREATE TRIGGER executions_children_gone AFTER DELETE ON executions
            REFERENCING OLD TABLE AS gone
            FOR EACH STATEMENT EXECUTE FUNCTION flowsync_execution_children_gone()
        """
    )
    for table, name, _, _ in KEYS:
        op.drop_constraint(name, table, type_="foreignkey")


def downgrade() -> None:
    # Children of runs deleted while there was no key could not exist (the trigger took
    # them), so the keys validate.
    for table, name, column, target in KEYS:
        op.create_foreign_key(name, table, target, [column], ["id"], ondelete="CASCADE")
    op.execute("DROP TRIGGER executions_children_gone ON executions")
    op.execute("DROP FUNCTION flowsync_execution_children_gone()")
