"""Sensors of the vidpipe code location.

- ``vidpipe_automation``: the declarative-automation sensor, declared RUNNING (Dagster's
  default one starts STOPPED), so downstream nodes follow an upstream that changed;
- ``vidpipe_failed_run_backstop`` / ``vidpipe_canceled_run_backstop``: fail every node still
  ``in_progress`` from a run that failed or was cancelled (a run killed mid-step included:
  run monitoring marks it failed), taking the run's nodes from its
  ``ASSET_MATERIALIZATION_PLANNED`` events; nodes waiting on a provider job are left alone;
  with ``vidpipe_unrun_nodes`` (successful runs) they also give every node the run never
  started its reason (:mod:`vidpipe_dagster.orchestration.unrun`: an input that failed fails it);
- ``vidpipe_orphaned_nodes``: fails nodes whose run worker stopped beating (worker and code
  server lost together, so no run failure is ever reported) and marks their runs failed
  (:mod:`vidpipe_dagster.assets.heartbeat`);
- ``vidpipe_database_changes``: compares the change marker of the location's pipelines
  (newest ``updated_at`` and counts, over its shard) with the one the loaded definitions
  were compiled from and asks the webserver to reload when they differ, catching writes
  that bypass the API. It leaves alone a change the webserver is already loading or has
  loaded (the daemon's copy of the location lags the webserver's by a few seconds), and a
  change younger than ``REFRESH_GRACE_SECONDS``, which the API's own reload covers.
"""

from __future__ import annotations

import uuid as uuid_lib
from datetime import UTC, datetime, timedelta

import dagster as dg
from sqlalchemy import select

from vidpipe_dagster.assets import heartbeat
from vidpipe_dagster.assets.asset_keys import nodes_of_keys
from vidpipe_dagster.db.models import Node, utcnow
from vidpipe_dagster.db.snapshot import latest_updated_at
from vidpipe_dagster.orchestration.unrun import settle_unrun_nodes
from vidpipe_dagster.resources.dagster_resources import VidpipeResource
from vidpipe_dagster.runs.reload import ReloadError, location_view, request_reload

BACKSTOP_INTERVAL_SECONDS = 15
ORPHAN_INTERVAL_SECONDS = 30
REFRESH_INTERVAL_SECONDS = 15
REFRESH_GRACE_SECONDS = 10
REFRESH_SENSOR = "vidpipe_database_changes"
COMPILED_FROM = "compiled_from"
AUTOMATION_INTERVAL_SECONDS = 30


def planned_node_uuids(
    instance: dg.DagsterInstance, run_id: str, *, resource: VidpipeResource
) -> list[str]:
    """The node UUIDs a run planned to materialize, from its event log."""
    records = instance.get_records_for_run(
        run_id=run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION_PLANNED
    ).records
    keys: list[dg.AssetKey] = []
    for record in records:
        event = record.event_log_entry.dagster_event
        if event and event.asset_key and event.asset_key not in keys:
            keys.append(event.asset_key)
    if not keys:
        return []
    with resource.sessions()() as session:
        found = nodes_of_keys(session, keys)
    return list(dict.fromkeys(found[key] for key in keys if key in found))


def fail_nodes_of_run(
    *,
    instance: dg.DagsterInstance,
    run_id: str,
    resource: VidpipeResource,
    reason: str,
    planned: list[str] | None = None,
) -> list[str]:
    """Fail the nodes the run started and left ``in_progress``; return their UUIDs.
    ``planned`` are the run's nodes when the caller already read them."""
    uuids = (
        planned if planned is not None else planned_node_uuids(instance, run_id, resource=resource)
    )
    if not uuids:
        return []
    with resource.sessions()() as session:
        rows = session.execute(
            select(Node.id, Node.metadata_).where(
                Node.id.in_([uuid_lib.UUID(u) for u in uuids]), Node.status == "in_progress"
            )
        ).all()
    lifecycle = resource.lifecycle()
    failed: list[str] = []
    for node_id, metadata in rows:
        metadata = metadata or {}
        if metadata.get("dagster_run_id") != run_id or metadata.get("provider_job_id"):
            continue
        if lifecycle.failed(str(node_id), reason, metadata.get("process_uuid")):
            failed.append(str(node_id))
    return failed


def _backstop(
    context: dg.RunStatusSensorContext,
    vidpipe: VidpipeResource,
    reason: str | None,
    *,
    ended: str,
) -> None:
    """Fail the nodes the ended run left ``in_progress`` (unless ``reason`` is None), then
    give the nodes it never started their reason (``vidpipe_dagster.orchestration.unrun``)."""
    run_id = context.dagster_run.run_id
    planned = planned_node_uuids(context.instance, run_id, resource=vidpipe)
    if reason is not None:
        failed = fail_nodes_of_run(
            instance=context.instance,
            run_id=run_id,
            resource=vidpipe,
            reason=reason,
            planned=planned,
        )
        if failed:
            context.log.info(f"Failed {len(failed)} node(s) of run {run_id}: {failed}")
    unrun = settle_unrun_nodes(
        instance=context.instance, run_id=run_id, resource=vidpipe, ended=ended, planned=planned
    )
    for node_uuid, why in unrun.items():
        context.log.info(f"Node {node_uuid}: {why}")


