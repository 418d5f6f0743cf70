"""Polling the provider jobs in flight and recording what the providers said.

The first steps of a provider sensor tick (``provider_sensor.poll_provider_jobs``): read
every node ``in_progress`` on an asynchronous provider's job, poll all of them concurrently
(per provider at most ``VIDPIPE_POLL_CONCURRENCY`` at a time, time-boxed), then record
progress in one transaction, failing jobs the provider failed or that ran past the
provider's maximum wait; the jobs that finished are handed back to be finished.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections import defaultdict
from collections.abc import Mapping
from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

import dagster as dg

from vidpipe_dagster.assets.provider_jobs import InFlightJob, in_flight_jobs
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.resources.dagster_resources import VidpipeResource
from vidpipe_dagster.resources.providers.errors import (
    AuthError,
    MalformedResponseError,
    ProviderError,
)
from vidpipe_dagster.resources.providers.polling import apoll_many, make_async_client
from vidpipe_dagster.resources.providers.status import JobStatus

log = logging.getLogger(__name__)

Finishing = list[tuple[InFlightJob, JobStatus]]


@dataclass
class TickResult:
    """What one tick did and what it reports to Dagster."""

    asset_events: list[dg.AssetMaterialization] = field(default_factory=list)
    run_requests: list[dg.RunRequest] = field(default_factory=list)
    counts: dict[str, int] = field(default_factory=lambda: defaultdict(int))

    def summary(self) -> str:
        """``polled=.. completed=.. ...`` for the tick's log line and skip reason."""
        return " ".join(f"{name}={count}" for name, count in sorted(self.counts.items()))


def _poll_outcome_kind(outcome: JobStatus | ProviderError) -> str:
    if isinstance(outcome, JobStatus):
        return outcome.state
    if outcome.retryable or isinstance(outcome, AuthError | MalformedResponseError):
        return "transient"
    return "rejected"


async def _poll_groups(
    groups: Mapping[str, list[InFlightJob]],
    clients: Mapping[str, Any],
    *,
    concurrency: int,
    time_budget: float,
) -> dict[tuple[str, str], JobStatus | ProviderError]:
    async with make_async_client(concurrency=concurrency * max(1, len(clients))) as aclient:
        polled = await asyncio.gather(
            *(
                apoll_many(
                    clients[provider],
                    [job.job_id for job in jobs],
                    concurrency=concurrency,
                    time_budget=time_budget,
                    client=aclient,
                )
                for provider, jobs in groups.items()
            )
        )
    outcomes: dict[tuple[str, str], JobStatus | ProviderError] = {}
    for provider, results in zip(groups, polled, strict=True):
        for job_id, outcome in results.items():
            outcomes[(provider, job_id)] = outcome
    return outcomes


def _jobs_and_clients(
    resource: VidpipeResource, result: TickResult
) -> tuple[dict[str, list[InFlightJob]], dict[str, Any]]:
    """The jobs in flight by provider and a client per provider that can be polled (the
    jobs of one that cannot are counted ``unpollable`` and left alone)."""
    groups: dict[str, list[InFlightJob]] = defaultdict(list)
    for job in in_flight_jobs(resource.sessions()):
        groups[job.provider].append(job)
    providers = resource.provider_clients()
    clients: dict[str, Any] = {}
    for provider in list(groups):
        try:
            clients[provider] = providers.client(provider)
        except ProviderError as exc:
            log.warning("cannot poll %d %s job(s): %s", len(groups[provider]), provider, exc)
            result.counts["unpollable"] += len(groups.pop(provider))
    return groups, clients


def poll_in_flight(
    resource: VidpipeResource, *, result: TickResult, now: datetime, begun: float
) -> tuple[Finishing, dict[str, Any]]:
    """Poll every job in flight and record what it said (steps 1-3 of a tick): the jobs
    the provider finished, and the clients that polled them."""
    settings = resource.settings()
    groups, clients = _jobs_and_clients(resource, result)
    providers = resource.provider_clients()
    max_waits = {p: providers.settings_of(p).max_wait_seconds for p in groups}
    phase = time.monotonic()
    result.counts["read_ms"] = int((phase - begun) * 1000)
    outcomes = (
        asyncio.run(
            _poll_groups(
                groups,
                clients,
                concurrency=settings.poll_concurrency,
                time_budget=float(settings.poll_time_budget_seconds) / 2,
            )
        )
        if groups
        else {}
    )
    result.counts["poll_ms"] = int((time.monotonic() - phase) * 1000)
    phase = time.monotonic()
    lifecycle = resource.lifecycle()
    progress: dict[str, tuple[str, dict[str, Any]]] = {}
    finishing: Finishing = []
    for jobs in groups.values():
        for job in jobs:
            outcome = outcomes[(job.provider, job.job_id)]
            result.counts["polled"] += 1
            if isinstance(outcome, JobStatus) and outcome.state in ("completed", "failed"):
                finishing.append((job, outcome))
                continue
            update = _judge(
                lifecycle, job, outcome, result=result, now=now, limit=max_waits[job.provider]
            )
            if update is not None:
                progress[job.node_uuid] = (job.process_uuid, update)
    lifecycle.updated_many(progress)
    result.counts["record_ms"] = int((time.monotonic() - phase) * 1000)
    return finishing, clients


def _judge(
    lifecycle: Lifecycle,
    job: InFlightJob,
    outcome: JobStatus | ProviderError,
    *,
    result: TickResult,
    now: datetime,
    limit: float,
) -> dict[str, Any] | None:
    """The progress to record for a job still running (None when it was failed: the
    provider rejected the poll, or it ran past the provider's maximum wait)."""
    attempts = job.poll_attempts + 1
    if _poll_outcome_kind(outcome) == "rejected":
        reason = f"{job.provider} job {job.job_id} cannot be polled: {outcome}"
        if lifecycle.failed(job.node_uuid, reason, job.process_uuid):
            result.counts["failed"] += 1
        return None
    if job.waited_seconds(now) > limit:
        reason = (
            f"Polling timeout after {attempts} attempts: {job.provider} job "
            f"{job.job_id} did not finish within {limit:g} s"
        )
        if lifecycle.failed(job.node_uuid, reason, job.process_uuid):
            result.counts["timed_out"] += 1
        return None
    update: dict[str, Any] = {"poll_attempts": attempts, "last_polled_at": now.isoformat()}
    if isinstance(outcome, JobStatus):
        update["stage"] = outcome.state
        if outcome.progress is not None:
            update["progress"] = round(outcome.progress, 4)
        result.counts["running"] += 1
    else:
        update["last_poll_error"] = str(outcome)[:500]
        result.counts["transient"] += 1
    return update
