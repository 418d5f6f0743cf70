"""What a pipeline's multi-asset body needs to run its nodes: :class:`PipelinePlan`."""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import dagster as dg

from vidpipe_dagster.assets.asset_keys import node_asset_key
from vidpipe_dagster.domain.naming import PipelineNames, resolve_names


@dataclass(frozen=True)
class PipelinePlan:
    """What a pipeline's multi-asset body needs: its nodes in topological order."""

    pipeline_uuid: str
    order: tuple[str, ...]
    nodes: dict[str, dict[str, Any]]
    names: PipelineNames | None = None

    def key(self, node_uuid: str) -> dg.AssetKey:
        """The asset key of one of this pipeline's nodes."""
        names = self.names or resolve_names({"uuid": self.pipeline_uuid, "nodes": []})
        return node_asset_key(names, node_uuid)
