"""The vidpipe code location: compiled pipelines, sensors, schedules and resources.

``dagster dev -w workspace.yaml`` (or ``dagster code-server start -m
vidpipe_dagster.definitions``) loads ``defs``. Loading is lazy: nothing is read from the
database until Dagster calls ``defs``, and then only by the state-backed component.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

import dagster as dg

from vidpipe_dagster.compiler import compile_snapshot
from vidpipe_dagster.components.pipelines import PipelinesComponent
from vidpipe_dagster.materialize import RESOURCE_KEY
from vidpipe_dagster.resources.dagster_resources import VidpipeResource


def build_definitions(
    *,
    database_url: str | None = None,
    snapshot: Mapping[str, Any] | None = None,
    resource: VidpipeResource | None = None,
) -> dg.Definitions:
    """The whole code location.

    Without ``snapshot`` the pipelines come from the state-backed component (what a code
    server and its run workers do); with one, they are compiled from it directly, which is
    how in-process callers (tests, ``dg.materialize``) build the same graph.
    """
    if snapshot is None:
        pipelines = dg.build_defs_for_component(PipelinesComponent(database_url=database_url))
    else:
        pipelines = compile_snapshot(snapshot).definitions()
    return dg.Definitions.merge(
        pipelines,
        dg.Definitions(
            resources={RESOURCE_KEY: resource or VidpipeResource(database_url=database_url)},
            executor=dg.in_process_executor,
        ),
    )


@dg.definitions
def defs() -> dg.Definitions:
    """The code location Dagster loads."""
    return build_definitions()
