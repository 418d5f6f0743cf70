"""What every handler shares: event checks, a temp directory, and the response shapes.

A handler's work function receives the event and a fresh temporary directory and returns the
path of the file it produced plus where to store it. :func:`run_handler` uploads the file,
measures it and answers ``{"s3_key", "duration", "size", "statusCode": 200}``; a
:class:`BadEvent` becomes ``{"error", "statusCode": 400}`` and any other failure
``{"error", "statusCode": 500}`` (with ffmpeg's last error lines when ffmpeg failed). The
temporary directory is removed in every case.
"""

from __future__ import annotations

import logging
import os
import shutil
import tempfile
from collections.abc import Callable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from lambdas import mp4
from lambdas.ffmpeg import FFmpegError, probe
from lambdas.uris import upload

TMPDIR_ENV = "VIDPIPE_LAMBDA_TMPDIR"

logger = logging.getLogger("vidpipe.lambdas")


class BadEvent(ValueError):
    """The event is missing a field or holds a value the handler cannot use (HTTP 400)."""


class MediaError(RuntimeError):
    """An input file exists but cannot be used, e.g. a "video" without a video stream (500)."""


@dataclass(frozen=True)
class Produced:
    """A finished output file and where it goes."""

    path: Path
    bucket: str
    key: str
    content_type: str = "video/mp4"


Work = Callable[[Mapping[str, Any], Path], Produced]


def require_destination(event: Mapping[str, Any]) -> tuple[str, str]:
    """``output_bucket`` and ``output_key`` from the event, as the seed's merger checks them."""
    bucket, key = event.get("output_bucket"), event.get("output_key")
    if not isinstance(bucket, str) or not bucket or not isinstance(key, str) or not key:
        raise BadEvent("output_bucket and output_key are required")
    return bucket, key


def require_uri(event: Mapping[str, Any], field: str) -> str:
    """A non-empty URI string in ``event[field]``."""
    value = event.get(field)
    if not isinstance(value, str) or not value.strip():
        raise BadEvent(f"{field} is required")
    if not value.startswith(("s3://", "file://", "http://", "https://")):
        raise BadEvent(f"{field} must be an s3://, file:// or https:// URI")
    return value


def number(
    event: Mapping[str, Any],
    field: str,
    *,
    default: float,
    minimum: float | None = None,
    maximum: float | None = None,
) -> float:
    """A numeric field with a default and optional bounds."""
    value = event.get(field, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise BadEvent(f"{field} must be a number")
    if (minimum is not None and value < minimum) or (maximum is not None and value > maximum):
        low = "-inf" if minimum is None else f"{minimum:g}"
        high = "inf" if maximum is None else f"{maximum:g}"
        raise BadEvent(f"{field} must be between {low} and {high}")
    return float(value)


def temp_root() -> str | None:
    """Where temp directories go: ``VIDPIPE_LAMBDA_TMPDIR`` or the system default."""
    return os.environ.get(TMPDIR_ENV) or None


def run_handler(name: str, event: Any, work: Work) -> dict[str, Any]:
    """Run ``work`` for ``event`` in a temp directory and build the handler's response."""
    if not isinstance(event, Mapping):
        return {"error": "Event must be a JSON object", "statusCode": 400}
    workdir = Path(tempfile.mkdtemp(prefix=f"vidpipe-{name}-", dir=temp_root()))
    try:
        produced = work(event, workdir)
        duration = mp4.duration(produced.path)
        if duration is None:
            duration = probe(produced.path).duration
        size = produced.path.stat().st_size
        upload(
            produced.path,
            bucket=produced.bucket,
            key=produced.key,
            content_type=produced.content_type,
        )
        return {
            "s3_key": produced.key,
            "duration": round(duration or 0.0, 3),
            "size": size,
            "statusCode": 200,
        }
    except BadEvent as exc:
        return {"error": str(exc), "statusCode": 400}
    except (FFmpegError, MediaError) as exc:
        logger.warning("%s failed: %s", name, exc)
        return {"error": str(exc), "statusCode": 500}
    except Exception as exc:  # noqa: BLE001 - a Lambda answers every failure with a 500 body
        logger.exception("%s failed", name)
        return {"error": f"{type(exc).__name__}: {exc}", "statusCode": 500}
    finally:
        shutil.rmtree(workdir, ignore_errors=True)
