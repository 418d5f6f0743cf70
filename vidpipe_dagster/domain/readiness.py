"""Readiness: may a node be executed now, and if not, why not."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from uuid import UUID

from sqlalchemy import Row, select
from sqlalchemy.orm import Session

from vidpipe_dagster.db.models import Node
from vidpipe_dagster.domain.node_types import referenced_uuids
from vidpipe_dagster.domain.validation import SEED, Validity, describe_errors, validity


@dataclass(frozen=True)
class Readiness:
    """Whether a node can run, with every reason it can't.

    ``reasons`` are worded as the seed generation words them; :meth:`editor_reasons` as the
    later Rails generation does.
    """

    node_uuid: str
    reasons: list[str] = field(default_factory=list)
    bad_status: bool = False
    validity: Validity | None = None
    waiting: bool = False

    @property
    def ready(self) -> bool:
        """True when nothing stands in the way."""
        return not self.reasons

    def editor_reasons(self) -> list[str]:
        """The reasons in the later Rails words (``Node must be in 'pending' ...``)."""
        reasons = []
        if self.bad_status:
            reasons.append("Node must be in 'pending' or 'failed' status")
        if self.validity is not None and not self.validity.is_valid:
            reasons.append(f"Node has validation errors: {describe_errors(self.validity.errors)}")
        if self.waiting:
            reasons.append("Input nodes are not all completed")
        return reasons


def check_readiness(
    session: Session,
    nodes: list[Node],
    *,
    also_running: set[str] | None = None,
    rerun_completed: bool = False,
    pipeline_nodes: Sequence[Node] | None = None,
    contract: str = SEED,
) -> list[Readiness]:
    """Readiness of each of ``nodes`` (all of one pipeline), in two queries at most.

    A node is ready when it is ``pending`` or ``failed``, its inputs validate, and each of
    its input nodes is ``completed`` or is itself in ``also_running`` (nodes launched in
    the same run, which Dagster orders before it). ``rerun_completed`` lets completed nodes
    run again (an explicit "run everything"); a node already in progress never is.
    ``pipeline_nodes`` (every node of the pipeline) saves the query when the caller has them.
    Validity is judged by ``contract``'s rules (``validation.validity``).
    """
    if not nodes:
        return []
    also_running = also_running or set()
    pipeline_id = nodes[0].pipeline_id
    rows: Sequence[Node] | Sequence[Row[UUID, str, str]] | None = pipeline_nodes
    if rows is None:
        rows = session.execute(
            select(Node.id, Node.title, Node.status).where(Node.pipeline_id == pipeline_id)
        ).all()
    by_uuid = {str(row.id): row for row in rows}
    results: list[Readiness] = []
    for node in nodes:
        reasons: list[str] = []
        allowed = ("pending", "failed", "completed") if rerun_completed else ("pending", "failed")
        bad_status = node.status not in allowed
        if bad_status:
            reasons.append(f"Node '{node.title}' is {node.status}")
        checked = validity(
            node.type, node.inputs, node.config, known_uuids=by_uuid, contract=contract
        )
        reasons.extend(checked.messages())
        waiting = False
        for uuid in referenced_uuids(node.inputs):
            upstream = by_uuid.get(uuid)
            if upstream is None or uuid in also_running:
                continue
            if upstream.status != "completed":
                waiting = True
                reasons.append(
                    f"Input node '{upstream.title}' ({uuid}) is {upstream.status}, not completed"
                )
        results.append(
            Readiness(
                node_uuid=node.uuid,
                reasons=reasons,
                bad_status=bad_status,
                validity=checked,
                waiting=waiting,
            )
        )
    return results
