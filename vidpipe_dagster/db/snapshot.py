"""A JSON snapshot of the pipeline tables: the state the Dagster definitions are built from.

``take_snapshot`` is the one place the Dagster code location reads the pipeline tables.
The snapshot is plain JSON so it can travel inside a run's reconstruction metadata.

Shape::

    {"version": 1, "taken_at": iso, "latest_updated_at": iso | None,
     "pipelines": [{"uuid", "title", "version", "config", "updated_at",
                    "nodes": [{"uuid", "title", "type", "inputs", "config", "asset"}]}]}
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from sqlalchemy import func, select
from sqlalchemy.orm import Session

from vidpipe_dagster.db.models import Node, Pipeline, utcnow

SNAPSHOT_VERSION = 1


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value else None


def latest_updated_at(session: Session) -> str | None:
    """The newest ``updated_at`` across both tables (plus the counts, to notice deletes)."""
    p_max, p_count = session.execute(
        select(func.max(Pipeline.updated_at), func.count(Pipeline.id))
    ).one()
    n_max, n_count = session.execute(select(func.max(Node.updated_at), func.count(Node.id))).one()
    newest = max((v for v in (p_max, n_max) if v is not None), default=None)
    return f"{_iso(newest)}|{p_count}|{n_count}"


def take_snapshot(session: Session) -> dict[str, Any]:
    """Read every pipeline and its nodes' structure in two queries."""
    pipelines = session.execute(
        select(
            Pipeline.id,
            Pipeline.title,
            Pipeline.version,
            Pipeline.config,
            Pipeline.updated_at,
        ).order_by(Pipeline.created_at, Pipeline.id)
    ).all()
    nodes_by_pipeline: dict[Any, list[dict[str, Any]]] = {p.id: [] for p in pipelines}
    rows = session.execute(
        select(
            Node.id,
            Node.pipeline_id,
            Node.title,
            Node.type,
            Node.inputs,
            Node.config,
            Node.asset,
        ).order_by(Node.created_at, Node.id)
    ).all()
    for row in rows:
        nodes_by_pipeline.setdefault(row.pipeline_id, []).append(
            {
                "uuid": str(row.id),
                "title": row.title,
                "type": row.type,
                "inputs": row.inputs or {},
                "config": row.config or {},
                "asset": row.asset,
            }
        )
    return {
        "version": SNAPSHOT_VERSION,
        "taken_at": utcnow().isoformat(),
        "latest_updated_at": latest_updated_at(session),
        "pipelines": [
            {
                "uuid": str(p.id),
                "title": p.title,
                "version": p.version,
                "config": p.config or {},
                "updated_at": _iso(p.updated_at),
                "nodes": nodes_by_pipeline.get(p.id, []),
            }
            for p in pipelines
        ],
    }
