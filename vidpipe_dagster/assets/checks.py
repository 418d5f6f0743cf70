"""The asset check of every node: its stored output exists and, for media, plays.

Each node asset carries one check, ``stored_output``. It reads the output recorded on the
node's row and confirms that storage holds the object at its ``s3_key`` with the recorded
size; for video and audio outputs it also probes the object with FFmpeg (headers only, from
the local path or a downloaded copy) and requires the expected stream and a duration above
zero. Text, JSON and image outputs only need to exist and be non-empty.
"""

from __future__ import annotations

import tempfile
from collections.abc import Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import dagster as dg

from lambdas.ffmpeg import FFmpegError, MediaInfo, probe
from vidpipe_dagster.resources.storage import LocalStorage, Storage, StorageError

CHECK_NAME = "stored_output"
MEDIA_TYPES = ("video", "audio")


def output_check_spec(key: dg.AssetKey) -> dg.AssetCheckSpec:
    """The ``stored_output`` check of the node asset ``key``."""
    return dg.AssetCheckSpec(
        name=CHECK_NAME,
        asset=key,
        description=(
            "The node's stored output exists with its recorded size; video and audio "
            "outputs are readable media of nonzero duration."
        ),
    )


@dataclass(frozen=True)
class OutputCheck:
    """The verdict on one node's stored output."""

    passed: bool
    description: str
    metadata: dict[str, Any] = field(default_factory=dict)

    def result(self, key: dg.AssetKey) -> dg.AssetCheckResult:
        """This verdict as the ``stored_output`` check result of asset ``key``."""
        return dg.AssetCheckResult(
            asset_key=key,
            check_name=CHECK_NAME,
            passed=self.passed,
            severity=dg.AssetCheckSeverity.ERROR,
            description=self.description,
            metadata=self.metadata,
        )


def _probe_stored(storage: Storage, key: str) -> MediaInfo:
    if isinstance(storage, LocalStorage):
        return probe(storage.path_for(key))
    with tempfile.TemporaryDirectory(prefix="vidpipe-check-") as workdir:
        local = storage.download(key, Path(workdir) / Path(key).name)
        return probe(local)


def check_stored_output(storage: Storage, output: Mapping[str, Any] | None) -> OutputCheck:
    """Judge the output recorded on a node's row against what ``storage`` holds."""
    output = output or {}
    key = output.get("s3_key")
    if not isinstance(key, str) or not key:
        return OutputCheck(False, "The node has no stored output recorded.")
    media_type = str(output.get("type") or "")
    metadata: dict[str, Any] = {"s3_key": key, "type": media_type}
    try:
        if not storage.exists(key):
            return OutputCheck(False, f"No object is stored at {key}.", metadata)
        size = storage.size(key)
    except StorageError as error:
        return OutputCheck(False, f"Cannot read {key} from storage: {error}", metadata)
    metadata["size (bytes)"] = dg.MetadataValue.int(size)
    if size <= 0:
        return OutputCheck(False, f"The object at {key} is empty.", metadata)
    recorded = output.get("size")
    if isinstance(recorded, int) and recorded != size:
        return OutputCheck(
            False, f"The object at {key} has {size} bytes; the node recorded {recorded}.", metadata
        )
    if media_type not in MEDIA_TYPES:
        return OutputCheck(True, f"{key} is stored ({size} bytes).", metadata)
    try:
        info = _probe_stored(storage, key)
    except (FFmpegError, StorageError) as error:
        return OutputCheck(False, f"{key} is not readable {media_type}: {error}", metadata)
    stream = info.video if media_type == "video" else info.audio
    duration = info.duration or 0.0
    metadata["duration (s)"] = dg.MetadataValue.float(float(duration))
    if stream is None:
        return OutputCheck(False, f"{key} has no {media_type} stream.", metadata)
    if duration <= 0:
        return OutputCheck(False, f"{key} has no duration.", metadata)
    return OutputCheck(True, f"{key} is {media_type} of {duration:.2f} s.", metadata)
