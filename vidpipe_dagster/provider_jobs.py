"""Provider jobs in flight: admitting submissions, and the one path that finishes them.

A node waiting on a provider is ``in_progress`` with ``provider``, ``provider_job_id`` and
``process_uuid`` in its metadata. The polling sensor and the webhooks both finish it with
:func:`finish_job`:

- ``completed``: the media is copied into storage at once (provider URLs expire) under the
  execution's own key ``pipelines/<p>/nodes/<n>/<process_uuid>.<ext>``, then lifecycle
  ``succeeded`` with the output (type, key, size, duration, cost) and
  ``metadata.dagster_reported = false``;
- ``failed``: lifecycle ``failed`` with the provider's reason.

Racing finishers are harmless: storage refuses to overwrite the key (the loser reuses the
stored object) and the lifecycle applies one transition per ``process_uuid``; a node edited
or restarted meanwhile drops the late result. Exactly one Dagster materialization follows:
the sensor reports completed nodes whose ``dagster_reported`` is false after winning
``Lifecycle.claim_report`` for them (:func:`claim_unreported`).

:func:`admit_submission` runs before paid work is started: the pipeline's budget (with the
estimates of jobs already in flight reserved) and the per-provider limit of jobs in flight.
"""

from __future__ import annotations

import logging
import tempfile
import time
import uuid as uuid_lib
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, Literal

from sqlalchemy import func, select, text
from sqlalchemy.orm import Session, sessionmaker

from lambdas.ffmpeg import FFmpegError, probe
from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.domain.costs import NodeEstimate, check_budget, estimate_nodes
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.domain.node_types import effective_provider
from vidpipe_dagster.resources.providers.base import JobStatus, ProviderError
from vidpipe_dagster.resources.providers.prices import (
    CostEstimate,
    estimate_cost,
    prices_from_settings,
)
from vidpipe_dagster.resources.providers.registry import (
    ASYNC_PROVIDERS,
    MEDIA_EXTENSIONS,
    PAID_PROVIDERS,
    JobClient,
    fetch_job_result,
    jobs_limit,
)
from vidpipe_dagster.resources.storage import ObjectExistsError, Storage, node_output_key

log = logging.getLogger(__name__)

Outcome = Literal["completed", "failed", "kept", "dropped"]


class ProviderLimitReached(Exception):
    """The provider already has as many jobs in flight as its limit allows."""

    def __init__(self, provider: str, *, in_flight: int, limit: int) -> None:
        super().__init__(
            f"{provider} already has {in_flight} job(s) in flight (limit {limit}); "
            "the node is submitted once one finishes"
        )
        self.provider = provider
        self.in_flight = in_flight
        self.limit = limit


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


def find_job(sessions: sessionmaker[Session], *, provider: str, job_id: str) -> InFlightJob | None:
    """The node ``in_progress`` on ``provider``'s job ``job_id``, else ``None``."""
    with sessions() as session:
        rows = session.execute(
            _job_columns().where(
                Node.status == "in_progress",
                Node.metadata_["provider_job_id"].as_string() == job_id,
            )
        ).all()
    for row in rows:
        job = _job_from_row(row)
        if job is not None and job.provider == provider:
            return job
    return None


def _measure_seconds(location: str) -> float:
    try:
        return float(probe(location).duration or 0.0)
    except FFmpegError:
        return 0.0


def _actual_cost(job: InFlightJob, status: JobStatus, *, seconds: float, settings: Any) -> float:
    if status.cost_usd is not None:
        return float(status.cost_usd)
    estimate = estimate_cost(
        job.provider,
        job.node_type,
        job.config,
        seconds=seconds or None,
        prices=prices_from_settings(settings),
    )
    return estimate.usd


