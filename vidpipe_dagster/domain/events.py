"""Live-status events: every change a person watching a pipeline should see, in commit order.

Writers mark what they changed on their session (:func:`node_changed`, :func:`node_deleted`,
:func:`pipeline_changed`, :func:`pipeline_deleted`); when that session commits, the marks
become rows of ``vidpipe_events`` in the same transaction, as its last statements, carrying
the state the transaction leaves behind (the node's row, the pipeline's progress and cost).

Ids grow in commit order, so a client that saw event ``n`` misses nothing by asking for the
events after ``n``: before numbering, a transaction takes the event lock
(``pg_advisory_xact_lock`` on PostgreSQL; SQLite has one writer at a time anyway), held to
its commit. It is the last lock any writer takes (after the pipeline, node and admission
locks of :mod:`vidpipe_dagster.domain.lifecycle`) and its holder waits for nothing else, so
it cannot deadlock. On PostgreSQL the transaction also sends ``NOTIFY vidpipe_events``,
delivered at commit; in this process, :func:`add_waker` callbacks run after the commit.
Only the newest :data:`KEEP_EVENTS` events are kept.

Caches of what a pipeline's rows read as (the API's) learn of every committed change from
the same notifications: the payload names the pipelines the transaction changed. A change no
event carries (a pipeline's title, a compile error, a retry count, a revoked token) is marked
with :func:`pipeline_touched` / :func:`tokens_changed` and announced on :data:`CHANGES`;
:func:`add_change_listener` callbacks hear of both in this process right after the commit.
"""

from __future__ import annotations

import logging
import uuid as uuid_lib
from collections.abc import Callable
from datetime import datetime
from typing import Any

from sqlalchemy import delete, event, func, insert, select, text
from sqlalchemy.orm import Session

from vidpipe_dagster.db.models import Node, Pipeline, PipelineEvent

log = logging.getLogger(__name__)

CHANNEL = "vidpipe_events"
"""The PostgreSQL notification channel of events; the payload is the newest event id, then
the UUIDs of the pipelines the transaction changed, space-separated."""

CHANGES = "vidpipe_changes"
"""The channel of changes no event carries: pipeline UUIDs, or ``tokens``."""

TOKENS = "tokens"

KEEP_EVENTS = 10_000
"""How many of the newest events are kept for clients resuming with ``Last-Event-ID``."""

PRUNE_EVERY = 500
"""Events are pruned each time the id crosses a multiple of this."""

NODE = "node"
NODE_DELETED = "node_deleted"
PIPELINE = "pipeline"
PIPELINE_DELETED = "pipeline_deleted"

_MARKS = "vidpipe_event_marks"
_WRITTEN = "vidpipe_events_written"
_TOUCHED = "vidpipe_touched"
_NOTIFY_LIMIT = 7900
_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('vidpipe:events'))"
_wakers: list[Callable[[], None]] = []
_change_listeners: list[Callable[[set[str]], None]] = []


def _as_uuid(value: str | uuid_lib.UUID) -> uuid_lib.UUID:
    return value if isinstance(value, uuid_lib.UUID) else uuid_lib.UUID(str(value))


def _mark(session: Session, kind: str, key: uuid_lib.UUID, pipeline_id: uuid_lib.UUID) -> None:
    marks: dict[tuple[str, uuid_lib.UUID], uuid_lib.UUID] = session.info.setdefault(_MARKS, {})
    marks.setdefault((kind, key), pipeline_id)
    session.info.setdefault(_TOUCHED, set()).add(str(pipeline_id))


def pipeline_touched(session: Session, pipeline_id: str | uuid_lib.UUID) -> None:
    """Mark a pipeline whose rows changed in a way no event carries (title, version,
    config, metadata other than progress and cost), so caches of it are dropped."""
    session.info.setdefault(_TOUCHED, set()).add(str(_as_uuid(pipeline_id)))


def tokens_changed(session: Session) -> None:
    """Mark that API tokens were revoked in this transaction (caches drop verified tokens)."""
    session.info.setdefault(_TOUCHED, set()).add(TOKENS)


def node_changed(
    session: Session, node_id: str | uuid_lib.UUID, pipeline_id: str | uuid_lib.UUID
) -> None:
    """Mark a node whose status, metadata, output or fields changed in this transaction."""
    _mark(session, NODE, _as_uuid(node_id), _as_uuid(pipeline_id))


