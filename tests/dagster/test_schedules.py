"""The failed-node retry schedule: exponential backoff up to maxRetries."""

from __future__ import annotations

import uuid
from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest
from sqlalchemy import update

from tests.dagster.builders import NodeRow, add_pipeline
from vidpipe_dagster.assets.asset_keys import key_of
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.orchestration.schedules import build_retry_schedule, claim_retries
from vidpipe_dagster.resources.dagster_resources import VidpipeResource

NOW = datetime(2026, 1, 1, 12, 0, tzinfo=UTC)


def fail(sessions, node_uuid: str, *, minutes_ago: float, retries: int, config=None) -> None:
    metadata = {"completed_at": (NOW - timedelta(minutes=minutes_ago)).isoformat()}
    if retries:
        metadata["retries"] = retries
    values = {"status": "failed", "metadata_": metadata}
    if config is not None:
        values["config"] = config
    with sessions() as session, session.begin():
        session.execute(update(Node).where(Node.id == uuid.UUID(node_uuid)).values(**values))


@pytest.mark.parametrize(
    ("minutes_ago", "retries", "config", "due"),
    [
        (1.5, 0, None, True),
        (0.5, 0, None, False),
        (3.0, 2, None, False),
        (4.5, 2, None, True),
        (100.0, 3, None, False),
        (100.0, 3, {"maxRetries": 5}, True),
        (100.0, 0, {"maxRetries": 0}, False),
    ],
)
def test_backoff_and_limit(sessions, minutes_ago, retries, config, due) -> None:
    ids = add_pipeline(sessions, name="retry", nodes=[NodeRow("n", "asset")])
    fail(sessions, ids["n"], minutes_ago=minutes_ago, retries=retries, config=config)
    with sessions() as session, session.begin():
        claimed = claim_retries(session, pipeline_uuids=[ids["pipeline"]], now=NOW)
    assert claimed == ({ids["pipeline"]: [ids["n"]]} if due else {})
    with sessions() as session:
        metadata = session.get(Node, uuid.UUID(ids["n"])).metadata_
    assert metadata.get("retries", 0) == retries + (1 if due else 0)


def test_schedule_requests_one_run_per_pipeline(sessions, database_url) -> None:
    first = add_pipeline(sessions, name="a", nodes=[NodeRow("x", "asset"), NodeRow("y", "asset")])
    other = add_pipeline(sessions, name="b", nodes=[NodeRow("z", "asset")])
    for node in ("x", "y"):
        fail(sessions, first[node], minutes_ago=5, retries=0)
    fail(sessions, other["z"], minutes_ago=5, retries=0)
    schedule = build_retry_schedule([first["pipeline"]])
    context = dg.build_schedule_context(
        scheduled_execution_time=NOW,
        resources={"vidpipe": VidpipeResource(database_url=database_url)},
    )
    requests = schedule.evaluate_tick(context).run_requests
    assert len(requests) == 1
    assert set(requests[0].asset_selection) == {
        key_of(sessions, pipeline_uuid=first["pipeline"], node_uuid=first[n]) for n in ("x", "y")
    }
    again = schedule.evaluate_tick(context)
    assert not again.run_requests


def test_a_success_resets_the_retry_count(sessions, database_url) -> None:
    ids = add_pipeline(sessions, name="recovers", nodes=[NodeRow("clip", "render-code")])
    fail(sessions, ids["clip"], minutes_ago=100, retries=3)
    with sessions() as session, session.begin():
        assert claim_retries(session, pipeline_uuids=[ids["pipeline"]], now=NOW) == {}

    lifecycle = VidpipeResource(database_url=database_url).lifecycle()
    process = lifecycle.started(ids["clip"], {"dagster_run_id": "retry-run"})
    with sessions() as session:
        assert session.get(Node, uuid.UUID(ids["clip"])).metadata_["retries"] == 3
    assert lifecycle.succeeded(ids["clip"], {"type": "video", "s3_key": "a.mp4"}, process)
    with sessions() as session:
        metadata = session.get(Node, uuid.UUID(ids["clip"])).metadata_
    assert "retries" not in metadata and "retried_at" not in metadata

    process = lifecycle.started(ids["clip"], {"dagster_run_id": "later-run"})
    assert lifecycle.failed(ids["clip"], "provider outage", process)
    later = datetime.now(UTC) + timedelta(minutes=5)
    with sessions() as session, session.begin():
        due = claim_retries(session, pipeline_uuids=[ids["pipeline"]], now=later)
    assert due == {ids["pipeline"]: [ids["clip"]]}
    with sessions() as session:
        assert session.get(Node, uuid.UUID(ids["clip"])).metadata_["retries"] == 1
