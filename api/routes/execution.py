"""Running nodes from the editor, and fetching what they made.

``POST .../nodes/{uuid}/execute`` and ``POST .../pipelines/{p}/execute`` check readiness and
launch a Dagster run of the selected nodes' assets (202 with the run id); a selected node
already on its way (in progress, waiting for a provider slot, or in a queued or started
Dagster run) is a 409 naming the run, never a second run; finished work with the same
signature is reused in the run unless the body says ``"force": true``;
``GET .../estimate`` shows reusable nodes at $0 with what they save;
``GET .../nodes/{uuid}/output`` redirects to the stored media. The editor generation of
the contract answers an execute with 200 ``{node}`` and refuses one that is not ready in a
flat ``{"error": ...}`` (``api.contract``).

An execute reads and checks in one short transaction and ends it before it talks to Dagster
(which may reload the code location, reading the same tables, and wait for it).
"""

from __future__ import annotations

import time
import uuid as uuid_lib
from typing import Annotated, Any

from fastapi import APIRouter, Depends, Request
from fastapi.responses import JSONResponse, RedirectResponse, Response
from sqlalchemy import select
from sqlalchemy.orm import Session

from api.contract import ContractDep
from api.deps import AdminToken, SessionDep, Wrapped, body_doc, end_transaction, wrapped_body
from api.errors import ApiError
from api.responses import (
    ADMIN_ERRORS,
    BODY_ERRORS,
    EDITOR_422,
    EstimateEnvelope,
    NodeEnvelope,
    NodeExecuted,
    NodesExecuted,
    errors,
)
from api.routes.media import signed_media_url
from api.schemas import ExecuteRequest, NodeExecuteRequest
from vidpipe_dagster.db.models import Node, Pipeline
from vidpipe_dagster.domain import launches
from vidpipe_dagster.domain.costs import (
    NodeEstimate,
    budget_summary,
    check_budget,
    estimate_nodes,
    with_reuse,
)
from vidpipe_dagster.domain.errors import ConflictError, ValidationError
from vidpipe_dagster.domain.keys import stored_output
from vidpipe_dagster.domain.naming import PipelineNames, pipeline_names, run_tags
from vidpipe_dagster.domain.nodes import get_node, list_nodes
from vidpipe_dagster.domain.pipelines import get_pipeline
from vidpipe_dagster.domain.selection import select_nodes
from vidpipe_dagster.domain.signatures import FORCE_TAG
from vidpipe_dagster.runs.plans import compile_error_of, node_shape, row_fields

CLAIM_WAIT_SECONDS = 10.0
"""How long an execute refused because another request is launching the node waits for
that launch's run id, to name it in the 409."""

router = APIRouter(
    prefix="/v1/admin/video_production/pipelines/{pipeline_uuid}", tags=["execution"]
)


def _estimates(
    request: Request,
    session: Session,
    nodes: list[Node],
    pipeline_nodes: list[Node],
    *,
    reuse: bool = True,
) -> list[NodeEstimate]:
    from vidpipe_dagster.resources.providers.prices import pricer

    settings = request.app.state.settings
    force_local = settings.force_local
    lines = estimate_nodes(nodes, pipeline_nodes, price=pricer(settings), force_local=force_local)
    if not reuse:
        return lines
    return with_reuse(session, lines, pipeline_nodes, force_local=force_local)


def _launch(
    request: Request,
    session: Session,
    *,
    pipeline: Pipeline,
    nodes: list[Node],
    pipeline_nodes: list[Node],
    force: bool = False,
) -> str:
    """Check the budget, end the request's transaction, claim the nodes, then launch their
    run (``domain.launches``: a concurrent execute of one of them is a 409)."""
    check_budget(pipeline, _estimates(request, session, nodes, pipeline_nodes, reuse=not force))
    settings = request.app.state.settings
    force_local = settings.force_local
    shapes = {node.uuid: node_shape(row_fields(node), force_local=force_local) for node in nodes}
    pipeline_uuid = pipeline.uuid
    names = pipeline_names(session, pipeline_uuid)
    tags = run_tags(names, source="api", node_uuids=list(shapes))
    if force:
        tags[FORCE_TAG] = "true"
    claimed: dict[str, Any] = {"pipeline_id": pipeline.id, "node_ids": [node.id for node in nodes]}
    end_transaction(session)
    sessions = request.app.state.sessions
    token = uuid_lib.uuid4().hex
    try:
        launches.claim(sessions, **claimed, token=token)
    except launches.LaunchInProgress as busy:
        named = _named_conflict(sessions, busy)
        if named is busy:
            raise
        raise named from busy
    try:
        launcher = request.app.state.launcher()
        _refuse_second_run(launcher, sessions, pipeline_uuid=pipeline_uuid, names=names, **claimed)
        run_id = launcher.launch(
            pipeline_uuid=pipeline_uuid,
            node_uuids=list(shapes),
            tags=tags,
            shapes=shapes,
            compile_error=lambda: compile_error_of(sessions, pipeline_uuid),
            names=names,
        )
    except BaseException:
        launches.release(sessions, **claimed, token=token)
        raise
    launches.queued(sessions, **claimed, token=token, run_id=run_id)
    return run_id


