"""Which nodes an execute request runs, and whether they may run now."""

from __future__ import annotations

from sqlalchemy.orm import Session

from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.domain.errors import ConflictError, ValidationError
from vidpipe_dagster.domain.graph import dependencies, downstream_of, topological_order
from vidpipe_dagster.domain.nodes import list_nodes
from vidpipe_dagster.domain.readiness import Readiness, check_readiness
from vidpipe_dagster.domain.validation import EDITOR, SEED
from vidpipe_dagster.domain.waiting import already_running

SELECTIONS = ("stale", "failed", "pending", "all")


def select_nodes(
    session: Session,
    pipeline: Pipeline,
    *,
    only: str | None = None,
    node_uuids: list[str] | None = None,
    pipeline_nodes: list[Node] | None = None,
    contract: str = SEED,
    force: bool = False,
) -> list[Node]:
    """The nodes to run, in dependency order, checked for readiness.

    ``node_uuids`` names them; otherwise ``only`` picks: ``pending`` or ``failed`` nodes by
    status, ``stale`` (the default) every node not completed plus everything downstream of
    one, ``all`` every node. Raises ``ValidationError`` listing every reason a selected node
    can't run, or when nothing is selected; ``ConflictError`` (409) when a selected node is
    already on its way (in progress, or waiting for a provider slot), naming its run.
    ``pipeline_nodes`` are the pipeline's nodes when the caller already loaded them. Under
    the editor ``contract`` the reasons are worded as the later Rails words them:
    ``Node is not ready to execute: <reasons>``.
    ``force`` (render again, reusing nothing) lets completed nodes named by ``node_uuids``
    run again.
    """
    nodes = pipeline_nodes if pipeline_nodes is not None else list_nodes(session, pipeline)
    deps = dependencies({node.uuid: node.inputs for node in nodes})
    selection = _selection(only=only, node_uuids=node_uuids)
    chosen = _chosen(nodes, deps, selection=selection, node_uuids=node_uuids)
    if not chosen:
        raise ValidationError(f"No nodes to run in pipeline '{pipeline.title}'")
    selected = _in_order(pipeline, nodes, deps=deps, chosen=chosen)
    _refuse_running(selected)
    results = check_readiness(
        session,
        selected,
        also_running=chosen,
        rerun_completed=force or selection in ("all", "stale"),
        pipeline_nodes=nodes,
        contract=contract,
    )
    _refuse_unready(results, contract=contract)
    return selected


def _selection(*, only: str | None, node_uuids: list[str] | None) -> str | None:
    """The ``only`` selection in effect (``stale`` by default), or None when UUIDs name the nodes.

    Raises ``ValidationError`` when both are given or ``only`` is not one of ``SELECTIONS``.
    """
    if node_uuids is not None:
        if only is not None:
            raise ValidationError("Give either node_uuids or only, not both")
        return None
    only = only or "stale"
    if only not in SELECTIONS:
        raise ValidationError(f"only must be one of: {', '.join(SELECTIONS)}")
    return only


def _chosen(
    nodes: list[Node],
    deps: dict[str, list[str]],
    *,
    selection: str | None,
    node_uuids: list[str] | None,
) -> set[str]:
    """The UUIDs ``node_uuids`` names (each in the pipeline), else those ``selection`` picks."""
    if selection is None:
        known = {node.uuid for node in nodes}
        unknown = [u for u in node_uuids or () if u not in known]
        if unknown:
            raise ValidationError(f"Nodes not in this pipeline: {', '.join(map(str, unknown))}")
        return set(node_uuids or ())
    if selection == "all":
        return {node.uuid for node in nodes}
    if selection == "stale":
        not_done = {n.uuid for n in nodes if n.status in ("pending", "failed")}
        return not_done | downstream_of(deps, not_done)
    return {n.uuid for n in nodes if n.status == selection}


def _in_order(
    pipeline: Pipeline, nodes: list[Node], *, deps: dict[str, list[str]], chosen: set[str]
) -> list[Node]:
    """The ``chosen`` nodes in dependency order; ``ValidationError`` if the graph has a cycle."""
    by_uuid = {node.uuid: node for node in nodes}
    try:
        order = topological_order(deps)
    except ValueError as error:
        raise ValidationError(f"Pipeline '{pipeline.title}' has a cycle") from error
    return [by_uuid[u] for u in order if u in chosen]


def _refuse_running(selected: list[Node]) -> None:
    """``ConflictError`` naming the runs of selected nodes already on their way."""
    running = [reason for node in selected if (reason := already_running(node))]
    if running:
        raise ConflictError(", ".join(running))


def _refuse_unready(results: list[Readiness], *, contract: str) -> None:
    """``ValidationError`` listing every reason a selected node can't run, worded per contract."""
    if contract == EDITOR:
        reasons = [reason for result in results for reason in result.editor_reasons()]
        if reasons:
            raise ValidationError(f"Node is not ready to execute: {', '.join(reasons)}")
    reasons = [reason for result in results for reason in result.reasons]
    if reasons:
        raise ValidationError(", ".join(reasons))
