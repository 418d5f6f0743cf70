"""Pipelines, nodes and API tokens.

Revision ID: 0001_initial
Revises:
Create Date: 2026-11-27
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import JSONB

revision = "0001_initial"
down_revision = None
branch_labels = None
depends_on = None

JsonType = sa.JSON().with_variant(JSONB(), "postgresql")


def upgrade() -> None:
    op.create_table(
        "video_production_pipelines",
        sa.Column("id", sa.Uuid(), primary_key=True),
        sa.Column("version", sa.String(), nullable=False, server_default="1.0"),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("config", JsonType, nullable=False, server_default=sa.text("'{}'")),
        sa.Column("metadata", JsonType, nullable=False, server_default=sa.text("'{}'")),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_production_pipelines")),
    )
    op.create_index(
        op.f("ix_video_production_pipelines_updated_at"),
        "video_production_pipelines",
        ["updated_at"],
    )
    op.create_table(
        "video_production_nodes",
        sa.Column("id", sa.Uuid(), nullable=False),
        sa.Column("pipeline_id", sa.Uuid(), nullable=False),
        sa.Column("title", sa.String(), nullable=False),
        sa.Column("type", sa.String(), nullable=False),
        sa.Column("inputs", JsonType, nullable=False, server_default=sa.text("'{}'")),
        sa.Column("config", JsonType, nullable=False, server_default=sa.text("'{}'")),
        sa.Column("asset", JsonType, nullable=True),
        sa.Column("status", sa.String(), nullable=False, server_default="pending"),
        sa.Column("metadata", JsonType, nullable=True),
        sa.Column("output", JsonType, nullable=True),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column(
            "updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.ForeignKeyConstraint(
            ["pipeline_id"],
            ["video_production_pipelines.id"],
            name=op.f("fk_video_production_nodes_pipeline_id_video_production_pipelines"),
            ondelete="CASCADE",
        ),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_video_production_nodes")),
    )
    op.create_index(
        "ix_video_production_nodes_pipeline_id_status",
        "video_production_nodes",
        ["pipeline_id", "status"],
    )
    op.create_index(
        op.f("ix_video_production_nodes_updated_at"), "video_production_nodes", ["updated_at"]
    )
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer(), autoincrement=True, nullable=False),
        sa.Column("name", sa.String(), nullable=False),
        sa.Column("token_sha256", sa.String(length=64), nullable=False),
        sa.Column("admin", sa.Boolean(), nullable=False, server_default=sa.false()),
        sa.Column(
            "created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()
        ),
        sa.Column("revoked_at", sa.DateTime(timezone=True), nullable=True),
        sa.PrimaryKeyConstraint("id", name=op.f("pk_api_tokens")),
        sa.UniqueConstraint("token_sha256", name=op.f("uq_api_tokens_token_sha256")),
    )


def downgrade() -> None:
    op.drop_table("api_tokens")
    op.drop_index(op.f("ix_video_production_nodes_updated_at"), "video_production_nodes")
    op.drop_index("ix_video_production_nodes_pipeline_id_status", "video_production_nodes")
    op.drop_table("video_production_nodes")
    op.drop_index(op.f("ix_video_production_pipelines_updated_at"), "video_production_pipelines")
    op.drop_table("video_production_pipelines")
