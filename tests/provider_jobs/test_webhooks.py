"""``POST /v1/webhooks/heygen``: signatures, the shared completion path, replays, races."""

from __future__ import annotations

import threading

import dagster as dg
import pytest
from fastapi.testclient import TestClient

from tests.dagster.builders import NodeRow, add_pipeline
from tests.provider_jobs.conftest import WEBHOOK_SECRET, node_row, sensor_tick, stored_objects
from vidpipe_dagster.orchestration.provider_sensor import poll_provider_jobs

NODES = [NodeRow("talk", "talking-head", config={"provider": "heygen", "avatarId": "a"})]


@pytest.fixture
def client(sessions, resource, provider_settings):
    from api.main import create_app

    app = create_app(
        settings=provider_settings,
        sessions=sessions,
        notify_change=lambda _pipeline_uuid: None,
        storage=resource.storage,
    )
    with TestClient(app, raise_server_exceptions=False) as test_client:
        yield test_client


@pytest.fixture
def waiting(sessions, in_flight, fake_heygen):
    """A talking head waiting on HeyGen job ``ids["job"]``."""
    ids = add_pipeline(sessions, name="hook", nodes=NODES)
    ids["job"] = fake_heygen.jobs.create(steps=0).id
    ids["process"] = in_flight(ids["talk"], provider="heygen", job_id=ids["job"])
    return ids


def deliver(client: TestClient, fake_heygen, job_id: str, *, secret=WEBHOOK_SECRET, **kwargs):
    body, headers = fake_heygen.webhook(job_id, secret=secret, **kwargs)
    return client.post("/v1/webhooks/heygen", content=body, headers=headers)


def test_signed_success_completes_the_node_and_is_reported_once(
    client, sessions, resource, waiting, fake_heygen
) -> None:
    response = deliver(client, fake_heygen, waiting["job"])

    assert response.status_code == 200, response.text
    assert response.json() == {"received": True, "outcome": "completed"}
    row = node_row(sessions, waiting["talk"])
    assert row.status == "completed" and row.metadata_["completed_by"] == "webhook"
    assert row.metadata_["dagster_reported"] is False
    assert len(stored_objects(resource, waiting["pipeline"], waiting["talk"])) == 1
    with dg.instance_for_test() as instance:
        first = sensor_tick(sessions, resource, instance)
        second = sensor_tick(sessions, resource, instance)
    assert isinstance(first, dg.SensorResult) and len(first.asset_events) == 1
    assert isinstance(second, dg.SkipReason)
    assert node_row(sessions, waiting["talk"]).metadata_["dagster_reported"] is True


def test_failure_event_fails_the_node_with_the_reason(client, sessions, waiting, fake_heygen):
    response = deliver(client, fake_heygen, waiting["job"], success=False)
    assert response.json()["outcome"] == "failed"
    row = node_row(sessions, waiting["talk"])
    assert row.status == "failed" and "Avatar rendering failed" in row.metadata_["error"]


@pytest.mark.parametrize("secret", ["wrong-secret", None])
def test_bad_or_missing_signature_is_401_and_changes_nothing(
    client, sessions, waiting, fake_heygen, secret
) -> None:
    body, headers = fake_heygen.webhook(waiting["job"], secret=secret or "x")
    if secret is None:
        headers.pop("X-Heygen-Signature")
    response = client.post("/v1/webhooks/heygen", content=body, headers=headers)

    assert response.status_code == 401
    assert response.json() == {
        "error": {"type": "unauthorized", "message": "Invalid webhook signature"}
    }
    assert node_row(sessions, waiting["talk"]).status == "in_progress"
    assert WEBHOOK_SECRET not in response.text


def test_replayed_webhook_changes_nothing(client, sessions, resource, waiting, fake_heygen):
    body, headers = fake_heygen.webhook(waiting["job"], secret=WEBHOOK_SECRET)
    assert client.post("/v1/webhooks/heygen", content=body, headers=headers).status_code == 200
    before = node_row(sessions, waiting["talk"])

    replay = client.post("/v1/webhooks/heygen", content=body, headers=headers)

    assert replay.status_code == 200 and replay.json()["outcome"] == "ignored"
    after = node_row(sessions, waiting["talk"])
    assert (after.output, after.metadata_) == (before.output, before.metadata_)
    assert len(stored_objects(resource, waiting["pipeline"], waiting["talk"])) == 1


def test_unknown_job_is_acknowledged_without_effect(client, fake_heygen) -> None:
    response = deliver(client, fake_heygen, "f" * 32)
    assert response.status_code == 200 and response.json()["outcome"] == "ignored"


def test_poller_and_webhook_racing_complete_once(
    client, sessions, resource, waiting, fake_heygen
) -> None:
    barrier = threading.Barrier(2)
    ticks, responses = [], []

    def poll() -> None:
        barrier.wait()
        ticks.append(poll_provider_jobs(resource))

    def hook() -> None:
        barrier.wait()
        responses.append(deliver(client, fake_heygen, waiting["job"]))

    threads = [threading.Thread(target=poll), threading.Thread(target=hook)]
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    with dg.instance_for_test() as instance:
        late = sensor_tick(sessions, resource, instance)

    outcomes = [ticks[0].counts["completed"], int(responses[0].json()["outcome"] == "completed")]
    assert sum(outcomes) == 1, (ticks[0].counts, responses[0].json())
    assert responses[0].status_code == 200
    reported = len(ticks[0].asset_events) + (
        len(late.asset_events) if isinstance(late, dg.SensorResult) else 0
    )
    assert reported == 1
    assert len(stored_objects(resource, waiting["pipeline"], waiting["talk"])) == 1
    assert node_row(sessions, waiting["talk"]).status == "completed"
