"""Reuse of finished work: a node whose signature matches a stored output takes it.

A node whose signature (``domain.signatures``) matches an output stored anywhere takes that
output (shared, at no cost, ``metadata.reused_from`` naming the source) and its executor is
not called; a run tagged ``vidpipe/force=true`` renders anyway (:data:`FORCE_TAG`).
"""

from __future__ import annotations

import time
from collections.abc import Callable, Mapping
from typing import TYPE_CHECKING, Any, Literal

import dagster as dg

from vidpipe_dagster.assets import provider_queue
from vidpipe_dagster.assets.node_guards import (
    RunningElsewhere,
    all_of,
    current_fields,
    start_hooks,
    upstream_rows,
)
from vidpipe_dagster.assets.pipeline_plan import PipelinePlan
from vidpipe_dagster.assets.result_metadata import result_metadata
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.node_types import canonical_type, effective_provider, referenced_uuids
from vidpipe_dagster.domain.signatures import (
    FORCE_TAG,
    ReuseSource,
    find_sources,
    node_signature,
    output_signature,
)
from vidpipe_dagster.resources.providers.registry import PAID_PROVIDERS

if TYPE_CHECKING:
    from vidpipe_dagster.resources.dagster_resources import VidpipeResource

Reused = dg.MaterializeResult | None | Literal[False]
"""What a reuse attempt gives: a materialization, None (left alone) or False (nothing)."""


def _paid(node: Mapping[str, Any], settings: Any) -> bool:
    provider = effective_provider(
        canonical_type(node["type"]), node.get("config"), force_local=settings.force_local
    )
    return provider in PAID_PROVIDERS


def execution_signature(
    node: Mapping[str, Any], upstream: Mapping[str, Node], *, settings: Any
) -> str | None:
    """The signature of executing ``node`` now, on the outputs its input rows hold."""
    return node_signature(
        node,
        {uuid: output_signature(row.output) for uuid, row in upstream.items()},
        force_local=settings.force_local,
    )


def reuse_first(
    context: dg.AssetExecutionContext,
    *,
    plan: PipelinePlan,
    node_uuid: str,
    resource: VidpipeResource,
    check: Callable[[Any], None] | None,
) -> tuple[str | None, Reused]:
    """The node's signature now, and what reusing stored work of that signature gave
    (False when nothing was reused, the run is forced or the node has no signature).

    Reuse is decided on what the row holds now, not on the (possibly older) plan.
    """
    current = {"uuid": node_uuid, **(current_fields(resource, node_uuid) or plan.nodes[node_uuid])}
    signature = execution_signature(
        current,
        upstream_rows(resource, referenced_uuids(current.get("inputs"))),
        settings=resource.settings(),
    )
    if not signature or context.run.tags.get(FORCE_TAG) == "true":
        return signature, False
    reused = reuse_node(
        context,
        plan=plan,
        node=current,
        node_uuid=node_uuid,
        signature=signature,
        resource=resource,
        check=check,
    )
    return signature, reused


def reuse_node(
    context: dg.AssetExecutionContext,
    *,
    plan: PipelinePlan,
    node: Mapping[str, Any],
    node_uuid: str,
    signature: str,
    resource: VidpipeResource,
    check: Callable[[Any], None] | None = None,
) -> Reused:
    """Complete the node with a stored output of the same ``signature``, if there is one.

    False when nothing can be reused (no output with that signature whose media is still
    in storage); None when the node was superseded meanwhile, or is a paid node another run
    holds, or no longer waits on the turn this run was granted; else its materialization.
    """
    begun = time.monotonic()
    storage = resource.storage()
    with resource.sessions()() as session:
        candidates = find_sources(session, [signature], prefer=[node_uuid]).get(signature, [])
    source = next((c for c in candidates if storage.exists(c.output["s3_key"])), None)
    if source is None:
        return False
    key = plan.key(node_uuid)
    lifecycle = resource.lifecycle()
    hooks = start_hooks(context, node_uuid, paid=_paid(node, resource.settings()))
    try:
        process_uuid = lifecycle.started(
            node_uuid,
            {
                "dagster_run_id": context.run.run_id,
                "dagster_asset_key": key.to_user_string(),
                "signature": signature,
            },
            admit=all_of(hooks),
            check=check,
        )
    except (provider_queue.NotWaiting, RunningElsewhere) as stale:
        context.log.info(f"Node {node_uuid} not started: {stale}")
        return None
    return _take_output(
        context,
        resource=resource,
        node=node,
        node_uuid=node_uuid,
        source=source,
        signature=signature,
        process_uuid=process_uuid,
        key=key,
        begun=begun,
    )


def _take_output(
    context: dg.AssetExecutionContext,
    *,
    resource: VidpipeResource,
    node: Mapping[str, Any],
    node_uuid: str,
    source: ReuseSource,
    signature: str,
    process_uuid: str,
    key: dg.AssetKey,
    begun: float,
) -> dg.MaterializeResult | None:
    """Record ``source``'s output as the started node's; None when it was superseded."""
    output = source.reused_output(signature)
    reused_from = source.reused_from()
    if not resource.lifecycle().succeeded(
        node_uuid, output, process_uuid, metadata={"reused_from": reused_from, "cost": 0.0}
    ):
        context.log.warning(f"Node {node_uuid} was changed or restarted while being reused.")
        return None
    context.log.info(
        f"Node {node_uuid} reuses the output of '{source.title}' ({source.node_uuid}), "
        f"saving ${source.cost:.2f}"
    )
    metadata = result_metadata(
        output,
        process_uuid=process_uuid,
        node=node,
        seconds=time.monotonic() - begun,
        storage=resource.storage(),
        settings=resource.settings(),
    )
    metadata["signature"] = signature
    metadata["reused_from"] = dg.MetadataValue.json(reused_from)
    return dg.MaterializeResult(asset_key=key, metadata=metadata)
