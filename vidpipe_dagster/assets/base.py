"""The executor contract: what materializing one node does, free of Dagster and the database.

The Dagster layer snapshots a node row into a :class:`NodeSpec`, its input nodes into
:class:`UpstreamNode` (keyed by UUID), builds an :class:`ExecutionContext` and calls the
executor for the node's type (``vidpipe_dagster.assets.EXECUTORS``)::

    output = EXECUTORS[node.type](node, upstream, ctx)

The returned dict is the node's ``output`` (DESIGN section 5): ``type`` (video, audio, image
or text), ``s3_key``, ``size`` in bytes, ``duration`` in seconds (0.0 for stills and text),
plus ``cost`` where there is one. Files are written under
``node_output_key(pipeline, node, ctx.process_uuid, ext)`` so no execution overwrites
another. Anything the user has to fix raises :class:`ExecutorError` with a message naming the
node (and the upstream node, when that is the problem) and what to do.
"""

from __future__ import annotations

import json
from collections.abc import Callable, Iterable, Mapping
from dataclasses import dataclass, field
from datetime import UTC, datetime
from pathlib import Path
from typing import Any, TypeVar

from lambdas.ffmpeg import FFmpegError, MediaInfo, probe
from vidpipe_dagster.domain.node_types import canonical_type, effective_provider
from vidpipe_dagster.provider_jobs import submission
from vidpipe_dagster.resources.lambda_invoker import LambdaInvocationError, LambdaInvoker
from vidpipe_dagster.resources.providers.clients import ProviderClients, shared_clients
from vidpipe_dagster.resources.providers.errors import (
    MissingApiKeyError,
    ProviderError,
    SubmissionOutcomeUnknown,
)
from vidpipe_dagster.resources.providers.local import Rendered
from vidpipe_dagster.resources.providers.registry import providers_for, require_unit
from vidpipe_dagster.resources.storage import (
    Storage,
    StorageError,
    guess_content_type,
    node_output_key,
)
from vidpipe_dagster.settings import Settings

LOCAL_PROVIDER = "local"

T = TypeVar("T")


class ExecutorError(Exception):
    """A node cannot be executed as configured; the message says which node and what to do."""


@dataclass(frozen=True)
class NodeSpec:
    """A snapshot of a node row's editor-owned fields."""

    uuid: str
    pipeline_uuid: str
    title: str
    type: str
    inputs: dict = field(default_factory=dict)
    config: dict = field(default_factory=dict)
    asset: dict | None = None

    def describe(self) -> str:
        """``'Title' (uuid)`` for messages."""
        return f"'{self.title}' ({self.uuid})"


@dataclass(frozen=True)
class UpstreamNode:
    """An input node and its stored output (``None`` when it has none)."""

    uuid: str
    title: str
    type: str
    status: str
    output: dict | None
    asset: dict | None = None

    def describe(self) -> str:
        """``'Title' (uuid)`` for messages."""
        return f"'{self.title}' ({self.uuid})"


@dataclass
class ExecutionContext:
    """What an executor works with. ``workdir`` is a temp directory the caller removes.

    ``providers`` gives the process's provider clients (default: the shared ones for
    ``settings``); ``record`` merges metadata into the running execution (the bridge writes
    it through the lifecycle; a paid submission records itself there before it goes out).
    """

    storage: Storage
    invoker: LambdaInvoker
    settings: Settings
    process_uuid: str
    workdir: Path
    log: Callable[[str], None] = print
    providers: ProviderClients | None = None
    record: Callable[[dict[str, Any]], None] = lambda metadata: None

    def clients(self) -> ProviderClients:
        """The provider clients to use."""
        return self.providers or shared_clients(self.settings)


@dataclass(frozen=True)
class AsyncSubmission:
    """What an executor returns after submitting a job to an asynchronous provider.

    The node stays ``in_progress`` with ``provider`` and ``job_id`` recorded in its metadata
    until the provider polling sensor (or a webhook) finishes it.
    """

    provider: str
    job_id: str
    metadata: dict[str, Any] = field(default_factory=dict)


