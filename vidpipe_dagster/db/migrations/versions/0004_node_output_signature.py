"""Nodes record the signature of their output, indexed, so finished work is found and reused.

Revision ID: 0004_node_output_signature
Revises: 0003_token_last_used
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

revision = "0004_node_output_signature"
down_revision = "0003_token_last_used"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.add_column(
        "video_production_nodes", sa.Column("output_signature", sa.String(64), nullable=True)
    )
    op.create_index(
        op.f("ix_video_production_nodes_output_signature"),
        "video_production_nodes",
        ["output_signature"],
    )


def downgrade() -> None:
    op.drop_index(op.f("ix_video_production_nodes_output_signature"), "video_production_nodes")
    op.drop_column("video_production_nodes", "output_signature")
