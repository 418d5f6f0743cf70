"""The Dagster name a pipeline or node row records once, when it is inserted.

A title becomes a Dagster name (:func:`safe_name`), unique among pipelines and, for nodes,
within their pipeline (:func:`unique_name`); a listener on every ORM flush records it for new
rows (:func:`assign_new_names`), so a later rename never moves a node's materialization
history. ``domain.naming`` builds everything else Dagster is called from these names.
"""

from __future__ import annotations

import keyword
import re
import unicodedata
from collections.abc import Iterable
from typing import Any

from sqlalchemy import event, select, text, update
from sqlalchemy.orm import Session

from vidpipe_dagster.db.models import Node, Pipeline

MAX_NAME = 48
"""Longest recorded name; a suffix for uniqueness stays within it."""
RESERVED = {
    "context",
    "conf",
    "config",
    "meta",
    "arg_dict",
    "dict",
    "input_arg_dict",
    "output_arg_dict",
    "int",
    "str",
    "float",
    "bool",
    "input",
    "output",
    "type",
    *keyword.kwlist,
}
"""Names Dagster refuses for an op (``dagster._core.definitions.utils.DISALLOWED_NAMES``)."""
_UNSAFE = re.compile(r"[^a-z0-9]+")


def safe_name(title: Any, *, fallback: str) -> str:
    """``title`` as a Dagster name: ASCII letters, digits and ``_``, lower case.

    Accents are dropped (``Café`` -> ``cafe``), every other run of characters becomes one
    ``_``; an empty result is ``fallback``, a reserved word gets ``fallback`` as a prefix.
    """
    text = unicodedata.normalize("NFKD", str(title or "")).encode("ascii", "ignore").decode()
    name = _UNSAFE.sub("_", text.lower()).strip("_")[:MAX_NAME].rstrip("_")
    if not name:
        return fallback
    if name in RESERVED:
        return f"{fallback}_{name}"[:MAX_NAME]
    return name


def unique_name(base: str, taken: Iterable[str]) -> str:
    """``base``, or ``base_2``, ``base_3``... whichever is not in ``taken``."""
    used = set(taken)
    if base not in used:
        return base
    number = 2
    while True:
        suffix = f"_{number}"
        candidate = base[: MAX_NAME - len(suffix)] + suffix
        if candidate not in used:
            return candidate
        number += 1


def _taken_pipeline_names(session: Session, base: str) -> set[str]:
    rows = session.execute(
        select(Pipeline.dagster_name).where(Pipeline.dagster_name.like(f"{base[: MAX_NAME - 4]}%"))
    ).all()
    return {name for (name,) in rows if name}


def _taken_node_names(session: Session, pipeline_id: Any) -> set[str]:
    rows = session.execute(
        select(Node.dagster_name).where(
            Node.pipeline_id == pipeline_id, Node.dagster_name.is_not(None)
        )
    ).all()
    return {name for (name,) in rows if name}


_NAMING_LOCK_SQL = "SELECT pg_advisory_xact_lock(hashtext('vidpipe:pipeline_names'))"


def lock_pipeline_naming(session: Session) -> None:
    """Let one transaction at a time name new pipelines, until it commits (PostgreSQL; SQLite
    has one writer at a time anyway).

    Otherwise two pipelines created at once with the same title each found the name free and
    recorded it, and the location holding both failed to load (two groups, ops and schedules
    of one name). Nodes need no such lock: every writer creating them holds their pipeline's
    row lock (:mod:`~vidpipe_dagster.domain.nodes`).
    """
    if session.get_bind().dialect.name == "postgresql":
        session.execute(text(_NAMING_LOCK_SQL))


def assign_new_names(session: Session) -> None:
    """Record the name of every pipeline and node about to be inserted without one (called
    before every ORM flush, ``db.models``)."""
    pending = [o for o in session.new if isinstance(o, Pipeline | Node) and not o.dagster_name]
    if not pending:
        return
    new_pipelines: set[str] = set()
    new_nodes: dict[Any, set[str]] = {}
    with session.no_autoflush:
        if any(isinstance(row, Pipeline) for row in pending):
            lock_pipeline_naming(session)
        for row in pending:
            if isinstance(row, Pipeline):
                base = safe_name(row.title, fallback="pipeline")
                row.dagster_name = unique_name(
                    base, _taken_pipeline_names(session, base) | new_pipelines
                )
                new_pipelines.add(row.dagster_name)
                continue
            pipeline_id = row.pipeline_id or (row.pipeline.id if row.pipeline else None)
            # a pipeline inserted in this flush may have no id yet: its object stands in
            group = pipeline_id or ("new", id(row.pipeline))
            if group not in new_nodes:
                new_nodes[group] = _taken_node_names(session, pipeline_id) if pipeline_id else set()
            row.dagster_name = unique_name(safe_name(row.title, fallback="node"), new_nodes[group])
            new_nodes[group].add(row.dagster_name)


def claim_missing_names(session: Session) -> int:
    """Record a name for every pipeline and node that has none; how many were recorded.

    Rows keep their ``updated_at`` (a name is no edit). Runs in the caller's transaction.
    """
    claimed = 0
    for pipeline_id, title in session.execute(
        select(Pipeline.id, Pipeline.title)
        .where(Pipeline.dagster_name.is_(None))
        .order_by(Pipeline.created_at, Pipeline.id)
    ).all():
        base = safe_name(title, fallback="pipeline")
        name = unique_name(base, _taken_pipeline_names(session, base))
        claimed += _record(session, Pipeline, pipeline_id, name)
    taken: dict[Any, set[str]] = {}
    for node_id, pipeline_id, title in session.execute(
        select(Node.id, Node.pipeline_id, Node.title)
        .where(Node.dagster_name.is_(None))
        .order_by(Node.created_at, Node.id)
    ).all():
        names = taken.setdefault(pipeline_id, _taken_node_names(session, pipeline_id))
        name = unique_name(safe_name(title, fallback="node"), names)
        if _record(session, Node, node_id, name):
            names.add(name)
            claimed += 1
    return claimed


def _record(session: Session, model: type[Pipeline] | type[Node], row_id: Any, name: str) -> int:
    result = session.execute(
        update(model)
        .where(model.id == row_id, model.dagster_name.is_(None))
        .values(dagster_name=name, updated_at=model.updated_at)
        .execution_options(synchronize_session=False)
    )
    return int(getattr(result, "rowcount", 0) or 0)


@event.listens_for(Session, "before_flush")
def _name_new_rows(session: Session, _flush_context: Any, _instances: Any) -> None:
    """New pipelines and nodes get their Dagster names before they are inserted."""
    assign_new_names(session)