Executor = Callable[
    [NodeSpec, Mapping[str, UpstreamNode], ExecutionContext], "dict | AsyncSubmission"
]


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


def select_provider(node: NodeSpec, settings: Settings) -> str:
    """The provider that runs an AI node (``node_types.effective_provider``).

    ``config.provider`` names it (default ``local``); ``VIDPIPE_PROVIDERS=local`` forces the
    local renderer for every node. A provider that cannot run this node type raises
    :class:`ExecutorError`.
    """
    provider = effective_provider(node.type, node.config, force_local=settings.force_local)
    allowed = providers_for(canonical_type(node.type)) or frozenset({LOCAL_PROVIDER})
    if provider not in allowed:
        raise ExecutorError(
            f"Node {node.describe()} ({node.type}) asks for provider '{provider}', which is "
            f"not available here; set config.provider to one of {', '.join(sorted(allowed))}, "
            "or set VIDPIPE_PROVIDERS=local to render every AI node locally."
        )
    return provider


def provider_client(node: NodeSpec, provider: str, *, ctx: ExecutionContext) -> Any:
    """The process's client of ``provider``; a missing key becomes an :class:`ExecutorError`.

    The message names the environment variable to set (and the local alternative).
    """
    try:
        return ctx.clients().client(provider)
    except MissingApiKeyError as exc:
        raise ExecutorError(
            f"Node {node.describe()} ({node.type}): provider '{provider}' cannot run: {exc}"
        ) from exc


def send_paid(
    node: NodeSpec,
    ctx: ExecutionContext,
    *,
    provider: str,
    send: Callable[[Any], T],
) -> T:
    """Send one paid request of ``provider`` for this execution, at most once.

    ``send(client)`` makes the request. The submission is recorded (``metadata.submission``,
    state ``sending``) before it goes out. For an asynchronous provider ``send`` returns the
    job id, and a lost answer is looked up by this execution's process_uuid where the
    provider keeps it. A lost answer that cannot be resolved raises an
    :class:`ExecutorError` caused by ``SubmissionOutcomeUnknown`` ("submission outcome
    unknown", naming the provider, the time and where to check); other refusals go through
    :func:`provider_failure`.
    """
    client = provider_client(node, provider, ctx=ctx)
    unit = require_unit(provider)
    pending = submission.sending(unit, reference=ctx.process_uuid)
    ctx.record(pending.as_metadata())

    def send_job() -> str:
        job_id = send(client)
        if not isinstance(job_id, str):
            raise TypeError(f"{provider} is asynchronous: its submission must return a job id")
        return job_id

    try:
        if unit.mode == "async":
            result: Any = submission.submit_once(
                unit, client, reference=ctx.process_uuid, send=send_job
            )
        else:
            result = submission.send_once(unit, lambda: send(client))
    except SubmissionOutcomeUnknown as exc:
        ctx.record(submission.unknown(pending, exc).as_metadata())
        raise ExecutorError(f"Node {node.describe()} ({node.type}): {exc}") from exc
    except ProviderError as exc:
        ctx.record(submission.rejected(pending, exc).as_metadata())
        raise provider_failure(node, exc) from exc
    job_id = result if isinstance(result, str) else None
    ctx.record(submission.accepted(pending, job_id=job_id).as_metadata())
    return result


def provider_failure(node: NodeSpec, error: ProviderError) -> Exception:
    """What a provider's refusal becomes: transient errors stay :class:`ProviderError` (the
    run retries them), permanent ones become an :class:`ExecutorError` naming the node."""
    if error.retryable:
        return error
    return ExecutorError(f"Node {node.describe()} ({node.type}): {error}")


