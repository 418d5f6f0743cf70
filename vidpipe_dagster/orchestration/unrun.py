"""Nodes a run was asked to materialize but never started: each gets a reason when it ends.

Dagster skips a node's step when an upstream step failed or yielded nothing (a provider job
still in flight), and a run that fails or is cancelled early never reaches some of its
nodes; nothing inside the run then touches those rows. When the run has ended, the run
status sensors (``orchestration.sensors``) call :func:`settle_unrun_nodes`, which looks at
each node the run planned and no execution started since the run was created:

- an input (or an input's input) failed: the node fails with "Not run: input 'X' failed in
  Dagster run R; fix it and execute it again" (a completed node keeps its result, the
  refusal noted in ``metadata.refused``);
- an input had not completed (it waits on a provider): the node keeps its status and
  ``metadata.stage`` says "not run: input 'X' had not completed (run R)";
- a node the run itself passed by (``metadata.not_run_by``: relaunched on a fresh plan,
  say) keeps the reason the run gave;
- otherwise a run that failed or was cancelled fails the node ("Not run: Dagster run R
  failed before this node started; execute it again"), and one that succeeded says in the
  stage that it ended without running it.
"""

from __future__ import annotations

import uuid as uuid_lib
from collections.abc import Mapping
from datetime import UTC, datetime
from typing import Any

import dagster as dg
from sqlalchemy import select

from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.node_types import referenced_uuids
from vidpipe_dagster.resources.dagster_resources import VidpipeResource


def _moment(value: Any) -> datetime | None:
    if isinstance(value, datetime):
        return value if value.tzinfo else value.replace(tzinfo=UTC)
    if not isinstance(value, str):
        return None
    try:
        return _moment(datetime.fromisoformat(value))
    except ValueError:
        return None


def blocking_input(node_uuid: str, rows: Mapping[str, Any]) -> tuple[str, Any] | None:
    """``("failed", row)`` for the nearest failed node upstream of ``node_uuid`` (inputs,
    then their inputs), else ``("pending", row)`` for its first input not completed, else
    None. ``rows`` are the pipeline's node rows by UUID."""
    direct = [rows[u] for u in referenced_uuids(rows[node_uuid].inputs) if u in rows]
    seen: set[str] = set()
    frontier = list(direct)
    while frontier:
        row = frontier.pop(0)
        if str(row.id) in seen:
            continue
        seen.add(str(row.id))
        if row.status == "failed":
            return "failed", row
        frontier.extend(rows[u] for u in referenced_uuids(row.inputs) if u in rows)
    pending = next((row for row in direct if row.status != "completed"), None)
    return ("pending", pending) if pending is not None else None


def _unstarted(row: Any, *, run_id: str, created: datetime | None) -> bool:
    metadata = row.metadata_ or {}
    if row.status == "in_progress" or metadata.get("waiting"):
        return False
    if metadata.get("dagster_run_id") == run_id:
        return False
    started = _moment(metadata.get("started_at"))
    return started is None or created is None or started < created


def settle_unrun_nodes(
    *,
    instance: dg.DagsterInstance,
    run_id: str,
    resource: VidpipeResource,
    ended: str,
    planned: list[str],
) -> dict[str, str]:
    """Give each node of ``planned`` that run ``run_id`` never started its reason;
    ``ended`` says how the run ended ("succeeded", "failed", "was cancelled"). Returns
    ``{node_uuid: reason}`` of the nodes written."""
    if not planned:
        return {}
    record = instance.get_run_record_by_id(run_id)
    created = _moment(record.create_timestamp) if record is not None else None
    with resource.sessions()() as session:
        owners = select(Node.pipeline_id).where(Node.id.in_([uuid_lib.UUID(u) for u in planned]))
        rows = {
            str(row.id): row
            for row in session.execute(
                select(Node.id, Node.title, Node.status, Node.inputs, Node.metadata_).where(
                    Node.pipeline_id.in_(owners)
                )
            ).all()
        }
    lifecycle = resource.lifecycle()
    written: dict[str, str] = {}
    for node_uuid in planned:
        row = rows.get(node_uuid)
        if row is None or not _unstarted(row, run_id=run_id, created=created):
            continue
        blocker = blocking_input(node_uuid, rows)
        failed_input = blocker is not None and blocker[0] == "failed"
        if not failed_input and (row.metadata_ or {}).get("not_run_by") == run_id:
            continue  # the run itself said why it passed the node by
        title = f"'{blocker[1].title or blocker[1].id}'" if blocker else ""
        if failed_input:
            reason = (
                f"Not run: input {title} failed in Dagster run {run_id}; "
                "fix it and execute it again"
            )
            lifecycle.failed(node_uuid, reason, None)
        elif blocker:
            reason = f"not run: input {title} had not completed (run {run_id})"
            lifecycle.not_run(node_uuid, reason, run_id=run_id)
        elif ended != "succeeded":
            reason = (
                f"Not run: Dagster run {run_id} {ended} before this node started; execute it again"
            )
            lifecycle.failed(node_uuid, reason, None)
        else:
            reason = f"not run: Dagster run {run_id} ended without running it; execute it again"
            lifecycle.not_run(node_uuid, reason, run_id=run_id)
        written[node_uuid] = reason
    return written
