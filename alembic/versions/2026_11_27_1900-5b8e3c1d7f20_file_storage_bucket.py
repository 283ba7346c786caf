"""file storage backends: each file row records its backend, bucket and key

Revision ID: 5b8e3c1d7f20
Revises: b4d9e6a1c2f3
Create Date: 2026-11-27 19:00:00.000000

"""

from collections.abc import Sequence

import sqlalchemy as sa

from alembic import op

# revision identifiers, used by Alembic.
revision: str = "5b8e3c1d7f20"
down_revision: str | Sequence[str] | None = "b4d9e6a1c2f3"
branch_labels: str | Sequence[str] | None = None
depends_on: str | Sequence[str] | None = None


def upgrade() -> None:
    """Upgrade schema. Earlier rows are local files (``storage_type`` was always 'local'):
    they keep working after a deployment moves new files to a bucket."""
    op.execute("UPDATE file_storage SET storage_type = 'local' WHERE storage_type <> 's3'")
    with op.batch_alter_table("file_storage", schema=None) as batch_op:
        batch_op.add_column(sa.Column("storage_bucket", sa.String(length=255), nullable=True))
        batch_op.create_check_constraint("storage_type", "storage_type IN ('local', 's3')")


def downgrade() -> None:
    """Downgrade schema."""
    with op.batch_alter_table("file_storage", schema=None) as batch_op:
        batch_op.drop_constraint(batch_op.f("ck_file_storage_storage_type"), type_="check")
        batch_op.drop_column("storage_bucket")
