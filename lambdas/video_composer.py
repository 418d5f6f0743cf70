"""video_composer Lambda: picture-in-picture.

Event::

    {"background": "s3://b/bg.mp4", "overlay": "s3://b/face.mp4",
     "output_bucket": "b", "output_key": "pipelines/.../x.mp4",
     "position": "bottom-right", "scale": 0.3, "offsetX": 20, "offsetY": 20,
     "opacity": 1.0, "audio": "mix"}

The overlay is scaled to ``scale`` times the background's width (aspect kept), placed in a
corner (``top-left``, ``top-right``, ``bottom-left``, ``bottom-right``) or the ``center``, moved
``offsetX``/``offsetY`` pixels in from that edge, and blended at ``opacity``. A still image
works as an overlay too. The output lasts as long as the background; an overlay that ends
earlier disappears. ``audio`` picks the soundtrack: ``mix`` (default: both, or whichever has
audio), ``background``, ``overlay`` or ``none``.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdas.ffmpeg import MediaInfo, probe, run_ffmpeg
from lambdas.runtime import (
    BadEvent,
    MediaError,
    Produced,
    number,
    require_destination,
    require_uri,
    run_handler,
)
from lambdas.uris import readable_path, suffix_of

POSITIONS = ("top-left", "top-right", "bottom-left", "bottom-right", "center")
AUDIO_CHOICES = ("mix", "background", "overlay", "none")


@dataclass(frozen=True)
class Placement:
    """Where the overlay lands on the background, in pixels."""

    x: int
    y: int
    width: int
    height: int


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    """Lambda entry point: overlay ``event["overlay"]`` on ``event["background"]``."""
    return run_handler("video-composer", event, compose)


def placement(
    *,
    background: tuple[int, int],
    overlay: tuple[int, int],
    position: str,
    scale: float,
    offset_x: int,
    offset_y: int,
) -> Placement:
    """Size and position of the overlay on a background of the given size."""
    bg_width, bg_height = background
    ov_width, ov_height = overlay
    width = _even(round(bg_width * scale))
    height = _even(round(ov_height * width / ov_width))
    if position == "center":
        x = (bg_width - width) // 2 + offset_x
        y = (bg_height - height) // 2 + offset_y
    else:
        vertical, horizontal = position.split("-")
        x = offset_x if horizontal == "left" else bg_width - width - offset_x
        y = offset_y if vertical == "top" else bg_height - height - offset_y
    return Placement(x=x, y=y, width=width, height=height)


def compose(event: Mapping[str, Any], workdir: Path) -> Produced:
    """Check the event, fetch both inputs and write the composed video."""
    if not event.get("background") or not event.get("overlay"):
        raise BadEvent("background and overlay are required")
    background_uri = require_uri(event, "background")
    overlay_uri = require_uri(event, "overlay")
    bucket, key = require_destination(event)
    position = str(event.get("position") or "bottom-right").replace("_", "-").lower()
    if position not in POSITIONS:
        raise BadEvent(f"position must be one of {', '.join(POSITIONS)}, got {position!r}")
    scale = number(event, "scale", default=0.3, minimum=0.01, maximum=1.0)
    offset_x = int(number(event, "offsetX", default=20))
    offset_y = int(number(event, "offsetY", default=20))
    opacity = number(event, "opacity", default=1.0, minimum=0.0, maximum=1.0)
    audio = event.get("audio") or "mix"
    if audio not in AUDIO_CHOICES:
        raise BadEvent(f"audio must be one of {', '.join(AUDIO_CHOICES)}, got {audio!r}")

    background_path = readable_path(
        background_uri, workdir / f"bg{suffix_of(background_uri, '.mp4')}"
    )
    overlay_path = readable_path(overlay_uri, workdir / f"ov{suffix_of(overlay_uri, '.mp4')}")
    background, overlay = probe(background_path), probe(overlay_path)
    if background.video is None or background.is_still_image:
        raise MediaError(f"background ({background_uri}) has no video stream")
    if overlay.video is None:
        raise MediaError(f"overlay ({overlay_uri}) has no picture")
    box = placement(
        background=(background.video.width, background.video.height),
        overlay=(overlay.video.width, overlay.video.height),
        position=position,
        scale=scale,
        offset_x=offset_x,
        offset_y=offset_y,
    )

    graph = [
        f"[1:v:0]scale={box.width}:{box.height},setsar=1,format=yuva420p,"
        f"colorchannelmixer=aa={opacity:g}[ov]",
        f"[0:v:0][ov]overlay=x={box.x}:y={box.y}:eof_action=pass:format=auto,format=yuv420p[v]",
    ]
    audio_graph = _audio_graph(audio, background=background, overlay=overlay)
    if audio_graph:
        graph.append(audio_graph)

    loop = ["-loop", "1"] if overlay.is_still_image else []
    overlay_input = [*loop, "-i", str(overlay_path)]
    output = workdir / "composed.mp4"
    args = ["-i", str(background_path), *overlay_input, "-filter_complex", ";".join(graph)]
    args += ["-map", "[v]"]
    if audio_graph:
        args += ["-map", "[a]", "-c:a", "aac", "-b:a", "160k"]
    args += [
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "20",
        "-t", f"{background.duration or 0.0:.3f}", "-movflags", "+faststart", str(output),
    ]  # fmt: skip
    run_ffmpeg(args, media_seconds=background.duration)
    return Produced(path=output, bucket=bucket, key=key, content_type="video/mp4")


def _audio_graph(choice: str, *, background: MediaInfo, overlay: MediaInfo) -> str | None:
    """The audio part of the filter graph, labelled ``[a]``, or ``None`` for a silent output."""
    use_background = choice in ("mix", "background") and background.audio is not None
    use_overlay = choice in ("mix", "overlay") and overlay.audio is not None
    if use_background and use_overlay:
        return (
            "[0:a:0]aresample=48000[bga];[1:a:0]aresample=48000,apad[ova];"
            "[bga][ova]amix=inputs=2:duration=first:dropout_transition=0:normalize=0[a]"
        )
    if use_background:
        return "[0:a:0]aresample=48000[a]"
    if use_overlay:
        return "[1:a:0]aresample=48000,apad[a]"
    return None


def _even(value: float) -> int:
    number_ = int(value)
    return max(2, number_ - number_ % 2)