def store_result(
    job: InFlightJob,
    status: JobStatus,
    *,
    storage: Storage,
    client: JobClient,
    workdir: Path,
) -> tuple[str, int, float]:
    """Copy the job's media into storage under the execution's key: ``(key, size, seconds)``.

    When the key already holds the object (another finisher got there first), that object
    is used as it is.
    """
    ext = MEDIA_EXTENSIONS.get(job.provider, "mp4")
    key = node_output_key(job.pipeline_uuid, job.node_uuid, job.process_uuid, ext)
    if storage.exists(key):
        return key, storage.size(key), _measure_seconds(storage.media_location(key))
    dest = workdir / f"result.{ext}"
    fetch_job_result(client, job.job_id, dest, status=status)
    seconds = _measure_seconds(str(dest))
    try:
        size = storage.put_file(key, dest, content_type="video/mp4")
    except ObjectExistsError:
        size = storage.size(key)
    return key, size, seconds


def finish_job(
    job: InFlightJob,
    status: JobStatus,
    *,
    lifecycle: Lifecycle,
    storage: Storage,
    client: JobClient | None,
    settings: Any,
    source: str,
) -> Outcome:
    """Finish ``job`` from a terminal ``status`` (poll or webhook); what happened.

    ``client`` fetches a completed job's media; a failure needs none.

    ``completed`` and ``failed`` mean this call made the transition; ``dropped`` that the
    node no longer waits on this execution (edited, restarted or finished by someone else);
    ``kept`` that fetching the result failed transiently (try again on the next poll).
    Anything the provider refuses permanently while fetching fails the node.
    """
    if lifecycle.current_process_uuid(job.node_uuid) != job.process_uuid:
        return "dropped"
    if status.state == "failed":
        reason = f"{job.provider} job {job.job_id} failed: {status.error or 'no reason given'}"
        return "failed" if lifecycle.failed(job.node_uuid, reason, job.process_uuid) else "dropped"
    if status.state != "completed":
        return "kept"
    try:
        with tempfile.TemporaryDirectory(prefix="vidpipe-result-") as workdir:
            key, size, seconds = store_result(
                job, status, storage=storage, client=client, workdir=Path(workdir)
            )
    except ProviderError as exc:
        if exc.retryable:
            log.warning("fetching %s job %s failed, kept: %s", job.provider, job.job_id, exc)
            return "kept"
        reason = f"{job.provider} job {job.job_id} finished but its result cannot be fetched: {exc}"
        return "failed" if lifecycle.failed(job.node_uuid, reason, job.process_uuid) else "dropped"
    output = {
        "type": "video",
        "s3_key": key,
        "size": size,
        "duration": round(seconds, 3),
        "content_type": "video/mp4",
        "provider": job.provider,
        "provider_job_id": job.job_id,
        "cost": round(_actual_cost(job, status, seconds=seconds, settings=settings), 6),
    }
    done = lifecycle.succeeded(
        job.node_uuid,
        output,
        job.process_uuid,
        metadata={
            "stage": "completed",
            "progress": 1.0,
            "completed_by": source,
            "dagster_reported": False,
        },
    )
    return "completed" if done else "dropped"


@dataclass(frozen=True)
class Unreported:
    """A node completed outside a run whose materialization is not reported yet."""

    node_uuid: str
    pipeline_uuid: str
    node_type: str
    process_uuid: str
    output: dict[str, Any]
    metadata: dict[str, Any]


def unreported_completions(sessions: sessionmaker[Session]) -> list[Unreported]:
    """Completed nodes with ``metadata.dagster_reported`` false."""
    with sessions() as session:
        rows = session.execute(
            select(Node.id, Node.pipeline_id, Node.type, Node.output, Node.metadata_).where(
                Node.status == "completed",
                Node.metadata_["dagster_reported"].as_boolean().is_(False),
            )
        ).all()
    return [
        Unreported(
            node_uuid=str(row.id),
            pipeline_uuid=str(row.pipeline_id),
            node_type=row.type,
            process_uuid=str((row.metadata_ or {}).get("process_uuid")),
            output=dict(row.output or {}),
            metadata=dict(row.metadata_ or {}),
        )
        for row in rows
    ]


