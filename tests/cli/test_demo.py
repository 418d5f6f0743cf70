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

from sqlalchemy import select

from lambdas.ffmpeg import decoded_duration, ffmpeg_binary, probe
from vidpipe_dagster.db.models import Pipeline
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.demo import DEMO_TITLE
from vidpipe_dagster.domain.lifecycle import INTERRUPTED
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
    running = re.compile(r"^\s*\[\d+/10\] Voiceover\s+in_progress$", re.MULTILINE)
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
        assert line.startswith(("Demo pipeline ", "Materializing through Dagster")) or re.fullmatch(
            rf"\s*\[\d+/10\] ({'|'.join(titles)})\s+\S.*", line
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
