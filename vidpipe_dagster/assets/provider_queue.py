"""The queue of nodes waiting for a provider slot, kept in the node rows.

A step whose node finds its provider at its limit of jobs in flight records a wait
(:func:`enqueue`) and ends: no worker is held and nothing is submitted. Each tick of the
provider sensor then calls :func:`grant_slots`, which per provider:

1. drops waits of nodes edited since they began waiting (their structure hash changed);
2. counts the free slots: the limit, less the jobs in flight, less the waits already
   granted a run that has not started yet;
3. grants the next waits in queue order (oldest first) a run, returned as :class:`Grant`
   for the sensor's ``RunRequest`` (``run_key`` ``"slot:<node>:<token>"``, so a grant is
   launched once);
4. rewrites each waiting node's ``metadata.stage`` with its place in the queue.

The granted run starts the node only while its wait still carries the run's token
(:func:`wait_guard`, checked under the node's row lock when the lifecycle starts it), so a
wait is served by one execution and one submission at most. When that run finds the slot
taken again (an execute that came between), the node waits again, keeping its place. A
grant whose run never started the node within :data:`GRANT_TIMEOUT_SECONDS` gets a new
token, and so a new run.

Waits change only ``metadata`` (``waiting``, ``stage``), under the node's row lock: a
waiting node keeps its status (``pending``, ``failed``, or ``completed`` with its output).
"""

from __future__ import annotations

import logging
import secrets
import uuid as uuid_lib
from collections.abc import Callable
from dataclasses import dataclass, replace
from datetime import UTC, datetime
from typing import Any

from sqlalchemy import and_, func, or_, select, update
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.assets.provider_jobs import in_flight_count
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain import events
from vidpipe_dagster.domain.waiting import (
    WAITING_KEY,
    Wait,
    row_structure,
    wait_of,
    waiting_stage,
)
from vidpipe_dagster.resources.providers.registry import jobs_limit

log = logging.getLogger(__name__)

GRANT_TIMEOUT_SECONDS = 600.0
"""How long a granted run may take to start its node before the wait is granted again."""


class NotWaiting(Exception):
    """A run started for a wait found the node no longer waiting on that turn."""


@dataclass(frozen=True)
class Grant:
    """A waiting node granted a slot: the sensor requests one run of it."""

    node_uuid: str
    pipeline_uuid: str
    provider: str
    token: str

    @property
    def run_key(self) -> str:
        """The run key of the run serving this grant (one run per turn)."""
        return f"slot:{self.node_uuid}:{self.token}"


def _now() -> datetime:
    return datetime.now(UTC)


def _write_metadata(session: Session, row: Any, metadata: dict[str, Any]) -> None:
    """Write a locked node row's metadata; its new stage is a live-status event."""
    session.execute(
        update(Node).where(Node.id == row.id).values(metadata_=metadata, updated_at=Node.updated_at)
    )
    events.node_changed(session, row.id, row.pipeline_id)


def _waiting_rows(session: Session, *, provider: str | None = None, lock: bool = False) -> list:
    query = select(
        Node.id,
        Node.pipeline_id,
        Node.status,
        Node.type,
        Node.inputs,
        Node.config,
        Node.asset,
        Node.metadata_,
    ).where(
        Node.metadata_[(WAITING_KEY, "provider")].as_string().is_not(None),
        Node.status != "in_progress",
    )
    if provider is not None:
        query = query.where(Node.metadata_[(WAITING_KEY, "provider")].as_string() == provider)
    if lock:
        query = query.order_by(Node.id).with_for_update()
    return list(session.execute(query).all())


def _queue_order(item: tuple[Any, Wait]) -> tuple[str, str]:
    row, wait = item
    return wait.since, str(row.id)


def enqueue(
    sessions: sessionmaker[Session], *, node_uuid: str, provider: str, run_id: str | None
) -> tuple[Wait, int] | None:
    """Record that the node waits for a ``provider`` slot: ``(wait, nodes ahead)``.

    A node already waiting for ``provider`` in the same structure keeps its place in the
    queue (its ``since``) and gets a new token. ``None`` when the node is gone or is
    ``in_progress`` (some execution holds it; nothing to wait for).
    """
    node_id = uuid_lib.UUID(node_uuid)
    with sessions() as session, session.begin():
        row = session.execute(
            select(Node).where(Node.id == node_id).with_for_update()
        ).scalar_one_or_none()
        if row is None or row.status == "in_progress":
            return None
        metadata = dict(row.metadata_ or {})
        structure = row_structure(row)
        previous = wait_of(metadata)
        since = _now().isoformat()
        if previous and previous.provider == provider and previous.structure == structure:
            since = previous.since
        wait = Wait(
            provider=provider,
            since=since,
            token=secrets.token_hex(8),
            structure=structure,
            run_id=run_id,
        )
        waited = Node.metadata_[(WAITING_KEY, "since")].as_string()
        ahead = session.execute(
            select(func.count()).where(
                Node.metadata_[(WAITING_KEY, "provider")].as_string() == provider,
                Node.status != "in_progress",
                Node.id != node_id,
                or_(waited < since, and_(waited == since, Node.id < node_id)),
            )
        ).scalar_one()
        metadata[WAITING_KEY] = wait.as_json()
        metadata["stage"] = waiting_stage(provider, ahead=ahead)
        _write_metadata(session, row, metadata)
    log.info("node %s waits for a %s slot (%d ahead)", node_uuid, provider, ahead)
    return wait, ahead


