"""Pipeline ``metadata.progress`` and ``metadata.totalCost``, kept current by the engine."""

from __future__ import annotations

from typing import Any

from sqlalchemy import func, select, update
from sqlalchemy.orm import Session

from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.domain import events
from vidpipe_dagster.domain.node_types import STATUSES


def count_statuses(session: Session, pipeline_id: Any) -> dict[str, int]:
    """``{completed, in_progress, pending, failed, total}`` for a pipeline, in one query."""
    rows = session.execute(
        select(Node.status, func.count())
        .where(Node.pipeline_id == pipeline_id)
        .group_by(Node.status)
    ).all()
    counts = dict.fromkeys(STATUSES, 0)
    for status, count in rows:
        counts[status] = counts.get(status, 0) + count
    counts["total"] = sum(count for _, count in rows)
    return counts


def refresh_pipeline_metadata(session: Session, pipeline_id: Any, *, add_cost: float = 0.0) -> None:
    """Recount progress and add ``add_cost`` to ``totalCost``, under the pipeline's row lock.

    Callers lock the pipeline row before any of its nodes (the lock order in
    :mod:`vidpipe_dagster.domain.lifecycle`); taking it again here is then free, and every
    status change of the pipeline's nodes is recounted under that one lock.
    Engine writes leave ``updated_at`` alone: it tracks the editor's changes to structure.
    A change of either figure is marked for the live-status events.
    """
    row = session.execute(
        select(Pipeline.metadata_).where(Pipeline.id == pipeline_id).with_for_update()
    ).one_or_none()
    if row is None:
        return
    metadata = dict(row.metadata_ or {})
    metadata["progress"] = count_statuses(session, pipeline_id)
    total = float(metadata.get("totalCost") or 0.0) + float(add_cost or 0.0)
    metadata["totalCost"] = round(total, 6)
    before = row.metadata_ or {}
    if (before.get("progress"), before.get("totalCost")) != (
        metadata["progress"],
        metadata["totalCost"],
    ):
        events.pipeline_changed(session, pipeline_id)
    session.execute(
        update(Pipeline)
        .where(Pipeline.id == pipeline_id)
        .values(metadata_=metadata, updated_at=Pipeline.updated_at)
    )
