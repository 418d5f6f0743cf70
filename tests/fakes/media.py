"""Tiny real media files for the fakes to serve, generated once with ffmpeg and cached."""

from __future__ import annotations

import functools
import os
import subprocess
import tempfile
import threading
from pathlib import Path

import imageio_ffmpeg

CACHE = Path(tempfile.gettempdir()) / "vidpipe-fake-media"
_LOCK = threading.Lock()  # the fakes serve from several threads

RECIPES: dict[str, list[str]] = {
    "clip.mp4": [
        "-f", "lavfi", "-i", "testsrc=size=160x90:rate=10:duration=1",
        "-f", "lavfi", "-i", "sine=frequency=440:duration=1",
        "-shortest", "-c:v", "libx264", "-preset", "ultrafast", "-pix_fmt", "yuv420p",
        "-c:a", "aac", "-b:a", "32k", "-movflags", "+faststart",
    ],
    "voice.mp3": [
        "-f", "lavfi", "-i", "sine=frequency=220:duration=1",
        "-c:a", "libmp3lame", "-b:a", "32k",
    ],
    "frame.png": ["-f", "lavfi", "-i", "testsrc=size=64x36", "-frames:v", "1"],
}  # fmt: skip


@functools.cache
def media_bytes(name: str) -> bytes:
    """The bytes of cached media ``name`` (``clip.mp4``, ``voice.mp3``, ``frame.png``)."""
    CACHE.mkdir(parents=True, exist_ok=True)
    path = CACHE / name
    with _LOCK:
        if not path.exists():
            # other processes may be writing the same file: each writes its own and renames
            tmp = path.with_name(f"{path.stem}.{os.getpid()}.tmp{path.suffix}")
            subprocess.run(
                [imageio_ffmpeg.get_ffmpeg_exe(), "-y", "-loglevel", "error", *RECIPES[name]]
                + [str(tmp)],
                check=True,
            )
            tmp.replace(path)
    return path.read_bytes()


def tiny_mp4() -> bytes:
    """A one-second 160x90 H.264/AAC MP4."""
    return media_bytes("clip.mp4")


def tiny_mp3() -> bytes:
    """A one-second MP3 tone."""
    return media_bytes("voice.mp3")


def tiny_png() -> bytes:
    """A 64x36 PNG test pattern."""
    return media_bytes("frame.png")