def node_deleted(
    session: Session, node_id: str | uuid_lib.UUID, pipeline_id: str | uuid_lib.UUID
) -> None:
    """Mark a node deleted in this transaction."""
    node_id, pipeline_id = _as_uuid(node_id), _as_uuid(pipeline_id)
    session.info.setdefault(_MARKS, {}).pop((NODE, node_id), None)
    _mark(session, NODE_DELETED, node_id, pipeline_id)


def pipeline_changed(session: Session, pipeline_id: str | uuid_lib.UUID) -> None:
    """Mark a pipeline whose progress or total cost changed in this transaction."""
    pipeline_id = _as_uuid(pipeline_id)
    _mark(session, PIPELINE, pipeline_id, pipeline_id)


def pipeline_deleted(session: Session, pipeline_id: str | uuid_lib.UUID) -> None:
    """Mark a pipeline deleted in this transaction (its nodes go with it)."""
    pipeline_id = _as_uuid(pipeline_id)
    _mark(session, PIPELINE_DELETED, pipeline_id, pipeline_id)


def add_waker(callback: Callable[[], None]) -> None:
    """Call ``callback`` (quickly, it must not block) after each commit here that wrote events."""
    _wakers.append(callback)


def remove_waker(callback: Callable[[], None]) -> None:
    """Stop calling ``callback``."""
    try:
        _wakers.remove(callback)
    except ValueError:
        pass


def add_change_listener(callback: Callable[[set[str]], None]) -> None:
    """Call ``callback`` (quickly) after each commit here that changed pipelines or tokens,
    with the changed pipelines' UUIDs (and ``tokens``)."""
    _change_listeners.append(callback)


def remove_change_listener(callback: Callable[[set[str]], None]) -> None:
    """Stop calling ``callback``."""
    try:
        _change_listeners.remove(callback)
    except ValueError:
        pass


def notify_payload(first: str, touched: set[str]) -> str:
    """``first`` and the touched names, space-separated; just ``first`` when too long for
    a notification (a listener then drops everything)."""
    payload = " ".join([first, *sorted(touched)])
    return payload if len(payload) <= _NOTIFY_LIMIT else first


def _iso(value: datetime | None) -> str | None:
    return value.isoformat() if value is not None else None


NODE_COLUMNS = (
    "id",
    "pipeline_id",
    "title",
    "type",
    "status",
    "inputs",
    "config",
    "asset",
    "metadata",
    "output",
    "created_at",
    "updated_at",
)


def node_state(row: Any) -> dict[str, Any]:
    """A row of ``Node.__table__`` as an event payload (JSON: UUIDs and times as text)."""
    values = {name: row._mapping[name] for name in NODE_COLUMNS}
    for name in ("id", "pipeline_id"):
        values[name] = str(values[name])
    for name in ("created_at", "updated_at"):
        values[name] = _iso(values[name])
    return values


def node_from_state(state: dict[str, Any]) -> Node:
    """A detached :class:`Node` holding an event's node state, for the API's serialisers."""
    return Node(
        id=uuid_lib.UUID(state["id"]),
        pipeline_id=uuid_lib.UUID(state["pipeline_id"]),
        title=state["title"],
        type=state["type"],
        status=state["status"],
        inputs=state["inputs"],
        config=state["config"],
        asset=state["asset"],
        metadata_=state["metadata"],
        output=state["output"],
        created_at=_parse(state["created_at"]),
        updated_at=_parse(state["updated_at"]),
    )


def _parse(value: str | None) -> datetime | None:
    return datetime.fromisoformat(value) if value else None


def pipeline_state(metadata: dict[str, Any] | None, pipeline_id: uuid_lib.UUID) -> dict[str, Any]:
    """A pipeline's live figures as an event payload: ``progress`` and ``totalCost`` (USD)."""
    metadata = metadata or {}
    return {
        "uuid": str(pipeline_id),
        "progress": metadata.get("progress"),
        "totalCost": metadata.get("totalCost"),
    }


def _payloads(session: Session, marks: dict) -> list[tuple[str, uuid_lib.UUID, dict[str, Any]]]:
    node_ids = [key for (kind, key) in marks if kind == NODE]
    pipeline_ids = [key for (kind, key) in marks if kind == PIPELINE]
    nodes = {}
    if node_ids:
        table = Node.__table__
        for row in session.execute(select(table).where(table.c.id.in_(node_ids))):
            nodes[row.id] = node_state(row)
    pipelines = {}
    if pipeline_ids:
        for row in session.execute(
            select(Pipeline.id, Pipeline.metadata_).where(Pipeline.id.in_(pipeline_ids))
        ):
            pipelines[row.id] = pipeline_state(row.metadata_, row.id)
    out = []
    for (kind, key), pipeline_id in marks.items():
        if kind == NODE:
            if key in nodes:
                out.append((kind, pipeline_id, {"node": nodes[key]}))
        elif kind == PIPELINE:
            if key in pipelines:
                out.append((kind, pipeline_id, {"pipeline": pipelines[key]}))
        elif kind == NODE_DELETED:
            node = {"uuid": str(key), "pipeline_uuid": str(pipeline_id)}
            out.append((kind, pipeline_id, {"node": node}))
        else:
            out.append((kind, pipeline_id, {"pipeline": {"uuid": str(pipeline_id)}}))
    return out


