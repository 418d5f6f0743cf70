"""Exactly one provider job per execution, on PostgreSQL through in-process runs: fake
HeyGen, Veo, Runway, ElevenLabs and Remotion's Lambda accept a submission and then time out
or drop the connection, with HTTP attempts and step retries on; the fake ends with one job, and only
HeyGen (which lists videos by a title holding our reference) lets the node complete."""

from __future__ import annotations

from datetime import UTC, datetime, timedelta

import dagster as dg
import pytest

from tests.dagster.builders import NodeRow, add_pipeline
from tests.provider_jobs.conftest import node_row, run_in_process, sensor_tick
from vidpipe_dagster.assets.asset_keys import key_of
from vidpipe_dagster.orchestration.schedules import claim_retries
from vidpipe_dagster.settings import get_settings

CASES = {
    "heygen": (
        NodeRow(
            "paid",
            "talking-head",
            config={"provider": "heygen", "avatarId": "a", "voiceId": "v", "script": "Hello."},
        ),
        "/v3/videos",
    ),
    "veo3": (
        NodeRow("paid", "generate-animation", config={"provider": "veo3", "prompt": "a sea"}),
        ":predictLongRunning",
    ),
    "runway": (
        NodeRow(
            "paid",
            "generate-animation",
            config={"provider": "runway", "model": "gen4.5", "prompt": "a sea", "duration": 5},
        ),
        "/v1/text_to_video",
    ),
    "elevenlabs": (
        NodeRow(
            "paid",
            "generate-voiceover",
            config={"provider": "elevenlabs", "voiceId": "v1", "script": "Hello there."},
        ),
        "/v1/text-to-speech/",
    ),
    "remotion": (
        NodeRow(
            "paid",
            "render-code",
            config={"provider": "remotion", "compositionId": "Main", "serveUrl": "https://site"},
        ),
        "/invocations",
    ),
}


@pytest.fixture
def retries_on(provider_env, monkeypatch: pytest.MonkeyPatch) -> None:
    """Three HTTP attempts per call, two step retries, a 1 s timeout."""
    monkeypatch.setenv("VIDPIPE_PROVIDER_MAX_ATTEMPTS", "3")
    monkeypatch.setenv("VIDPIPE_PROVIDER_STEP_RETRIES", "2")
    monkeypatch.setenv("VIDPIPE_PROVIDER_TIMEOUT_SECONDS", "1")
    get_settings.cache_clear()


def _fake(request: pytest.FixtureRequest, provider: str):
    name = {"veo3": "fake_veo"}.get(provider, f"fake_{provider}")
    fake = request.getfixturevalue(name)
    fake.hang_seconds = 3
    if provider == "remotion":
        monkeypatch = request.getfixturevalue("monkeypatch")
        for variable, value in {
            "VIDPIPE_REMOTION_FUNCTION_NAME": fake.function_name,
            "VIDPIPE_REMOTION_LAMBDA_ENDPOINT_URL": fake.url,
            "VIDPIPE_REMOTION_S3_ENDPOINT_URL": fake.url,
            "AWS_ACCESS_KEY_ID": "test",
            "AWS_SECRET_ACCESS_KEY": "test",
        }.items():
            monkeypatch.setenv(variable, value)
        get_settings.cache_clear()
    return fake


def _paid(fake, submit_path: str) -> int:
    """Submissions the fake acted on: the paid work it did."""
    return len(fake.handled_to(submit_path, method="POST"))


def _retried(result: dg.ExecuteInProcessResult) -> list:
    return [e for e in result.all_events if e.event_type_value == "STEP_UP_FOR_RETRY"]


