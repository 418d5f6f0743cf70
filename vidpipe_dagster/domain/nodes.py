"""Node commands: create, update (with status reset), destroy (with reference clean-up).

Writers call these with the pipeline's row already locked (``get_pipeline(lock=True)``),
then lock nodes, as the lock order in :mod:`vidpipe_dagster.domain.lifecycle` says.
"""

from __future__ import annotations

import uuid as uuid_lib
from typing import Any

from sqlalchemy import select, update
from sqlalchemy.orm import Session

from vidpipe_dagster.db.models import Node, Pipeline, utcnow
from vidpipe_dagster.domain import events
from vidpipe_dagster.domain.errors import NotFoundError, ValidationError
from vidpipe_dagster.domain.launches import QUEUED_KEY, queued_stage
from vidpipe_dagster.domain.pipelines import parse_uuid
from vidpipe_dagster.domain.progress import refresh_pipeline_metadata
from vidpipe_dagster.domain.validation import (
    EDITOR,
    SEED,
    Validity,
    check_acyclic,
    existing_node_uuids,
    known_types,
    validate_inputs,
    validity,
)

STRUCTURE_FIELDS = ("inputs", "config", "asset")


def get_node(session: Session, pipeline: Pipeline, node_uuid: str, *, lock: bool = False) -> Node:
    """The node of ``pipeline`` with ``node_uuid``; ``NotFoundError`` for any other pipeline's."""
    query = select(Node).where(
        Node.id == parse_uuid(node_uuid, what="Node"), Node.pipeline_id == pipeline.id
    )
    if lock:
        query = query.with_for_update()
    node = session.scalars(query).one_or_none()
    if node is None:
        raise NotFoundError("Node not found")
    return node


def list_nodes(session: Session, pipeline: Pipeline) -> list[Node]:
    """The pipeline's nodes in creation order, in one query."""
    return list(
        session.scalars(
            select(Node).where(Node.pipeline_id == pipeline.id).order_by(Node.created_at, Node.id)
        )
    )


def _check_shapes(fields: dict[str, Any]) -> None:
    if "title" in fields and (not isinstance(fields["title"], str) or not fields["title"].strip()):
        raise ValidationError("Title can't be blank")
    if "inputs" in fields and not isinstance(fields["inputs"], dict):
        raise ValidationError("Inputs must be an object")
    if "config" in fields and not isinstance(fields["config"], dict):
        raise ValidationError("Config must be an object")
    if fields.get("asset") is not None and not isinstance(fields["asset"], dict):
        raise ValidationError("Asset must be an object or null")


def create_node(
    session: Session,
    pipeline: Pipeline,
    *,
    contract: str = SEED,
    batch: set[str] | None = None,
    **fields: Any,
) -> Node:
    """Create a node.

    The seed ``contract`` validates inputs when present and non-empty (as the seed does) and
    refuses invalid ones; the editor contract stores a draft: any inputs and config of a
    known type, its problems reported by :func:`node_validity`.

    A caller creating several nodes in one transaction passes ``batch``: the UUIDs their
    inputs reference that name nodes of the pipeline (:func:`referenced_uuids` read once);
    the node is then added unflushed and the caller flushes and recounts progress once.
    """
    node_type = fields.get("type")
    if not isinstance(node_type, str) or not node_type:
        raise ValidationError("Type can't be blank")
    if not fields.get("title"):
        raise ValidationError("Title can't be blank")
    inputs = fields.get("inputs")
    config = fields.get("config")
    _check_shapes({k: v for k, v in fields.items() if v is not None})
    if contract == EDITOR:
        if node_type not in known_types(EDITOR, strict=False):
            raise ValidationError(f"Unknown node type: {node_type}")
    elif inputs:
        validate_inputs(
            session, node_type=node_type, inputs=inputs, pipeline_id=pipeline.id, existing=batch
        )
    elif node_type not in known_types(SEED, strict=True):
        raise ValidationError(f"Unknown node type: {node_type}")
    now = utcnow()
    node = Node(
        id=uuid_lib.uuid4(),
        created_at=now,
        updated_at=now,
        pipeline_id=pipeline.id,
        title=fields["title"],
        type=node_type,
        inputs=inputs or {},
        config=config or {},
        asset=fields.get("asset"),
    )
    session.add(node)
    events.node_changed(session, node.id, pipeline.id)
    if batch is None:
        session.flush()
        refresh_pipeline_metadata(session, pipeline.id)
    return node


