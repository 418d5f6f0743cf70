"""The provider polling sensor: finishes the provider jobs that runs submitted.

One tick (:func:`poll_provider_jobs`; steps 1-3 in ``provider_polls``):

1. reads every node ``in_progress`` on an asynchronous provider's job;
2. polls all of them concurrently, per provider at most ``VIDPIPE_POLL_CONCURRENCY`` at a
   time over the httpx-aiohttp transport, the polls time-boxed to half of
   ``VIDPIPE_POLL_TIME_BUDGET_SECONDS`` (unanswered polls count as transient);
3. records progress (``metadata.stage``, ``progress``, ``poll_attempts``) in one
   transaction, fails jobs the provider failed (with its reason) or that ran past the
   provider's maximum wait ("Polling timeout after N attempts"), and keeps the rest;
4. finishes completed jobs through ``provider_jobs.finish_job`` (up to
   :data:`FINISH_WORKERS` at a time over the process's reused provider clients, until the
   time box is used up; the rest wait for the next tick);
5. reports every completion finished outside a run (by this tick or by a webhook) exactly
   once, claimed in one transaction: an ``AssetMaterialization`` (link, duration, size,
   cost, process_uuid, provider_job_id) plus one ``RunRequest`` per pipeline for the
   downstream nodes whose inputs are now all completed, ``run_key``
   ``"<node>:<process_uuid>"``;
6. grants the provider slots now free to the nodes waiting for one, oldest first
   (``provider_queue.grant_slots``): one ``RunRequest`` per granted node, tagged with its
   wait's token, ``run_key`` ``"slot:<node>:<token>"``; the others' ``metadata.stage``
   says how many are ahead.
"""

from __future__ import annotations

import time
import uuid as uuid_lib
from collections import defaultdict
from collections.abc import Iterable, Mapping
from concurrent.futures import ThreadPoolExecutor
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from sqlalchemy import select

from vidpipe_dagster.assets.asset_keys import node_asset_key
from vidpipe_dagster.assets.provider_jobs import (
    InFlightJob,
    Unreported,
    claim_unreported,
    finish_job,
    unreported_completions,
)
from vidpipe_dagster.assets.provider_queue import grant_slots
from vidpipe_dagster.assets.result_metadata import result_metadata
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.db.snapshot import in_shard
from vidpipe_dagster.domain.graph import downstream_selection
from vidpipe_dagster.domain.naming import PipelineNames, names_of, run_tags
from vidpipe_dagster.domain.waiting import WAITING_TAG
from vidpipe_dagster.orchestration.provider_polls import TickResult, poll_in_flight
from vidpipe_dagster.resources.dagster_resources import VidpipeResource
from vidpipe_dagster.resources.providers.status import JobStatus

SENSOR_NAME = "vidpipe_provider_jobs"
FINISH_WORKERS = 32

PREVIEWS_PER_TICK = 5
"""Completions of one tick whose materialization gets a thumbnail (each may take an ffmpeg
call of up to ``previews.TIMEOUT_SECONDS``; the tick has a time budget)."""


def _pipeline_nodes(resource: VidpipeResource, pipeline_uuids: Iterable[str]) -> dict:
    ids = [uuid_lib.UUID(u) for u in set(pipeline_uuids)]
    by_pipeline: dict[str, dict[str, tuple[str, dict]]] = defaultdict(dict)
    if not ids:
        return by_pipeline
    with resource.sessions()() as session:
        rows = session.execute(
            select(Node.id, Node.pipeline_id, Node.status, Node.inputs).where(
                Node.pipeline_id.in_(ids)
            )
        ).all()
    for row in rows:
        by_pipeline[str(row.pipeline_id)][str(row.id)] = (row.status, dict(row.inputs or {}))
    return by_pipeline


def _materialization(
    resource: VidpipeResource, done: Unreported, names: PipelineNames, *, preview: bool
) -> dg.AssetMaterialization:
    output = done.output
    seconds = 0.0
    try:
        begun = datetime.fromisoformat(done.metadata["started_at"])
        ended = datetime.fromisoformat(done.metadata["completed_at"])
        seconds = (ended - begun).total_seconds()
    except (KeyError, TypeError, ValueError):
        pass
    metadata = result_metadata(
        output,
        process_uuid=done.process_uuid,
        node={
            "uuid": done.node_uuid,
            "type": done.node_type,
            "title": names.titles.get(done.node_uuid, ""),
        },
        seconds=seconds,
        storage=resource.storage(),
        settings=resource.settings(),
        preview=preview,
    )
    if done.metadata.get("completed_by"):
        metadata["completed_by"] = str(done.metadata["completed_by"])
    return dg.AssetMaterialization(
        asset_key=node_asset_key(names, done.node_uuid),
        metadata=metadata,
        description="Completed by the provider",
    )


