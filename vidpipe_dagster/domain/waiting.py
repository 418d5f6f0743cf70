"""Nodes waiting for a provider slot, and nodes already on their way: the rules.

A node asked to run while its provider already has as many jobs in flight as
``VIDPIPE_PROVIDER_LIMITS`` allows is not submitted and holds no worker: it keeps its status
and records a wait in ``metadata.waiting`` (see :class:`Wait`), and ``metadata.stage`` says
so, e.g. "waiting for a heygen slot, 3 ahead". The provider sensor starts waiting nodes in
the order they began waiting as slots free (``vidpipe_dagster.assets.provider_queue``).

A node that is ``in_progress`` or waiting is already on its way: executing it again is a
conflict (:func:`already_running`), never a second run.
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass
from typing import Any

from vidpipe_dagster.domain.graph import structure_hash

WAITING_KEY = "waiting"
"""The node metadata key holding its :class:`Wait`."""

WAITING_TAG = "vidpipe/waiting_token"
"""Run tag of a run started for a waiting node: the token of the wait it serves."""


@dataclass(frozen=True)
class Wait:
    """One wait for a provider slot, as stored in ``metadata.waiting``.

    ``since`` orders the queue (kept when a started run finds the slot taken again);
    ``token`` names this turn: a run started for the wait carries it in :data:`WAITING_TAG`
    and starts the node only while the wait still holds that token, so a node is never
    started twice for one wait. ``structure`` is the node's structure hash when it began
    waiting: a node edited meanwhile no longer waits. ``requested_at`` is when the sensor
    asked for the run that should start it (``None`` until then).
    """

    provider: str
    since: str
    token: str
    structure: str
    run_id: str | None = None
    requested_at: str | None = None

    def as_json(self) -> dict[str, Any]:
        """The JSON stored in ``metadata.waiting``."""
        return {
            "provider": self.provider,
            "since": self.since,
            "token": self.token,
            "structure": self.structure,
            "run_id": self.run_id,
            "requested_at": self.requested_at,
        }


def wait_of(metadata: Mapping[str, Any] | None) -> Wait | None:
    """The node's wait from its metadata, else ``None``."""
    value = (metadata or {}).get(WAITING_KEY)
    if not isinstance(value, Mapping):
        return None
    names = ("provider", "since", "token", "structure")
    fields = {name: v for name in names if isinstance(v := value.get(name), str) and v}
    if len(fields) != len(names):
        return None
    run_id, requested_at = value.get("run_id"), value.get("requested_at")
    return Wait(
        **fields,
        run_id=run_id if isinstance(run_id, str) else None,
        requested_at=requested_at if isinstance(requested_at, str) else None,
    )


def row_structure(node: Any) -> str:
    """The structure hash of a node row (type, inputs, config, asset)."""
    return structure_hash(
        node_type=node.type, inputs=node.inputs, config=node.config, asset=node.asset
    )


def waiting_stage(provider: str, *, ahead: int, starting: bool = False) -> str:
    """``metadata.stage`` of a waiting node with ``ahead`` nodes before it in the queue."""
    if starting:
        return f"starting: a {provider} slot is free"
    if ahead <= 0:
        return f"waiting for a {provider} slot, next in line"
    return f"waiting for a {provider} slot, {ahead} ahead"


def already_running(node: Any) -> str | None:
    """Why executing ``node`` again now would be a second run of it, else ``None``.

    ``node`` is a node row. In progress (running, or waiting on a provider job) or waiting
    for a provider slot; the reason names the node's title and the Dagster run it is in.
    """
    metadata = node.metadata_ or {}
    title = node.title or "untitled"
    if node.status == "in_progress":
        run_id = metadata.get("dagster_run_id")
        where = f" in Dagster run {run_id}" if run_id else ""
        job = metadata.get("provider_job_id")
        doing = f"waiting on {metadata.get('provider')} job {job}" if job else "running"
        return f"Node '{title}' is already {doing}{where}; wait for it to finish"
    wait = wait_of(metadata)
    if wait is not None and wait.structure == row_structure(node):
        stage = metadata.get("stage") or waiting_stage(wait.provider, ahead=0)
        asked = f" (asked for by Dagster run {wait.run_id})" if wait.run_id else ""
        return f"Node '{title}' is {stage}{asked}; it starts when a slot frees"
    return None
