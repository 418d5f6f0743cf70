"""The execution lifecycle: the only way a node's ``status`` changes while it runs.

``started`` -> ``updated``* -> ``succeeded`` | ``failed``. Each call is one transaction that
reads, checks and writes the node under a row lock (``SELECT ... FOR UPDATE``; on SQLite the
first lock takes the database's write lock, see :mod:`vidpipe_dagster.db.session`). A call
carrying a ``process_uuid`` that is not the node's current one, or for a node no longer
``in_progress``, changes nothing and raises nothing: it belongs to a superseded execution
whose late results must be dropped.

Lock order
----------
Every writer of the pipeline tables (API edits and deletes, an execute's launch claims
(:mod:`~vidpipe_dagster.domain.launches`), these transitions, admission and the provider-slot
queue, the progress refresh, webhooks, schedules, the code location's
compile-error notes) takes its row locks in this one order, and never goes back up it:

0. the pipeline-names lock (``pg_advisory_xact_lock``), taken by the flush that inserts a
   pipeline (:func:`~vidpipe_dagster.db.names.lock_pipeline_naming`); only the API's create
   and the demo insert pipelines, each before it locks any row;
1. pipeline rows (``video_production_pipelines``), by id when there are several;
2. node rows (``video_production_nodes``), by id when there are several;
3. the per-provider admission lock (``pg_advisory_xact_lock`` in
   :mod:`vidpipe_dagster.assets.provider_jobs`).
4. the live-status event lock, taken by the commit itself as its last statements
   (:mod:`vidpipe_dagster.domain.events`); its holder waits for nothing else.

A transaction may skip a level (``updated`` locks only its node), but one holding a node lock
never asks for a pipeline lock. So a transition that changes a node's status locks the
pipeline first (which also serialises the progress recount,
:func:`~vidpipe_dagster.domain.progress.refresh_pipeline_metadata`), then the node; deleting a
node or a pipeline locks the pipeline, then all of its nodes by id, before deleting (the
foreign key's cascade then finds them locked). A lock conflict that still happens (a writer
outside vidpipe, a SQLite writer past its busy timeout) reruns the call, bounded
(:func:`~vidpipe_dagster.db.conflicts.retry_conflicts`).
"""

from __future__ import annotations

import logging
import uuid as uuid_lib
from collections.abc import Callable
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.db.conflicts import retry_conflicts
from vidpipe_dagster.db.models import Node, utcnow
from vidpipe_dagster.domain import events
from vidpipe_dagster.domain.errors import NotFoundError
from vidpipe_dagster.domain.launches import clear_queued
from vidpipe_dagster.domain.node_rows import (
    is_current,
    lock_node,
    node_id,
    write_metadata_many,
    write_node,
)
from vidpipe_dagster.domain.progress import refresh_pipeline_metadata

log = logging.getLogger(__name__)

EXECUTION_KEYS = (
    "error",
    "completed_at",
    "provider_job_id",
    "stage",
    "progress",
    "poll_attempts",
    "submitted_at",
    "last_polled_at",
    "last_poll_error",
    "estimated_cost",
    "completed_by",
    "dagster_reported",
    "waiting",
    "refused",
    "refused_at",
    "retryable",
    "signature",
    "reused_from",
    "launching",
    "queued_run",
    "not_run_by",
)
"""Metadata that belongs to one execution, cleared when a new one starts (a restarted node
must not be finished by the previous execution's provider job)."""

INTERRUPTED = (
    "Interrupted: the run was stopped (Ctrl-C, a cancel or a shutdown) before this node "
    "finished; execute it again."
)
"""The error of an execution stopped on purpose before it finished."""


def _cost(value: Any) -> float:
    try:
        return float(value or 0.0)
    except (TypeError, ValueError):
        return 0.0


def _signed(output: Any, *, signature: Any, process_uuid: str) -> dict[str, Any]:
    signed = dict(output) if isinstance(output, dict) else {}
    if isinstance(signature, str) and signature:
        signed["signature"] = signature
    elif not isinstance(signed.get("signature"), str):
        signed.pop("signature", None)
    signed.setdefault("process_uuid", process_uuid)
    return signed


