"""claim index in the claim's exact order: priority DESC, enqueued_at, id

Revision ID: 9d2a4f6c8e13
Revises: 5b8e3c1d7f20
Create Date: 2026-11-28 01:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "9d2a4f6c8e13"
down_revision: str | Sequence[str] | None = "5b8e3c1d7f20"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def _claim_index(columns: list[sa.TextClause | str]) -> None:
    with op.batch_alter_table("task_queue", schema=None) as batch_op:
        batch_op.drop_index("ix_task_queue_claim")
        batch_op.create_index(
            "ix_task_queue_claim",
            columns,
            unique=False,
            sqlite_where=sa.text("worker_id IS NULL"),
            postgresql_where=sa.text("worker_id IS NULL"),
        )


def upgrade() -> None:
    """Upgrade schema. The claim orders by ``priority DESC, enqueued_at, id``; without
    ``id`` in the index, tasks enqueued in the same instant (a batch, a bulk enqueue)
    were sorted on every claim: a scan of every pending row per claim."""
    _claim_index([sa.text("priority DESC"), "enqueued_at", "id"])


def downgrade() -> None:
    """Downgrade schema."""
    _claim_index([sa.text("priority DESC"), "enqueued_at"])
