"""When each API token was last used.

Revision ID: 0003_token_last_used
Revises: 0002_instance_values
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0003_token_last_used"
down_revision = "0002_instance_values"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "api_tokens", sa.Column("last_used_at", sa.DateTime(timezone=True), nullable=True)
    )


def downgrade() -> None:
    with op.batch_alter_table("api_tokens") as batch:
        batch.drop_column("last_used_at")