@dg.run_failure_sensor(
    name="vidpipe_failed_run_backstop",
    minimum_interval_seconds=BACKSTOP_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Fails nodes left in_progress by a failed run.",
)
def failed_run_backstop(context: dg.RunFailureSensorContext, vidpipe: VidpipeResource) -> None:
    """Fail the nodes a failed run left ``in_progress``."""
    run_id = context.dagster_run.run_id
    message = context.failure_event.message if context.failure_event else None
    _backstop(
        context,
        vidpipe,
        f"Dagster run {run_id} failed: {message or 'the run worker stopped'}",
        ended="failed",
    )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.CANCELED,
    name="vidpipe_canceled_run_backstop",
    minimum_interval_seconds=BACKSTOP_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Fails nodes left in_progress by a cancelled run.",
)
def canceled_run_backstop(context: dg.RunStatusSensorContext, vidpipe: VidpipeResource) -> None:
    """Fail the nodes a cancelled run left ``in_progress``."""
    _backstop(
        context,
        vidpipe,
        f"Dagster run {context.dagster_run.run_id} was cancelled",
        ended="was cancelled",
    )


@dg.run_status_sensor(
    run_status=dg.DagsterRunStatus.SUCCESS,
    name="vidpipe_unrun_nodes",
    minimum_interval_seconds=BACKSTOP_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Says why a successful run left some of its nodes unrun.",
)
def unrun_nodes(context: dg.RunStatusSensorContext, vidpipe: VidpipeResource) -> None:
    """Give the nodes a successful run skipped (an input still waiting on a provider) their
    reason."""
    _backstop(context, vidpipe, None, ended="succeeded")


@dg.sensor(
    name="vidpipe_orphaned_nodes",
    minimum_interval_seconds=ORPHAN_INTERVAL_SECONDS,
    default_status=dg.DefaultSensorStatus.RUNNING,
    description="Fails nodes whose run worker stopped beating and marks their runs failed.",
)
def orphaned_nodes(context: dg.SensorEvaluationContext, vidpipe: VidpipeResource) -> dg.SkipReason:
    """Fail ``in_progress`` nodes whose heartbeat is older than the timeout."""
    timeout = vidpipe.settings().heartbeat_timeout_seconds
    ended = heartbeat.end_orphans(
        instance=context.instance,
        lifecycle=vidpipe.lifecycle(),
        sessions=vidpipe.sessions(),
        timeout=timeout,
    )
    if not ended:
        return dg.SkipReason(f"No running node has been silent for more than {timeout:g} s.")
    for orphan in ended:
        context.log.warning(
            f"Failed node {orphan.title!r} ({orphan.node_uuid}) of run {orphan.run_id}: "
            f"silent for {orphan.silent_seconds:.0f} s."
        )
    return dg.SkipReason(f"Failed {len(ended)} node(s) whose run worker stopped.")


def _marker_time(marker: str) -> datetime | None:
    try:
        moment = datetime.fromisoformat(marker.split("|", 1)[0])
    except ValueError:
        return None
    return moment if moment.tzinfo else moment.replace(tzinfo=UTC)  # SQLite keeps naive UTC


def build_refresh_sensor(
    *, compiled_from: str | None, location: str, shard: int | None = None, shards: int = 1
) -> dg.SensorDefinition:
    """The sensor reloading ``location`` when its pipelines moved past ``compiled_from``.

    ``compiled_from`` is the snapshot's change marker; it is also the sensor's metadata, so
    the webserver's copy of the location says what it was compiled from. The cursor holds
    the marker a reload was last requested for, so one change asks for one reload.
    """

    @dg.sensor(
        name=REFRESH_SENSOR,
        minimum_interval_seconds=REFRESH_INTERVAL_SECONDS,
        default_status=dg.DefaultSensorStatus.RUNNING,
        description="Reloads the code location when its pipeline rows change.",
        metadata={COMPILED_FROM: compiled_from or ""},
    )
    def database_changes(
        context: dg.SensorEvaluationContext, vidpipe: VidpipeResource
    ) -> dg.SkipReason:
        with vidpipe.sessions()() as session:
            current = latest_updated_at(session, shard=shard, shards=shards)
        if current == compiled_from:
            return dg.SkipReason("The definitions match the tables.")
        if context.cursor == current:
            return dg.SkipReason(f"Reload already requested for {current}.")
        changed_at = _marker_time(current)
        if changed_at is not None and utcnow() - changed_at < timedelta(
            seconds=REFRESH_GRACE_SECONDS
        ):
            return dg.SkipReason(f"Change {current} is recent; the API reloads for its writes.")
        settings = vidpipe.settings()
        try:
            view = location_view(
                dagster_url=settings.dagster_url, location=location, sensor=REFRESH_SENSOR
            )
        except ReloadError as error:
            return dg.SkipReason(f"Tables changed to {current}, but {error}")
        if view.loading:
            return dg.SkipReason(f"Tables changed to {current}; a reload is in progress.")
        if view.metadata.get(COMPILED_FROM) == current:
            return dg.SkipReason(f"The webserver has already loaded {current}.")
        request_reload(settings, location=location)
        context.update_cursor(current)
        return dg.SkipReason(f"Tables changed ({compiled_from} -> {current}); reload requested.")

    return database_changes


automation_sensor = dg.AutomationConditionSensorDefinition(
    "vidpipe_automation",
    target=dg.AssetSelection.all(),
    default_status=dg.DefaultSensorStatus.RUNNING,
    minimum_interval_seconds=AUTOMATION_INTERVAL_SECONDS,
)

STATIC_SENSORS = [
    failed_run_backstop,
    canceled_run_backstop,
    unrun_nodes,
    orphaned_nodes,
    automation_sensor,
]
