"""Nodes waiting on a provider job, read from their rows.

A node waiting on a provider is ``in_progress`` with ``provider``, ``provider_job_id`` and
``process_uuid`` in its metadata. :func:`in_flight_jobs` lists them for the polling sensor;
:func:`find_job` finds the one waiting on a given job (webhooks), or on a given execution when
the callback names only our reference.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import datetime
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.db.models import Node
from vidpipe_dagster.resources.providers.registry import ASYNC_PROVIDERS


@dataclass(frozen=True)
class InFlightJob:
    """A node waiting on a provider job, as its row says now."""

    node_uuid: str
    pipeline_uuid: str
    node_type: str
    config: dict[str, Any]
    provider: str
    job_id: str
    process_uuid: str
    metadata: dict[str, Any]

    @property
    def poll_attempts(self) -> int:
        """Polls made so far."""
        value = self.metadata.get("poll_attempts")
        return value if isinstance(value, int) else 0

    @property
    def submitted_at(self) -> datetime | None:
        """When the job was submitted (the execution's start as a fallback)."""
        for name in ("submitted_at", "started_at"):
            try:
                return datetime.fromisoformat(self.metadata[name])
            except (KeyError, TypeError, ValueError):
                continue
        return None

    def waited_seconds(self, now: datetime) -> float:
        """Seconds since submission (0 when unknown)."""
        submitted = self.submitted_at
        return (now - submitted).total_seconds() if submitted else 0.0


def _job_from_row(row: Any) -> InFlightJob | None:
    metadata = dict(row.metadata_ or {})
    provider, job_id, process = (
        metadata.get("provider"),
        metadata.get("provider_job_id"),
        metadata.get("process_uuid"),
    )
    if not (isinstance(provider, str) and isinstance(job_id, str) and isinstance(process, str)):
        return None
    return InFlightJob(
        node_uuid=str(row.id),
        pipeline_uuid=str(row.pipeline_id),
        node_type=row.type,
        config=dict(row.config or {}),
        provider=provider,
        job_id=job_id,
        process_uuid=process,
        metadata=metadata,
    )


def _job_columns():
    return select(Node.id, Node.pipeline_id, Node.type, Node.config, Node.metadata_)


def in_flight_jobs(sessions: sessionmaker[Session]) -> list[InFlightJob]:
    """Every node ``in_progress`` on an asynchronous provider's job."""
    with sessions() as session:
        rows = session.execute(
            _job_columns().where(
                Node.status == "in_progress",
                Node.metadata_["provider_job_id"].as_string().is_not(None),
            )
        ).all()
    jobs = [_job_from_row(row) for row in rows]
    return [job for job in jobs if job is not None and job.provider in ASYNC_PROVIDERS]


def find_job(
    sessions: sessionmaker[Session],
    *,
    provider: str,
    job_id: str | None,
    reference: str | None = None,
) -> InFlightJob | None:
    """The node ``in_progress`` on ``provider``'s job ``job_id`` (or, failing that, on the
    execution whose process_uuid is ``reference``), else ``None``."""
    conditions = []
    if job_id:
        conditions.append(Node.metadata_["provider_job_id"].as_string() == job_id)
    if reference:
        conditions.append(Node.metadata_["process_uuid"].as_string() == reference)
    for condition in conditions:
        with sessions() as session:
            rows = session.execute(
                _job_columns().where(Node.status == "in_progress", condition)
            ).all()
        for row in rows:
            job = _job_from_row(row)
            if job is not None and job.provider == provider:
                return job
    return None
