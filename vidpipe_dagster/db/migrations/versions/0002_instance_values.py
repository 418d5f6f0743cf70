"""Installation-wide values (the shared local storage's identity).

Revision ID: 0002_instance_values
Revises: 0001_initial
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0002_instance_values"
down_revision = "0001_initial"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "vidpipe_instance",
        sa.Column("name", sa.String(length=64), nullable=False),
        sa.Column("value", sa.String(length=255), nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("name", name=op.f("pk_vidpipe_instance")),
    )


def downgrade() -> None:
    op.drop_table("vidpipe_instance")
