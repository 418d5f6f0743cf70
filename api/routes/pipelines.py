"""``/v1/admin/video_production/pipelines``: pipeline CRUD."""

from __future__ import annotations

import math
from functools import partial
from typing import Annotated

import orjson
from fastapi import APIRouter, Depends, Query, Request, Response
from fastapi.responses import JSONResponse
from sqlalchemy import func, select
from sqlalchemy.orm import Session, sessionmaker

from api.contract import Contract, ContractDep
from api.deps import (
    AdminToken,
    SessionDep,
    Wrapped,
    body_doc,
    end_transaction,
    retry_transaction,
    wrapped_body,
)
from api.errors import ApiError
from api.read_cache import ReadCache, Ticket
from api.responses import (
    ADMIN_ERRORS,
    BODY_ERRORS,
    PipelineDetailEnvelope,
    PipelineEnvelope,
    PipelineList,
    errors,
)
from api.schemas import PipelineCreate, PipelineUpdate, pipeline_public
from vidpipe_dagster.db.models import Pipeline
from vidpipe_dagster.domain import pipelines as commands
from vidpipe_dagster.domain.nodes import list_nodes

router = APIRouter(prefix="/v1/admin/video_production/pipelines", tags=["pipelines"])

MAX_PER = 100


def _positive(name: str, value: str | None, default: int) -> int:
    if value is None or value == "":
        return default
    try:
        number = int(value)
    except ValueError as error:
        raise ApiError(422, f"{name} must be a positive integer") from error
    if number < 1:
        raise ApiError(422, f"{name} must be a positive integer")
    return number


@router.get("", response_model=PipelineList, responses=errors(*ADMIN_ERRORS))
def list_pipelines(
    _admin: AdminToken,
    session: SessionDep,
    page: Annotated[str | None, Query()] = None,
    per: Annotated[str | None, Query()] = None,
) -> JSONResponse:
    """Pipelines, newest ``updated_at`` first, ``per`` (default 25, max 100) a page."""
    page_number = _positive("page", page, 1)
    per_page = min(_positive("per", per, 25), MAX_PER)
    total = session.scalar(select(func.count(Pipeline.id))) or 0
    offset = (page_number - 1) * per_page
    rows = (
        session.scalars(
            select(Pipeline)
            .order_by(Pipeline.updated_at.desc(), Pipeline.id)
            .offset(offset)
            .limit(per_page)
        ).all()
        if offset < total
        else []
    )
    body = {
        "results": [pipeline_public(p) for p in rows],
        "meta": {
            "current_page": page_number,
            "total_count": total,
            "total_pages": math.ceil(total / per_page),
        },
    }
    return JSONResponse(body)


@router.post(
    "",
    status_code=201,
    response_model=PipelineEnvelope,
    responses=errors(*ADMIN_ERRORS, *BODY_ERRORS),
    openapi_extra=body_doc("pipeline", PipelineCreate),
)
@retry_transaction
def create_pipeline(
    request: Request,
    _admin: AdminToken,
    body: Annotated[Wrapped, Depends(wrapped_body("pipeline", PipelineCreate))],
    session: SessionDep,
) -> JSONResponse:
    """Create a pipeline."""
    pipeline = commands.create_pipeline(session, **body.sent)
    session.commit()
    request.app.state.notify_change(pipeline.uuid)
    return JSONResponse({"pipeline": pipeline_public(pipeline)}, status_code=201)


@router.get(
    "/{pipeline_uuid}",
    response_model=PipelineDetailEnvelope,
    responses=errors(*ADMIN_ERRORS, 404),
)
async def show_pipeline(
    request: Request,
    pipeline_uuid: str,
    _admin: AdminToken,
    session: SessionDep,
    contract: ContractDep,
) -> Response:
    """A pipeline with its nodes in creation order.

    Served from the process's read cache (:mod:`api.read_cache`) while no commit anywhere
    has changed the pipeline since it was read; read on the thread pool otherwise.
    """
    cache = request.app.state.read_cache
    key = str(commands.parse_uuid(pipeline_uuid, what="Pipeline"))
    body = cache.body(key)
    if body is None:
        body = await cache.load(
            f"pipeline:{key}",
            watch=key,
            read=partial(_detail_body, session, cache=cache, key=key, contract=contract),
        )
    elif cache.ageing(key):
        sessions = request.app.state.sessions
        cache.refresh(
            f"pipeline:{key}",
            watch=key,
            read=partial(_fresh_body, sessions, cache=cache, key=key, contract=contract),
        )
    return Response(body, media_type="application/json")


def _fresh_body(
    sessions: sessionmaker[Session],
    ticket: Ticket,
    *,
    cache: ReadCache,
    key: str,
    contract: Contract,
) -> bytes:
    """:func:`_detail_body` in a session of its own (a read ahead of the cached body's expiry)."""
    with sessions() as session:
        return _detail_body(session, ticket, cache=cache, key=key, contract=contract)


def _detail_body(
    session: Session, ticket: Ticket, *, cache: ReadCache, key: str, contract: Contract
) -> bytes:
    """The encoded ``{"pipeline": ...}`` of a GET, offered to the read cache."""
    pipeline = commands.get_pipeline(session, key)
    nodes = contract.nodes(list_nodes(session, pipeline))
    body = orjson.dumps({"pipeline": pipeline_public(pipeline, nodes=nodes)})
    end_transaction(session)
    cache.keep(key, ticket, body)
    return body


@router.patch(
    "/{pipeline_uuid}",
    response_model=PipelineEnvelope,
    responses=errors(*ADMIN_ERRORS, *BODY_ERRORS, 404),
    openapi_extra=body_doc("pipeline", PipelineUpdate),
)
@retry_transaction
def update_pipeline(
    request: Request,
    pipeline_uuid: str,
    _admin: AdminToken,
    body: Annotated[Wrapped, Depends(wrapped_body("pipeline", PipelineUpdate))],
    session: SessionDep,
) -> JSONResponse:
    """Change a pipeline's title, version, config or metadata."""
    pipeline = commands.get_pipeline(session, pipeline_uuid, lock=True)
    commands.update_pipeline(session, pipeline, **body.sent)
    session.commit()
    request.app.state.notify_change(pipeline.uuid)
    return JSONResponse({"pipeline": pipeline_public(pipeline)})


@router.delete("/{pipeline_uuid}", status_code=204, responses=errors(*ADMIN_ERRORS, 404))
@retry_transaction
def destroy_pipeline(
    request: Request, pipeline_uuid: str, _admin: AdminToken, session: SessionDep
) -> Response:
    """Delete a pipeline and its nodes."""
    pipeline = commands.get_pipeline(session, pipeline_uuid)
    uuid = pipeline.uuid
    commands.destroy_pipeline(session, pipeline)
    session.commit()
    request.app.state.notify_change(uuid)
    return Response(status_code=204)
