"""ffmpeg helpers: binary selection, probing real files, parsing, error tails."""

from __future__ import annotations

import stat
from pathlib import Path

import pytest

from lambdas import ffmpeg
from lambdas.ffmpeg import FFmpegError, parse_probe_output, probe, run_ffmpeg

SAMPLE = """Input #0, mov,mp4,m4a,3gp,3g2,mj2, from 'x.mp4':
  Duration: 00:01:02.50, start: 0.000000, bitrate: 379 kb/s
  Stream #0:0[0x1](und): Video: h264 (High) (avc1 / 0x31637661), yuv420p(tv, bt709, progressive), 1920x1080 [SAR 1:1 DAR 16:9], 291 kb/s, 29.97 fps, 29.97 tbr, 30k tbn (default)
  Stream #0:1[0x2](eng): Audio: aac (LC) (mp4a / 0x6134706D), 48000 Hz, 5.1, fltp, 70 kb/s (default)
At least one output file must be specified
"""  # noqa: E501


def test_parse_probe_output_reads_streams_and_duration() -> None:
    info = parse_probe_output(SAMPLE)

    assert info is not None
    assert info.duration == pytest.approx(62.5)
    assert info.video == ffmpeg.VideoStream(
        codec="h264", width=1920, height=1080, fps=29.97, pix_fmt="yuv420p"
    )
    assert info.audio == ffmpeg.AudioStream(
        codec="aac", sample_rate=48000, channels=6, layout="5.1"
    )


def test_parse_probe_output_without_input_is_none() -> None:
    assert parse_probe_output("x.mp4: No such file or directory") is None


def test_probe_measures_generated_media(
    odd_clip: Path, tone_audio: Path, still_image: Path
) -> None:
    video = probe(odd_clip)
    assert video.duration == pytest.approx(1.5, abs=0.05)
    assert (video.video.codec, video.video.width, video.video.height) == ("mpeg4", 320, 180)
    assert video.video.fps == pytest.approx(30)
    assert (video.audio.sample_rate, video.audio.channels) == (48000, 2)

    audio = probe(tone_audio)
    assert audio.video is None and audio.duration == pytest.approx(0.5, abs=0.05)

    image = probe(still_image)
    assert image.is_still_image and image.duration is None
    assert (image.video.width, image.video.height) == (64, 36)


def test_probe_of_corrupt_file_raises_with_reason(corrupt_clip: Path) -> None:
    with pytest.raises(FFmpegError) as caught:
        probe(corrupt_clip)
    assert "Invalid data found when processing input" in caught.value.reason


def test_run_ffmpeg_failure_keeps_the_last_error_lines(tmp_path: Path) -> None:
    with pytest.raises(FFmpegError) as caught:
        run_ffmpeg(["-i", str(tmp_path / "missing.mp4"), str(tmp_path / "out.mp4")])
    assert "No such file or directory" in caught.value.reason
    assert len(caught.value.reason.splitlines()) <= ffmpeg.ERROR_TAIL_LINES


def test_ffmpeg_binary_env_override(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    marker = tmp_path / "called"
    wrapper = tmp_path / "ffmpeg-wrapper"
    wrapper.write_text(f'#!/bin/sh\ntouch "{marker}"\nexec "{ffmpeg._bundled_binary()}" "$@"\n')
    wrapper.chmod(wrapper.stat().st_mode | stat.S_IEXEC)
    monkeypatch.setenv("FFMPEG_BINARY", str(wrapper))

    assert ffmpeg.ffmpeg_binary() == str(wrapper)
    run_ffmpeg(["-f", "lavfi", "-i", "anullsrc", "-t", "0.1", "-f", "null", "-"])
    assert marker.exists()


def test_probe_many_matches_probe_one_by_one(
    red_clip: Path, odd_clip: Path, silent_clip: Path, tone_audio: Path
) -> None:
    paths = [red_clip, odd_clip, silent_clip, tone_audio]

    assert ffmpeg.probe_many(paths) == [probe(path) for path in paths]


def test_probe_many_names_the_unreadable_file(red_clip: Path, corrupt_clip: Path) -> None:
    with pytest.raises(FFmpegError, match="corrupt.mp4"):
        ffmpeg.probe_many([red_clip, corrupt_clip])
