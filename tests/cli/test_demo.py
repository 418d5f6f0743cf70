"""``vidpipe demo`` end to end on a fresh embedded home: a real, playable MP4 at the end, and
Ctrl-C on a terminal: one line, the running node marked interrupted, nothing left behind."""

from __future__ import annotations

import contextlib
import os
import pty
import re
import select as fd_select
import signal
import subprocess
import sys
import time
from collections.abc import Callable
from pathlib import Path
from urllib.parse import parse_qs, urlsplit

import pytest
from fastapi.testclient import TestClient
from sqlalchemy import select

from api.main import create_app
from lambdas.ffmpeg import decoded_duration, ffmpeg_binary, probe
from vidpipe_dagster.db.models import Pipeline
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.domain.lifecycle import INTERRUPTED
from vidpipe_dagster.domain.nodes import list_nodes
from vidpipe_dagster.runtime.demo import DEMO_TITLE
from vidpipe_dagster.settings import Settings


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


PROGRESS = re.compile(
    r"  \[\s*(?P<position>\d+)/(?P<total>\d+)\] (?P<title>.{18})  "
    r"(?P<status>in_progress|completed|reused|failed)\s+(?P<elapsed>\d+\.\d) s"
)
LINK_INTRO = "Play it in a browser while `vidpipe dev` runs (the link works for 7 days):"


def _demo_nodes(home: Path) -> list:
    engine = make_engine(f"sqlite:///{home / 'vidpipe.db'}")
    try:
        with make_sessionmaker(engine)() as session:
            pipeline = session.scalars(select(Pipeline).where(Pipeline.title == DEMO_TITLE)).one()
            nodes = list_nodes(session, pipeline)
            session.expunge_all()
            return nodes
    finally:
        engine.dispose()


def _check_output(stdout: str, home: Path, *, statuses: set[str]) -> tuple[list[str], Path]:
    """Every line of a finished demo in its place, the progress of this run's nodes only,
    each at its position in the plan; returns the lines after the progress and the MP4."""
    lines = stdout.splitlines()
    assert lines[0].startswith("Demo pipeline ") and " (10 nodes) in sqlite:///" in lines[0]
    assert lines[1].startswith("Materializing through Dagster (DAGSTER_HOME=")
    blank = lines.index("")
    progress = [PROGRESS.fullmatch(line) for line in lines[2:blank]]
    assert all(progress), lines[2:blank]
    nodes = {n.title: n for n in _demo_nodes(home)}
    positions = {m["title"].rstrip(): int(m["position"]) for m in progress}
    assert sorted(positions.values()) == list(range(1, 11)) and set(positions) == set(nodes)
    assert all(int(m["position"]) == positions[m["title"].rstrip()] for m in progress)
    assert {m["total"] for m in progress} == {"10"}
    by_uuid = {n.uuid: n.title for n in nodes.values()}
    for title, node in nodes.items():
        for slot in node.inputs.values():
            assert all(positions[by_uuid[u]] < positions[title] for u in slot), title
    elapsed = [float(m["elapsed"]) for m in progress]
    assert elapsed == sorted(elapsed)
    last = {m["title"].rstrip(): m["status"] for m in progress}
    assert set(last.values()) == statuses, last
    assert {m["status"] for m in progress} <= statuses | {"in_progress"}

    tail = lines[blank + 1 :]
    video = Path(tail[-1])
    assert video.suffix == ".mp4" and video.is_file()
    assert video.resolve().is_relative_to((home / "storage").resolve())
    assert tail[-3] == LINK_INTRO
    assert tail[-2].startswith("http://127.0.0.1:8000/v1/media/pipelines/")
    narration = probe(_path_of(nodes["Voiceover"], home)).duration
    assert tail[-4] == f"Done: {probe(video).duration:.1f} s of video (narration {narration:.1f} s)"
    return tail, video


def _path_of(node, home: Path) -> Path:
    return home / "storage" / node.output["s3_key"]


def _served(url: str, home: Path) -> None:
    """The printed URL plays in a browser from the API of the same home."""
    parts = urlsplit(url)
    settings = Settings(home=home, database_url=None, storage_url=None, media_signing_key=None)
    with TestClient(create_app(settings=settings), raise_server_exceptions=False) as client:
        whole = client.get(f"{parts.path}?{parts.query}")
        part = client.get(f"{parts.path}?{parts.query}", headers={"Range": "bytes=0-99"})
        forged = client.get(f"{parts.path}?{parts.query[:-1]}0")
    assert whole.status_code == 200 and whole.headers["content-type"] == "video/mp4"
    assert part.status_code == 206 and len(part.content) == 100
    assert forged.status_code == 403
    expires = int(parse_qs(parts.query)["expires"][0])
    assert expires - time.time() == pytest.approx(7 * 24 * 3600, abs=600)


