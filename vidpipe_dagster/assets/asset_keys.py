"""Dagster asset keys of nodes, from the names ``vidpipe_dagster.domain.naming`` records.

:func:`node_asset_key` is the one place a node's ``dg.AssetKey`` is made; code holding only
UUIDs reads the names first (:func:`key_of`, ``domain.naming.names_of``).
"""

from __future__ import annotations

from collections.abc import Iterable
from typing import Any

import dagster as dg
from sqlalchemy.orm import Session

from vidpipe_dagster.domain.naming import PipelineNames, names_of, nodes_of_key_paths


def node_asset_key(names: PipelineNames, node_uuid: str) -> dg.AssetKey:
    """The asset key of one of the pipeline's nodes: ``[<pipeline name>, <node name>]``."""
    return dg.AssetKey(names.key_path(node_uuid))


def key_of(sessions: Any, *, pipeline_uuid: str, node_uuid: str) -> dg.AssetKey:
    """A node's asset key as its rows name it, for a caller holding only UUIDs."""
    return node_asset_key(names_of(sessions, [pipeline_uuid])[pipeline_uuid], node_uuid)


def nodes_of_keys(session: Session, keys: Iterable[dg.AssetKey]) -> dict[dg.AssetKey, str]:
    """The node UUID of each key in ``keys`` that is a node's asset key."""
    found = nodes_of_key_paths(session, [key.path for key in keys])
    return {key: found[tuple(key.path)] for key in keys if tuple(key.path) in found}
