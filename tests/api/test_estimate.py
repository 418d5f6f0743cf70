"""Cost estimates and budgets: the estimate endpoint and 422 from the execute endpoints."""

from __future__ import annotations

import pytest
from fastapi.testclient import TestClient

from api.main import create_app
from api.responses import EstimateEnvelope
from tests.api.conftest import BASE, error
from vidpipe_dagster.settings import Settings

SCRIPT = "x" * 2000


@pytest.fixture
def offline(sessions):
    settings = Settings(dagster_url="http://127.0.0.1:9")
    app = create_app(
        settings=settings, sessions=sessions, notify_change=lambda _pipeline_uuid: None
    )
    with TestClient(app, raise_server_exceptions=False) as client:
        yield client


def _paid_pipeline(api, budget=None):
    config = {"budget": budget} if budget is not None else {}
    pipeline = api.pipeline(config=config)
    script = api.node(pipeline, title="Script", asset={"type": "text", "content": SCRIPT})
    voice = api.node(
        pipeline,
        title="Voice",
        type="generate-voiceover",
        inputs={"script": [script["uuid"]]},
        config={"provider": "elevenlabs", "modelId": "eleven_flash_v2_5"},
    )
    animation = api.node(
        pipeline,
        title="Animation",
        type="generate-animation",
        config={"provider": "veo3", "model": "veo-3.1-generate-preview", "duration": 8},
    )
    return pipeline, script, voice, animation


def test_estimate_lists_every_node_and_the_budget(offline, admin_headers, api, set_row):
    pipeline, script, voice, animation = _paid_pipeline(api, budget=5)
    response = offline.get(f"{BASE}/{pipeline['uuid']}/estimate", headers=admin_headers)
    assert response.status_code == 200
    body = response.json()["estimate"]
    by_title = {line["title"]: line for line in body["nodes"]}
    assert by_title["Script"]["usd"] == 0
    assert by_title["Voice"]["provider"] == "elevenlabs"
    assert by_title["Voice"]["quantity"] == 2000
    assert by_title["Voice"]["usd"] == pytest.approx(0.10)
    assert by_title["Animation"]["usd"] == pytest.approx(3.20)
    assert by_title["Animation"]["as_of"]
    assert body["total_usd"] == pytest.approx(3.30)
    assert (body["budget_usd"], body["spent_usd"], body["remaining_usd"]) == (5.0, 0.0, 5.0)


def test_local_preview_costs_nothing(sessions, admin_headers, api):
    settings = Settings(providers="local", dagster_url="http://127.0.0.1:9")
    app = create_app(
        settings=settings, sessions=sessions, notify_change=lambda _pipeline_uuid: None
    )
    pipeline, *_ = _paid_pipeline(api, budget=1)
    with TestClient(app) as client:
        body = client.get(f"{BASE}/{pipeline['uuid']}/estimate", headers=admin_headers).json()
    assert body["estimate"]["total_usd"] == 0
    assert {line["provider"] for line in body["estimate"]["nodes"]} == {"storage", "local"}


def test_execute_refuses_work_over_the_remaining_budget(offline, admin_headers, api, set_row):
    pipeline, script, voice, animation = _paid_pipeline(api, budget=3)
    set_row(script["uuid"], status="completed")
    url = f"{BASE}/{pipeline['uuid']}/nodes/{animation['uuid']}/execute"
    response = offline.post(url, headers=admin_headers)
    assert response.status_code == 422
    assert response.json() == error(
        "validation_error",
        "Over budget: running 1 node(s) is estimated at $3.20, but only $3.00 of the "
        "pipeline's $3.00 budget is left",
    )
    voice_url = f"{BASE}/{pipeline['uuid']}/nodes/{voice['uuid']}/execute"
    assert offline.post(voice_url, headers=admin_headers).status_code == 503

    response = offline.post(
        f"{BASE}/{pipeline['uuid']}/execute", json={"only": "pending"}, headers=admin_headers
    )
    assert response.status_code == 422
    assert "estimated at $3.30" in response.json()["error"]["message"]