def submitted(
    provider: str,
    job_id: str,
    *,
    estimated_cost: float,
    extra: Mapping[str, Any] | None = None,
) -> AsyncSubmission:
    """The :class:`AsyncSubmission` of a job just accepted by ``provider``."""
    return AsyncSubmission(
        provider=provider,
        job_id=job_id,
        metadata={
            "stage": "submitted",
            "submitted_at": datetime.now(UTC).isoformat(),
            "poll_attempts": 0,
            "estimated_cost": round(estimated_cost, 6),
            **(extra or {}),
        },
    )


def webhook_url(settings: Settings, provider: str) -> str | None:
    """Where ``provider`` should call back, when ``VIDPIPE_WEBHOOK_BASE_URL`` is set."""
    base = (settings.webhook_base_url or "").rstrip("/")
    return f"{base}/v1/webhooks/{provider}" if base else None


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


def new_output_key(node: NodeSpec, ctx: ExecutionContext, ext: str) -> str:
    """This execution's output key; refuses a key that is already taken."""
    key = node_output_key(node.pipeline_uuid, node.uuid, ctx.process_uuid, ext)
    if ctx.storage.exists(key):
        raise ExecutorError(
            f"Node {node.describe()}: output {key} already exists (process {ctx.process_uuid} "
            "ran before); start a new execution."
        )
    return key


def store_file(
    node: NodeSpec,
    ctx: ExecutionContext,
    path: Path,
    *,
    media_type: str,
    content_type: str,
    duration: float | None = None,
    extra: Mapping[str, Any] | None = None,
) -> dict:
    """Store a produced file as this execution's output and return the output dict."""
    ext = path.suffix.lstrip(".") or "bin"
    key = new_output_key(node, ctx, ext)
    if duration is None and media_type in ("video", "audio"):
        duration = measure(node, str(path)).duration
    size = ctx.storage.put_file(key, path, content_type=content_type)
    ctx.log(f"Stored {media_type} output {key} ({size} bytes)")
    return {
        "type": media_type,
        "s3_key": key,
        "size": size,
        "duration": round(duration or 0.0, 3),
        "content_type": content_type,
        **(extra or {}),
    }


def store_local_video(
    node: NodeSpec, ctx: ExecutionContext, rendered: Rendered, *, provider: str
) -> dict:
    """Store an MP4 the ``local`` provider rendered as the output; it cost nothing."""
    return store_file(
        node,
        ctx,
        rendered.path,
        media_type="video",
        content_type="video/mp4",
        duration=rendered.duration,
        extra={"provider": provider, "cost": 0.0},
    )


def invoke_ffmpeg_function(
    node: NodeSpec,
    ctx: ExecutionContext,
    *,
    role: str,
    payload: Mapping[str, Any],
) -> dict:
    """Run one of the FFmpeg functions writing a new MP4 output; return the output dict."""
    key = new_output_key(node, ctx, "mp4")
    bucket, object_key = ctx.storage.lambda_destination(key)
    ctx.log(f"Invoking {role} for node {node.describe()}")
    try:
        result = ctx.invoker.invoke(
            role, {**payload, "output_bucket": bucket, "output_key": object_key}
        )
    except LambdaInvocationError as exc:
        raise ExecutorError(f"Node {node.describe()}: {role} failed: {exc}") from exc
    size = result.get("size")
    if not isinstance(size, int) or not ctx.storage.exists(key):
        raise ExecutorError(
            f"Node {node.describe()}: {role} reported success but wrote no file at {key}; "
            "check the function's logs and run again."
        )
    ctx.log(f"{role} wrote {key} ({size} bytes, {result.get('duration')} s)")
    return {
        "type": "video",
        "s3_key": key,
        "size": size,
        "duration": float(result.get("duration") or 0.0),
        "content_type": "video/mp4",
        "cost": 0.0,
    }


def measure(node: NodeSpec, location: str) -> MediaInfo:
    """Probe media for ``node``, turning ffmpeg's refusal into an :class:`ExecutorError`."""
    try:
        return probe(location)
    except FFmpegError as exc:
        raise ExecutorError(
            f"Node {node.describe()}: the media is unreadable ({exc.reason or exc}); "
            "replace the file."
        ) from exc


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
