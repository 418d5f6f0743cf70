"""``GET /v1/admin/video_production/pipelines/{uuid}/events``: live status as Server-Sent Events.

A stream opens with a ``snapshot`` (the pipeline and all its nodes, as ``GET`` shows them)
or, with ``Last-Event-ID``, with every event after that id; then each change as it commits:
``node`` (a node's status, stage, progress, cost, output: the whole node), ``node_deleted``,
``pipeline`` (progress and ``totalCost`` in USD) and ``pipeline_deleted``, which ends the
stream. Every event carries its ``id``; a reconnecting client sends the last one back and
misses nothing (when it fell behind the kept events it gets a new ``snapshot``). A comment
line every ``VIDPIPE_EVENT_HEARTBEAT_SECONDS`` keeps proxies from closing an idle stream.

Authentication, the 404 and the stream limit (``VIDPIPE_MAX_EVENT_STREAMS``, a 503 with
``Retry-After``) are answered in the error shape before the stream starts; the request's
session is closed before it does, so an open stream holds no connection or transaction.
"""

from __future__ import annotations

import asyncio
import json
import uuid as uuid_lib
from collections.abc import AsyncIterator
from typing import Any

from fastapi import APIRouter, Request
from fastapi.responses import JSONResponse, StreamingResponse
from starlette.concurrency import run_in_threadpool

from api.contract import Contract, ContractDep
from api.deps import AdminToken, SessionDep
from api.errors import ApiError, error_response
from api.event_hub import OVERFLOW, EventHub, Subscription
from api.responses import ADMIN_ERRORS, errors
from api.schemas import pipeline_public
from vidpipe_dagster.domain import events
from vidpipe_dagster.domain.nodes import list_nodes, pipeline_node_uuids
from vidpipe_dagster.domain.pipelines import get_pipeline

router = APIRouter(prefix="/v1/admin/video_production/pipelines", tags=["events"])

RETRY_MILLISECONDS = 2000
"""The reconnection delay the stream asks ``EventSource`` clients to use."""

STREAM_HEADERS = {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}


def event_hub(request: Request) -> EventHub:
    """The app's hub, made on first use."""
    hub = getattr(request.app.state, "event_hub", None)
    if hub is None:
        settings = request.app.state.settings
        hub = EventHub(
            sessions=request.app.state.sessions,
            max_streams=settings.max_event_streams,
            poll_seconds=settings.event_poll_seconds,
        )
        request.app.state.event_hub = hub
    return hub


def _last_event_id(request: Request) -> int | None:
    raw = request.headers.get("last-event-id") or request.query_params.get("last_event_id")
    if raw is None or raw.strip() == "":
        return None
    if not raw.strip().isdigit():
        raise ApiError(400, "Last-Event-ID must be the id of an event this stream sent")
    return int(raw.strip())


def frame(*, kind: str, data: dict[str, Any], event_id: int | None = None) -> str:
    """One Server-Sent Event."""
    head = f"id: {event_id}\n" if event_id is not None else ""
    return f"{head}event: {kind}\ndata: {json.dumps(data, separators=(',', ':'))}\n\n"


class _View:
    """How one stream shows events: its contract's node JSON, with validity judged against
    the pipeline's node UUIDs, which the stream follows from the events it sends."""

    def __init__(self, contract: Contract) -> None:
        self.contract = contract
        self.known: set[str] = set()

    def frame(self, *, kind: str, payload: dict[str, Any], event_id: int) -> str:
        if kind == events.NODE:
            node = events.node_from_state(payload["node"])
            self.known.add(node.uuid)
            payload = {"node": self.contract.node_among(node, self.known)}
        elif kind == events.NODE_DELETED:
            self.known.discard(payload["node"]["uuid"])
        return frame(kind=kind, data=payload, event_id=event_id)


