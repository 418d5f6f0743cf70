"""Output signatures: what makes two renders the same, so finished work is reused.

A node's signature is a sha256 over what determines its output: its type, its effective
provider, its config (without the keys that do not change the media), its asset and, slot by
slot in order, the signatures of the outputs it reads (ComfyUI's cache key: the node plus its
ordered ancestry). Titles, UUIDs, process UUIDs and timestamps never enter it, so the same
graph gives the same signatures in another pipeline, another process or another day.

``output["signature"]`` (and the indexed ``video_production_nodes.output_signature`` column)
records the signature of the work that made a node's output. Executing a node whose
signature matches a stored output anywhere reuses that output instead of rendering again
(:func:`find_sources`); ``force`` renders anyway.
"""

from __future__ import annotations

import hashlib
import json
import uuid as uuid_lib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.graph import topological_order
from vidpipe_dagster.domain.node_types import (
    INPUT_SCHEMAS,
    canonical_type,
    effective_provider,
    referenced_uuids,
)

SIGNATURE_VERSION = 1
FORCE_TAG = "vidpipe/force"
"""A Dagster run tagged with this as ``"true"`` renders its nodes even when their work could
be reused (what ``"force": true`` on the execute endpoints sets)."""
IGNORED_CONFIG = frozenset({"provider", "maxRetries", "autoRun"})
"""Config keys that do not change what a node renders (the provider enters on its own,
as the effective provider)."""


def _slots(node_type: str, inputs: Mapping[str, Any]) -> list[str]:
    known = [slot.name for slot in INPUT_SCHEMAS.get(node_type, ())]
    return [slot for slot in known if slot in inputs] + sorted(
        slot for slot in inputs if slot not in known
    )


def _slot_uuids(value: Any) -> list[str]:
    items = value if isinstance(value, list) else [value]
    return [item for item in items if isinstance(item, str) and item]


def node_signature(
    node: Mapping[str, Any],
    input_signatures: Mapping[str, str | None],
    *,
    force_local: bool = False,
) -> str | None:
    """The signature of ``node`` (a mapping with ``type``, ``config``, ``asset``, ``inputs``)
    reading the outputs whose signatures ``input_signatures`` gives by node UUID.

    None when an input has no signature (it has no output to read), since the render
    cannot be identified then.
    """
    node_type = canonical_type(str(node.get("type")))
    inputs = node.get("inputs") or {}
    if not isinstance(inputs, Mapping):
        return None
    raw_config = node.get("config")
    config: Mapping[str, Any] = raw_config if isinstance(raw_config, Mapping) else {}
    slots: list[list[Any]] = []
    for slot in _slots(node_type, inputs):
        signatures = [input_signatures.get(uuid) for uuid in _slot_uuids(inputs[slot])]
        if any(signature is None for signature in signatures):
            return None
        slots.append([slot, signatures])
    payload = {
        "version": SIGNATURE_VERSION,
        "type": node_type,
        "provider": effective_provider(node_type, dict(config), force_local=force_local),
        "config": {k: v for k, v in config.items() if k not in IGNORED_CONFIG},
        "asset": node.get("asset"),
        "inputs": slots,
    }
    encoded = json.dumps(payload, sort_keys=True, separators=(",", ":"), default=str)
    return hashlib.sha256(encoded.encode()).hexdigest()


def output_signature(output: Mapping[str, Any] | None) -> str | None:
    """What identifies a stored output to the nodes reading it: its recorded signature, or
    (for outputs made before signatures were recorded) its storage key, which no other
    render shares. None without an output."""
    if not isinstance(output, Mapping):
        return None
    signature = output.get("signature")
    if isinstance(signature, str) and signature:
        return signature
    key = output.get("s3_key")
    return f"key:{key}" if isinstance(key, str) and key else None


def planned_signatures(
    nodes: Iterable[Mapping[str, Any]],
    *,
    running: Iterable[str] | None = None,
    force_local: bool = False,
) -> dict[str, str | None]:
    """The signature each node of a pipeline will have after a run of ``running`` (every
    node by default): node UUID -> signature, None for a node that cannot be identified.

    A running node's signature follows from its inputs' planned signatures (signatures come
    from inputs, never from output bytes); a node left out of the run keeps the signature of
    the output it holds (``nodes`` carry ``output`` for that).
    """
    by_uuid = {str(node["uuid"]): node for node in nodes}
    run = set(by_uuid) if running is None else set(running)
    deps = {
        uuid: [u for u in referenced_uuids(node.get("inputs")) if u in by_uuid]
        for uuid, node in by_uuid.items()
    }
    signatures: dict[str, str | None] = {}
    for uuid in topological_order(deps):
        node = by_uuid[uuid]
        signatures[uuid] = (
            node_signature(node, signatures, force_local=force_local)
            if uuid in run
            else output_signature(node.get("output"))
        )
    return signatures


def node_fields(node: Node) -> dict[str, Any]:
    """The mapping :func:`node_signature` reads, from a node row."""
    return {
        "uuid": node.uuid,
        "type": node.type,
        "config": node.config,
        "asset": node.asset,
        "inputs": node.inputs,
        "output": node.output,
    }


@dataclass(frozen=True)
class ReuseSource:
    """A stored output that a node with the same signature can take instead of rendering."""

    node_uuid: str
    pipeline_uuid: str
    title: str
    output: dict[str, Any]

    @property
    def process_uuid(self) -> str | None:
        """The execution that rendered the output."""
        value = self.output.get("process_uuid")
        return value if isinstance(value, str) else None

    @property
    def cost(self) -> float:
        """What rendering the output cost (USD)."""
        value = self.output.get("cost")
        return float(value) if isinstance(value, int | float) else 0.0

    def reused_from(self) -> dict[str, Any]:
        """``metadata.reused_from`` of the node taking this output."""
        return {
            "node_uuid": self.node_uuid,
            "pipeline_uuid": self.pipeline_uuid,
            "title": self.title,
            "process_uuid": self.process_uuid,
            "saved_usd": round(self.cost, 6),
        }

    def reused_output(self, signature: str) -> dict[str, Any]:
        """The output of the node taking this one: the same media (shared, not copied), at
        no cost."""
        return {**self.output, "signature": signature, "cost": 0.0}


def find_sources(
    session: Session,
    signatures: Iterable[str],
    *,
    prefer: Iterable[str] = (),
) -> dict[str, list[ReuseSource]]:
    """Stored outputs by signature, in one indexed query, best candidate first.

    Nodes in ``prefer`` (e.g. the node being executed: its own output) come first, then
    completed nodes, then the most recently updated.
    """
    wanted = sorted({s for s in signatures if s and not s.startswith("key:")})
    if not wanted:
        return {}
    preferred = {uuid_lib.UUID(u) for u in prefer}
    rows = session.execute(
        select(Node.id, Node.pipeline_id, Node.title, Node.status, Node.output, Node.updated_at)
        .where(Node.output_signature.in_(wanted))
        .order_by(Node.updated_at.desc(), Node.id)
    ).all()
    ranked = sorted(rows, key=lambda row: (row.id not in preferred, row.status != "completed"))
    found: dict[str, list[ReuseSource]] = {}
    for row in ranked:
        output = dict(row.output or {})
        signature = output.get("signature")
        if signature not in wanted or not output.get("s3_key"):
            continue
        found.setdefault(signature, []).append(
            ReuseSource(
                node_uuid=str(row.id),
                pipeline_uuid=str(row.pipeline_id),
                title=row.title,
                output=output,
            )
        )
    return found
