"""A small preview image of a video or image output, for its Dagster materialization.

One frame rendered by ffmpeg, scaled to :data:`WIDTH` pixels wide, as a JPEG of a few KB,
embedded as a ``data:`` URI in Markdown metadata (the Dagster UI shows it inline). Making
the preview never fails the node: a timeout, a missing file or an ffmpeg error gives None.
"""

from __future__ import annotations

import base64
import logging
import tempfile
from pathlib import Path
from typing import Any

from lambdas.ffmpeg import run_ffmpeg

log = logging.getLogger(__name__)

WIDTH = 160
MAX_BYTES = 12_000
"""Largest JPEG embedded; a bigger frame is rendered again at lower quality, then dropped."""
TIMEOUT_SECONDS = 10.0
PREVIEW_TYPES = ("video", "image")


def thumbnail(source: str, *, media_type: str, duration: float | None = None) -> bytes | None:
    """A JPEG of one frame of ``source`` (a path or URL ffmpeg reads), or None.

    A video is shown at a third of its duration (at most 1 s in), where the first frame is
    often black; an image as it is.
    """
    seek = [] if media_type != "video" else ["-ss", f"{min(1.0, (duration or 0) / 3):.3f}"]
    with tempfile.TemporaryDirectory(prefix="vidpipe-preview-") as tmp:
        out = Path(tmp) / "preview.jpg"
        for quality in (5, 12):
            try:
                run_ffmpeg(
                    [*seek, "-i", source, "-frames:v", "1", "-vf", f"scale={WIDTH}:-2"]
                    + ["-q:v", str(quality), "-f", "image2", str(out)],
                    timeout=TIMEOUT_SECONDS,
                )
            except Exception as error:  # a preview is decoration; the node stays completed
                log.warning("no preview of %s: %s", source, error)
                return None
            data = out.read_bytes() if out.exists() else b""
            if data and len(data) <= MAX_BYTES:
                return data
    return None


def preview_markdown(storage: Any, output: dict[str, Any], *, title: str) -> str | None:
    """Markdown showing a thumbnail of a video or image ``output``, or None."""
    key = output.get("s3_key")
    if output.get("type") not in PREVIEW_TYPES or not isinstance(key, str):
        return None
    try:
        source = storage.media_location(key)
    except Exception as error:
        log.warning("no preview of %s: %s", key, error)
        return None
    duration = output.get("duration")
    data = thumbnail(
        source,
        media_type=str(output["type"]),
        duration=float(duration) if isinstance(duration, int | float) else None,
    )
    if data is None:
        return None
    alt = title.replace("[", "").replace("]", "") or "preview"
    return f"![{alt}](data:image/jpeg;base64,{base64.b64encode(data).decode()})"
