"""video_merger handler: event checks, order, stream copy vs normalise, fades, failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdas import video_merger
from lambdas.ffmpeg import decoded_duration, probe
from tests.fixtures.media import color_at, mean_volume


def _event(paths: list[Path], out_dir: Path, **extra: object) -> dict:
    return {
        "input_videos": [path.as_uri() for path in paths],
        "output_bucket": out_dir.as_uri(),
        "output_key": "merged/out.mp4",
        **extra,
    }


@pytest.fixture
def merge_path(monkeypatch: pytest.MonkeyPatch) -> list[str]:
    """Records which join strategy the merger used."""
    used: list[str] = []
    copy, normalised = video_merger.concat_copy, video_merger.concat_normalised

    def spy_copy(*args, **kwargs):
        used.append("copy")
        return copy(*args, **kwargs)

    def spy_normalised(*args, **kwargs):
        used.append("normalise")
        return normalised(*args, **kwargs)

    monkeypatch.setattr(video_merger, "concat_copy", spy_copy)
    monkeypatch.setattr(video_merger, "concat_normalised", spy_normalised)
    return used


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({}, "At least 2 input videos required"),
        ({"input_videos": ["file:///a.mp4"]}, "At least 2 input videos required"),
        ({"input_videos": "file:///a.mp4"}, "At least 2 input videos required"),
        (
            {"input_videos": ["file:///a.mp4", "file:///b.mp4"]},
            "output_bucket and output_key are required",
        ),
        (
            {"input_videos": ["file:///a.mp4", "file:///b.mp4"], "output_bucket": "b"},
            "output_bucket and output_key are required",
        ),
        (
            {"input_videos": ["file:///a.mp4", 3], "output_bucket": "b", "output_key": "k"},
            "input_videos must be a list of s3:// or file:// URIs",
        ),
        (
            {"input_videos": ["file:///a", "file:///b"], "output_bucket": "b", "output_key": "k",
             "transition": "wipe"},
            "Unsupported transition: 'wipe' (use 'fade')",
        ),
        (
            {"input_videos": ["file:///a", "file:///b"], "output_bucket": "b", "output_key": "k",
             "transition": "fade", "transitionDuration": "long"},
            "transitionDuration must be a number",
        ),
    ],
)  # fmt: skip
def test_bad_event_is_400(event: dict, message: str, lambda_tmp: Path) -> None:
    assert video_merger.handler(event, None) == {"error": message, "statusCode": 400}
    assert list(lambda_tmp.iterdir()) == []


def test_non_object_event_is_400() -> None:
    assert video_merger.handler(["not", "a", "dict"], None)["statusCode"] == 400


@pytest.mark.parametrize("order", [("red", "green", "blue"), ("blue", "red", "green")])
def test_matching_inputs_are_stream_copied_in_order(
    order: tuple[str, ...],
    request: pytest.FixtureRequest,
    out_dir: Path,
    lambda_tmp: Path,
    merge_path: list[str],
) -> None:
    clips = [request.getfixturevalue(f"{color}_clip") for color in order]
    durations = [probe(clip).duration for clip in clips]

    result = video_merger.handler(_event(clips, out_dir), None)

    assert result["statusCode"] == 200, result
    assert merge_path == ["copy"]
    output = out_dir / "merged/out.mp4"
    assert result["s3_key"] == "merged/out.mp4"
    assert result["size"] == output.stat().st_size
    assert result["duration"] == pytest.approx(sum(durations), abs=0.1)
    start = 0.0
    for color, duration in zip(order, durations, strict=True):
        assert color_at(output, at=start + duration / 2) == color
        start += duration
    assert list(lambda_tmp.iterdir()) == []


def test_mismatched_inputs_are_normalised_into_one_playable_file(
    red_clip: Path,
    odd_clip: Path,
    silent_clip: Path,
    out_dir: Path,
    lambda_tmp: Path,
    merge_path: list[str],
) -> None:
    clips = [red_clip, odd_clip, silent_clip]
    durations = [probe(clip).duration or 0 for clip in clips]

    result = video_merger.handler(_event(clips, out_dir), None)

    assert result["statusCode"] == 200, result
    assert merge_path == ["normalise"]
    output = out_dir / "merged/out.mp4"
    info = probe(output)
    assert info.video is not None and (info.video.width, info.video.height) == (160, 90)
    assert info.audio is not None and info.audio.channels == 2
    assert result["duration"] == pytest.approx(sum(durations), abs=0.15)
    assert decoded_duration(output) == pytest.approx(sum(durations), abs=0.15)
    assert [color_at(output, at=t) for t in (0.5, 1.75, 3.0)] == ["red", "magenta", "yellow"]
    assert mean_volume(output, start=0.2, duration=0.6) > -40
    assert mean_volume(output, start=2.7, duration=0.6) < -60
    assert list(lambda_tmp.iterdir()) == []


def test_inputs_without_audio_merge_by_copy_without_audio(
    silent_clip: Path, make_clip, out_dir: Path, merge_path: list[str]
) -> None:
    other = make_clip(color="cyan", tone=None)

    result = video_merger.handler(_event([silent_clip, other], out_dir), None)

    assert result["statusCode"] == 200, result
    assert merge_path == ["copy"]
    info = probe(out_dir / "merged/out.mp4")
    assert info.audio is None
    assert result["duration"] == pytest.approx(2.0, abs=0.1)


def test_one_input_without_audio_gets_silence(
    silent_clip: Path, red_clip: Path, out_dir: Path, merge_path: list[str]
) -> None:
    result = video_merger.handler(_event([silent_clip, red_clip], out_dir), None)

    assert result["statusCode"] == 200, result
    assert merge_path == ["normalise"]
    output = out_dir / "merged/out.mp4"
    assert probe(output).audio is not None
    assert mean_volume(output, start=0.1, duration=0.7) < -60
    assert mean_volume(output, start=1.2, duration=0.6) > -40


def test_fade_transition_overlaps_segments(
    red_clip: Path, blue_clip: Path, out_dir: Path, lambda_tmp: Path
) -> None:
    event = _event([red_clip, blue_clip], out_dir, transition="fade", transitionDuration=0.5)

    result = video_merger.handler(event, None)

    assert result["statusCode"] == 200, result
    output = out_dir / "merged/out.mp4"
    assert result["duration"] == pytest.approx(1.0 + 2.0 - 0.5, abs=0.1)
    assert color_at(output, at=0.2) == "red"
    assert color_at(output, at=2.2) == "blue"
    assert list(lambda_tmp.iterdir()) == []


def test_fade_longer_than_a_clip_is_refused(red_clip: Path, blue_clip: Path, out_dir: Path) -> None:
    event = _event([red_clip, blue_clip], out_dir, transition="fade", transitionDuration=1.5)

    result = video_merger.handler(event, None)

    assert result["statusCode"] == 500
    assert "not longer than the 1.5 s transition" in result["error"]


def test_corrupt_input_is_500_with_ffmpegs_reason(
    red_clip: Path, corrupt_clip: Path, out_dir: Path, lambda_tmp: Path
) -> None:
    result = video_merger.handler(_event([red_clip, corrupt_clip], out_dir), None)

    assert result["statusCode"] == 500
    assert "Invalid data found when processing input" in result["error"]
    assert not (out_dir / "merged/out.mp4").exists()
    assert list(lambda_tmp.iterdir()) == []


def test_missing_input_is_500(red_clip: Path, tmp_path: Path, out_dir: Path) -> None:
    result = video_merger.handler(_event([red_clip, tmp_path / "nope.mp4"], out_dir), None)

    assert result["statusCode"] == 500
    assert "No such file" in result["error"]


def test_audio_only_input_is_500(red_clip: Path, tone_audio: Path, out_dir: Path) -> None:
    result = video_merger.handler(_event([red_clip, tone_audio], out_dir), None)

    assert result["statusCode"] == 500
    assert "Input 2" in result["error"] and "has no video stream" in result["error"]


def test_s3_inputs_and_output(
    red_clip: Path, green_clip: Path, s3_client, s3_bucket: str, lambda_tmp: Path
) -> None:
    uris = []
    for clip in (red_clip, green_clip):
        key = f"merger-in/{clip.name}"
        s3_client.upload_file(str(clip), s3_bucket, key)
        uris.append(f"s3://{s3_bucket}/{key}")

    result = video_merger.handler(
        {"input_videos": uris, "output_bucket": s3_bucket, "output_key": "merger-out/m.mp4"}, None
    )

    assert result["statusCode"] == 200, result
    head = s3_client.head_object(Bucket=s3_bucket, Key="merger-out/m.mp4")
    assert head["ContentLength"] == result["size"]
    assert head["ContentType"] == "video/mp4"
    assert result["duration"] == pytest.approx(2.0, abs=0.1)
    assert list(lambda_tmp.iterdir()) == []


def test_missing_s3_input_is_500(red_clip: Path, s3_bucket: str, lambda_tmp: Path, out_dir) -> None:
    event = _event([red_clip], out_dir)
    event["input_videos"].append(f"s3://{s3_bucket}/does/not/exist.mp4")

    result = video_merger.handler(event, None)

    assert result["statusCode"] == 500
    assert "404" in result["error"] or "Not Found" in result["error"]
    assert list(lambda_tmp.iterdir()) == []
