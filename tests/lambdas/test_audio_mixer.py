"""audio_mixer handler: replace (pad and cut), overlay, volume, bad events, failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdas import audio_mixer
from lambdas.ffmpeg import decoded_duration, probe
from tests.fixtures.media import color_at, mean_volume


def _event(video: Path, audio: Path, out_dir: Path, **extra: object) -> dict:
    return {
        "video": video.as_uri(),
        "audio": audio.as_uri(),
        "output_bucket": out_dir.as_uri(),
        "output_key": "mixed.mp4",
        **extra,
    }


COMPLETE = {
    "video": "file:///v.mp4",
    "audio": "file:///a.mp3",
    "output_bucket": "b",
    "output_key": "k",
}


@pytest.mark.parametrize(
    ("event", "message"),
    [
        ({}, "video and audio are required"),
        ({"video": "file:///v.mp4"}, "video and audio are required"),
        ({**COMPLETE, "output_bucket": None}, "output_bucket and output_key are required"),
        ({**COMPLETE, "video": "v.mp4"}, "video must be an s3://, file:// or https:// URI"),
        ({**COMPLETE, "mode": "blend"}, "mode must be 'replace' or 'overlay', got 'blend'"),
        ({**COMPLETE, "volume": "loud"}, "volume must be a number"),
        ({**COMPLETE, "volume": -1}, "volume must be between 0 and 10"),
        ({**COMPLETE, "length": "longest"}, "length must be 'video' or 'audio', got 'longest'"),
    ],
)
def test_bad_event_is_400(event: dict, message: str, lambda_tmp: Path) -> None:
    assert audio_mixer.handler(event, None) == {"error": message, "statusCode": 400}
    assert list(lambda_tmp.iterdir()) == []


def test_replace_pads_short_audio_with_silence(
    red_clip: Path, tone_audio: Path, out_dir: Path, lambda_tmp: Path
) -> None:
    result = audio_mixer.handler(_event(red_clip, tone_audio, out_dir), None)

    assert result["statusCode"] == 200, result
    output = out_dir / "mixed.mp4"
    assert result["duration"] == pytest.approx(probe(red_clip).duration, abs=0.06)
    assert mean_volume(output, start=0.05, duration=0.35) > -40
    assert mean_volume(output, start=0.65, duration=0.3) < -60
    assert list(lambda_tmp.iterdir()) == []


def test_replace_cuts_long_audio_and_copies_video(
    red_clip: Path, long_audio: Path, out_dir: Path
) -> None:
    result = audio_mixer.handler(_event(red_clip, long_audio, out_dir, mode="replace"), None)

    assert result["statusCode"] == 200, result
    output = probe(out_dir / "mixed.mp4")
    source = probe(red_clip)
    assert output.duration == pytest.approx(source.duration, abs=0.06)
    assert output.video == source.video
    assert output.audio is not None and output.audio.sample_rate == 48000


@pytest.mark.parametrize("mode", ["replace", "overlay"])
def test_length_audio_holds_the_last_frame_until_a_longer_narration_ends(
    red_clip: Path, long_audio: Path, out_dir: Path, mode: str
) -> None:
    result = audio_mixer.handler(
        _event(red_clip, long_audio, out_dir, mode=mode, length="audio"), None
    )

    assert result["statusCode"] == 200, result
    output = out_dir / "mixed.mp4"
    info = probe(output)
    assert result["duration"] == pytest.approx(probe(long_audio).duration, abs=0.1)
    assert info.video is not None
    assert decoded_duration(output) == pytest.approx(3.0, abs=0.1)
    assert mean_volume(output, start=2.5, duration=0.4) > -40
    assert color_at(output, at=2.8) == color_at(output, at=0.5) == "red"


def test_length_audio_cuts_a_longer_video_to_the_narration(
    make_clip, tone_audio: Path, out_dir: Path
) -> None:
    clip = make_clip(color="green", duration=2.0, tone=None)

    result = audio_mixer.handler(_event(clip, tone_audio, out_dir, length="audio"), None)

    assert result["statusCode"] == 200, result
    assert result["duration"] == pytest.approx(probe(tone_audio).duration, abs=0.1)
    assert probe(out_dir / "mixed.mp4").video == probe(clip).video


def test_replace_adds_audio_to_a_silent_video(
    silent_clip: Path, tone_audio: Path, out_dir: Path
) -> None:
    result = audio_mixer.handler(_event(silent_clip, tone_audio, out_dir), None)

    assert result["statusCode"] == 200, result
    assert probe(out_dir / "mixed.mp4").audio is not None


def test_overlay_keeps_the_original_under_the_new_track(
    red_clip: Path, tone_audio: Path, out_dir: Path, lambda_tmp: Path
) -> None:
    original = mean_volume(red_clip, start=0.05, duration=0.35)

    result = audio_mixer.handler(_event(red_clip, tone_audio, out_dir, mode="overlay"), None)

    assert result["statusCode"] == 200, result
    output = out_dir / "mixed.mp4"
    assert result["duration"] == pytest.approx(probe(red_clip).duration, abs=0.06)
    assert mean_volume(output, start=0.05, duration=0.35) > original + 1.5
    assert mean_volume(output, start=0.65, duration=0.3) == pytest.approx(original, abs=1.5)
    assert list(lambda_tmp.iterdir()) == []


def test_overlay_volume_scales_the_new_track(
    red_clip: Path, tone_audio: Path, out_dir: Path
) -> None:
    original = mean_volume(red_clip, start=0.05, duration=0.35)

    result = audio_mixer.handler(
        _event(red_clip, tone_audio, out_dir, mode="overlay", volume=0), None
    )

    assert result["statusCode"] == 200, result
    assert mean_volume(out_dir / "mixed.mp4", start=0.05, duration=0.35) == pytest.approx(
        original, abs=1.0
    )


def test_audio_without_sound_is_500(red_clip: Path, silent_clip: Path, out_dir: Path) -> None:
    result = audio_mixer.handler(_event(red_clip, silent_clip, out_dir), None)

    assert result["statusCode"] == 500
    assert "has no audio stream" in result["error"]


def test_corrupt_video_is_500_with_ffmpegs_reason(
    corrupt_clip: Path, tone_audio: Path, out_dir: Path, lambda_tmp: Path
) -> None:
    result = audio_mixer.handler(_event(corrupt_clip, tone_audio, out_dir), None)

    assert result["statusCode"] == 500
    assert "Invalid data found when processing input" in result["error"]
    assert list(lambda_tmp.iterdir()) == []


def test_fades_ramp_the_new_audio_in_and_out(
    make_clip, long_audio: Path, out_dir: Path, lambda_tmp: Path
) -> None:
    clip = make_clip(color="green", duration=2.0, tone=None)
    plain = audio_mixer.handler(_event(clip, long_audio, out_dir, output_key="plain.mp4"), None)
    faded = audio_mixer.handler(
        _event(clip, long_audio, out_dir, output_key="faded.mp4", fade_in=0.8, fade_out=0.8),
        None,
    )

    assert plain["statusCode"] == faded["statusCode"] == 200, (plain, faded)
    loud = mean_volume(out_dir / "plain.mp4", start=0.0, duration=0.15)
    middle = mean_volume(out_dir / "faded.mp4", start=0.9, duration=0.2)
    start = mean_volume(out_dir / "faded.mp4", start=0.0, duration=0.15)
    end = mean_volume(out_dir / "faded.mp4", start=1.85, duration=0.1)
    assert middle == pytest.approx(loud, abs=1.5)
    assert start < middle - 10
    assert end < middle - 10
    assert list(lambda_tmp.iterdir()) == []