def report_completions(
    resource: VidpipeResource,
    *,
    known_keys: set[dg.AssetKey] | None = None,
    result: TickResult | None = None,
) -> TickResult:
    """Claim and report every completion finished outside a run (see module docstring)."""
    result = result or TickResult()
    settings = resource.settings()
    # with shards, each shard's sensor reports its own pipelines: one that claimed another
    # shard's completion could not request the runs downstream of it
    mine = [
        done
        for done in unreported_completions(resource.sessions())
        if in_shard(
            done.pipeline_uuid, shard=settings.dagster_shard, shards=settings.dagster_shards
        )
    ]
    claimed = claim_unreported(resource.lifecycle(), mine)
    if not claimed:
        return result
    names = names_of(resource.sessions(), [done.pipeline_uuid for done in claimed])
    result.asset_events.extend(
        _materialization(
            resource, done, names[done.pipeline_uuid], preview=number < PREVIEWS_PER_TICK
        )
        for number, done in enumerate(claimed)
    )
    result.counts["reported"] += len(claimed)
    by_pipeline: dict[str, list[Unreported]] = defaultdict(list)
    for done in claimed:
        by_pipeline[done.pipeline_uuid].append(done)
    nodes = _pipeline_nodes(resource, by_pipeline)
    for pipeline_uuid, completions in by_pipeline.items():
        selection = downstream_selection(
            nodes.get(pipeline_uuid, {}), [done.node_uuid for done in completions]
        )
        keys = [node_asset_key(names[pipeline_uuid], u) for u in selection]
        if known_keys is not None:
            keys = [key for key in keys if key in known_keys]
        if not keys:
            continue
        run_key = "+".join(sorted(f"{done.node_uuid}:{done.process_uuid}" for done in completions))
        result.run_requests.append(
            dg.RunRequest(
                run_key=run_key,
                asset_selection=keys,
                tags=run_tags(names[pipeline_uuid], source="provider", node_uuids=selection),
            )
        )
    return result


def grant_waiting(
    resource: VidpipeResource,
    *,
    known_keys: set[dg.AssetKey] | None = None,
    result: TickResult | None = None,
    now: datetime | None = None,
) -> TickResult:
    """Request one run per waiting node granted a provider slot (module docstring, 6)."""
    result = result or TickResult()
    names: dict[str, PipelineNames] = {}

    def named(pipeline_uuid: str) -> PipelineNames:
        if pipeline_uuid not in names:
            names.update(names_of(resource.sessions(), [pipeline_uuid]))
        return names[pipeline_uuid]

    def known(pipeline_uuid: str, node_uuid: str) -> bool:
        return known_keys is None or node_asset_key(named(pipeline_uuid), node_uuid) in known_keys

    grants = grant_slots(resource.sessions(), settings=resource.settings(), now=now, known=known)
    for grant in grants:
        pipeline = named(grant.pipeline_uuid)
        result.run_requests.append(
            dg.RunRequest(
                run_key=grant.run_key,
                asset_selection=[node_asset_key(pipeline, grant.node_uuid)],
                tags={
                    **run_tags(pipeline, source="provider-slot", node_uuids=[grant.node_uuid]),
                    WAITING_TAG: grant.token,
                },
            )
        )
    result.counts["granted"] += len(grants)
    return result


def poll_provider_jobs(
    resource: VidpipeResource,
    *,
    now: datetime | None = None,
    known_keys: set[dg.AssetKey] | None = None,
) -> TickResult:
    """One tick of the provider sensor (see the module docstring)."""
    begun = time.monotonic()
    budget = float(resource.settings().poll_time_budget_seconds)
    now = now or datetime.now(UTC)
    result = TickResult()
    finishing, clients = poll_in_flight(resource, result=result, now=now, begun=begun)
    phase = time.monotonic()
    _finish_all(resource, finishing, clients=clients, result=result, deadline=begun + budget)
    result.counts["finish_ms"] = int((time.monotonic() - phase) * 1000)
    phase = time.monotonic()
    report_completions(resource, known_keys=known_keys, result=result)
    result.counts["report_ms"] = int((time.monotonic() - phase) * 1000)
    phase = time.monotonic()
    grant_waiting(resource, known_keys=known_keys, result=result, now=now)
    result.counts["grant_ms"] = int((time.monotonic() - phase) * 1000)
    result.counts["seconds_x1000"] = int((time.monotonic() - begun) * 1000)
    return result


def _finish_all(
    resource: VidpipeResource,
    finishing: list[tuple[InFlightJob, JobStatus]],
    *,
    clients: Mapping[str, Any],
    result: TickResult,
    deadline: float,
) -> None:
    if not finishing:
        return
    lifecycle, storage, settings = resource.lifecycle(), resource.storage(), resource.settings()

    def finish(item: tuple[InFlightJob, JobStatus]) -> str:
        job, status = item
        if time.monotonic() > deadline:
            return "deferred"
        return finish_job(
            job,
            status,
            lifecycle=lifecycle,
            storage=storage,
            client=clients[job.provider],
            settings=settings,
            source="sensor",
            current=True,
        )

    with ThreadPoolExecutor(max_workers=min(FINISH_WORKERS, len(finishing))) as pool:
        for outcome in pool.map(finish, finishing):
            result.counts[outcome] += 1


def _known_keys(context: dg.SensorEvaluationContext) -> set[dg.AssetKey] | None:
    repository = context.repository_def
    if repository is None:
        return None
    return set(repository.asset_graph.get_all_asset_keys())


def build_provider_sensor(*, minimum_interval_seconds: int = 30) -> dg.SensorDefinition:
    """The provider polling sensor, RUNNING by default."""

    @dg.sensor(
        name=SENSOR_NAME,
        minimum_interval_seconds=minimum_interval_seconds,
        default_status=dg.DefaultSensorStatus.RUNNING,
        target=dg.AssetSelection.all(),
        description="Polls provider jobs in flight, stores finished media, reports the "
        "materializations, runs the downstream nodes and starts nodes waiting for a slot.",
    )
    def provider_jobs(
        context: dg.SensorEvaluationContext, vidpipe: VidpipeResource
    ) -> dg.SensorResult | dg.SkipReason:
        tick = poll_provider_jobs(vidpipe, known_keys=_known_keys(context))
        context.log.info(f"Provider jobs tick: {tick.summary()}")
        if not tick.asset_events and not tick.run_requests:
            return dg.SkipReason(f"Nothing finished ({tick.summary() or 'no jobs in flight'}).")
        return dg.SensorResult(asset_events=tick.asset_events, run_requests=tick.run_requests)

    return provider_jobs
