"""Relaunching the nodes a step refused because they were edited after the run was planned.

A node whose shape was edited after the run was planned is not started: it keeps its status,
the run log says why, and once the step is done it is launched again, with what it blocked,
on a fresh plan (:func:`relaunch_fresh`), at most :data:`MAX_REPLANS` times in a row.
"""

from __future__ import annotations

from typing import TYPE_CHECKING

import dagster as dg

from vidpipe_dagster.assets.pipeline_plan import PipelinePlan
from vidpipe_dagster.domain.errors import VidpipeError
from vidpipe_dagster.domain.naming import run_tags

if TYPE_CHECKING:
    from vidpipe_dagster.resources.dagster_resources import VidpipeResource

REPLANS_TAG = "vidpipe/replans"
MAX_REPLANS = 3
"""How many times in a row a refused node is relaunched before the run log asks a person."""
RELAUNCH_WAIT_SECONDS = 300.0
"""How long a step waits for its location to compile the edit it relaunches (no HTTP client
is waiting on it, unlike an execute request)."""


def _plan_tags(plan: PipelinePlan, *, source: str, node_uuids: list[str]) -> dict[str, str]:
    if plan.names is None:
        return {"vidpipe/pipeline": plan.pipeline_uuid, "vidpipe/source": source}
    return run_tags(plan.names, source=source, node_uuids=node_uuids)


def say_replanned(
    context: dg.AssetExecutionContext,
    *,
    resource: VidpipeResource,
    node_uuids: list[str],
    relaunched: str | None,
) -> None:
    """Put in each refused node's stage what became of it: relaunched in which run, or
    left for the next execute."""
    run_id = context.run.run_id
    reason = (
        f"edited after Dagster run {run_id} was planned: relaunched in run {relaunched}"
        if relaunched
        else f"not run: edited after Dagster run {run_id} was planned; execute it again"
    )
    for node_uuid in node_uuids:
        resource.lifecycle().not_run(node_uuid, reason, run_id=run_id)


def relaunch_fresh(
    context: dg.AssetExecutionContext,
    *,
    plan: PipelinePlan,
    resource: VidpipeResource,
    node_uuids: list[str],
) -> str | None:
    """Launch ``node_uuids`` again in a run planned from the rows as they are now.

    The launcher reloads the code location until it compiled the nodes' current shape
    (for at most ``RELAUNCH_WAIT_SECONDS``). Returns the new run id, or None when it could
    not be launched (the run log says so and the nodes wait for the next execute) or after
    ``MAX_REPLANS`` relaunches in a row.
    """
    from vidpipe_dagster.runs.launcher import launch_current

    titles = ", ".join(f"'{plan.nodes[u].get('title') or u}'" for u in node_uuids)
    replans = int(context.run.tags.get(REPLANS_TAG, "0") or 0) + 1
    if replans > MAX_REPLANS:
        context.log.warning(
            f"Not relaunching {titles}: they were edited again while {MAX_REPLANS} runs in a "
            "row were planned; execute them again once the edits settle."
        )
        return None
    try:
        settings = resource.settings()
        run_id = launch_current(
            settings.model_copy(
                update={
                    "execute_wait_seconds": max(
                        settings.execute_wait_seconds, RELAUNCH_WAIT_SECONDS
                    )
                }
            ),
            resource.sessions(),
            pipeline_uuid=plan.pipeline_uuid,
            node_uuids=node_uuids,
            tags={
                **_plan_tags(plan, source="replan", node_uuids=node_uuids),
                "vidpipe/replanned_from": context.run.run_id,
                REPLANS_TAG: str(replans),
            },
        )
    except VidpipeError as error:
        context.log.warning(f"Could not relaunch {titles} on a fresh plan: {error.message}")
        return None
    context.log.info(f"Relaunched {titles} on a fresh plan: run {run_id}.")
    return run_id
