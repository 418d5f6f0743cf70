"""A real Dagster webserver on workspace.yaml: an edit shows up after a reload."""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.dagster.builders import NodeRow, add_pipeline
from tests.fixtures.webserver import asset_keys, free_port, running_webserver
from vidpipe_dagster.assets.asset_keys import key_of
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.db.snapshot import latest_updated_at
from vidpipe_dagster.orchestration.sensors import COMPILED_FROM, REFRESH_SENSOR
from vidpipe_dagster.runs.reload import Reloader, location_view, reload_location


@pytest.fixture
def webserver(database_url: str, tmp_path: Path, sessions) -> Iterator[str]:
    """``dagster-webserver -w workspace.yaml`` (the repo's) on the test database."""
    home = tmp_path / "dagster_home"
    home.mkdir()
    (home / "dagster.yaml").write_text("telemetry:\n  enabled: false\n")
    env = {
        **os.environ,
        "DAGSTER_HOME": str(home),
        "VIDPIPE_HOME": str(tmp_path / "vidpipe"),
        "VIDPIPE_DATABASE_URL": database_url,
    }
    with running_webserver(
        workspace="workspace.yaml", port=free_port(), env=env, log_path=tmp_path / "webserver.log"
    ) as url:
        yield url


def test_a_new_node_appears_after_a_reload(sessions, webserver: str) -> None:
    ids = add_pipeline(sessions, name="live", nodes=[NodeRow("script", "asset")])
    reload_location(dagster_url=webserver, location="vidpipe")
    first = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=ids["script"])
    assert asset_keys(webserver) == {tuple(first.path)}

    added = uuid.uuid4()
    with sessions() as session, session.begin():
        session.add(
            Node(
                id=added,
                pipeline_id=uuid.UUID(ids["pipeline"]),
                title="Voiceover",
                type="generate-voiceover",
                inputs={"script": ids["script"]},
            )
        )
    assert len(asset_keys(webserver)) == 1

    calls: list[str] = []

    def counted_reload(**kwargs) -> None:
        calls.append(kwargs["location"])
        reload_location(**kwargs)

    reloader = Reloader(debounce_seconds=0.5, reload=counted_reload)
    reloader.request(dagster_url=webserver, location="vidpipe")
    reloader.request(dagster_url=webserver, location="vidpipe")
    assert reloader.wait_idle(timeout=120)
    assert calls == ["vidpipe"]

    second = key_of(sessions, pipeline_uuid=ids["pipeline"], node_uuid=str(added))
    assert asset_keys(webserver) == {tuple(first.path), tuple(second.path)}
    # the webserver says what its copy of the location was compiled from: the
    # database-change sensor compares that with the tables before asking for a reload
    view = location_view(dagster_url=webserver, location="vidpipe", sensor=REFRESH_SENSOR)
    assert view.loading is False
    with sessions() as session:
        assert view.metadata[COMPILED_FROM] == latest_updated_at(session)