def write_marked(session: Session) -> int:
    """Write the events marked on ``session`` (the commit does this); the newest id or 0."""
    marks = session.info.pop(_MARKS, None)
    if not marks:
        return 0
    session.flush()
    payloads = _payloads(session, marks)
    if not payloads:
        return 0
    postgres = session.get_bind().dialect.name == "postgresql"
    if postgres:
        session.execute(text(_LOCK_SQL))
    last = session.scalar(select(func.max(PipelineEvent.id))) or 0
    rows = [
        {"id": last + index, "pipeline_id": pipeline_id, "kind": kind, "payload": payload}
        for index, (kind, pipeline_id, payload) in enumerate(payloads, start=1)
    ]
    session.execute(insert(PipelineEvent), rows)
    newest = last + len(rows)
    if newest // PRUNE_EVERY != last // PRUNE_EVERY:
        session.execute(delete(PipelineEvent).where(PipelineEvent.id <= newest - KEEP_EVENTS))
    if postgres:
        touched = session.info.get(_TOUCHED, set())
        payload = notify_payload(str(newest), touched - {TOKENS})
        session.execute(text("SELECT pg_notify(:channel, :p)"), {"channel": CHANNEL, "p": payload})
        session.info[_TOUCHED] = touched & {TOKENS}
    session.info[_WRITTEN] = newest
    return newest


def _announce_touched(session: Session) -> None:
    """Notify :data:`CHANGES` of the marks no event row announced (PostgreSQL only)."""
    touched = session.info.get(_TOUCHED)
    if not touched or session.get_bind().dialect.name != "postgresql":
        return
    session.execute(
        text("SELECT pg_notify(:channel, :p)"),
        {"channel": CHANGES, "p": notify_payload("-", touched)},
    )


@event.listens_for(Session, "before_commit")
def _before_commit(session: Session) -> None:
    touched = set(session.info.get(_TOUCHED, ()))
    if session.info.get(_MARKS):
        write_marked(session)
    _announce_touched(session)
    if touched:
        session.info[_TOUCHED] = touched


@event.listens_for(Session, "after_commit")
def _after_commit(session: Session) -> None:
    touched = session.info.pop(_TOUCHED, None)
    if touched:
        for listener in list(_change_listeners):
            try:
                listener(touched)
            except Exception:
                log.exception("a change listener failed")
    if session.info.pop(_WRITTEN, None) is None:
        return
    for waker in list(_wakers):
        try:
            waker()
        except Exception:
            log.exception("an event waker failed")


@event.listens_for(Session, "after_rollback")
def _after_rollback(session: Session) -> None:
    session.info.pop(_MARKS, None)
    session.info.pop(_WRITTEN, None)
    session.info.pop(_TOUCHED, None)


def latest_id(session: Session) -> int:
    """The newest event's id (0 when there is none)."""
    return session.scalar(select(func.max(PipelineEvent.id))) or 0


def oldest_id(session: Session) -> int | None:
    """The oldest kept event's id, None when there is none."""
    return session.scalar(select(func.min(PipelineEvent.id)))


def events_after(
    session: Session,
    after_id: int,
    *,
    pipeline_id: uuid_lib.UUID | None = None,
    limit: int = 1000,
) -> list[PipelineEvent]:
    """Events with an id above ``after_id`` (of one pipeline when given), oldest first."""
    query = select(PipelineEvent).where(PipelineEvent.id > after_id)
    if pipeline_id is not None:
        query = query.where(PipelineEvent.pipeline_id == pipeline_id)
    return list(session.scalars(query.order_by(PipelineEvent.id).limit(limit)))


def can_resume(session: Session, after_id: int) -> bool:
    """Whether every event after ``after_id`` is still kept (and ``after_id`` is not ahead)."""
    newest = latest_id(session)
    if after_id > newest:
        return False
    oldest = oldest_id(session)
    return oldest is None or after_id >= oldest - 1
