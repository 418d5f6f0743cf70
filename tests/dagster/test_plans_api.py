"""Runs execute what the editor saved, through the API and a real webserver: edits right before
an execute, and edits while a run is under way.

Against a real ``dagster-webserver`` (no daemon, ``DefaultRunCoordinator``) on PostgreSQL and
on the embedded SQLite file, with the API's default change notification (a debounced reload
of the location, as in production) and a fake ElevenLabs server for the paid nodes.
"""

from __future__ import annotations

import os
import time
import uuid
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path

import dagster as dg
import pytest
from fastapi.testclient import TestClient
from sqlalchemy.orm import Session, sessionmaker

from api.main import create_app
from tests.api.conftest import BASE, make_token
from tests.dagster.test_execute_api import (
    DAGSTER_YAML,
    create,
    graphql,
    node_row,
)
from tests.fakes.elevenlabs import FakeElevenLabs
from tests.fixtures.webserver import (
    VIDPIPE_WORKSPACE,
    free_port,
    running_webserver,
)
from vidpipe_dagster.assets.asset_keys import key_of
from vidpipe_dagster.db import migrate
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.runs.plans import fields_hash, row_fields
from vidpipe_dagster.settings import Settings

WAIT_SECONDS = 600
"""Generous: a relaunch reloads the location from inside a run, slow on a loaded machine."""
RUN_STATUS = "query Run($id: ID!) { runOrError(runId: $id) { ... on Run { status } } }"
RUNS_TAGGED = """
query Runs($key: String!, $value: String!) {
  runsOrError(filter: {tags: [{key: $key, value: $value}]}) {
    ... on Runs { results { runId tags { key value } } }
  }
}
"""


@dataclass
class Stack:
    """The webserver, its DAGSTER_HOME, the settings and database it runs with."""

    url: str
    home: Path
    settings: Settings
    sessions: sessionmaker[Session]
    fake: FakeElevenLabs


@pytest.fixture(scope="module", params=["postgresql", "sqlite"])
def stack(request, database_url: str, tmp_path_factory: pytest.TempPathFactory) -> Iterator[Stack]:
    """``dagster-webserver`` over the vidpipe location on one of the two databases."""
    root = tmp_path_factory.mktemp(f"plans_{request.param}")
    if request.param == "sqlite":
        url = f"sqlite:///{root / 'vidpipe.db'}"
        migrate.upgrade(url)
    else:
        url = database_url
    home = root / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text(DAGSTER_YAML)
    (root / "workspace.yaml").write_text(VIDPIPE_WORKSPACE)
    port = free_port()
    engine = make_engine(url)
    with FakeElevenLabs() as fake:
        settings = Settings(
            dagster_url=f"http://127.0.0.1:{port}",
            database_url=url,
            home=root / "vidpipe",
            storage_url=(root / "storage").as_uri(),
            elevenlabs_api_key=fake.api_key,
            elevenlabs_base_url=fake.url,
        )
        env = {
            key: value
            for key, value in os.environ.items()
            if not key.startswith(("VIDPIPE_", "DAGSTER_"))
        }
        env.update(
            DAGSTER_HOME=str(home),
            VIDPIPE_HOME=str(settings.home),
            VIDPIPE_DATABASE_URL=url,
            VIDPIPE_STORAGE_URL=settings.resolved_storage_url,
            VIDPIPE_DAGSTER_URL=settings.dagster_url,
            VIDPIPE_ELEVENLABS_API_KEY=fake.api_key,
            VIDPIPE_ELEVENLABS_BASE_URL=fake.url,
        )
        with running_webserver(
            workspace=root / "workspace.yaml", port=port, env=env, log_path=root / "webserver.log"
        ):
            yield Stack(
                url=settings.dagster_url,
                home=home,
                settings=settings,
                sessions=make_sessionmaker(engine),
                fake=fake,
            )
    engine.dispose()


@pytest.fixture
def client(stack: Stack) -> Iterator[TestClient]:
    """The API with its default launcher and change notification (a debounced reload)."""
    app = create_app(settings=stack.settings, sessions=stack.sessions)
    token = make_token(stack.sessions, admin=True)
    stack.fake.reset()
    stack.fake.latency = 0
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as test_client:
        yield test_client


