"""What a retried run step may redo: nodes an earlier attempt finished are not redone, and
only transient provider failures are worth a retry."""

from __future__ import annotations

import uuid as uuid_lib
from collections.abc import Iterable

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.assets.provider_jobs.admission import ProviderLimitReached
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.resources.providers.errors import ProviderError


def settled_in_run(
    sessions: sessionmaker[Session], *, run_id: str, node_uuids: Iterable[str]
) -> dict[str, str]:
    """Nodes an earlier attempt of run ``run_id`` already finished: ``completed``,
    ``waiting`` (submitted to a provider) or ``failed`` for good (a failure not marked
    ``metadata.retryable``), so a retried step redoes neither paid work nor lost causes."""
    ids = [uuid_lib.UUID(u) for u in node_uuids]
    if not ids:
        return {}
    with sessions() as session:
        rows = session.execute(
            select(Node.id, Node.status, Node.metadata_).where(Node.id.in_(ids))
        ).all()
    settled: dict[str, str] = {}
    for row in rows:
        metadata = row.metadata_ or {}
        if metadata.get("dagster_run_id") != run_id:
            continue
        if row.status == "completed":
            settled[str(row.id)] = "completed"
        elif row.status == "in_progress" and metadata.get("provider_job_id"):
            settled[str(row.id)] = "waiting"
        elif row.status == "failed" and metadata.get("retryable") is not True:
            settled[str(row.id)] = "failed"
    return settled


def transient_provider_failure(error: BaseException) -> bool:
    """Whether a node failure is worth retrying the run step for."""
    if isinstance(error, ProviderLimitReached):
        return True
    cause: BaseException | None = error
    while cause is not None:
        if isinstance(cause, ProviderError):
            return cause.retryable
        cause = cause.__cause__
    return False
