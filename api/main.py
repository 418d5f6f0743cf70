"""The FastAPI app factory. ``uvicorn api.main:app`` serves the default app."""

from __future__ import annotations

import logging
from collections.abc import Callable
from functools import cache
from typing import Any

from fastapi import FastAPI
from sqlalchemy import event
from sqlalchemy.orm import Session, sessionmaker

from api.errors import DatabaseOutage, install_error_handlers
from api.routes import execution, health, nodes, pipelines, webhooks
from vidpipe_dagster.db.session import make_engine, make_sessionmaker
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
    the run launcher and the media storage, built on first use. With the database
    unreachable every route answers 503 with ``Retry-After``; a transaction that gets a
    connection again ends the outage (:class:`~api.errors.DatabaseOutage`).
    """
    settings = settings or get_settings()
    app = FastAPI(
        title="vidpipe",
        summary="The video-production editor's REST API.",
        version="0.1.0",
    )
    app.state.settings = settings
    app.state.sessions = sessions or make_sessionmaker(make_engine(settings.resolved_database_url))
    app.state.database_outage = DatabaseOutage()
    event.listen(app.state.sessions, "after_begin", app.state.database_outage.up)
    app.state.notify_change = _never_raises(notify_change or _default_notify(settings))
    app.state.launcher = launcher or cache(lambda: _default_launcher(settings))
    app.state.storage = storage or cache(lambda: _default_storage(settings))
    install_error_handlers(app)
    for module in (health, pipelines, nodes, execution, webhooks):
        app.include_router(module.router)
    return app


def _never_raises(callback: Callable[[str], None]) -> Callable[[str], None]:
    """Writes commit before they notify, so a failing notification must not become a 500."""

    def notify(pipeline_uuid: str) -> None:
        try:
            callback(pipeline_uuid)
        except Exception:
            log.exception("change notification failed")

    return notify


def _default_notify(settings: Settings) -> Callable[[str], None]:
    from vidpipe_dagster.reload import request_reload

    return lambda pipeline_uuid: request_reload(settings, pipeline_uuid=pipeline_uuid)


def _default_launcher(settings: Settings) -> Any:
    from vidpipe_dagster.launcher import DagsterLauncher

    return DagsterLauncher(settings=settings)


def _default_storage(settings: Settings) -> Any:
    from vidpipe_dagster.resources.storage import storage_from_settings

    return storage_from_settings(settings)


app = create_app()
