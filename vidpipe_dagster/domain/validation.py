"""Input validation of nodes, with the seed system's exact messages and order."""

from __future__ import annotations

import uuid as uuid_lib
from collections.abc import Iterable, Mapping
from typing import Any

from sqlalchemy import select
from sqlalchemy.orm import Session

from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.errors import ValidationError
from vidpipe_dagster.domain.graph import dependencies, find_cycle
from vidpipe_dagster.domain.node_types import INPUT_SCHEMAS


def _as_uuid(value: str) -> uuid_lib.UUID | None:
    try:
        return uuid_lib.UUID(value)
    except (ValueError, AttributeError, TypeError):
        return None


def existing_node_uuids(session: Session, pipeline_id: Any, candidates: Iterable[str]) -> set[str]:
    """Which of ``candidates`` name nodes of the pipeline, in one query."""
    parsed = {c: _as_uuid(c) for c in candidates if isinstance(c, str)}
    ids = {u for u in parsed.values() if u is not None}
    if not ids:
        return set()
    found = set(
        session.scalars(select(Node.id).where(Node.pipeline_id == pipeline_id, Node.id.in_(ids)))
    )
    return {text for text, parsed_id in parsed.items() if parsed_id in found}


def input_errors(
    node_type: str,
    inputs: Mapping[str, Any] | None,
    *,
    exists: Any,
) -> list[str]:
    """Every problem with ``inputs`` for a node of ``node_type``, in the seed's order.

    ``exists`` is a callable taking all referenced strings and returning the set that name
    existing nodes of the pipeline; it is called at most once.
    """
    if node_type not in INPUT_SCHEMAS:
        return [f"Unknown node type: {node_type}"]
    schema = INPUT_SCHEMAS[node_type]
    inputs = dict(inputs or {})
    errors: list[str] = []
    slot_names = [slot.name for slot in schema]
    unexpected = [name for name in inputs if name not in slot_names]
    if unexpected:
        errors.append(
            f"Unexpected input slot(s) for {node_type} nodes: {', '.join(map(str, unexpected))}"
        )
    if node_type == "asset" and inputs:
        errors.append("asset nodes should not have inputs")
    for slot in schema:
        value = inputs.get(slot.name)
        if value is None:
            if slot.required:
                errors.append(f"Input '{slot.name}' is required for {node_type} nodes")
            continue
        if not isinstance(value, list):
            errors.append(f"Input '{slot.name}' must be an array for {node_type} nodes")
            continue
        if slot.min_items is not None and len(value) < slot.min_items:
            errors.append(
                f"Input '{slot.name}' requires at least {slot.min_items} item(s), got {len(value)}"
            )
    references = {
        slot.name: inputs[slot.name]
        for slot in schema
        if isinstance(inputs.get(slot.name), list) and inputs[slot.name]
    }
    if references:
        every = [item for items in references.values() for item in items]
        known = exists([item for item in every if isinstance(item, str)])
        for name, items in references.items():
            missing = [
                str(item) for item in items if not isinstance(item, str) or item not in known
            ]
            if missing:
                errors.append(f"Input '{name}' references non-existent nodes: {', '.join(missing)}")
    return errors


def validate_inputs(
    session: Session, *, node_type: str, inputs: Mapping[str, Any] | None, pipeline_id: Any
) -> None:
    """Raise ``ValidationError`` with every problem joined by ", " when ``inputs`` are invalid."""
    errors = input_errors(
        node_type,
        inputs,
        exists=lambda refs: existing_node_uuids(session, pipeline_id, refs),
    )
    if errors:
        raise ValidationError(", ".join(errors))


def check_acyclic(
    session: Session, *, pipeline_id: Any, node_uuid: str, inputs: Mapping[str, Any] | None
) -> None:
    """Raise ``ValidationError`` naming the cycle if giving ``node_uuid`` these inputs makes one."""
    rows = session.execute(
        select(Node.id, Node.title, Node.inputs).where(Node.pipeline_id == pipeline_id)
    ).all()
    graph = {str(row.id): row.inputs for row in rows}
    titles = {str(row.id): row.title for row in rows}
    graph[node_uuid] = dict(inputs or {})
    cycle = find_cycle(dependencies(graph))
    if cycle:
        named = " -> ".join(f"{titles.get(u, u)} ({u})" for u in cycle)
        raise ValidationError(f"Inputs would create a cycle: {named}")
