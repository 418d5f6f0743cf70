"""Execute requests on their way to Dagster: one launch per node at a time, and a queued
node that says what it waits for.

An execute claims its nodes under their row locks before it talks to Dagster
(:func:`claim`: ``metadata.launching`` holds a token and when), so two executes of the same
node racing each other launch one run: the second finds the claim and is a 409
(:class:`LaunchInProgress`). When Dagster has answered, the claim gives way to
``metadata.queued_run`` and ``metadata.stage`` ("queued in Dagster run R: waiting for a run
slot") in one transaction (:func:`queued`); the node's lifecycle ``started`` clears both. A
launch that failed drops its claim (:func:`release`); a claim older than
:data:`CLAIM_SECONDS` belongs to a request that died mid-launch and no longer counts.

Locks follow the order of :mod:`vidpipe_dagster.domain.lifecycle`: the pipeline row, then
the node rows by id.
"""

from __future__ import annotations

import uuid as uuid_lib
from collections.abc import Sequence
from datetime import datetime, timedelta
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.db.conflicts import retry_conflicts
from vidpipe_dagster.db.models import Node, Pipeline, utcnow
from vidpipe_dagster.domain import events
from vidpipe_dagster.domain.errors import ConflictError
from vidpipe_dagster.domain.waiting import already_running

LAUNCHING_KEY = "launching"
"""Node metadata: the execute request launching the node (``{"token", "at"}``)."""

QUEUED_KEY = "queued_run"
"""Node metadata: the Dagster run an execute launched for the node, until it starts."""

CLAIM_SECONDS = 600.0
"""How long a claim holds: longer than any launch (the location wait plus the GraphQL
timeouts), so only a request that died mid-launch leaves one to expire."""


class LaunchInProgress(ConflictError):
    """Another execute request is launching one of the nodes right now."""

    def __init__(self, message: str, *, node_uuids: list[str]) -> None:
        super().__init__(message)
        self.node_uuids = node_uuids


def queued_stage(run_id: str) -> str:
    """``metadata.stage`` of a node whose run Dagster has queued but not started it in."""
    return f"queued in Dagster run {run_id}: waiting for a run slot"


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=utcnow().tzinfo)


def _fresh_claim(metadata: dict[str, Any], now: datetime) -> dict[str, Any] | None:
    launching = metadata.get(LAUNCHING_KEY)
    if not isinstance(launching, dict):
        return None
    at = _moment(launching.get("at"))
    if at is None or now - at > timedelta(seconds=CLAIM_SECONDS):
        return None
    return launching


def _locked_rows(session: Session, pipeline_id: uuid_lib.UUID, node_ids: Sequence[uuid_lib.UUID]):
    session.execute(select(Pipeline.id).where(Pipeline.id == pipeline_id).with_for_update())
    return session.execute(
        select(
            Node.id,
            Node.pipeline_id,
            Node.title,
            Node.status,
            Node.metadata_,
            Node.type,
            Node.inputs,
            Node.config,
            Node.asset,
        )
        .where(Node.id.in_(list(node_ids)), Node.pipeline_id == pipeline_id)
        .order_by(Node.id)
        .with_for_update()
    ).all()


def _set_metadata(session: Session, row: Any, metadata: dict[str, Any]) -> None:
    session.execute(
        update(Node).where(Node.id == row.id).values(metadata_=metadata, updated_at=Node.updated_at)
    )
    events.node_changed(session, row.id, row.pipeline_id)


@retry_conflicts
def claim(
    sessions: sessionmaker[Session],
    *,
    pipeline_id: uuid_lib.UUID,
    node_ids: Sequence[uuid_lib.UUID],
    token: str,
) -> None:
    """Claim the nodes for one launch, or raise: ``LaunchInProgress`` when another request
    holds a claim on one, ``ConflictError`` when one is already on its way (in progress or
    waiting for a provider slot, rechecked under the lock)."""
    now = utcnow()
    with sessions() as session, session.begin():
        rows = _locked_rows(session, pipeline_id, node_ids)
        running = [reason for row in rows if (reason := already_running(row))]
        if running:
            raise ConflictError(", ".join(running))
        busy = [row for row in rows if _fresh_claim(row.metadata_ or {}, now)]
        if busy:
            titles = ", ".join(f"'{row.title or 'untitled'}'" for row in busy)
            raise LaunchInProgress(
                f"Node {titles} is being launched by another execute request; "
                "wait for its run to finish",
                node_uuids=[str(row.id) for row in busy],
            )
        for row in rows:
            metadata = dict(row.metadata_ or {})
            metadata[LAUNCHING_KEY] = {"token": token, "at": now.isoformat()}
            _set_metadata(session, row, metadata)


def _claimed_by(metadata: dict[str, Any], token: str) -> bool:
    launching = metadata.get(LAUNCHING_KEY)
    return isinstance(launching, dict) and launching.get("token") == token


@retry_conflicts
def queued(
    sessions: sessionmaker[Session],
    *,
    pipeline_id: uuid_lib.UUID,
    node_ids: Sequence[uuid_lib.UUID],
    token: str,
    run_id: str,
) -> None:
    """Replace this request's claims by the run Dagster queued for the nodes.

    A node whose run already started it (its ``started`` cleared the claim) is left as the
    run made it.
    """
    with sessions() as session, session.begin():
        for row in _locked_rows(session, pipeline_id, node_ids):
            metadata = dict(row.metadata_ or {})
            if not _claimed_by(metadata, token):
                continue
            metadata.pop(LAUNCHING_KEY)
            if row.status != "in_progress":
                metadata[QUEUED_KEY] = run_id
                metadata["stage"] = queued_stage(run_id)
            _set_metadata(session, row, metadata)


@retry_conflicts
def release(
    sessions: sessionmaker[Session],
    *,
    pipeline_id: uuid_lib.UUID,
    node_ids: Sequence[uuid_lib.UUID],
    token: str,
) -> None:
    """Drop this request's claims (its launch failed): the nodes may be executed again."""
    with sessions() as session, session.begin():
        for row in _locked_rows(session, pipeline_id, node_ids):
            metadata = dict(row.metadata_ or {})
            if _claimed_by(metadata, token):
                metadata.pop(LAUNCHING_KEY)
                _set_metadata(session, row, metadata)


def clear_queued(metadata: dict[str, Any]) -> None:
    """Drop a queued run and its stage from ``metadata`` (in place): the node's run ended
    or refused it, so it no longer waits in that queue."""
    run_id = metadata.pop(QUEUED_KEY, None)
    if run_id and metadata.get("stage") == queued_stage(run_id):
        metadata.pop("stage")


def done_in_run(node: Any, *, run_id: str) -> bool:
    """Whether the active run ``run_id`` is done with ``node`` (a row, or anything with
    ``status`` and ``metadata_``): the node's latest execution was in that run and ended,
    or the run passed it by (``not_run_by``). Executing the node again then races no render
    of that run; while the run winds down (other steps, checks, teardown) the node can be
    executed at once."""
    metadata = node.metadata_ or {}
    if node.status == "in_progress" or (node.status == "failed" and metadata.get("retryable")):
        return False  # running, or failed transiently: the run's step retry redoes it
    return run_id in (metadata.get("dagster_run_id"), metadata.get("not_run_by"))
