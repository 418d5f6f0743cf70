"""MP4 header reading: durations and stream-copy signatures without ffmpeg."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdas import mp4, video_merger
from lambdas.ffmpeg import probe, run_ffmpeg


def test_duration_agrees_with_ffmpeg(red_clip: Path, odd_clip: Path, blue_clip: Path) -> None:
    for path in (red_clip, odd_clip, blue_clip):
        assert mp4.duration(path) == pytest.approx(probe(path).duration, abs=0.03)


def test_non_mp4_files_have_no_duration(corrupt_clip: Path, tmp_path: Path) -> None:
    mp3 = tmp_path / "x.mp3"
    run_ffmpeg(["-f", "lavfi", "-i", "sine=d=0.2", str(mp3)])
    assert mp4.duration(mp3) is None
    assert mp4.duration(corrupt_clip) is None
    assert mp4.copy_signature(corrupt_clip) is None


def test_signature_ignores_content_but_not_format(
    red_clip: Path, green_clip: Path, silent_clip: Path, make_clip, odd_clip: Path
) -> None:
    red, green = mp4.copy_signature(red_clip), mp4.copy_signature(green_clip)
    assert red is not None and red == green
    assert mp4.copy_signature(silent_clip) != red
    assert mp4.copy_signature(make_clip(color="red", tone=440.0, fps=30)) != red
    assert mp4.copy_signature(make_clip(color="red", tone=440.0, sample_rate=48000)) != red
    assert mp4.copy_signature(make_clip(color="red", tone=440.0, channels=2)) != red
    assert mp4.copy_signature(make_clip(color="red", tone=440.0, size=(320, 180))) != red
    assert mp4.copy_signature(odd_clip) is None


def test_matching_mp4s_merge_without_starting_a_probe(
    red_clip: Path, green_clip: Path, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def no_probe(*args, **kwargs):
        raise AssertionError("probe_many should not run for identical MP4 inputs")

    monkeypatch.setattr(video_merger, "probe_many", no_probe)

    result = video_merger.handler(
        {
            "input_videos": [red_clip.as_uri(), green_clip.as_uri()],
            "output_bucket": tmp_path.as_uri(),
            "output_key": "m.mp4",
        },
        None,
    )

    assert result["statusCode"] == 200, result
    assert result["duration"] == pytest.approx(probe(tmp_path / "m.mp4").duration, abs=0.03)