def _rows(sessions, node_ids: list[uuid_lib.UUID]) -> list:
    with sessions() as session:
        return session.execute(
            select(Node.id, Node.title, Node.status, Node.metadata_).where(Node.id.in_(node_ids))
        ).all()


def _named_conflict(
    sessions, busy: launches.LaunchInProgress, *, wait: float = CLAIM_WAIT_SECONDS
) -> ConflictError:
    """The 409 for nodes another request is launching, naming its run once Dagster named it
    (polled for at most ``wait`` seconds; without a name, the claim's own message)."""
    ids = [uuid_lib.UUID(u) for u in busy.node_uuids]
    deadline = time.monotonic() + wait
    while True:
        rows = _rows(sessions, ids)
        named = [(row, (row.metadata_ or {}).get(launches.QUEUED_KEY)) for row in rows]
        if rows and all(run_id for _row, run_id in named):
            return ConflictError(
                ", ".join(
                    f"Node '{row.title or 'untitled'}' is already in Dagster run {run_id} "
                    "(queued); wait for it to finish"
                    for row, run_id in named
                )
            )
        if time.monotonic() >= deadline:
            return busy
        time.sleep(0.1)


def _refuse_second_run(
    launcher,
    sessions,
    *,
    pipeline_uuid: str,
    pipeline_id,
    node_ids: list[uuid_lib.UUID],
    names: PipelineNames,
) -> None:
    """409 when a Dagster run that materializes one of the nodes is queued or running and
    not yet done with it (a run winding down after the node finished is no conflict)."""
    rows = {str(row.id): row for row in _rows(sessions, node_ids)}
    active = launcher.active_runs(pipeline_uuid=pipeline_uuid, node_uuids=list(rows), names=names)
    conflicts = [
        f"Node '{rows[node_uuid].title or 'untitled'}' is already in Dagster run {run_id} "
        f"({status.lower()}); wait for it to finish"
        for node_uuid, (run_id, status) in active.items()
        if not launches.done_in_run(rows[node_uuid], run_id=run_id)
    ]
    if conflicts:
        raise ConflictError(", ".join(conflicts))


@router.post(
    "/nodes/{node_uuid}/execute",
    status_code=202,
    openapi_extra=body_doc("execute", NodeExecuteRequest, required=False),
    response_model=NodeExecuted,
    responses={
        **errors(*ADMIN_ERRORS, *BODY_ERRORS, 404, 409),
        **EDITOR_422,
        200: {"model": NodeEnvelope, "description": "Editor generation: the node, launched"},
    },
)
def execute_node(
    request: Request,
    pipeline_uuid: str,
    node_uuid: str,
    _admin: AdminToken,
    body: Annotated[Wrapped, Depends(wrapped_body("execute", NodeExecuteRequest, required=False))],
    session: SessionDep,
    contract: ContractDep,
) -> JSONResponse:
    """Run one node (it must be valid and its inputs completed); ``force`` renders even
    reusable work."""
    pipeline = get_pipeline(session, pipeline_uuid)
    node = get_node(session, pipeline, node_uuid)
    pipeline_nodes = list_nodes(session, pipeline)
    force = bool(body.sent.get("force"))
    try:
        select_nodes(
            session,
            pipeline,
            node_uuids=[node.uuid],
            pipeline_nodes=pipeline_nodes,
            contract=contract.name,
            force=force,
        )
        run_id = _launch(
            request,
            session,
            pipeline=pipeline,
            nodes=[node],
            pipeline_nodes=pipeline_nodes,
            force=force,
        )
    except ValidationError as error:
        refused = contract.refused(error)
        if refused is None:
            raise
        return refused
    return contract.executed(contract.nodes(pipeline_nodes)[pipeline_nodes.index(node)], run_id)


