"""audio_mixer Lambda: put an audio track on a video.

Event::

    {"video": "s3://b/v.mp4", "audio": "s3://b/a.mp3",
     "output_bucket": "b", "output_key": "pipelines/.../x.mp4",
     "mode": "replace" | "overlay", "volume": 1.0, "length": "video" | "audio"}

``replace`` (the default) swaps the video's audio for the new track at ``volume``: a shorter
track is padded with silence, a longer one is cut. ``overlay`` mixes the new track at
``volume`` over the original audio (or over silence when the video has none). ``length``
says how long the output lasts: as long as the video (``video``, the default: the video
stream is copied), or as long as the new audio (``audio``: a narration is never cut; a
shorter video holds its last frame until the audio ends, a longer one is cut).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any

from lambdas.ffmpeg import probe, run_ffmpeg
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

MODES = ("replace", "overlay")
LENGTHS = ("video", "audio")
FRAME_SECONDS = 0.04
"""Less than a frame at 25 fps: a shorter difference in length needs no held frame."""
MAX_VOLUME = 10.0


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    """Lambda entry point: mix ``event["audio"]`` into ``event["video"]``."""
    return run_handler("audio-mixer", event, mix)


def _audio_graph(
    *, overlay: bool, volume: float, fade_in: float, fade_out: float, duration: float
) -> str:
    """The filter graph of the output's audio ``[a]``: the new track (scaled, faded, padded),
    mixed over the video's own track when ``overlay``."""
    fades = ""
    if fade_in > 0:
        fades += f",afade=t=in:st=0:d={fade_in:g}"
    if fade_out > 0 and duration > 0:
        fades += f",afade=t=out:st={max(0.0, duration - fade_out):g}:d={fade_out:g}"
    new_track = f"[1:a:0]aresample=48000,volume={volume:g}{fades},apad"
    if overlay:
        return (
            f"{new_track}[new];[0:a:0]aresample=48000,apad[old];"
            "[old][new]amix=inputs=2:duration=first:dropout_transition=0:normalize=0[a]"
        )
    return f"{new_track}[a]"


def mix(event: Mapping[str, Any], workdir: Path) -> Produced:
    """Check the event, fetch both inputs and write the mixed video."""
    if not event.get("video") or not event.get("audio"):
        raise BadEvent("video and audio are required")
    video_uri = require_uri(event, "video")
    audio_uri = require_uri(event, "audio")
    bucket, key = require_destination(event)
    mode = event.get("mode") or "replace"
    if mode not in MODES:
        raise BadEvent(f"mode must be 'replace' or 'overlay', got {mode!r}")
    length = event.get("length") or "video"
    if length not in LENGTHS:
        raise BadEvent(f"length must be 'video' or 'audio', got {length!r}")
    volume = number(event, "volume", default=1.0, minimum=0.0, maximum=MAX_VOLUME)
    fade_in = number(event, "fade_in", default=0.0, minimum=0.0, maximum=3600.0)
    fade_out = number(event, "fade_out", default=0.0, minimum=0.0, maximum=3600.0)

    video_path = readable_path(video_uri, workdir / f"video{suffix_of(video_uri, '.mp4')}")
    audio_path = readable_path(audio_uri, workdir / f"audio{suffix_of(audio_uri, '.m4a')}")
    video_info, audio_info = probe(video_path), probe(audio_path)
    if video_info.video is None or video_info.is_still_image:
        raise MediaError(f"video ({video_uri}) has no video stream")
    if audio_info.audio is None:
        raise MediaError(f"audio ({audio_uri}) has no audio stream")
    duration = video_info.duration or 0.0
    if length == "audio" and audio_info.duration:
        duration = audio_info.duration
    hold = duration - (video_info.duration or 0.0)

    graph = _audio_graph(
        overlay=mode == "overlay" and video_info.audio is not None,
        volume=volume,
        fade_in=fade_in,
        fade_out=fade_out,
        duration=duration,
    )
    if hold > FRAME_SECONDS:
        graph += f";[0:v:0]tpad=stop_mode=clone:stop_duration={hold:.3f}[v]"
        picture = ["-map", "[v]", "-c:v", "libx264", "-preset", "veryfast", "-crf", "20"]
        picture += ["-pix_fmt", "yuv420p"]
    else:
        picture = ["-map", "0:v:0", "-c:v", "copy"]

    output = workdir / "mixed.mp4"
    run_ffmpeg(
        [
            "-i", str(video_path), "-i", str(audio_path),
            "-filter_complex", graph,
            *picture, "-map", "[a]", "-c:a", "aac", "-b:a", "160k",
            "-t", f"{duration:.3f}", "-movflags", "+faststart",
            str(output),
        ],
        media_seconds=duration,
    )  # fmt: skip
    return Produced(path=output, bucket=bucket, key=key, content_type="video/mp4")
