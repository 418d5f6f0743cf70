"""Executor for ``asset`` nodes: make a static file or inline text available downstream.

``asset.content`` holds inline text (stored as ``.txt``, or ``.json`` for ``type: json``).
``asset.source`` is a key of our storage (used in place), or an ``s3://``, ``file://`` or
``https://`` URL (copied into storage under this execution's key, so the FFmpeg functions
can read it). ``asset.type`` is text, json, image, video or audio; media is checked to exist
and to hold the right kind of stream, and its duration is measured.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from urllib.parse import urlparse

from lambdas.uris import suffix_of
from vidpipe_dagster.assets.base import ExecutionContext, ExecutorError, NodeSpec, UpstreamNode
from vidpipe_dagster.assets.outputs import measure, new_output_key, store_file
from vidpipe_dagster.resources.storage import StorageError, check_key, guess_content_type

ASSET_TYPES = {"text": "text", "json": "text", "image": "image", "video": "video", "audio": "audio"}
_EXTENSION_TYPES = {
    ".txt": "text", ".md": "text", ".json": "json",
    ".png": "image", ".jpg": "image", ".jpeg": "image", ".webp": "image", ".gif": "image",
    ".mp4": "video", ".mov": "video", ".webm": "video", ".mkv": "video", ".m4v": "video",
    ".mp3": "audio", ".wav": "audio", ".m4a": "audio", ".aac": "audio", ".ogg": "audio",
    ".flac": "audio", ".opus": "audio",
}  # fmt: skip


def execute(node: NodeSpec, upstream: Mapping[str, UpstreamNode], ctx: ExecutionContext) -> dict:
    """Resolve the node's asset and return its output dict."""
    asset = node.asset or {}
    if not isinstance(asset, Mapping) or (asset.get("content") is None and not asset.get("source")):
        raise ExecutorError(
            f"Asset node {node.describe()} has nothing to provide: set asset.source (a storage "
            "key, s3://, file:// or https:// URL) or asset.content (inline text)."
        )
    asset_type = _asset_type(node, asset)
    if asset.get("content") is not None:
        return _inline(node, ctx, content=asset["content"], asset_type=asset_type)
    return _from_source(node, ctx, source=str(asset["source"]), asset_type=asset_type)


def _asset_type(node: NodeSpec, asset: Mapping) -> str:
    declared = asset.get("type")
    if declared is None:
        if asset.get("content") is not None:
            return "text"
        guessed = _EXTENSION_TYPES.get(suffix_of(str(asset["source"]), "").lower())
        if guessed:
            return guessed
        raise ExecutorError(
            f"Asset node {node.describe()}: set asset.type (one of {', '.join(ASSET_TYPES)}); "
            f"it cannot be guessed from {asset['source']!r}."
        )
    if declared not in ASSET_TYPES:
        raise ExecutorError(
            f"Asset node {node.describe()}: asset.type {declared!r} is not one of "
            f"{', '.join(ASSET_TYPES)}."
        )
    return declared


def _inline(node: NodeSpec, ctx: ExecutionContext, *, content: object, asset_type: str) -> dict:
    """Store inline content as a text (or JSON) file."""
    if asset_type not in ("text", "json"):
        raise ExecutorError(
            f"Asset node {node.describe()}: asset.content holds inline text, but asset.type is "
            f"{asset_type!r}; use asset.source for media."
        )
    is_json = asset_type == "json"
    text = content if isinstance(content, str) else json.dumps(content, indent=2)
    if is_json:
        try:
            json.loads(text)
        except json.JSONDecodeError as exc:
            raise ExecutorError(
                f"Asset node {node.describe()}: asset.content is not valid JSON ({exc})."
            ) from exc
    ext, content_type = ("json", "application/json") if is_json else ("txt", "text/plain")
    key = new_output_key(node, ctx, ext)
    size = ctx.storage.put_bytes(
        key, text.encode("utf-8"), content_type=f"{content_type}; charset=utf-8"
    )
    return {
        "type": "text",
        "s3_key": key,
        "size": size,
        "duration": 0.0,
        "content_type": content_type,
    }


def _from_source(node: NodeSpec, ctx: ExecutionContext, *, source: str, asset_type: str) -> dict:
    """Use a stored object in place, or copy an external one in; then check and measure it."""
    storage = ctx.storage
    own_key = storage.key_from_uri(source) if "://" in source else source
    if own_key is not None:
        try:
            check_key(own_key)
            found = storage.exists(own_key)
        except StorageError as exc:
            raise ExecutorError(f"Asset node {node.describe()}: {exc}.") from exc
        if not found:
            raise ExecutorError(
                f"Asset node {node.describe()}: nothing is stored at {source!r}; upload the "
                "file or fix asset.source."
            )
        output = {
            "type": ASSET_TYPES[asset_type],
            "s3_key": own_key,
            "size": storage.size(own_key),
            "content_type": guess_content_type(own_key),
        }
        return {**output, **_check_media(node, storage.media_location(own_key), asset_type)}

    scheme = urlparse(source).scheme
    if scheme not in ("s3", "file", "http", "https"):
        raise ExecutorError(
            f"Asset node {node.describe()}: asset.source {source!r} is not a storage key or an "
            "s3://, file:// or https:// URL."
        )
    ext = suffix_of(source, ".bin")
    local = ctx.workdir / f"source{ext}"
    ctx.log(f"Fetching asset {source.split('?', 1)[0]}")
    try:
        storage.download(source, local)
    except Exception as exc:  # noqa: BLE001 - any fetch failure is the user's to fix
        raise ExecutorError(
            f"Asset node {node.describe()}: cannot fetch {source.split('?', 1)[0]!r} "
            f"({type(exc).__name__}: {exc}); check that it exists and is readable."
        ) from exc
    checked = _check_media(node, str(local), asset_type)
    return store_file(
        node,
        ctx,
        local,
        media_type=ASSET_TYPES[asset_type],
        content_type=guess_content_type(local.name),
        duration=checked["duration"],
        extra={key: value for key, value in checked.items() if key != "duration"},
    )


def _check_media(node: NodeSpec, location: str, asset_type: str) -> dict:
    """Duration (and picture size) of media; an error when it lacks the declared stream."""
    if asset_type in ("text", "json"):
        return {"duration": 0.0}
    info = measure(node, location)
    if asset_type == "audio" and info.audio is None:
        raise ExecutorError(
            f"Asset node {node.describe()}: asset.type is audio but the file has no audio "
            "stream; fix asset.type or the file."
        )
    if asset_type in ("video", "image") and info.video is None:
        raise ExecutorError(
            f"Asset node {node.describe()}: asset.type is {asset_type} but the file has no "
            "picture; fix asset.type or the file."
        )
    if asset_type == "video" and info.is_still_image:
        raise ExecutorError(
            f"Asset node {node.describe()}: asset.type is video but the file is a still "
            "image; set asset.type to image."
        )
    result: dict = {"duration": round(info.duration or 0.0, 3) if asset_type != "image" else 0.0}
    if info.video is not None:
        result.update(width=info.video.width, height=info.video.height)
    return result
