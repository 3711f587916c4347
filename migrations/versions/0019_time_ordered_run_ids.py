"""runs and their steps get time-ordered ids (UUID version 7)

Revision ID: 0019_time_ordered_run_ids
Revises: 0018_children_by_trigger
Create Date: 2026-12-06 20:30:00.000000

A run's id keys executions, the unique index of its steps and the primary key of its
events; a step's keys step_executions. Random ids spread each batch of new rows over all
of those indexes' leaf pages; ids that begin with the millisecond they were made in
(RFC 9562's version 7, flowsync/ids.py) append to them. `flowsync_uuid7()` makes them on
the server: a version 4 id whose first 48 bits are replaced by the Unix time in
milliseconds and whose version nibble is set to 7 (bits 52 and 53 of the bytes; the
variant bits are already 10). It is one SQL expression, declared VOLATILE so that the
planner inlines it into the INSERT. Existing rows keep their ids: nothing orders by id.
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0019_time_ordered_run_ids"
down_revision: str | None = "0018_children_by_trigger"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None
# The previous release's code inserts rows with the column default or ids of its own;
# both are still valid ids.
compatible_with_previous: bool = True

TABLES = ("executions", "step_executions")


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION flowsync_uuid7() RETURNS uuid
        LANGUAGE sql VOLATILE PARALLEL SAFE AS $$
            SELECT encode(
                set_bit(set_bit(
                    overlay(uuid_send(gen_random_uuid())
                            placing substring(int8send(floor(extract(epoch FROM
                                clock_timestamp()) * 1000)::bigint) FROM 3)
                            FROM 1 FOR 6),
                    52, 1), 53, 1),
                'hex')::uuid
        $$
        """
    )
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT flowsync_uuid7()")


def downgrade() -> None:
    for table in TABLES:
        op.execute(f"ALTER TABLE {table} ALTER COLUMN id SET DEFAULT gen_random_uuid()")
    op.execute("DROP FUNCTION flowsync_uuid7()")
