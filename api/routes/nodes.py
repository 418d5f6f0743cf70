"""``/v1/admin/video_production/pipelines/{p}/nodes``: node CRUD."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Depends, Request, Response
from fastapi.responses import JSONResponse

from api.contract import ContractDep
from api.deps import (
    AdminToken,
    SessionDep,
    Wrapped,
    body_doc,
    retry_transaction,
    wrapped_body,
)
from api.responses import ADMIN_ERRORS, BODY_ERRORS, NodeEnvelope, NodeList, errors
from api.schemas import NodeCreate, NodeUpdate
from vidpipe_dagster.domain import nodes as commands
from vidpipe_dagster.domain.pipelines import get_pipeline

router = APIRouter(
    prefix="/v1/admin/video_production/pipelines/{pipeline_uuid}/nodes", tags=["nodes"]
)


@router.get("", response_model=NodeList, responses=errors(*ADMIN_ERRORS, 404))
def list_nodes(
    pipeline_uuid: str, _admin: AdminToken, session: SessionDep, contract: ContractDep
) -> JSONResponse:
    """The pipeline's nodes in creation order."""
    pipeline = get_pipeline(session, pipeline_uuid)
    return JSONResponse({"nodes": contract.nodes(commands.list_nodes(session, pipeline))})


@router.post(
    "",
    status_code=201,
    response_model=NodeEnvelope,
    responses=errors(*ADMIN_ERRORS, *BODY_ERRORS, 404),
    openapi_extra=body_doc("node", NodeCreate),
)
async def create_node(
    request: Request,
    pipeline_uuid: str,
    _admin: AdminToken,
    body: Annotated[Wrapped, Depends(wrapped_body("node", NodeCreate))],
) -> JSONResponse:
    """Create a node: the seed contract refuses invalid inputs, the editor's stores a draft.

    Creations arriving together in one pipeline share a transaction (:mod:`api.node_batches`).
    """
    answer = await request.app.state.node_batches.create(pipeline_uuid, body.sent)
    return JSONResponse(answer, status_code=201)


@router.get("/{node_uuid}", response_model=NodeEnvelope, responses=errors(*ADMIN_ERRORS, 404))
def show_node(
    pipeline_uuid: str,
    node_uuid: str,
    _admin: AdminToken,
    session: SessionDep,
    contract: ContractDep,
) -> JSONResponse:
    """One node."""
    pipeline = get_pipeline(session, pipeline_uuid)
    node = commands.get_node(session, pipeline, node_uuid)
    return JSONResponse({"node": contract.node(session, node)})


@router.patch(
    "/{node_uuid}",
    response_model=NodeEnvelope,
    responses=errors(*ADMIN_ERRORS, *BODY_ERRORS, 404),
    openapi_extra=body_doc("node", NodeUpdate),
)
@retry_transaction
def update_node(
    request: Request,
    pipeline_uuid: str,
    node_uuid: str,
    _admin: AdminToken,
    body: Annotated[Wrapped, Depends(wrapped_body("node", NodeUpdate))],
    session: SessionDep,
    contract: ContractDep,
) -> JSONResponse:
    """Update a node; a structure change resets it to pending."""
    pipeline = get_pipeline(session, pipeline_uuid, lock=True)
    node = commands.get_node(session, pipeline, node_uuid, lock=True)
    commands.update_node(session, node, contract=contract.name, **body.sent)
    answer = {"node": contract.node(session, node)}
    session.commit()
    request.app.state.notify_change(pipeline.uuid)
    return JSONResponse(answer)


@router.delete("/{node_uuid}", status_code=204, responses=errors(*ADMIN_ERRORS, 404))
@retry_transaction
def destroy_node(
    request: Request, pipeline_uuid: str, node_uuid: str, _admin: AdminToken, session: SessionDep
) -> Response:
    """Delete a node and remove it from other nodes' inputs."""
    pipeline = get_pipeline(session, pipeline_uuid, lock=True)
    node = commands.get_node(session, pipeline, node_uuid)
    commands.destroy_node(session, node)
    session.commit()
    request.app.state.notify_change(pipeline.uuid)
    return Response(status_code=204)
