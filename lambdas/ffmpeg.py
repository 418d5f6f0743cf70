"""Running ffmpeg and measuring media, shared by the Lambda handlers and the local renderers.

The binary comes from imageio-ffmpeg (a static build shipped in the wheel) unless
``FFMPEG_BINARY`` names another one. imageio-ffmpeg ships no ffprobe, so :func:`probe` reads
the stream summary that ``ffmpeg -i`` prints.

Every ffmpeg process runs in a process group of its own that dies with the process that
started it (:mod:`lambdas.processes`) and has a time limit scaled to the media it handles
(:func:`media_timeout`); at the limit, or when the caller is interrupted, the whole group is
killed.
"""

from __future__ import annotations

import os
import re
from collections.abc import Sequence
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from lambdas.processes import ProcessTimedOut, run_in_group

ERROR_TAIL_LINES = 8
TIMEOUT_FLOOR_ENV = "VIDPIPE_FFMPEG_TIMEOUT_FLOOR_SECONDS"
TIMEOUT_RATE_ENV = "VIDPIPE_FFMPEG_TIMEOUT_PER_MEDIA_SECOND"
DEFAULT_TIMEOUT_FLOOR_SECONDS = 60.0
DEFAULT_TIMEOUT_PER_MEDIA_SECOND = 5.0
UNKNOWN_MEDIA_BYTES_PER_SECOND = 50_000
"""A low bitrate, to estimate generously how long a file lasts when nothing says so."""

