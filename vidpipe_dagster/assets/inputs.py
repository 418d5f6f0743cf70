"""What an executor reads: the upstream nodes connected to an input slot, their stored media
and text, and numbers from the node's ``config``, each checked, with an
:class:`~vidpipe_dagster.assets.base.ExecutorError` naming the node and the fix otherwise."""

from __future__ import annotations

import json
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from vidpipe_dagster.assets.base import ExecutionContext, ExecutorError, NodeSpec, UpstreamNode
from vidpipe_dagster.resources.storage import StorageError, guess_content_type


def input_uuids(node: NodeSpec, slot: str) -> list[str]:
    """The UUIDs in ``node.inputs[slot]``: an array of UUIDs or a single UUID string."""
    value = (node.inputs or {}).get(slot)
    if value is None or value == "":
        return []
    if isinstance(value, str):
        return [value]
    if isinstance(value, list) and all(isinstance(item, str) for item in value):
        return list(value)
    raise ExecutorError(
        f"Node {node.describe()}: input '{slot}' must be a node UUID or a list of them, "
        f"got {value!r}; fix the node's inputs."
    )


def upstream_nodes(
    node: NodeSpec,
    slot: str,
    upstream: Mapping[str, UpstreamNode],
    *,
    required: bool = True,
) -> list[UpstreamNode]:
    """The upstream nodes connected to ``slot``, in order."""
    uuids = input_uuids(node, slot)
    if required and not uuids:
        raise ExecutorError(
            f"Node {node.describe()} ({node.type}) needs input '{slot}'; "
            "connect a node to it and run again."
        )
    nodes = []
    for uuid in uuids:
        found = upstream.get(uuid)
        if found is None:
            raise ExecutorError(
                f"Node {node.describe()}: input '{slot}' references node {uuid}, which does "
                "not exist in this pipeline; reconnect the input to an existing node."
            )
        nodes.append(found)
    return nodes


def media_output(
    node: NodeSpec,
    slot: str,
    source: UpstreamNode,
    *,
    types: Iterable[str],
) -> dict:
    """``source``'s output, checked to be stored media of one of ``types``."""
    accepted = tuple(types)
    output = source.output
    if not output:
        raise ExecutorError(
            f"Upstream node {source.describe()} (input '{slot}' of {node.describe()}) has no "
            f"output yet (status {source.status}); run {source.title!r} first."
        )
    if not output.get("s3_key"):
        raise ExecutorError(
            f"Upstream node {source.describe()} (input '{slot}' of {node.describe()}) has an "
            f"output without a stored file; run {source.title!r} again."
        )
    if output.get("type") not in accepted:
        raise ExecutorError(
            f"Upstream node {source.describe()} produced {output.get('type') or 'no type'} but "
            f"input '{slot}' of {node.describe()} needs {' or '.join(accepted)}; "
            "connect a node that produces that."
        )
    return output


def download_input(
    node: NodeSpec,
    slot: str,
    source: UpstreamNode,
    output: Mapping[str, Any],
    dest: Path,
    ctx: ExecutionContext,
    *,
    what: str,
) -> Path:
    """Download ``source``'s stored ``output`` (input ``slot`` of ``node``) to ``dest``."""
    try:
        ctx.storage.download(output["s3_key"], dest)
    except (StorageError, OSError) as exc:
        raise ExecutorError(
            f"Cannot read the {what} of upstream node {source.describe()} "
            f"(input '{slot}' of {node.describe()}): {exc}; run {source.title!r} again."
        ) from exc
    return dest


def text_input(
    node: NodeSpec,
    slot: str,
    upstream: Mapping[str, UpstreamNode],
    ctx: ExecutionContext,
) -> str | None:
    """The text connected to ``slot`` (joined with blank lines), or ``None`` if unconnected.

    Each upstream node contributes its asset's inline ``content`` or, failing that, the
    text file its output points to.
    """
    sources = upstream_nodes(node, slot, upstream, required=False)
    if not sources:
        return None
    parts = []
    for source in sources:
        content = (source.asset or {}).get("content")
        if content is not None:
            parts.append(content if isinstance(content, str) else json.dumps(content))
            continue
        output = media_output(node, slot, source, types=("text",))
        dest = download_input(
            node, slot, source, output, ctx.workdir / f"text-{source.uuid}.txt", ctx, what="text"
        )
        parts.append(dest.read_text(encoding="utf-8", errors="replace"))
    return "\n\n".join(part.strip() for part in parts)


def required_text(
    node: NodeSpec,
    slot: str,
    upstream: Mapping[str, UpstreamNode],
    ctx: ExecutionContext,
) -> str:
    """Text from input ``slot``, else ``config[slot]``; an error when both are empty."""
    text = text_input(node, slot, upstream, ctx)
    if text is None:
        configured = (node.config or {}).get(slot)
        text = configured if isinstance(configured, str) else None
    if not text or not text.strip():
        raise ExecutorError(
            f"Node {node.describe()} ({node.type}) has no {slot}: connect a text node to input "
            f"'{slot}' or set config.{slot}."
        )
    return text.strip()


def image_input(
    node: NodeSpec,
    slot: str,
    upstream: Mapping[str, UpstreamNode],
    ctx: ExecutionContext,
) -> tuple[bytes, str] | None:
    """``(bytes, mime type)`` of the image connected to ``slot``, or ``None``."""
    sources = upstream_nodes(node, slot, upstream, required=False)
    if not sources:
        return None
    output = media_output(node, slot, sources[0], types=("image",))
    dest = download_input(
        node, slot, sources[0], output, ctx.workdir / f"image-{sources[0].uuid}", ctx, what="image"
    )
    mime = output.get("content_type") or guess_content_type(output["s3_key"])
    return dest.read_bytes(), str(mime)


def script_audio(upstream: Iterable[UpstreamNode]) -> UpstreamNode | None:
    """The first voiceover among ``upstream`` whose output is stored audio, else ``None``."""
    for source in upstream:
        output = source.output or {}
        if (
            source.type == "generate-voiceover"
            and output.get("type") == "audio"
            and output.get("s3_key")
        ):
            return source
    return None


def uri_of(ctx: ExecutionContext, output: Mapping[str, Any]) -> str:
    """The handler-readable URI of an upstream output."""
    return ctx.storage.uri_for(output["s3_key"])


def config_number(
    node: NodeSpec,
    name: str,
    *,
    default: float,
    minimum: float,
    maximum: float,
) -> float:
    """A numeric ``config`` field within bounds, else :class:`ExecutorError`."""
    value = (node.config or {}).get(name, default)
    if value is None:
        return default
    if isinstance(value, bool) or not isinstance(value, int | float):
        raise ExecutorError(
            f"Node {node.describe()}: config.{name} must be a number, got {value!r}."
        )
    if not minimum <= value <= maximum:
        raise ExecutorError(
            f"Node {node.describe()}: config.{name} must be between {minimum:g} and "
            f"{maximum:g}, got {value:g}."
        )
    return float(value)