def execute(client: TestClient, pipeline_uuid: str, node_uuids: list[str]) -> str:
    response = client.post(f"{BASE}/{pipeline_uuid}/execute", json={"node_uuids": node_uuids})
    assert response.status_code == 202, response.text
    return response.json()["run_id"]


def materializations(stack: Stack, run_id: str) -> dict[tuple[str, ...], dg.AssetMaterialization]:
    """The run's materializations by asset key path."""
    with dg.DagsterInstance.from_config(str(stack.home)) as instance:
        records = instance.get_records_for_run(
            run_id, of_type=dg.DagsterEventType.ASSET_MATERIALIZATION
        ).records
        return {tuple(r.asset_key.path): r.event_log_entry.asset_materialization for r in records}


def run_messages(stack: Stack, run_id: str) -> list[str]:
    with dg.DagsterInstance.from_config(str(stack.home)) as instance:
        return [entry.user_message or "" for entry in instance.all_logs(run_id)]


def test_execute_right_after_a_config_edit_runs_the_edit(stack: Stack, client) -> None:
    pipeline = create(client, "", "pipeline", {"title": "Edited"})
    node = create(
        client,
        f"/{pipeline['uuid']}/nodes",
        "node",
        {
            "title": "Waves",
            "type": "generate-animation",
            "config": {"prompt": "waves", "duration": 2},
        },
    )
    first = execute(client, pipeline["uuid"], [node["uuid"]])
    assert wait_for_run(stack.url, first) == "SUCCESS"
    assert node_row(stack.sessions, node["uuid"]).output["duration"] == pytest.approx(2, abs=0.3)

    response = client.patch(
        f"{BASE}/{pipeline['uuid']}/nodes/{node['uuid']}",
        json={"node": {"config": {"prompt": "waves", "duration": 5}}},
    )
    assert response.status_code == 200, response.text
    second = execute(client, pipeline["uuid"], [node["uuid"]])
    assert wait_for_run(stack.url, second) == "SUCCESS"

    row = node_row(stack.sessions, node["uuid"])
    assert row.status == "completed" and row.metadata_["dagster_run_id"] == second
    assert row.output["duration"] == pytest.approx(5, abs=0.3)
    key = key_of(stack.sessions, pipeline_uuid=pipeline["uuid"], node_uuid=node["uuid"])
    recorded = materializations(stack, second)[tuple(key.path)]
    assert recorded.tags["dagster/data_version"] == fields_hash(row_fields(row))
    assert recorded.metadata["structure_hash"].value == fields_hash(row_fields(row))


def wait_for_run(url: str, run_id: str) -> str:
    """The run's final status, once it has one."""
    found: list[str] = []

    def finished() -> bool:
        status = graphql(url, RUN_STATUS, {"id": run_id})["runOrError"].get("status")
        found[:] = [status]
        return status in ("SUCCESS", "FAILURE", "CANCELED")

    _wait(finished, f"run {run_id} to finish")
    return found[0]


def _wait(condition, what: str) -> None:
    deadline = time.monotonic() + WAIT_SECONDS
    while not condition():
        assert time.monotonic() < deadline, f"timed out waiting for {what}"
        time.sleep(0.2)


