"""Whether a node may start, and what its rows hold when it does.

A node whose row is not valid under ``VIDPIPE_API_CONTRACT`` fails without running
(:func:`refuse_invalid`). ``Lifecycle.started`` takes an ``admit`` hook run in the
transaction that marks the node ``in_progress``: a paid node another run holds is left alone
(:func:`not_running_elsewhere`), and in a run granted to a wait (tag
``vidpipe/waiting_token``) the node starts only while it still waits on that turn
(:func:`start_hooks`).
"""

from __future__ import annotations

import uuid as uuid_lib
from collections.abc import Callable
from typing import TYPE_CHECKING, Any

import dagster as dg
from sqlalchemy import select
from sqlalchemy.orm import Session

from vidpipe_dagster.assets import provider_queue
from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.nodes import node_validity, pipeline_node_uuids
from vidpipe_dagster.domain.validation import describe_errors
from vidpipe_dagster.domain.waiting import WAITING_TAG
from vidpipe_dagster.runs.plans import row_fields

if TYPE_CHECKING:
    from vidpipe_dagster.resources.dagster_resources import VidpipeResource

AdmitHook = Callable[[Session], None]


class RunningElsewhere(RuntimeError):
    """A paid node another run holds ``in_progress``: this run leaves it alone."""


class InvalidNodeError(RuntimeError):
    """The node's row breaks the contract's rules (a draft), so it is never run."""


def refuse_invalid(resource: VidpipeResource, node_uuid: str) -> None:
    """Fail a node whose row, as it is now, is not valid under ``VIDPIPE_API_CONTRACT``.

    The editor saves drafts and may also write the tables directly, so validity is judged
    here, on the row, whatever wrote it; the failure names the problems.
    """
    with resource.sessions()() as session:
        row = session.get(Node, uuid_lib.UUID(node_uuid))
        if row is None:
            return
        checked = node_validity(
            row,
            known_uuids=pipeline_node_uuids(session, row.pipeline_id),
            contract=resource.settings().api_contract,
        )
        title = row.title
    if checked.is_valid:
        return
    message = (
        f"Node '{title}' ({node_uuid}) is not valid, so it was not run: "
        f"{describe_errors(checked.errors)}; fix the node in the editor and run it again."
    )
    resource.lifecycle().failed(node_uuid, message, None)
    raise InvalidNodeError(message)


def not_running_elsewhere(node_uuid: str, *, run_id: str) -> AdmitHook:
    """An ``admit`` hook for paid nodes: refuse to start a node another run holds
    ``in_progress`` (paid work is never submitted twice by racing runs)."""
    node_id = uuid_lib.UUID(node_uuid)

    def admit(session: Session) -> None:
        row = session.execute(
            select(Node.status, Node.metadata_).where(Node.id == node_id)
        ).one_or_none()
        if row is None or row.status != "in_progress":
            return
        holder = (row.metadata_ or {}).get("dagster_run_id")
        if (row.metadata_ or {}).get("process_uuid") and holder != run_id:
            raise RunningElsewhere(f"Dagster run {holder} is already running it")

    return admit


def start_hooks(
    context: dg.AssetExecutionContext, node_uuid: str, *, paid: bool
) -> list[AdmitHook]:
    """The ``admit`` hooks every start of ``node_uuid`` in this run passes: not running
    elsewhere when ``paid``, and still waiting on the turn this run was granted."""
    hooks: list[AdmitHook] = []
    if paid:
        hooks.append(not_running_elsewhere(node_uuid, run_id=context.run.run_id))
    token = context.run.tags.get(WAITING_TAG)
    if token:
        hooks.append(provider_queue.wait_guard(node_uuid, token))
    return hooks


def all_of(hooks: list[AdmitHook]) -> AdmitHook | None:
    """One ``admit`` hook running ``hooks`` in order (None when there are none)."""
    if not hooks:
        return None

    def admit(session: Session) -> None:
        for hook in hooks:
            hook(session)

    return admit


def upstream_rows(resource: VidpipeResource, uuids: list[str]) -> dict[str, Node]:
    """The rows of the nodes ``uuids``, by UUID (missing rows are left out)."""
    if not uuids:
        return {}
    with resource.sessions()() as session:
        rows = session.scalars(select(Node).where(Node.id.in_([uuid_lib.UUID(u) for u in uuids])))
        return {row.uuid: row for row in rows}


def current_fields(resource: VidpipeResource, node_uuid: str) -> dict[str, Any] | None:
    """The fields the node's row holds now (None when the row is gone)."""
    with resource.sessions()() as session:
        row = session.get(Node, uuid_lib.UUID(node_uuid))
        return row_fields(row) if row is not None else None


def node_metadata(resource: VidpipeResource, node_uuid: str) -> dict[str, Any]:
    """The ``metadata`` the node's row holds now."""
    with resource.sessions()() as session:
        value = session.scalar(select(Node.metadata_).where(Node.id == uuid_lib.UUID(node_uuid)))
    return dict(value or {})
