"""index running cases by when their timer falls due

The timer worker's pass and /healthz ask for running cases whose timer is due, earliest first. With an
index on status and another on next_timer_at, SQLite took the status index, read every running case and
sorted them: 3.6 ms a pass at 2,000 cases, growing with every case. One index on (status,
next_timer_at) answers it directly, and replaces the index on next_timer_at alone, which no query used
without status.

Revision ID: 0004
Revises: 0003
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0004"
down_revision: str | None = "0003"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.drop_index("ix_instance_next_timer_at")
        batch_op.create_index("ix_instance_status_next_timer_at", ["status", "next_timer_at"], unique=False)


def downgrade() -> None:
    with op.batch_alter_table("instance", schema=None) as batch_op:
        batch_op.drop_index("ix_instance_status_next_timer_at")
        batch_op.create_index("ix_instance_next_timer_at", ["next_timer_at"], unique=False)
