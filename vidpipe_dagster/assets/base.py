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

Executors read their inputs through :mod:`.inputs`, write through :mod:`.outputs` and reach
providers through :mod:`.provider_calls`.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from vidpipe_dagster.resources.lambda_invoker import LambdaInvoker
from vidpipe_dagster.resources.providers.clients import ProviderClients, shared_clients
from vidpipe_dagster.resources.storage import Storage
from vidpipe_dagster.settings import Settings


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
