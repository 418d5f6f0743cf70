"""Live-status events: what changed in a pipeline, numbered in commit order.

Revision ID: 0005_pipeline_events
Revises: 0004_node_output_signature
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects import postgresql

revision = "0005_pipeline_events"
down_revision = "0004_node_output_signature"
branch_labels = None
depends_on = None


def upgrade() -> None:
    json_type = sa.JSON().with_variant(postgresql.JSONB(), "postgresql")
    op.create_table(
        "vidpipe_events",
        sa.Column("id", sa.BigInteger(), autoincrement=False, nullable=False),
        sa.Column("pipeline_id", sa.Uuid(), nullable=False),
        sa.Column("kind", sa.String(length=32), nullable=False),
        sa.Column("payload", json_type, nullable=False),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_vidpipe_events")),
    )
    op.create_index(
        "ix_vidpipe_events_pipeline_id_id", "vidpipe_events", ["pipeline_id", "id"], unique=False
    )


def downgrade() -> None:
    op.drop_index("ix_vidpipe_events_pipeline_id_id", table_name="vidpipe_events")
    op.drop_table("vidpipe_events")
