"""What a run planned for a node, against what the node's row holds when it starts.

A code location compiles each node into part of a run's plan: which nodes the run holds, the
order it runs them in, what each depends on and which Dagster pool its step takes. That
part is the node's *shape* (its type, the set of nodes its inputs name, its pool), hashed by
:func:`node_shape`. Everything else, the node's *fields* (config, asset, title, and inputs
naming the same nodes), may change after the plan was made without making it wrong.

So a run executes the fields its node's row holds when it starts, and records their
structure hash as the materialization's data version; only a node whose shape moved since
the plan refuses to start (:class:`StalePlanError`) and is launched again on a fresh plan.
The API checks the shapes the location compiled before launching (reloading it when they
are behind), so a run starts right after a config edit without waiting for a reload.
"""

from __future__ import annotations

import hashlib
import json
import uuid as uuid_lib
from collections.abc import Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session, sessionmaker

from vidpipe_dagster.db.models import Pipeline
from vidpipe_dagster.domain.graph import structure_hash
from vidpipe_dagster.domain.node_types import effective_provider, referenced_uuids
from vidpipe_dagster.resources.providers.registry import PAID_PROVIDERS

SHAPE_METADATA = "vidpipe/shape"
"""The asset-spec metadata entry holding the compiled node's shape hash."""

COMPILE_ERROR = "compileError"
"""The pipeline metadata key where a location's load records why it left a pipeline out."""


class StalePlanError(Exception):
    """The node's shape changed after its run was planned: the run must not start it."""

    def __init__(self, *, node_uuid: str, title: str, status: str, changed: list[str]) -> None:
        super().__init__(
            f"Node '{title}' ({node_uuid}) was edited after this run was planned "
            f"({', '.join(changed)} changed); it was not started and stays {status}."
        )
        self.node_uuid = node_uuid
        self.status = status
        self.changed = changed


def step_pool(node_type: str, config: Any, *, force_local: bool = False) -> str | None:
    """The Dagster pool a node's step runs in: its paid provider, or None for the rest."""
    provider = effective_provider(
        node_type, config if isinstance(config, dict) else None, force_local=force_local
    )
    return provider if provider in PAID_PROVIDERS else None


def _shape_parts(node: Mapping[str, Any], *, force_local: bool) -> dict[str, Any]:
    inputs = node.get("inputs")
    return {
        "type": node.get("type"),
        "depends_on": sorted(referenced_uuids(inputs if isinstance(inputs, dict) else None)),
        "pool": step_pool(str(node.get("type")), node.get("config"), force_local=force_local),
    }


def node_shape(node: Mapping[str, Any], *, force_local: bool = False) -> str:
    """The sha256 of what a plan fixes about a node: type, upstream node set, pool."""
    payload = json.dumps(_shape_parts(node, force_local=force_local), sort_keys=True)
    return hashlib.sha256(payload.encode()).hexdigest()


def shape_changes(
    planned: Mapping[str, Any], current: Mapping[str, Any], *, force_local: bool = False
) -> list[str]:
    """What differs between two nodes' shapes, named for a person: ``inputs``, ``pool``..."""
    before = _shape_parts(planned, force_local=force_local)
    after = _shape_parts(current, force_local=force_local)
    names = {"type": "type", "depends_on": "the nodes its inputs name", "pool": "provider pool"}
    return [names[part] for part in before if before[part] != after[part]]


def row_fields(row: Any) -> dict[str, Any]:
    """The fields a run executes, read from a node row (an ORM object or a result row)."""
    return {
        "type": row.type,
        "title": row.title,
        "inputs": row.inputs or {},
        "config": row.config or {},
        "asset": row.asset,
    }


def fields_hash(fields: Mapping[str, Any]) -> str:
    """The structure hash of the fields that ran (the asset's code version when current)."""
    return structure_hash(
        node_type=fields["type"],
        inputs=fields.get("inputs"),
        config=fields.get("config"),
        asset=fields.get("asset"),
    )


def plan_check(planned: Mapping[str, Any], *, force_local: bool, into: dict[str, Any]) -> Any:
    """A ``check`` hook for ``Lifecycle.started``: refuse a row whose shape left the plan.

    Called under the row lock with the locked row; when the shape matches, the row's
    fields are copied ``into`` the given dict, so the caller executes exactly what the row
    held when the node started.
    """

    def check(row: Any) -> None:
        current = row_fields(row)
        changed = shape_changes(planned, current, force_local=force_local)
        if changed:
            raise StalePlanError(
                node_uuid=str(row.id), title=row.title, status=row.status, changed=changed
            )
        into.update(current)

    return check


def compile_error_of(sessions: sessionmaker[Session], pipeline_uuid: str) -> str | None:
    """Why the last load of its location left the pipeline out, if it did (a short read)."""
    with sessions() as session:
        metadata = session.execute(
            select(Pipeline.metadata_).where(Pipeline.id == uuid_lib.UUID(pipeline_uuid))
        ).scalar_one_or_none()
    error = (metadata or {}).get(COMPILE_ERROR)
    return error if isinstance(error, str) and error else None