def test_demo_renders_a_playable_video_and_reports_progress(tmp_path):
    result = _demo(tmp_path)
    assert result.returncode == 0, result.stdout + result.stderr
    tail, video = _check_output(result.stdout, tmp_path, statuses={"completed"})
    assert len(tail) == 4, tail

    info = probe(video)
    assert info.video is not None and info.audio is not None
    assert (info.video.width, info.video.height) == (1280, 720)
    nodes = {n.title: n for n in _demo_nodes(tmp_path)}
    narration = decoded_duration(_path_of(nodes["Voiceover"], tmp_path))
    playable = decoded_duration(video)
    assert narration is not None and narration > 3
    # within one audio frame: the narration is never cut
    assert playable is not None and playable >= narration - 0.03, (playable, narration)
    assert [n.status for n in nodes.values()] == ["completed"] * 10
    assert nodes["Final cut"].output["s3_key"] in str(video)
    assert (tmp_path / "dagster" / "dagster.yaml").is_file()
    _served(tail[-2], tmp_path)

    stored = sorted(p for p in (tmp_path / "storage").rglob("*") if p.is_file())
    again = _demo(tmp_path)
    assert again.returncode == 0, again.stdout + again.stderr
    tail, again_video = _check_output(again.stdout, tmp_path, statuses={"reused"})
    assert again_video == video  # the same media, nothing rendered again
    assert tail[0] == (
        "Reused the finished work of 10 of 10 nodes; `vidpipe demo --force` renders them again"
    )
    assert sorted(p for p in (tmp_path / "storage").rglob("*") if p.is_file()) == stored
    nodes = _demo_nodes(tmp_path)
    assert [n.status for n in nodes] == ["completed"] * 10
    assert all(n.metadata_["reused_from"]["node_uuid"] == n.uuid for n in nodes)
    assert all(n.output["cost"] == 0 for n in nodes)

    forced = _demo(tmp_path, "--force")
    assert forced.returncode == 0, forced.stdout + forced.stderr
    tail, forced_video = _check_output(forced.stdout, tmp_path, statuses={"completed"})
    assert forced_video != video and len(tail) == 4
    assert video.is_file()


def _descendants(pid: int) -> list[int]:
    found: list[int] = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            children = (task / "children").read_text().split()
        except OSError:
            continue
        for child in map(int, children):
            found += [child, *_descendants(child)]
    return found


def _alive(pid: int) -> bool:
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


class Terminal:
    """``vidpipe demo`` on a pseudo-terminal, as a person runs it."""

    def __init__(self, env: dict[str, str]) -> None:
        self.pid, self.fd = pty.fork()
        if self.pid == 0:  # the child: become the command
            os.execve(sys.executable, [sys.executable, "-m", "vidpipe_dagster.cli", "demo"], env)
        self.output = b""

    def read(self, *, until: Callable[[str], bool], seconds: float) -> bool:
        """Collect output until ``until(text)`` holds, EOF, or ``seconds`` pass."""
        deadline = time.monotonic() + seconds
        while time.monotonic() < deadline:
            if until(self.text):
                return True
            ready, _, _ = fd_select.select([self.fd], [], [], 0.1)
            if ready:
                try:
                    data = os.read(self.fd, 65536)
                except OSError:
                    return until(self.text)
                if not data:
                    return until(self.text)
                self.output += data
        return until(self.text)

    @property
    def text(self) -> str:
        return self.output.decode(errors="replace").replace("\r\n", "\n")


def test_ctrl_c_in_the_demo_stops_with_one_line_and_marks_the_node_interrupted(tmp_path):
    slow = tmp_path / "ffmpeg-stalls"
    slow.write_text(f'#!/bin/sh\nsleep 60\nexec "{ffmpeg_binary()}" "$@"\n')
    slow.chmod(0o755)
    env = {**os.environ, "VIDPIPE_HOME": str(tmp_path), "FFMPEG_BINARY": str(slow)}
    for name in ("VIDPIPE_DATABASE_URL", "VIDPIPE_STORAGE_URL", "DAGSTER_HOME"):
        env.pop(name, None)
    terminal = Terminal(env)
    running = re.compile(r"^\s*\[ 4/10\] Voiceover\s+in_progress\s+\d+\.\d s$", re.MULTILINE)
    try:
        assert terminal.read(until=running.search, seconds=240), terminal.text
        started = _descendants(terminal.pid)
        before = terminal.text
        os.write(terminal.fd, b"\x03")
        interrupted = time.monotonic()
        terminal.read(until=lambda _text: False, seconds=10)
        _, status = os.waitpid(terminal.pid, 0)
        elapsed = time.monotonic() - interrupted
    finally:
        with contextlib.suppress(ProcessLookupError, ChildProcessError):
            os.kill(terminal.pid, signal.SIGKILL)
            os.waitpid(terminal.pid, 0)
        os.close(terminal.fd)

    assert os.waitstatus_to_exitcode(status) == 130
    assert elapsed < 5, f"the demo took {elapsed:.1f} s to stop"
    titles = ("Script", "Code sample", "Animation prompt", "Voiceover")
    for line in before.splitlines():
        progress = PROGRESS.fullmatch(line)
        assert line.startswith(("Demo pipeline ", "Materializing through Dagster")) or (
            progress and progress["title"].rstrip() in titles
        ), line
    after = terminal.text[len(before) :].removeprefix("^C").strip("\n").splitlines()
    assert after == [
        "Stopped the demo: 'Voiceover' interrupted (marked failed); 3 of 10 nodes completed, "
        "6 not started. Run `vidpipe demo` again to finish."
    ], terminal.text

    engine = make_engine(f"sqlite:///{tmp_path / 'vidpipe.db'}")
    try:
        with make_sessionmaker(engine)() as session:
            pipeline = session.scalars(select(Pipeline).where(Pipeline.title == DEMO_TITLE)).one()
            nodes = {n.title: n for n in list_nodes(session, pipeline)}
            progress = pipeline.metadata_["progress"]
    finally:
        engine.dispose()
    assert nodes["Voiceover"].status == "failed"
    assert nodes["Voiceover"].metadata_["error"] == INTERRUPTED
    assert [n.status for n in nodes.values()].count("completed") == 3
    assert [n.status for n in nodes.values()].count("pending") == 6
    assert progress["in_progress"] == 0 and progress["failed"] == 1
    deadline = interrupted + 5
    while [pid for pid in started if _alive(pid)]:
        assert time.monotonic() < deadline, [pid for pid in started if _alive(pid)]
        time.sleep(0.1)