@router.post(
    "/execute",
    status_code=202,
    response_model=NodesExecuted,
    responses=errors(*ADMIN_ERRORS, *BODY_ERRORS, 404, 409),
    openapi_extra=body_doc("execute", ExecuteRequest, required=False),
)
def execute_pipeline(
    request: Request,
    pipeline_uuid: str,
    _admin: AdminToken,
    body: Annotated[Wrapped, Depends(wrapped_body("execute", ExecuteRequest, required=False))],
    session: SessionDep,
    contract: ContractDep,
) -> JSONResponse:
    """Run a selection of the pipeline's nodes: ``node_uuids``, or ``only`` (default stale)."""
    pipeline = get_pipeline(session, pipeline_uuid)
    pipeline_nodes = list_nodes(session, pipeline)
    force = bool(body.sent.get("force"))
    nodes = select_nodes(
        session,
        pipeline,
        only=body.sent.get("only"),
        node_uuids=body.sent.get("node_uuids"),
        pipeline_nodes=pipeline_nodes,
        contract=contract.name,
        force=force,
    )
    run_id = _launch(
        request,
        session,
        pipeline=pipeline,
        nodes=nodes,
        pipeline_nodes=pipeline_nodes,
        force=force,
    )
    selected = {node.uuid for node in nodes}
    listed = [body for body in contract.nodes(pipeline_nodes) if body["uuid"] in selected]
    order = {node.uuid: i for i, node in enumerate(nodes)}
    listed.sort(key=lambda body: order[body["uuid"]])
    return JSONResponse({"nodes": listed, "run_id": run_id}, status_code=202)


@router.get("/estimate", response_model=EstimateEnvelope, responses=errors(*ADMIN_ERRORS, 404))
def estimate_pipeline(
    request: Request, pipeline_uuid: str, _admin: AdminToken, session: SessionDep
) -> JSONResponse:
    """Estimated cost of one run of every node, the total, and the budget left.

    A node whose finished work would be reused counts $0; ``saved_usd`` totals what reuse
    saves (``"force": true`` on execute would spend it).
    """
    pipeline = get_pipeline(session, pipeline_uuid)
    pipeline_nodes = list_nodes(session, pipeline)
    lines = _estimates(request, session, pipeline_nodes, pipeline_nodes)
    total = sum(line.usd for line in lines)
    saved = sum(line.estimate.usd for line in lines if line.reuse is not None)
    return JSONResponse(
        {
            "estimate": {
                "pipeline_uuid": pipeline.uuid,
                "nodes": [line.as_json() for line in lines],
                **budget_summary(pipeline, total),
                "saved_usd": round(saved, 4),
            }
        }
    )


@router.get(
    "/nodes/{node_uuid}/output",
    status_code=302,
    response_class=RedirectResponse,
    responses={
        302: {
            "description": "Redirect to the media (Location header)",
            "headers": {"Location": {"schema": {"type": "string", "format": "uri"}}},
        },
        **errors(*ADMIN_ERRORS, 404),
        **EDITOR_422,
    },
)
def node_output(
    request: Request,
    pipeline_uuid: str,
    node_uuid: str,
    _admin: AdminToken,
    session: SessionDep,
    contract: ContractDep,
) -> Response:
    """302 to a short-lived http(s) URL of the node's media: S3's presigned URL, or with
    local storage this API's own signed ``/v1/media`` URL. Without output: 404 (seed), or
    422 ``{"error": ...}`` (editor)."""
    pipeline = get_pipeline(session, pipeline_uuid)
    node = get_node(session, pipeline, node_uuid)
    key = (stored_output(node.output) or {}).get("s3_key")
    if not key:
        if contract.editor:
            return JSONResponse({"error": "Node has no output available"}, status_code=422)
        raise ApiError(404, "Node has no output yet")
    storage = request.app.state.storage()
    if not storage.exists(key):
        raise ApiError(404, "Node output is missing from storage")
    url = storage.browser_url(key)
    if not url.startswith(("http://", "https://")):
        url = signed_media_url(request, key)
    return RedirectResponse(url, status_code=302)