def test_a_run_planned_before_an_edit_refuses_the_edited_node_and_relaunches_it(
    stack: Stack, client
) -> None:
    pipeline = create(client, "", "pipeline", {"title": "Voices"})
    base = f"/{pipeline['uuid']}/nodes"
    first_words = create(
        client,
        base,
        "node",
        {"title": "First", "type": "asset", "asset": {"type": "text", "content": "One."}},
    )
    second_words = create(
        client,
        base,
        "node",
        {"title": "Second", "type": "asset", "asset": {"type": "text", "content": "Two."}},
    )
    voices = [
        create(
            client,
            base,
            "node",
            {
                "title": title,
                "type": "generate-voiceover",
                "inputs": {"script": [first_words["uuid"]]},
                "config": {"provider": "elevenlabs"},
            },
        )
        for title in ("Narrator", "Echo")
    ]
    scripts = execute(client, pipeline["uuid"], [first_words["uuid"], second_words["uuid"]])
    assert wait_for_run(stack.url, scripts) == "SUCCESS"

    stack.fake.latency = 15  # the first voice's request holds the step while the edit lands
    planned = execute(client, pipeline["uuid"], [v["uuid"] for v in voices])
    _wait(lambda: stack.fake.requests_to("/v1/text-to-speech"), "the first voice's request")
    response = client.patch(
        f"{BASE}{base}/{voices[1]['uuid']}",
        json={"node": {"inputs": {"script": [second_words["uuid"]]}}},
    )
    assert response.status_code == 200, response.text
    stack.fake.latency = 0
    assert wait_for_run(stack.url, planned) == "SUCCESS"

    echo_key = tuple(
        key_of(stack.sessions, pipeline_uuid=pipeline["uuid"], node_uuid=voices[1]["uuid"]).path
    )
    assert echo_key not in materializations(stack, planned)
    assert any(
        "'Echo'" in message and "was edited after this run was planned" in message
        for message in run_messages(stack, planned)
    )

    def relaunched() -> list[dict]:
        found = graphql(stack.url, RUNS_TAGGED, {"key": "vidpipe/replanned_from", "value": planned})
        return found["runsOrError"]["results"]

    _wait(relaunched, "the relaunched run")
    fresh = relaunched()[0]["runId"]
    assert wait_for_run(stack.url, fresh) == "SUCCESS"
    echo = node_row(stack.sessions, voices[1]["uuid"])
    assert echo.status == "completed" and echo.metadata_["dagster_run_id"] == fresh
    assert materializations(stack, fresh)[echo_key].tags["dagster/data_version"] == fields_hash(
        row_fields(echo)
    )
    texts = [r.json()["text"] for r in stack.fake.requests_to("/v1/text-to-speech")]
    assert sorted(texts) == ["One.", "Two."], texts
    narrator = node_row(stack.sessions, voices[0]["uuid"])
    assert narrator.status == "completed" and narrator.metadata_["dagster_run_id"] == planned
    assert uuid.UUID(fresh) != uuid.UUID(planned)


def test_a_shape_the_location_cannot_compile_in_time_is_a_503_with_retry_after(
    stack: Stack,
) -> None:
    hurried = stack.settings.model_copy(update={"execute_wait_seconds": 0.05})
    app = create_app(settings=hurried, sessions=stack.sessions, notify_change=lambda _: None)
    token = make_token(stack.sessions, admin=True)
    with TestClient(app, headers={"Authorization": f"Bearer {token}"}) as hurried_client:
        pipeline = create(hurried_client, "", "pipeline", {"title": "Hurried"})
        node = create(
            hurried_client,
            f"/{pipeline['uuid']}/nodes",
            "node",
            {"title": "New", "type": "asset", "asset": {"type": "text", "content": "Hi."}},
        )
        response = hurried_client.post(f"{BASE}/{pipeline['uuid']}/nodes/{node['uuid']}/execute")
    assert response.status_code == 503, response.text
    assert int(response.headers["Retry-After"]) >= 1
    error = response.json()["error"]
    assert error["type"] == "service_unavailable"
    assert any(
        said in error["message"]
        for said in ("still loading location 'vidpipe'", "has not compiled the latest edits")
    ), error
    assert node_row(stack.sessions, node["uuid"]).status == "pending"


def test_a_pipeline_left_out_of_the_location_is_a_422_naming_why(stack: Stack, client) -> None:
    pipeline = create(client, "", "pipeline", {"title": "Broken"})
    node = create(
        client,
        f"/{pipeline['uuid']}/nodes",
        "node",
        {
            "title": "Clip",
            "type": "generate-animation",
            "config": {"prompt": "sea", "provider": "not a provider!"},
        },
    )
    response = client.post(f"{BASE}/{pipeline['uuid']}/nodes/{node['uuid']}/execute")
    assert response.status_code == 422, response.text
    message = response.json()["error"]["message"]
    assert message.startswith("The pipeline cannot run until it compiles:")
    assert "'Clip'" in message and "is not a provider name" in message