@router.get(
    "/{pipeline_uuid}/events",
    response_class=StreamingResponse,
    response_model=None,
    responses={200: {"content": {"text/event-stream": {}}}, **errors(*ADMIN_ERRORS, 400, 404)},
)
async def pipeline_events(
    request: Request,
    pipeline_uuid: str,
    _admin: AdminToken,
    session: SessionDep,
    contract: ContractDep,
) -> StreamingResponse | JSONResponse:
    """Stream the pipeline's live status as Server-Sent Events."""
    try:
        pipeline = await run_in_threadpool(get_pipeline, session, pipeline_uuid)
        after = _last_event_id(request)
    finally:
        await run_in_threadpool(session.close)
    hub = event_hub(request)
    subscription = hub.open(pipeline.id, asyncio.get_running_loop())
    if subscription is None:
        response = error_response(
            503,
            "service_unavailable",
            f"Too many live-status streams are open ({hub.max_streams}, "
            "VIDPIPE_MAX_EVENT_STREAMS); retry shortly",
        )
        response.headers["Retry-After"] = "5"
        return response
    heartbeat = request.app.state.settings.event_heartbeat_seconds
    return StreamingResponse(
        _stream(request, subscription, view=_View(contract), after=after, heartbeat=heartbeat),
        media_type="text/event-stream",
        headers=STREAM_HEADERS,
    )


def _snapshot(request: Request, view: _View, pipeline_id: uuid_lib.UUID) -> tuple[int, str] | None:
    """``(id, frame)`` of a ``snapshot`` of the pipeline now, None when it is gone.

    The id is read before the rows, so an event committed in between is sent again after
    the snapshot (a node event carries the whole node, so that repeats nothing wrong).
    """
    with request.app.state.sessions() as session:
        newest = events.latest_id(session)
        try:
            pipeline = get_pipeline(session, str(pipeline_id))
        except Exception:
            return None
        nodes = list_nodes(session, pipeline)
        view.known = {node.uuid for node in nodes}
        body = pipeline_public(pipeline, nodes=view.contract.nodes(nodes))
    return newest, frame(kind="snapshot", data={"pipeline": body}, event_id=newest)


def _backlog(
    request: Request, view: _View, pipeline_id: uuid_lib.UUID, after: int
) -> tuple[bool, list[events.PipelineEvent]]:
    """``(resumable, events after ``after``)`` for the pipeline."""
    with request.app.state.sessions() as session:
        if not events.can_resume(session, after):
            return False, []
        view.known = pipeline_node_uuids(session, pipeline_id)
        found: list = []
        while True:
            page = events.events_after(
                session, found[-1].id if found else after, pipeline_id=pipeline_id
            )
            found.extend(page)
            if len(page) < 1000:
                return True, found


async def _stream(
    request: Request,
    subscription: Subscription,
    *,
    view: _View,
    after: int | None,
    heartbeat: float,
) -> AsyncIterator[str]:
    pipeline_id = subscription.pipeline_id
    try:
        yield f"retry: {RETRY_MILLISECONDS}\n\n"
        await run_in_threadpool(subscription.ready.wait, 30)
        sent = after
        backlog: list = []
        if after is not None:
            resumable, backlog = await run_in_threadpool(
                _backlog, request, view, pipeline_id, after
            )
            if not resumable:
                sent = None
        if sent is None:
            snapshot = await run_in_threadpool(_snapshot, request, view, pipeline_id)
            if snapshot is None:
                gone = {"pipeline": {"uuid": str(pipeline_id)}}
                yield frame(kind=events.PIPELINE_DELETED, data=gone)
                return
            sent, text = snapshot
            yield text
        for row in backlog:
            yield view.frame(kind=row.kind, payload=row.payload, event_id=row.id)
            sent = row.id
            if row.kind == events.PIPELINE_DELETED:
                return
        while True:
            try:
                item = await asyncio.wait_for(subscription.queue.get(), timeout=heartbeat)
            except TimeoutError:
                yield ": heartbeat\n\n"
                continue
            if item is OVERFLOW:
                subscription.resynchronised()
                snapshot = await run_in_threadpool(_snapshot, request, view, pipeline_id)
                if snapshot is None:
                    return
                sent, text = snapshot
                yield text
                continue
            if item.id <= sent:
                continue
            yield view.frame(kind=item.kind, payload=item.payload, event_id=item.id)
            sent = item.id
            if item.kind == events.PIPELINE_DELETED:
                return
    finally:
        subscription.close()