def test_spent_money_counts_against_the_budget(offline, admin_headers, api, client):
    pipeline, script, voice, animation = _paid_pipeline(api, budget=4)
    client.patch(
        f"{BASE}/{pipeline['uuid']}",
        json={"pipeline": {"metadata": {"totalCost": 1.5}}},
        headers=admin_headers,
    )
    url = f"{BASE}/{pipeline['uuid']}/nodes/{animation['uuid']}/execute"
    response = offline.post(url, headers=admin_headers)
    assert response.status_code == 422
    assert (
        "only $2.50 of the pipeline's $4.00 budget is left" in response.json()["error"]["message"]
    )
    body = offline.get(f"{BASE}/{pipeline['uuid']}/estimate", headers=admin_headers).json()
    assert body["estimate"]["remaining_usd"] == 2.5


def _finished_elsewhere(api, set_row, *, config: dict) -> dict:
    """An animation of ``config`` completed in another pipeline, its output signed."""
    from vidpipe_dagster.domain.signatures import node_signature

    other = api.pipeline(title="Earlier course")
    node = api.node(other, title="Sea", type="generate-animation", config=config)
    signature = node_signature({"type": "generate-animation", "config": config}, {})
    output = {
        "type": "video",
        "s3_key": f"pipelines/{other['uuid']}/nodes/{node['uuid']}/p1.mp4",
        "size": 1000,
        "duration": 8.0,
        "cost": 3.2,
        "signature": signature,
        "process_uuid": "p1",
    }
    set_row(node["uuid"], status="completed", output=output, output_signature=signature)
    return {"pipeline": other, "node": node}


def test_reusable_nodes_cost_nothing_and_show_the_saving(offline, admin_headers, api, set_row):
    pipeline, script, voice, animation = _paid_pipeline(api, budget=3)
    source = _finished_elsewhere(api, set_row, config=animation["config"])

    body = offline.get(f"{BASE}/{pipeline['uuid']}/estimate", headers=admin_headers).json()
    estimate = body["estimate"]
    by_title = {line["title"]: line for line in estimate["nodes"]}
    line = by_title["Animation"]
    assert (line["usd"], line["reusable"], line["saved_usd"]) == (0, True, pytest.approx(3.2))
    assert line["reused_from"] == {
        "node_uuid": source["node"]["uuid"],
        "pipeline_uuid": source["pipeline"]["uuid"],
        "title": "Sea",
        "process_uuid": "p1",
    }
    assert by_title["Voice"]["reusable"] is False
    assert by_title["Voice"]["usd"] == pytest.approx(0.10)
    assert estimate["total_usd"] == pytest.approx(0.10)
    assert estimate["saved_usd"] == pytest.approx(3.2)
    documented = EstimateEnvelope.model_validate(body).estimate  # the OpenAPI shape holds
    assert documented.nodes[[n["title"] for n in estimate["nodes"]].index("Animation")].reused_from

    url = f"{BASE}/{pipeline['uuid']}/nodes/{animation['uuid']}/execute"
    assert offline.post(url, headers=admin_headers).status_code == 503  # within budget: launched
    forced = offline.post(url, json={"force": True}, headers=admin_headers)
    assert forced.status_code == 422  # rendering anyway costs $3.20 of a $3.00 budget
    assert "estimated at $3.20" in forced.json()["error"]["message"]
    assert offline.post(url, json={"force": "yes"}, headers=admin_headers).status_code == 422


def test_a_changed_node_is_not_reusable(offline, admin_headers, api, set_row):
    pipeline, script, voice, animation = _paid_pipeline(api, budget=3)
    _finished_elsewhere(api, set_row, config={**animation["config"], "duration": 4})
    body = offline.get(f"{BASE}/{pipeline['uuid']}/estimate", headers=admin_headers).json()
    line = {line["title"]: line for line in body["estimate"]["nodes"]}["Animation"]
    assert line["reusable"] is False and line["usd"] == pytest.approx(3.20)
    assert body["estimate"]["saved_usd"] == 0
