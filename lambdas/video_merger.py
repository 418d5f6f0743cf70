"""video_merger Lambda: concatenate videos in the order given.

Event (the seed's shape, plus an optional transition)::

    {"input_videos": ["s3://b/1.mp4", "file:///tmp/2.mp4", ...],
     "output_bucket": "b", "output_key": "pipelines/.../x.mp4",
     "transition": "fade", "transitionDuration": 0.5}

When every input shares codec, resolution, frame rate, pixel format and audio layout the
segments are stream-copied (no re-encode); for MP4 inputs with identical codec configuration
that is decided from the file headers alone (:mod:`lambdas.mp4`). Otherwise each segment
is normalised to the first one's resolution and frame rate, H.264 + AAC stereo 48 kHz, and
an input without audio gets silence of its own length. A ``fade`` transition always
re-encodes and overlaps neighbouring segments by ``transitionDuration`` seconds.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path
from typing import Any

from lambdas import mp4
from lambdas.ffmpeg import MediaInfo, probe_many, run_ffmpeg
from lambdas.runtime import (
    BadEvent,
    MediaError,
    Produced,
    number,
    require_destination,
    run_handler,
)
from lambdas.uris import readable_path, suffix_of

COPYABLE_VIDEO = {"h264", "hevc", "av1", "vp9", "mpeg4"}
COPYABLE_AUDIO = {"aac", "mp3", "opus", "ac3", "eac3", "alac", "flac"}
AUDIO_RATE = 48000
MAX_FPS = 60.0
DEFAULT_FPS = 30.0
PARALLEL = 4


def handler(event: Any, context: Any = None) -> dict[str, Any]:
    """Lambda entry point: merge ``event["input_videos"]`` into ``output_bucket/output_key``."""
    return run_handler("video-merger", event, merge)


def merge(event: Mapping[str, Any], workdir: Path) -> Produced:
    """Check the event, fetch and probe the inputs, and write the merged file."""
    videos = event.get("input_videos")
    if not isinstance(videos, list) or len(videos) < 2:
        raise BadEvent("At least 2 input videos required")
    if not all(isinstance(uri, str) and uri.strip() for uri in videos):
        raise BadEvent("input_videos must be a list of s3:// or file:// URIs")
    bucket, key = require_destination(event)
    transition = event.get("transition") or None
    if transition not in (None, "none", "fade"):
        raise BadEvent(f"Unsupported transition: {transition!r} (use 'fade')")
    fade = number(event, "transitionDuration", default=0.5, minimum=0.04, maximum=10)
    fade_seconds = fade if transition == "fade" else None

    with ThreadPoolExecutor(max_workers=PARALLEL) as pool:
        paths = list(
            pool.map(
                lambda item: readable_path(
                    item[1], workdir / f"input-{item[0]:03d}{suffix_of(item[1], '.mp4')}"
                ),
                enumerate(videos),
            )
        )

    output = workdir / "merged.mp4"
    produced = Produced(path=output, bucket=bucket, key=key, content_type="video/mp4")
    if fade_seconds is None and same_mp4_parameters(paths):
        concat_copy(paths, output=output, media_seconds=sum(mp4.duration(p) or 0 for p in paths))
        return produced
    infos = probe_many(paths)
    _check_inputs(videos, infos, fade_seconds=fade_seconds)
    if fade_seconds is None and can_stream_copy(infos):
        concat_copy(paths, output=output, media_seconds=sum(i.duration or 0 for i in infos))
    else:
        concat_normalised(paths, infos, output=output, fade=fade_seconds)
    return produced


def same_mp4_parameters(paths: Sequence[Path]) -> bool:
    """True when every input is an MP4 whose codec configuration equals the first one's.

    Read from the files' headers without starting ffmpeg, so joining identical clips costs
    little more than the copy itself.
    """
    first = mp4.copy_signature(paths[0])
    return first is not None and all(mp4.copy_signature(path) == first for path in paths[1:])


def _check_inputs(
    videos: Sequence[str], infos: Sequence[MediaInfo], *, fade_seconds: float | None
) -> None:
    """Every input must be a moving picture longer than the transition."""
    for index, (uri, info) in enumerate(zip(videos, infos, strict=True)):
        if info.video is None or info.is_still_image:
            raise MediaError(f"Input {index + 1} ({uri}) has no video stream")
        if fade_seconds is not None and (info.duration or 0) <= fade_seconds:
            raise MediaError(
                f"Input {index + 1} ({uri}) lasts {info.duration or 0:.2f} s, "
                f"not longer than the {fade_seconds:g} s transition"
            )


def can_stream_copy(infos: Sequence[MediaInfo]) -> bool:
    """True when the inputs can be joined without re-encoding into an MP4."""
    first = infos[0]
    if first.video is None or first.video.codec not in COPYABLE_VIDEO or not first.video.fps:
        return False
    if first.audio is not None and first.audio.codec not in COPYABLE_AUDIO:
        return False
    video_signature = first.video.signature()
    audio_signature = first.audio.signature() if first.audio else None
    for info in infos[1:]:
        if info.video is None or info.video.signature() != video_signature:
            return False
        if (info.audio.signature() if info.audio else None) != audio_signature:
            return False
    return True


def concat_copy(paths: Sequence[Path], *, output: Path, media_seconds: float | None = None) -> None:
    """Join identical-format files with the concat demuxer, copying the streams.

    ``media_seconds`` (the inputs' total length) scales ffmpeg's time limit.
    """
    listing = output.with_name("segments.txt")
    listing.write_text("".join(f"file '{_quote(path)}'\n" for path in paths))
    run_ffmpeg(
        [
            "-loglevel", "error", "-f", "concat", "-safe", "0", "-i", str(listing),
            "-map", "0:v:0", "-map", "0:a:0?", "-c", "copy", str(output),
        ],
        media_seconds=media_seconds,
    )  # fmt: skip


def _segment_filters(
    infos: Sequence[MediaInfo], *, width: int, height: int, fps: float, with_audio: bool
) -> list[str]:
    """One video chain per input scaled and padded to ``width`` x ``height`` at ``fps``
    (``[v<i>]``), and with ``with_audio`` one audio chain each (``[a<i>]``, silence for an
    input without audio)."""
    filters: list[str] = []
    for index, info in enumerate(infos):
        duration = info.duration or 0.0
        filters.append(
            f"[{index}:v:0]scale={width}:{height}:force_original_aspect_ratio=decrease,"
            f"pad={width}:{height}:(ow-iw)/2:(oh-ih)/2:color=black,setsar=1,"
            f"fps={fps:g},format=yuv420p,settb=AVTB,setpts=PTS-STARTPTS[v{index}]"
        )
        if not with_audio:
            continue
        if info.audio is not None:
            filters.append(
                f"[{index}:a:0]aresample={AUDIO_RATE},"
                f"aformat=sample_fmts=fltp:channel_layouts=stereo,"
                f"apad,atrim=0:{duration:.3f},asetpts=PTS-STARTPTS[a{index}]"
            )
        else:
            filters.append(
                f"anullsrc=r={AUDIO_RATE}:cl=stereo,atrim=0:{duration:.3f},"
                f"aformat=sample_fmts=fltp,asetpts=PTS-STARTPTS[a{index}]"
            )
    return filters


def _join_filters(infos: Sequence[MediaInfo], *, fade: float | None, with_audio: bool) -> list[str]:
    """The filters joining the segments into ``[v]`` (and ``[a]``): a concat, or a chain of
    cross-fades of ``fade`` seconds."""
    count = len(infos)
    if fade is None:
        pads = "".join(f"[v{i}]" + (f"[a{i}]" if with_audio else "") for i in range(count))
        outputs = "[v][a]" if with_audio else "[v]"
        return [f"{pads}concat=n={count}:v=1:a={int(with_audio)}{outputs}"]
    filters: list[str] = []
    offset = 0.0
    video_label, audio_label = "v0", "a0"
    for index in range(1, count):
        offset += (infos[index - 1].duration or 0.0) - fade
        filters.append(
            f"[{video_label}][v{index}]xfade=transition=fade:duration={fade:g}:"
            f"offset={offset:.3f}[vx{index}]"
        )
        video_label = f"vx{index}"
        if with_audio:
            filters.append(f"[{audio_label}][a{index}]acrossfade=d={fade:g}[ax{index}]")
            audio_label = f"ax{index}"
    filters.append(f"[{video_label}]null[v]")
    if with_audio:
        filters.append(f"[{audio_label}]anull[a]")
    return filters


def concat_normalised(
    paths: Sequence[Path],
    infos: Sequence[MediaInfo],
    *,
    output: Path,
    fade: float | None,
) -> None:
    """Re-encode every segment to one format and join them, optionally cross-fading."""
    first_video = infos[0].video
    assert first_video is not None
    width, height = _even(first_video.width), _even(first_video.height)
    fps = min(first_video.fps or DEFAULT_FPS, MAX_FPS)
    with_audio = any(info.audio is not None for info in infos)
    filters = _segment_filters(infos, width=width, height=height, fps=fps, with_audio=with_audio)
    filters += _join_filters(infos, fade=fade, with_audio=with_audio)

    args: list[str] = []
    for path in paths:
        args += ["-i", str(path)]
    args += ["-filter_complex", ";".join(filters), "-map", "[v]"]
    if with_audio:
        args += ["-map", "[a]", "-c:a", "aac", "-b:a", "128k"]
    args += [
        "-c:v", "libx264", "-preset", "veryfast", "-crf", "20", "-pix_fmt", "yuv420p",
        "-movflags", "+faststart", str(output),
    ]  # fmt: skip
    run_ffmpeg(args, media_seconds=sum(info.duration or 0.0 for info in infos))


def _even(value: int) -> int:
    return max(2, value - value % 2)


def _quote(path: Path) -> str:
    return str(path.resolve()).replace("'", "'\\''")
