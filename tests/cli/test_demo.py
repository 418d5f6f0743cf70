"""``vidpipe demo`` end to end on a fresh embedded home: a real, playable MP4 at the end."""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

from sqlalchemy import select

from lambdas.ffmpeg import decoded_duration, probe
from vidpipe_dagster.db.models import Pipeline
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.demo import DEMO_TITLE
from vidpipe_dagster.domain.nodes import list_nodes


def _demo(home: Path, *args: str) -> subprocess.CompletedProcess:
    env = {**os.environ, "VIDPIPE_HOME": str(home)}
    for name in ("VIDPIPE_DATABASE_URL", "VIDPIPE_STORAGE_URL", "DAGSTER_HOME"):
        env.pop(name, None)
    return subprocess.run(
        [sys.executable, "-m", "vidpipe_dagster.cli", "demo", *args],
        env=env,
        capture_output=True,
        text=True,
        timeout=600,
    )


def test_demo_renders_a_playable_video_and_reports_progress(tmp_path):
    result = _demo(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    lines = result.stdout.strip().splitlines()
    video = Path(lines[-1])
    assert video.suffix == ".mp4" and video.is_file()
    assert video.resolve().is_relative_to((tmp_path / "storage").resolve())

    info = probe(video)
    assert info.video is not None and info.audio is not None
    assert (info.video.width, info.video.height) == (1280, 720)
    playable = decoded_duration(video)
    assert playable is not None and playable > 3
    assert lines[-2] == f"Done: {info.duration:.1f} s of video"
    for title in ("Voiceover", "Talking head", "Merge", "Final cut"):
        assert any(title in line and "completed" in line for line in lines), title

    engine = make_engine(f"sqlite:///{tmp_path / 'vidpipe.db'}")
    try:
        with make_sessionmaker(engine)() as session:
            pipeline = session.scalars(select(Pipeline).where(Pipeline.title == DEMO_TITLE)).one()
            nodes = list_nodes(session, pipeline)
            assert [n.status for n in nodes] == ["completed"] * 10
            assert pipeline.metadata_["progress"]["completed"] == 10
            assert nodes[-1].output["s3_key"] in str(video)
    finally:
        engine.dispose()
    assert (tmp_path / "dagster" / "dagster.yaml").is_file()

    stored = sorted(p for p in (tmp_path / "storage").rglob("*") if p.is_file())
    again = _demo(tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    lines = again.stdout.strip().splitlines()
    assert Path(lines[-1]) == video  # the same media, nothing rendered again
    assert "Reused the finished work of 10 of 10 nodes" in again.stdout
    assert sorted(p for p in (tmp_path / "storage").rglob("*") if p.is_file()) == stored
    engine = make_engine(f"sqlite:///{tmp_path / 'vidpipe.db'}")
    try:
        with make_sessionmaker(engine)() as session:
            pipeline = session.scalars(select(Pipeline).where(Pipeline.title == DEMO_TITLE)).one()
            nodes = list_nodes(session, pipeline)
            assert [n.status for n in nodes] == ["completed"] * 10
            assert all(n.metadata_["reused_from"]["node_uuid"] == n.uuid for n in nodes)
            assert all(n.output["cost"] == 0 for n in nodes)
    finally:
        engine.dispose()

    forced = _demo(tmp_path, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    assert Path(forced.stdout.strip().splitlines()[-1]) != video
    assert "Reused" not in forced.stdout
    assert video.is_file()
