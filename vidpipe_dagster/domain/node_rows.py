"""Locking and writing node rows inside one lifecycle transaction.

:func:`lock_node` takes the locks of a transition in the order documented in
:mod:`vidpipe_dagster.domain.lifecycle` (the pipeline row, then the node's); the writers mark
each change for the live-status events (:mod:`vidpipe_dagster.domain.events`).
"""

from __future__ import annotations

import uuid as uuid_lib
from typing import Any, cast

from sqlalchemy import Table, Uuid, bindparam, column, select, update, values
from sqlalchemy.dialects.postgresql import JSONB
from sqlalchemy.orm import Session

from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.domain import events
from vidpipe_dagster.domain.errors import NotFoundError


def node_id(node_uuid: str | uuid_lib.UUID) -> uuid_lib.UUID:
    """The node's UUID; :class:`NotFoundError` when ``node_uuid`` is not one."""
    try:
        return node_uuid if isinstance(node_uuid, uuid_lib.UUID) else uuid_lib.UUID(node_uuid)
    except ValueError as error:
        raise NotFoundError("Node not found") from error


def lock_node(session: Session, node_uuid: str | uuid_lib.UUID, *, pipeline: bool = True) -> Any:
    """Lock the node's pipeline row (unless ``pipeline`` is false), then the node's row.

    One statement finds and locks the pipeline through the node, so the pipeline lock is
    taken before the node's, as the lock order says. ``None`` when the node is gone.
    """
    row_id = node_id(node_uuid)
    if pipeline:
        owner = select(Node.pipeline_id).where(Node.id == row_id).scalar_subquery()
        found = session.execute(
            select(Pipeline.id).where(Pipeline.id == owner).with_for_update()
        ).one_or_none()
        if found is None:
            return None
    return session.execute(
        select(
            Node.id,
            Node.pipeline_id,
            Node.status,
            Node.metadata_,
            Node.type,
            Node.title,
            Node.inputs,
            Node.config,
            Node.asset,
        )
        .where(Node.id == row_id)
        .with_for_update()
    ).one_or_none()


def write_node(session: Session, row: Any, **values: Any) -> None:
    """Write ``values`` to the locked node ``row`` and mark it for the live-status events."""
    session.execute(
        update(Node).where(Node.id == row.id).values(updated_at=Node.updated_at, **values)
    )
    events.node_changed(session, row.id, row.pipeline_id)


def write_metadata_many(session: Session, batch: list[dict[str, Any]]) -> None:
    """Set ``metadata`` of many nodes (``[{"node_id", "merged"}]``) in one statement on
    PostgreSQL (``UPDATE ... FROM (VALUES ...)``), one executemany elsewhere."""
    if not batch:
        return
    # A mapped class's __table__ is typed as any FromClause; a declarative one is a Table.
    table = cast(Table, Node.__table__)
    name = Node.metadata_.property.columns[0].key
    if session.get_bind().dialect.name == "postgresql":
        rows = values(column("node_id", Uuid), column("merged", JSONB), name="batch").data(
            [(item["node_id"], item["merged"]) for item in batch]
        )
        session.execute(
            update(table)
            .where(table.c.id == rows.c.node_id)
            .values({name: rows.c.merged, "updated_at": table.c.updated_at})
        )
        return
    session.execute(
        update(table)
        .where(table.c.id == bindparam("node_id"))
        .values({name: bindparam("merged"), "updated_at": table.c.updated_at}),
        batch,
    )


def is_current(row: Any, process_uuid: str | None) -> bool:
    """True when the locked ``row`` is ``in_progress`` under ``process_uuid``."""
    if row is None or row.status != "in_progress":
        return False
    return (row.metadata_ or {}).get("process_uuid") == process_uuid
