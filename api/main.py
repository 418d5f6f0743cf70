"""The FastAPI app factory. ``uvicorn api.main:app`` serves the default app."""

from __future__ import annotations

import gc
import logging
from collections.abc import Callable
from functools import cache
from typing import Any

from fastapi import FastAPI
from fastapi.middleware.cors import CORSMiddleware
from sqlalchemy.orm import Session, sessionmaker

from api.cached_reads import CachedPipelineReads
from api.contract import Contract
from api.docs import install_docs
from api.errors import DatabaseOutage, install_error_handlers
from api.node_batches import NodeBatches
from api.read_cache import ReadCache
from api.routes import events, execution, health, media, nodes, pipelines, webhooks
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
from vidpipe_dagster.resources.providers.clients import shared_clients
from vidpipe_dagster.settings import Settings, get_settings

log = logging.getLogger(__name__)


def create_app(
    *,
    settings: Settings | None = None,
    sessions: sessionmaker[Session] | None = None,
    notify_change: Callable[[str], None] | None = None,
    launcher: Callable[[], Any] | None = None,
    storage: Callable[[], Any] | None = None,
) -> FastAPI:
    """Build the app.

    ``notify_change`` is called with the pipeline's UUID after every committed write (by
    default it asks Dagster to reload that pipeline's code location, debounced, off the
    request path); ``launcher`` and ``storage`` are factories of
    the run launcher and the media storage, built on first use. Provider clients (for the
    webhooks) are built once per process and closed at shutdown. With the database
    unreachable every route answers 503 with ``Retry-After``; a transaction that gets a
    connection again ends the outage (:class:`~api.errors.DatabaseOutage`).
    """
    settings = settings or get_settings()
    app = FastAPI(
        title="vidpipe",
        summary="The video-production editor's REST API.",
        version="0.1.0",
        docs_url=None,
        redoc_url=None,
    )
    app.state.settings = settings
    app.state.sessions = sessions or make_sessionmaker(make_engine(settings.resolved_database_url))
    app.state.read_cache = ReadCache(
        engine=app.state.sessions.kw["bind"],
        body_seconds=settings.api_cache_seconds,
        token_seconds=settings.token_cache_seconds,
    )
    app.router.add_event_handler("shutdown", app.state.read_cache.stop)
    app.state.database_outage = DatabaseOutage()
    app.state.database_outage.watch(app.state.sessions)
    app.state.notify_change = _never_raises(notify_change or _default_notify(settings))
    app.state.node_batches = NodeBatches(
        sessions=app.state.sessions,
        contract=Contract(settings.api_contract),
        notify_change=app.state.notify_change,
    )
    app.state.launcher = launcher or cache(lambda: _default_launcher(settings))
    app.state.storage = storage or cache(lambda: _default_storage(settings))
    app.state.providers = shared_clients(settings)
    app.router.add_event_handler("startup", freeze_startup_heap)
    app.router.add_event_handler("shutdown", app.state.providers.close)
    app.add_middleware(CachedPipelineReads, prefix=pipelines.router.prefix)
    install_error_handlers(app)
    install_cors(app, settings)
    for module in (health, pipelines, nodes, execution, media, events, webhooks):
        app.include_router(module.router)
    install_docs(app)
    return app


def freeze_startup_heap() -> None:
    """Move what exists at startup (about 120,000 objects: modules, the app) out of the
    garbage collector's reach: it never becomes garbage, and the collector's full passes
    over it, tens of milliseconds each, showed as the API's p99 under load."""
    gc.collect()
    gc.freeze()


LOCALHOST_ORIGINS = r"http://(localhost|127\.0\.0\.1)(:[0-9]{1,5})?"
CORS_METHODS = ["GET", "POST", "PATCH", "PUT", "DELETE", "OPTIONS"]
CORS_HEADERS = ["Authorization", "Content-Type", "Accept", "Range", "Last-Event-ID"]


def install_cors(app: FastAPI, settings: Settings) -> None:
    """Let the browser origins of ``VIDPIPE_CORS_ORIGINS`` (and, under ``vidpipe dev``, any
    localhost port) call every route.

    The middleware answers preflights itself, before routing and authentication, and adds
    the headers to every response it wraps, errors included, since the exception handlers
    answer inside it. An origin not listed gets no CORS headers, so the browser blocks it.
    """
    origins = settings.cors_origin_list
    regex = LOCALHOST_ORIGINS if settings.cors_allow_localhost else None
    if not origins and regex is None:
        return
    app.add_middleware(
        CORSMiddleware,
        allow_origins=origins,
        allow_origin_regex=regex,
        allow_methods=CORS_METHODS,
        allow_headers=CORS_HEADERS,
        expose_headers=["Location", "Content-Range", "Accept-Ranges", "Content-Length"],
        max_age=600,
    )


def _never_raises(callback: Callable[[str], None]) -> Callable[[str], None]:
    """Writes commit before they notify, so a failing notification must not become a 500."""

    def notify(pipeline_uuid: str) -> None:
        try:
            callback(pipeline_uuid)
        except Exception:
            log.exception("change notification failed")

    return notify


def _default_notify(settings: Settings) -> Callable[[str], None]:
    from vidpipe_dagster.runs.reload import request_reload

    return lambda pipeline_uuid: request_reload(settings, pipeline_uuid=pipeline_uuid)


def _default_launcher(settings: Settings) -> Any:
    from vidpipe_dagster.runs.launcher import DagsterLauncher

    return DagsterLauncher(settings=settings)


def _default_storage(settings: Settings) -> Any:
    from vidpipe_dagster.resources.storage import storage_from_settings

    return storage_from_settings(settings)


app = create_app()
