"""Dagster names: each pipeline and node records the name its asset key is made from.

Existing rows are named from their titles, in creation order (pipelines unique among
pipelines, nodes within their pipeline), with the rules of ``vidpipe_dagster.domain.naming``.

Revision ID: 0006_dagster_names
Revises: 0005_pipeline_events
Create Date: 2026-12-01
"""

import sqlalchemy as sa
from alembic import op

from vidpipe_dagster.db.names import safe_name, unique_name

revision = "0006_dagster_names"
down_revision = "0005_pipeline_events"
branch_labels = None
depends_on = None

PIPELINES = "video_production_pipelines"
NODES = "video_production_nodes"


def _backfill() -> None:
    bind = op.get_bind()
    pipelines = sa.table(
        PIPELINES, sa.column("id"), sa.column("title"), sa.column("created_at"),
        sa.column("dagster_name"),
    )  # fmt: skip
    nodes = sa.table(
        NODES, sa.column("id"), sa.column("pipeline_id"), sa.column("title"),
        sa.column("created_at"), sa.column("dagster_name"),
    )  # fmt: skip
    taken: set[str] = set()
    rows = bind.execute(
        sa.select(pipelines.c.id, pipelines.c.title).order_by(
            pipelines.c.created_at, pipelines.c.id
        )
    ).all()
    for row_id, title in rows:
        name = unique_name(safe_name(title, fallback="pipeline"), taken)
        taken.add(name)
        bind.execute(sa.update(pipelines).where(pipelines.c.id == row_id).values(dagster_name=name))
    per_pipeline: dict[object, set[str]] = {}
    node_rows = bind.execute(
        sa.select(nodes.c.id, nodes.c.pipeline_id, nodes.c.title).order_by(
            nodes.c.created_at, nodes.c.id
        )
    ).all()
    for row_id, pipeline_id, title in node_rows:
        names = per_pipeline.setdefault(pipeline_id, set())
        name = unique_name(safe_name(title, fallback="node"), names)
        names.add(name)
        bind.execute(sa.update(nodes).where(nodes.c.id == row_id).values(dagster_name=name))


def upgrade() -> None:
    op.add_column(PIPELINES, sa.Column("dagster_name", sa.String(length=64), nullable=True))
    op.add_column(NODES, sa.Column("dagster_name", sa.String(length=64), nullable=True))
    op.create_index(
        "ix_video_production_pipelines_dagster_name", PIPELINES, ["dagster_name"], unique=False
    )
    _backfill()


def downgrade() -> None:
    op.drop_index("ix_video_production_pipelines_dagster_name", table_name=PIPELINES)
    with op.batch_alter_table(NODES) as batch:
        batch.drop_column("dagster_name")
    with op.batch_alter_table(PIPELINES) as batch:
        batch.drop_column("dagster_name")
