"""idempotency fingerprint: what an Idempotency-Key was first sent with

Revision ID: 7c1f0d2a9b4e
Revises: 3020e20693f9
Create Date: 2026-11-27 15:45:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "7c1f0d2a9b4e"
down_revision: str | Sequence[str] | None = "3020e20693f9"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema. Earlier rows keep NULL: a retry of their key is still replayed."""
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.add_column(
            sa.Column("idempotency_fingerprint", sa.String(length=64), nullable=True)
        )


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("tasks", schema=None) as batch_op:
        batch_op.drop_column("idempotency_fingerprint")