def wait_guard(node_uuid: str, token: str) -> Callable[[Session], None]:
    """An ``admit`` hook for ``Lifecycle.started`` in a run granted to a wait: raise
    :class:`NotWaiting` unless the node still waits on the turn ``token`` names."""
    node_id = uuid_lib.UUID(node_uuid)

    def admit(session: Session) -> None:
        metadata = session.execute(
            select(Node.metadata_).where(Node.id == node_id)
        ).scalar_one_or_none()
        wait = wait_of(metadata)
        if wait is None or wait.token != token:
            raise NotWaiting(
                f"node {node_uuid} no longer waits on turn {token}: started or edited meanwhile"
            )

    return admit


def grant_slots(
    sessions: sessionmaker[Session],
    *,
    settings: Any,
    now: datetime | None = None,
    known: Callable[[str, str], bool] | None = None,
) -> list[Grant]:
    """Grant free provider slots to the waiting nodes, oldest first (module docstring).

    ``known(pipeline_uuid, node_uuid)`` says whether the code location can run the node
    yet; a node it does not know keeps waiting, its place kept.
    """
    now = now or _now()
    with sessions() as session:
        providers = {
            wait.provider
            for row in _waiting_rows(session)
            if (wait := wait_of(row.metadata_)) is not None
        }
    grants: list[Grant] = []
    for provider in sorted(providers):
        grants.extend(
            _grant_provider(sessions, provider=provider, settings=settings, now=now, known=known)
        )
    return grants


def _grant_provider(
    sessions: sessionmaker[Session],
    *,
    provider: str,
    settings: Any,
    now: datetime,
    known: Callable[[str, str], bool] | None,
) -> list[Grant]:
    """Steps 1 to 4 of the module docstring for one provider, in one transaction."""
    with sessions() as session, session.begin():
        queue = _live_queue(session, provider=provider)
        granted = _regranted(queue, now=now)
        free = jobs_limit(provider, settings) - in_flight_count(session, provider)
        free -= sum(
            1 for row, wait in queue if granted.get(str(row.id), wait).requested_at is not None
        )
        grants = _grant_free(
            queue, granted=granted, free=free, provider=provider, now=now, known=known
        )
        _write_stages(session, queue, granted=granted, provider=provider)
    return grants


def _live_queue(session: Session, *, provider: str) -> list[tuple[Any, Wait]]:
    """The locked rows waiting for ``provider`` with their waits, in queue order.

    Waits of nodes edited since they began waiting are dropped, with their waiting stage.
    """
    queue: list[tuple[Any, Wait]] = []
    for row in _waiting_rows(session, provider=provider, lock=True):
        wait = wait_of(row.metadata_)
        if wait is None:
            continue
        if wait.structure != row_structure(row):
            metadata = dict(row.metadata_ or {})
            metadata.pop(WAITING_KEY, None)
            if str(metadata.get("stage", "")).startswith(("waiting for", "starting:")):
                metadata.pop("stage", None)
            _write_metadata(session, row, metadata)
            log.info("node %s was edited while waiting for a %s slot", row.id, provider)
            continue
        queue.append((row, wait))
    queue.sort(key=_queue_order)
    return queue


def _regranted(queue: list[tuple[Any, Wait]], *, now: datetime) -> dict[str, Wait]:
    """New waits (new token, not requested) for grants whose run did not start in time."""
    granted: dict[str, Wait] = {}
    for row, wait in queue:
        if wait.requested_at is None:
            continue
        try:
            age = (now - datetime.fromisoformat(wait.requested_at)).total_seconds()
        except ValueError:
            age = GRANT_TIMEOUT_SECONDS + 1
        if age > GRANT_TIMEOUT_SECONDS:
            log.warning("the run granted to node %s did not start it; granting again", row.id)
            granted[str(row.id)] = replace(wait, token=secrets.token_hex(8), requested_at=None)
    return granted


def _grant_free(
    queue: list[tuple[Any, Wait]],
    *,
    granted: dict[str, Wait],
    free: int,
    provider: str,
    now: datetime,
    known: Callable[[str, str], bool] | None,
) -> list[Grant]:
    """Grant up to ``free`` slots to the waits not yet granted, recording each in ``granted``.

    A node ``known`` does not know keeps waiting.
    """
    grants: list[Grant] = []
    for row, wait in queue:
        current = granted.get(str(row.id), wait)
        if free <= 0 or current.requested_at is not None:
            continue
        if known is not None and not known(str(row.pipeline_id), str(row.id)):
            continue
        granted[str(row.id)] = replace(current, requested_at=now.isoformat())
        grants.append(
            Grant(
                node_uuid=str(row.id),
                pipeline_uuid=str(row.pipeline_id),
                provider=provider,
                token=current.token,
            )
        )
        free -= 1
    return grants


def _write_stages(
    session: Session,
    queue: list[tuple[Any, Wait]],
    *,
    granted: dict[str, Wait],
    provider: str,
) -> None:
    """Write each waiting node's wait and its place in the queue where either changed."""
    for ahead, (row, wait) in enumerate(queue):
        current = granted.get(str(row.id), wait)
        stage = waiting_stage(provider, ahead=ahead, starting=current.requested_at is not None)
        metadata = dict(row.metadata_ or {})
        if metadata.get("stage") == stage and current == wait:
            continue
        metadata[WAITING_KEY] = current.as_json()
        metadata["stage"] = stage
        _write_metadata(session, row, metadata)
