"""What ``vidpipe demo`` prints, on the demo pipeline in a real embedded database: plan
positions, this run's nodes only (an earlier run's states are not news), reuse named as
such; the demo pipeline of an earlier version gets the narration that is never cut; and
``vidpipe dev``'s quiet filter and embedded ``dagster.yaml``."""

from __future__ import annotations

import threading
from pathlib import Path

import pytest
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.db.migrate import upgrade
from vidpipe_dagster.db.models import Pipeline
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.domain.lifecycle import Lifecycle
from vidpipe_dagster.domain.nodes import list_nodes
from vidpipe_dagster.runtime.dagster_home import (
    EMBEDDED_DAGSTER_YAML,
    PREVIOUS_DAGSTER_YAMLS,
    ensure_dagster_home,
)
from vidpipe_dagster.runtime.demo import FINAL_CUT_CONFIG, NARRATION_CONFIG, ensure_demo_pipeline
from vidpipe_dagster.runtime.demo_output import plan_positions, progress_line, watch_progress
from vidpipe_dagster.runtime.devserver import quiet_line, service_commands
from vidpipe_dagster.settings import Settings


@pytest.fixture
def sessions(tmp_path: Path):
    url = f"sqlite:///{tmp_path / 'demo.db'}"
    upgrade(url)
    engine = make_engine(url)
    yield make_sessionmaker(engine)
    engine.dispose()


def _demo(sessions: sessionmaker[Session]) -> tuple[Pipeline, list]:
    with sessions() as session, session.begin():
        pipeline = ensure_demo_pipeline(session)
        nodes = list_nodes(session, pipeline)
        session.expunge_all()
    return pipeline, nodes


def test_positions_follow_the_plan_not_the_creation_order(sessions) -> None:
    _, nodes = _demo(sessions)
    positions = plan_positions(reversed(nodes))
    by_uuid = {node.uuid: node for node in nodes}
    assert sorted(positions.values()) == list(range(1, 11))
    for uuid, position in positions.items():
        for slot in by_uuid[uuid].inputs.values():
            assert all(positions[source] < position for source in slot)
    titles = [by_uuid[uuid].title for uuid in sorted(positions, key=positions.get)]
    assert titles[-3:] == ["Merge", "Narration", "Final cut"]


def test_progress_line_reads_position_title_status_elapsed() -> None:
    assert progress_line(
        position=4, total=10, title="Voiceover", status="completed", elapsed=3.04
    ) == ("  [ 4/10] Voiceover           completed      3.0 s")
    assert progress_line(
        position=10, total=10, title="Final cut", status="failed", elapsed=12.0, error="No disk"
    ).endswith("[10/10] Final cut           failed        12.0 s  No disk")


def _watch(sessions, pipeline, nodes, *, run_id: str, act) -> list[str]:
    lines: list[str] = []
    stop = threading.Event()
    watcher = threading.Thread(
        target=watch_progress,
        args=(sessions,),
        kwargs={
            "pipeline_id": pipeline.id,
            "run_id": run_id,
            "positions": plan_positions(nodes),
            "echo": lines.append,
            "stop": stop,
            "interval": 0.05,
        },
    )
    watcher.start()
    try:
        act()
    finally:
        stop.set()
        watcher.join(10)
    return lines


def test_only_this_runs_nodes_are_reported_and_reuse_is_named(sessions) -> None:
    pipeline, nodes = _demo(sessions)
    lifecycle = Lifecycle(sessions)
    script, code = nodes[0], nodes[1]
    earlier = lifecycle.started(script.uuid, {"dagster_run_id": "run-1"})
    lifecycle.succeeded(script.uuid, {"type": "text", "s3_key": "a.txt"}, earlier)

    def run() -> None:
        process = lifecycle.started(code.uuid, {"dagster_run_id": "run-2"})
        lifecycle.succeeded(
            code.uuid,
            {"type": "text", "s3_key": "b.txt"},
            process,
            metadata={"reused_from": {"node_uuid": code.uuid}},
        )

    lines = _watch(sessions, pipeline, nodes, run_id="run-2", act=run)

    assert lines, "nothing printed"
    assert all("[ 2/10] Code sample" in line for line in lines), lines
    assert lines[-1].split()[4] == "reused"
    assert not any("Script" in line for line in lines)


def test_an_earlier_demo_pipeline_gets_the_narration_that_is_never_cut(sessions) -> None:
    pipeline, nodes = _demo(sessions)
    narration = next(n for n in nodes if n.title == "Narration")
    assert narration.config == NARRATION_CONFIG
    final = next(n for n in nodes if n.title == "Final cut")
    assert final.config == FINAL_CUT_CONFIG and final.config["audio"] == "background"
    with sessions() as session, session.begin():
        for row in list_nodes(session, session.get(Pipeline, pipeline.id)):
            if row.title == "Narration":
                row.config = {"mode": "replace"}
            if row.title == "Final cut":
                row.config = {"position": "bottom-right", "scale": 0.3}

    again, nodes = _demo(sessions)

    assert again.id == pipeline.id
    assert next(n for n in nodes if n.title == "Narration").config == NARRATION_CONFIG
    assert next(n for n in nodes if n.title == "Final cut").config == FINAL_CUT_CONFIG


@pytest.mark.parametrize(
    ("line", "kept"),
    [
        ("2026-12-01 11:28:04 +0000 - dagster.daemon.SensorDaemon - INFO - Checking", False),
        ("2026-12-01 11:27:50 +0000 - dagster - DEBUG - __ASSET_JOB - 1f - RUN_START - x", False),
        ("2026-12-01 11:27:50 +0000 - dagster - ERROR - __ASSET_JOB - 1f - STEP_FAILURE", True),
        ("2026-12-01 11:27:50 +0000 - dagster.daemon - WARNING - Sensor took 31 s", True),
        ("Traceback (most recent call last):", True),
    ],
)
def test_quiet_dev_drops_only_dagster_records_below_warning(line: str, kept: bool) -> None:
    assert quiet_line(line) is kept


def test_quiet_dev_runs_the_services_at_warning(tmp_path: Path) -> None:
    quiet = service_commands(
        workspace=tmp_path / "w.yaml", host="127.0.0.1", api_port=1, dagster_port=2, verbose=False
    )
    loud = service_commands(
        workspace=tmp_path / "w.yaml", host="127.0.0.1", api_port=1, dagster_port=2, verbose=True
    )
    for name in ("dagster", "api"):
        assert quiet[name][quiet[name].index("--log-level") + 1] == "warning"
        assert loud[name][loud[name].index("--log-level") + 1] == "info"
    assert loud["dagster"][1:3] == ["-m", "dagster"] and quiet["dagster"][1] == "-c"


def test_the_embedded_dagster_yaml_of_an_earlier_version_is_replaced(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("DAGSTER_HOME", str(tmp_path / "dagster"))
    settings = Settings(home=tmp_path)
    config = tmp_path / "dagster" / "dagster.yaml"
    config.parent.mkdir()
    config.write_text(PREVIOUS_DAGSTER_YAMLS[0])
    ensure_dagster_home(settings)
    assert config.read_text() == EMBEDDED_DAGSTER_YAML
    assert "dequeue_interval_seconds: 1" in config.read_text()

    edited = EMBEDDED_DAGSTER_YAML + "run_retries:\n  enabled: false\n"
    config.write_text(edited)
    ensure_dagster_home(settings)
    assert config.read_text() == edited