_DURATION_RE = re.compile(r"Duration: (\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_STREAM_RE = re.compile(r"^\s*Stream #\d+:\d+(?:\[[^\]]*\])?(?:\([^)]*\))?: (Video|Audio): (.*)$")
_SIZE_RE = re.compile(r"\b(\d{2,5})x(\d{2,5})\b")
_FPS_RE = re.compile(r"([\d.]+)(k?) (fps|tbr)\b")
_RATE_RE = re.compile(r"(\d+) Hz")
_TIME_RE = re.compile(r"time=(\d+):(\d{2}):(\d{2}(?:\.\d+)?)")
_CHANNELS = {"mono": 1, "stereo": 2, "2.1": 3, "quad": 4, "5.0": 5, "5.1": 6, "7.1": 8}


class FFmpegError(RuntimeError):
    """ffmpeg exited with an error; ``reason`` holds the last lines it printed."""

    def __init__(self, message: str, *, reason: str) -> None:
        super().__init__(f"{message}: {reason}" if reason else message)
        self.reason = reason


class FFmpegTimeoutError(FFmpegError):
    """ffmpeg outlived its time limit and was killed, with every process of its group."""


@dataclass(frozen=True)
class VideoStream:
    """The parameters of a video stream that decide whether two files can be stream-copied."""

    codec: str
    width: int
    height: int
    fps: float | None
    pix_fmt: str | None

    def signature(self) -> tuple[object, ...]:
        """What must match between files for a lossless concat."""
        fps = round(self.fps, 2) if self.fps else None
        return (self.codec, self.width, self.height, fps, self.pix_fmt)


@dataclass(frozen=True)
class AudioStream:
    """The parameters of an audio stream that decide whether two files can be stream-copied."""

    codec: str
    sample_rate: int | None
    channels: int | None
    layout: str | None

    def signature(self) -> tuple[object, ...]:
        """What must match between files for a lossless concat."""
        return (self.codec, self.sample_rate, self.channels)


@dataclass(frozen=True)
class MediaInfo:
    """What :func:`probe` found in a file: its duration and first video and audio streams."""

    duration: float | None
    video: VideoStream | None
    audio: AudioStream | None
    format_name: str

    @property
    def is_still_image(self) -> bool:
        """True for a single picture (PNG, JPEG, ...) rather than a video."""
        return self.video is not None and self.audio is None and self.duration is None


@lru_cache(maxsize=1)
def _bundled_binary() -> str:
    import imageio_ffmpeg

    return imageio_ffmpeg.get_ffmpeg_exe()


def ffmpeg_binary() -> str:
    """The ffmpeg executable: ``FFMPEG_BINARY`` if set, else imageio-ffmpeg's static build."""
    return os.environ.get("FFMPEG_BINARY") or _bundled_binary()


def error_tail(stderr: str, *, lines: int = ERROR_TAIL_LINES) -> str:
    """The last meaningful lines of ffmpeg's output, progress lines dropped."""
    kept = [
        line.strip()
        for line in stderr.replace("\r", "\n").splitlines()
        if line.strip() and not line.lstrip().startswith(("frame=", "size=", "Press [q]"))
    ]
    return "\n".join(kept[-lines:])


def _env_seconds(name: str, default: float) -> float:
    try:
        value = float(os.environ.get(name) or default)
    except ValueError:
        return default
    return value if value >= 0 else default


def media_timeout(media_seconds: float | None = None) -> float:
    """How long an ffmpeg call handling ``media_seconds`` of media may take, in seconds.

    ``VIDPIPE_FFMPEG_TIMEOUT_FLOOR_SECONDS`` (60 s) plus
    ``VIDPIPE_FFMPEG_TIMEOUT_PER_MEDIA_SECOND`` (5 s) per second of media; the floor alone
    when the length is unknown (reading headers).
    """
    floor = _env_seconds(TIMEOUT_FLOOR_ENV, DEFAULT_TIMEOUT_FLOOR_SECONDS)
    rate = _env_seconds(TIMEOUT_RATE_ENV, DEFAULT_TIMEOUT_PER_MEDIA_SECOND)
    return floor + rate * max(0.0, float(media_seconds or 0.0))


def run_process(command: Sequence[str], *, timeout: float, what: str) -> tuple[int, str]:
    """Run ``command`` (no stdin) in its own process group; return (exit code, stderr).

    The process dies with this one. When it outlives ``timeout`` seconds, or this thread is
    interrupted (Ctrl-C, a cancelled run), its whole group is killed
    (:func:`~lambdas.processes.run_in_group`); a timeout raises
    :class:`FFmpegTimeoutError` naming ``what`` and the settings that set the limit.
    """
    try:
        return run_in_group(command, timeout=timeout)
    except ProcessTimedOut as exc:
        raise FFmpegTimeoutError(
            f"{what} was stopped after {timeout:g} s, its time limit (set by "
            f"{TIMEOUT_FLOOR_ENV} and {TIMEOUT_RATE_ENV})",
            reason=error_tail(exc.stderr),
        ) from None


def run_ffmpeg(
    args: Sequence[str], *, media_seconds: float | None = None, timeout: float | None = None
) -> str:
    """Run ffmpeg with ``args`` (overwrite on, no stdin) and return what it printed on stderr.

    The time limit is ``timeout`` if given, else :func:`media_timeout` of ``media_seconds``
    (the length of the media it reads or writes). Raises :class:`FFmpegError` with ffmpeg's
    last error lines when it exits non-zero, :class:`FFmpegTimeoutError` at the limit.
    """
    command = [ffmpeg_binary(), "-hide_banner", "-nostdin", "-y", *args]
    limit = timeout if timeout is not None else media_timeout(media_seconds)
    what = f"ffmpeg ({media_seconds:.1f} s of media)" if media_seconds else "ffmpeg"
    returncode, stderr = run_process(command, timeout=limit, what=what)
    if returncode != 0:
        raise FFmpegError(f"ffmpeg failed with exit code {returncode}", reason=error_tail(stderr))
    return stderr


def _estimated_seconds(source: str | Path) -> float | None:
    try:
        return os.path.getsize(source) / UNKNOWN_MEDIA_BYTES_PER_SECOND
    except (OSError, TypeError, ValueError):
        return None


def probe(source: str | Path, *, decode_duration: bool = False) -> MediaInfo:
    """Measure a file or URL: duration in seconds and its first video and audio streams.

    ``duration`` is ``None`` for still images. With ``decode_duration`` (or when the
    container does not state a duration) the file is decoded to measure it exactly.
    Raises :class:`FFmpegError` when ffmpeg cannot open the input (or within its time
    limit: the floor of :func:`media_timeout`).
    """
    _, stderr = run_process(
        [ffmpeg_binary(), "-hide_banner", "-nostdin", "-i", str(source)],
        timeout=media_timeout(),
        what=f"ffmpeg reading {source}",
    )
    info = parse_probe_output(stderr)
    if info is None:
        raise FFmpegError(f"Cannot read media {source}", reason=error_tail(stderr))
    if decode_duration or (info.duration is None and not _looks_like_image(info)):
        measured = decoded_duration(source, media_seconds=info.duration)
        if measured is not None:
            info = MediaInfo(
                duration=measured, video=info.video, audio=info.audio, format_name=info.format_name
            )
    return info


def decoded_duration(source: str | Path, *, media_seconds: float | None = None) -> float | None:
    """Decode ``source`` to nowhere and return the last timestamp reached, in seconds.

    The time limit follows ``media_seconds`` (the declared length) or, when unknown, a
    length estimated generously from the file's size.
    """
    seconds = media_seconds or _estimated_seconds(source)
    stderr = run_ffmpeg(["-i", str(source), "-f", "null", "-"], media_seconds=seconds)
    matches = _TIME_RE.findall(stderr)
    if not matches:
        return None
    hours, minutes, seconds = matches[-1]
    return int(hours) * 3600 + int(minutes) * 60 + float(seconds)


def probe_many(sources: Sequence[str | Path]) -> list[MediaInfo]:
    """Probe several files with a single ffmpeg process (one process start instead of N).

    Falls back to :func:`probe` one by one when ffmpeg cannot open one of them, so the error
    names the file that failed.
    """
    if len(sources) < 2:
        return [probe(source) for source in sources]
    command = [ffmpeg_binary(), "-hide_banner", "-nostdin"]
    for source in sources:
        command += ["-i", str(source)]
    _, stderr = run_process(command, timeout=media_timeout(), what="ffmpeg reading its inputs")
    blocks = _input_blocks(stderr)
    infos = [parse_probe_output(block) for block in blocks]
    if len(infos) != len(sources) or any(
        info is None or (info.duration is None and not _looks_like_image(info)) for info in infos
    ):
        return [probe(source) for source in sources]
    return [info for info in infos if info is not None]


def _input_blocks(stderr: str) -> list[str]:
    """The ``Input #k`` sections of ``ffmpeg -i ... -i ...`` output, in order."""
    blocks: list[list[str]] = []
    for line in stderr.splitlines():
        if re.match(r"Input #\d+,", line):
            blocks.append([line])
        elif line.startswith(("Output #", "At least one output", "Error")):
            break
        elif blocks:
            blocks[-1].append(line)
    return ["\n".join(block) for block in blocks]


def parse_probe_output(stderr: str) -> MediaInfo | None:
    """Parse the first ``Input #k`` summary of ``ffmpeg -i``; ``None`` when there is none."""
    blocks = _input_blocks(stderr)
    if not blocks:
        return None
    block = blocks[0]
    format_match = re.search(r"Input #\d+, ([^,]+(?:,[^,\s]+)*), from", block)
    format_name = format_match.group(1) if format_match else ""
    duration = None
    duration_match = _DURATION_RE.search(block)
    if duration_match:
        hours, minutes, seconds = duration_match.groups()
        duration = int(hours) * 3600 + int(minutes) * 60 + float(seconds)
    video: VideoStream | None = None
    audio: AudioStream | None = None
    for line in block.splitlines():
        match = _STREAM_RE.match(line)
        if not match:
            continue
        kind, description = match.groups()
        if kind == "Video" and video is None and "(attached pic)" not in description:
            video = _parse_video(description)
        elif kind == "Audio" and audio is None:
            audio = _parse_audio(description)
    if video is None and audio is None and duration is None:
        return None
    return MediaInfo(duration=duration, video=video, audio=audio, format_name=format_name)


def _split_fields(description: str) -> list[str]:
    """Split a stream description on commas that are not inside parentheses."""
    fields: list[str] = []
    current: list[str] = []
    depth = 0
    for char in description:
        if char == "(":
            depth += 1
        elif char == ")":
            depth -= 1
        if char == "," and depth == 0:
            fields.append("".join(current).strip())
            current = []
        else:
            current.append(char)
    fields.append("".join(current).strip())
    return fields


def _parse_video(description: str) -> VideoStream:
    fields = _split_fields(description)
    codec = fields[0].split()[0]
    width = height = 0
    pix_fmt = None
    for field in fields[1:]:
        size = _SIZE_RE.search(field)
        if size and not width:
            width, height = int(size.group(1)), int(size.group(2))
            break
        if pix_fmt is None:
            pix_fmt = field.split("(")[0].strip() or None
    fps = None
    for value, thousands, _unit in _FPS_RE.findall(description):
        fps = float(value) * (1000 if thousands else 1)
        break
    return VideoStream(codec=codec, width=width, height=height, fps=fps, pix_fmt=pix_fmt)


def _parse_audio(description: str) -> AudioStream:
    fields = _split_fields(description)
    codec = fields[0].split()[0]
    rate_match = _RATE_RE.search(description)
    layout = fields[2].split("(")[0].strip() if len(fields) > 2 else None
    channels = _CHANNELS.get(layout or "")
    if channels is None and layout:
        count = re.match(r"(\d+) channels", layout)
        channels = int(count.group(1)) if count else None
    return AudioStream(
        codec=codec,
        sample_rate=int(rate_match.group(1)) if rate_match else None,
        channels=channels,
        layout=layout,
    )


def _looks_like_image(info: MediaInfo) -> bool:
    return info.audio is None and (
        "image2" in info.format_name
        or "_pipe" in info.format_name
        or (info.video is not None and info.video.codec in {"png", "mjpeg", "webp", "bmp", "gif"})
    )