def referenced_uuids(
    session: Session, pipeline: Pipeline, inputs: list[dict[str, Any] | None]
) -> set[str]:
    """Which of the strings the ``inputs`` reference name nodes of ``pipeline``, in one query."""
    refs: set[str] = set()
    for one in inputs:
        for value in (one or {}).values() if isinstance(one, dict) else ():
            items = value if isinstance(value, list) else [value]
            refs.update(item for item in items if isinstance(item, str))
    return existing_node_uuids(session, pipeline.id, refs)


def update_node(session: Session, node: Node, *, contract: str = SEED, **fields: Any) -> Node:
    """Update ``title`` and structure fields of ``node`` (``type`` can't change).

    The seed ``contract`` refuses invalid inputs whenever they are sent; the editor contract
    stores them (a draft). Both refuse inputs that would make a cycle.

    Structure fields are replaced, not merged. When one actually changes, the node goes
    back to ``pending`` and any running execution is superseded: its ``process_uuid`` is
    retired so its late results are dropped by the lifecycle. A title change alone keeps
    the status.
    """
    fields = {k: v for k, v in fields.items() if k in ("title", *STRUCTURE_FIELDS)}
    for name in ("title", "inputs", "config"):
        if name in fields and fields[name] is None:
            raise ValidationError(f"{name.capitalize()} can't be null")
    _check_shapes(fields)
    if "inputs" in fields:
        if contract != EDITOR:
            validate_inputs(
                session, node_type=node.type, inputs=fields["inputs"], pipeline_id=node.pipeline_id
            )
        check_acyclic(
            session, pipeline_id=node.pipeline_id, node_uuid=node.uuid, inputs=fields["inputs"]
        )
    changed = [
        name for name in STRUCTURE_FIELDS if name in fields and fields[name] != getattr(node, name)
    ]
    if "title" in fields:
        node.title = fields["title"]
    for name in STRUCTURE_FIELDS:
        if name in fields:
            setattr(node, name, fields[name])
    if changed:
        metadata = dict(node.metadata_ or {})
        if node.status == "in_progress" and metadata.get("process_uuid"):
            metadata["superseded_process_uuid"] = metadata.pop("process_uuid")
        else:
            metadata.pop("process_uuid", None)
        if metadata.get("stage") != queued_stage(str(metadata.get(QUEUED_KEY))):
            metadata.pop("stage", None)  # a queued run still runs the edited node
        node.metadata_ = metadata
        node.status = "pending"
    session.flush()
    events.node_changed(session, node.id, node.pipeline_id)
    if changed:
        refresh_pipeline_metadata(session, node.pipeline_id)
    return node


def pipeline_node_uuids(session: Session, pipeline_id: Any) -> set[str]:
    """The UUIDs of a pipeline's nodes, in one query."""
    return {str(i) for i in session.scalars(select(Node.id).where(Node.pipeline_id == pipeline_id))}


def node_validity(node: Node, *, known_uuids: set[str], contract: str) -> Validity:
    """``is_valid`` / ``validation_errors`` of a stored node under ``contract``."""
    return validity(node.type, node.inputs, node.config, known_uuids=known_uuids, contract=contract)


def _without(value: Any, uuid: str) -> tuple[Any, bool]:
    """``value`` with ``uuid`` removed; second item says whether the slot disappears."""
    if isinstance(value, list):
        return [item for item in value if item != uuid], False
    return value, value == uuid


def destroy_node(session: Session, node: Node) -> None:
    """Delete ``node`` and remove it from the inputs of the pipeline's other nodes.

    Arrays lose the UUID (and may become ``[]``); a slot holding the UUID as a plain string
    is dropped. Cleaned nodes keep their status. All in the caller's transaction, which
    holds the pipeline's lock; every node of the pipeline, this one included, is locked by
    id before anything changes.
    """
    uuid = node.uuid
    locked = session.scalars(
        select(Node).where(Node.pipeline_id == node.pipeline_id).order_by(Node.id).with_for_update()
    ).all()
    for other in locked:
        if other.id == node.id:
            continue
        inputs = other.inputs or {}
        cleaned: dict[str, Any] = {}
        touched = False
        for slot, value in inputs.items():
            new_value, drop = _without(value, uuid)
            if drop or new_value != value:
                touched = True
            if not drop:
                cleaned[slot] = new_value
        if touched:
            session.execute(update(Node).where(Node.id == other.id).values(inputs=cleaned))
            events.node_changed(session, other.id, other.pipeline_id)
    pipeline_id = node.pipeline_id
    session.delete(node)
    session.flush()
    events.node_deleted(session, node.id, pipeline_id)
    refresh_pipeline_metadata(session, pipeline_id)
