"""What a node's Dagster materialization shows a person: numbers with their units, a
link that opens the media in a browser, and a preview of a video or image.

Entries (each only when the output has it):

- ``duration (s)``, ``cost (USD)``, ``execution time (s)`` as floats;
- ``size (bytes)`` as an integer and ``size`` as text (``933.9 KiB``);
- ``link``: the media in a browser (``media_links.browser_link``: presigned on S3, a signed
  API URL with local storage), and ``link expires`` (a timestamp) since the link is
  only valid for ``VIDPIPE_MATERIALIZATION_LINK_SECONDS``;
- ``preview``: a thumbnail in Markdown (``previews``);
- ``type``, ``s3_key``, ``provider``, ``provider_job_id``, ``node_type``, ``node_uuid``,
  ``process_uuid`` as text.
"""

from __future__ import annotations

import logging
from collections.abc import Mapping
from typing import Any

import dagster as dg

from vidpipe_dagster.resources.media_links import browser_link
from vidpipe_dagster.resources.previews import preview_markdown
from vidpipe_dagster.settings import Settings

log = logging.getLogger(__name__)

DURATION = "duration (s)"
COST = "cost (USD)"
SIZE_BYTES = "size (bytes)"
SIZE = "size"
EXECUTION = "execution time (s)"
LINK = "link"
LINK_EXPIRES = "link expires"
PREVIEW = "preview"


def human_size(size: int) -> str:
    """``size`` bytes for a person: ``512 B``, ``933.9 KiB``, ``12.3 MiB``."""
    value = float(size)
    for unit in ("B", "KiB", "MiB", "GiB"):
        if value < 1024 or unit == "GiB":
            return f"{int(value)} B" if unit == "B" else f"{value:.1f} {unit}"
        value /= 1024
    return f"{size} B"


def _media(
    output: Mapping[str, Any], *, storage: Any, settings: Settings, title: str, preview: bool
) -> dict:
    key = output.get("s3_key")
    if not isinstance(key, str) or storage is None:
        return {}
    media: dict[str, Any] = {}
    try:
        url, expires = browser_link(storage, settings, key)
        media[LINK] = dg.MetadataValue.url(url)
        media[LINK_EXPIRES] = dg.MetadataValue.timestamp(float(expires))
    except Exception as error:  # a link is a convenience; the node stays completed
        log.warning("no browser link for %s: %s", key, error)
    markdown = preview_markdown(storage, dict(output), title=title) if preview else None
    if markdown:
        media[PREVIEW] = dg.MetadataValue.md(markdown)
    return media


def result_metadata(
    output: Mapping[str, Any],
    *,
    process_uuid: str,
    node: Mapping[str, Any],
    seconds: float,
    storage: Any,
    settings: Settings,
    preview: bool = True,
) -> dict[str, Any]:
    """The materialization metadata of a node's ``output`` (see the module docstring);
    ``preview=False`` leaves out the thumbnail."""
    metadata: dict[str, Any] = {
        "process_uuid": process_uuid,
        "node_uuid": node["uuid"],
        "node_type": node["type"],
        EXECUTION: dg.MetadataValue.float(round(seconds, 3)),
    }
    for name in ("type", "s3_key"):
        if isinstance(output.get(name), str):
            metadata[name] = output[name]
    for name, label in (("duration", DURATION), ("cost", COST)):
        value = output.get(name)
        if isinstance(value, int | float) and not isinstance(value, bool):
            metadata[label] = dg.MetadataValue.float(float(value))
    size = output.get("size")
    if isinstance(size, int) and not isinstance(size, bool):
        metadata[SIZE_BYTES] = dg.MetadataValue.int(size)
        metadata[SIZE] = dg.MetadataValue.text(human_size(size))
    for name in ("provider", "provider_job_id"):
        if isinstance(output.get(name), str):
            metadata[name] = output[name]
    title = str(node.get("title") or "")
    metadata.update(
        _media(output, storage=storage, settings=settings, title=title, preview=preview)
    )
    return metadata