@pytest.mark.parametrize("fault", ["hang_after_accept", "drop_after_accept"])
@pytest.mark.parametrize("provider", sorted(CASES))
def test_a_lost_answer_never_makes_a_second_paid_job(
    request, sessions, resource, retries_on, provider: str, fault: str
) -> None:
    row, submit_path = CASES[provider]
    fake = _fake(request, provider)
    ids = add_pipeline(sessions, name=f"once-{provider}", nodes=[row])
    key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["paid"])
    getattr(fake, fault)(path=submit_path)
    begun = datetime.now(UTC)

    with dg.instance_for_test() as instance:
        first = run_in_process(sessions, resource, instance, [key])
        assert _retried(first) == []
        assert len(fake.requests_to(submit_path, method="POST")) == 1
        assert _paid(fake, submit_path) == 1
        node = node_row(sessions, ids["paid"])
        recorded = node.metadata_["submission"]
        assert recorded["reference"] == node.metadata_["process_uuid"]

        if provider == "heygen":
            assert first.success
            (job_id,) = fake.jobs.jobs
            assert node.status == "in_progress" and node.metadata_["provider_job_id"] == job_id
            assert recorded["state"] == "accepted" and recorded["job_id"] == job_id
            sent = fake.requests_to(submit_path, method="POST")[0].json()
            assert sent["callback_id"] == recorded["reference"]
            assert (
                fake.requests_to("/v3/videos", method="GET")[0].param("title")
                == (recorded["reference"])
            )
            fake.jobs.jobs[job_id].steps = 0
            sensor_tick(sessions, resource, instance)
            assert node_row(sessions, ids["paid"]).status == "completed"
            assert len(fake.requests_to(submit_path, method="POST")) == 1
            return

        assert not first.success
        assert node.status == "failed" and recorded["state"] == "unknown"
        error = node.metadata_["error"]
        assert f"{provider}: submission outcome unknown" in error
        assert "sent at " in error and " UTC" in error and "check " in error
        sent_at = datetime.fromisoformat(recorded["at"])
        assert begun - timedelta(seconds=1) <= sent_at <= datetime.now(UTC)

        again = run_in_process(sessions, resource, instance, [key], tags={"vidpipe/retry": "true"})
        assert not again.success and _retried(again) == []
        assert len(fake.requests_to(submit_path, method="POST")) == 1
        assert _paid(fake, submit_path) == 1
        refused = node_row(sessions, ids["paid"])
        assert refused.status == "failed"
        assert "not sent again automatically" in refused.metadata_["error"]
        assert refused.metadata_["submission"]["state"] == "unknown"


def test_the_retry_schedule_leaves_an_unknown_submission_alone(
    request, sessions, resource, retries_on
) -> None:
    row, submit_path = CASES["veo3"]
    fake = _fake(request, "veo3")
    ids = add_pipeline(sessions, name="scheduled", nodes=[row])
    key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["paid"])
    fake.drop_after_accept(path=submit_path)
    with dg.instance_for_test() as instance:
        run_in_process(sessions, resource, instance, [key])
    later = datetime.now(UTC) + timedelta(days=1)
    with sessions() as session, session.begin():
        due = claim_retries(session, pipeline_uuids=[ids["pipeline"]], now=later)
    assert due == {}
    assert node_row(sessions, ids["paid"]).metadata_.get("retries") is None


def test_someone_asking_again_submits_again(request, sessions, resource, retries_on) -> None:
    row, submit_path = CASES["runway"]
    fake = _fake(request, "runway")
    ids = add_pipeline(sessions, name="asked", nodes=[row])
    key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["paid"])
    fake.drop_after_accept(path=submit_path)
    with dg.instance_for_test() as instance:
        run_in_process(sessions, resource, instance, [key])
        asked = run_in_process(sessions, resource, instance, [key], tags={"vidpipe/source": "api"})
    assert asked.success
    assert len(fake.requests_to(submit_path, method="POST")) == 2
    node = node_row(sessions, ids["paid"])
    assert node.status == "in_progress" and node.metadata_["submission"]["state"] == "accepted"


def test_heygen_lost_before_it_arrived_is_looked_up_then_submitted_on_retry(
    request, sessions, resource, retries_on
) -> None:
    row, submit_path = CASES["heygen"]
    fake = _fake(request, "heygen")
    ids = add_pipeline(sessions, name="never-arrived", nodes=[row])
    key = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["paid"])
    fake.hang(path=submit_path)
    with dg.instance_for_test() as instance:
        first = run_in_process(sessions, resource, instance, [key])
        assert not first.success and fake.jobs.jobs == {}
        failed = node_row(sessions, ids["paid"])
        assert "heygen: submission outcome unknown" in failed.metadata_["error"]
        assert "HeyGen dashboard" in failed.metadata_["error"]
        assert len(fake.requests_to("/v3/videos", method="GET")) >= 1
        retry = run_in_process(sessions, resource, instance, [key], tags={"vidpipe/retry": "true"})
    assert retry.success and len(fake.jobs.jobs) == 1
    assert len(fake.requests_to(submit_path, method="POST")) == 2
    assert node_row(sessions, ids["paid"]).status == "in_progress"
