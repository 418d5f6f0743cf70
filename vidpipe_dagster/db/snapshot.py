"""A JSON snapshot of the pipeline tables: the state the Dagster definitions are built from.

``take_snapshot`` is the one place the Dagster code location reads the pipeline tables.
The snapshot is plain JSON so it can travel inside a run's reconstruction metadata.

Shape::

    {"version": 1, "taken_at": iso, "latest_updated_at": change marker,
     "pipelines": [{"uuid", "title", "dagster_name", "version", "config", "updated_at",
                    "nodes": [{"uuid", "title", "dagster_name", "type", "inputs", "config",
                               "asset"}]}]}
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


def shard_of(pipeline_uuid: str, shards: int) -> int:
    """The shard (code location index) a pipeline belongs to, stable across processes."""
    return int(str(pipeline_uuid).replace("-", ""), 16) % shards if shards > 1 else 0


def in_shard(pipeline_uuid: str, *, shard: int | None, shards: int) -> bool:
    """Whether a pipeline belongs to ``shard`` of ``shards`` (every pipeline when unsharded)."""
    return shard is None or shards <= 1 or shard_of(pipeline_uuid, shards) == shard


def latest_updated_at(session: Session, *, shard: int | None = None, shards: int = 1) -> str:
    """The change marker of the pipelines (of one shard): newest ``updated_at`` and counts.

    ``"<newest updated_at>|<pipelines>|<nodes>"`` over the pipelines of ``shard`` and their
    nodes; the counts notice deletes. Lifecycle writes keep ``updated_at``, so only the
    editor's changes move the marker.
    """
    newest_node = (
        select(
            Node.pipeline_id,
            func.max(Node.updated_at).label("newest"),
            func.count(Node.id).label("count"),
        )
        .group_by(Node.pipeline_id)
        .subquery()
    )
    rows = session.execute(
        select(Pipeline.id, Pipeline.updated_at, newest_node.c.newest, newest_node.c.count).join(
            newest_node, newest_node.c.pipeline_id == Pipeline.id, isouter=True
        )
    ).all()
    newest: datetime | None = None
    pipelines = nodes = 0
    for pipeline_id, updated_at, node_newest, node_count in rows:
        if not in_shard(str(pipeline_id), shard=shard, shards=shards):
            continue
        pipelines += 1
        nodes += node_count or 0
        for value in (updated_at, node_newest):
            if value is not None and (newest is None or value > newest):
                newest = value
    return f"{_iso(newest)}|{pipelines}|{nodes}"


def _node_structures(
    session: Session, pipeline_ids: list[Any], *, sharded: bool
) -> dict[Any, list[dict[str, Any]]]:
    """The structure of every node of ``pipeline_ids``, by pipeline, in creation order."""
    nodes_by_pipeline: dict[Any, list[dict[str, Any]]] = {pid: [] for pid in pipeline_ids}
    query = select(
        Node.id,
        Node.pipeline_id,
        Node.title,
        Node.dagster_name,
        Node.type,
        Node.inputs,
        Node.config,
        Node.asset,
    ).order_by(Node.created_at, Node.id)
    if sharded:  # only this shard's nodes leave the database
        query = query.where(Node.pipeline_id.in_(pipeline_ids))
    for row in session.execute(query).all():
        nodes = nodes_by_pipeline.get(row.pipeline_id)
        if nodes is None:  # another shard's, or a pipeline created after the read above
            continue
        nodes.append(
            {
                "uuid": str(row.id),
                "title": row.title,
                "dagster_name": row.dagster_name,
                "type": row.type,
                "inputs": row.inputs or {},
                "config": row.config or {},
                "asset": row.asset,
            }
        )
    return nodes_by_pipeline


def take_snapshot(session: Session, *, shard: int | None = None, shards: int = 1) -> dict[str, Any]:
    """Read the pipelines (of ``shard``) and their nodes' structure.

    The change marker is read first: a write landing during the reads leaves the marker
    behind the data, which costs one more reload, never a missed change.
    """
    marker = latest_updated_at(session, shard=shard, shards=shards)
    pipelines = session.execute(
        select(
            Pipeline.id,
            Pipeline.title,
            Pipeline.dagster_name,
            Pipeline.version,
            Pipeline.config,
            Pipeline.updated_at,
        ).order_by(Pipeline.created_at, Pipeline.id)
    ).all()
    pipelines = [p for p in pipelines if in_shard(str(p.id), shard=shard, shards=shards)]
    nodes_by_pipeline = _node_structures(
        session, [p.id for p in pipelines], sharded=shard is not None and shards > 1
    )
    return {
        "version": SNAPSHOT_VERSION,
        "taken_at": utcnow().isoformat(),
        "latest_updated_at": marker,
        "pipelines": [
            {
                "uuid": str(p.id),
                "title": p.title,
                "dagster_name": p.dagster_name,
                "version": p.version,
                "config": p.config or {},
                "updated_at": _iso(p.updated_at),
                "nodes": nodes_by_pipeline.get(p.id, []),
            }
            for p in pipelines
        ],
    }
