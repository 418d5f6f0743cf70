"""The local provider renders real media of the right length, with text and no system fonts."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdas.ffmpeg import probe
from tests.fixtures.media import frame_rgb, mean_volume, read_frame
from vidpipe_dagster.resources.providers import local


@pytest.fixture(autouse=True)
def tone_narration(monkeypatch: pytest.MonkeyPatch) -> None:
    """These tests pin the picture and the tone fallback's exact length; speech is covered
    by tests/resources/test_speech.py."""
    monkeypatch.setattr(local, "speak", lambda text, out: None)


@pytest.mark.parametrize(
    ("text", "seconds"),
    [("", 1.0), ("one", 1.0), ("word " * 5, 2.0), ("word " * 150, 60.0), ("a\nb\tc  d", 1.6)],
)
def test_reading_seconds(text: str, seconds: float) -> None:
    assert local.reading_seconds(text) == pytest.approx(seconds)


def _light_pixels(path: Path, *, at: float, box: tuple[int, int, int, int]) -> int:
    """Count near-white pixels on a coarse grid inside box (x0, y0, x1, y1)."""
    frame = read_frame(path, at=at)
    x0, y0, x1, y1 = box
    return sum(
        1 for x in range(x0, x1, 2) for y in range(y0, y1, 2) if min(frame.pixel(x, y)) > 150
    )


def test_talking_head_is_720p_for_as_long_as_the_script(tmp_path: Path) -> None:
    script = "Welcome to the course, today we learn loops."

    rendered = local.render_talking_head(script, tmp_path / "th.mp4")

    info = probe(rendered.path)
    assert (info.video.width, info.video.height) == (1280, 720)
    expected = local.reading_seconds(script)
    assert expected == pytest.approx(3.2)
    assert rendered.duration == pytest.approx(expected, abs=0.1)
    assert info.audio is not None
    assert mean_volume(rendered.path, start=0.5, duration=2.0) > -40


def test_talking_head_shows_the_script(tmp_path: Path) -> None:
    rendered = local.render_talking_head("Hello there", tmp_path / "th.mp4", size=(320, 180))

    panel = (320 * 2 // 5, 10, 320 - 10, 60)
    assert _light_pixels(rendered.path, at=0.5, box=panel) > 0
    assert _light_pixels(rendered.path, at=0.5, box=(300, 120, 320, 180)) == 0


def test_animation_lasts_config_duration_and_moves(tmp_path: Path) -> None:
    rendered = local.render_animation(
        "A cat on a bike", tmp_path / "a.mp4", duration=1.5, size=(160, 90)
    )

    info = probe(rendered.path)
    assert rendered.duration == pytest.approx(1.5, abs=0.05)
    assert (info.video.width, info.video.height) == (160, 90)
    assert info.audio is None
    assert read_frame(rendered.path, at=0.1).data != read_frame(rendered.path, at=1.2).data


def test_voiceover_lasts_as_long_as_the_script(tmp_path: Path) -> None:
    script = " ".join(["word"] * 10)

    rendered = local.render_voiceover(script, tmp_path / "v.mp3")

    info = probe(rendered.path)
    assert info.video is None and info.audio is not None and info.audio.codec == "mp3"
    assert rendered.duration == pytest.approx(4.0, abs=0.1)
    assert mean_volume(rendered.path, start=0.5, duration=3.0) > -40


def test_code_is_typeset_for_the_requested_time(tmp_path: Path) -> None:
    code = "def add(a, b):\n    return a + b\n"

    rendered = local.render_code(code, tmp_path / "c.mp4", duration=1.0, size=(320, 180))

    assert rendered.duration == pytest.approx(1.0, abs=0.05)
    assert _light_pixels(rendered.path, at=0.5, box=(20, 5, 200, 40)) > 0
    assert frame_rgb(rendered.path, at=0.5, x=300, y=170) == pytest.approx(local.BACKGROUND, abs=6)


def test_code_default_duration_grows_with_lines(tmp_path: Path) -> None:
    code = "\n".join(f"x{i} = {i}" for i in range(12))

    rendered = local.render_code(code, tmp_path / "c.mp4", size=(160, 90))

    assert local.code_seconds(code) == pytest.approx(8.0)
    assert rendered.duration == pytest.approx(8.0, abs=0.05)
