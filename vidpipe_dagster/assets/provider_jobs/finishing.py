"""The one path that finishes a provider job: the polling sensor and the webhooks both call
:func:`finish_job`.

- ``completed``: the media is copied into storage at once (provider URLs expire) under the
  execution's own key ``pipelines/<p>/nodes/<n>/<process_uuid>.<ext>``, then lifecycle
  ``succeeded`` with the output (type, key, size, duration, cost) and
  ``metadata.dagster_reported = false``;
- ``failed``: lifecycle ``failed`` with the provider's reason.

Racing finishers are harmless: storage refuses to overwrite the key (the loser reuses the
stored object) and the lifecycle applies one transition per ``process_uuid``; a node edited
or restarted meanwhile drops the late result.
"""

from __future__ import annotations

import logging
import tempfile
from pathlib import Path
from typing import Any, Literal

from lambdas import mp4
from lambdas.ffmpeg import FFmpegError, probe
from vidpipe_dagster.assets.provider_jobs.in_flight import InFlightJob
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.resources.providers.clients import fetch_job_result
from vidpipe_dagster.resources.providers.errors import ProviderError
from vidpipe_dagster.resources.providers.prices import estimate_cost, prices_from_settings
from vidpipe_dagster.resources.providers.registry import get_unit
from vidpipe_dagster.resources.providers.status import JobStatus
from vidpipe_dagster.resources.storage import ObjectExistsError, Storage, node_output_key

log = logging.getLogger(__name__)

Outcome = Literal["completed", "failed", "kept", "dropped"]


def _measure_seconds(location: str) -> float:
    """The media's duration: from the MP4 header when it is a local MP4 (no process
    started), else from ffmpeg."""
    path = Path(location)
    if path.suffix.lower() in (".mp4", ".mov", ".m4a") and path.is_file():
        seconds = mp4.duration(path)
        if seconds:
            return float(seconds)
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
    client: Any,
    workdir: Path,
) -> tuple[str, int, float]:
    """Copy the job's media into storage under the execution's key: ``(key, size, seconds)``.

    When the key already holds the object (another finisher got there first), that object
    is used as it is.
    """
    unit = get_unit(job.provider)
    ext = unit.media_extension if unit else "mp4"
    content_type = unit.media_type if unit else "video/mp4"
    key = node_output_key(job.pipeline_uuid, job.node_uuid, job.process_uuid, ext)
    if storage.exists(key):
        return key, storage.size(key), _measure_seconds(storage.media_location(key))
    dest = workdir / f"result.{ext}"
    fetch_job_result(client, job.job_id, dest, status=status)
    seconds = _measure_seconds(str(dest))
    try:
        size = storage.put_file(key, dest, content_type=content_type)
    except ObjectExistsError:
        size = storage.size(key)
    return key, size, seconds


def _result_output(
    job: InFlightJob, status: JobStatus, *, key: str, size: int, seconds: float, settings: Any
) -> dict[str, Any]:
    """The node output of ``job``'s result, stored at ``key`` (``size`` bytes, ``seconds``)."""
    unit = get_unit(job.provider)
    return {
        "type": "video",
        "s3_key": key,
        "size": size,
        "duration": round(seconds, 3),
        "content_type": unit.media_type if unit else "video/mp4",
        "provider": job.provider,
        "provider_job_id": job.job_id,
        "cost": round(_actual_cost(job, status, seconds=seconds, settings=settings), 6),
    }


def finish_job(
    job: InFlightJob,
    status: JobStatus,
    *,
    lifecycle: Lifecycle,
    storage: Storage,
    client: Any,
    settings: Any,
    source: str,
    current: bool | None = None,
) -> Outcome:
    """Finish ``job`` from a terminal ``status`` (poll or webhook); what happened.

    ``completed`` and ``failed`` mean this call made the transition; ``dropped`` that the
    node no longer waits on this execution (edited, restarted or finished by someone else);
    ``kept`` that fetching the result failed transiently (try again on the next poll).
    Anything the provider refuses permanently while fetching fails the node. ``current``
    says the caller has just read that the node still waits on this execution (the sensor
    reads that for all its jobs at once), saving the check here.
    """
    if current is None:
        current = lifecycle.current_process_uuid(job.node_uuid) == job.process_uuid
    if not current:
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
    output = _result_output(job, status, key=key, size=size, seconds=seconds, settings=settings)
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