def claim_unreported(lifecycle: Lifecycle, candidates: Iterable[Unreported]) -> list[Unreported]:
    """The candidates this caller won the report of (each node goes to one caller)."""
    return [c for c in candidates if lifecycle.claim_report(c.node_uuid, c.process_uuid)]


def _force_local(settings: Any) -> bool:
    return (settings.providers or "").strip().lower() == "local"


def _reservations(rows: Iterable[Node], *, exclude: str) -> list[NodeEstimate]:
    reserved: list[NodeEstimate] = []
    for row in rows:
        metadata = row.metadata_ or {}
        if row.uuid == exclude or row.status != "in_progress":
            continue
        if not metadata.get("provider_job_id"):
            continue
        usd = metadata.get("estimated_cost")
        if isinstance(usd, int | float) and usd > 0:
            estimate = CostEstimate(str(metadata.get("provider")), float(usd), 0.0, None, None)
            reserved.append(NodeEstimate(node=row, estimate=estimate))
    return reserved


def in_flight_count(session: Session, provider: str, *, exclude: str | None = None) -> int:
    """Nodes ``in_progress`` at ``provider`` (submitting or waiting), other than ``exclude``."""
    query = select(func.count()).where(
        Node.status == "in_progress",
        Node.metadata_["provider"].as_string() == provider,
    )
    if exclude:
        query = query.where(Node.id != uuid_lib.UUID(exclude))
    return int(session.execute(query).scalar_one())


def provider_slot(provider: str, *, node_uuid: str, settings: Any) -> Callable[[Session], None]:
    """An ``admit`` hook for ``Lifecycle.started``: refuse when ``provider`` is at its limit.

    It runs in the transaction that marks the node ``in_progress`` with its provider, under
    a per-provider advisory lock on PostgreSQL (SQLite serialises writers anyway), so two
    steps starting at once can't both take the last slot.
    """
    limit = jobs_limit(provider, settings)

    def admit(session: Session) -> None:
        if session.get_bind().dialect.name == "postgresql":
            session.execute(
                text("SELECT pg_advisory_xact_lock(hashtext(:key))"),
                {"key": f"vidpipe:provider:{provider}"},
            )
        count = in_flight_count(session, provider, exclude=node_uuid)
        if count >= limit:
            raise ProviderLimitReached(provider, in_flight=count, limit=limit)

    return admit


def admit_submission(
    sessions: sessionmaker[Session], *, node_uuid: str, settings: Any
) -> str | None:
    """Check a node may start paid work now; return its paid provider (``None`` if free).

    Raises ``ValidationError`` ("Over budget: ...") when its estimate, plus the estimates of
    the pipeline's jobs in flight, exceeds what is left of ``config.budget``. The limit of
    jobs in flight per provider is checked when the node starts (:func:`provider_slot`).
    """
    with sessions() as session:
        node = session.get(Node, uuid_lib.UUID(node_uuid))
        if node is None:
            return None
        provider = effective_provider(node.type, node.config, force_local=_force_local(settings))
        if provider not in PAID_PROVIDERS:
            return None
        pipeline = session.get(Pipeline, node.pipeline_id)
        every = list(session.scalars(select(Node).where(Node.pipeline_id == node.pipeline_id)))
        lines = estimate_nodes(
            [node],
            every,
            force_local=_force_local(settings),
            prices=prices_from_settings(settings),
        )
        if pipeline is not None and sum(line.estimate.usd for line in lines) > 0:
            check_budget(pipeline, [*lines, *_reservations(every, exclude=node.uuid)])
    return provider


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


def now_utc() -> datetime:
    """The current time (UTC)."""
    return datetime.now(UTC)


def elapsed_since(begun: float) -> float:
    """Seconds since the monotonic timestamp ``begun``."""
    return time.monotonic() - begun


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


def metadata_of(values: Mapping[str, Any]) -> dict[str, Any]:
    """A JSON-safe copy of ``values`` for node metadata."""
    return {key: value for key, value in values.items() if value is not None}