class Lifecycle:
    """Lifecycle transitions over a session factory; each method is its own transaction."""

    def __init__(self, sessions: sessionmaker[Session]) -> None:
        self.sessions = sessions

    @retry_conflicts
    def started(
        self,
        node_uuid: str,
        metadata: dict[str, Any] | None = None,
        *,
        admit: Callable[[Session], None] | None = None,
        check: Callable[[Any], None] | None = None,
    ) -> str:
        """Mark the node ``in_progress`` for a new execution and return its ``process_uuid``.

        Any execution already running is superseded: its ``process_uuid`` stops matching.
        The previous execution's :data:`EXECUTION_KEYS` are cleared; other metadata is kept.
        ``admit`` runs first inside the same transaction, under the node's lock: whatever it
        raises aborts the start and leaves the node as it was (a per-provider limit check
        counts the running nodes atomically this way). ``check`` runs before it with the
        locked row (its structure columns included) and refuses the same way: a run whose
        plan no longer matches the row starts nothing (``vidpipe_dagster.runs.plans``).
        """
        process_uuid = str(uuid_lib.uuid4())
        with self.sessions() as session, session.begin():
            row = lock_node(session, node_uuid)
            if row is None:
                raise NotFoundError("Node not found")
            if check is not None:
                check(row)
            if admit is not None:
                admit(session)
            merged = dict(row.metadata_ or {})
            for name in EXECUTION_KEYS:
                merged.pop(name, None)
            merged.update(metadata or {})
            merged["process_uuid"] = process_uuid
            merged["started_at"] = utcnow().isoformat()
            write_node(session, row, status="in_progress", metadata_=merged)
            refresh_pipeline_metadata(session, row.pipeline_id)
        return process_uuid

    @retry_conflicts
    def updated(self, node_uuid: str, metadata: dict[str, Any], process_uuid: str) -> bool:
        """Merge ``metadata`` into the running execution's metadata; False when stale."""
        with self.sessions() as session, session.begin():
            row = lock_node(session, node_uuid, pipeline=False)
            if not is_current(row, process_uuid):
                return False
            merged = {**(row.metadata_ or {}), **(metadata or {})}
            merged["process_uuid"] = process_uuid
            write_node(session, row, metadata_=merged)
        return True

    @retry_conflicts
    def succeeded(
        self,
        node_uuid: str,
        output: dict[str, Any],
        process_uuid: str,
        *,
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        """Complete the execution with ``output`` (merging ``metadata``); False when stale.

        A success ends a failure streak, so the retry count (``retries``, ``retried_at``) is
        cleared: a later failure gets the full ``maxRetries`` again. The output records the
        execution's ``signature`` (given at ``started``, see ``domain.signatures``) and the
        ``process_uuid`` that rendered it (kept when the output is reused); the
        ``output_signature`` column follows it.
        """
        with self.sessions() as session, session.begin():
            row = lock_node(session, node_uuid)
            if not is_current(row, process_uuid):
                log.info("dropping late success of %s for node %s", process_uuid, node_uuid)
                return False
            merged = {**(row.metadata_ or {}), **(metadata or {})}
            merged["completed_at"] = utcnow().isoformat()
            for name in ("error", "retries", "retried_at"):
                merged.pop(name, None)
            cost = _cost(output.get("cost")) if isinstance(output, dict) else 0.0
            if cost:
                merged["cost"] = cost
            output = _signed(output, signature=merged.get("signature"), process_uuid=process_uuid)
            write_node(
                session,
                row,
                status="completed",
                metadata_=merged,
                output=output,
                output_signature=output.get("signature"),
            )
            refresh_pipeline_metadata(session, row.pipeline_id, add_cost=cost)
        return True

    @retry_conflicts
    def failed(
        self,
        node_uuid: str,
        error: str,
        process_uuid: str | None,
        *,
        metadata: dict[str, Any] | None = None,
    ) -> bool:
        """Fail the execution with ``error`` (merging ``metadata``); False when stale.

        ``process_uuid=None`` is a refusal: a node whose execution never started (over
        budget, a missing API key found before submission). It applies unless the node is
        ``in_progress`` under some execution, and it never overwrites a result: a
        ``completed`` node stays completed with its output, the refusal recorded in
        ``metadata.refused`` (False is returned). Either way a wait for a provider slot
        ends.
        """
        with self.sessions() as session, session.begin():
            row = lock_node(session, node_uuid)
            if row is None:
                return False
            current = (row.metadata_ or {}).get("process_uuid")
            if process_uuid is None:
                if row.status == "in_progress" and current:
                    return False
            elif not is_current(row, process_uuid):
                return False
            merged = dict(row.metadata_ or {})
            if merged.pop("waiting", None) is not None:
                merged.pop("stage", None)
            clear_queued(merged)
            now = utcnow().isoformat()
            if process_uuid is None and row.status == "completed":
                merged.pop("stage", None)
                merged.update(refused=str(error), refused_at=now)
                write_node(session, row, metadata_=merged)
                log.info("node %s stays completed; refused: %s", node_uuid, error)
                return False
            merged.update(metadata or {})
            merged["error"] = str(error)
            merged["completed_at"] = now
            write_node(session, row, status="failed", metadata_=merged)
            refresh_pipeline_metadata(session, row.pipeline_id)
        return True

    @retry_conflicts
    def updated_many(self, updates: dict[str, tuple[str, dict[str, Any]]]) -> int:
        """:meth:`updated` for many nodes in one transaction: ``{node: (process, metadata)}``.

        Stale entries are skipped; returns how many nodes were updated.
        """
        if not updates:
            return 0
        ids = {node_id(node_uuid): node_uuid for node_uuid in updates}
        written = 0
        with self.sessions() as session, session.begin():
            rows = session.execute(
                select(Node.id, Node.pipeline_id, Node.status, Node.metadata_)
                .where(Node.id.in_(list(ids)))
                .order_by(Node.id)
                .with_for_update()
            ).all()
            batch = []
            for row in rows:
                process_uuid, metadata = updates[ids[row.id]]
                if not is_current(row, process_uuid):
                    continue
                merged = {**(row.metadata_ or {}), **metadata, "process_uuid": process_uuid}
                batch.append({"node_id": row.id, "merged": merged})
                events.node_changed(session, row.id, row.pipeline_id)
            write_metadata_many(session, batch)
            written = len(batch)
        return written

    @retry_conflicts
    def claim_reports(self, claims: dict[str, str]) -> set[str]:
        """Claim the one Dagster report of each completion finished outside a run, for many
        nodes in one transaction: ``{node: process_uuid}``; returns the nodes this caller won.

        A node is won by exactly one caller: it is ``completed`` by its ``process_uuid`` with
        ``metadata.dagster_reported`` false, which this flips to true under the row lock.
        """
        if not claims:
            return set()
        ids = {node_id(node_uuid): node_uuid for node_uuid in claims}
        won: set[str] = set()
        with self.sessions() as session, session.begin():
            rows = session.execute(
                select(Node.id, Node.status, Node.metadata_)
                .where(Node.id.in_(list(ids)))
                .order_by(Node.id)
                .with_for_update()
            ).all()
            batch = []
            for row in rows:
                metadata = dict(row.metadata_ or {})
                if row.status != "completed" or metadata.get("dagster_reported") is not False:
                    continue
                if metadata.get("process_uuid") != claims[ids[row.id]]:
                    continue
                metadata["dagster_reported"] = True
                batch.append({"node_id": row.id, "merged": metadata})
                won.add(ids[row.id])
            write_metadata_many(session, batch)
        return won

    @retry_conflicts
    def not_run(self, node_uuid: str, reason: str, *, run_id: str | None = None) -> bool:
        """Say in ``metadata.stage`` why a run asked for the node but did not run it.

        Status, output and the rest stay; nothing is written for a node ``in_progress``
        (another execution holds it) or waiting for a provider slot (its stage says so).
        ``run_id`` (the run that passed it by) is kept in ``metadata.not_run_by``. The next
        execution's start clears both. True when written.
        """
        with self.sessions() as session, session.begin():
            row = lock_node(session, node_uuid, pipeline=False)
            if row is None or row.status == "in_progress":
                return False
            metadata = dict(row.metadata_ or {})
            if metadata.get("waiting"):
                return False
            clear_queued(metadata)
            metadata["stage"] = reason
            if run_id:
                metadata["not_run_by"] = run_id
            write_node(session, row, metadata_=metadata)
        return True

    def current_process_uuid(self, node_uuid: str) -> str | None:
        """The process_uuid of the node's running execution, or None when it is not running."""
        with self.sessions() as session:
            row = session.execute(
                select(Node.status, Node.metadata_).where(Node.id == node_id(node_uuid))
            ).one_or_none()
        if row is None or row.status != "in_progress":
            return None
        return (row.metadata_ or {}).get("process_uuid")
