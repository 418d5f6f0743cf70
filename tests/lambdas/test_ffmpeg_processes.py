"""ffmpeg processes end: a time limit scaled to the media, and death with their parent."""

from __future__ import annotations

import os
import signal
import stat
import subprocess
import sys
import threading
import time
from pathlib import Path

import pytest

from lambdas import ffmpeg
from lambdas.ffmpeg import FFmpegTimeoutError, media_timeout
from vidpipe_dagster.resources.providers.local import render_animation
from vidpipe_dagster.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
ANIMATION_SECONDS = 2.0


def alive(pid: int) -> bool:
    """True while ``pid`` runs (a zombie counts as dead)."""
    try:
        state = Path(f"/proc/{pid}/stat").read_text().rsplit(")", 1)[1].split()[0]
    except OSError:
        return False
    return state not in ("Z", "X")


def children(pid: int) -> list[int]:
    found = []
    for task in Path(f"/proc/{pid}/task").glob("*"):
        try:
            found += [int(child) for child in (task / "children").read_text().split()]
        except OSError:
            continue
    return found


@pytest.fixture
def hanging_ffmpeg(tmp_path: Path, monkeypatch: pytest.MonkeyPatch):
    """An "ffmpeg" that never finishes and starts a child of its own; yields its pid files."""
    pids = tmp_path / "pids"
    fake = tmp_path / "ffmpeg-hangs"
    fake.write_text(f'#!/bin/sh\necho $$ >> "{pids}"\nsleep 300 &\necho $! >> "{pids}"\nwait\n')
    fake.chmod(fake.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("FFMPEG_BINARY", str(fake))
    monkeypatch.setenv(ffmpeg.TIMEOUT_FLOOR_ENV, "1")
    monkeypatch.setenv(ffmpeg.TIMEOUT_RATE_ENV, "0.5")
    yield pids
    for pid in map(int, pids.read_text().split()) if pids.exists() else []:
        try:
            os.kill(pid, signal.SIGKILL)
        except ProcessLookupError:
            pass


def test_the_time_limit_grows_with_the_media(monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.delenv(ffmpeg.TIMEOUT_FLOOR_ENV, raising=False)
    monkeypatch.delenv(ffmpeg.TIMEOUT_RATE_ENV, raising=False)
    assert media_timeout() == ffmpeg.DEFAULT_TIMEOUT_FLOOR_SECONDS
    assert media_timeout(120) == pytest.approx(
        ffmpeg.DEFAULT_TIMEOUT_FLOOR_SECONDS + 120 * ffmpeg.DEFAULT_TIMEOUT_PER_MEDIA_SECOND
    )
    monkeypatch.setenv(ffmpeg.TIMEOUT_FLOOR_ENV, "2")
    monkeypatch.setenv(ffmpeg.TIMEOUT_RATE_ENV, "0.25")
    assert media_timeout(8) == pytest.approx(4.0)
    settings = Settings()
    assert (settings.ffmpeg_timeout_floor_seconds, settings.ffmpeg_timeout_per_media_second) == (
        2.0,
        0.25,
    ), "the settings and the ffmpeg helpers name different variables"


def test_a_hanging_ffmpeg_is_killed_at_its_limit_with_its_children(
    hanging_ffmpeg: Path, tmp_path: Path
) -> None:
    limit = 1 + 0.5 * ANIMATION_SECONDS
    outcome: dict[str, BaseException | float] = {}

    def render() -> None:
        begun = time.monotonic()
        try:
            render_animation("waves", tmp_path / "waves.mp4", duration=ANIMATION_SECONDS)
        except BaseException as error:  # noqa: BLE001 - handed to the test thread
            outcome["error"] = error
        outcome["seconds"] = time.monotonic() - begun

    thread = threading.Thread(target=render, daemon=True)
    thread.start()
    thread.join(timeout=limit + 10)
    assert not thread.is_alive(), "the hanging ffmpeg was never stopped"

    error = outcome["error"]
    assert isinstance(error, FFmpegTimeoutError)
    assert f"stopped after {limit:g} s" in str(error)
    assert ffmpeg.TIMEOUT_FLOOR_ENV in str(error) and ffmpeg.TIMEOUT_RATE_ENV in str(error)
    assert limit - 0.5 <= outcome["seconds"] <= limit + 5
    pids = [int(pid) for pid in hanging_ffmpeg.read_text().split()]
    assert len(pids) == 2
    deadline = time.monotonic() + 2
    while any(alive(pid) for pid in pids):
        assert time.monotonic() < deadline, "a process of the hung ffmpeg's group survived"
        time.sleep(0.05)


def test_ffmpeg_dies_with_the_process_that_started_it(tmp_path: Path) -> None:
    code = (
        "from lambdas.ffmpeg import run_ffmpeg\n"
        "run_ffmpeg(['-re', '-f', 'lavfi', '-i', 'anullsrc', '-t', '600', '-f', 'null', '-'])\n"
    )
    env = {**os.environ, "PYTHONPATH": str(ROOT)}
    worker = subprocess.Popen([sys.executable, "-c", code], env=env, cwd=tmp_path)
    renders: list[int] = []
    try:
        deadline = time.monotonic() + 30
        while not (renders := children(worker.pid)):
            assert worker.poll() is None and time.monotonic() < deadline, "ffmpeg never started"
            time.sleep(0.05)
        os.kill(worker.pid, signal.SIGKILL)
        worker.wait()
        deadline = time.monotonic() + 3
        while any(alive(pid) for pid in renders):
            assert time.monotonic() < deadline, "ffmpeg outlived the process that started it"
            time.sleep(0.05)
    finally:
        if worker.poll() is None:
            worker.kill()
        for pid in renders:
            try:
                os.kill(pid, signal.SIGKILL)
            except ProcessLookupError:
                pass
