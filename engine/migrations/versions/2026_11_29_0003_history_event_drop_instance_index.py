"""drop the history's index on instance_id alone

The unique constraint on (instance_id, seq) already serves every lookup by case, so the second index
only cost a page written in every command's commit.

Revision ID: 0003
Revises: 0002
Create Date: 2026-11-29
"""

from collections.abc import Sequence

from alembic import op

revision: str = "0003"
down_revision: str | None = "0002"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    with op.batch_alter_table("history_event", schema=None) as batch_op:
        batch_op.drop_index("ix_history_event_instance_id")


def downgrade() -> None:
    with op.batch_alter_table("history_event", schema=None) as batch_op:
        batch_op.create_index("ix_history_event_instance_id", ["instance_id"], unique=False)
