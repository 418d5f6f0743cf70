"""Scheduled reruns: failed nodes retried with exponential backoff.

Every minute the retry schedule looks for failed nodes of the compiled pipelines whose
backoff has passed (``BASE_DELAY_SECONDS * 2**retries`` after they failed, or after the
last retry was requested if that run has not failed yet) and that have
retries left (``config.maxRetries`` of the node, else of its pipeline, else 3). It counts the
attempt in the node's ``metadata.retries`` and requests one run per pipeline. A node whose
last paid submission has an unknown outcome at a provider that cannot be asked about it
(``metadata.submission``) is not retried: it waits for someone to check and run it. Per-pipeline
``config.schedule`` crons are compiled with the pipelines (``compiler.compile_schedule``).
"""

from __future__ import annotations

import uuid as uuid_lib
from collections.abc import Iterable
from datetime import UTC, datetime, timedelta
from typing import Any

import dagster as dg
from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vidpipe_dagster.assets.asset_keys import node_asset_key
from vidpipe_dagster.assets.provider_jobs.submission import Submission
from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.domain import events
from vidpipe_dagster.domain.naming import names_of, run_tags
from vidpipe_dagster.resources.dagster_resources import VidpipeResource

DEFAULT_MAX_RETRIES = 3
BASE_DELAY_SECONDS = 60
RETRY_CRON = "* * * * *"


def max_retries(node_config: Any, pipeline_config: Any) -> int:
    """The retry limit of a node: its ``config.maxRetries``, its pipeline's, else 3."""
    for config in (node_config, pipeline_config):
        value = config.get("maxRetries") if isinstance(config, dict) else None
        if isinstance(value, int) and not isinstance(value, bool) and value >= 0:
            return value
    return DEFAULT_MAX_RETRIES


def retry_delay(retries: int) -> timedelta:
    """How long after a failure attempt number ``retries + 1`` waits."""
    return timedelta(seconds=BASE_DELAY_SECONDS * 2**retries)


def _timestamp(metadata: dict[str, Any], name: str) -> datetime | None:
    try:
        return datetime.fromisoformat(metadata[name])
    except (KeyError, TypeError, ValueError):
        return None


def claim_retries(
    session: Session, *, pipeline_uuids: Iterable[str], now: datetime
) -> dict[str, list[str]]:
    """Count one more retry on every due failed node; return pipeline UUID -> node UUIDs."""
    ids = [uuid_lib.UUID(u) for u in pipeline_uuids]
    if not ids:
        return {}
    rows = session.execute(
        select(Node.id, Node.pipeline_id, Node.config, Node.metadata_, Pipeline.config)
        .join(Pipeline, Pipeline.id == Node.pipeline_id)
        .where(Node.pipeline_id.in_(ids), Node.status == "failed")
        .order_by(Node.id)
        .with_for_update(of=Node)
    ).all()
    due: dict[str, list[str]] = {}
    for node_id, pipeline_id, node_config, metadata, pipeline_config in rows:
        metadata = dict(metadata or {})
        retries = int(metadata.get("retries") or 0)
        failed_at = _timestamp(metadata, "completed_at")
        if retries >= max_retries(node_config, pipeline_config) or failed_at is None:
            continue
        pending = Submission.from_metadata(metadata)
        if pending is not None and pending.unresolved and not pending.findable:
            continue
        retried_at = _timestamp(metadata, "retried_at")
        since = max(failed_at, retried_at) if retried_at else failed_at
        if since + retry_delay(retries) > now:
            continue
        metadata["retries"] = retries + 1
        metadata["retried_at"] = now.isoformat()
        session.execute(
            update(Node)
            .where(Node.id == node_id)
            .values(metadata_=metadata, updated_at=Node.updated_at)
        )
        events.pipeline_touched(session, pipeline_id)
        due.setdefault(str(pipeline_id), []).append(str(node_id))
    return due


def build_retry_schedule(pipeline_uuids: Iterable[str]) -> dg.ScheduleDefinition:
    """The retry schedule over the compiled pipelines ``pipeline_uuids``."""
    compiled = sorted(set(pipeline_uuids))

    @dg.schedule(
        name="vidpipe_retry_failed_nodes",
        cron_schedule=RETRY_CRON,
        target=dg.AssetSelection.all(),
        default_status=dg.DefaultScheduleStatus.RUNNING,
        description="Retries failed nodes with exponential backoff up to config.maxRetries.",
    )
    def retry_failed_nodes(
        context: dg.ScheduleEvaluationContext, vidpipe: VidpipeResource
    ) -> list[dg.RunRequest] | dg.SkipReason:
        now = context.scheduled_execution_time or datetime.now(UTC)
        with vidpipe.sessions()() as session, session.begin():
            due = claim_retries(session, pipeline_uuids=compiled, now=now)
        if not due:
            return dg.SkipReason("No failed node is due for a retry.")
        stamp = now.strftime("%Y%m%dT%H%M")
        names = names_of(vidpipe.sessions(), due)
        return [
            dg.RunRequest(
                run_key=f"retry-{pipeline_uuid}-{stamp}",
                asset_selection=[node_asset_key(names[pipeline_uuid], u) for u in node_uuids],
                tags={
                    **run_tags(names[pipeline_uuid], source="retry", node_uuids=node_uuids),
                    "vidpipe/retry": "true",
                },
            )
            for pipeline_uuid, node_uuids in sorted(due.items())
        ]

    return retry_failed_nodes
