"""The vidpipe code location: compiled pipelines, sensors, schedules and resources.

``dagster dev -w workspace.yaml`` (or ``dagster code-server start -m
vidpipe_dagster.definitions``) loads ``defs``. Loading is lazy: nothing is read from the
database until Dagster calls ``defs``, and then only by the state-backed component.
With ``VIDPIPE_DAGSTER_SHARDS`` > 1, each code server sets ``VIDPIPE_DAGSTER_SHARD`` and
loads only its shard of the pipelines, as location ``<VIDPIPE_DAGSTER_LOCATION>_<shard>``.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from vidpipe_dagster.assets.materialize import RESOURCE_KEY
from vidpipe_dagster.domain.naming import location_name
from vidpipe_dagster.orchestration import code_server, run_workers
from vidpipe_dagster.orchestration.compiler import compile_snapshot
from vidpipe_dagster.orchestration.components import PipelinesComponent
from vidpipe_dagster.orchestration.provider_sensor import build_provider_sensor
from vidpipe_dagster.orchestration.sensors import STATIC_SENSORS
from vidpipe_dagster.resources.dagster_resources import VidpipeResource
from vidpipe_dagster.resources.shared_storage import verify_shared_storage
from vidpipe_dagster.settings import get_settings


def build_definitions(
    *,
    database_url: str | None = None,
    snapshot: Mapping[str, Any] | None = None,
    resource: VidpipeResource | None = None,
    shard: int | None = None,
    shards: int = 1,
    location: str | None = None,
) -> dg.Definitions:
    """The whole code location (or one shard of it).

    Without ``snapshot`` the pipelines come from the state-backed component (what a code
    server and its run workers do); with one, they are compiled from it directly, which is
    how in-process callers (tests, ``dg.materialize``) build the same graph.
    """
    if snapshot is None:
        component = PipelinesComponent(
            database_url=database_url,
            shard=shard,
            shards=shards,
            location=location or get_settings().dagster_location,
        )
        pipelines = dg.build_defs_for_component(component)
    else:
        pipelines = compile_snapshot(snapshot).definitions()
    resource = resource or VidpipeResource(database_url=database_url)
    provider_sensor = build_provider_sensor(
        minimum_interval_seconds=resource.settings().provider_poll_interval_seconds
    )
    return dg.Definitions.merge(
        pipelines,
        dg.Definitions(
            sensors=[*STATIC_SENSORS, provider_sensor],
            resources={RESOURCE_KEY: resource},
            executor=dg.in_process_executor,
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location Dagster loads (the shard named by the settings, if any)."""
    settings = get_settings()
    code_server.prepare_process(memo=settings.code_server_memo)
    if settings.run_worker_forkserver:
        run_workers.install()
    verify_shared_storage(settings, VidpipeResource().sessions())
    return build_definitions(
        shard=settings.dagster_shard,
        shards=settings.dagster_shards,
        location=location_name(
            settings.dagster_location, shard=settings.dagster_shard, shards=settings.dagster_shards
        ),
    )
