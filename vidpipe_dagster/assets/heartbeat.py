"""Liveness of running nodes: a heartbeat while a node executes, and the end of orphans.

While a run worker executes a node, :func:`beating` writes ``metadata.heartbeat_at``
through the lifecycle every ``VIDPIPE_HEARTBEAT_INTERVAL_SECONDS``. When the worker and its
code server die together (a lost container or host), nothing in Dagster notices: the run
stays STARTED and the node ``in_progress``. :func:`end_orphans` (run by the
``vidpipe_orphaned_nodes`` sensor) fails every ``in_progress`` node whose heartbeat is older
than ``VIDPIPE_HEARTBEAT_TIMEOUT_SECONDS``, with a reason, and marks its Dagster run failed.

Left alone: nodes waiting on a provider job (``provider_job_id``: their run ended by design
and they no longer beat), nodes of a run that succeeded, and nodes that never beat (an
execution started by something other than a run step).
"""

from __future__ import annotations

import threading
import uuid as uuid_lib
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.db.models import Node, utcnow
from vidpipe_dagster.domain.lifecycle import Lifecycle

HEARTBEAT_KEY = "heartbeat_at"


def stamp() -> dict[str, str]:
    """The metadata a beat writes: ``{"heartbeat_at": <now, ISO 8601>}``."""
    return {HEARTBEAT_KEY: utcnow().isoformat()}


@contextmanager
def beating(
    lifecycle: Lifecycle,
    *,
    node_uuid: str,
    process_uuid: str,
    interval: float,
    warn: Callable[[str], Any] | None = None,
) -> Iterator[None]:
    """Beat for ``process_uuid``'s execution of the node while the block runs.

    A thread writes :func:`stamp` every ``interval`` seconds; it stops when the block ends
    or the execution is no longer the node's current one. A failed write (the database
    briefly away) is reported through ``warn`` and retried at the next beat.
    """
    stop = threading.Event()

    def beat() -> None:
        while not stop.wait(interval):
            try:
                if not lifecycle.updated(node_uuid, stamp(), process_uuid):
                    return
            except Exception as error:  # noqa: BLE001 - a missed beat must not end the step
                if warn is not None:
                    warn(f"Heartbeat of node {node_uuid} not written: {error}")

    thread = threading.Thread(target=beat, name=f"vidpipe-heartbeat-{node_uuid}", daemon=True)
    thread.start()
    try:
        yield
    finally:
        stop.set()
        thread.join(timeout=max(1.0, interval))


@dataclass(frozen=True)
class Orphan:
    """An ``in_progress`` node whose run worker stopped beating."""

    node_uuid: str
    title: str
    process_uuid: str | None
    run_id: str | None
    silent_seconds: float

    def reason(self, timeout: float) -> str:
        """The error recorded on the node: what happened, and what to do."""
        run = f"Dagster run {self.run_id}" if self.run_id else "its run"
        return (
            f"The run worker executing this node stopped: no heartbeat from {run} for "
            f"{self.silent_seconds:.0f} s (limit {timeout:g} s, "
            "VIDPIPE_HEARTBEAT_TIMEOUT_SECONDS); its container or host was probably lost. "
            "Execute the node again."
        )


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str):
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)


def silent_nodes(
    sessions: sessionmaker[Session], *, timeout: float, now: datetime | None = None
) -> list[Orphan]:
    """``in_progress`` nodes not waiting on a provider whose heartbeat is older than
    ``timeout`` seconds."""
    now = now or utcnow()
    with sessions() as session:
        rows = session.execute(
            select(Node.id, Node.title, Node.metadata_).where(Node.status == "in_progress")
        ).all()
    orphans = []
    for node_id, title, metadata in rows:
        metadata = metadata or {}
        beat = _moment(metadata.get(HEARTBEAT_KEY))
        if beat is None or metadata.get("provider_job_id"):
            continue
        silent = (now - beat).total_seconds()
        if silent > timeout:
            orphans.append(
                Orphan(
                    node_uuid=str(uuid_lib.UUID(str(node_id))),
                    title=title or "",
                    process_uuid=metadata.get("process_uuid"),
                    run_id=metadata.get("dagster_run_id"),
                    silent_seconds=silent,
                )
            )
    return orphans


def end_orphans(
    *,
    instance: dg.DagsterInstance,
    lifecycle: Lifecycle,
    sessions: sessionmaker[Session],
    timeout: float,
) -> list[Orphan]:
    """Fail the orphaned nodes and mark their unfinished Dagster runs failed; return them.

    A node whose run succeeded is left alone (a run that ended by design). Each run is
    reported failed once, naming the node that stopped beating.
    """
    ended: list[Orphan] = []
    reported: set[str] = set()
    for orphan in silent_nodes(sessions, timeout=timeout):
        run = instance.get_run_by_id(orphan.run_id) if orphan.run_id else None
        if run is not None and run.status == dg.DagsterRunStatus.SUCCESS:
            continue
        reason = orphan.reason(timeout)
        if not lifecycle.failed(orphan.node_uuid, reason, orphan.process_uuid):
            continue
        ended.append(orphan)
        if run is not None and not run.is_finished and run.run_id not in reported:
            reported.add(run.run_id)
            instance.report_run_failed(run, f"Node {orphan.title!r}: {reason}")
    return ended
