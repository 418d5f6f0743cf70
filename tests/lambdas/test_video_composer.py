"""video_composer handler: geometry, opacity, stills, duration, audio choice, failures."""

from __future__ import annotations

from pathlib import Path

import pytest

from lambdas import video_composer
from lambdas.ffmpeg import probe
from lambdas.video_composer import Placement, placement
from tests.fixtures.media import color_at


def _event(background: Path, overlay: Path, out_dir: Path, **extra: object) -> dict:
    return {
        "background": background.as_uri(),
        "overlay": overlay.as_uri(),
        "output_bucket": out_dir.as_uri(),
        "output_key": "composed.mp4",
        **extra,
    }


@pytest.mark.parametrize(
    ("position", "expected"),
    [
        ("top-left", Placement(x=10, y=5, width=80, height=44)),
        ("top-right", Placement(x=230, y=5, width=80, height=44)),
        ("bottom-left", Placement(x=10, y=131, width=80, height=44)),
        ("bottom-right", Placement(x=230, y=131, width=80, height=44)),
        ("center", Placement(x=130, y=73, width=80, height=44)),
    ],
)
def test_placement(position: str, expected: Placement) -> None:
    got = placement(
        background=(320, 180), overlay=(160, 90), position=position, scale=0.25,
        offset_x=10, offset_y=5,
    )  # fmt: skip
    assert got == expected


@pytest.mark.parametrize(
    ("extra", "message"),
    [
        ({"overlay": None}, "background and overlay are required"),
        ({"output_key": ""}, "output_bucket and output_key are required"),
        ({"position": "middle"}, "position must be one of top-left, top-right, bottom-left, "
                                 "bottom-right, center, got 'middle'"),
        ({"scale": 2}, "scale must be between 0.01 and 1"),
        ({"opacity": 1.5}, "opacity must be between 0 and 1"),
        ({"offsetX": "left"}, "offsetX must be a number"),
        ({"audio": "both"}, "audio must be one of mix, background, overlay, none, got 'both'"),
    ],
)  # fmt: skip
def test_bad_event_is_400(extra: dict, message: str, lambda_tmp: Path) -> None:
    event = {
        "background": "file:///bg.mp4",
        "overlay": "file:///ov.mp4",
        "output_bucket": "b",
        "output_key": "k",
        **extra,
    }
    assert video_composer.handler(event, None) == {"error": message, "statusCode": 400}
    assert list(lambda_tmp.iterdir()) == []


@pytest.mark.parametrize("position", ["top-left", "bottom-right", "center"])
def test_overlay_lands_where_placement_says(
    position: str, odd_clip: Path, red_clip: Path, out_dir: Path, lambda_tmp: Path
) -> None:
    event = _event(
        odd_clip, red_clip, out_dir, position=position, scale=0.25, offsetX=12, offsetY=8
    )

    result = video_composer.handler(event, None)

    assert result["statusCode"] == 200, result
    output = out_dir / "composed.mp4"
    info = probe(output)
    assert info.video is not None and (info.video.width, info.video.height) == (320, 180)
    box = placement(
        background=(320, 180), overlay=(160, 90), position=position, scale=0.25,
        offset_x=12, offset_y=8,
    )  # fmt: skip
    inside = (box.x + box.width // 2, box.y + box.height // 2)
    assert color_at(output, at=0.5, x=inside[0], y=inside[1]) == "red"
    for x, y in [(box.x - 4, box.y + 4), (box.x + box.width + 3, box.y + box.height - 4)]:
        if 0 <= x < 320 and 0 <= y < 180:
            assert color_at(output, at=0.5, x=x, y=y) == "magenta"
    assert list(lambda_tmp.iterdir()) == []


def test_output_lasts_as_long_as_the_background(
    odd_clip: Path, red_clip: Path, blue_clip: Path, out_dir: Path
) -> None:
    shorter_overlay = video_composer.handler(
        _event(odd_clip, red_clip, out_dir, position="top-left", offsetX=0, offsetY=0), None
    )
    assert shorter_overlay["duration"] == pytest.approx(probe(odd_clip).duration, abs=0.07)
    assert color_at(out_dir / "composed.mp4", at=1.3, x=20, y=10) == "magenta"

    longer_overlay = video_composer.handler(
        {**_event(red_clip, blue_clip, out_dir), "output_key": "composed-2.mp4"}, None
    )
    assert longer_overlay["duration"] == pytest.approx(probe(red_clip).duration, abs=0.07)


def test_zero_opacity_hides_the_overlay(odd_clip: Path, red_clip: Path, out_dir: Path) -> None:
    result = video_composer.handler(
        _event(odd_clip, red_clip, out_dir, position="center", opacity=0.0), None
    )

    assert result["statusCode"] == 200, result
    assert color_at(out_dir / "composed.mp4", at=0.5) == "magenta"


def test_still_image_overlay_stays_for_the_whole_background(
    odd_clip: Path, still_image: Path, out_dir: Path
) -> None:
    result = video_composer.handler(
        _event(odd_clip, still_image, out_dir, position="center", scale=0.5), None
    )

    assert result["statusCode"] == 200, result
    output = out_dir / "composed.mp4"
    assert result["duration"] == pytest.approx(probe(odd_clip).duration, abs=0.07)
    assert color_at(output, at=1.4) == "white"


@pytest.mark.parametrize(("choice", "has_audio"), [("mix", True), ("none", False)])
def test_audio_choice(
    choice: str, has_audio: bool, odd_clip: Path, red_clip: Path, out_dir: Path
) -> None:
    result = video_composer.handler(_event(odd_clip, red_clip, out_dir, audio=choice), None)

    assert result["statusCode"] == 200, result
    assert (probe(out_dir / "composed.mp4").audio is not None) is has_audio


def test_corrupt_overlay_is_500_with_ffmpegs_reason(
    odd_clip: Path, corrupt_clip: Path, out_dir: Path, lambda_tmp: Path
) -> None:
    result = video_composer.handler(_event(odd_clip, corrupt_clip, out_dir), None)

    assert result["statusCode"] == 500
    assert "Invalid data found when processing input" in result["error"]
    assert list(lambda_tmp.iterdir()) == []
